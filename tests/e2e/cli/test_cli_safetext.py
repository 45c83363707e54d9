"""Strings from the controller printed by `dtask tasks` / `dtask task` with control and bidi characters
escaped (piped, against a real cluster); `dtask logs` stays byte-exact."""

from __future__ import annotations

import json
import os
import subprocess

from tests.e2e.cli.conftest import Dtask
from tests.integration.client.cluster import Cluster
from tests.support import BIN

NAME = "evil\x1b[2J\x1b]52;c;aGk=\x07\u202etxt"
SHOWN = "evil\\x1b[2J\\x1b]52;c;aGk=\\x07\\u202etxt"
# What a hostile task prints: clear screen, set the clipboard (OSC 52), a C1 CSI, reversed text.
OUTPUT = b"out \x1b[2J\x1b]52;c;aGk=\x07 \xc2\x9b6n \xe2\x80\xae reversed\n"
FORBIDDEN = {
    *map(chr, range(0x20)),
    "\x7f",
    *map(chr, range(0x80, 0xA0)),
    *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
} - {"\n"}


def raw_controls(text: str) -> set[str]:
    return FORBIDDEN & set(text)


def test_tasks_and_task_show_escapes_and_logs_stay_exact(dtask: Dtask, live: Cluster) -> None:
    command = r"printf 'out \033[2J\033]52;c;aGk=\007 \302\2336n \342\200\256 reversed\n'; exit 3"
    r = dtask("submit", "--name", NAME, "--tag", "tag\x1b[31m", "--env", "KEY\u202e=va\x1blue", "--", command)
    assert r.returncode == 0, r.stderr
    (tid,) = r.stdout.split()
    assert dtask("wait", tid).returncode == 1

    table = dtask("tasks", "--tag", "tag\x1b[31m")
    assert table.returncode == 0, table.stderr
    assert not raw_controls(table.stdout), repr(table.stdout)
    assert SHOWN in table.stdout
    assert "exit code 3: out \\x1b[2J\\x1b]52;c;aGk=\\x07 \\x9b6n \\u202e" in table.stdout  # the error, cut

    detail = dtask("task", tid)
    assert detail.returncode == 0, detail.stderr
    assert not raw_controls(detail.stdout), repr(detail.stdout)
    assert SHOWN in detail.stdout and "tag\\x1b[31m" in detail.stdout and "KEY\\u202e=va\\x1blue" in detail.stdout
    assert "\\x1b]52;c;aGk=\\x07 \\x9b6n \\u202e reversed" in detail.stdout

    data = json.loads(dtask("tasks", "--tag", "tag\x1b[31m", "--json").stdout)
    assert [d["name"] for d in data] == [NAME]  # JSON stays exact

    env = dict(os.environ, DTASK_HOME=str(live.home), DTASK_CONTROLLER=live.address)
    env.pop("DTASK_CONFIG", None)
    logs = subprocess.run([str(BIN / "dtask"), "logs", tid], env=env, capture_output=True, timeout=60)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == OUTPUT  # byte for byte, like cat
