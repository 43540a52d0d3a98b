from aiokafka.structs import TopicPartition

from stream.core.records import OutputRecord, SourceRecord
from stream.publisher import Publisher
from stream.settings import Settings


def src(p, o):
    return SourceRecord("ticks", p, o, b"k", b"{}")


def out(p):
    return OutputRecord("forecasts", b"k", b"{}", p)


def test_exactly_once_plan_is_one_unit_per_source_partition():
    pub = Publisher(Settings(processing_guarantee="exactly_once"))
    batch = [src(0, 5), src(1, 9), src(0, 6)]
    outputs = [out(0), out(1), out(0), OutputRecord("model-events", b"m", b"{}", None)]
    plan = {tp: (outs, nxt, n) for tp, outs, nxt, n in pub.split(batch, outputs)}
    assert set(plan) == {TopicPartition("ticks", 0), TopicPartition("ticks", 1)}
    assert plan[TopicPartition("ticks", 0)][1] == 7 and plan[TopicPartition("ticks", 1)][1] == 10
    assert plan[TopicPartition("ticks", 0)][2] == 2 and plan[TopicPartition("ticks", 1)][2] == 1
    assert len(plan[TopicPartition("ticks", 0)][0]) == 3  # two forecasts + the model event
    assert len(plan[TopicPartition("ticks", 1)][0]) == 1


def test_at_least_once_plan_is_the_whole_batch():
    pub = Publisher(Settings(processing_guarantee="at_least_once"))
    outputs = [out(0), out(1)]
    assert pub.split([src(0, 1), src(1, 2)], outputs) == [(None, outputs, None, 2)]


def test_split_counts_each_partitions_events_over_its_runs():
    """A batch holds a partition's records in runs (fetched chunks); the counts and next offsets
    add up over every run, in order of first appearance, whatever the order of offsets in a run."""
    pub = Publisher(Settings(processing_guarantee="exactly_once"))
    batch = [src(1, 9), src(0, 6), src(0, 5), src(1, 10), src(0, 7), src(1, 8)]
    units = pub.split(batch, [out(0), out(1), out(0)])
    assert [(tp, len(outs), nxt, n) for tp, outs, nxt, n in units] == [
        (TopicPartition("ticks", 1), 1, 11, 3),
        (TopicPartition("ticks", 0), 2, 8, 3),
    ]
    alo = Publisher(Settings(processing_guarantee="at_least_once"))
    assert alo.split(batch, []) == [(None, [], None, 6)]
