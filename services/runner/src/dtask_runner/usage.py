"""Machine resource usage: CPU, RAM, swap and load through psutil; GPUs through NVML or nvidia-smi."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from typing import Any, Protocol

import psutil
from dtask_common.models import GpuUsage, UsageSample

log = logging.getLogger(__name__)

SMI_TIMEOUT_S = 5.0


class GpuReadError(Exception):
    """The GPUs cannot be read (no driver, no library, a failing nvidia-smi); the message says why."""


class GpuReader(Protocol):
    """Reads every GPU of the machine."""

    name: str

    def read(self) -> list[GpuUsage]:
        """Every GPU's usage now; GpuReadError when they cannot be read."""
        ...


class NvmlReader:
    """GPUs through NVML (the nvidia-ml-py package)."""

    name = "nvml"

    def __init__(self) -> None:
        try:
            import pynvml  # type: ignore[import-not-found]
        except ImportError as exc:
            raise GpuReadError(f"NVML: the nvidia-ml-py package is not installed ({exc})") from exc
        self._nvml: Any = pynvml
        try:
            pynvml.nvmlInit()  # NVMLError_LibraryNotFound without a driver
            self._count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise GpuReadError(f"NVML: {exc}") from exc

    def read(self) -> list[GpuUsage]:
        nv = self._nvml
        out = []
        try:
            for i in range(self._count):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                util = nv.nvmlDeviceGetUtilizationRates(h)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                name = nv.nvmlDeviceGetName(h)
                out.append(
                    GpuUsage(
                        index=i,
                        name=name.decode() if isinstance(name, bytes) else str(name),
                        util_percent=float(util.gpu),
                        memory_percent=100.0 * mem.used / mem.total if mem.total else 0.0,
                        memory_total_bytes=int(mem.total),
                    )
                )
        except nv.NVMLError as exc:
            raise GpuReadError(f"NVML: {exc}") from exc
        return out

    def processes(self) -> dict[int, int]:
        """GPU memory held per process id, in bytes, over every GPU; GpuReadError when it cannot be read."""
        nv = self._nvml
        out: dict[int, int] = {}
        try:
            for i in range(self._count):
                for proc in nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(i)):
                    used = proc.usedGpuMemory or 0  # None where the driver does not say
                    out[int(proc.pid)] = out.get(int(proc.pid), 0) + int(used)
        except nv.NVMLError as exc:
            raise GpuReadError(f"NVML: {exc}") from exc
        return out


class SmiReader:
    """GPUs through `nvidia-smi --query-gpu`."""

    name = "nvidia-smi"

    def __init__(self, path: str):
        self._path = path
        self.read()  # raise now when it does not work

    def read(self) -> list[GpuUsage]:
        try:
            proc = subprocess.run(
                [
                    self._path,
                    "--query-gpu=index,name,utilization.gpu,memory.used,memory.total",
                    "--format=csv,noheader,nounits",
                ],
                capture_output=True,
                text=True,
                timeout=SMI_TIMEOUT_S,
                check=True,
            )
        except (OSError, subprocess.SubprocessError, UnicodeDecodeError) as exc:  # gone, failing, hung, garbled
            raise GpuReadError(f"{self._path}: {exc}") from exc
        return parse_smi(proc.stdout)

    def processes(self) -> dict[int, int]:
        """GPU memory held per process id, in bytes, over every GPU; GpuReadError when it cannot be read."""
        try:
            proc = subprocess.run(
                [self._path, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=SMI_TIMEOUT_S,
                check=True,
            )
        except (OSError, subprocess.SubprocessError, UnicodeDecodeError) as exc:
            raise GpuReadError(f"{self._path}: {exc}") from exc
        return parse_smi_apps(proc.stdout)


def parse_smi_apps(text: str) -> dict[int, int]:
    """GPU memory per pid, in bytes, from `nvidia-smi --query-compute-apps=pid,used_memory` (MiB; bad rows
    skipped; a process on several GPUs summed)."""
    out: dict[int, int] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            continue
        try:
            pid, used = int(parts[0]), _num(parts[1])
        except ValueError:
            continue
        out[pid] = out.get(pid, 0) + int(used * 1024 * 1024)
    return out


def parse_smi(text: str) -> list[GpuUsage]:
    """GpuUsage rows from nvidia-smi's `csv,noheader,nounits` output (bad rows skipped)."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        try:
            index, util, used, total = int(parts[0]), _num(parts[2]), _num(parts[3]), _num(parts[4])
        except ValueError:
            continue
        out.append(
            GpuUsage(
                index=index,
                name=parts[1],
                util_percent=util,
                memory_percent=100.0 * used / total if total else 0.0,
                memory_total_bytes=int(total * 1024 * 1024),
            )
        )
    return out


def _num(text: str) -> float:
    return 0.0 if text.startswith("[") else float(text)  # "[N/A]" on some boards


def open_gpu_reader() -> GpuReader | None:
    """NVML when it works, else nvidia-smi when it works, else None (a machine without GPUs is no error)."""
    try:
        return NvmlReader()
    except GpuReadError as exc:
        log.debug("no GPUs through NVML: %s", exc)
    path = shutil.which("nvidia-smi")
    if path:
        try:
            return SmiReader(path)
        except GpuReadError as exc:
            log.debug("no GPUs through nvidia-smi: %s", exc)
    return None


def detect_gpus(setting: str, reader: GpuReader | None) -> tuple[int, ...]:
    """GPU indexes to offer: `auto` (what the reader sees), `none`, or a list like `0,1`."""
    setting = (setting or "auto").strip().lower()
    if setting == "none" or setting == "":
        return ()
    if setting == "auto":
        if reader is None:
            return ()
        try:
            return tuple(g.index for g in reader.read())
        except GpuReadError as exc:
            log.debug("offering no GPUs: reading them through %s failed: %s", reader.name, exc)
            return ()
    try:
        indexes = tuple(sorted({int(x) for x in setting.split(",") if x.strip()}))
    except ValueError:
        raise ValueError(f"gpus must be auto, none or indexes like 0,1; got {setting!r}") from None
    if any(i < 0 for i in indexes):
        raise ValueError(f"GPU indexes must be >= 0; got {setting!r}")
    return indexes


class UsageSampler:
    """One call of sample() = one UsageSample (CPU percentages are since the previous call)."""

    def __init__(self, gpu_reader: GpuReader | None = None):
        self._gpu = gpu_reader
        #: GPU memory per process id at the latest sample; None when the reader cannot say.
        self.gpu_processes: dict[int, int] | None = None
        psutil.cpu_percent(percpu=True)  # start the measuring window

    def sample(self) -> UsageSample:
        per_cpu = tuple(float(x) for x in psutil.cpu_percent(percpu=True))
        vm = psutil.virtual_memory()
        swap = psutil.swap_memory()
        try:
            load = tuple(float(x) for x in os.getloadavg())
        except OSError:
            load = ()
        gpus: tuple[GpuUsage, ...] = ()
        if self._gpu is not None:
            try:
                gpus = tuple(self._gpu.read())
            except Exception as exc:  # GpuReadError, or a reader's bug: either way GPU usage stops, not sampling
                log.warning("reading GPUs through %s failed, GPU usage is off from now on: %s", self._gpu.name, exc)
                self._gpu = None
        self.gpu_processes = self._processes()
        return UsageSample(
            at=time.time(),
            cpu_percent=sum(per_cpu) / len(per_cpu) if per_cpu else 0.0,
            per_cpu_percent=per_cpu,
            ram_percent=float(vm.percent),
            swap_percent=float(swap.percent) if swap.total > 0 else None,
            load_avg=load,
            gpus=gpus,
            ram_total_bytes=int(vm.total),
            ram_used_bytes=int(vm.total - vm.available),
        )

    def _processes(self) -> dict[int, int] | None:
        """GPU memory per pid, when the reader can say (a stand-in without `processes` cannot)."""
        read = getattr(self._gpu, "processes", None)
        if read is None:
            return None
        try:
            return dict(read())
        except Exception as exc:  # GpuReadError, or a reader's bug: per-process GPU memory stops, not sampling
            log.warning("reading GPU memory per process failed: %s", exc)
            return None
