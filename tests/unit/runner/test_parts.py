"""Pure and local parts of the runner: throttle, log creation, backoff, GPU settings, nvidia-smi parsing, usage, store."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest
from dtask_common.models import AttemptResult, OutputChunk, TaskState
from dtask_runner.attempt_log import SLOW_S, THREADED_AFTER_SLOW, LogCreation
from dtask_runner.controller_session import backoff_delays
from dtask_runner.journal import ResultJournal
from dtask_runner.output import OutputPump, Throttle
from dtask_runner.usage import UsageSampler, detect_gpus, parse_smi


def test_throttle_latest_wins() -> None:
    t = Throttle(0.2)
    assert t.offer(10.0, "a") == 0
    assert t.take(10.0) == "a"
    assert t.offer(10.05, "b") == pytest.approx(0.15)
    assert t.offer(10.1, "c") == pytest.approx(0.1)
    assert t.take(10.2) == "c" and t.take(10.2) is None


def test_backoff_grows_with_jitter_and_caps() -> None:
    gen = backoff_delays(0.2, 5.0, rng=lambda: 1.0)
    assert [round(next(gen), 3) for _ in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    low = backoff_delays(0.2, 5.0, rng=lambda: 0.0)
    assert [round(next(low), 3) for _ in range(3)] == [0.1, 0.2, 0.4]


def test_detect_gpus() -> None:
    assert detect_gpus("0,1", None) == (0, 1)
    assert detect_gpus("none", None) == ()
    assert detect_gpus("auto", None) == ()
    with pytest.raises(ValueError):
        detect_gpus("zero", None)


def test_parse_smi() -> None:
    rows = parse_smi("0, NVIDIA A100-SXM4-40GB, 87, 20480, 40960\n1, Tesla T4, [N/A], 0, 15360\nbad line\n")
    assert [(g.index, g.util_percent, g.memory_percent) for g in rows] == [(0, 87.0, 50.0), (1, 0.0, 0.0)]
    assert rows[0].memory_total_bytes == 40960 * 1024 * 1024 and rows[1].name == "Tesla T4"


def test_usage_sample_without_gpus() -> None:
    s = UsageSampler(None).sample()
    assert s.per_cpu_percent and 0 <= s.cpu_percent <= 100 and 0 < s.ram_percent <= 100
    assert s.gpus == () and len(s.load_avg) == 3 and s.ram_total_bytes > 0
    import psutil

    assert (s.swap_percent is None) == (psutil.swap_memory().total == 0)


def test_store_survives_restart_and_forgets_on_ack(tmp_path: Path) -> None:
    store = ResultJournal(tmp_path, fsync=False)
    r = AttemptResult(
        "7",
        2,
        TaskState.FAILED,
        exit_code=3,
        result={"a": [1, 2]},
        error="x",
        started_at=1.0,
        finished_at=2.0,
        peak_rss_bytes=10,
        cpu_time_s=0.5,
    )
    store.put(r)
    (tmp_path / "junk.json").write_text("{not json")
    again = ResultJournal(tmp_path)
    assert again.pending() == [r]
    assert again.ack("7", 2) and not again.ack("7", 2)
    assert ResultJournal(tmp_path).pending() == []


def test_store_journal_takes_over_old_files_skips_a_cut_line_and_compacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from dtask_runner import journal as st

    old = AttemptResult("old", 1, TaskState.SUCCEEDED, finished_at=1.0)
    (tmp_path / "old.1.json").write_text(json.dumps(st.result_to_json(old)))  # an earlier version's file
    store = ResultJournal(tmp_path)
    assert store.pending() == [old] and not (tmp_path / "old.1.json").exists()
    r = AttemptResult("a", 1, TaskState.SUCCEEDED, finished_at=2.0)
    store.put(r)
    with open(tmp_path / st.JOURNAL, "ab") as f:
        f.write(b'{"put":{"task_id":"cut"')  # killed in the middle of a write: never reported
    again = ResultJournal(tmp_path)
    assert again.pending() == [old, r]
    monkeypatch.setattr(st, "COMPACT_BYTES", 2000)
    for i in range(40):
        again.put(AttemptResult(f"t{i}", 1, TaskState.SUCCEEDED, finished_at=3.0))
        assert again.ack(f"t{i}", 1)
    assert (tmp_path / st.JOURNAL).stat().st_size < 2400  # rewritten as it grew
    assert ResultJournal(tmp_path).pending() == [old, r]
    for _ in range(20):
        again.put(AttemptResult("b", 1, TaskState.FAILED, finished_at=4.0))
        again.ack("b", 1)
    assert again.ack("old", 1) and again.ack("a", 1)
    assert ResultJournal(tmp_path).pending() == []


def test_output_pump_coalesces_in_order(tmp_path: Path) -> None:
    async def main() -> list[OutputChunk]:
        log = tmp_path / "a.log"
        sent: list[OutputChunk] = []

        async def send(c: OutputChunk) -> None:
            sent.append(c)

        pump = OutputPump(log, "t", 1, send, max_chunk=1000, flush_after_s=0.05)
        data = b""
        with log.open("wb") as f:
            for i in range(300):
                piece = f"line {i}\n".encode()
                f.write(piece)
                f.flush()
                data += piece
                pump.notify(len(data))
                if i % 50 == 0:
                    await asyncio.sleep(0)
        await asyncio.wait_for(pump.finish(len(data)), 5)
        assert b"".join(c.data for c in sent) == data
        return sent

    sent = asyncio.run(main())
    offsets = [c.offset for c in sent]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert all(len(c.data) <= 1000 for c in sent)
    assert len(sent) < 20  # coalesced, not one message per line


def test_output_pump_under_a_flood_sends_what_the_controller_keeps_and_ends_with_the_whole_tail(
    tmp_path: Path,
) -> None:
    """A task writing far faster than the pump sends: bytes that would fall out of the controller's tail at once are
    skipped, the pump paces itself (one tail per flush interval), and the tail of the log arrives whole at the end."""
    keep, chunk, total = 4096, 1024, 4 * 1024 * 1024

    async def main() -> tuple[list[OutputChunk], OutputPump, bytes]:
        log = tmp_path / "flood.log"
        sent: list[OutputChunk] = []

        async def send(c: OutputChunk) -> None:
            sent.append(c)
            await asyncio.sleep(0)

        pump = OutputPump(log, "t", 1, send, max_chunk=chunk, flush_after_s=0.01, keep=lambda: keep)
        data = bytes(range(256)) * (total // 256)
        with log.open("wb") as f:
            for i in range(0, total, 64 * 1024):  # 64 KiB writes, the pump told after each
                f.write(data[i : i + 64 * 1024])
                f.flush()
                pump.notify(i + 64 * 1024)
                await asyncio.sleep(0)
        await asyncio.wait_for(pump.finish(total), 5)
        return sent, pump, data

    sent, pump, data = asyncio.run(main())
    offsets = [c.offset for c in sent]
    assert offsets == sorted(offsets)
    for c in sent:  # every chunk holds the log's bytes at its offset
        assert c.data == data[c.offset : c.offset + len(c.data)]
    assert sent[-1].offset + len(sent[-1].data) == total
    assert b"".join(c.data for c in sent)[-keep:] == data[-keep:]  # the tail, whole and in order
    assert sum(len(c.data) for c in sent) < total // 8  # most of the flood was never sent
    assert pump.skipped > total // 2 and pump.sent == total


def test_output_pump_told_no_tail_sends_every_byte(tmp_path: Path) -> None:
    async def main() -> tuple[list[OutputChunk], bytes]:
        log = tmp_path / "all.log"
        data = b"x" * (256 * 1024)
        log.write_bytes(data)
        sent: list[OutputChunk] = []

        async def send(c: OutputChunk) -> None:
            sent.append(c)

        pump = OutputPump(log, "t", 1, send, max_chunk=1024, flush_after_s=0.01)  # keep: 0, an older controller
        await asyncio.wait_for(pump.finish(len(data)), 5)
        return sent, data

    sent, data = asyncio.run(main())
    assert b"".join(c.data for c in sent) == data


def test_gpus_through_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU on this machine: a stand-in nvidia-smi prints what the real one prints for the query.
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        '#!/bin/sh\ncase "$*" in *--query-gpu*) printf \'0, NVIDIA A100, 35, 1024, 40960\\n'
        "1, NVIDIA A100, 90, 30720, 40960\\n';; *) exit 9;; esac\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    from dtask_runner.usage import open_gpu_reader

    reader = open_gpu_reader()
    assert reader is not None and reader.name == "nvidia-smi"
    assert detect_gpus("auto", reader) == (0, 1)
    sample = UsageSampler(reader).sample()
    assert [(g.index, g.util_percent, g.memory_percent) for g in sample.gpus] == [(0, 35.0, 2.5), (1, 90.0, 75.0)]
    assert sample.gpu_percent == pytest.approx(62.5)
    smi.write_text("#!/bin/sh\nexit 3\n")  # the driver goes away: GPU entries disappear, sampling goes on
    assert UsageSampler(reader).sample().gpus == ()


def test_no_gpu_library_and_a_failing_nvidia_smi_is_no_gpu_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2; exit 9\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed
    from dtask_runner.usage import SmiReader, open_gpu_reader

    with caplog.at_level(logging.DEBUG, "dtask_runner.usage"):
        assert open_gpu_reader() is None
    assert "no GPUs through NVML: NVML: the nvidia-ml-py package is not installed" in caplog.text
    assert f"no GPUs through nvidia-smi: {smi}: Command" in caplog.text and "exit status 9" in caplog.text
    smi.write_text("#!/bin/sh\nprintf '0, GPU, 1, 2, 4\\n'\n")
    reader = SmiReader(str(smi))
    smi.write_text("#!/bin/sh\nexit 3\n")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, "dtask_runner.usage"):
        assert detect_gpus("auto", reader) == ()
    assert "offering no GPUs: reading them through nvidia-smi failed" in caplog.text


def test_logs_are_created_on_the_loop_until_a_create_is_slow_then_in_a_thread_for_a_while() -> None:
    creation = LogCreation()
    assert creation.inline()
    creation.took(SLOW_S / 2)
    assert creation.inline()
    creation.took(SLOW_S * 3)
    assert [creation.inline() for _ in range(THREADED_AFTER_SLOW + 1)] == [False] * THREADED_AFTER_SLOW + [True]
