"""Placeholders a task file leaves for the runner: {runner:work_dir}, {runner:home} and {path:NAME} (no I/O).

The submitter's placeholders ({taskfile_dir}, matrix values) are replaced when the task file is read;
these stay in the spec as written and are replaced on the runner that takes the task, with the values
it has (its work dir, its home, the paths it declares with `dtask runner --path NAME=DIR`). A task that
names {path:NAME} is placed only on a runner that declares NAME.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (the models check specs with this module)
    from dtask_common.models import TaskSpec

PLACEHOLDER = re.compile(r"\{(runner|path):([^{}\s]*)\}")
#: What {runner:KEY} may name.
RUNNER_KEYS = ("work_dir", "home")
#: What a declared path's NAME may look like.
PATH_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
#: The label, for placement only, a runner that declares path NAME carries: PATH_LABEL + NAME.
PATH_LABEL = "path:"


class UnresolvedPlaceholder(ValueError):
    """A runner-side placeholder this runner has no value for; the message names it."""


def spec_texts(spec: TaskSpec) -> Iterator[tuple[str, str]]:
    """(field, text) of every field of a spec where runner-side placeholders are replaced."""
    if spec.shell:
        yield "command", spec.shell
    for i, arg in enumerate(spec.argv):
        yield f"command[{i}]", arg
    if spec.cwd:
        yield "cwd", spec.cwd
    for key, value in spec.env.items():
        yield f"env.{key}", value
    if spec.venv:
        yield "venv", spec.venv
    if spec.conda:
        yield "conda", spec.conda


def _has_brace(spec: TaskSpec) -> bool:
    """Whether any text of spec_texts holds a `{` (most specs hold none: then no placeholder can be there)."""
    return (
        "{" in spec.shell
        or "{" in spec.cwd
        or "{" in spec.venv
        or "{" in spec.conda
        or (bool(spec.argv) and any("{" in arg for arg in spec.argv))  # (a generator costs even when empty)
        or (bool(spec.env) and any("{" in value for value in spec.env.values()))
    )


def problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """(field, message) for each runner-side placeholder that no runner could ever resolve."""
    out: list[tuple[str, str]] = []
    if not _has_brace(spec):
        return out
    for fieldname, text in spec_texts(spec):
        if "{" not in text:
            continue
        for kind, name in PLACEHOLDER.findall(text):
            if kind == "runner" and name not in RUNNER_KEYS:
                known = ", ".join(f"{{runner:{k}}}" for k in RUNNER_KEYS)
                out.append((fieldname, f"unknown placeholder {{runner:{name}}}; use {known} or {{path:NAME}}"))
            elif kind == "path" and not PATH_NAME.fullmatch(name):
                out.append(
                    (fieldname, f"{{path:{name}}}: a path name is letters, digits, _ . - (a runner's --path NAME=DIR)")
                )
    return out


def path_names(spec: TaskSpec) -> frozenset[str]:
    """The names of the runner paths ({path:NAME}) the spec uses."""
    if not _has_brace(spec):
        return frozenset()
    names = {
        name
        for _, text in spec_texts(spec)
        if "{path:" in text
        for kind, name in PLACEHOLDER.findall(text)
        if kind == "path" and PATH_NAME.fullmatch(name)
    }
    return frozenset(names)


def uses_placeholders(spec: TaskSpec) -> bool:
    return _has_brace(spec) and any("{runner:" in text or "{path:" in text for _, text in spec_texts(spec))


def runner_values(work_dir: str, home: str, paths: Mapping[str, str]) -> dict[str, str]:
    """The values a runner resolves placeholders with, keyed as written between the braces."""
    return {"runner:work_dir": work_dir, "runner:home": home, **{f"path:{k}": v for k, v in paths.items()}}


def resolve(text: str, values: Mapping[str, str]) -> str:
    """text with each runner-side placeholder replaced; UnresolvedPlaceholder for one values lacks."""
    if "{" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        key = f"{m.group(1)}:{m.group(2)}"
        if key not in values:
            if m.group(1) == "path":
                raise UnresolvedPlaceholder(
                    f"{{{key}}} is not declared on this runner (start it with --path {m.group(2)}=DIR)"
                )
            raise UnresolvedPlaceholder(f"unknown placeholder {{{key}}}")
        return values[key]

    return PLACEHOLDER.sub(one, text)


def resolve_spec(spec: TaskSpec, values: Mapping[str, str]) -> TaskSpec:
    """The spec with its runner-side placeholders replaced (the same spec when it has none)."""
    if not uses_placeholders(spec):
        return spec
    return dataclasses.replace(
        spec,
        shell=resolve(spec.shell, values),
        argv=tuple(resolve(a, values) for a in spec.argv),
        cwd=resolve(spec.cwd, values),
        env={k: resolve(v, values) for k, v in spec.env.items()},
        venv=resolve(spec.venv, values),
        conda=resolve(spec.conda, values),
    )


def parse_path(item: str) -> tuple[str, str]:
    """NAME=DIR of `--path` (runner.paths) as (name, dir); ValueError with a one-line message."""
    name, sep, directory = item.partition("=")
    name, directory = name.strip(), directory.strip()
    if not sep or not directory:
        raise ValueError(f"--path {item!r}: use NAME=DIR, e.g. --path code=/srv/lab/code")
    if not PATH_NAME.fullmatch(name):
        raise ValueError(f"--path {item!r}: the name {name!r} must be letters, digits, _ . - (starting with a letter)")
    if not directory.startswith(("/", "~")):
        raise ValueError(f"--path {item!r}: {directory!r} must be an absolute directory")
    return name, directory
