"""The launcher with real processes: argv/shell, env/cwd, exits, signals, timeout, cancel, trees, volume."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from dtask_common.models import AttemptResult, Progress, TaskSpec, TaskState
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.execution import Execution
from dtask_runner.launcher import Launcher

from tests.integration.runner.helpers import survivors


class Recorder:
    """A sink that keeps what an execution reports."""

    def __init__(self) -> None:
        self.progress: list[Progress] = []
        self.outputs = 0

    def on_output(self, execution: Execution) -> None:
        self.outputs += 1

    def on_progress(self, execution: Execution, progress: Progress) -> None:
        self.progress.append(progress)


def run_async(tmp_path: Path, body: Callable[[Launcher], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        launcher = Launcher(tmp_path / "logs", tmp_path / "work", kill_grace_s=kw.pop("grace", 2.0), **kw)
        try:
            return await asyncio.wait_for(body(launcher), 60)
        finally:
            await launcher.close()

    return asyncio.run(main())


def run_one(tmp_path: Path, spec: TaskSpec, **kw: Any) -> tuple[AttemptResult, bytes, Recorder]:
    rec = Recorder()
    gpu_ids = kw.pop("gpu_ids", ())

    async def body(launcher: Launcher) -> tuple[AttemptResult, bytes]:
        e = launcher.start(AttemptRequest("t1", 1, spec, gpu_ids), rec)
        r = await e.done
        return r, e.log_path.read_bytes()

    result, log = run_async(tmp_path, body, **kw)
    return result, log, rec


def test_argv_without_a_shell(tmp_path: Path) -> None:
    r, log, _ = run_one(tmp_path, TaskSpec(argv=("printf", "%s|", "a b", "$HOME", "*")))
    assert r.state is TaskState.SUCCEEDED and r.exit_code == 0 and r.signal is None
    assert log == b"a b|$HOME|*|"
    assert r.finished_at is not None and r.started_at is not None and r.finished_at >= r.started_at


def test_shell_string_env_cwd_and_dtask_variables(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    spec = TaskSpec(
        shell='echo "$FOO|$(pwd)|$DTASK_TASK_ID|$DTASK_ATTEMPT|$CUDA_VISIBLE_DEVICES|$PATH_KEPT" > out.txt; '
        'echo "$DTASK_RESULT_FILE"',
        cwd=str(tmp_path / "here"),
        env={"FOO": "bar baz"},
    )
    r, log, _ = run_one(tmp_path, spec, gpu_ids=(0, 2), base_env={"PATH": os.environ["PATH"], "PATH_KEPT": "yes"})
    assert r.state is TaskState.SUCCEEDED
    assert (tmp_path / "here" / "out.txt").read_text().strip() == f"bar baz|{tmp_path / 'here'}|t1|1|0,2|yes"
    assert log.decode().strip().endswith(".result.json")


def test_gpus_hidden_when_none_assigned_on_a_gpu_runner(tmp_path: Path) -> None:
    r, log, _ = run_one(tmp_path, TaskSpec(shell='echo "[${CUDA_VISIBLE_DEVICES-unset}]"'), hide_gpus=True)
    assert log == b"[]\n"
    r, log, _ = run_one(
        tmp_path, TaskSpec(shell='echo "[${CUDA_VISIBLE_DEVICES-unset}]"'), base_env={"PATH": os.environ["PATH"]}
    )
    assert log == b"[unset]\n"


def test_exit_codes_and_error_line(tmp_path: Path) -> None:
    r, _, _ = run_one(tmp_path, TaskSpec(shell="echo 'ValueError: bad input' >&2; exit 3"))
    assert r.state is TaskState.FAILED and r.exit_code == 3 and r.error == "exit code 3: ValueError: bad input"
    r, _, _ = run_one(tmp_path, TaskSpec(argv=(sys.executable, "-c", "raise RuntimeError('boom')")))
    assert r.state is TaskState.FAILED and r.exit_code == 1 and r.error.endswith("RuntimeError: boom")
    # The original's rule: a RuntimeError line fails the attempt even with exit code 0.
    r, _, _ = run_one(tmp_path, TaskSpec(shell="echo 'RuntimeError: nan loss'; exit 0"))
    assert r.state is TaskState.FAILED and r.exit_code == 0 and r.error == "RuntimeError: nan loss"
    # No error-looking line: the last line of output says what went wrong.
    r, _, _ = run_one(tmp_path, TaskSpec(argv=(sys.executable, "no-such-script.py")))
    assert r.exit_code == 2 and r.error.startswith("exit code 2: ") and "can't open file" in r.error


def test_signal_death(tmp_path: Path) -> None:
    r, _, _ = run_one(
        tmp_path, TaskSpec(argv=(sys.executable, "-c", "import os,signal; os.kill(os.getpid(), signal.SIGSEGV)"))
    )
    assert r.state is TaskState.FAILED and r.signal == signal.SIGSEGV and r.exit_code is None
    assert "SIGSEGV" in r.error


def test_missing_executable_and_bad_cwd_fail_clearly(tmp_path: Path) -> None:
    r, log, _ = run_one(tmp_path, TaskSpec(argv=("no-such-program-xyz", "--help")))
    assert r.state is TaskState.FAILED and "no-such-program-xyz" in r.error and "not found" in r.error
    assert b"no-such-program-xyz" in log
    r, _, _ = run_one(tmp_path, TaskSpec(argv=("./missing.sh",)))
    assert r.state is TaskState.FAILED and "does not exist" in r.error
    r, _, _ = run_one(tmp_path, TaskSpec(shell="true", cwd="/no/such/dir"))
    assert r.state is TaskState.FAILED and "/no/such/dir" in r.error and "does not exist" in r.error
    script = tmp_path / "work" / "noexec.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/bin/sh\necho hi\n")
    r, _, _ = run_one(tmp_path, TaskSpec(argv=("./noexec.sh",)))
    assert r.state is TaskState.FAILED and "not executable" in r.error


def test_a_working_directory_that_is_missing_or_a_file_fails_the_attempt_saying_so(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for cwd in ("/no/such/dir", str(tmp_path / "a-file")):
        for spec in (TaskSpec(shell="true", cwd=cwd), TaskSpec(argv=("/bin/true",), cwd=cwd)):
            r, log, _ = run_one(tmp_path, spec)
            message = f"working directory {cwd!r} does not exist on this runner"
            assert (r.state, r.error, log) == (TaskState.FAILED, message, f"dtask: {message}\n".encode())


def _pids_in(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


TREE = "sleep 600 & echo $! > {pids}; sleep 600 & echo $! >> {pids}; echo $$ >> {pids}; echo started; wait"


async def _wait_started(e: Execution, needle: bytes = b"started") -> None:
    while not e.log_path.exists() or needle not in e.log_path.read_bytes():
        await asyncio.sleep(0.01)  # bounded by the test's wait_for


def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    t0 = time.monotonic()
    r, _, _ = run_one(tmp_path, TaskSpec(shell=TREE.format(pids=pids), timeout_s=0.5))
    assert r.state is TaskState.FAILED and "timed out after 0.5 s" in r.error
    assert time.monotonic() - t0 < 5
    assert len(_pids_in(pids)) == 3 and survivors(_pids_in(pids)) == []


def test_cancel_kills_background_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    async def body(launcher: Launcher) -> AttemptResult:
        e = launcher.start(
            AttemptRequest("t", 1, TaskSpec(shell="sh -c 'sleep 600 & sleep 600' & " + TREE.format(pids=pids))),
            Recorder(),
        )
        await _wait_started(e)
        e.cancel("operator asked")
        return await e.done

    r = run_async(tmp_path, body)
    assert r.state is TaskState.CANCELLED and r.error == "cancelled: operator asked"
    assert survivors(_pids_in(pids)) == []


def test_sigterm_ignored_then_sigkill_after_grace(tmp_path: Path) -> None:
    async def body(launcher: Launcher) -> tuple[AttemptResult, float]:
        e = launcher.start(AttemptRequest("t", 1, TaskSpec(shell="trap '' TERM; echo started; sleep 600")), Recorder())
        await _wait_started(e)
        t0 = time.monotonic()
        e.cancel("stop")
        r = await e.done
        return r, time.monotonic() - t0

    r, took = run_async(tmp_path, body, grace=0.5)
    assert r.state is TaskState.CANCELLED and 0.4 < took < 5


def test_leftover_background_process_is_killed_when_main_exits(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    r, _, _ = run_one(tmp_path, TaskSpec(shell=f"sleep 600 & echo $! > {pids}; echo bye"))
    assert r.state is TaskState.SUCCEEDED
    assert survivors(_pids_in(pids)) == []


def test_no_zombies_after_1000_short_tasks(tmp_path: Path) -> None:
    async def body(launcher: Launcher) -> list[AttemptResult]:
        out: list[AttemptResult] = []
        for batch in range(100):
            es = [
                launcher.start(AttemptRequest(f"z{batch}-{i}", 1, TaskSpec(argv=("true",))), Recorder())
                for i in range(10)
            ]
            out += await asyncio.gather(*(e.done for e in es))
        return out

    results = run_async(tmp_path, body)
    assert len(results) == 1000 and all(r.state is TaskState.SUCCEEDED for r in results)
    me = psutil.Process()
    zombies = [c for c in me.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == []
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) < 100  # no leaked pipes or pidfds


def test_200_mb_of_output_without_deadlock(tmp_path: Path) -> None:
    rec = Recorder()
    code = (
        "import sys\nline = (b'x' * 1023 + b'\\n') * 1024\n"
        "for i in range(100):\n    sys.stdout.buffer.write(line); sys.stderr.buffer.write(line)\n"
    )

    async def body(launcher: Launcher) -> tuple[AttemptResult, int, float]:
        t0 = time.monotonic()
        e = launcher.start(AttemptRequest("big", 1, TaskSpec(argv=(sys.executable, "-c", code))), rec)
        r = await e.done
        return r, e.written, time.monotonic() - t0

    r, written, took = run_async(tmp_path, body)
    assert r.state is TaskState.SUCCEEDED
    assert written == 200 * 1024 * 1024 == (tmp_path / "logs" / "big.1.log").stat().st_size
    assert took < 30


def test_invalid_utf8_and_nul_bytes_pass_through(tmp_path: Path) -> None:
    raw = b"\xff\xfe\x00ok\x00\xc3\x28\n\x80 tail"
    r, log, _ = run_one(
        tmp_path, TaskSpec(argv=(sys.executable, "-c", f"import sys; sys.stdout.buffer.write({raw!r})"))
    )
    assert r.state is TaskState.SUCCEEDED and log == raw


def test_progress_result_file_and_metrics(tmp_path: Path) -> None:
    code = (
        "import json, os\n"
        "from tqdm import tqdm\n"
        "for _ in tqdm(range(30), desc='train', mininterval=0): pass\n"
        "print('***** eval metrics *****')\nprint('  eval_loss = 0.25')\n"
    )
    r, _, rec = run_one(tmp_path, TaskSpec(argv=(sys.executable, "-c", code)))
    assert r.state is TaskState.SUCCEEDED and r.result == {"eval_loss": 0.25}
    assert rec.progress and rec.progress[-1].label == "train" and rec.progress[-1].step == 30
    assert rec.progress[-1].updated_at is not None
    code2 = "import json, os\njson.dump({'acc': 0.5}, open(os.environ['DTASK_RESULT_FILE'], 'w'))\nprint('x = 1')\n"
    r, _, _ = run_one(tmp_path, TaskSpec(argv=(sys.executable, "-c", code2)))
    assert r.result == {"acc": 0.5}


def test_a_flood_of_small_writes_is_parsed_for_progress_a_bounded_number_of_times(tmp_path: Path) -> None:
    # 8 MiB of random bytes in 4 KiB writes, 0.5 ms apart (the runner keeps up: a read per write), then a bar,
    # then 1 s of quiet: the parser runs at most every 50 ms or per MiB waiting (not once per read), and the bar
    # that waited is reported while the task sleeps.
    code = (
        "import os, random, sys, time\nr = random.Random(1)\n"
        "for _ in range(2048):\n    os.write(1, r.randbytes(4096)); time.sleep(0.0005)\n"
        "os.write(1, b'\\rtrain:  50%|#####     | 5/10 [00:01<00:01,  4.00it/s]')\n"
        "t = time.time(); time.sleep(1); print(t)\n"
    )
    seen: list[float] = []
    rec = Recorder()
    rec.on_progress = lambda e, p: (rec.progress.append(p), seen.append(time.time()))  # type: ignore[method-assign]

    async def body(launcher: Launcher) -> tuple[AttemptResult, Execution]:
        e = launcher.start(AttemptRequest("t1", 1, TaskSpec(argv=(sys.executable, "-c", code))), rec)
        return await e.done, e

    r, e = run_async(tmp_path, body)
    assert r.state is TaskState.SUCCEEDED and e.log_path.stat().st_size > 8 << 20
    last = rec.progress[-1]
    assert (last.label, last.step, last.total) == ("train", 5, 10)
    slept_at = float(e.log_path.read_bytes().rsplit(b"\r", 1)[1].split(b"]", 1)[1])
    assert seen[-1] < slept_at + 0.9  # reported while the task slept, not only when it ended
    reads = rec.outputs
    assert e._progress.parses <= 8 + (r.finished_at - r.started_at) / 0.05 + 4 < reads, (e._progress.parses, reads)


def test_peak_rss_and_cpu_time_of_the_tree(tmp_path: Path) -> None:
    # The peak is held for 1 s of wall time so that the tree sampling (0.05 s, 0.15 s, then every
    # 0.5 s) sees it: in this test process wait4's ru_maxrss cannot tell, because a child's
    # ru_maxrss starts at its parent's high-water mark and pytest's is high after the 200 MB test.
    code = (
        "import time\nb = bytearray(200 * 1024 * 1024)\nb[::4096] = b'x' * len(b[::4096])\n"
        "t = time.monotonic()\nwhile time.process_time() < 0.5 or time.monotonic() - t < 1.0: pass\n"
    )
    r, _, _ = run_one(tmp_path, TaskSpec(shell=f'{sys.executable} -c "{code}"'))
    assert r.state is TaskState.SUCCEEDED, r.error
    assert r.peak_rss_bytes > 150 * 1024 * 1024
    assert r.cpu_time_s > 0.3


def test_stdin_is_empty(tmp_path: Path) -> None:
    r, log, _ = run_one(tmp_path, TaskSpec(argv=("cat",), timeout_s=10))
    assert r.state is TaskState.SUCCEEDED and log == b""


def test_a_killed_watchdog_is_replaced(tmp_path: Path) -> None:
    async def body(launcher: Launcher) -> tuple[int, int]:
        assert launcher.watchdog is not None
        first = launcher.watchdog.pid
        os.kill(first, signal.SIGKILL)
        assert survivors([first]) == []
        r = await launcher.start(AttemptRequest("w", 1, TaskSpec(argv=("true",))), Recorder()).done
        assert r.state is TaskState.SUCCEEDED
        return first, launcher.watchdog.pid

    first, second = run_async(tmp_path, body)
    assert first != second
