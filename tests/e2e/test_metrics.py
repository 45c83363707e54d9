"""Prometheus metrics of a real controller and runner: both scraped over HTTP while tasks run, parsed with
prometheus_client's parser, and the values checked against what ran. The runner's GPUs are a stand-in
nvidia-smi on its PATH (no GPU on this machine: the boundary the runner reads GPUs at)."""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_client.errors import DtaskError
from dtask_common.models import TaskState
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Proc, free_port_range, runner_proc, start_controller, start_dtask

METRICS_RE = r"metrics at http://(\S+)/metrics"
SMI = "#!/bin/sh\nprintf '0, Stand-in GPU A, 37, 1024, 4096\\n1, Stand-in GPU B, 80, 6144, 8192\\n'\n"


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at http://address/metrics: (sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def stand_in_gpus(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "smi-bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(SMI)
    smi.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.fixture
def cluster(home: Path, stand_in_gpus: dict[str, str]) -> Iterator[tuple[Proc, Proc, str, str]]:
    ctl = start_controller(home, "--metrics-address", "127.0.0.1:0")
    procs = [ctl]
    try:
        ctl_metrics = ctl.wait_for(METRICS_RE).group(1)
        lo, hi = free_port_range()
        runner = start_dtask(
            [
                "--set",
                "runner.reconnect_max_s=0.5",
                "runner",
                "--controller",
                ctl.address,
                "--name",
                "r1",
                "--host",
                "127.0.0.1",
                "--port-range",
                f"{lo}-{hi}",
                "--slots",
                "2",
                "--metrics-address",
                "0",  # no host: 127.0.0.1
            ],
            home,
            env=stand_in_gpus,
        )
        procs.append(runner)
        runner.wait_for("connected to controller .* as r1")
        runner_metrics = runner.wait_for(METRICS_RE).group(1)
        yield ctl, runner, ctl_metrics, runner_metrics
    finally:
        for p in reversed(procs):
            p.stop()


def test_controller_and_runner_metrics_while_tasks_run(home: Path, cluster: tuple[Proc, Proc, str, str]) -> None:
    ctl, _runner, ctl_metrics, runner_metrics = cluster
    assert ctl_metrics.startswith("127.0.0.1:") and runner_metrics.startswith("127.0.0.1:")
    watching = Controller(ctl.address, certs=home / "certs", timeout=10)
    with Controller(ctl.address, certs=home / "certs", timeout=10) as c:
        opened = threading.Event()

        def follow() -> None:
            with contextlib.suppress(DtaskError):  # ended when the test closes its client
                for _event in watching.watch(include_usage=False):
                    opened.set()

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        assert opened.wait(10)
        done = [c.add_task(command="true", name=f"ok{i}") for i in range(3)]
        done.append(c.add_task(command="exit 3", name="bad", max_retries=0))
        assert {t.state for t in c.wait(done, timeout=30)} == {TaskState.SUCCEEDED, TaskState.FAILED}
        long = c.add_task(command="echo started; exec sleep 60", name="long")
        first = next(iter(c.logs(long, follow=True)))  # its output came from the runner: it runs there
        assert b"started" in first

        m = scrape(ctl_metrics)
        assert value(m, "dtask_finishes_total", outcome="succeeded") == 3
        assert value(m, "dtask_finishes_total", outcome="failed") == 1
        assert value(m, "dtask_finishes_total", outcome="cancelled") == 0
        assert value(m, "dtask_dispatches_total") == 5
        assert value(m, "dtask_tasks", state="running") == 1
        assert value(m, "dtask_tasks", state="succeeded") == 3
        assert value(m, "dtask_tasks", state="failed") == 1
        assert value(m, "dtask_tasks", state="pending") == 0
        assert value(m, "dtask_executors", state="busy") == 1
        assert value(m, "dtask_executors", state="dead") == 0
        assert value(m, "dtask_watch_subscribers") >= 1  # ours (the follow of the logs may hold one too)
        assert value(m, "dtask_retries_total") == 0
        assert value(m, "dtask_lost_attempts_total") == 0
        assert value(m, "dtask_dispatch_latency_seconds_count") == 5
        assert value(m, "dtask_queue_wait_seconds_count") == 5
        assert value(m, "dtask_store_commit_seconds_count") > 5
        assert value(m, "dtask_queue_paused") == 0

        r = scrape(runner_metrics)
        assert value(r, "dtask_runner_running_attempts") == 1
        assert value(r, "dtask_runner_slots") == 2
        assert value(r, "dtask_runner_attempts_started_total") == 5
        assert value(r, "dtask_runner_attempts_finished_total", outcome="succeeded") == 3
        assert value(r, "dtask_runner_attempts_finished_total", outcome="failed") == 1
        assert value(r, "dtask_runner_gpu_utilization_percent", gpu="0") == 37
        assert value(r, "dtask_runner_gpu_utilization_percent", gpu="1") == 80
        assert value(r, "dtask_runner_gpu_memory_percent", gpu="0") == 25
        assert value(r, "dtask_runner_gpu_memory_used_bytes", gpu="1") == 6144 * 1024 * 1024
        assert value(r, "dtask_runner_gpu_memory_total_bytes", gpu="1") == 8192 * 1024 * 1024
        assert 0 <= value(r, "dtask_runner_cpu_percent") <= 100
        assert 0 < value(r, "dtask_runner_ram_used_bytes") <= value(r, "dtask_runner_ram_total_bytes")
        assert value(r, "dtask_runner_logs_removed_total") == 0

        c.cancel(long)
        c.wait([long], timeout=30)
        m = scrape(ctl_metrics)
        assert value(m, "dtask_finishes_total", outcome="cancelled") == 1
        assert value(m, "dtask_tasks", state="running") == 0
        watching.close()
        watcher.join(10)


def test_metrics_are_off_by_default_and_a_bad_address_is_one_line(home: Path) -> None:
    ctl = start_controller(home)
    try:
        assert not any("metrics at" in line for line in ctl.lines)
    finally:
        ctl.stop()
    bad = start_dtask(["controller", "--metrics-address", "127.0.0.1:http"], home, listen=False)
    assert bad.popen.wait(20) != 0
    assert "controller.metrics_address: metrics address '127.0.0.1:http' is not [host:]port" in "".join(bad.lines)
    busy = start_controller(home, "--metrics-address", "127.0.0.1:0")
    try:
        taken = busy.wait_for(METRICS_RE).group(1)
        other = home.parent / "other-home"
        other.mkdir()
        (other / "certs").symlink_to(home / "certs")
        lo, hi = free_port_range()
        second = start_dtask(
            ["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--metrics-address", taken]
            + ["--store", str(other / "c.db")],
            home,
            listen=False,
        )
        assert second.popen.wait(20) != 0
        assert f"cannot serve metrics on {taken}" in "".join(second.lines)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://{taken.replace('127.0.0.1', '127.0.0.2')}/metrics", timeout=2)
    finally:
        busy.stop()


def test_runner_metrics_address_alone_is_loopback(home: Path) -> None:
    ctl = start_controller(home)
    try:
        r = runner_proc(home, ctl.address, "r1", "--metrics-address", ":0")
        try:
            address = r.wait_for(METRICS_RE).group(1)
            assert address.startswith("127.0.0.1:")
            samples = scrape(address)
            assert value(samples, "dtask_runner_attempts_started_total") == 0
        finally:
            r.stop()
    finally:
        ctl.stop()
