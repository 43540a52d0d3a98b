"""Output records and their keys.

Every output is keyed by the source position that produced it (``topic:partition:offset``),
so a consumer can de-duplicate, and is sent to the source's partition number, so per-symbol /
per-account order carries over to the output topics.
"""

from __future__ import annotations

import base64
import hashlib
from typing import NamedTuple

import orjson

from stream.core.contracts import SCHEMA_VERSION


class SourceRecord(NamedTuple):
    """One input record. A named tuple, not a frozen dataclass: one is made per event and per
    output, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) cost three
    times as much; both are immutable and compare by value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @property
    def source_id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    def source(self) -> dict:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class OutputRecord(NamedTuple):
    """One record to publish (a named tuple for the same reason as ``SourceRecord``)."""

    topic: str
    key: bytes
    value: bytes
    partition: int | None = None
    by_key: bool = False  # Kafka picks the partition from the key (derived records, stream.core.spend);
    #                         ``partition`` then only says which source partition's transaction it joins


def output(topic: str, src: SourceRecord, body: dict) -> OutputRecord:
    """``body`` between the schema version and the source position, keyed by that position."""
    return enveloped(topic, src, {"v": SCHEMA_VERSION, **body, "source": src.source()})


def enveloped(topic: str, src: SourceRecord, value: dict) -> OutputRecord:
    """``output`` for a value that already holds its envelope (``"v": SCHEMA_VERSION`` first,
    ``"source": src.source()`` last): a job making one output per event builds each dict once
    (``stream.serving.forecasting``). Keyed by the source position."""
    return OutputRecord(
        topic, src.source_id.encode(), orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), src.partition
    )


DEAD_LETTER_ORIGINAL_MAX = 16_384  # bytes of the original value a dead letter carries in full
DEAD_LETTER_KEY_MAX = 1_024
DEAD_LETTER_REASON_MAX = 512


def _bounded(data: bytes, limit: int) -> dict:
    """``data`` (base64) if it is at most ``limit`` bytes, else its first ``limit`` bytes plus the
    length and SHA-256 of the whole: enough to find and verify the original, and always small."""
    out = {"b64": base64.b64encode(data[:limit]).decode(), "length": len(data)}
    if len(data) > limit:
        out.update(truncated=True, sha256=hashlib.sha256(data).hexdigest())
    return out


def dead_letter(
    topic: str, src: SourceRecord, reason: str, original_max: int = DEAD_LETTER_ORIGINAL_MAX
) -> OutputRecord:
    """The record that could not be used, with the reason and where it came from.

    The original travels byte for byte up to ``original_max`` bytes; beyond that a prefix, its
    length and its SHA-256 (the full record stays in the source topic at the given position).
    A dead letter must always fit the producer's request limit: one that did not would fail its
    batch on every retry and stop the partition for good (a poison pill).
    """
    original = _bounded(src.value if src.value is not None else b"", original_max)
    body = {
        "reason": reason[:DEAD_LETTER_REASON_MAX],
        "original_b64": original["b64"],
        "original_length": original["length"],
        "original_key_b64": None,
    }
    if original.get("truncated"):
        body.update(original_truncated=True, original_sha256=original["sha256"])
    if src.key is not None:
        key = _bounded(src.key, DEAD_LETTER_KEY_MAX)
        body["original_key_b64"] = key["b64"]
        if key.get("truncated"):
            body.update(original_key_length=key["length"], original_key_sha256=key["sha256"])
    return output(topic, src, body)
