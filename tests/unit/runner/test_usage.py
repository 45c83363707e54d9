"""Per-attempt usage on the runner: CPU percent between samples, and GPU memory per process through a stand-in
nvidia-smi (no GPU on this machine: it prints what the real one prints for the compute-apps query)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from dtask_runner.footprint import Footprint
from dtask_runner.runner import Runner
from dtask_runner.usage import UsageSampler, open_gpu_reader, parse_smi_apps


def test_footprint_cpu_percent_between_samples() -> None:
    f = Footprint()
    f.sampled(100 << 20, 1.0, (10, 11), at=50.0)
    assert f.cpu_percent == 0.0 and f.rss == 100 << 20
    f.sampled(90 << 20, 1.5, (10,), at=51.0)
    assert f.cpu_percent == pytest.approx(50.0) and f.rss == 90 << 20 and f.peak_rss == 100 << 20 and f.pids == (10,)


def test_parse_smi_apps_sums_a_process_on_several_gpus() -> None:
    assert parse_smi_apps("4242, 1024\n4242, 512\n77, [N/A]\nbad\n") == {4242: 1536 << 20, 77: 0}


def test_attempt_gpu_memory_is_its_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\ncase \"$*\" in *--query-gpu*) printf '0, NVIDIA A100, 35, 1024, 40960\\n';;"
        " *--query-compute-apps*) printf '4242, 1024\\n5000, 2048\\n';; *) exit 9;; esac\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    sampler = UsageSampler(open_gpu_reader())
    sampler.sample()
    assert sampler.gpu_processes == {4242: 1 << 30, 5000: 2 << 30}
    f = Footprint()
    f.sampled(64 << 20, 2.0, (4242, 4243), at=1.0)
    runner = SimpleNamespace(launcher=SimpleNamespace(running={("7", 2): SimpleNamespace(footprint=f)}))
    (usage,) = Runner.attempt_usage(runner, sampler.gpu_processes)  # type: ignore[arg-type]
    assert (usage.task_id, usage.attempt, usage.rss_bytes, usage.gpu_memory_bytes) == ("7", 2, 64 << 20, 1 << 30)
    (usage,) = Runner.attempt_usage(runner, None)  # type: ignore[arg-type]
    assert usage.gpu_memory_bytes is None
