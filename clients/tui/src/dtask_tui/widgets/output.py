"""Full-screen output of one task, following the end unless scrolled back."""

from __future__ import annotations

from dtask_tui.format import fit, shown
from dtask_tui.state import TuiState
from dtask_tui.widgets.base import LinesBox, Markup


class OutputView(LinesBox):
    """The task's output tail; follows new lines while state.output_top is None."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state
        self.page = 10
        self.body_rows = 10
        self.total = 0  # screen lines of the output at the last render (long lines wrap)

    def lines(self, cols: int, rows: int) -> list[Markup]:
        st = self.state
        o = st.output
        body = max(0, rows - 1)
        self.page = max(1, body - 1)
        self.body_rows = body
        task = st.tasks.get(o.task_id) if o else None
        name = task.name if task else (o.task_id if o else "")
        lines = wrap_lines(o.lines(), cols) if o else []
        self.total = len(lines)
        if st.output_top is None:
            top = max(0, len(lines) - body)
            mode = "following"
        else:
            top = max(0, min(st.output_top, max(0, len(lines) - body)))
            mode = f"line {top + 1}-{min(len(lines), top + body)} of {len(lines)}"
        state = task.state.value if task else ""
        attempt = f" attempt {o.attempt}" if o and o.attempt else ""
        err = f"  {o.error}" if o and o.error else ""
        head = f" Output of {name} ({o.task_id if o else ''}){attempt} — {state} — {mode}{err}"
        out: list[Markup] = [[("header", fit(head, cols))]]
        out += [[("row", line)] for line in lines[top : top + body]]
        if not lines:
            out.append([("dim", " (no output yet)")])
        return out


def wrap_lines(lines: list[str], cols: int) -> list[str]:
    """Lines cut into pieces of at most cols characters (long lines continue on the next rows)."""
    if cols <= 0:
        return []
    out: list[str] = []
    for line in map(shown, lines):
        if len(line) <= cols:
            out.append(line)
        else:
            out.extend(line[i : i + cols] for i in range(0, len(line), cols))
    return out
