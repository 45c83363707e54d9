"""Connection status and bottom-bar messages, as plain data (no urwid here)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dtask_common.models import Identity

MESSAGE_SECONDS = 6.0


class ConnState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    POLLING = "polling"
    RECONNECTING = "reconnecting"


@dataclass
class Connection:
    """Where the TUI is connected, as whom, and how well."""

    address: str
    state: ConnState = ConnState.CONNECTING
    identity: Identity | None = None
    error: str = ""
    since: float | None = None
    attempts: int = 0

    @property
    def can_act(self) -> bool:
        """False for a viewer certificate: state-changing actions are unavailable."""
        return self.identity is None or self.identity.role != "viewer"


@dataclass
class Message:
    """A short note in the bottom bar (action results, errors)."""

    text: str
    level: str = "info"  # info | error
    at: float = 0.0
