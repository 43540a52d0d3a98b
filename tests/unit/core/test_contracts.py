import math

import orjson
import pytest

from stream.core.contracts import ContractError, decode, parse_tick, parse_transaction, parse_user_event, to_record

TXN = {
    "v": 1,
    "event_id": "e1",
    "account_id": "a1",
    "ts": 1_700_000_000_000,
    "amount": 12.5,
    "currency": "eur",
    "merchant_category": "grocery",
    "channel": "POS",
    "country": "de",
}


def test_valid_records_parse_and_normalise():
    t = parse_transaction(dict(TXN))
    assert (t.currency, t.channel, t.country) == ("EUR", "pos", "DE")
    tick = parse_tick({"symbol": "SPX", "ts": 1_700_000_000_000, "price": 100.0, "bid": 99.9, "ask": 100.1})
    assert tick.price == 100.0 and tick.bid == 99.9
    ev = parse_user_event({"user_id": "u", "ts": 1_700_000_000_000, "product_id": "car", "action": "BUY"})
    assert ev.action == "buy"
    assert to_record(tick)["v"] == 1 and "volume" not in to_record(tick)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"not json", "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (None, "empty record"),
    ],
)
def test_decode_rejects_with_reason(raw, reason):
    with pytest.raises(ContractError, match=reason):
        decode(raw)


@pytest.mark.parametrize(
    "patch, reason",
    [
        ({"amount": -3}, "impossible amount"),
        ({"amount": 0}, "impossible amount"),
        ({"amount": "12"}, "must be a number"),
        ({"amount": True}, "must be a number"),
        ({"currency": "EURO"}, "longer than 3"),
        ({"country": "1X"}, "ISO 3166"),
        ({"channel": "fax"}, "unknown channel"),
        ({"ts": 1_700_000_000}, "looks like epoch seconds"),
        ({"ts": 10**16}, "epoch milliseconds"),
        ({"v": 2}, "unsupported schema version"),
        ({"event_id": None}, "missing field 'event_id'"),
        ({"event_id": " "}, "is empty"),
    ],
)
def test_transaction_rules(patch, reason):
    d = {**TXN, **patch}
    if reason is None:
        parse_transaction(d)
        return
    with pytest.raises(ContractError, match=reason):
        parse_transaction(d)


def test_non_finite_and_impossible_prices():
    for price, reason in [(0, "impossible price"), (-1.0, "impossible price"), (math.inf, "not finite")]:
        with pytest.raises(ContractError, match=reason):
            parse_tick({"symbol": "X", "ts": 1_700_000_000_000, "price": price})
    with pytest.raises(ContractError, match="crossed quote"):
        parse_tick({"symbol": "X", "ts": 1_700_000_000_000, "price": 1.0, "bid": 2.0, "ask": 1.0})
    # orjson refuses NaN literals, so a NaN never reaches the parser from the wire
    with pytest.raises(ContractError):
        decode(b'{"price": NaN}')


def test_user_event_actions():
    with pytest.raises(ContractError, match="unknown action"):
        parse_user_event({"user_id": "u", "ts": 1_700_000_000_000, "product_id": "car", "action": "steal"})
    assert (
        orjson.loads(
            orjson.dumps(
                to_record(
                    parse_user_event({"user_id": "u", "ts": 1_700_000_000_000, "product_id": "car", "action": "view"})
                )
            )
        )["action"]
        == "view"
    )
