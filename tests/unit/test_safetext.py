"""safetext: every control and bidi character shown as an escape; JSON text safe yet decoding the same."""

from __future__ import annotations

import json

from dtask_common.export import to_json
from dtask_common.safetext import UNSAFE, json_text, shown
from hypothesis import given, settings
from hypothesis import strategies as st

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
FORBIDDEN = {*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xA0)), *BIDI, "\u2028", "\u2029"}


def test_escapes() -> None:
    assert shown("\x1b[2Jclear") == "\\x1b[2Jclear"
    assert shown("\x1b]52;c;aGk=\x07") == "\\x1b]52;c;aGk=\\x07"
    assert shown("abc\u202edef") == "abc\\u202edef"
    assert shown("a\nb\tc\rd\x00\x7f\x9b") == "a\\nb\\tc\\rd\\x00\\x7f\\x9b"
    assert shown("\u2066\u2069\u200e\u200f\u061c\u2028") == "\\u2066\\u2069\\u200e\\u200f\\u061c\\u2028"
    assert shown("\ud800") == "\\ud800"


def test_plain_text_unchanged() -> None:
    for text in ("", "train-1", "naïve ünïcode 日本語 emoji 🙂", "a\\x1b b", "path\\to", "zwj 👩\u200d💻"):
        assert shown(text) is text


@settings(deadline=None)
@given(st.text())
def test_never_a_control_or_bidi_character(text: str) -> None:
    out = shown(text)
    assert not FORBIDDEN & set(out)
    assert UNSAFE.search(out) is None
    assert shown(out) == out  # idempotent: cleaning shown text changes nothing
    if UNSAFE.search(text) is None:
        assert out == text


@settings(max_examples=50, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_json_stays_exact_and_safe(data: object) -> None:
    text = to_json(data)
    assert json.loads(text) == data
    assert not (FORBIDDEN - {"\n"}) & set(text)  # the layout's newlines only; JSON escapes the rest


def test_json_text_escapes_what_json_dumps_leaves_raw() -> None:
    raw = json.dumps({"name": "\x1b[2J\x9b\u202e"}, ensure_ascii=False)
    assert "\x1b" not in raw and "\u202e" in raw and "\x9b" in raw  # json.dumps escapes C0, not C1 or bidi
    assert json_text(raw) == '{"name": "\\u001b[2J\\u009b\\u202e"}'


def test_cells_and_cut() -> None:
    from dtask_common.safetext import cells, cut

    assert [cells(t) for t in ("abc", "日本語", "e\u0301", "🙂", "")] == [3, 6, 1, 2, 0]
    assert cut("日本語", 5) == "日本" and cut("日本語", 6) == "日本語" and cut("abc", 0) == ""
