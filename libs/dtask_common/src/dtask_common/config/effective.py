"""The effective configuration: every key with its value and where it came from, and the start-up summaries."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dtask_common.config.loading import DEFAULT
from dtask_common.config.sections import Config


@dataclass(frozen=True)
class Entry:
    """One key of dtask.toml as it is in effect: its dotted name, its value and its source."""

    key: str
    value: Any
    source: str


def entries(cfg: Config, sources: dict[str, str]) -> list[Entry]:
    """Every key, top-level ones first then section by section, in the order sections.py documents them."""
    out: list[Entry] = []
    sections: list[tuple[str, Any]] = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            sections.append((f.name, value))
        else:
            out.append(Entry(f.name, value, sources.get(f.name, DEFAULT)))
    for name, part in sections:
        for f in dataclasses.fields(part):
            key = f"{name}.{f.name}"
            out.append(Entry(key, getattr(part, f.name), sources.get(key, DEFAULT)))
    return out


def shown_value(value: Any) -> str:
    """A value as dtask.toml would spell it."""
    match value:
        case bool():
            return "true" if value else "false"
        case tuple() | list():
            return "[" + ", ".join(shown_value(v) for v in value) + "]"
        case dict():
            return "{" + ", ".join(f"{k} = {shown_value(v)}" for k, v in value.items()) + "}"
        case str():
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case _:
            return f"{value:g}" if isinstance(value, float) else str(value)


def _range(r: tuple[int, int]) -> str:
    return f"{r[0]}-{r[1]}"


def controller_summary(cfg: Config) -> str:
    """The controller's effective timeouts and ports, one line for its start-up log."""
    c = cfg.controller
    return (
        f"ports {_range(c.port_range)} on {c.host}; dead after {c.dead_after_s:g}s, lost after {c.lost_after_s:g}s, "
        f"usage every {c.usage_interval_s:g}s, shutdown grace {c.shutdown_grace_s:g}s, sync {c.sync}"
    )


def runner_summary(cfg: Config) -> str:
    """The runner's effective controller, timeouts and ports, one line for its start-up log."""
    r = cfg.runner
    return (
        f"controller {r.controller}; ports {_range(r.port_range)} on {r.host}; kill grace {r.kill_grace_s:g}s, "
        f"reconnect at most every {r.reconnect_max_s:g}s, usage every {r.usage_interval_s:g}s, "
        f"poison after {r.poison_after} deaths"
    )
