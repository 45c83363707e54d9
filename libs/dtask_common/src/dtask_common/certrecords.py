"""The CA's record of the certificates it issued and the list of revoked ones: JSON files, changed under a lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from dtask_common.models.certificates import Revoked as Revoked
from dtask_common.private import open_private, private_dir, write_private
from dtask_common.roles import Role

#: In the CA's directory: every certificate the CA signed.
ISSUED_FILE = "issued.json"
#: In the certificates' directory (which the controller reads): the revoked certificates.
REVOKED_FILE = "revoked.json"
SERIAL_CHARS = frozenset("0123456789abcdef")


class RecordError(Exception):
    """A record file that cannot be read or a target that names nothing; the message says what to do."""


@dataclass(frozen=True)
class Issued:
    """One certificate the CA signed."""

    serial: str
    role: str
    name: str
    not_after: float
    issued_at: float
    #: How: "init", "issue", "ensure" or "token ID".
    by: str


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock of path (through path.lock) for a read-change-write of it."""
    private_dir(path.parent)
    fd = open_private(path.with_name(path.name + ".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The list of objects a record file holds; [] when it does not exist."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON ({exc}): restore it from a backup or remove it") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise RecordError(f"{path} does not hold a list of records: restore it from a backup or remove it")
    return data


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the record file at once (a reader sees the old or the new list, never half of one)."""
    tmp = path.with_name(path.name + ".tmp")
    write_private(tmp, (json.dumps(rows, indent=1) + "\n").encode())
    os.replace(tmp, path)


def record_issued(ca_dir: Path, cert: x509.Certificate, role: Role, name: str, by: str) -> None:
    path = ca_dir / ISSUED_FILE
    row = Issued(
        serial=format(cert.serial_number, "x"),
        role=role.value,
        name=name,
        not_after=cert.not_valid_after_utc.timestamp(),
        issued_at=time.time(),
        by=by,
    )
    with locked(path):
        write_rows(path, [*read_rows(path), asdict(row)])


def issued(ca_dir: Path) -> list[Issued]:
    return [Issued(**_fields(r, Issued)) for r in read_rows(ca_dir / ISSUED_FILE)]


def revoked(certs_dir: Path) -> list[Revoked]:
    return [Revoked(**_fields(r, Revoked)) for r in read_rows(certs_dir / REVOKED_FILE)]


def _fields(row: dict[str, Any], kind: type[Any]) -> dict[str, Any]:
    names = kind.__dataclass_fields__
    missing = [n for n in names if n not in row]
    if missing:
        raise RecordError(f"a record lacks {', '.join(missing)}: {row}")
    return {n: row[n] for n in names}


def add_revoked(certs_dir: Path, entries: list[Revoked]) -> list[Revoked]:
    """Add entries to the revoked list (kept once per serial); the entries as now recorded."""
    path = certs_dir / REVOKED_FILE
    with locked(path):
        rows = read_rows(path)
        have = {r.get("serial"): r for r in rows}
        out = []
        for e in entries:
            if e.serial in have:
                out.append(Revoked(**_fields(have[e.serial], Revoked)))
                continue
            rows.append(asdict(e))
            have[e.serial] = rows[-1]
            out.append(e)
        write_rows(path, rows)
    return out


def is_serial(text: str) -> bool:
    return 0 < len(text) <= 40 and set(text) <= SERIAL_CHARS


def resolve(target: str, known: list[Issued], now: float | None = None) -> list[Revoked]:
    """What revoking target means: the certificates of ROLE/NAME or NAME in the issued record, or one serial.

    A serial not in the record is revoked as it is (role and name unknown)."""
    when = time.time() if now is None else now
    t = target.strip().lower() if is_serial(target.strip().lower()) else target.strip()
    if is_serial(t):
        for i in known:
            if i.serial == t:
                return [Revoked(i.serial, i.role, i.name, when)]
    role, _, name = t.rpartition("/")
    found = [i for i in known if i.name == name and (not role or i.role == role) and i.role != Role.CONTROLLER]
    if found:
        return [Revoked(i.serial, i.role, i.name, when) for i in found]
    if is_serial(t):
        return [Revoked(t, "", "", when)]
    raise RecordError(
        f"no certificate named {target!r} in the CA's record of issued certificates: "
        "see `dtask certs list`, or give the serial (`dtask certs show FILE` prints it)"
    )
