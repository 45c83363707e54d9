"""What changes the cluster or writes files: cancel, retry, pause, drain behind a yes/no dialog, and export."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, Protocol

from dtask_client import DtaskError
from dtask_common.export import export_tasks, to_json
from dtask_common.models import ExecutorState

from dtask_tui.client import ControllerClient
from dtask_tui.dialogs import ConfirmDialog, Dialog, ExportDialog, suggested_export_name
from dtask_tui.state import TuiState


class DialogHost(Protocol):
    """Where the dialogs show (the app): one modal dialog at a time, and redraws."""

    dialog: Dialog | None

    def refresh(self) -> None: ...

    def request_redraw(self) -> None: ...


class Actions:
    """The actions the keys start; each runs in the background and reports in the bottom bar."""

    def __init__(self, host: DialogHost, client: ControllerClient, state: TuiState, export_dir: Path):
        self.host = host
        self.client = client
        self.state = state
        self.export_dir = export_dir
        self._bg: set[asyncio.Task[None]] = set()

    @property
    def background(self) -> list[asyncio.Task[None]]:
        """The actions still running."""
        return list(self._bg)

    # ---- dialogs and background work -----------------------------------------------------
    def confirm(self, title: str, question: str, action: Callable[[], Awaitable[str]]) -> None:
        """Ask yes/no; on yes run action in the background and show its result."""

        def yes() -> None:
            self.close_dialog()
            self.spawn(action())

        self.host.dialog = ConfirmDialog(title, question, yes, self.close_dialog)

    def close_dialog(self) -> None:
        self.host.dialog = None
        self.host.refresh()

    def spawn(self, work: Awaitable[str]) -> asyncio.Task[None]:
        """Run an action in the background; its message (or error) goes to the bottom bar."""

        async def run() -> None:
            try:
                text = await work
                self.state.say(text)
            except DtaskError as exc:
                self.state.say(f"failed: {exc.message}", "error")
            except OSError as exc:
                self.state.say(f"failed: {exc}", "error")
            self.host.request_redraw()

        task = asyncio.get_running_loop().create_task(run())
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def settle(self) -> None:
        """Wait for the background actions started so far (tests)."""
        while self._bg:
            await asyncio.gather(*list(self._bg), return_exceptions=True)

    # ---- the actions ---------------------------------------------------------------------
    def task_action(self, verb: Literal["cancel", "retry"]) -> None:
        """Cancel or retry the focused task, after asking."""
        task = self.state.focused_task()
        if task is None:
            self.state.say("no task in focus", "error")
            return
        if verb == "cancel" and task.state.finished:
            self.state.say(f"{task.name} has already finished ({task.state.value})", "error")
            return
        if verb == "retry" and not task.state.finished:
            self.state.say(f"{task.name} is {task.state.value}; only finished tasks can be retried", "error")
            return
        client = self.client

        async def act() -> str:
            if verb == "cancel":
                done = await client.cancel(task.id)
            else:
                done = await client.retry(task.id)
            self.state.put_task(done)
            return f"{verb} {task.name} ({task.id}): now {done.state.value}"

        what = "Cancel" if verb == "cancel" else "Retry"
        self.confirm(f"{what} task", f"{what} task {task.name} ({task.id}, {task.state.value})?", act)

    def pause(self) -> None:
        """Pause or resume the queue, after asking."""
        paused = self.state.queue.paused
        client = self.client

        async def act() -> str:
            q = await (client.resume() if paused else client.pause())
            self.state.queue = q
            return "queue resumed: dispatching" if not q.paused else "queue paused: no new task starts"

        question = (
            "Resume the queue (start dispatching again)?"
            if paused
            else "Pause the queue? Running tasks go on; no new task starts."
        )
        self.confirm("Resume queue" if paused else "Pause queue", question, act)

    def drain(self) -> None:
        """Drain or undrain the focused executor, after asking."""
        ex = self.state.focused_executor()
        if ex is None:
            self.state.say("no executor in focus", "error")
            return
        undrain = ex.state is ExecutorState.DRAINING
        client = self.client

        async def act() -> str:
            info = await client.drain(ex.name, undrain=undrain)
            self.state.executors[info.name] = info
            return f"{info.name} is now {info.state.value}"

        question = (
            f"Undrain {ex.name}? It takes new tasks again."
            if undrain
            else f"Drain {ex.name}? It finishes its running tasks and takes no new ones."
        )
        self.confirm("Undrain executor" if undrain else "Drain executor", question, act)

    def open_export(self) -> None:
        """Ask for a file name, then export every task to it."""
        default = str(self.export_dir / suggested_export_name(self.state.clock()))

        def ok(path: str) -> None:
            if not path:
                self.state.say("give a file name to export to", "error")
                return
            target = Path(path).expanduser()
            if not target.is_absolute():
                target = self.export_dir / target
            if target.exists():
                self.state.say(f"{target} exists; choose another name", "error")
                self.host.refresh()
                return
            if not target.parent.is_dir():
                self.state.say(f"folder {target.parent} does not exist", "error")
                self.host.refresh()
                return
            self.close_dialog()
            self.spawn(self.export_to(target))

        self.host.dialog = ExportDialog(default, ok, self.close_dialog)

    async def export_to(self, target: Path) -> str:
        """Write every task, fetched fresh from the controller, as `dtask export` does."""
        tasks = await self.client.tasks()
        text = to_json(export_tasks(tasks, self.client.address)) + "\n"
        await asyncio.to_thread(target.write_text, text, "utf-8")
        return f"exported {len(tasks)} tasks to {target}"
