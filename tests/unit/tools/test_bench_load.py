"""``bench_load.flood_and_paced``: what a Kafka run of the bench feeds and how many outputs it waits
for, the one rule ``finstream bench`` (``bench_kafka``) and the scale-out bench share."""

from __future__ import annotations

from stream.tools.bench_load import flood_and_paced


def test_paced_outputs_count_what_the_flood_left_warm():
    calls = []

    def load(n, spread=None):
        calls.append((n, spread))
        return [(f"e{i % 15}".encode(), str(i).encode()) for i in range(n)]

    def first_of_their_entity(recs):  # an entity's first record gives no output, like a warming window
        return len({k for k, _ in recs})

    records, paced, warming, paced_expected = flood_and_paced(load, first_of_their_entity, 10)
    assert calls == [(20, 10)]  # one load: the paced records continue the flood's
    assert [v for _, v in records + paced] == [str(i).encode() for i in range(20)]
    assert warming == 10  # e0..e9, each first seen in the flood
    assert paced_expected(3) == 0  # e10..e12: new entities, silent
    assert paced_expected(10) == 5  # e10..e14 silent, then e0..e4 warm from the flood
