"""Pass-through workers for ``finstream bench`` (run as subprocesses): bytes in -> the same bytes out.

``python -m stream.tools.bench_passthrough faust SRC DST``
    The worker's own Faust adapter (``stream.app.create_app``: same app options, ``take_events``
    batches, same ``publish``) around a job that does no work, so the gap between this and
    ``worker-<job>`` is the engine's cost and this itself is the Faust ceiling.
``python -m stream.tools.bench_passthrough aiokafka SRC DST``
    A plain aiokafka consume -> produce -> commit loop (at-least-once) with the same batch size.
``python -m stream.tools.bench_passthrough aiokafka-eos SRC DST``
    A plain aiokafka consume loop handing each batch to the worker's own delivery lanes
    (``stream.delivery``: transactions per source partition, the same commit policy): the
    exactly-once ceiling that compares like with like with ``faust-passthrough``.

Either way each output is keyed ``topic:partition:offset`` of its source record and goes to the
source's partition number, like the engine's outputs, so the bench matches them the same way.
Settings (bootstrap, app id, partitions, batch size, guarantee) come from ``FINSTREAM_*``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from stream.core.records import OutputRecord, SourceRecord
from stream.settings import Settings
from stream.stagetrace import now_ms

READY_LINE = "bench-passthrough: partitions assigned"


class NoModels:
    """Stands in for the model registry the adapter polls."""

    def maybe_reload(self) -> None:
        pass

    def take_events(self) -> list:
        return []


class PassthroughJob:
    """A job that does nothing: each source record becomes one output record, byte for byte."""

    slot = "passthrough"

    def __init__(self, dst: str):
        self.dst = dst
        self.models = NoModels()
        self.counts: dict = {}

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        return [OutputRecord(self.dst, r.source_id.encode(), r.value or b"", r.partition) for r in batch]


def run_faust(s: Settings, src: str, dst: str) -> None:
    from faust.worker import Worker

    from stream.app import create_app

    app = create_app(s, {src: PassthroughJob(dst)})
    sys.argv = sys.argv[:1]
    Worker(app, loglevel=s.log_level, quiet=True).execute_from_commandline()


def _consumer(s: Settings, src: str):
    """The plain loops' consumer: the worker's group, manual commits, batches of ``batch_max``."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        src,
        **s.kafka_client_options(),
        group_id=s.app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=s.batch_max,
    )


async def _batches(s: Settings, consumer):
    """The plain loops' fetched records, one ``getmany`` result at a time (possibly empty); the
    bench's ready line once the group has assigned partitions."""
    told = False
    while True:
        batches = await consumer.getmany(timeout_ms=int(s.batch_within_s * 1000), max_records=s.batch_max)
        if not told and consumer.assignment():
            print(READY_LINE, flush=True)
            told = True
        yield [m for msgs in batches.values() for m in msgs]


async def run_aiokafka(s: Settings, src: str, dst: str) -> None:
    from aiokafka import AIOKafkaProducer

    consumer = _consumer(s, src)
    producer = AIOKafkaProducer(**s.kafka_client_options(), linger_ms=5, enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        async for records in _batches(s, consumer):
            if not records:
                continue
            futures = []
            for m in records:
                key = f"{m.topic}:{m.partition}:{m.offset}".encode()
                futures.append(await producer.send(dst, key=key, value=m.value, partition=m.partition))
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


async def run_aiokafka_eos(s: Settings, src: str, dst: str) -> None:
    from stream.delivery import Delivery, drained_by_highwater

    consumer = _consumer(s, src)
    delivery = Delivery(s, drained=drained_by_highwater(consumer.highwater))
    job = PassthroughJob(dst)
    await consumer.start()
    try:
        async for records in _batches(s, consumer):
            fetched = now_ms()
            batch = [SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp) for m in records]
            if batch:
                outputs = await job.process(batch)
                trace = [fetched] * len(batch) if delivery.trace is not None else None
                await delivery.submit(delivery.plan(batch, outputs, trace))
    finally:
        await delivery.close()
        await consumer.stop()


def main(argv: list[str] | None = None) -> None:
    mode, src, dst = (argv or sys.argv[1:])[:3]
    s = Settings()
    logging.basicConfig(
        level=s.log_level.upper() if s.log_level != "warn" else "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if mode == "faust":
        run_faust(s, src, dst)
    elif mode == "aiokafka":
        try:
            asyncio.run(run_aiokafka(s, src, dst))
        except KeyboardInterrupt:
            pass
    elif mode == "aiokafka-eos":
        try:
            asyncio.run(run_aiokafka_eos(s, src, dst))
        except KeyboardInterrupt:
            pass
    else:
        raise SystemExit(f"unknown mode {mode!r} (faust | aiokafka | aiokafka-eos)")


if __name__ == "__main__":
    main()
