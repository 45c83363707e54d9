"""Task spec validation: every bad field gets an error naming it."""

from __future__ import annotations

import pytest
from dtask_common.models import (
    MAX_COMMAND_BYTES,
    MAX_NAME,
    Resources,
    TaskSpec,
    ValidationError,
    validate_batch,
)


def fields(spec: TaskSpec) -> set[str]:
    return {e.field for e in spec.errors()}


def test_valid_specs_pass() -> None:
    assert TaskSpec(name="a", argv=("echo", "hi")).errors() == []
    assert TaskSpec(shell="echo hi | wc -c").errors() == []
    assert TaskSpec(shell="x", progress="regex", progress_pattern=r"(?P<step>\d+)/(?P<total>\d+)").errors() == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (TaskSpec(), "command"),
        (TaskSpec(shell="   "), "command"),
        (TaskSpec(argv=("a",), shell="b"), "command"),
        (TaskSpec(argv=("",)), "command[0]"),
        (TaskSpec(argv=("echo", "a\x00b")), "command[1]"),
        (TaskSpec(shell="echo \x00"), "command"),
        (TaskSpec(shell="x" * (MAX_COMMAND_BYTES + 1)), "command"),
        (TaskSpec(name="n" * (MAX_NAME + 1), shell="x"), "name"),
        (TaskSpec(name="a\x00", shell="x"), "name"),
        (TaskSpec(shell="x", cwd="/tmp\x00"), "cwd"),
        (TaskSpec(shell="x", env={"A=B": "1"}), "env.A=B"),
        (TaskSpec(shell="x", env={"A": "\x00"}), "env.A"),
        (TaskSpec(shell="x", resources=Resources(cpus=-1)), "resources.cpus"),
        (TaskSpec(shell="x", resources=Resources(memory_mb=-5)), "resources.memory_mb"),
        (TaskSpec(shell="x", resources=Resources(gpus=-1)), "resources.gpus"),
        (TaskSpec(shell="x", labels={"": "v"}), "labels."),
        (TaskSpec(shell="x", max_retries=-1), "max_retries"),
        (TaskSpec(shell="x", max_retries=1000), "max_retries"),
        (TaskSpec(shell="x", priority=2**40), "priority"),
        (TaskSpec(shell="x", timeout_s=-3), "timeout_s"),
        (TaskSpec(shell="x", depends_on=("",)), "depends_on[0]"),
        (TaskSpec(shell="x", tags=("ok", "")), "tags[1]"),
        (TaskSpec(shell="x", progress="bogus"), "progress"),
        (TaskSpec(shell="x", progress="regex"), "progress_pattern"),
        (TaskSpec(shell="x", progress="regex", progress_pattern="(unclosed"), "progress_pattern"),
        (TaskSpec(shell="x", progress="regex", progress_pattern=r"(?P<foo>\d+)"), "progress_pattern"),
        (TaskSpec(shell="x", progress_pattern=r"(?P<step>\d+)"), "progress_pattern"),
        (TaskSpec(shell="x", result_marker="\x00"), "result_marker"),
    ],
)
def test_bad_field_is_named(spec: TaskSpec, field: str) -> None:
    assert field in fields(spec)


def test_unknown_parser_message_lists_choices() -> None:
    with pytest.raises(ValidationError) as exc:
        TaskSpec(name="t", shell="x", progress="bogus").validate(index=2)
    err = exc.value.errors[0]
    assert err.index == 2 and err.task_name == "t"
    assert "auto" in err.message and "tqdm" in err.message
    assert "task 't': progress: unknown parser 'bogus'" in str(exc.value)


def test_batch_duplicates_and_self_dependency() -> None:
    errs = validate_batch([TaskSpec(name="a", shell="x"), TaskSpec(name="a", shell="y", depends_on=("a",))])
    assert [(e.index, e.field) for e in errs] == [(1, "name"), (1, "depends_on")]
