"""The store's compact JSON: the C encoder built once writes exactly what json.dumps writes, and costs less."""

from __future__ import annotations

import json
import math
import timeit

import pytest
from dtask_controller.store import compact_json
from dtask_controller.store.compact_json import compact
from hypothesis import given
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.tuples(inner, inner) | st.dictionaries(st.text(), inner),
    max_leaves=30,
)


@given(JSON)
def test_compact_writes_what_json_dumps_writes(value: object) -> None:
    assert compact(value) == json.dumps(value, separators=(",", ":"))


def test_what_cannot_be_encoded_is_refused_as_json_dumps_refuses_it() -> None:
    for bad in ({1, 2}, object(), b"bytes", {(1, 2): 3}):
        with pytest.raises(TypeError):
            compact(bad)
    assert compact(math.nan) == "NaN"  # as json.dumps: a spec never holds one (validation refuses it)


def test_without_the_c_encoder_the_python_encoder_writes_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    slow = compact_json._encoder()
    assert slow.__name__ == "encode" and getattr(slow, "__self__", None) is not None  # JSONEncoder.encode
    assert slow({"a": [1, "é"]}) == '{"a":[1,"\\u00e9"]}'


def test_a_typical_spec_costs_less_than_json_encoder_encode() -> None:
    """JSONEncoder.encode builds the C encoder on every call (1.6 us a spec, of which 0.7 us the building)."""
    spec = {"name": "t-1", "progress": "auto", "shell": "python train.py --seed 1", "tags": ("bench",)}
    plain = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    assert getattr(compact, "__self__", None) is None  # the C path is the one in use on this Python

    def cost(f: object) -> float:
        return min(timeit.repeat("f(spec)", globals={"f": f, "spec": spec}, number=20_000, repeat=7))

    assert cost(compact) < 0.8 * cost(plain)
