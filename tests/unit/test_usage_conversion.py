"""Usage samples (a fleet sends one per runner a second) convert exactly as the field-by-field reference does, both
ways and inside Watch events, with any field set or not."""

from __future__ import annotations

from dtask.v1 import common_pb2 as cpb
from dtask_common import convert
from dtask_common import events as ev
from dtask_common import models as m
from dtask_common.convert.executors import _USAGE_FIELDS
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit import reference_usage as ref

floats = st.floats(allow_nan=False)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
times = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=4e9), st.integers(0, 2**32).map(float))
gpus = st.builds(
    m.GpuUsage,
    index=int32,
    name=st.text(max_size=8),
    util_percent=floats,
    memory_percent=floats,
    memory_total_bytes=int64,
)
attempts = st.builds(
    m.AttemptUsage,
    task_id=st.text(max_size=8),
    attempt=int32,
    cpu_percent=floats,
    rss_bytes=int64,
    gpu_memory_bytes=st.none() | int64,
    cpu_time_s=floats,
)
samples = st.builds(
    m.UsageSample,
    at=times,
    cpu_percent=floats,
    per_cpu_percent=st.lists(floats, max_size=4).map(tuple),
    ram_percent=floats,
    swap_percent=st.none() | floats,
    load_avg=st.lists(floats, max_size=3).map(tuple),
    gpus=st.lists(gpus, max_size=2).map(tuple),
    ram_total_bytes=int64,
    ram_used_bytes=int64,
    attempts=st.lists(attempts, max_size=2).map(tuple),
)
SAMPLE = m.UsageSample(at=1.5e9, cpu_percent=50.0, per_cpu_percent=(50.0, 50.0), ram_percent=30.0)


@settings(max_examples=300, deadline=None)
@example(SAMPLE)
@example(m.UsageSample(at=0.0, swap_percent=0.0, cpu_percent=-0.0))
@given(samples)
def test_usage_to_pb_agrees_with_reference(u: m.UsageSample) -> None:
    fast, slow = convert.usage_to_pb(u), ref.usage_to_pb(u)
    assert fast == slow
    assert fast.SerializeToString(deterministic=True) == slow.SerializeToString(deterministic=True)


@settings(max_examples=300, deadline=None)
@example(SAMPLE, set())
@example(SAMPLE, {"at", "swap_percent", "cpu_percent"})
@given(samples, st.sets(st.sampled_from(sorted(_USAGE_FIELDS))))
def test_usage_from_pb_agrees_with_reference(u: m.UsageSample, cleared: set[str]) -> None:
    """From messages as a runner may send them: any field left out (at, swap_percent included)."""
    msg = ref.usage_to_pb(u)
    for name in cleared:
        msg.ClearField(name)
    wire = cpb.UsageSample.FromString(msg.SerializeToString())
    assert convert.usage_from_pb(wire) == ref.usage_from_pb(wire)


@settings(max_examples=200, deadline=None)
@example(SAMPLE, 7, 1.5e9 + 0.25, False)
@given(samples, st.integers(0, 2**62), times, st.booleans())
def test_usage_event_to_pb_agrees_with_reference(u: m.UsageSample, seq: int, at: float, resync: bool) -> None:
    e = ev.WatchEvent(seq, at, ev.UsageEvent("r1", u), resync=resync)
    fast, slow = convert.event_to_pb(e), ref.usage_event_to_pb(e)
    assert fast == slow
    assert fast.SerializeToString(deterministic=True) == slow.SerializeToString(deterministic=True)


def test_every_usage_field_has_its_conversion() -> None:
    assert set(_USAGE_FIELDS) == {f.name for f in cpb.UsageSample.DESCRIPTOR.fields}
