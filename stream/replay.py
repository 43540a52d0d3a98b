"""``finstream replay``: publish any CSV to an input topic, mapping contract fields to columns.

Rows are converted, not judged: a row that breaks the contract is still published and the worker
dead-letters it with the reason, so the stream's edge stays the one place validation happens.
Dates become epoch milliseconds (UTC); numeric contract fields become numbers when they parse.
"""
from __future__ import annotations

import asyncio
import csv
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from stream.core.contracts import SCHEMA_VERSION

KINDS = {
    "ticks": ("symbol", ("symbol", "ts", "price", "bid", "ask", "volume", "event_id"), ("price", "bid", "ask", "volume")),
    "transactions": ("account_id", ("event_id", "account_id", "ts", "amount", "currency", "merchant_category",
                                     "channel", "country", "merchant_id"), ("amount",)),
    "user-events": ("user_id", ("user_id", "ts", "product_id", "action", "event_id"), ()),
}


class ReplayError(ValueError):
    pass


def parse_mappings(mappings: Iterable[str], kind: str) -> dict[str, str]:
    if kind not in KINDS:
        raise ReplayError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    fields = KINDS[kind][1]
    out = {}
    for m in mappings:
        field, sep, column = m.partition("=")
        if not sep or not field or not column:
            raise ReplayError(f"--map {m!r} is not field=column")
        if field not in fields:
            raise ReplayError(f"--map {field!r}: {kind} has no such field (fields: {', '.join(fields)})")
        out[field] = column
    return out


def to_epoch_ms(value: str) -> int | str:
    """A CSV timestamp -> epoch ms. Numbers pass through; ISO dates/times are read as UTC."""
    v = value.strip()
    try:
        return int(float(v))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return v   # left as text: the worker dead-letters it with the reason
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def rows_to_records(rows: Iterable[dict], kind: str, mapping: dict[str, str], symbol: str | None) -> Iterator[tuple[bytes | None, bytes]]:
    """CSV rows -> (key, value) pairs on the wire."""
    key_field, fields, numeric = KINDS[kind]
    for row in rows:
        rec: dict = {"v": SCHEMA_VERSION}
        for f in fields:
            col = mapping.get(f, f)
            if col in row and row[col] not in ("", None):
                rec[f] = row[col]
        if symbol and kind == "ticks":
            rec.setdefault("symbol", symbol)
        if "ts" in rec:
            rec["ts"] = to_epoch_ms(rec["ts"])
        for f in numeric:
            if f in rec:
                try:
                    rec[f] = float(rec[f])
                except ValueError:
                    pass
        key = rec.get(key_field)
        yield (str(key).encode() if key is not None else None), orjson.dumps(rec)


def read_csv(path: Path) -> Iterator[dict]:
    with open(path, newline="") as f:
        yield from csv.DictReader(f)


async def publish(settings, topic: str, records: Iterable[tuple[bytes | None, bytes]], rate: float = 0.0,
                  limit: int = 0) -> int:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**settings.kafka_client_options(), linger_ms=5, acks="all", enable_idempotence=True)
    await producer.start()
    sent, start = 0, time.monotonic()
    try:
        for key, value in records:
            await producer.send(topic, value=value, key=key)
            sent += 1
            if limit and sent >= limit:
                break
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def topic_for(settings, kind: str) -> str:
    return {"ticks": settings.topic_ticks, "transactions": settings.topic_transactions,
            "user-events": settings.topic_user_events}[kind]


def main(kind: str, input: Path, mappings: list[str], symbol: str | None, rate: float, limit: int = 0) -> None:
    import typer
    from rich.console import Console

    from stream.settings import get_settings

    console = Console(stderr=True)
    s = get_settings()
    try:
        mapping = parse_mappings(mappings, kind)
        records = rows_to_records(read_csv(input), kind, mapping, symbol)
        n = asyncio.run(publish(s, topic_for(s, kind), records, rate, limit))
    except ReplayError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    console.print(f"published {n} {kind} records from {input} to {topic_for(s, kind)!r}")
