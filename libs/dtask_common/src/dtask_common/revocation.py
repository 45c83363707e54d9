"""Revoked certificates as a server holds them: the serials it refuses, and the open streams it ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from dtask_common import certrecords
from dtask_common.certrecords import Revoked

#: Parsed certificates remembered (a PEM's serial); the memory is cleared when it is full.
SERIAL_CACHE = 1024


@dataclass(eq=False)
class OpenCall:
    """A stream in progress: its task, whether it is inside the handler now, and why it was cut off."""

    serial: str
    task: asyncio.Task[Any] | None
    inside: bool = False
    ended: str = ""


@dataclass(eq=False)
class Revocations:
    """The revoked list of certs_dir (revoked.json), reloaded when the file changes, and the open streams by serial;
    on_revoked hears of each certificate newly revoked (the controller tells its runners)."""

    certs_dir: Path
    on_revoked: Callable[[list[Revoked]], None] | None = None
    _revoked: dict[str, Revoked] = field(default_factory=dict)
    _stamp: tuple[int, int] | None = None
    _serials: dict[bytes, str] = field(default_factory=dict)
    _open: dict[str, set[OpenCall]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reload()

    @property
    def path(self) -> Path:
        return self.certs_dir / certrecords.REVOKED_FILE

    def reload(self) -> int:
        """Read the file again when it changed (another process revoked); end the newly revoked certificates'
        streams; how many were ended."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return 0
        rows = certrecords.revoked(self.certs_dir)
        self._stamp = stamp
        fresh = [r for r in rows if r.serial not in self._revoked]
        self._revoked = {r.serial: r for r in rows}
        self._told(fresh)
        return sum(self._end(r) for r in fresh)

    def revoke(self, entries: list[Revoked]) -> tuple[list[Revoked], int]:
        """Record entries in the file and end their streams: (the entries as recorded, streams ended)."""
        recorded = certrecords.add_revoked(self.certs_dir, entries)
        fresh = [r for r in recorded if r.serial not in self._revoked]
        for r in fresh:
            self._revoked[r.serial] = r
        self._told(fresh)
        return recorded, sum(self._end(r) for r in recorded)

    def known(self) -> tuple[Revoked, ...]:
        """Every certificate revoked, as loaded."""
        return tuple(self._revoked.values())

    def _told(self, fresh: list[Revoked]) -> None:
        if fresh and self.on_revoked is not None:
            self.on_revoked(fresh)

    def serial(self, context: Any) -> str:
        """The serial (hex) of the peer's certificate; '' when it showed none."""
        pem = context.auth_context().get("x509_pem_cert")
        if not pem:
            return ""
        raw = pem[0]
        got = self._serials.get(raw)
        if got is None:
            if len(self._serials) >= SERIAL_CACHE:
                self._serials.clear()
            try:
                got = format(x509.load_pem_x509_certificate(raw).serial_number, "x")
            except ValueError:
                got = ""
            self._serials[raw] = got
        return got

    def refusal(self, serial: str) -> str | None:
        """Why a call with this certificate is refused, or None."""
        r = self._revoked.get(serial)
        return None if r is None else message(r)

    def opened(self, serial: str) -> OpenCall:
        call = OpenCall(serial, asyncio.current_task())
        self._open.setdefault(serial, set()).add(call)
        return call

    def closed(self, call: OpenCall) -> None:
        calls = self._open.get(call.serial)
        if calls is not None:
            calls.discard(call)
            if not calls:
                del self._open[call.serial]

    def _end(self, r: Revoked) -> int:
        calls = list(self._open.get(r.serial, ()))
        for call in calls:
            call.ended = message(r)
            if call.inside and call.task is not None:
                call.task.cancel()  # the stream's wrapper turns this into the status
        return len(calls)


def message(r: Revoked) -> str:
    who = f"{r.role}/{r.name}" if r.role else "this certificate"
    when = dt.datetime.fromtimestamp(r.revoked_at, dt.UTC)
    return (
        f"certificate {r.serial} ({who}) was revoked on {when:%Y-%m-%d %H:%M} UTC: ask an operator for a new "
        "one (`dtask certs token`)"
    )
