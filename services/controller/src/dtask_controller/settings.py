"""What the controller core takes from the configuration (the [controller] section and runner.poison_after)."""

from __future__ import annotations

from dataclasses import dataclass

from dtask_common.config import Config

FLUSH_INTERVAL_S = 0.5  # how often changed output tails and progress are written to the store
WATCH_QUEUE = 10_000  # events a watcher may fall behind before it gets a fresh snapshot


@dataclass(frozen=True, slots=True)
class Settings:
    """The configuration values the core reads; build it with from_config."""

    name: str
    dead_after_s: float
    lost_after_s: float
    usage_history: int
    output_tail_bytes: int
    usage_interval_s: float
    poison_after: int  # runner.poison_after: a task whose runner died this many times in a row fails
    flush_interval_s: float = FLUSH_INTERVAL_S
    watch_queue: int = WATCH_QUEUE

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        c = cfg.controller
        return cls(
            name=c.name,
            dead_after_s=c.dead_after_s,
            lost_after_s=c.lost_after_s,
            usage_history=c.usage_history,
            output_tail_bytes=c.output_tail_bytes,
            usage_interval_s=c.usage_interval_s,
            poison_after=cfg.runner.poison_after,
        )
