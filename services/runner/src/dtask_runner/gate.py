"""The gate an attempt's first process passes before it runs its task: into its cgroup, then the runner's word.

Python's subprocess cannot spawn into a cgroup (no CLONE_INTO_CGROUP), and a pid written into cgroup.procs after
Popen races with a task that forks at once (the child would stay in the runner's group). So the first process is a
shell that waits at a gate: it is put into the attempt's cgroup (it writes itself into cgroup.procs when the task
runs as the runner's user; else the runner writes its pid, as moving a process needs write access to the
cgroup.procs of the runner's group), then reads one line on stdin (a pipe from the runner), and only on "go" runs
the task with stdin from /dev/null. Any other line is the reason it could not be contained: the task then does not
run, and the gate exits 125 saying why.

A shell task (and any argv `/bin/sh -c SCRIPT ...`) passes the gate in its own shell: the gate is the first command
of the script's first line, so the script keeps its $0, its arguments and its line numbers, and no second shell is
started. Any other argv is exec'd by the gate's shell (`sh -c GATE dtask ARGV...`).
"""

from __future__ import annotations

import shlex

SH = "/bin/sh"
_FAIL = 'printf "error: %s\\n" "${dtask_gate:-the runner ended before the task started}" >&2; exit 125'


def _wait(procs: str) -> str:
    """Into the group (when procs is given: by the process itself), then read the runner's word into $dtask_gate."""
    if not procs:
        return "IFS= read -r dtask_gate; "
    group = procs.removesuffix("/cgroup.procs")
    return (
        f"if echo 0 >{shlex.quote(procs)}; then IFS= read -r dtask_gate; "
        f"else dtask_gate={shlex.quote(f'cannot put the task into its cgroup {group}')}; fi; "
    )


def inline_script(argv: list[str]) -> bool:
    """Whether argv is `/bin/sh -c SCRIPT [NAME ARGS...]`: a script that can pass the gate in its own shell."""
    return len(argv) >= 3 and argv[0] == SH and argv[1] == "-c"


def gated(argv: list[str], procs: str = "") -> list[str]:
    """The argv that runs argv behind the gate; procs: the cgroup.procs the process writes itself into ('': the
    runner puts it into its group)."""
    if inline_script(argv):
        gate = _wait(procs) + f'[ "$dtask_gate" = go ] || {{ {_FAIL}; }}; unset dtask_gate; exec </dev/null; '
        return [SH, "-c", gate + argv[2], *argv[3:]]
    return [SH, "-c", _wait(procs) + f'[ "$dtask_gate" = go ] && exec "$@" </dev/null; {_FAIL}', "dtask", *argv]
