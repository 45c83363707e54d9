"""Tailing an attempt's `$DTASK_METRICS_FILE` (JSON lines, one object of metrics a line) as the task writes it."""

from __future__ import annotations

import os
import stat

from dtask_common.metrics import MAX_LINE, Values, parse_json_object

from dtask_runner.taskuser import TaskUser

READ_MAX = 256 * 1024  # per poll: a task that writes faster is read on over the next polls


class MetricsFileTail:
    """Reads the lines added to a metrics file since the last read. A task running as another user writes it in
    a directory of theirs: it counts only as a regular file they own (not a link to one of root's)."""

    def __init__(self, path: os.PathLike[str] | str, user: TaskUser | None = None):
        self.path = path
        self.user = user
        self.offset = 0
        self._carry = b""

    def read(self, *, final: bool = False) -> Values:
        """The metrics of the complete lines written since the last read (final: the unterminated last too)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return []
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (self.user is not None and st.st_uid != self.user.uid):
                return []
            if st.st_size < self.offset:  # truncated: read it again from its start
                self.offset, self._carry = 0, b""
            data = os.pread(fd, READ_MAX, self.offset) if st.st_size > self.offset else b""
        except OSError:
            return []
        finally:
            os.close(fd)
        self.offset += len(data)
        buf = self._carry + data
        cut = buf.rfind(b"\n")
        complete, self._carry = (buf[:cut], buf[cut + 1 :]) if cut >= 0 else (b"", buf)
        if len(self._carry) > MAX_LINE:
            self._carry = b""  # a line longer than any metrics line: skipped
        if final and self._carry:
            complete, self._carry = complete + b"\n" + self._carry, b""
        out: Values = []
        for line in complete.split(b"\n"):
            if line.strip():
                out.extend(parse_json_object(line.decode("utf-8", "replace")))
        return out
