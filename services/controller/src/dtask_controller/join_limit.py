"""How many join attempts the controller takes: per caller address and in all, per minute (pure, no clock)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 60.0
PER_PEER = 20
TOTAL = 120
#: Addresses remembered at most (the oldest are forgotten first).
MAX_PEERS = 4096


@dataclass
class JoinLimiter:
    """A sliding window of attempts: at most per_peer from one address and total from all in window_s."""

    per_peer: int = PER_PEER
    total: int = TOTAL
    window_s: float = WINDOW_S
    _all: deque[float] = field(default_factory=deque)
    _peers: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, peer: str, now: float) -> bool:
        """Count an attempt from peer at now, unless it goes over a bound (then it is not counted)."""
        _expire(self._all, now - self.window_s)
        mine = self._peers.get(peer)
        if mine is not None:
            _expire(mine, now - self.window_s)
        if len(self._all) >= self.total or (mine is not None and len(mine) >= self.per_peer):
            return False
        if mine is None:
            if len(self._peers) >= MAX_PEERS:
                self._peers = {p: q for p, q in self._peers.items() if q and q[-1] > now - self.window_s}
                if len(self._peers) >= MAX_PEERS:
                    self._peers.pop(next(iter(self._peers)))
            mine = self._peers[peer] = deque()
        mine.append(now)
        self._all.append(now)
        return True


def _expire(q: deque[float], before: float) -> None:
    while q and q[0] <= before:
        q.popleft()


def peer_host(peer: str) -> str:
    """The address of a gRPC peer string (ipv4:1.2.3.4:5678, ipv6:[::1]:5678) without its port."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return peer
