"""The Executors tab: one row per runner with usage figures and per-core CPU."""

from __future__ import annotations

from dtask_common.models import ExecutorInfo, ExecutorState

from dtask_tui.format import core_bar, pct, sparkline
from dtask_tui.state import TuiState
from dtask_tui.widgets.base import LineBar, Markup, pad_line
from dtask_tui.widgets.palette import EXECUTOR_ATTR, level_attr
from dtask_tui.widgets.table import Column, TableView, layout_columns

CORE_CELL = 3  # "100"
NAME_MIN = 12
HISTORY_W = 30
HISTORY_MIN = 12


def _spare(columns: list[Column]) -> int:
    """Characters the flexible (name) column can give away."""
    return sum(c.width - NAME_MIN for c in columns if c.flex)


def _take(columns: list[Column], extra: list[Column]) -> list[Column]:
    """columns plus extra, the flexible column shrunk to make room."""
    need = sum(c.width + 1 for c in extra)
    shrunk = [Column(c.key, c.title, c.width - need, c.align, c.priority, True) if c.flex else c for c in columns]
    return shrunk + extra


class ExecutorTable(TableView):
    """Executors by name: state, tasks/slots, GPU, VMem, RAM, swap, CPU total and per core."""

    def row_ids(self) -> list[str]:
        return self.state.executor_view()

    def empty_text(self) -> str:
        if not self.state.synced:
            return "waiting for the controller…"
        if hidden := self.state.hidden_executors():
            return f"{hidden} executors out of touch longer than {self.state.lost_after_s:g}s; a: show them"
        return "no executors: start one with `make run-runner` or `dtask runner`"

    def _cores(self, ids: list[str]) -> int:
        n = 0
        for key in ids:
            u = self.state.executors[key].last_usage
            if u is not None:
                n = max(n, len(u.per_cpu_percent))
        return n

    def columns(self, cols: int, ids: list[str]) -> list[Column]:
        fixed = [
            Column("name", "Executor", 0, "left", 10, flex=True),
            Column("state", "State", 8, "left", 9),
            Column("tasks", "Run", 5, "right", 8),
            Column("gpu", "GPU", 4, "right", 7),
            Column("vmem", "VMem", 4, "right", 6),
            Column("ram", "RAM", 4, "right", 7),
            Column("swap", "Swap", 4, "right", 4),
            Column("cpu", "CPU", 4, "right", 7),
        ]
        out = layout_columns(fixed, cols, min_flex=10)
        cores = self._cores(ids)
        spare = _spare(out)
        history = HISTORY_MIN + 1 if spare >= HISTORY_MIN + 1 + 16 else 0  # room kept for the history
        if cores:
            per_core = cores * (CORE_CELL + 1)
            title = f"Cores ({cores})"
            if spare >= per_core + history:
                out = _take(out, [Column(f"core{i}", f"c{i}", CORE_CELL, "right", 1) for i in range(cores)])
            elif (room := min(max(cores, len(title)), spare - 1 - history)) >= 4:
                out = _take(out, [Column("cores", title if len(title) <= room else f"{cores}c", room, "left", 1)])
        if (room := min(HISTORY_W, _spare(out) - 1)) >= HISTORY_MIN:
            out = _take(out, [Column("history", "Load history", room, "left", 1)])
        return out

    def row_attr(self, key: str) -> str:
        ex = self.state.executors[key]
        if ex.state is ExecutorState.GONE:
            return "gone"
        return "dead" if ex.dead else "row"

    def cells(self, key: str, columns: list[Column]) -> list[Markup]:
        ex: ExecutorInfo = self.state.executors[key]
        u = ex.last_usage
        dead = ex.dead
        dead_attr = "gone" if ex.state is ExecutorState.GONE else "dead"
        state_attr = EXECUTOR_ATTR.get(ex.state, "row")

        def val(v: float | None) -> Markup:
            return [(dead_attr if dead else level_attr(v), pct(v))]

        out: list[Markup] = []
        for c in columns:
            k = c.key
            if k == "name":
                out.append([(state_attr if dead else "row", ex.name)])
            elif k == "state":
                out.append([(state_attr, ex.state.value)])
            elif k == "tasks":
                running = len(ex.running_task_ids)
                out.append([(dead_attr if dead else "row", f"{running}/{ex.capacity.slots}")])
            elif u is None:
                out.append([("dim", "-")])
            elif k == "gpu":
                out.append(val(u.gpu_percent))
            elif k == "vmem":
                out.append(val(u.vmem_percent))
            elif k == "ram":
                out.append(val(u.ram_percent))
            elif k == "swap":
                out.append(val(u.swap_percent))
            elif k == "cpu":
                out.append(val(u.cpu_percent))
            elif k == "history":
                hist = self.state.usage.get(ex.name, ())
                gpu = u.gpus and any(s.gpus for s in hist)
                values = [(s.gpu_percent if gpu else s.cpu_percent) for s in hist]
                out.append(
                    [
                        (dead_attr if dead else "running", sparkline(values, c.width - 4)),
                        ("dim", " GPU" if gpu else " CPU"),
                    ]
                )
            elif k == "cores":
                bar = core_bar(u.per_cpu_percent, c.width)
                out.append([(dead_attr if dead else "running", bar)])
            elif k.startswith("core"):
                i = int(k[4:])
                v = u.per_cpu_percent[i] if i < len(u.per_cpu_percent) else None
                out.append([(dead_attr if dead else level_attr(v), "-" if v is None else f"{v:.0f}")])
        return out


class ClusterBar(LineBar):
    """Cluster totals above the executor table: live executors, busy slots, mean CPU/RAM, GPUs."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state

    def line(self, cols: int) -> Markup:
        execs = [self.state.executors[n] for n in self.state.executor_view()]
        live = [e for e in execs if not e.dead]
        dead = len(execs) - len(live)
        hidden = self.state.hidden_executors()
        draining = sum(1 for e in live if e.state is ExecutorState.DRAINING)
        slots = sum(e.capacity.slots for e in live)
        busy = sum(len(e.running_task_ids) for e in live)
        samples = [e.last_usage for e in live if e.last_usage is not None]
        cores = sum(len(u.per_cpu_percent) for u in samples)
        gpus = [g for u in samples for g in u.gpus]

        def mean(values: list[float]) -> float | None:
            return sum(values) / len(values) if values else None

        cpu = mean([u.cpu_percent for u in samples])
        ram = mean([u.ram_percent for u in samples])
        out: Markup = [
            ("footer", f" {len(live)} live"),
            ("tab_active" if dead else "footer", f" {dead} dead " if dead else ""),
            ("footer", f" {draining} draining" if draining else ""),
            ("footer", f" ({hidden} long gone hidden: a)" if hidden else ""),
            ("footer", f" │ slots {busy}/{slots} busy │ {cores} cores CPU "),
            ("key", pct(cpu)),
            ("footer", " RAM "),
            ("key", pct(ram)),
        ]
        if gpus:
            out += [
                ("footer", f" │ {len(gpus)} GPUs util "),
                ("key", pct(mean([g.util_percent for g in gpus]))),
                ("footer", " mem "),
                ("key", pct(mean([g.memory_percent for g in gpus]))),
            ]
        return pad_line([p for p in out if p[1]], cols, "footer")
