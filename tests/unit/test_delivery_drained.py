"""The lanes' "partition drained" rule (``stream.delivery.drained_by_highwater``), shared by the
worker's Faust consumer and the aiokafka pass-through of the bench."""

from aiokafka.structs import TopicPartition

from stream.delivery import drained_by_highwater

TP0, TP1 = TopicPartition("ticks", 0), TopicPartition("ticks", 1)


def test_drained_once_the_next_offset_reaches_the_highwater_mark():
    marks = {TP0: 10}
    drained = drained_by_highwater(marks.get)
    assert not drained(TP0, 9)  # one record fetched behind this batch: keep the transaction open
    assert drained(TP0, 10)
    assert drained(TP0, 11)
    marks[TP0] = 12  # a newer fetch moved the mark: no longer drained
    assert not drained(TP0, 11)


def test_an_unknown_highwater_mark_counts_as_drained():
    assert drained_by_highwater({}.get)(TP1, 0)  # commit rather than wait for the interval
