"""stream.metrics: one call per batch yields every figure, in Prometheus's own text format."""

import time

import orjson
from prometheus_client.parser import text_string_to_metric_families

from stream.core.records import OutputRecord, SourceRecord, dead_letter
from stream.metrics import Metrics, add_stage, reason_class


def scrape(m: Metrics) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(m.exposition().decode())
        for s in fam.samples
    }


def batch_of(n, topic="ticks", age_s=0.3):
    ts = int((time.time() - age_s) * 1000)
    return [SourceRecord(topic, i % 2, 100 + i, b"k", b"{}", ts) for i in range(n)]


def test_one_batch_counts_events_outputs_dead_letters_stages_and_latency():
    m = Metrics()
    batch = batch_of(10)
    outs = [OutputRecord("forecasts", b"k", b"{}", 0) for _ in range(7)]
    outs += [
        dead_letter("dead-letters", batch[0], "impossible price -3.5 (must be > 0)"),
        dead_letter("dead-letters", batch[1], "impossible price 0 (must be > 0)"),
        dead_letter("dead-letters", batch[2], "missing field 'ts'"),
    ]
    outs.append(OutputRecord("model-events", b"k", orjson.dumps({"event": "model_refused", "slot": "forecast"})))
    clock = m.batch_started("forecast")
    assert scrape(m)[("finstream_inflight_batches", (("slot", "forecast"),))] == 1
    add_stage("redis", 0.004)
    add_stage("onnxruntime", 0.002)
    clock.mark("processed")
    add_stage("commit", 0.003, concurrent=True)
    add_stage("commit", 0.001, concurrent=True)  # a concurrent partition: the longest counts
    clock.mark("delivered")
    m.batch_done(clock, batch, outs)
    add_stage("redis", 5.0)  # after the batch: charged to nobody
    v = scrape(m)
    assert v[("finstream_inflight_batches", (("slot", "forecast"),))] == 0
    assert v[("finstream_events_total", (("slot", "forecast"), ("topic", "ticks")))] == 10
    assert v[("finstream_outputs_total", (("slot", "forecast"), ("topic", "forecasts")))] == 7
    assert (
        v[
            (
                "finstream_dead_letters_total",
                (("reason", "impossible price N"), ("slot", "forecast"), ("topic", "ticks")),
            )
        ]
        == 2
    )
    assert (
        v[
            (
                "finstream_dead_letters_total",
                (("reason", "missing field 'ts'"), ("slot", "forecast"), ("topic", "ticks")),
            )
        ]
        == 1
    )
    assert v[("finstream_model_refusals_total", (("slot", "forecast"),))] == 1
    assert v[("finstream_stage_seconds_sum", (("slot", "forecast"), ("stage", "redis")))] == 0.004
    assert v[("finstream_stage_seconds_sum", (("slot", "forecast"), ("stage", "commit")))] == 0.003
    assert v[("finstream_batch_size_events_sum", (("slot", "forecast"),))] == 10
    lat = ("finstream_end_to_end_latency_seconds", (("slot", "forecast"),))
    assert v[(lat[0] + "_count", lat[1])] == 10
    assert 0.29 < v[(lat[0] + "_sum", lat[1])] / 10 < 5.0
    below = v[(lat[0] + "_bucket", (("le", "0.25"), ("slot", "forecast")))]
    above = v[(lat[0] + "_bucket", (("le", "5.0"), ("slot", "forecast")))]
    assert (below, above) == (0, 10)
    assert m.positions == {("ticks", 0): 109, ("ticks", 1): 110}


def test_failed_batch_only_leaves_flight():
    m = Metrics()
    clock = m.batch_started("risk")
    m.batch_done(clock, batch_of(3, "transactions"), [], ok=False)
    v = scrape(m)
    assert v[("finstream_inflight_batches", (("slot", "risk"),))] == 0
    assert ("finstream_events_total", (("slot", "risk"), ("topic", "transactions"))) not in v


def test_reason_classes_are_bounded_and_keep_field_names():
    assert reason_class("currency 'XQZ' is not an ISO 4217 code") == "currency <value> is not an ISO N code"
    assert reason_class("not valid JSON: Expecting value line 1") == "not valid JSON"
    assert (
        reason_class("field 'ts' must be epoch milliseconds (1973..2100), got 17")
        == "field 'ts' must be epoch milliseconds"
    )
