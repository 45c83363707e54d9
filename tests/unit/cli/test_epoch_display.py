"""The overall position across epochs shows beside the inner bar in `dtask task`, `dtask tasks` and the TUI."""

from __future__ import annotations

from dtask_cli import output
from dtask_common.models import Progress
from dtask_tui import format as fmt

INNER = Progress("train", 45, 100, 45.0, epoch=3, epochs=10)


def test_cli_shows_the_epoch_and_the_overall_share() -> None:
    text = output.progress_text(INNER)
    assert "45/100" in text and "epoch 3/10 (25% overall)" in text


def test_tui_shows_the_epoch_and_the_overall_share() -> None:
    assert fmt.progress_text(INNER) == "epoch 3/10 (25%) 45/100 45%"


def test_no_epoch_no_epoch_text() -> None:
    assert "epoch" not in output.progress_text(Progress("train", 45, 100, 45.0))
