"""``finstream backtest`` without servers: source positions as Kafka would give them, the output
files, and how ``--compare`` reports a divergence (the live comparison is in
tests/integration/test_backtest.py)."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner

from stream.core.records import OutputRecord, SourceRecord
from stream.settings import Settings
from stream.tools import backtest as bt
from stream.tools import backtest_compare as btc


def test_positions_follow_the_default_partitioner_and_count_per_partition():
    keys = [f"sym-{n % 7}".encode() for n in range(70)]
    recs = bt.source_records("ticks", [(k, b"{}") for k in keys], 4)
    assert [r.partition for r in recs] == [DefaultPartitioner()(k, [0, 1, 2, 3], [0, 1, 2, 3]) for k in keys]
    for p in range(4):
        assert [r.offset for r in recs if r.partition == p] == list(range(sum(r.partition == p for r in recs)))


def out(key: str, body: dict, topic="forecasts", partition=0) -> OutputRecord:
    return OutputRecord(topic, key.encode(), orjson.dumps(body), partition)


def live_of(records):
    """Outputs as a consumer reads them back."""
    return [SourceRecord(r.topic, r.partition, n, r.key, r.value) for n, r in enumerate(records)]


def test_compare_reports_zero_or_the_first_divergence():
    ours = [out(f"ticks:0:{i}", {"a": i, "b": {"c": [1, 2]}}) for i in range(5)] + [
        out("ticks:1:0", {"a": 0}, partition=1)
    ]
    same = btc.compare("forecasts", ours, live_of(ours))
    assert (same.diverged, same.compared, same.differing) == (False, 6, 0)

    theirs = list(ours)
    theirs[3] = out("ticks:0:3", {"a": 3, "b": {"c": [1, 3]}})
    theirs[4] = out("ticks:0:4", {"a": 4.0, "b": {"c": [1, 2]}})  # 4 vs 4.0: different bytes, different type
    c = btc.compare("forecasts", ours + [out("x:0:0", {}, topic="dead-letters")], live_of(theirs))
    assert c.differing == 2 and c.backtest_records == 6
    assert c.first == {
        "partition": 0,
        "index": 3,
        "key": "ticks:0:3",
        "reason": "different value",
        "field": "b.c[1]",
        "backtest": 2,
        "live": 3,
    }


def test_compare_reports_missing_and_extra_records():
    ours = [out(f"ticks:0:{i}", {"a": i}) for i in range(3)]
    short = btc.compare("forecasts", ours, live_of(ours[:2]))
    assert short.differing == 1 and short.first["index"] == 2 and "live did not publish" in short.first["reason"]
    long = btc.compare("forecasts", ours[:1], live_of(ours))
    assert long.differing == 2 and long.first["index"] == 1 and "did not produce" in long.first["reason"]


def test_first_difference_walks_dicts_and_lists():
    assert btc.first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) is None
    assert btc.first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 5}]}) == ("a[1].b", 2, 5)
    assert btc.first_difference({"a": 1}, {"a": 1, "z": 0}) == ("z", None, 0)
    assert btc.first_difference([1, 2], [1]) == ("value", [1, 2], [1])


def test_backtest_runs_the_live_job_in_process_and_writes_json_lines(tmp_path):
    s = Settings(topic_dead_letters="dl-x")
    records = bt.source_records(
        s.topic_ticks,
        [
            (b"SPX", orjson.dumps({"v": 1, "symbol": "SPX", "ts": 1_600_000_000_000, "price": 10.0})),
            (b"SPX", b"not json"),
        ],
        2,
    )
    outputs = bt.backtest(s, s.topic_ticks, records)
    counts = bt.write_outputs(outputs, tmp_path)
    assert counts["dl-x"] == 1
    [line] = (tmp_path / "dl-x.jsonl").read_bytes().splitlines()
    d = orjson.loads(line)
    assert d["key"] == f"{s.topic_ticks}:{records[1].partition}:1" and "JSON" in d["value"]["reason"].upper()
    assert bt.resolve_topic(s, "dead-letters") == "dl-x" and bt.resolve_topic(s, "forecasts") == s.topic_forecasts


def test_compare_leaves_out_live_outputs_of_other_inputs():
    inputs = bt.source_records("ticks", [(b"SPX", b"{}")] * 3, 1)
    ours = [out(f"ticks:0:{i}", {"a": i}) for i in range(3)]
    others = [out("ticks:0:7", {"a": 7}), out("transactions:0:1", {"b": 1}), out("ticks:0:x", {})]
    c = btc.compare("forecasts", ours, live_of(others[:1] + ours + others[1:]), keep=btc.from_inputs(inputs))
    assert (c.diverged, c.compared, c.live_records) == (False, 3, 3)
    assert btc.compare("forecasts", ours, live_of(others[:1] + ours)).diverged  # without the filter it differs


def test_backtest_command_on_the_bundled_caravan_events(tmp_path):
    from typer.testing import CliRunner

    from stream.cli import app
    from stream.settings import REPO_ROOT

    csv_file = REPO_ROOT / "stream/data/caravan_events.csv"
    res = CliRunner().invoke(
        app, ["backtest", "--kind", "user-events", "--input", str(csv_file), "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    rows = len(csv_file.read_text().splitlines()) - 1
    recs = [orjson.loads(line) for line in (tmp_path / "recommendations.jsonl").read_bytes().splitlines()]
    assert len(recs) == rows and {r["value"]["source"]["topic"] for r in recs} == {"user-events"}
    assert all(r["key"] == "user-events:{partition}:{offset}".format(**r["value"]["source"]) for r in recs)
