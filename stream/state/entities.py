"""What every state backend shares: the key layout, the stored form of a fenced entity, and the
conflict error. One place, so the in-process backend cannot drift from the Redis one.

Key: ``<prefix>:<kind>:{<entity>}`` (the ``{...}`` hash tag keeps an entity in one Redis Cluster
slot), the entity id replaced by its keyed pseudonym when a key secret is set.
Stored form: ``fence`` = ``b"<partition>:<offset>"`` and ``blob`` = orjson of
``{"s": encoded state, "snap": {offset: output}}``. Both backends go through these bytes, so a
state loaded from either has the same types (tuples come back as lists, snapshot offsets as int):
a redelivered record gets the same output bytes whichever backend held it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from stream.core.fencing import Fenced
from stream.core.logsafe import pseudonym as log_pseudonym
from stream.core.pseudonyms import pseudonym


class StateConflict(RuntimeError):
    """Another writer moved an entity's fence while we held it (e.g. a zombie after a rebalance)."""


def entity_key(prefix: str, kind: str, entity: str, secret: bytes | None) -> str:
    if secret is not None:
        entity = pseudonym(secret, entity)
    return f"{prefix}:{kind}:{{{entity}}}"


def fence_of(e: Fenced[Any]) -> str:
    return f"{e.partition}:{e.offset}"


def pack(e: Fenced[Any], encode: Callable[[Any], Any]) -> bytes:
    return orjson.dumps(
        {"s": encode(e.state), "snap": {str(k): v for k, v in e.snapshots.items()}}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def unpack(fence: bytes | None, blob: bytes | None, decode: Callable[[Any], Any]) -> Fenced[Any]:
    """The entity as stored, or a fresh one (``decode(None)``) when there is none."""
    if blob is None or fence is None:
        return Fenced(decode(None))
    d = orjson.loads(blob)
    part, off = (int(x) for x in fence.split(b":"))
    return Fenced(decode(d["s"]), part, off, {int(k): v for k, v in d["snap"].items()}, loaded_fence=fence.decode())


def settle(kind: str, dirty: list[tuple[str, Fenced[Any]]], written: list[bool], secret: bytes | None) -> None:
    """After a batch of compare-and-sets: the written entities now hold their new fence (a later
    save in the same process compares against it); any lost write raises ``StateConflict``."""
    lost = [i for (i, _), ok in zip(dirty, written) if not ok]
    for (_i, e), ok in zip(dirty, written):
        if ok:
            e.loaded_fence, e.dirty = fence_of(e), False
    if lost:
        # ids only as pseudonyms, keyed or not (without a secret a key holds the raw id): this ends up in logs
        raise StateConflict(
            f"{len(lost)} {kind} state(s) changed under us, e.g. {[log_pseudonym(i, secret) for i in lost[:3]]}"
        )
