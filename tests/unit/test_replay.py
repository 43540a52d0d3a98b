import orjson
import pytest

from stream.core.contracts import parse_tick, parse_user_event
from stream.replay import ReplayError, parse_mappings, rows_to_records, to_epoch_ms


def test_sp500_style_csv_maps_to_valid_ticks():
    rows = [{"Date": "1999-01-04", "Close": "1228.10", "Volume": "877000000"}]
    [(key, value)] = rows_to_records(rows, "ticks", parse_mappings(["ts=Date", "price=Close"], "ticks"), "SPX")
    assert key == b"SPX"
    tick = parse_tick(orjson.loads(value))
    assert (tick.symbol, tick.price, tick.ts) == ("SPX", 1228.10, 915408000000)


def test_bad_values_are_published_as_is_for_the_edge_to_judge():
    rows = [{"symbol": "X", "ts": "yesterday", "price": "abc"}]
    [(_, value)] = rows_to_records(rows, "ticks", {}, None)
    assert orjson.loads(value) == {"v": 1, "symbol": "X", "ts": "yesterday", "price": "abc"}


def test_epoch_and_iso_timestamps():
    assert to_epoch_ms("1700000000000") == 1_700_000_000_000
    assert to_epoch_ms("2020-01-01T00:00:00+01:00") == 1_577_833_200_000


@pytest.mark.parametrize("maps, kind, msg", [
    (["ts"], "ticks", "not field=column"),
    (["colour=Red"], "ticks", "has no such field"),
    ([], "trades", "unknown kind"),
])
def test_mapping_errors_are_clear(maps, kind, msg):
    with pytest.raises(ReplayError, match=msg):
        parse_mappings(maps, kind)


def test_user_events_keyed_by_user():
    rows = [{"user_id": "u1", "ts": "1700000000000", "product_id": "car", "action": "buy", "source": "x"}]
    [(key, value)] = rows_to_records(rows, "user-events", {}, None)
    assert key == b"u1" and parse_user_event(orjson.loads(value)).product_id == "car"
