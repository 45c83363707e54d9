"""A real controller and runner over mutual TLS on 127.0.0.1, shared by client and CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dtask_client import Controller
from dtask_common.events import ExecutorEvent, Snapshot

from tests.support import Proc, copy_certs, free_port_range, start_controller, start_dtask


@dataclass
class Cluster:
    home: Path
    controller: Proc
    runners: list[Proc]

    @property
    def address(self) -> str:
        return self.controller.address

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    def client(self, stem: str = "operator", **kw: object) -> Controller:
        return Controller(self.address, certs=self.certs, cert=self.certs / f"{stem}.crt", **kw)  # type: ignore[arg-type]


def start_runner(home: Path, address: str, name: str, slots: int = 2, *extra: str) -> Proc:
    lo, hi = free_port_range()
    return start_dtask(
        [
            "runner",
            "--controller",
            address,
            "--name",
            name,
            "--slots",
            str(slots),
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            "--gpus",
            "none",
            *extra,
        ],
        home,
    )


def wait_for_executors(address: str, certs: Path, names: set[str], timeout: float = 20.0) -> None:
    """Follow the Watch stream until every named executor is up (event-driven)."""
    seen: set[str] = set()
    with Controller(address, certs=certs) as c:
        for event in c.watch(include_usage=False, include_progress=False, timeout=timeout):
            body = event.body
            if isinstance(body, Snapshot):
                seen |= {e.name for e in body.executors if not e.dead}
            elif isinstance(body, ExecutorEvent) and not body.executor.dead:
                seen.add(body.executor.name)
            if names <= seen:
                return
    raise TimeoutError(f"executors {names - seen} never came up within {timeout} s")


@contextmanager
def cluster(base: Path, certs_template: Path, runners: tuple[str, ...] = ("r1",), slots: int = 2) -> Iterator[Cluster]:
    home = copy_certs(certs_template, base / "home")
    ctl = start_controller(home, port_range=free_port_range())
    procs: list[Proc] = []
    try:
        for name in runners:
            procs.append(start_runner(home, ctl.address, name, slots))
        wait_for_executors(ctl.address, home / "certs", set(runners))
        yield Cluster(home, ctl, procs)
    finally:
        for p in procs:
            p.stop()
        ctl.stop()
