"""dtask.toml: defaults, loading, validation and flag overrides for every component."""

from dtask_common.config.loading import load, set_key
from dtask_common.config.sections import (
    ENV_CONFIG,
    ENV_CONTROLLER,
    ENV_HOME,
    ClientConfig,
    Config,
    ConfigError,
    ControllerConfig,
    RunnerConfig,
    dtask_home,
)

__all__ = [
    "ENV_CONFIG",
    "ENV_CONTROLLER",
    "ENV_HOME",
    "ClientConfig",
    "Config",
    "ConfigError",
    "ControllerConfig",
    "RunnerConfig",
    "dtask_home",
    "load",
    "set_key",
]
