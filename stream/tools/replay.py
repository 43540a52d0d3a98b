"""``finstream replay``: publish any CSV to an input topic, mapping contract fields to columns.

Rows are converted, not judged: a row that breaks the contract is still published and the worker
dead-letters it with the reason, so the stream's edge stays the one place validation happens.
Dates become epoch milliseconds (UTC; ``--ts-format`` for patterns like ``%Y%m%d%H%M``); numeric
contract fields become numbers when they parse.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stream import pipelines
from stream.core.contracts import SCHEMA_VERSION


class ReplayError(ValueError):
    pass


def kinds() -> tuple[str, ...]:
    """The record kinds ``--kind`` accepts: one per pipeline (``stream.pipelines``)."""
    return tuple(p.kind for p in pipelines.all_pipelines())


def contract(kind: str):
    """The input contract of ``kind`` (its key, fields and numeric fields)."""
    try:
        return pipelines.by_kind(kind).input
    except KeyError:
        raise ReplayError(f"unknown kind {kind!r} (expected one of {', '.join(kinds())})") from None


def parse_mappings(mappings: Iterable[str], kind: str) -> dict[str, str]:
    fields = contract(kind).fields
    out = {}
    for m in mappings:
        field, sep, column = m.partition("=")
        if not sep or not field or not column:
            raise ReplayError(f"--map {m!r} is not field=column")
        if field not in fields:
            raise ReplayError(f"--map {field!r}: {kind} has no such field (fields: {', '.join(fields)})")
        out[field] = column
    return out


_DATE_DIGITS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
_SPELLED = {"%Y%m%d": "yyyymmdd", "%Y%m%d%H%M": "yyyymmddhhmm", "%Y%m%d%H%M%S": "yyyymmddhhmmss"}
_PLAUSIBLE_MS = (315_532_800_000, 4_102_444_800_000)  # 1980-01-01 .. 2100-01-01 as epoch ms


def _utc_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _date_digits(v: str) -> str | None:
    """The yyyymmdd[hhmm[ss]] pattern a digit string reads as, if it is a valid date in 1900..2100."""
    fmt = _DATE_DIGITS.get(len(v)) if v.isdigit() else None
    if fmt is None:
        return None
    try:
        return fmt if 1900 <= datetime.strptime(v, fmt).year < 2100 else None
    except ValueError:
        return None


def to_epoch_ms(value: str, ts_format: str | None = None) -> int | str:
    """A CSV timestamp -> epoch ms (naive times are UTC).

    With ``ts_format`` (a strftime pattern, ``--ts-format``) the value must match it. Without one:
    numbers pass through as epoch ms, ISO dates/times are parsed, other text is left for the
    worker to dead-letter. A number that reads as a date written as digits (``20170419``,
    ``201704190900``) but as epoch ms is not a plausible time (1970s) is refused
    (``ReplayError``): published, it would be a silently wrong 1976 timestamp.
    """
    v = value.strip()
    if ts_format:
        try:
            return _utc_ms(datetime.strptime(v, ts_format))
        except ValueError:
            raise ReplayError(f"timestamp {v!r} does not match --ts-format {ts_format!r}") from None
    try:
        n = int(float(v))
    except ValueError:
        n = None
    if n is not None:
        fmt = _date_digits(v)
        if fmt and not (_PLAUSIBLE_MS[0] <= n < _PLAUSIBLE_MS[1]):
            as_ms = datetime.fromtimestamp(n / 1000, tz=UTC).strftime("%Y-%m-%d") if n < 4e15 else "?"
            raise ReplayError(
                f"timestamp {v!r} looks like a date written as {_SPELLED[fmt]} "
                f"({datetime.strptime(v, fmt):%Y-%m-%d %H:%M:%S}), but as epoch milliseconds "
                f"it is {as_ms}; pass --ts-format '{fmt}'"
            )
        return n
    try:
        return _utc_ms(datetime.fromisoformat(v))
    except ValueError:
        return v  # left as text: the worker dead-letters it with the reason


def rows_to_records(
    rows: Iterable[dict], kind: str, mapping: dict[str, str], symbol: str | None, ts_format: str | None = None
) -> Iterator[tuple[bytes | None, bytes]]:
    """CSV rows -> (key, value) pairs on the wire (``ReplayError`` on a timestamp that
    ``to_epoch_ms`` refuses)."""
    c = contract(kind)
    key_field, fields, numeric = c.key, c.fields, c.numeric
    for row in rows:
        rec: dict = {"v": SCHEMA_VERSION}
        for f in fields:
            col = mapping.get(f, f)
            if col in row and row[col] not in ("", None):
                rec[f] = row[col]
        if symbol and "symbol" in fields:  # --symbol: the instrument of a file without that column
            rec.setdefault("symbol", symbol)
        if "ts" in rec:
            rec["ts"] = to_epoch_ms(rec["ts"], ts_format)
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


async def publish(
    settings, topic: str, records: Iterable[tuple[bytes | None, bytes]], rate: float = 0.0, limit: int = 0
) -> int:
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
    try:
        return pipelines.by_kind(kind).topic(settings)
    except KeyError:
        raise ReplayError(f"unknown kind {kind!r} (expected one of {', '.join(kinds())})") from None


def main(
    kind: str,
    input: Path,
    mappings: list[str],
    symbol: str | None,
    rate: float,
    limit: int = 0,
    ts_format: str | None = None,
) -> None:
    import itertools

    import typer
    from rich.console import Console

    from stream.settings import get_settings

    console = Console(stderr=True)
    s = get_settings()
    try:
        mapping = parse_mappings(mappings, kind)
        records = rows_to_records(read_csv(input), kind, mapping, symbol, ts_format)
        first = list(itertools.islice(records, 1))  # a wrong timestamp format stops before anything is sent
        n = asyncio.run(publish(s, topic_for(s, kind), itertools.chain(first, records), rate, limit))
    except ReplayError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"published {n} {kind} records from {input} to {topic_for(s, kind)!r}")
