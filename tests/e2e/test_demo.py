"""`make demo` without a terminal: controller, two runners, the sweep to its planned outcome, all stopped."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_make_demo_non_interactive(tmp_path: Path) -> None:
    env = dict(os.environ, DTASK_HOME=str(tmp_path / "home"))
    for k in ("DTASK_CONTROLLER", "DTASK_CONFIG", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(k, None)
    started = time.monotonic()
    r = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=140,
    )
    took = time.monotonic() - started
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert took < 120, f"make demo took {took:.0f} s"
    assert "demo: as planned: 5 tasks succeeded; train[model=cnn,lr=0.5] failed on purpose" in out
    table = [ln for ln in r.stdout.splitlines() if "train[" in ln and ln.split()[0].isdigit()]
    states = {ln.split()[1]: (ln.split()[2], ln.split()[3]) for ln in table}
    assert len(states) == 6
    assert states["train[model=cnn,lr=0.5]"] == ("failed", "2")  # retried once
    assert all(s == ("succeeded", "1") for n, s in states.items() if n != "train[model=cnn,lr=0.5]")
    # the closing results table: the sweep ranked by eval_accuracy, best first, the failed one last and blank
    out_lines = r.stdout.splitlines()
    at = next(i for i, ln in enumerate(out_lines) if ln.startswith("demo: the sweep ranked by its metric"))
    head = out_lines[at + 1].split()
    assert head[:3] == ["id", "model", "lr"] and {"epoch", "eval_accuracy", "eval_loss"} <= set(head)
    ranked = [ln.split() for ln in out_lines[at + 2 : at + 8]]
    acc = head.index("eval_accuracy")
    accuracies = [float(row[acc].rstrip("*")) for row in ranked[:5]]
    assert accuracies == sorted(accuracies, reverse=True) and ranked[0][acc].endswith("*")
    assert ranked[5][1:3] == ["cnn", "0.5"] and "failed" in ranked[5]
    assert all(row[head.index("epoch")] == "2" for row in ranked[:5])  # an int metric prints as an int
    assert "demo: stopped the controller and the runners" in out
    home = str(tmp_path / "home")
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline", "environ"])
        if "dtask" in " ".join(p.info["cmdline"] or []) and (p.info["environ"] or {}).get("DTASK_HOME") == home
    ]
    assert not leftovers, leftovers
