"""Bytes from Kafka to a JSON object, before any contract: size bound, valid JSON, an object, and
no repeated key.

Split from ``stream.core.contracts`` (which types and checks the object's fields) because this
part is about the wire form, and is the hot path's first step for every record: orjson parses,
and a cheap proof by counting shows the usual record has no repeated key, so only doubtful bytes
pay for the standard library's exact check.
"""

from __future__ import annotations

import json

import orjson


class ContractError(ValueError):
    """A record broke its contract; ``str(err)`` is the dead-letter reason."""


def _refuse_duplicates(pairs: list[tuple]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ContractError("duplicate key in JSON object")
    return dict(pairs)


def _has_duplicate_keys(raw: bytes, obj: dict) -> bool:
    """orjson keeps the last of repeated keys silently, so an object with a repeated key parses
    to fewer keys than its bytes spell. Fast path, for bytes without a backslash and objects
    nested at most one level (a risk record's ``signals``): then every ``"`` opens or closes a
    string (none can hold one), so the ``{`` and ``:`` outside strings are exactly the objects
    and the key tokens, and a character inside a string only adds to a count. If the bytes have
    no more ``{`` than the record and its object values, there are no other objects; if their
    ``:`` outside strings are as many as the keys parsed, no object lost a key. Anything else
    (escapes, deeper nesting) gets the exact check by the standard library's parser."""
    if b"\\" not in raw:
        braces = raw.count(b"{")  # one: the record's own, so no value is an object (a flat record)
        nested = [v for v in obj.values() if type(v) is dict] if braces > 1 else []
        if braces == 1 + len(nested):
            keys = len(obj) + sum(map(len, nested))
            if raw.count(b":") == keys:  # no colon inside a string either: the usual record
                return False
            return b"".join(raw.split(b'"')[::2]).count(b":") != keys
    try:
        json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except ContractError:
        return True
    return False


def decode(raw: bytes | str | None, max_bytes: int | None = None) -> dict:
    """Bytes from Kafka to a JSON object, or a ContractError saying why not."""
    if raw is None:
        raise ContractError("empty record (null value)")
    if isinstance(raw, str):
        raw = raw.encode()
    if max_bytes is not None and len(raw) > max_bytes:
        raise ContractError(f"record of {len(raw)} bytes is larger than {max_bytes} (FINSTREAM_MAX_RECORD_BYTES)")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ContractError(f"record must be a JSON object, got {type(obj).__name__}")
    if _has_duplicate_keys(raw, obj):
        raise ContractError("duplicate key in JSON object")
    return obj
