"""systemd unit files for the controller and the runner (`--print-systemd-unit`, deploy/systemd/): text only."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: How long a stopping runner has to end its attempts itself before systemd kills what is left: more than
#: runner.kill_grace_s (10 s by default) between each attempt's SIGTERM and SIGKILL.
RUNNER_STOP_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class Unit:
    """What differs between the units: the service, its command line and where its files are."""

    service: str  # "controller" or "runner"
    exec_start: Sequence[str]
    home: str  # DTASK_HOME
    user: str = ""  # empty: root
    config: str = ""  # DTASK_CONFIG, when there is one


def _quote(arg: str) -> str:
    """One ExecStart word (systemd splits like a shell, and expands % specifiers: %% is a percent sign)."""
    return arg if arg.startswith("%") and len(arg) == 2 else shlex.quote(arg).replace("%", "%%")


def render(unit: Unit) -> str:
    """The unit file's text."""
    runner = unit.service == "runner"
    lines = [
        "[Unit]",
        f"Description=dtask {unit.service}" + (" %i" if runner and "%i" in unit.exec_start else ""),
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={' '.join(_quote(a) for a in unit.exec_start)}",
        f"Environment=DTASK_HOME={_quote(unit.home)}",
    ]
    if unit.config:
        lines.append(f"Environment=DTASK_CONFIG={_quote(unit.config)}")
    if unit.user:
        lines.append(f"User={unit.user}")
    lines += ["Restart=on-failure", "RestartSec=5"]
    if runner:
        lines += [
            "# SIGTERM goes to the runner alone: it stops each attempt (SIGTERM, then SIGKILL after",
            "# runner.kill_grace_s), records and reports them, and removes their cgroups. Whatever is left",
            "# after TimeoutStopSec is killed by systemd (KillMode=mixed), so nothing outlives the service.",
            "KillMode=mixed",
            f"TimeoutStopSec={RUNNER_STOP_TIMEOUT_S}",
            "# The runner makes a cgroup per attempt below its own (runner.containment = auto or cgroup).",
            "Delegate=yes",
        ]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def this_command(service: str, argv: Sequence[str] | None = None) -> list[str]:
    """The command line that started this process, as the unit's ExecStart: the installed dtask-SERVICE
    program by its absolute path and the same options, without --print-systemd-unit."""
    argv = list(sys.argv if argv is None else argv)
    args = [a for a in argv[1:] if a != "--print-systemd-unit"]
    if Path(argv[0]).name == "dtask" and service in args:
        args.remove(service)  # `dtask runner ...`: the options around the command word
    bin_dir = Path(sys.executable).parent
    for name, words in ((f"dtask-{service}", []), ("dtask", [service])):
        program = bin_dir / name
        found = str(program) if program.exists() else shutil.which(name)
        if found:
            return [str(Path(found).absolute()), *words, *args]
    return [str(bin_dir / f"dtask-{service}"), *args]


def unit_for(service: str, home: Path, config: str | None = None, argv: Sequence[str] | None = None) -> str:
    """The unit of this install: this command line, this DTASK_HOME and config file, this user (not root)."""
    user = ""
    if os.geteuid() != 0:
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
    config = config or os.environ.get("DTASK_CONFIG") or ""
    return render(
        Unit(
            service,
            this_command(service, argv),
            str(home.absolute()),
            user=user,
            config=str(Path(config).absolute()) if config else "",
        )
    )
