"""The job's inbox (``stream.bulk.Inbox``): chunks combine up to the batch size in order, chunks of
an older consumer generation are dropped (Faust re-reads them after its seek), and what the agent
takes counts as in flight until the delivery says it is durable. A real Faust app object; no
broker is needed because nothing is fetched."""

from __future__ import annotations

import asyncio
from collections import namedtuple

import faust
from faust.types import TP

from stream.bulk import BulkConsumer, Chunk, Inbox, source_records

Rec = namedtuple("Rec", "topic partition offset key value timestamp")  # an aiokafka ConsumerRecord's fields


def _chunk(tp: TP, offsets, generation: int) -> Chunk:
    return Chunk(tp, [Rec(tp.topic, tp.partition, o, b"k", b"v", 1_700_000_000_000 + o) for o in offsets], generation)


def test_take_combines_in_order_up_to_batch_max_and_drops_stale_generations():
    async def main():
        app = faust.App("t-inbox", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
        app.transport.Consumer = BulkConsumer
        app.flow_control.resume()
        inbox = Inbox(app, batch_max=5, maxsize=8)
        gen = app.consumer_generation_id
        a, b = TP("src", 0), TP("src", 1)
        await inbox.put(_chunk(a, [10, 11, 13], gen))
        await inbox.put(_chunk(b, [3], gen))
        await inbox.put(_chunk(a, [14, 15], gen))  # would make 6 > batch_max: next take
        first = await inbox.take()
        assert [(c.tp, [r.offset for r in c.records]) for c in first] == [(a, [10, 11, 13]), (b, [3])]
        assert app.consumer._inflight == 2
        recs = source_records(first)
        assert [(r.partition, r.offset, r.timestamp_ms) for r in recs][0] == (0, 10, 1_700_000_000_010)
        second = await inbox.take()
        assert [[r.offset for r in c.records] for c in second] == [[14, 15]]
        assert app.consumer._inflight == 3
        app.consumer.chunks_durable(first)
        assert app.consumer._inflight == 1
        await inbox.put(_chunk(a, [16], gen - 1))  # fetched before a rebalance
        assert await inbox.take() == []
        assert app.consumer._inflight == 1
        app.consumer.chunks_durable(second)
        assert app.consumer._inflight == 0 and app.consumer._idle.is_set()  # wait_empty goes on

    asyncio.run(main())
