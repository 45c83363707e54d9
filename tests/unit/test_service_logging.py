"""A service's log: the same lines, and no caller frame, thread or process gathered for each record."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, sys
from dtask_common.serving import setup_logging
setup_logging(False)
seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record)
logging.getLogger().addHandler(Keep())
logging.getLogger("dtask_controller.core").info("task %s dispatched to %s, attempt %d", "t1", "r1", 1)
r = seen[0]
print(r.lineno, r.thread, r.process)
"""


def test_a_service_log_line_gathers_only_what_it_shows() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    # Unchanged: time, level, logger name and message on stderr.
    assert out.stderr.split(" ", 1)[1] == "INFO  dtask_controller.core: task t1 dispatched to r1, attempt 1\n"
    # Not gathered: where the call was made (a walk up the stack), the thread and the process.
    assert out.stdout.split() == ["0", "None", "None"]
