"""Watch messages per audience: a viewer's task env values masked, everything else shared with operators."""

from __future__ import annotations

from dtask_common import events as ev
from dtask_common.models import QueueStatus, Task, TaskSpec
from dtask_common.redact import HIDDEN, hide_env, hide_event
from dtask_controller.watchpb import ConvertedEvents


def task(env: dict[str, str]) -> Task:
    return Task("1", TaskSpec(name="t", shell="true", env=env))


def test_hide_env_keeps_keys_and_the_original() -> None:
    t = task({"TOKEN": "s3cret", "EMPTY": ""})
    hidden = hide_env(t)
    assert dict(hidden.spec.env) == {"TOKEN": HIDDEN, "EMPTY": HIDDEN}
    assert dict(t.spec.env) == {"TOKEN": "s3cret", "EMPTY": ""} and hidden.spec.shell == "true"
    plain = task({})
    assert hide_env(plain) is plain


def test_hide_event_over_every_body() -> None:
    secret = ev.WatchEvent(1, 0.0, ev.TaskEvent(ev.TaskEventKind.ADDED, task({"TOKEN": "s3cret"})))
    out = hide_event(secret)
    assert isinstance(out.body, ev.TaskEvent) and dict(out.body.task.spec.env) == {"TOKEN": HIDDEN}
    assert (out.seq, out.body.kind) == (1, ev.TaskEventKind.ADDED)
    snap = ev.WatchEvent(2, 0.0, ev.Snapshot(tasks=[task({}), task({"TOKEN": "s3cret"})]))
    shown = hide_event(snap)
    assert isinstance(shown.body, ev.Snapshot)
    assert [dict(t.spec.env) for t in shown.body.tasks] == [{}, {"TOKEN": HIDDEN}]
    for harmless in (
        ev.WatchEvent(3, 0.0, ev.QueueEvent(QueueStatus())),
        ev.WatchEvent(4, 0.0, ev.Snapshot(tasks=[task({})])),
        ev.WatchEvent(5, 0.0, ev.TaskEvent(ev.TaskEventKind.ADDED, task({}))),
    ):
        assert hide_event(harmless) is harmless


def test_each_event_converted_once_per_audience() -> None:
    cache = ConvertedEvents(keep=2)
    secret = ev.WatchEvent(1, 0.0, ev.TaskEvent(ev.TaskEventKind.ADDED, task({"TOKEN": "s3cret"})))
    full, masked = cache.get(secret, False), cache.get(secret, True)
    assert full.task.task.spec.env["TOKEN"] == "s3cret" and masked.task.task.spec.env["TOKEN"] == HIDDEN
    assert cache.get(secret, False) is full and cache.get(secret, True) is masked
    plain = ev.WatchEvent(2, 0.0, ev.QueueEvent(QueueStatus(pending=3)))
    assert cache.get(plain, True) is cache.get(plain, False)  # nothing to hide: one message for all
    snap = ev.WatchEvent(3, 0.0, ev.Snapshot(tasks=[task({"TOKEN": "s3cret"})]))
    assert cache.get(snap, True).snapshot.tasks[0].spec.env["TOKEN"] == HIDDEN
    assert cache.get(snap, False).snapshot.tasks[0].spec.env["TOKEN"] == "s3cret"
    for seq in (4, 5):
        cache.get(ev.WatchEvent(seq, 0.0, ev.QueueEvent(QueueStatus())), False)
    assert cache.get(secret, False) is not full  # only the last `keep` events are kept


def test_watchers_woken_by_one_burst_share_its_batch_message() -> None:
    cache = ConvertedEvents()
    burst = [ev.WatchEvent(seq, 0.0, ev.QueueEvent(QueueStatus(pending=seq))) for seq in range(1, 6)]
    secret = ev.WatchEvent(6, 0.0, ev.TaskEvent(ev.TaskEventKind.ADDED, task({"TOKEN": "s3cret"})))
    first = cache.batch([*burst, secret], False)
    assert [e.seq for e in first.batch.events] == [1, 2, 3, 4, 5, 6] and first.seq == 6
    assert cache.batch([*burst, secret], False) is first  # another watcher's list of the same events
    viewer = cache.batch([*burst, secret], True)
    assert viewer is not first and viewer.batch.events[-1].task.task.spec.env["TOKEN"] == HIDDEN
    assert cache.batch([*burst, secret], False) is first
    other = [burst[0], burst[2], burst[1], burst[3], burst[4], secret]  # same ends, another order
    assert [e.seq for e in cache.batch(other, False).batch.events] == [1, 3, 2, 4, 5, 6]
    rebuilt = [ev.WatchEvent(e.seq, e.at, e.body) for e in burst]  # equal, but not the published objects
    assert cache.batch(rebuilt, False) is not first


def test_the_servicer_converts_tasks_and_events_in_one_place() -> None:
    import inspect

    from dtask_controller import servicer

    source = inspect.getsource(servicer)
    assert source.count("convert.task_to_pb(") == 1  # in task_pb, which masks for viewers
    assert "event_to_pb" not in source and "snapshot_to_pb" not in source  # ConvertedEvents does it


def test_a_batch_holds_each_event_as_converted_alone_and_keeps_it() -> None:
    """Events converted straight into a batch are the messages convert.event_to_pb makes, per audience, and are
    kept: another watcher's batch (or a lone send) of them copies them instead of converting again."""
    from dtask_common import convert
    from dtask_common.models import UsageSample

    usage = [
        ev.WatchEvent(
            seq,
            1.5e9 + seq,
            ev.UsageEvent(f"r{seq}", UsageSample(at=1.5e9, cpu_percent=seq, per_cpu_percent=(1.0, 2.0))),
        )
        for seq in range(1, 4)
    ]
    secret = ev.WatchEvent(4, 2.0, ev.TaskEvent(ev.TaskEventKind.ADDED, task({"TOKEN": "s3cret"})), resync=True)
    events = [*usage, secret]
    for first in (True, False):  # viewers' batch first, then operators', and the other way round
        cache = ConvertedEvents()
        for masked in (first, not first):
            out = cache.batch(events, masked)
            expected = [convert.event_to_pb(hide_event(e) if masked else e) for e in events]
            assert list(out.batch.events) == expected
            assert (out.seq, out.at) == (4, convert.ts_to_pb(2.0))
            for e, msg in zip(events, expected, strict=True):
                assert cache.get(e, masked) == msg
                assert cache.get(e, masked) is cache.get(e, masked)  # kept, not converted again
        assert cache.get(usage[0], True) is cache.get(usage[0], False)  # nothing to hide: one message for all
        assert cache.get(secret, True).task.task.spec.env["TOKEN"] == HIDDEN
        assert cache.get(secret, False).task.task.spec.env["TOKEN"] == "s3cret"
    again = ConvertedEvents()
    again.get(usage[1], False)
    assert list(again.batch(usage, False).batch.events) == [convert.event_to_pb(e) for e in usage]
