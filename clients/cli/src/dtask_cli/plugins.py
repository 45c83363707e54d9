"""Commands other distributions add to `dtask` by entry point (`dtask controller`, `dtask runner`)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

#: The entry-point group a distribution names its `dtask` commands in (a click command each).
COMMANDS_GROUP = "dtask.commands"
#: The commands dtask's own services provide, with the distribution that brings each one.
SERVICES = {"controller": "dtask-controller", "runner": "dtask-runner"}


class PluginGroup(click.Group):
    """A click group that also offers the commands registered under COMMANDS_GROUP, each imported when
    first used; a service that is not installed has a hidden command saying how to install it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins: dict[str, EntryPoint] = {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}
        for name, dist in SERVICES.items():
            if name not in self._plugins:
                self.add_command(_not_installed(name, dist))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named cmd_name: one of the group's own, else the entry point's (imported now)."""
        entry_point = None if cmd_name in self.commands else self._plugins.pop(cmd_name, None)
        if entry_point is not None:
            command = entry_point.load()
            if not isinstance(command, click.Command):
                raise TypeError(f"entry point {entry_point.value} ({COMMANDS_GROUP}) is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def _not_installed(name: str, dist: str) -> click.Command:
    """The stand-in for a service command whose distribution is not installed."""

    @click.command(name, hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def stand_in() -> None:
        raise click.ClickException(f"the {name} is not installed here: pip install {dist} (or `make install`)")

    stand_in.help = f"Not installed here: pip install {dist}."
    return stand_in
