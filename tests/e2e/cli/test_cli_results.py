"""`dtask results`, `--param` on submit and tasks, and params in JSON: a real controller and runners running a 2x3
matrix."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cli.conftest import Dtask
from tests.integration.client.cluster import Cluster
from tests.support import grpcurl_args, tls

# What each combination of the 2x3 matrix prints: an int epoch, a loss and an accuracy; cnn with lr=0.5 fails.
FIT = """import sys
acc = {("mlp", 0.01): 0.81, ("mlp", 0.1): 0.93, ("mlp", 0.5): 0.88, ("cnn", 0.01): 0.85, ("cnn", 0.1): 0.97}
a = acc.get((sys.argv[1], float(sys.argv[2])))
if a is None:
    sys.exit("RuntimeError: diverged")
print("***** eval metrics *****")
print("  epoch =", 2)
print("  eval_loss =", round(1 - a, 2))
print("  eval_accuracy =", a)
"""


def _sweep_file(tmp: Path) -> Path:
    (tmp / "fit.py").write_text(FIT)
    f = tmp / "fit.toml"
    f.write_text(
        '[[task]]\nname = "fit"\ntags = ["results-sweep"]\n'
        'command = "python3 {taskfile_dir}/fit.py {model} {lr}"\n'
        '[task.matrix]\nmodel = ["mlp", "cnn"]\nlr = [0.01, 0.1, 0.5]\n'
    )
    return f


@pytest.fixture(scope="module")
def sweep(dtask: Dtask, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    f = _sweep_file(tmp_path_factory.mktemp("sweep"))
    r = dtask("submit", str(f))
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 6
    w = dtask("wait", *ids, "--timeout", "60")
    assert w.returncode == 1, w.stdout + w.stderr  # cnn with lr=0.5 fails
    return ids


def test_results_table_columns_best_and_blank(dtask: Dtask, sweep: list[str]) -> None:
    r = dtask("results", "fit")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "model", "lr", "epoch", "eval_accuracy", "eval_loss", "state", "duration_s"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert list(rows) == sweep  # id order
    best = rows[sweep[4]]  # cnn, 0.1
    assert best[1:6] == ["cnn", "0.1", "2", "0.97*", "0.03*"]  # lowest loss and highest accuracy marked
    failed = rows[sweep[5]]
    assert failed[1:4] == ["cnn", "0.5", "failed"]  # its metrics are blank
    assert rows[sweep[0]][3] == "2"  # an int metric stays an int


def test_results_sort_desc_cols_csv_json(dtask: Dtask, sweep: list[str]) -> None:
    r = dtask("results", "fit", "--sort", "eval_accuracy", "--desc", "--cols", "model,lr,eval_accuracy")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["model", "lr", "eval_accuracy"]
    assert [ln.split()[2].rstrip("*") for ln in lines[1:6]] == ["0.97", "0.93", "0.88", "0.85", "0.81"]
    assert lines[6].split() == ["cnn", "0.5"]  # missing last, even descending

    c = dtask("results", "--tag", "results-sweep", "--csv", "--sort", "lr")
    assert c.returncode == 0, c.stderr
    table = list(csv.DictReader(io.StringIO(c.stdout)))
    assert [row["lr"] for row in table] == ["0.01", "0.01", "0.1", "0.1", "0.5", "0.5"]
    assert {row["epoch"] for row in table} == {"2", ""} and table[0]["eval_accuracy"] in ("0.81", "0.85")

    j = dtask("results", *sweep[:2], "--json")
    assert j.returncode == 0, j.stderr
    data = json.loads(j.stdout)
    assert [d["id"] for d in data] == sweep[:2]
    assert data[0]["epoch"] == 2 and isinstance(data[0]["epoch"], int)
    assert data[0]["lr"] == 0.01 and data[0]["model"] == "mlp" and data[0]["eval_accuracy"] == 0.81
    assert data[0]["state"] == "succeeded" and data[0]["duration_s"] > 0

    m = dtask("results", "fit", "--min", "eval_accuracy", "--cols", "id,eval_accuracy")
    marked = [ln.split()[0] for ln in m.stdout.splitlines()[1:] if ln.endswith("*")]
    assert marked == [sweep[0]], m.stdout  # lowest accuracy is best when asked

    bad = dtask("results", "fit", "--sort", "eval_acuracy")
    assert bad.returncode == 2 and "did you mean 'eval_accuracy'" in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_params_filter_and_json(live: Cluster, dtask: Dtask, sweep: list[str]) -> None:
    t = dtask("tasks", "--param", "lr=0.1", "--json")
    assert t.returncode == 0, t.stderr
    assert [d["id"] for d in json.loads(t.stdout)] == [sweep[1], sweep[4]]
    t = dtask("tasks", "--param", "lr=0.1", "--param", "model=cnn")
    assert [ln.split()[0] for ln in t.stdout.splitlines()[1:]] == [sweep[4]]
    assert dtask("results", "--param", "model=mlp", "--json").stdout.count('"id"') == 3

    data = json.loads(dtask("task", sweep[4], "--json").stdout)
    assert data["params"] == {"model": "cnn", "lr": 0.1} and data["spec"]["params"] == data["params"]
    assert data["result"]["epoch"] == 2 and isinstance(data["result"]["epoch"], int)

    files = tls(live.certs, "operator")
    out = subprocess.run(
        [*grpcurl_args(files), "-d", json.dumps({"task_id": sweep[4]}), live.address,
         "dtask.v1.Controller/GetTask"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    spec = json.loads(out.stdout)["spec"]
    assert spec["params"] == [
        {"key": "model", "value": {"stringValue": "cnn"}},
        {"key": "lr", "value": {"floatValue": 0.1}},
    ]
    wanted = {"params": [{"key": "lr", "value": {"floatValue": 0.5}}], "name_prefix": "fit["}
    out = subprocess.run(
        [*grpcurl_args(files), "-d", json.dumps(wanted), live.address, "dtask.v1.Controller/ListTasks"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [t["id"] for t in json.loads(out.stdout)["tasks"]] == [sweep[2], sweep[5]]
    bad = {"params": [{"key": "a b", "value": {"intValue": 1}}]}
    out = subprocess.run(
        [*grpcurl_args(files), "-d", json.dumps(bad), live.address, "dtask.v1.Controller/ListTasks"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode != 0 and "InvalidArgument" in out.stderr and "'a b' is not valid" in out.stderr


def test_submit_param_typed_and_bad_input(dtask: Dtask) -> None:
    r = dtask(
        "submit", "--name", "one", "--param", "lr=0.1", "--param", "n=3", "--param", "name=cnn",
        "--param", "on=true", "--param", "lrf=1.0", "--", "true",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [tid] = r.stdout.split()
    params = json.loads(dtask("task", tid, "--json").stdout)["params"]
    assert params == {"lr": 0.1, "n": 3, "name": "cnn", "on": True, "lrf": 1.0}
    assert [type(v) for v in params.values()] == [float, int, str, bool, float]
    assert [d["id"] for d in json.loads(dtask("tasks", "--param", "n=3.0", "--json").stdout)] == [tid]
    assert json.loads(dtask("tasks", "--param", 'n="3"', "--json").stdout) == []  # the string 3 is not 3

    for args, message in (
        (("--param", "bad key=1"), "parameter name 'bad key' is not valid"),
        (("--param", "lr"), "use KEY=VALUE"),
        (("--param", "x=inf"), "is not a finite number"),
        (("--param", "a=1", "--param", "a=2"), "parameter 'a' is given twice"),
        (("--param", "s=" + "x" * 300), "is longer than 256 bytes"),
    ):
        bad = dtask("submit", *args, "--", "true")
        assert bad.returncode == 2, (args, bad.stderr)
        assert message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert dtask("tasks", "--param", "1x=2").returncode == 2


def test_python_client_results_rows_and_submit_params(live: Cluster, sweep: list[str]) -> None:
    from dtask_client import InvalidTask, UnknownColumn
    from dtask_common.models import TaskSpec

    with live.client() as c:
        rows = c.results("fit", sort="eval_accuracy", desc=True)
        assert [r["id"] for r in rows] == [sweep[4], sweep[1], sweep[2], sweep[3], sweep[0], sweep[5]]
        assert all(type(r) is dict for r in rows)
        assert list(rows[0]) == ["id", "model", "lr", "epoch", "eval_accuracy", "eval_loss", "state", "duration_s"]
        assert type(rows[0]["epoch"]) is int and rows[5]["eval_accuracy"] is None
        assert {type(v) for r in rows for v in r.values()} <= {str, int, float, type(None)}
        assert c.results(ids=[sweep[0]], cols=["id", "lr"]) == [{"id": sweep[0], "lr": 0.01}]
        with pytest.raises(UnknownColumn, match="did you mean 'eval_loss'"):
            c.results("fit", sort="eval_los")

        [tid] = c.submit(TaskSpec(name="py-param", shell="true"), params={"lr": 0.1, "n": 3})
        assert c.task(tid).spec.params == {"lr": 0.1, "n": 3}
        assert [t.id for t in c.tasks(params={"n": 3}, name_prefix="py-")] == [tid]
        with pytest.raises(InvalidTask, match="parameter name 'a b' is not valid"):
            c.submit(TaskSpec(name="x", shell="true"), params={"a b": 1})
        with pytest.raises(ValueError, match="must be a string, integer, float or boolean"):
            c.tasks(params={"a": [1]})  # type: ignore[dict-item]
