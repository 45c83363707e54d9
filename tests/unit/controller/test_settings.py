"""The core's settings come from the configuration: every value of the [controller] section it reads, no default of its own."""

from __future__ import annotations

import dataclasses

from dtask_common.config import Config, ControllerConfig, RunnerConfig
from dtask_controller.settings import Settings


def test_every_setting_is_read_from_the_config() -> None:
    c = ControllerConfig(
        name="c@h", dead_after_s=7.0, lost_after_s=70.0, usage_history=7, output_tail_bytes=7000, usage_interval_s=0.7
    )
    s = Settings.from_config(Config(controller=c, runner=RunnerConfig(poison_after=7)))
    assert (
        s.name,
        s.dead_after_s,
        s.lost_after_s,
        s.usage_history,
        s.output_tail_bytes,
        s.usage_interval_s,
        s.poison_after,
    ) == ("c@h", 7.0, 70.0, 7, 7000, 0.7, 7)
    configured = {f.name for f in dataclasses.fields(ControllerConfig)} | {"poison_after"}
    own = {f.name for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
    assert own == {"flush_interval_s", "watch_queue"} and not own & configured
