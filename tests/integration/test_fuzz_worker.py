"""Fuzz pass against a running worker on the real broker and Redis (issue 7).

The property tests' record generator (``tests/property/edge_records.py``) feeds a real worker
``PER_KIND`` records per input kind, on a few busy keys: valid ones, broken fields, mangled bytes,
repeated keys, control characters, huge and non-finite-looking numbers. Whatever arrives, every
transaction and user event must end with exactly one answer (its output or a dead letter), no tick
with two, the worker must stay up, and its log must stay one line per message with no values.
The counts are printed (``pytest -s``) for docs/reliability.md.
"""

from __future__ import annotations

import time
from collections import Counter

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stream.core.contracts import ContractError, decode, parse_tick  # noqa: E402
from tests.integration.workers import consume, produce
from tests.property.edge_records import MARK, keyed_record  # noqa: E402

PER_KIND = 1000


def generated(kind: str, n: int) -> list[tuple[bytes, bytes]]:
    """``n`` (key, value) records, the same on every run."""
    out: list = []

    @settings(
        max_examples=n // 100,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(keyed_record(kind), min_size=100, max_size=100))
    def collect(batch):
        out.extend(batch)

    collect()
    return out[:n]


def answered(got: dict, topic: str, source: str) -> list[str]:
    return [k.decode() for k, _ in got[topic] if k.decode().startswith(f"{source}:")]


def test_fuzzed_records_each_get_one_answer_and_the_worker_stays_up(worker_run):
    run = worker_run()
    s = run.settings
    feeds = {
        s.topic_ticks: generated("ticks", PER_KIND),
        s.topic_transactions: generated("transactions", PER_KIND),
        s.topic_user_events: generated("user-events", PER_KIND),
    }
    for topic, recs in feeds.items():
        produce(s, topic, recs)
    run.start()
    outs = [s.topic_forecasts, s.topic_risk_scores, s.topic_recommendations, s.topic_dead_letters]

    def done(g) -> bool:
        return (
            len(answered(g, s.topic_risk_scores, s.topic_transactions))
            + len(answered(g, s.topic_dead_letters, s.topic_transactions))
            >= PER_KIND
            and len(answered(g, s.topic_recommendations, s.topic_user_events))
            + len(answered(g, s.topic_dead_letters, s.topic_user_events))
            >= PER_KIND
        )

    got = consume(s, outs, until=done, timeout=240)
    time.sleep(2)
    got = consume(s, outs, timeout=5)
    alive = run.proc.poll() is None
    run.stop()
    log = run.log_text()

    counts = {}
    for kind, topic, out_topic in (
        ("transactions", s.topic_transactions, s.topic_risk_scores),
        ("user-events", s.topic_user_events, s.topic_recommendations),
        ("ticks", s.topic_ticks, s.topic_forecasts),
    ):
        ok, dead = answered(got, out_topic, topic), answered(got, s.topic_dead_letters, topic)
        assert len(ok) == len(set(ok)) and len(dead) == len(set(dead)) and not set(ok) & set(dead), kind
        counts[kind] = {"sent": PER_KIND, "outputs": len(ok), "dead_letters": len(dead)}
        if kind != "ticks":
            assert len(ok) + len(dead) == PER_KIND, (kind, counts[kind])
    refused = 0
    for _, raw in feeds[s.topic_ticks]:
        try:
            parse_tick(decode(raw))
        except ContractError:
            refused += 1
    # ticks feed time bars (a forecast per closed bar, not per tick): every tick the contract refuses
    # is dead-lettered (late ticks may add more), and none is both dead-lettered and forecast
    assert refused <= counts["ticks"]["dead_letters"] <= PER_KIND, (counts["ticks"], refused)

    reasons = Counter(v["reason"].split(" (")[0][:60] for _, v in got[s.topic_dead_letters])
    print("\nfuzz counts", counts, "\nreasons", reasons.most_common(25))
    assert alive, log[-3000:]
    assert "unprocessable record" not in log and "giving up" not in log and "Traceback" not in log, log[-3000:]
    assert MARK not in log and not any(line.startswith("CRITICAL x") for line in log.splitlines())
