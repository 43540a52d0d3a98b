"""A derived spend event joins its source partition's transaction but is routed by its key."""

from aiokafka.structs import TopicPartition

from stream.core.contracts import parse_transaction
from stream.core.records import SourceRecord
from stream.core.spend import spend_record
from stream.publisher import Publisher
from stream.settings import Settings

TXN = {
    "event_id": "e1",
    "account_id": "acct-1",
    "user_id": "u7",
    "ts": 1_700_000_000_000,
    "amount": 50.0,
    "currency": "EUR",
    "merchant_category": "fuel",
    "channel": "pos",
    "country": "DE",
}


def test_spend_event_rides_in_the_source_partition_transaction_and_is_partitioned_by_key():
    pub = Publisher(Settings(processing_guarantee="exactly_once", topic_partitions=4))
    src = SourceRecord("transactions", 3, 41, b"acct-1", b"{}")
    rec = spend_record("user-events", src, parse_transaction(TXN))
    plan = {tp: outs for tp, outs, _, _ in pub.split([SourceRecord("transactions", 0, 7, b"a", b"{}"), src], [rec])}
    assert plan[TopicPartition("transactions", 3)] == [rec] and plan[TopicPartition("transactions", 0)] == []
    assert pub.partition_of(rec) is None  # Kafka hashes the key (the user), like any user event
