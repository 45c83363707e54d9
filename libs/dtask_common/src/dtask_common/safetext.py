"""Text from the controller made safe for a terminal (control and bidi characters shown as escapes), and its width."""

from __future__ import annotations

import re
import unicodedata

# C0 controls (newline and tab included), DEL, C1 controls, the bidi controls (embeddings, overrides,
# isolates, marks, the Arabic letter mark), the Unicode line and paragraph separators, and lone
# surrogates (which no terminal encoding can write).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What JSON text may still hold raw: JSON escapes C0 inside strings, and outside them C0 is only
# the layout (newlines, indentation), which stays.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    code = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """text with every unsafe character as a visible escape (\\x1b, \\n, \\u202e); else unchanged."""
    if UNSAFE.search(text) is None:
        return text
    return UNSAFE.sub(_escape, text)


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def json_text(text: str) -> str:
    """JSON text with the unsafe characters JSON leaves raw (DEL, C1, bidi) as \\uXXXX: same data, safe.

    These characters can only stand inside strings, where \\uXXXX means the very same character,
    so the document decodes to exactly the same values.
    """
    if _JSON_UNSAFE.search(text) is None:
        return text
    return _JSON_UNSAFE.sub(_json_escape, text)


def _cell(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal cells text takes as drawn (a wide character 2, a combining one 0)."""
    return len(text) if text.isascii() else sum(_cell(ch) for ch in text)


def cut(text: str, width: int) -> str:
    """The longest start of text that takes at most width cells."""
    if cells(text) <= width:
        return text
    used = 0
    for i, ch in enumerate(text):
        used += _cell(ch)
        if used > width:
            return text[:i]
    return text  # pragma: no cover - cells(text) > width
