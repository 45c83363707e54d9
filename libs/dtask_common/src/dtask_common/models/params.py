"""Task parameters: typed values (string, int, float, bool), their limits, KEY=VALUE parsing and matching."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping

from dtask_common.models.validation import FieldError

#: A parameter value, typed as TOML gives it.
ParamValue = str | int | float | bool

MAX_PARAMS = 64
MAX_PARAM_KEY = 64
MAX_PARAM_VALUE = 256
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
KEY_RULE = "a letter or _ first, then letters, digits, _ . or -"


def key_problem(key: object) -> str | None:
    """What is wrong with a parameter name, or None."""
    if not isinstance(key, str):
        return f"a parameter name must be a string, got {type(key).__name__}"
    if not key:
        return "a parameter name is empty"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_PARAM_KEY:
        return f"parameter name {key[:20]!r}... is longer than {MAX_PARAM_KEY} bytes; shorten it"
    if not _KEY.fullmatch(key):
        return f"parameter name {key!r} is not valid ({KEY_RULE})"
    return None


def value_problem(value: object) -> str | None:
    """What is wrong with a parameter value, or None."""
    match value:
        case bool():
            return None
        case int():
            if not INT64_MIN <= value <= INT64_MAX:
                return f"integer {value} is out of the 64-bit range"
            return None
        case float():
            return None if math.isfinite(value) else f"{value!r} is not a finite number"
        case str():
            if "\x00" in value:
                return "contains a NUL byte; remove it"
            if len(value.encode("utf-8", "surrogatepass")) > MAX_PARAM_VALUE:
                return f"is longer than {MAX_PARAM_VALUE} bytes; shorten it"
            return None
        case _:
            return f"must be a string, integer, float or boolean, got {type(value).__name__}"


def errors(params: Mapping[str, object]) -> list[FieldError]:
    """Every problem of a params mapping (empty when valid)."""
    out: list[FieldError] = []
    if not isinstance(params, Mapping):
        return [FieldError("params", f"must be a mapping of names to values, got {type(params).__name__}")]
    if len(params) > MAX_PARAMS:
        out.append(FieldError("params", f"has more than {MAX_PARAMS} entries"))
    for key, value in params.items():
        problem = key_problem(key)
        if problem:
            out.append(FieldError("params", problem))
            continue
        problem = value_problem(value)
        if problem:
            out.append(FieldError(f"params.{key}", problem))
    return out


def parse_value(text: str) -> ParamValue:
    """A value typed like TOML: `0.1` a float, `3` an int, `true` a bool, `"3"` the string 3, `cnn` a string."""
    t = text.strip()
    if t:
        try:
            value = tomllib.loads(f"v = {t}")["v"]
        except tomllib.TOMLDecodeError:
            return text
        if isinstance(value, (str, int, float, bool)):
            return value
    return text


def parse_pair(text: str) -> tuple[str, ParamValue]:
    """KEY=VALUE into (key, typed value); ValueError with a one-line reason when it is not one."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ValueError(f"{text!r}: use KEY=VALUE, e.g. lr=0.1")
    problem = key_problem(key)
    if problem:
        raise ValueError(f"{text!r}: {problem}")
    value = parse_value(raw)
    problem = value_problem(value)
    if problem:
        raise ValueError(f"{text!r}: the value {problem}")
    return key, value


def parse_pairs(texts: tuple[str, ...] | list[str]) -> dict[str, ParamValue]:
    """Repeated KEY=VALUE into one mapping (a key given twice: ValueError)."""
    out: dict[str, ParamValue] = {}
    for text in texts:
        key, value = parse_pair(text)
        if key in out:
            raise ValueError(f"parameter {key!r} is given twice")
        out[key] = value
    return out


def same(a: ParamValue, b: ParamValue) -> bool:
    """Whether two values are equal as parameters: numbers by value (3 == 3.0), strings and booleans exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    return a == b


def matches(params: Mapping[str, ParamValue], wanted: Mapping[str, ParamValue]) -> bool:
    """Whether params holds every wanted parameter with the same value."""
    return all(k in params and same(params[k], v) for k, v in wanted.items())


def shown(value: ParamValue) -> str:
    """A value as a user writes it: true/false, 0.1, 3, cnn."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def base_name(name: str) -> str:
    """The matrix base name of an expanded task (`train` of `train[lr=0.1]`), else the name itself."""
    if name.endswith("]"):
        cut = name.find("[")
        if cut > 0:
            return name[:cut]
    return name
