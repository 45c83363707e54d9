"""dtask-tui on a controller storing 1,000,000 tasks: time to the first full screen and the TUI's peak RSS.

The store is filled straight through SQLite before the controller starts (the controller's own migrations
make the schema; the rows go in with executemany): 96% succeeded, 2% failed, 1% cancelled, 1% pending.
The TUI runs headless in a process of its own (its app loop on asyncio, the screen rendered to text at
80x24, as the unit tests drive it), and is measured against two floors from the same run:
  - a bare client in a process of its own: WhoAmI + one ListTasks page of 500 + one screen rendered
    (its second run: the first warms the store's pages in the OS cache for both);
  - the same TUI against a controller storing 100 tasks.
"First full screen": the table shows rows, the counts and executors are the controller's and the Watch
answers (its snapshot's first piece; the rest of the snapshot, every unfinished task, is timed apart).
The TUI then pages down 5,000 rows, and its peak RSS is read after that.

Run: .venv/bin/python -m bench.tui_million_bench [--tasks 1000000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from tests.integration.tui.store_fill import fill_store
from tests.support import copy_certs, make_certs, start_controller

SIZE = (80, 24)
SCROLL_ROWS = 5000
TIMEOUT_S = 120.0


def peak_rss_mb() -> float:
    """This process's peak RSS since it started (VmHWM: ru_maxrss would keep the parent's from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


async def tui_child(address: str, certs: Path) -> dict[str, Any]:
    """The TUI's app loop until its first full screen, then a scroll of SCROLL_ROWS rows down."""
    from dtask_client import AsyncController
    from dtask_tui.app import TuiApp
    from dtask_tui.state import TuiState
    from dtask_tui.status import ConnState

    client = AsyncController(address, certs=certs)
    st = TuiState(address)
    app = TuiApp(client, st)
    app.render_text(SIZE)
    base = rss_mb()
    t0 = time.perf_counter()
    await app.start()
    first_rows = full = synced = None
    screen_text = ""
    deadline = t0 + TIMEOUT_S
    while synced is None:
        lines = app.render_text(SIZE)
        now = time.perf_counter() - t0
        if first_rows is None and st.view():
            first_rows = now
        # full: rows, the controller's counts and executors, the Watch answering (its snapshot's first piece)
        if full is None and st.view() and st.connection.state is ConnState.CONNECTED and (st.paged or st.synced):
            full, screen_text = now, "\n".join(lines)
        if st.synced:
            synced = now
        if time.perf_counter() > deadline:
            raise SystemExit(f"no full screen within {TIMEOUT_S:g}s")
        await asyncio.sleep(0.005)
    t1 = time.perf_counter()
    while st.first_row() + st.focus_index() < min(SCROLL_ROWS, st.view_total() - 1):
        app.keypress("page down")
        while app.pager.running or st.window.in_flight is not None:
            await asyncio.sleep(0.001)
        if time.perf_counter() > t1 + TIMEOUT_S:
            raise SystemExit("scrolling did not end")
    scroll = time.perf_counter() - t1
    out = {
        "first_rows_s": first_rows,
        "full_screen_s": full,
        "snapshot_in_s": synced,
        "scroll_s": scroll,
        "rows_scrolled": st.first_row() + st.focus_index(),
        "pages": app.pager.pages,
        "paged": st.paged,
        "held_tasks": len(st.tasks),
        "loaded_rows": len(st.window.ids) if st.paged else len(st.view()),
        "base_rss_mb": base,
        "peak_rss_mb": peak_rss_mb(),
        "screen": screen_text,
    }
    await app.stop()
    return out


async def floor_child(address: str, certs: Path) -> dict[str, Any]:
    """A bare client: WhoAmI, one ListTasks page of 500, one screen of it rendered."""
    from dtask_client import AsyncController
    from dtask_common.models import Identity
    from dtask_tui.app import TuiApp
    from dtask_tui.state import TuiState
    from dtask_tui.status import ConnState

    client = AsyncController(address, certs=certs)
    st = TuiState(address)
    app = TuiApp(client, st)
    app.render_text(SIZE)
    base = rss_mb()
    t0 = time.perf_counter()
    ident: Identity = await client.whoami()
    tasks, _token, _total = await client.task_page(page_size=500)
    st.set_connection(ConnState.CONNECTED, identity=ident)
    st.replace_all(tasks, [], [], None)
    app.render_text(SIZE)
    out = {"full_screen_s": time.perf_counter() - t0, "base_rss_mb": base, "peak_rss_mb": peak_rss_mb()}
    await client.close()
    return out


def child(kind: str, address: str, certs: Path) -> dict[str, Any]:
    """Run one measurement in a fresh process (its own RSS), return its figures."""
    cmd = [
        sys.executable,
        "-m",
        "bench.tui_million_bench",
        "--child",
        kind,
        "--address",
        address,
        "--certs",
        str(certs),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S * 3, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(root: Path, certs_template: Path, n: int, floor: bool) -> dict[str, Any]:
    """Fill a store with n tasks, start a controller on it, run the TUI (and the bare-client floor)."""
    home = copy_certs(certs_template, root / f"home-{n}")
    t0 = time.perf_counter()
    counts = fill_store(home / "controller.db", n)
    fill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ctl = start_controller(home)
    start_s = time.perf_counter() - t0
    try:
        out: dict[str, Any] = {"tasks": n, "fill_s": fill_s, "controller_start_s": start_s}
        out["counts"] = {s.value: c for s, c in counts.items()}
        if floor:  # twice: the first read of a store this size also warms the page cache for the TUI
            child("floor", ctl.address, home / "certs")
            out["floor"] = child("floor", ctl.address, home / "certs")
        out["tui"] = child("tui", ctl.address, home / "certs")
        return out
    finally:
        ctl.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100, help="tasks stored for the small-store floor")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=("tui", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = tui_child if args.child == "tui" else floor_child
        print(json.dumps(asyncio.run(run(args.address, args.certs))))
        return
    with tempfile.TemporaryDirectory(prefix="dtask-tui-bench-") as tmp:
        root = Path(tmp)
        certs_template = make_certs(root / "certs")
        small = measure(root, certs_template, args.small, floor=False)
        big = measure(root, certs_template, args.tasks, floor=True)
    report(big, small, args.json)


def report(big: dict[str, Any], small: dict[str, Any], as_json: bool) -> None:
    tui, floor, small_tui = big["tui"], big["floor"], small["tui"]
    figures = {
        "tasks": big["tasks"],
        "fill_s": round(big["fill_s"], 1),
        "controller_start_s": round(big["controller_start_s"], 2),
        "full_screen_s": round(tui["full_screen_s"], 3),
        "first_rows_s": round(tui["first_rows_s"], 3),
        "snapshot_in_s": round(tui["snapshot_in_s"], 3),
        "floor_bare_page_s": round(floor["full_screen_s"], 3),
        f"floor_tui_{small['tasks']}_tasks_s": round(small_tui["full_screen_s"], 3),
        "ratio_to_bare_page": round(tui["full_screen_s"] / floor["full_screen_s"], 2),
        "ratio_to_small_store": round(tui["full_screen_s"] / small_tui["full_screen_s"], 2),
        "peak_rss_mb": round(tui["peak_rss_mb"], 1),
        "base_rss_mb": round(tui["base_rss_mb"], 1),
        "floor_bare_peak_rss_mb": round(floor["peak_rss_mb"], 1),
        f"floor_tui_{small['tasks']}_tasks_peak_rss_mb": round(small_tui["peak_rss_mb"], 1),
        "rss_ratio_to_small_store": round(tui["peak_rss_mb"] / small_tui["peak_rss_mb"], 2),
        "scroll_rows": tui["rows_scrolled"],
        "scroll_s": round(tui["scroll_s"], 2),
        "pages": tui["pages"],
        "held_tasks": tui["held_tasks"],
        "loaded_rows": tui["loaded_rows"],
    }
    if as_json:
        print(json.dumps(figures))
        return
    n = big["tasks"]
    print(tui["screen"])
    print(
        f"store: {n:,} tasks filled through SQLite in {big['fill_s']:.1f} s; controller up in "
        f"{big['controller_start_s']:.2f} s"
    )
    print(
        f"first full screen: {tui['full_screen_s']:.3f} s (rows at {tui['first_rows_s']:.3f} s, the Watch "
        f"snapshot of every unfinished task in at {tui['snapshot_in_s']:.3f} s) | floors: "
        f"bare WhoAmI + ListTasks page + render {floor['full_screen_s']:.3f} s (ratio "
        f"{figures['ratio_to_bare_page']}), TUI with {small['tasks']} tasks stored "
        f"{small_tui['full_screen_s']:.3f} s (ratio {figures['ratio_to_small_store']}) | target <= 2 s"
    )
    print(
        f"TUI peak RSS: {tui['peak_rss_mb']:.1f} MB after paging {tui['rows_scrolled']:,} rows down "
        f"({tui['pages']} pages in {tui['scroll_s']:.2f} s; {tui['held_tasks']} tasks held, "
        f"{tui['loaded_rows']} rows loaded) | floors: TUI with {small['tasks']} tasks "
        f"{small_tui['peak_rss_mb']:.1f} MB (ratio {figures['rss_ratio_to_small_store']}), bare client "
        f"{floor['peak_rss_mb']:.1f} MB, the TUI process before connecting {tui['base_rss_mb']:.1f} MB"
    )


if __name__ == "__main__":
    main()
