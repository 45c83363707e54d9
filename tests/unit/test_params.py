"""Task parameters: KEY=VALUE typed like TOML, limits with one-line reasons, matching, matrix expansion."""

from __future__ import annotations

import pytest
from dtask_common import taskfile
from dtask_common.models import TaskSpec
from dtask_common.models import params as p
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("lr=0.1", 0.1),
        ("n=3", 3),
        ("name=cnn", "cnn"),
        ("on=true", True),
        ("off=false", False),
        ('s="3"', "3"),
        ("e=1e-3", 0.001),
        ("w=1.0", 1.0),
        ("neg=-2", -2),
        ("date=2024-01-01", "2024-01-01"),  # TOML would give a date: kept as text
        ("list=[1, 2]", "[1, 2]"),
        ("empty=", ""),
        ("spaced=a b", "a b"),
    ],
)
def test_values_are_typed_like_toml(text: str, value: object) -> None:
    key, got = p.parse_pair(text)
    assert key == text.split("=")[0]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr", "use KEY=VALUE"),
        ("=1", "a parameter name is empty"),
        ("bad key=1", "is not valid"),
        ("1x=1", "is not valid"),
        ("k" * 65 + "=1", "longer than 64 bytes"),
        ("x=inf", "not a finite number"),
        ("x=nan", "not a finite number"),
        ("n=9223372036854775808", "out of the 64-bit range"),
        ("s=" + "x" * 257, "longer than 256 bytes"),
    ],
)
def test_bad_pairs_say_why_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        p.parse_pair(text)
    assert "\n" not in str(info.value)


def test_a_key_given_twice_and_too_many_params() -> None:
    with pytest.raises(ValueError, match="given twice"):
        p.parse_pairs(["a=1", "a=2"])
    many = {f"k{i}": i for i in range(p.MAX_PARAMS + 1)}
    assert [e.message for e in p.errors(many)] == [f"has more than {p.MAX_PARAMS} entries"]
    errs = TaskSpec(shell="true", params={"ok": [1]}).errors()  # type: ignore[dict-item]
    assert [(e.field, e.message) for e in errs] == [
        ("params.ok", "must be a string, integer, float or boolean, got list")
    ]


def test_matching_compares_numbers_by_value_and_keeps_text_and_booleans_apart() -> None:
    assert p.same(3, 3.0) and p.same(0.1, 0.1) and p.same("cnn", "cnn") and p.same(True, True)
    assert not p.same("3", 3) and not p.same(True, 1) and not p.same(1, True) and not p.same(False, 0.0)
    assert p.matches({"lr": 0.1, "model": "cnn"}, {"model": "cnn"})
    assert not p.matches({"lr": 0.1}, {"model": "cnn"})


def test_base_names() -> None:
    assert p.base_name("train[model=cnn,lr=0.1]") == "train"
    assert p.base_name("train") == "train" and p.base_name("[x]") == "[x]" and p.base_name("a[b") == "a[b"


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False), st.booleans()))
def test_a_value_written_as_a_user_would_parses_back_to_itself(value: int | float | bool) -> None:
    back = p.parse_value(p.shown(value) if not isinstance(value, float) else repr(value))
    assert back == value and type(back) is type(value)


def test_matrix_tasks_carry_their_combination_typed(tmp_path: object) -> None:
    specs = taskfile.parse(
        '[[task]]\nname = "t"\ncommand = "echo {m} {lr}"\n[task.matrix]\nm = ["a", "b"]\nlr = [0.5, 1.0, 2]\n'
        "on = [true]\n"
    )
    assert [s.name for s in specs][:2] == ["t[m=a,lr=0.5,on=true]", "t[m=a,lr=1.0,on=true]"]
    assert specs[1].params == {"m": "a", "lr": 1.0, "on": True} and type(specs[1].params["lr"]) is float
    assert type(specs[2].params["lr"]) is int
    assert taskfile.parse('[[task]]\nname = "x"\ncommand = "true"\n')[0].params == {}


def test_matrix_keys_and_values_are_checked_once() -> None:
    with pytest.raises(taskfile.TaskFileError) as info:
        taskfile.parse('[[task]]\nname = "t"\ncommand = "true"\n[task.matrix]\n"bad key" = [1, 2]\n')
    assert info.value.problems == ["<tasks>: task 't' (#1): matrix.bad key: parameter name 'bad key' is not valid "
                                   "(a letter or _ first, then letters, digits, _ . or -)"]  # fmt: skip
    with pytest.raises(taskfile.TaskFileError, match="matrix.x: is not a finite number|matrix.x: inf"):
        taskfile.parse('[[task]]\nname = "t"\ncommand = "true"\n[task.matrix]\nx = [1.0, inf]\n')
