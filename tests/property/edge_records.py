"""Generated input records for the edge's property tests and the running-worker fuzz pass:
a valid record per kind, then fields replaced, dropped or added, and sometimes its bytes mangled
(truncated, a key repeated, a key spelled with a JSON escape, or replaced by random bytes)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

MARK = "Zq9SECRET"  # planted in string values: must never show up in a reason

VALID = {
    "ticks": {
        "v": 1,
        "symbol": "SPX",
        "ts": 1_704_067_200_000,
        "price": 101.5,
        "bid": 101.4,
        "ask": 101.6,
        "volume": 1200.0,
        "event_id": "t-1",
    },
    "transactions": {
        "v": 1,
        "event_id": "e-1",
        "account_id": "a-1",
        "ts": 1_704_067_200_000,
        "amount": 42.0,
        "currency": "EUR",
        "merchant_category": "grocery",
        "channel": "pos",
        "country": "DE",
    },
    "user-events": {"v": 1, "user_id": "u-1", "ts": 1_704_067_200_000, "product_id": "car", "action": "view"},
}
ENTITY = {"ticks": "symbol", "transactions": "account_id", "user-events": "user_id"}

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e308, -1e308, 1e12, 1e12 + 1, 1e-9, 5e-10, 1_704_067_200, 4_102_444_800_001]),
)
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8).map(lambda t: t + MARK),
    st.sampled_from(
        [
            "EUR",
            "eur",
            "\u00c9UR",
            "DE",
            "\u00d6S",
            "pos",
            "ECOM",
            "view",
            "buy",
            "X\nCRITICAL x",
            "4111111111111111" + MARK,
            " ",
            "",
            "a" * 70,
        ]
    ),
)
values = st.one_of(
    numbers,
    texts,
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def keyed_record(draw, kind: str) -> tuple[bytes, bytes]:
    """(key, value): a valid record, then a few fields replaced, dropped or added; sometimes its
    bytes mangled."""
    d = dict(VALID[kind])
    d[ENTITY[kind]] = draw(st.sampled_from(["A", "B", "C", "D"]))  # a few busy entities
    d["ts"] += draw(st.integers(0, 10**9))
    if "event_id" in d:
        d["event_id"] = f"e-{draw(st.integers(0, 10**6))}"
    key = d[ENTITY[kind]].encode()  # the key a producer would use, whatever happens to the value
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(sorted(d) + ["extra", "v"]))
        action = draw(st.sampled_from(["set", "set", "drop"]))
        if action == "drop":
            d.pop(field, None)
        else:
            d[field] = draw(values)
    raw = json.dumps(d).encode()  # the standard library writes any int, as a producer might
    mangle = draw(st.sampled_from(["none"] * 6 + ["truncate", "dupkey", "garbage", "escape"]))
    if mangle == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mangle == "dupkey" and len(d) > 0:
        k = draw(st.sampled_from(sorted(d)))
        raw = raw[:-1] + b',"' + k.encode() + b'":' + json.dumps(draw(values)).encode() + b"}"
    elif mangle == "garbage":
        raw = draw(st.binary(max_size=64))
    elif mangle == "escape":  # a key spelled with a JSON escape: same key to a JSON parser
        raw = raw.replace(b'"ts"', b'"t\\u0073"', 1)
    return key, raw


def record(kind: str):
    return keyed_record(kind).map(lambda kv: kv[1])
