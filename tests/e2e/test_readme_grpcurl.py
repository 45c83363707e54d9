"""The README's grpcurl recipes and Python example, extracted from README.md and run against a live cluster."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from tests.integration.client.cluster import Cluster, cluster

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def recipe_lines() -> list[str]:
    lines = []
    for block in blocks(section("grpcurl recipes"), "sh"):
        lines += [ln for ln in block.replace("\\\n", " ").splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


def recipes() -> list[str]:
    return [ln for ln in recipe_lines() if ln.startswith("grpcurl ")]


def prelude() -> list[str]:
    """The lines before the recipes that set them up (PATH, the controller's address), as written."""
    return [ln for ln in recipe_lines() if not ln.startswith("grpcurl ")]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory, live: Cluster) -> Iterator[tuple[Path, dict[str, str]]]:
    """A directory laid out like the checkout after `make install` (.venv, .dtask with the certificates), and
    an environment whose only dtask setting is a configuration file giving the controller's port range."""
    root = tmp_path_factory.mktemp("checkout")
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (root / ".dtask").symlink_to(live.home)
    port = int(live.address.rpartition(":")[2])
    config = root / "dtask.toml"
    config.write_text(f"[controller]\nport_range = [{port}, {port + 9}]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTASK_") and k != "VIRTUAL_ENV"}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", DTASK_CONFIG=str(config))  # grpcurl only through the prelude
    yield root, env


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("readme"), certs_template) as c:
        with c.client() as client:
            [tid] = client.submit(TaskSpec(name="readme", shell="echo hello from the README", tags=("sweep",)))
            assert tid == "1"
            assert client.wait([tid], timeout=30)[0].state is TaskState.SUCCEEDED
        yield c


def test_prelude_puts_grpcurl_on_path_and_asks_the_configuration_for_the_address() -> None:
    assert prelude() == ['export PATH="$PWD/.venv/bin:$PATH"', "CTL=$(dtask config --get client.controller)"]
    assert all('"$CTL" ' in line for line in recipes())


def test_recipes_cover_every_query() -> None:
    text = "\n".join(recipes())
    for method in ("ListExecutors", "IsFinished", "GetResourceUsage", "ListTasks", "GetTask", "Watch"):
        assert f"dtask.v1.Controller/{method}" in text, method
    assert '"states": ["TASK_STATE_' in text
    for line in recipes():
        assert "-cacert .dtask/certs/ca.crt -cert .dtask/certs/operator.crt -key .dtask/certs/operator.key" in line


@pytest.mark.parametrize(
    "recipe",
    recipes(),
    ids=lambda r: r.split()[-1].rsplit("/", 1)[-1] + ("-" + r[r.index("-d ") + 4 :][:30] if "-d " in r else ""),
)
def test_recipe_runs(checkout: tuple[Path, dict[str, str]], recipe: str) -> None:
    """Each recipe as written, after the README's own prelude, in a shell at the checkout's root."""
    root, env = checkout
    script = "\n".join(["set -e", *prelude(), recipe])
    r = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=30)
    argv = shlex.split(recipe)
    method = argv[-1]
    if "-max-time" in argv and method.endswith("/Watch"):
        assert r.returncode in (0, 68), r.stderr  # 68: the -max-time limit ended the stream, as documented
        assert '"snapshot"' in r.stdout and '"readme"' in r.stdout
        return
    assert r.returncode == 0, f"{recipe}\n{r.stderr}"
    expected = {
        "list": "dtask.v1.Controller",
        "dtask.v1.Controller": "rpc ListTasks",
        "dtask.v1.ListTasksRequest": "page_token",
        "dtask.v1.Controller/ListExecutors": '"name": "r1"',
        "dtask.v1.Controller/IsFinished": '"finished": true',
        "dtask.v1.Controller/GetResourceUsage": '"executor": "r1"',
        "dtask.v1.Controller/GetTask": '"name": "readme"',
        "dtask.v1.Controller/GetTaskOutput": '"data": ',
        "grpc.health.v1.Health/Check": "SERVING",
    }
    if method in expected:
        assert expected[method] in r.stdout, r.stdout


def test_python_example_runs_as_printed(live: Cluster) -> None:
    [code] = blocks(section("Python API"), "python")
    code = code.replace("localhost:50051", live.address)
    env = dict(os.environ, DTASK_HOME=str(live.home))
    env.pop("DTASK_CONTROLLER", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.strip().splitlines()
    assert rows[0].split() == ["task", "state", "eval_loss", "eval_accuracy"]
    assert [row.split()[:2] for row in rows[1:]] == [[f"train[lr={lr}]", "succeeded"] for lr in ("0.01", "0.03", "0.1")]
    with Controller(live.address, certs=live.certs) as c:
        assert all(t.result and "eval_loss" in t.result for t in c.tasks(tag="python-api"))
