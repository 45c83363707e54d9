"""Executors the controller knows: sessions, heartbeats, usage history and liveness (injected clock, no I/O)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dtask_common.models import Capacity, ExecutorInfo, ExecutorState, ExecutorUsage, UsageSample


@dataclass(slots=True)
class ExecutorRecord:
    """What the controller remembers of one executor."""

    name: str
    capacity: Capacity = Capacity()
    labels: dict[str, str] = field(default_factory=dict)
    address: str = ""
    version: str = ""
    protocol_version: int = 0
    containment: str = ""
    connected_since: float | None = None
    last_seen: float = 0.0
    disconnected_at: float = 0.0
    session: int = 0
    connected: bool = False
    drained: bool = False  # by an operator (kept across sessions and restarts)
    runner_draining: bool = False  # the runner said so itself
    dead: bool = False
    gone: bool = False
    usage: deque[UsageSample] = field(default_factory=deque)
    path_names: tuple[str, ...] = ()  # the paths the runner declares ({path:NAME})

    @property
    def draining(self) -> bool:
        return self.drained or self.runner_draining


class Registry:
    """Sessions and liveness: dead after dead_after_s without a message, gone after lost_after_s."""

    def __init__(self, dead_after_s: float, lost_after_s: float, history: int, clock: Callable[[], float]):
        self.dead_after_s = dead_after_s
        self.lost_after_s = lost_after_s
        self.history = max(1, history)
        self._clock = clock
        self._records: dict[str, ExecutorRecord] = {}
        self._next_session = 0

    def get(self, name: str) -> ExecutorRecord | None:
        return self._records.get(name)

    def names(self) -> list[str]:
        return sorted(self._records)

    def connect(
        self,
        name: str,
        *,
        capacity: Capacity,
        labels: Mapping[str, str],
        address: str,
        version: str,
        protocol_version: int,
        draining: bool,
        containment: str = "",
        path_names: tuple[str, ...] = (),
    ) -> tuple[int, bool]:
        """Register a session; returns (session token, whether an older session was replaced)."""
        now = self._clock()
        rec = self._records.get(name)
        replaced = bool(rec and rec.connected)
        if rec is None:
            rec = self._records[name] = ExecutorRecord(name, usage=deque(maxlen=self.history))
        self._next_session += 1
        rec.capacity, rec.labels, rec.address = capacity, dict(labels), address
        rec.version, rec.protocol_version, rec.containment = version, protocol_version, containment
        rec.connected_since, rec.last_seen, rec.session = now, now, self._next_session
        rec.connected, rec.dead, rec.gone = True, False, False
        rec.runner_draining = draining
        rec.path_names = tuple(path_names)
        return rec.session, replaced

    def restore(self, name: str) -> None:
        """An executor known from the store (controller restart): it has lost_after_s to reconnect."""
        if name not in self._records:
            now = self._clock()
            self._records[name] = ExecutorRecord(
                name, last_seen=now, disconnected_at=now, dead=True, usage=deque(maxlen=self.history)
            )

    def disconnect(self, name: str, session: int) -> bool:
        """The session ended; False when a newer session already replaced it."""
        rec = self._records.get(name)
        if rec is None or rec.session != session:
            return False
        rec.connected = False
        rec.disconnected_at = self._clock()
        return True

    def is_current(self, name: str, session: int) -> bool:
        rec = self._records.get(name)
        return bool(rec and rec.session == session and rec.connected)

    def forgive(self, seconds: float) -> None:
        """This controller stood still for `seconds` (paused, overloaded): that silence is not the executors'."""
        for rec in self._records.values():
            if not rec.gone:
                rec.last_seen += seconds
                if not rec.connected:
                    rec.disconnected_at += seconds

    def seen(self, name: str) -> bool:
        """A message arrived; returns True when the executor was dead and is alive again."""
        rec = self._records.get(name)
        if rec is None:
            return False
        rec.last_seen = self._clock()
        if rec.dead and not rec.gone:
            rec.dead = False
            return True
        return False

    def add_usage(self, name: str, sample: UsageSample) -> None:
        rec = self._records.get(name)
        if rec is not None:
            rec.usage.append(sample)

    def set_draining(self, name: str, draining: bool, *, by_runner: bool = False) -> bool:
        """Record an operator's (or the runner's own) drain; returns whether the executor drains now."""
        rec = self._records.get(name)
        if rec is None:
            return False
        if by_runner:
            rec.runner_draining = draining
        else:
            rec.drained = draining
        return rec.draining

    def draining(self, name: str) -> bool:
        rec = self._records.get(name)
        return bool(rec and rec.draining)

    def paths_wanting(self, names: frozenset[str]) -> str:
        """Why no executor in touch can take a task naming these runner paths ({path:NAME}); empty when one can."""
        live = [r for r in self._records.values() if r.connected and not r.dead]
        if any(names <= set(r.path_names) for r in live):
            return ""
        declared = {n for r in live for n in r.path_names}
        missing = sorted(names - declared)
        listed = ", ".join(missing or sorted(names))
        what = f"path{'s' if len(missing or names) > 1 else ''} {listed}"
        head = f"no runner declares {what}" if missing else f"no one runner declares all of the {what}"
        return f"waiting: {head} (a runner declares one with dtask runner --path NAME=DIR)"

    def out_of_touch(self, name: str) -> tuple[float, float] | None:
        """(since when, seconds) an executor has had no session (or a silent one, counted at half
        speed: a silent session is lost at twice the limit); None while it is in touch."""
        rec = self._records.get(name)
        if rec is None or rec.connected and not rec.dead:
            return None
        now = self._clock()
        if not rec.connected:
            return rec.disconnected_at, now - rec.disconnected_at
        return rec.last_seen, (now - rec.last_seen) / 2

    def check(self, keep_for: Mapping[str, float] | None = None) -> list[tuple[str, ExecutorState]]:
        """Liveness transitions since the last check: (name, DEAD) or (name, GONE). An executor is gone
        after lost_after_s out of touch, or keep_for[name] when longer (attempts there wait longer)."""
        now = self._clock()
        out: list[tuple[str, ExecutorState]] = []
        for rec in self._records.values():
            if rec.gone:
                continue
            silent = now - rec.last_seen
            no_session = now - rec.disconnected_at if not rec.connected else 0.0
            limit = max(self.lost_after_s, (keep_for or {}).get(rec.name, 0.0))
            # gone: no session for the limit (or a session silent for twice that long)
            if no_session >= limit or silent >= limit * 2:
                rec.dead = rec.gone = True
                rec.connected = False
                out.append((rec.name, ExecutorState.GONE))
            elif silent >= self.dead_after_s and not rec.dead:
                rec.dead = True
                out.append((rec.name, ExecutorState.DEAD))
        return out

    def state(self, name: str, load: int) -> ExecutorState:
        rec = self._records[name]
        if rec.gone:
            return ExecutorState.GONE
        if rec.dead or not rec.connected and self._clock() - rec.last_seen >= self.dead_after_s:
            return ExecutorState.DEAD
        if rec.draining:
            return ExecutorState.DRAINING
        return ExecutorState.BUSY if load > 0 else ExecutorState.IDLE

    def info(self, name: str, running_task_ids: tuple[str, ...]) -> ExecutorInfo:
        rec = self._records[name]
        return ExecutorInfo(
            name=rec.name,
            state=self.state(name, len(running_task_ids)),
            capacity=rec.capacity,
            labels=dict(rec.labels),
            address=rec.address,
            version=rec.version,
            protocol_version=rec.protocol_version,
            connected_since=rec.connected_since,
            last_seen=rec.last_seen or None,
            running_task_ids=running_task_ids,
            last_usage=rec.usage[-1] if rec.usage else None,
            containment=rec.containment,
        )

    def usage(self, name: str, history: int) -> ExecutorUsage:
        rec = self._records[name]
        samples = list(rec.usage)[-history:] if history > 0 else []
        return ExecutorUsage(
            executor=name,
            dead=rec.dead or rec.gone,
            latest=rec.usage[-1] if rec.usage else None,
            history=tuple(samples),
        )
