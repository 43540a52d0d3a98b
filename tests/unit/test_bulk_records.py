"""The fetcher's fast path (``stream.bulk.SourceRecordResults``): a job topic's fetched records are
unpacked by aiokafka straight into ``SourceRecord``s. They must be exactly what the jobs got
before (built from aiokafka's ``ConsumerRecord``s), record for record, for real record batches
in Kafka's wire format (several batches, keys, null key, headers, timestamps), with aiokafka's own
position tracking unchanged; other topics keep ``ConsumerRecord``s for Faust's own path."""

from __future__ import annotations

import collections
import struct
from types import SimpleNamespace

from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from stream.bulk import Chunk, SourceRecordResults, _decodes_raw, source_records
from stream.core.records import SourceRecord

ROWS = [
    [(b"acct-1", b'{"amount": 12.5}', 1_700_000_000_000, []), (None, b"{}", 1_700_000_000_007, [])],
    [(b"acct-2", b"", 1_700_000_000_011, [("h", b"x")]), (b"acct-1", b'{"amount": 3}', 1_700_000_000_020, [])],
]


def _wire(base_offsets=(40, 45)) -> bytes:
    """Record batches as a broker returns them (base offset set by the broker: patched in)."""
    out = b""
    for base, rows in zip(base_offsets, ROWS):
        b = DefaultRecordBatchBuilder(
            magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1, base_sequence=-1,
            batch_size=1 << 20,
        )  # fmt: skip
        for i, (key, value, ts, headers) in enumerate(rows):
            b.append(i, timestamp=ts, key=key, value=value, headers=headers)
        buf = bytearray(b.build())
        buf[0:8] = struct.pack(">q", base)  # the CRC covers the batch from its attributes on, not this
        out += bytes(buf)
    return out


def _fetched(table, tp: TopicPartition) -> tuple[list, int]:
    records = PartitionRecords(tp, MemoryRecords(_wire()), [], 40, None, None, True, READ_COMMITTED)
    table[tp] = FetchResult(tp, assignment=None, partition_records=records, backoff=0)
    got = list(table[tp]._partition_records)
    return got, records.next_fetch_offset


def test_job_topic_records_are_source_records_equal_to_the_consumer_record_path():
    tp = TopicPartition("transactions", 3)
    fast, fast_next = _fetched(SourceRecordResults(frozenset({"transactions"})), tp)
    slow, slow_next = _fetched(collections.OrderedDict(), tp)
    assert [type(r) for r in fast] == [SourceRecord] * 4
    assert [type(r) for r in slow] == [ConsumerRecord] * 4
    expected = source_records([Chunk(tp, slow, 0)])  # the old per-record conversion
    assert source_records([Chunk(tp, fast, 0)]) == expected
    assert [r.offset for r in expected] == [40, 41, 45, 46]
    assert [r.key for r in expected] == [b"acct-1", None, b"acct-2", b"acct-1"]
    assert expected[2].value == b"" and expected[3].timestamp_ms == 1_700_000_000_020
    assert fast_next == slow_next == 47
    # chunks of both kinds in one batch (records fetched before the fast path was installed)
    assert source_records([Chunk(tp, slow[:2], 0), Chunk(tp, fast[2:], 0)]) == expected


def test_other_topics_keep_consumer_records():
    tp = TopicPartition("faust-internal", 0)
    got, _ = _fetched(SourceRecordResults(frozenset({"transactions"})), tp)
    assert [type(r) for r in got] == [ConsumerRecord] * 4
    assert got[2].headers == (("h", b"x"),)


def test_fast_path_only_for_raw_topics():
    fetcher = SimpleNamespace(_records=collections.OrderedDict(), _key_deserializer=None, _value_deserializer=None)
    assert _decodes_raw(fetcher)
    fetcher._value_deserializer = bytes.decode
    assert not _decodes_raw(fetcher)
