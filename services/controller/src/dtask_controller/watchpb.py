"""Watch events converted to protobuf once per audience (operators; viewers, env values masked)."""

from __future__ import annotations

from dtask.v1 import controller_pb2 as pb
from dtask_common import convert, redact
from dtask_common import events as ev


class _Converted:
    """One published event and its messages, each built on first use."""

    __slots__ = ("event", "full", "masked")

    def __init__(self, event: ev.WatchEvent):
        self.event = event
        self.full: pb.WatchEvent | None = None
        self.masked: pb.WatchEvent | None = None


class ConvertedEvents:
    """The recent events' messages, shared by every watcher; a viewer's differs only where env is."""

    def __init__(self, keep: int = 1024):
        self.keep = keep
        self._recent: dict[int, _Converted] = {}
        # The last batch built for each audience: watchers woken by the same burst take the same events, and
        # the same message serves them all (it is never changed once built).
        self._last_batch: dict[bool, tuple[list[ev.WatchEvent], pb.WatchEvent]] = {}

    def _slot(self, event: ev.WatchEvent) -> _Converted:
        slot = self._recent.get(event.seq)
        if slot is None or slot.event is not event:
            slot = self._recent[event.seq] = _Converted(event)
            if len(self._recent) > self.keep:
                del self._recent[next(iter(self._recent))]
        return slot

    def get(self, event: ev.WatchEvent, masked: bool) -> pb.WatchEvent:
        """The message for event; masked: as a viewer may see it (snapshots: built each time)."""
        if isinstance(event.body, ev.Snapshot):
            return convert.event_to_pb(redact.hide_event(event) if masked else event)
        slot = self._slot(event)
        if masked:
            if slot.masked is None:
                hidden = redact.hide_event(event)  # the same object when there is nothing to hide
                slot.masked = self.get(event, False) if hidden is event else convert.event_to_pb(hidden)
            return slot.masked
        if slot.full is None:
            slot.full = convert.event_to_pb(event)
        return slot.full

    def batch(self, events: list[ev.WatchEvent], masked: bool) -> pb.WatchEvent:
        """Several events in one message, in order; it carries the sequence number and time of the last."""
        held = self._last_batch.get(masked)
        if held is not None and _same(held[0], events):
            return held[1]
        last = events[-1]
        out = pb.WatchEvent(seq=last.seq, at=convert.ts_to_pb(last.at))
        items = out.batch.events
        for e in events:
            if isinstance(e.body, ev.Snapshot):
                items.append(self.get(e, masked))
                continue
            slot = self._slot(e)
            built = slot.masked if masked else slot.full
            if built is not None:
                items.append(built)  # a copy: converted for another batch or watcher already
                continue
            hidden = redact.hide_event(e) if masked else e  # the same object when there is nothing to hide
            if hidden is e and slot.full is not None:  # a viewer's is the operators' message
                items.append(slot.full)
                slot.masked = slot.full
                continue
            # Converted straight into the batch (the usual case: a burst's events are new), and kept from there.
            target = items.add()
            convert.event_into_pb(target, hidden)
            if masked:
                slot.masked = target
            if hidden is e:
                slot.full = target
        self._last_batch[masked] = (events, out)
        return out


def _same(a: list[ev.WatchEvent], b: list[ev.WatchEvent]) -> bool:
    """The same published events, in the same order (each event is one object, shared by every watcher)."""
    return len(a) == len(b) and a[0] is b[0] and a[-1] is b[-1] and all(x is y for x, y in zip(a, b, strict=True))
