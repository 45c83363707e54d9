"""Loading dtask.toml: the file, $DTASK_CONTROLLER and flag overrides, each key type-checked, then validated;
and where each value came from."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from dtask_common import numbers, runner_paths
from dtask_common.config.sections import (
    ENV_CONFIG,
    ENV_CONTROLLER,
    ClientConfig,
    Config,
    ConfigError,
    ControllerConfig,
    RunnerConfig,
)
from dtask_common.metrics_address import MetricsAddressError, parse_metrics_address
from dtask_common.suggest import did_you_mean

_SECTIONS = {"controller": ControllerConfig, "runner": RunnerConfig, "client": ClientConfig}
_TOP = {"home", "certs", "ca"}


#: Where a value came from when nothing set it.
DEFAULT = "default"
#: Where $DTASK_CONTROLLER's value is said to come from.
FROM_ENV = f"environment ({ENV_CONTROLLER})"
#: The address keys that, left at their default, dial the first port of [controller] port_range.
DIALLED = ("client.controller", "runner.controller")


def load(path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the config file (path, else $DTASK_CONFIG, else defaults) and apply dotted overrides."""
    return load_sourced(path, overrides)[0]


def load_sourced(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    origins: dict[str, str] | None = None,
) -> tuple[Config, dict[str, str]]:
    """load(), and where each value that is not a default came from (dotted key -> the file's path, the
    environment, or origins[key] for an override, "command line" when origins does not name it)."""
    cfg = Config()
    sources: dict[str, str] = {}
    path = path or os.environ.get(ENV_CONFIG) or None
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist; create it or drop --config/{ENV_CONFIG}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        _apply_tree(cfg, data, str(p), sources)
    if os.environ.get(ENV_CONTROLLER):
        cfg.client.controller = os.environ[ENV_CONTROLLER]
        sources["client.controller"] = FROM_ENV
    for key, value in (overrides or {}).items():
        if value is not None:
            where = (origins or {}).get(key, "command line")
            set_key(cfg, key, value, where)
            sources[key.strip()] = where
    _dial_port_range(cfg, sources)
    _check(cfg)
    return cfg, sources


def dial_address(cfg: Config) -> str:
    """The address a client on the controller's machine dials: its host (localhost for a wildcard) and the
    first port of [controller] port_range."""
    host = cfg.controller.host.strip()
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{cfg.controller.port_range[0]}"


def _dial_port_range(cfg: Config, sources: dict[str, str]) -> None:
    """Addresses nothing set dial the controller where its own config makes it listen."""
    if "controller.port_range" not in sources and "controller.host" not in sources:
        return
    for key in DIALLED:
        if key not in sources:
            section, _, name = key.partition(".")
            setattr(getattr(cfg, section), name, dial_address(cfg))
            sources[key] = f"{DEFAULT} (the first port of controller.port_range)"


def _apply_tree(cfg: Config, data: dict[str, Any], where: str, sources: dict[str, str]) -> None:
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table")
            for sub, v in value.items():
                set_key(cfg, f"{key}.{sub}", v, where)
                sources[f"{key}.{sub}"] = where
        elif key in _TOP:
            set_key(cfg, key, value, where)
            sources[key] = where
        else:
            known = sorted([*_TOP, *_SECTIONS])
            raise ConfigError(
                f"{where}: unknown key {key!r}{did_you_mean(key, known)}" + f"; known keys: {', '.join(known)}"
            )


def _first_key(section: str) -> str:
    return dataclasses.fields(_SECTIONS[section])[0].name


def set_key(cfg: Config, dotted: str, value: Any, where: str = "command line") -> None:
    """Set section.key (or a top-level key) with type checking; value may be a string from a flag."""
    section_name, _, key = dotted.rpartition(".")
    target: Any = getattr(cfg, section_name) if section_name in _SECTIONS else cfg if not section_name else None
    if target is None:
        raise ConfigError(
            f"{where}: unknown section {section_name!r} in {dotted!r}"
            + did_you_mean(section_name, _SECTIONS)
            + f"; use one of {', '.join(_SECTIONS)}"
        )
    fields = {f.name: f for f in dataclasses.fields(target)}
    if not section_name and key in _SECTIONS:
        raise ConfigError(f"{where}: {key!r} is a section; set one of its keys, e.g. {key}.{_first_key(key)}")
    if key not in fields:
        names = sorted(fields) if section_name else [n for n in sorted(fields) if n not in _SECTIONS]
        prefix = f"{section_name}." if section_name else ""
        raise ConfigError(
            f"{where}: unknown key {dotted!r}"
            + did_you_mean(key, names, prefix=prefix)
            + f"; known keys: {', '.join(prefix + n for n in names)}"
        )
    current = getattr(target, key)
    setattr(target, key, _coerce(dotted, current, value, where))


def _coerce(dotted: str, current: Any, value: Any, where: str) -> Any:
    def fail(expect: str) -> ConfigError:
        return ConfigError(f"{where}: {dotted} must be {expect}, got {value!r}")

    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise fail("true or false")
    if isinstance(current, tuple):
        if isinstance(value, str):
            parts = value.replace("-", ",").split(",")
            try:
                value = [int(x) for x in parts]
            except ValueError:
                raise fail("two ports, e.g. [50051, 50059] or 50051-50059") from None
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)
        ):
            raise fail("two ports, e.g. [50051, 50059]")
        lo, hi = value
        if not (1 <= lo <= hi <= 65535):
            raise fail("a range [first, last] with 1 <= first <= last <= 65535")
        return (lo, hi)
    if isinstance(current, int):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(value) if isinstance(value, (int, str)) else _raise()
        except (ValueError, TypeError):
            raise fail("an integer") from None
        if abs(number) > numbers.INT32_MAX:
            raise fail(f"an integer of at most {numbers.INT32_MAX}")
        return number
    if isinstance(current, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (ValueError, TypeError, OverflowError):
            raise fail("a number") from None
        if not numbers.is_finite(number):
            raise fail("a finite number")
        return number
    if isinstance(current, dict):
        if isinstance(value, str):
            out = {}
            for item in filter(None, value.split(",")):
                k, sep, v = item.partition("=")
                if not sep:
                    raise fail("k=v pairs")
                out[k.strip()] = v.strip()
            return out
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise fail("a table of strings")
        return dict(value)
    if not isinstance(value, str):
        raise fail("a string")
    return value


def _raise() -> Any:
    raise ValueError


def _check(cfg: Config) -> None:
    for section, key in (
        ("controller", "dead_after_s"),
        ("controller", "lost_after_s"),
        ("controller", "usage_interval_s"),
        ("runner", "usage_interval_s"),
    ):
        if getattr(getattr(cfg, section), key) <= 0:
            raise ConfigError(f"{section}.{key} must be > 0")
    for name in ("controller", "runner", "client"):  # seconds, cores, counts, sizes: none is negative
        part = getattr(cfg, name)
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{name}.{f.name} must be >= 0, got {value!r}")
    if cfg.controller.lost_after_s < cfg.controller.dead_after_s:
        raise ConfigError("controller.lost_after_s must be >= controller.dead_after_s")
    if cfg.runner.slots < 1:
        raise ConfigError("runner.slots must be >= 1")
    if cfg.runner.poison_after < 0:
        raise ConfigError("runner.poison_after must be >= 0 (0: never fail a task for killing its runners)")
    if cfg.controller.sync not in ("normal", "full"):
        raise ConfigError("controller.sync must be 'normal' or 'full'")
    if cfg.runner.containment not in ("auto", "cgroup", "sweep"):
        raise ConfigError(f"runner.containment must be auto, cgroup or sweep; got {cfg.runner.containment!r}")
    for name, directory in cfg.runner.paths.items():
        try:
            runner_paths.parse_path(f"{name}={directory}")
        except ValueError as exc:
            raise ConfigError(f"runner.paths: {exc}".replace("--path ", "", 1)) from None
    gpus = cfg.runner.gpus.strip().lower()
    if gpus not in ("", "auto", "none") and not all(x.strip().isdigit() for x in gpus.split(",") if x.strip()):
        raise ConfigError(f"runner.gpus must be auto, none or GPU indexes like 0,1; got {cfg.runner.gpus!r}")
    for section in ("controller", "runner"):
        try:
            parse_metrics_address(getattr(cfg, section).metrics_address)
        except MetricsAddressError as exc:
            raise ConfigError(f"{section}.metrics_address: {exc}") from None
