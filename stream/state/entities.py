"""What every state backend shares: the key layout, the stored form of a fenced entity, and the
conflict error. One place, so the in-process backend cannot drift from the Redis one.

Key: ``<prefix>:<kind>:{<entity>}`` (the ``{...}`` hash tag keeps an entity in one Redis Cluster
slot), the entity id replaced by its keyed pseudonym when a key secret is set.
Stored form: ``fence`` = ``b"<partition>:<offset>"`` and ``blob`` = orjson of
``{"f": 2, "s": encoded state, "snap": {offset: output as JSON text}}``. Both backends go through
these bytes, so a state loaded from either has the same types (tuples come back as lists, snapshot
offsets as int): a redelivered record gets the same output bytes whichever backend held it.

Why each output snapshot is a JSON *string* inside the blob (form 2): snapshots are kept until
their offset is committed, dozens per busy entity, and almost never read (only a redelivery reads
one). As strings they are loaded without being parsed (``StoredOutput``, decoded on demand) and
written back as they came; parsing and re-serialising them was the largest cost of a load and a
save (a forecast snapshot carries its window of closes). Blobs without ``"f"`` (form 1, the
snapshots as plain JSON values) still load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from stream.core.fencing import Fenced, StoredOutput
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


FORM = 2  # the stored form written (see the module docstring)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _text(output: Any) -> str:
    """An output snapshot as stored: a loaded one as it came, a new one serialised once."""
    if type(output) is StoredOutput:
        return output
    return orjson.dumps(output, option=_NUMPY).decode()


def pack(e: Fenced[Any], encode: Callable[[Any], Any]) -> bytes:
    snap = {k: _text(v) for k, v in e.snapshots.items()}
    return orjson.dumps({"f": FORM, "s": encode(e.state), "snap": snap}, option=_NUMPY | orjson.OPT_NON_STR_KEYS)


def unpack(fence: bytes | None, blob: bytes | None, decode: Callable[[Any], Any]) -> Fenced[Any]:
    """The entity as stored, or a fresh one (``decode(None)``) when there is none. Snapshots come
    back as ``StoredOutput`` (form 2) or as their values (form 1)."""
    if blob is None or fence is None:
        return Fenced(decode(None))
    d = orjson.loads(blob)
    part, _, off = fence.partition(b":")
    snap = d["snap"]
    if d.get("f") == FORM:
        snaps = dict(zip(map(int, snap), map(StoredOutput, snap.values())))
    else:
        snaps = {int(k): v for k, v in snap.items()}
    return Fenced(decode(d["s"]), int(part), int(off), snaps, loaded_fence=fence.decode())


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
