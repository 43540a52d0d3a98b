import orjson
import pytest

from stream.core.contracts import parse_tick, parse_user_event
from stream.tools.replay import ReplayError, parse_mappings, rows_to_records, to_epoch_ms


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


@pytest.mark.parametrize(
    "maps, kind, msg",
    [
        (["ts"], "ticks", "not field=column"),
        (["colour=Red"], "ticks", "has no such field"),
        ([], "trades", "unknown kind"),
    ],
)
def test_mapping_errors_are_clear(maps, kind, msg):
    with pytest.raises(ReplayError, match=msg):
        parse_mappings(maps, kind)


def test_user_events_keyed_by_user():
    rows = [{"user_id": "u1", "ts": "1700000000000", "product_id": "car", "action": "buy", "source": "x"}]
    [(key, value)] = rows_to_records(rows, "user-events", {}, None)
    assert key == b"u1" and parse_user_event(orjson.loads(value)).product_id == "car"


def test_ts_format_reads_interbank_minute_stamps_as_utc():
    assert to_epoch_ms("201704190900", "%Y%m%d%H%M") == 1_492_592_400_000  # 2017-04-19 09:00 UTC
    rows = [{"sym": "EURUSD", "t": "201704190900", "bid": "1.0712", "ask": "1.0714"}]
    [(_, value)] = rows_to_records(rows, "ticks", parse_mappings(["symbol=sym", "ts=t"], "ticks"), None, "%Y%m%d%H%M")
    tick = parse_tick(orjson.loads(value))
    assert tick.ts == 1_492_592_400_000 and tick.price == pytest.approx(1.0713)  # quote-only: the mid


@pytest.mark.parametrize("stamp, pattern", [("201704190900", "%Y%m%d%H%M"), ("20170419", "%Y%m%d")])
def test_digit_dates_read_as_1970s_epochs_are_refused_with_the_fix(stamp, pattern):
    with pytest.raises(
        ReplayError, match=f"looks like a date .* epoch milliseconds it is 197.*--ts-format '{pattern}'"
    ):
        to_epoch_ms(stamp)


def test_ts_format_mismatch_is_a_clear_error():
    with pytest.raises(ReplayError, match="does not match --ts-format"):
        to_epoch_ms("2017-04-19", "%Y%m%d%H%M")
