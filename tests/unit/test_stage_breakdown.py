"""stream.tools.stage_breakdown: per-stage latency of the paced records, from traced units."""

from stream.tools.stage_breakdown import breakdown


def unit(ts, fetched, **marks):
    return {"tp": "t:0", "ts": ts, "fetched": fetched, "marks": marks}


def test_stages_are_measured_from_each_records_input_timestamp_and_from_the_stage_before():
    units = [
        unit([1000, 1010], [1020, 1030], dequeued=1050, sent=1051, committed=1100),
        unit([5000], [5005], dequeued=5010, sent=5011, committed=5040),  # outside the window: ignored
    ]
    rows = breakdown(units, (900, 2000))
    assert list(rows) == ["fetched", "dequeued", "sent", "committed"]  # pipeline order, missing stages left out
    assert rows["fetched"]["since_input"] == {"n": 2, "p50": 20.0, "p99": 20.0}
    assert rows["committed"]["since_input"]["p50"] == 95.0  # (100 + 90) / 2
    assert rows["dequeued"]["step"]["p50"] == 25.0  # 1050 - 1020 and 1050 - 1030
    assert rows["committed"]["step"]["n"] == 2 and rows["committed"]["step"]["p99"] == 49.0


def test_an_empty_window_gives_no_rows():
    assert breakdown([unit([1000], [1001], committed=1002)], (0, 10)) == {}
