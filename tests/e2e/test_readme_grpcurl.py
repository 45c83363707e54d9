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
from tests.support import grpcurl

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def recipes() -> list[str]:
    cmds = []
    for block in blocks(section("grpcurl recipes"), "sh"):
        cmds += [ln for ln in block.replace("\\\n", " ").splitlines() if ln.startswith("grpcurl ")]
    return cmds


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("readme"), certs_template) as c:
        with c.client() as client:
            [tid] = client.submit(TaskSpec(name="readme", shell="echo hello from the README", tags=("sweep",)))
            assert tid == "1"
            assert client.wait([tid], timeout=30)[0].state is TaskState.SUCCEEDED
        yield c


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
def test_recipe_runs(live: Cluster, recipe: str) -> None:
    argv = shlex.split(recipe.replace(".dtask/certs/", f"{live.certs}/").replace("localhost:50051", live.address))
    argv[0] = grpcurl()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
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
