"""Pure formatting (bars, sparklines, durations) and the key bindings table."""

from __future__ import annotations

from dtask_common.models import Progress
from dtask_tui import format as fmt
from dtask_tui import keys
from dtask_tui.keys import BINDINGS, Command, Context


def test_durations() -> None:
    assert [fmt.duration(x) for x in (None, -1, 0.46, 12, 65, 3725, 90000)] == [
        "-",
        "-",
        "0.5s",
        "12s",
        "1:05",
        "1:02:05",
        "1d01h",
    ]


def test_sparkline_and_levels() -> None:
    assert fmt.sparkline([0, 50, 100], 3) == "▁▅█"
    assert fmt.sparkline([0, 100], 4) == "  ▁█"
    assert fmt.sparkline(list(range(100)), 10) == fmt.sparkline(list(range(90, 100)), 10)
    assert fmt.level(None) == " " and fmt.level(150) == "█" and fmt.level(-5) == "▁"


def test_core_bar_squeezes_many_cores() -> None:
    assert fmt.core_bar([0.0, 100.0], 10) == "▁█"
    bar = fmt.core_bar([100.0] * 64 + [0.0] * 64, 16)
    assert bar == "█" * 8 + "▁" * 8


def test_chart_rows() -> None:
    rows = fmt.chart([0, 50, 100], 3, 2)
    assert rows == [" ▁█", " ██"] or rows == ["  █", " ██"]
    assert len(fmt.chart([10] * 100, 60, 4)) == 4 and all(len(r) == 60 for r in fmt.chart([10], 60, 4))


def test_progress_bar_and_text() -> None:
    p = Progress("epoch", 45, 100, 45.0, eta_s=15)
    assert fmt.progress_text(p) == "45/100 45% ETA 15s"
    pieces = fmt.progress_bar(p, 20)
    assert "".join(t for _, t in pieces).startswith(" 45/100 45% ETA 15s")
    assert len(pieces[0][1]) == 9 and pieces[0][0] == "bar_done"
    assert fmt.progress_bar(None, 10) == [("bar_todo", " running  ")]
    assert fmt.progress_text(Progress("", 7)) == "7"


def test_fit_and_clip() -> None:
    assert fmt.fit("abcdef", 4) == "abc…" and fmt.fit("ab", 4, "right") == "  ab"
    assert fmt.size(1536) == "1.5K" and fmt.size(None) == "-"


def test_no_key_means_two_things_in_one_context() -> None:
    for ctx in Context:
        seen: dict[str, Command] = {}
        for b in BINDINGS:
            if b.context is ctx:
                for k in b.keys:
                    assert k not in seen or seen[k] == b.command, (ctx, k)
                    seen[k] = b.command


def test_lookup_falls_back_to_table_and_global() -> None:
    assert keys.lookup(Context.TASKS, "c") is Command.CANCEL
    assert keys.lookup(Context.EXECUTORS, "c") is None
    assert keys.lookup(Context.EXECUTORS, "down") is Command.DOWN
    assert keys.lookup(Context.OUTPUT, "f") is Command.FOLLOW
    assert keys.lookup(Context.TASKS, "f") is Command.FILTER_NEXT
    assert keys.lookup(Context.OUTPUT, "ctrl e") is Command.EXPORT
    for k in ("q", "ctrl q", "ctrl d"):
        assert keys.lookup(Context.TASKS, k) is Command.QUIT


def test_markdown_table_lists_every_binding() -> None:
    md = keys.markdown_table()
    assert md.count("\n") == len(BINDINGS) + 1
    assert "| global | `Ctrl+E` | Export all tasks to a JSON file |" in md
    assert "`?`, `F1`" in md


def test_readme_key_table_is_generated_from_the_bindings() -> None:
    from pathlib import Path

    readme = Path(__file__).resolve().parents[3] / "clients" / "tui" / "README.md"
    assert keys.markdown_table() in readme.read_text(), "regenerate with `dtask-tui --keys-markdown`"
