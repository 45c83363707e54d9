"""The `dtask` command given hostile input: ids, numbers, 300 invalid tasks, a store holding inf."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.cli.conftest import run_dtask
from tests.support import Proc, start_controller


def error_lines(r: object) -> list[str]:
    err: str = r.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and "internal error" not in err and "Stream removed" not in err, err
    return [ln for ln in err.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("task", "010"), "'010' is not a task id: write it without leading zeros (10)"),
        (("logs", "99999999999999999999999"), "larger than the largest task id"),
        (("cancel", "1", "--", "-1"), "'-1' is not a task id"),
        (("retry", " 1"), "remove the spaces"),
        (("wait", "1e3"), "'1e3' is not a task id"),
        (("wait", "--timeout", "inf"), "--timeout': must be a finite number, got inf"),
        (("submit", "--cpus", "nan", "--", "true"), "--cpus': must be a finite number, got nan"),
        (("submit", "--gpus", "-1", "--", "true"), "--gpus"),
        (("submit", "--after", "010", "--", "true"), "'010' is not a task id"),
        (("submit", "--timeout", "9" * 400, "--", "true"), "too long a duration"),
        (("submit", "--memory", "9" * 400 + "T", "--", "true"), "larger than any machine's memory"),
        (("logs", "--attempt", "99999999999", "1"), "--attempt"),
        (("usage", "--history", "-1"), "--history"),
    ],
)
def test_bad_ids_and_numbers_are_usage_errors(home: Path, args: tuple[str, ...], needle: str) -> None:
    r = run_dtask(home, "127.0.0.1:1", *args)  # refused before dialling: no controller needed
    lines = error_lines(r)
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr


def test_task_file_with_inf_is_refused_naming_the_field(controller: Proc, home: Path, tmp_path: Path) -> None:
    f = tmp_path / "inf.toml"
    f.write_text('[[task]]\nname = "x"\ncommand = "true"\ntimeout_s = inf\nresources = { cpus = nan }\n')
    r = run_dtask(home, controller.address, "submit", str(f))
    assert r.returncode == 7
    assert error_lines(r) == [
        f"error: {f}: task 'x' (#1): resources.cpus: must be a finite number, got nan",
        f"{f}: task 'x' (#1): timeout_s: must be a finite number, got inf",
    ]


def test_300_invalid_tasks_print_the_first_errors_and_the_count(controller: Proc, home: Path, tmp_path: Path) -> None:
    f = tmp_path / "many.toml"  # valid as a file: only the controller knows that task 999999 does not exist
    f.write_text("".join(f'[[task]]\nname = "t{i}"\ncommand = "true"\ndepends_on = ["999999"]\n\n' for i in range(300)))
    r = run_dtask(home, controller.address, "submit", str(f))
    lines = error_lines(r)
    assert r.returncode == 7, r.stderr
    assert lines[0] == "error: 300 of 300 tasks are invalid:"
    assert lines[1] == (
        "  task 't0' (#1): depends_on[0]: '999999' is neither the name of a task in this "
        "submission nor the id of an existing task"
    )
    assert len(lines) == 22 and lines[-1] == "  … and 280 more"


def test_a_stored_infinity_is_shown_and_exported_as_null(home: Path) -> None:
    """A store written before numbers were checked: every command still answers, JSON stays JSON."""
    ctl = start_controller(home)
    try:
        assert run_dtask(home, ctl.address, "pause").returncode == 0
        assert run_dtask(home, ctl.address, "submit", "--name", "odd", "--", "true").stdout.strip() == "1"
    finally:
        ctl.stop()
    with sqlite3.connect(home / "controller.db") as db:
        [(text,)] = db.execute("SELECT spec FROM tasks WHERE id = 1").fetchall()
        spec = json.loads(text)
        spec["timeout_s"] = float("inf")
        spec["resources"] = {"cpus": float("nan"), "memory_mb": 0, "gpus": 0}  # (none asked for: not stored)
        db.execute("UPDATE tasks SET spec = ? WHERE id = 1", (json.dumps(spec),))
    ctl = start_controller(home)
    try:
        detail = run_dtask(home, ctl.address, "task", "1")
        assert detail.returncode == 0 and "∞" in detail.stdout, detail.stderr
        assert run_dtask(home, ctl.address, "tasks").returncode == 0
        for args in (("task", "1", "--json"), ("tasks", "--json"), ("export",)):
            r = run_dtask(home, ctl.address, *args)
            assert r.returncode == 0, r.stderr
            data = json.loads(r.stdout, parse_constant=lambda c, a=args: pytest.fail(f"{c} in dtask {a}"))
            row = data["tasks"][0] if args == ("export",) else data[0] if isinstance(data, list) else data
            assert row["spec"]["timeout_s"] is None and row["spec"]["resources"]["cpus"] is None
    finally:
        ctl.stop()
