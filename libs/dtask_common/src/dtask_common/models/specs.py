"""Task specs: what a task runs, what it needs, and every check of them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dtask_common import numbers, runner_paths
from dtask_common.models import params as param_rules
from dtask_common.models.params import ParamValue
from dtask_common.models.quick_init import quick_init
from dtask_common.models.validation import (
    INT32_MAX,
    MAX_COMMAND_BYTES,
    MAX_DEPENDS,
    MAX_ENV_ENTRIES,
    MAX_ENV_VALUE,
    MAX_LABEL,
    MAX_LOST_AFTER_S,
    MAX_NAME,
    MAX_PATH,
    MAX_RETRIES,
    MAX_TAGS,
    PROGRESS_PARSERS,
    FieldError,
    ValidationError,
    check_pattern,
    is_int,
)


@quick_init
@dataclass(frozen=True, slots=True)
class Resources:
    """What a task needs from a runner (a task always takes one slot)."""

    cpus: float = 0.0
    memory_mb: int = 0
    gpus: int = 0

    def errors(self) -> list[FieldError]:
        c, mem, g = self.cpus, self.memory_mb, self.gpus
        if (  # the common case at once: numbers of the right types in range (bool is not int here)
            (type(c) is float or type(c) is int)
            and type(mem) is int
            and type(g) is int
            and 0 <= c < math.inf
            and 0 <= mem <= numbers.INT64_MAX
            and 0 <= g <= INT32_MAX
        ):
            return []
        out = []
        for name, limit in (("cpus", None), ("memory_mb", numbers.INT64_MAX), ("gpus", INT32_MAX)):
            problem = numbers.problem(getattr(self, name), maximum=limit)
            if problem:
                out.append(FieldError(f"resources.{name}", problem))
        return out


@quick_init
@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task runs and how it is scheduled; exactly one of argv or shell."""

    name: str = ""
    argv: tuple[str, ...] = ()
    shell: str = ""
    cwd: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = Resources()
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    max_retries: int = 0
    timeout_s: float = 0.0
    depends_on: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    progress: str = "auto"
    progress_pattern: str = ""
    result_marker: str = ""
    lost_after_s: float = 0.0  # 0: the controller's lost_after_s
    params: Mapping[str, ParamValue] = field(default_factory=dict)  # a matrix combination, or --param
    venv: str = ""  # a venv directory on the runner the task runs in (its bin first on PATH)
    conda: str = ""  # a conda environment (a directory, or a name in the runner's envs dirs)

    @property
    def command_text(self) -> str:
        """The command as one line for display."""
        if self.shell:
            return self.shell
        import shlex

        return shlex.join(self.argv)

    def errors(self) -> list[FieldError]:
        """Every validation problem of this spec (empty when valid)."""
        errs: list[FieldError] = []
        bad = errs.append

        def text(fieldname: str, value: object, limit: int, required: bool = False) -> None:
            if (problem := _text_problem(value, limit, required)) is not None:
                bad(FieldError(fieldname, problem))

        # An empty optional string is always valid: only a field holding something (or not a string) is checked.
        if self.name != "":
            text("name", self.name, MAX_NAME)
        if self.argv and self.shell:
            bad(FieldError("command", "give either an argv list or a shell string, not both"))
        elif not self.argv and not (isinstance(self.shell, str) and self.shell.strip()):
            bad(FieldError("command", "is empty; give a program and its arguments or a shell string"))
        if self.argv:
            total = 0
            for i, arg in enumerate(self.argv):  # (a field's name is only made for a problem)
                if (problem := _text_problem(arg, MAX_COMMAND_BYTES, False)) is not None:
                    bad(FieldError(f"command[{i}]", problem))
                total += len(arg) if isinstance(arg, str) else 0
            if isinstance(self.argv[0], str) and not self.argv[0].strip():
                bad(FieldError("command[0]", "the program name is empty"))
            if total > MAX_COMMAND_BYTES:
                bad(FieldError("command", f"is longer than {MAX_COMMAND_BYTES} bytes; shorten it"))
        if self.shell:
            text("command", self.shell, MAX_COMMAND_BYTES)
        if self.cwd != "":
            text("cwd", self.cwd, MAX_PATH)
        if self.env:
            if len(self.env) > MAX_ENV_ENTRIES:
                bad(FieldError("env", f"has more than {MAX_ENV_ENTRIES} entries"))
            for key, value in self.env.items():
                text(f"env.{key}", key, MAX_LABEL, True)
                if isinstance(key, str) and "=" in key:
                    bad(FieldError(f"env.{key}", "a variable name cannot contain '='"))
                text(f"env.{key}", value, MAX_ENV_VALUE)
        errs.extend(self.resources.errors())
        for key, value in self.labels.items():
            text(f"labels.{key}", key, MAX_LABEL, True)
            text(f"labels.{key}", value, MAX_LABEL)
        if not is_int(self.priority) or abs(self.priority) > INT32_MAX:
            bad(FieldError("priority", f"must be an integer within ±{INT32_MAX}, got {self.priority!r}"))
        if not is_int(self.max_retries) or not 0 <= self.max_retries <= MAX_RETRIES:
            bad(FieldError("max_retries", f"must be an integer from 0 to {MAX_RETRIES}, got {self.max_retries!r}"))
        if numbers.problem(self.timeout_s) is not None:
            bad(
                FieldError(
                    "timeout_s", f"must be a finite number of seconds >= 0 (0: no limit), got {self.timeout_s!r}"
                )
            )
        if numbers.problem(self.lost_after_s) is not None or not 0 <= self.lost_after_s <= MAX_LOST_AFTER_S:
            bad(
                FieldError(
                    "lost_after_s",
                    f"must be a finite number of seconds from 0 (the controller's default) to "
                    f"{MAX_LOST_AFTER_S:g}, got {self.lost_after_s!r}",
                )
            )
        if self.depends_on:
            if len(self.depends_on) > MAX_DEPENDS:
                bad(FieldError("depends_on", f"has more than {MAX_DEPENDS} entries"))
            for i, dep in enumerate(self.depends_on):
                if (problem := _text_problem(dep, MAX_NAME, True)) is not None:
                    bad(FieldError(f"depends_on[{i}]", problem))
        if len(self.tags) > MAX_TAGS:
            bad(FieldError("tags", f"has more than {MAX_TAGS} entries"))
        for i, tag in enumerate(self.tags):
            if (problem := _text_problem(tag, MAX_LABEL, True)) is not None:
                bad(FieldError(f"tags[{i}]", problem))
        if self.progress not in PROGRESS_PARSERS:
            bad(FieldError("progress", f"unknown parser {self.progress!r}; use one of {', '.join(PROGRESS_PARSERS)}"))
        if self.progress_pattern != "":
            text("progress_pattern", self.progress_pattern, MAX_LABEL * 4)
        if self.progress == "regex":
            check_pattern(self.progress_pattern, lambda f, message: bad(FieldError(f, message)))
        elif self.progress_pattern and self.progress in PROGRESS_PARSERS:
            bad(FieldError("progress_pattern", "is only used with progress = 'regex'"))
        if self.result_marker != "":
            text("result_marker", self.result_marker, MAX_LABEL)
        if self.params:
            errs.extend(param_rules.errors(self.params))
        if self.venv != "":
            text("venv", self.venv, MAX_PATH)
        if self.conda != "":
            text("conda", self.conda, MAX_PATH)
        if self.venv and self.conda:
            bad(FieldError("venv", "give either venv or conda, not both"))
        for fieldname, message in runner_paths.problems(self):
            bad(FieldError(fieldname, message))
        return errs

    def validate(self, index: int = 0) -> TaskSpec:
        """Return self, or raise ValidationError naming every bad field."""
        errs = self.errors()
        if errs:
            raise ValidationError(
                FieldError(e.field, e.message, index, self.name if isinstance(self.name, str) else "") for e in errs
            )
        return self


def set_fields(spec: TaskSpec) -> dict[str, Any]:
    """The spec's name and progress parser, and every other field but resources that is not empty or zero, as the
    spec holds them: what its stored and wire forms carry (a field left out reads back empty or zero)."""
    d: dict[str, Any] = {"name": spec.name, "progress": spec.progress}
    if spec.argv:
        d["argv"] = spec.argv
    if spec.shell:
        d["shell"] = spec.shell
    if spec.cwd:
        d["cwd"] = spec.cwd
    if spec.env:
        d["env"] = spec.env
    if spec.labels:
        d["labels"] = spec.labels
    if spec.priority:
        d["priority"] = spec.priority
    if spec.max_retries:
        d["max_retries"] = spec.max_retries
    if spec.timeout_s:
        d["timeout_s"] = spec.timeout_s
    if spec.depends_on:
        d["depends_on"] = spec.depends_on
    if spec.tags:
        d["tags"] = spec.tags
    if spec.progress_pattern:
        d["progress_pattern"] = spec.progress_pattern
    if spec.result_marker:
        d["result_marker"] = spec.result_marker
    if spec.lost_after_s:
        d["lost_after_s"] = spec.lost_after_s
    if spec.params:
        d["params"] = spec.params
    if spec.venv:
        d["venv"] = spec.venv
    if spec.conda:
        d["conda"] = spec.conda
    return d


def _text_problem(value: object, limit: int, required: bool) -> str | None:
    """What is wrong with a text field's value, or None."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if "\x00" in value:
        return "contains a NUL byte; remove it"
    if len(value) * 4 > limit and len(value.encode("utf-8", "surrogatepass")) > limit:  # <= 4 bytes a char
        return f"is longer than {limit} bytes; shorten it"
    if required and not value.strip():
        return "is empty"
    return None
