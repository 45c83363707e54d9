"""The kept tail of one attempt's output, decoded into display lines (no urwid here)."""

from __future__ import annotations

from dataclasses import dataclass, field

OUTPUT_LIMIT = 256 * 1024


@dataclass
class OutputTail:
    """The last bytes of one attempt's output."""

    task_id: str
    attempt: int = 0
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    error: str = ""

    def add(self, chunk: bytes, limit: int = OUTPUT_LIMIT) -> None:
        self.data += chunk
        if len(self.data) > limit:
            del self.data[: len(self.data) - limit]

    def lines(self, last: int | None = None) -> list[str]:
        """Decoded lines (invalid UTF-8 replaced; carriage-return redraws collapsed to their last state)."""
        text = self.data.decode("utf-8", "replace")
        out = [seg.rsplit("\r", 1)[-1] if "\r" in seg else seg for seg in text.split("\n")]
        if out and out[-1] == "":
            out.pop()
        out = [line.replace("\t", "    ") for line in out]
        return out[-last:] if last else out
