"""Keyed pseudonyms for account and user ids: one function for Redis keys and output records.

Why keyed (HMAC-SHA256 with ``FINSTREAM_REDIS_KEY_SECRET``) rather than a plain hash: account numbers
come from a small, guessable space, so an unkeyed hash is reversed by hashing every candidate. With
the key, only its holder can compute (and so look up) the pseudonym of a given id; the same id always
gets the same pseudonym, so consumers can still group, join and count per entity.
"""

from __future__ import annotations

import hashlib
import hmac

PSEUDONYM_HEX = 32  # 128 bits: collisions are out of reach for any realistic number of entities


def pseudonym(secret: bytes, entity_id: str | bytes) -> str:
    raw = entity_id.encode() if isinstance(entity_id, str) else entity_id
    return hmac.new(secret, raw, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


class Pseudonyms:
    """``ids(x)``: the pseudonym of x when a secret is configured, else x unchanged."""

    __slots__ = ("secret",)

    def __init__(self, secret: bytes | None):
        self.secret = secret

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    def __call__(self, entity_id: str | bytes) -> str:
        if self.secret is None:
            return entity_id if isinstance(entity_id, str) else entity_id.decode(errors="replace")
        return pseudonym(self.secret, entity_id)


def withheld_dead_letter(topic: str, src, reason: str, ids: Pseudonyms):
    """A dead letter for a deployment with pseudonyms: the record could not be parsed, so the ids in
    it cannot be picked out and replaced, and its bytes are withheld instead. It keeps the reason,
    the source position (an authorised reader of the input topic finds the original there), the
    original's length and SHA-256 (to match it), and the pseudonym of its key (the entity)."""
    import hashlib

    from stream.core.records import output

    original = src.value if src.value is not None else b""
    return output(
        topic,
        src,
        {
            "reason": reason,
            "original_withheld": True,
            "original_bytes": len(original),
            "original_sha256": hashlib.sha256(original).hexdigest(),
            "original_key_pseudonym": ids(src.key) if src.key is not None else None,
        },
    )
