"""Output records and their keys.

Every output is keyed by the source position that produced it (``topic:partition:offset``),
so a consumer can de-duplicate, and is sent to the source's partition number, so per-symbol /
per-account order carries over to the output topics.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from stream.core.contracts import SCHEMA_VERSION


@dataclass(slots=True, frozen=True)
class SourceRecord:
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


@dataclass(slots=True, frozen=True)
class OutputRecord:
    topic: str
    key: bytes
    value: bytes
    partition: int | None = None
    by_key: bool = False    # Kafka picks the partition from the key (derived records, stream.core.spend);
    #                         ``partition`` then only says which source partition's transaction it joins


def output(topic: str, src: SourceRecord, body: dict) -> OutputRecord:
    body = {"v": SCHEMA_VERSION, **body, "source": src.source()}
    return OutputRecord(topic, src.source_id.encode(), orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                        src.partition)


def dead_letter(topic: str, src: SourceRecord, reason: str) -> OutputRecord:
    """The record that could not be used, byte for byte, with the reason and where it came from."""
    original = src.value if src.value is not None else b""
    return output(topic, src, {
        "reason": reason,
        "original_b64": base64.b64encode(original).decode(),
        "original_key_b64": base64.b64encode(src.key).decode() if src.key is not None else None,
    })
