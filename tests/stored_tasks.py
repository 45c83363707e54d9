"""Finished tasks written straight into a controller's store before it starts (fast: no RPC, one commit)."""

from __future__ import annotations

from pathlib import Path

from dtask_common.models import TaskSpec, TaskState
from dtask_controller.store import SqliteStore


def fill_store(path: Path, n: int, batch: int = 50_000) -> list[str]:
    """n succeeded tasks, each with one finished attempt on 'old', in the store at path; their ids.

    About 1 s per 20,000 tasks. The store must not be open by a controller yet."""
    st = SqliteStore(path)
    ids: list[str] = []
    try:
        for first in range(0, n, batch):
            count = min(batch, n - first)
            with st.transaction():
                part = st.add_tasks(
                    [TaskSpec(name=f"old{first + i}", shell="true") for i in range(count)], [[]] * count, now=1.0
                )
                for tid in part:
                    st.add_attempt(tid, 1, "old", (), now=1.0)
                    st.finish_attempt(tid, 1, TaskState.SUCCEEDED, finished_at=2.0, exit_code=0)
                    st.set_task(tid, TaskState.SUCCEEDED)
            ids.extend(part)
    finally:
        st.close()
    return ids
