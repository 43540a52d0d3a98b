"""The duplicate-key check at the edge: its fast path (no backslash in the bytes, objects nested one
level) must say exactly what the standard library's parser says, and must be the path a real
risk record (with its nested ``signals``) takes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core import wire
from stream.core.wire import ContractError, decode


def _exact_has_duplicates(raw: bytes) -> bool:
    """The reference: every object's key list, as written, from the stdlib parser."""
    found = []

    def hook(pairs):
        keys = [k for k, _ in pairs]
        found.append(len(set(keys)) != len(keys))
        return dict(pairs)

    json.loads(raw, object_pairs_hook=hook)
    return any(found)


def _refused(raw: bytes) -> bool:
    try:
        decode(raw)
    except ContractError as exc:
        assert "duplicate key" in str(exc)
        return True
    return False


RISK = (
    b'{"v":1,"event_id":"e1","account_id":"13926-315","ts":1512086400000,"amount":68.5,'
    b'"currency":"USD","merchant_category":"W","channel":"ecom","country":"US","product_code":"W",'
    b'"signals":{"C1":1.0,"C2":1.0,"C13":1.0,"V13":0.0,"id_13":-1.0}}'
)


@pytest.mark.parametrize(
    "raw, duplicated",
    [
        (RISK, False),
        (RISK.replace(b'"C2":1.0', b'"C1":2.0'), True),  # duplicate key inside the nested object
        (RISK.replace(b'"product_code":"W"', b'"amount":1.0'), True),  # duplicate top-level key
        (RISK.replace(b'"C13"', b'"amount"'), False),  # nested key equal to a top-level key
        (RISK.replace(b'"C13"', b'"signals"'), False),  # nested key equal to its parent's key
        (RISK.replace(b'"event_id":"e1"', b'"event_id":"C1"'), False),  # a value spelled like a key
        (RISK.replace(b'"event_id":"e1"', b'"event_id":"\\"C2\\":1,"'), False),  # a value spelled like a key-value pair
        (RISK.replace(b'"event_id":"e1"', b'"event_id":"a:b:c"'), False),  # colons inside a string value
        (RISK.replace(b'"C2":1.0', b'"\\u0043\\u0031":2.0'), True),  # the repeated key written with escapes
        (RISK.replace(b'"C2":1.0', b'"C\\u0032":2.0'), False),  # an escaped key that is not a repeat
        (b'{"a":1,"b":{"c":{"d":1,"d":2}}}', True),  # deeper than one level: exact check
        (b'{"a":[{"k":1},{"k":2}]}', False),  # objects in a list: each has one "k"
        (b'{"a":[{"k":1,"k":2}]}', True),
        (b'{"a":{},"b":{}}', False),
        (b'{"a" : 1 , "a"\t:\n2}', True),  # whitespace around the colon
        ('{"café":1,"café":2}'.encode(), True),  # non-ASCII keys
    ],
)
def test_duplicate_keys_are_refused_exactly(raw, duplicated):
    assert _exact_has_duplicates(raw) == duplicated  # the case says what it means to
    assert _refused(raw) == duplicated


def test_a_risk_record_with_signals_takes_the_fast_path(monkeypatch):
    """The nested ``signals`` object no longer sends every risk record to the slow parser."""

    def slow(*a, **kw):
        raise AssertionError("the exact (slow) check ran")

    monkeypatch.setattr(wire.json, "loads", slow)
    assert decode(RISK)["signals"]["C13"] == 1.0
    with pytest.raises(ContractError, match="duplicate key"):
        decode(RISK.replace(b'"C2":1.0', b'"C1":2.0'))


# Generated objects, written out by hand so keys can repeat: few key names (collisions are likely,
# also between levels and with string values), sometimes a quote or backslash inside a name.
_names = st.sampled_from(["a", "b", "C1", "signals", "a:b", "{c}", "[", 'q"', "é", "x y"])
_scalars = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False), _names, st.booleans(), st.none()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: ("list", xs)),
        st.lists(st.tuples(_names, inner), max_size=4).map(lambda kv: ("obj", kv)),
    ),
    max_leaves=12,
)


def _render(v, ascii_only: bool) -> str:
    if isinstance(v, tuple) and v[0] == "list":
        return "[" + ",".join(_render(x, ascii_only) for x in v[1]) + "]"
    if isinstance(v, tuple):
        return (
            "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{_render(x, ascii_only)}" for k, x in v[1]) + "}"
        )
    return json.dumps(v, ensure_ascii=ascii_only)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=6), st.booleans())
def test_generated_objects_agree_with_the_exact_check(pairs, ascii_only):
    raw = _render(("obj", pairs), ascii_only).encode()
    assert _refused(raw) == _exact_has_duplicates(raw)
