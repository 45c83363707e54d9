"""A revoked certificate as the controller records it and tells its runners."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Revoked:
    """One revoked certificate."""

    serial: str
    role: str
    name: str
    revoked_at: float
