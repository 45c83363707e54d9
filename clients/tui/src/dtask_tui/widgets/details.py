"""Details panels: the focused task (with its live output tail) or executor (with usage charts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from dtask_common.models import ExecutorInfo, Task, TaskState, UsageSample

from dtask_tui.chart import number
from dtask_tui.format import (
    attempt_usage,
    chart,
    clip,
    clock,
    duration,
    fit,
    meter,
    pct,
    progress_bar,
    shown,
    size,
    sparkline,
    squeeze,
    stale_note,
    stamp,
)
from dtask_tui.live_metrics import sweep_name
from dtask_tui.state import Tab, TuiState
from dtask_tui.widgets.base import LinesBox, Markup
from dtask_tui.widgets.palette import EXECUTOR_ATTR, STATE_ATTR, level_attr

LABEL_W = 11


def kv(label: str, value: str, attr: str = "value") -> Markup:
    return [("label", fit(label, LABEL_W)), (attr, value)]


def wrap(text: str, width: int, attr: str, indent: int = 0, limit: int = 20) -> list[Markup]:
    """Hard-wrapped lines of text (at most limit lines)."""
    width = max(1, width - indent)
    out: list[Markup] = []
    for para in [shown(line) for line in text.splitlines()] or [""]:
        while True:
            out.append([("row", " " * indent), (attr, para[:width])])
            para = para[width:]
            if not para or len(out) >= limit:
                break
        if len(out) >= limit:
            break
    return out


class DetailsView(LinesBox):
    """The details of whatever the current tab has in focus."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state

    def lines(self, cols: int, rows: int) -> list[Markup]:
        st = self.state
        if st.tab is Tab.TASKS:
            task = st.focused_task()
            return task_lines(st, task, cols, rows) if task else [[("dim", " no task in focus")]]
        ex = st.focused_executor()
        return executor_lines(st, ex, cols, rows) if ex else [[("dim", " no executor in focus")]]


def task_lines(st: TuiState, t: Task, cols: int, rows: int) -> list[Markup]:
    """Task details: what it runs, where, progress, attempts, result, error, then the output tail."""
    attr = STATE_ATTR.get(t.state, "row")
    spec = t.spec
    out: list[Markup] = [[("title", clip(f" {t.name}", cols - len(t.id) - 3)), ("dim", f"  {t.id}")]]
    where = t.executor or "-"
    cur = t.current
    if cur is not None and cur.gpu_ids:
        where += "  GPUs " + ",".join(str(g) for g in cur.gpu_ids)
    out.append(kv("State", t.state.value, attr) + [("label", "   on "), ("value", where)])
    for i, line in enumerate(wrap(spec.command_text, cols - LABEL_W, "value", 0, 3)):
        out.append([("label", fit("Command" if i == 0 else "", LABEL_W)), *line[1:]])
    if spec.cwd:
        out.append(kv("Cwd", spec.cwd))
    r = spec.resources
    res = [
        f"cpus {r.cpus:g}" if r.cpus else "",
        f"mem {r.memory_mb} MB" if r.memory_mb else "",
        f"gpus {r.gpus}" if r.gpus else "",
    ]
    res_text = ", ".join(x for x in res if x) or "1 slot"
    labels = ", ".join(f"{k}={v}" for k, v in spec.labels.items())
    out.append(kv("Resources", res_text + (f"   labels {labels}" if labels else "")))
    if spec.tags:
        out.append(kv("Tags", ", ".join(spec.tags)))
    rules = []
    if spec.priority:
        rules.append(f"priority {spec.priority}")
    if spec.timeout_s:
        rules.append(f"timeout {duration(spec.timeout_s)}")
    if spec.max_retries:
        rules.append(f"retries {spec.max_retries}")
    if spec.depends_on:
        rules.append("after " + ", ".join(spec.depends_on))
    if rules:
        out.append(kv("Schedule", clip("   ".join(rules), cols - LABEL_W)))
    times = f"submitted {stamp(t.submitted_at)}"
    if t.dispatched_at:
        times += f"   started {stamp(t.dispatched_at)}"
    if t.finished_at:
        times += f"   finished {stamp(t.finished_at)}"
    out.append(kv("Times", times))
    elapsed = st.elapsed(t)
    if t.state is TaskState.RUNNING:
        p = t.progress
        bar_w = max(10, min(50, cols - LABEL_W - 2))
        out.append([("label", fit("Progress", LABEL_W)), *progress_bar(p, bar_w)])
        bits = []
        if p is not None and p.label:
            bits.append(p.label)
        bits.append(f"elapsed {duration(elapsed)}")
        if t.stale_since is not None:
            bits.append(f"{stale_note(t.stale_since, st.clock())}: executor {t.executor} out of touch")
        elif p is not None and p.eta_s is not None:
            bits.append(f"ETA {duration(p.eta_s)}")
        if p is not None and p.rate:
            bits.append(f"{p.rate:.3g}/s")
        out.append(kv("", "   ".join(bits)))
        if (u := t.usage) is not None:
            out.append(kv("Usage", attempt_usage(u.cpu_percent, u.rss_bytes, u.gpu_memory_bytes, u.cpu_time_s)))
    else:
        out.append(kv("Duration", duration(elapsed)))
    out += metric_lines(st, t, cols)
    if len(t.attempts) > 1 or spec.max_retries:
        out.append(kv("Attempts", f"{len(t.attempts)} of {spec.max_retries + 1}"))
        for a in t.attempts[-4:]:
            text = f"#{a.number} {a.state.value:<9} {a.executor or '-':<10} {duration(a.duration_s or None)}"
            if a.exit_code is not None:
                text += f" exit {a.exit_code}"
            if a.error:
                text += f"  {a.error}"
            out.append([("label", " " * LABEL_W), (STATE_ATTR.get(a.state, "row"), clip(text, cols - LABEL_W))])
    if t.result:
        out.append([("title", " Result")])
        keys = list(t.result)
        kw = min(24, max(len(k) for k in keys))
        for k in keys[:12]:
            v = t.result[k]
            text = v if isinstance(v, str) else json.dumps(v)
            out.append([("label", "  " + fit(k, kw)), ("row", "  "), ("ok", clip(text, cols - kw - 4))])
        if len(keys) > 12:
            out.append([("dim", f"  … {len(keys) - 12} more")])
    if t.error:
        out.append([("error", " Error")])
        out += wrap(t.error, cols, "error", 2, 6)
    out += output_tail(st, t, cols, rows - len(out))
    return out


def metric_lines(st: TuiState, t: Task, cols: int, most: int = 6) -> list[Markup]:
    """The current attempt's live metrics: one line each, a sparkline over time and the latest value."""
    series = st.metrics.of(t)
    names = series.names()
    if not names:
        return []
    keys = "  m: charts" + ("  M: the sweep on one chart" if sweep_name(t.name) else "")
    out: list[Markup] = [[("title", " Metrics"), ("dim", clip(keys, cols - 8))]]
    nw = min(16, max(len(shown(n)) for n in names))
    for name in names[:most]:
        points = series.series(name)
        values = [float(p.value) for p in points]
        last = number(points[-1].value)
        w = max(4, min(60, cols - nw - len(last) - 5))
        lo, hi = min(values), max(values)
        line = sparkline(squeeze(values, w), w, lo, hi if hi > lo else lo + 1.0)
        out.append([("label", "  " + fit(name, nw)), ("row", " "), ("chart0", line), ("value", " " + last)])
    if len(names) > most:
        out.append([("dim", f"  … {len(names) - most} more (m)")])
    return out


def output_tail(st: TuiState, t: Task, cols: int, room: int) -> list[Markup]:
    if room < 3:
        return []
    o = st.output
    title = " Output"
    if o is None or o.task_id != t.id:
        return [[("title", title), ("dim", "  (none yet)" if t.state is TaskState.PENDING else "")]]
    title += f" (attempt {o.attempt})" if o.attempt else ""
    note = "  following" if not o.done else ""
    if o.error:
        note = f"  {o.error}"
    lines = o.lines(room - 1)
    out: list[Markup] = [[("title", title), ("dim", note)]]
    out += [[("row", clip(line, cols))] for line in lines]
    return out


METRICS: list[tuple[str, Callable[[UsageSample], float | None]]] = [
    ("GPU", lambda s: s.gpu_percent),
    ("VMem", lambda s: s.vmem_percent),
    ("RAM", lambda s: s.ram_percent),
    ("Swap", lambda s: s.swap_percent),
    ("CPU", lambda s: s.cpu_percent),
]


def executor_lines(st: TuiState, ex: ExecutorInfo, cols: int, rows: int) -> list[Markup]:
    """Executor details: identity, capacity, GPUs, tasks, then history charts of usage."""
    attr = EXECUTOR_ATTR.get(ex.state, "row")
    cap = ex.capacity
    out: list[Markup] = [
        [
            ("title", f" {ex.name}"),
            ("row", "  "),
            (attr, ex.state.value),
            ("dim", f"  v{ex.version}" if ex.version else ""),
        ]
    ]
    now = st.clock()
    up = f" (up {duration(now - ex.connected_since)})" if ex.connected_since and not ex.dead else ""
    out.append(
        kv("Address", ex.address or "-") + [("label", "   connected "), ("value", stamp(ex.connected_since) + up)]
    )

    capacity = f"{cap.slots} slots"
    if cap.cpus:
        capacity += f", {cap.cpus:g} cpus"
    if cap.memory_mb:
        capacity += f", {cap.memory_mb} MB"
    if cap.gpus:
        capacity += f", GPUs {','.join(str(g) for g in cap.gpus)}"
    out.append(kv("Capacity", capacity))
    if ex.labels:
        out.append(kv("Labels", ", ".join(f"{k}={v}" for k, v in ex.labels.items())))
    tasks = st.executor_tasks(ex.name)
    names = ", ".join(f"{t.name} ({t.id})" for t in tasks) or "-"
    out.append(kv("Running", clip(names, cols - LABEL_W)))
    u = ex.last_usage
    if u is not None:
        extra = ""
        if u.ram_total_bytes:
            extra = f"   RAM {size(u.ram_used_bytes)}/{size(u.ram_total_bytes)}"
        if u.load_avg:
            extra += "   load " + " ".join(f"{x:.2f}" for x in u.load_avg)
        ago = f" ({duration(max(0.0, now - u.at))} ago)"
        out.append(kv("Sampled", clock(u.at, now) + ago + extra, "dead" if ex.dead else "value"))
        for g in u.gpus:
            mem = f" of {size(g.memory_total_bytes)}" if g.memory_total_bytes else ""
            out.append(
                [
                    ("label", fit(f"  GPU {g.index}", LABEL_W)),
                    (level_attr(g.util_percent), meter(g.util_percent, 10)),
                    (level_attr(g.util_percent), pct(g.util_percent, 5)),
                    ("label", " util  "),
                    (level_attr(g.memory_percent), meter(g.memory_percent, 10)),
                    (level_attr(g.memory_percent), pct(g.memory_percent, 5)),
                    ("label", f" mem{mem}  "),
                    ("dim", g.name),
                ]
            )
    history = list(st.usage.get(ex.name, ()))
    out += usage_charts(history, cols, rows - len(out))
    return out


def usage_charts(history: Sequence[UsageSample], cols: int, room: int) -> list[Markup]:
    """Charts (or sparklines when short of room) of the last samples of each metric."""
    metrics = [(n, f) for n, f in METRICS if any(f(s) is not None for s in history)] or METRICS[2:]
    if room < 2:
        return []
    width = max(8, min(len(history) or 1, 60, cols - 26))
    out: list[Markup] = [[("title", f" Usage, last {len(history)} samples")]]
    room -= 1
    per = room // max(1, len(metrics))
    for name, get in metrics:
        values = [get(s) for s in history]
        known = [v for v in values if v is not None]
        now = known[-1] if known else None
        stats = f"{pct(now, 4)}  max {pct(max(known) if known else None)}"
        if per >= 3:
            height = min(per - 1, 6)
            out.append([("label", fit(f"  {name}", 8)), (level_attr(now), stats)])
            for line in chart(values, width, height):
                out.append([("label", " " * 8), ("running", line)])
        else:
            out.append(
                [
                    ("label", fit(f"  {name}", 8)),
                    ("running", sparkline(values, width)),
                    ("row", " "),
                    (level_attr(now), stats),
                ]
            )
    return out
