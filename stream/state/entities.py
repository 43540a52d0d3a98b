"""What every state backend shares: the key layout, the stored form of a fenced entity, and the
conflict error. One place, so the in-process backend cannot drift from the Redis one.

Key: ``<prefix>:<kind>:{<entity>}`` (the ``{...}`` hash tag keeps an entity in one Redis Cluster
slot), the entity id replaced by its keyed pseudonym when a key secret is set.
Stored form (3): ``fence`` = ``b"<partition>:<offset>"``, ``blob`` = orjson of
``{"f": 3, "s": encoded state, "snap": {}}``, and the entity's output snapshots in chunks: field
``c<slot>`` holds one save's snapshots as ``<offset>:<length>:<output as JSON text>`` entries
(``log_entries``), field ``ix`` lists the live chunks and the free slots (``next_index``). Both backends go through
these bytes, so a state loaded from either has the same types (tuples come back as lists, snapshot
offsets as int): a redelivered record gets the same output bytes whichever backend held it.

Why the snapshots have fields of their own: they are kept until their offset is committed, dozens
per busy entity (a forecast snapshot carries its window of closes: ~10-20 kB a symbol), and almost
never read (only a redelivery reads one). In the blob (form 2, each as a JSON string) every batch
moved them from Redis and back and through the JSON codec: most of the forecast engine's Redis and
codec time, ten times more per event at the paced load's small batches. Now a load reads ``fence``
and ``blob`` only; a save sends only the snapshots made since the load, as a new chunk, and the
store's script drops chunks once all their offsets are committed by rewriting the small index,
reading only its head (``fenced_set.lua``; ``next_index`` for the in-process backend). Chunks, not one log field: Redis
copies a string through Lua at ~1 us per kB each way (an appended 20 kB log cost the server
~80 us a save against ~8 for the index alone). A batch holding a redelivered record fetches just
the snapshots it needs first (``read_stored``; ``Job.fold``). Older blobs still load: form 2
(``"f": 2``, snapshots as JSON strings in the blob) and form 1 (no ``"f"``, snapshots as plain
JSON values) come back with their snapshots in ``Fenced.snapshots``, and their next save moves
them to a chunk. A worker from before form 3 reads a form-3 blob as one without snapshots
(``"snap": {}``): it runs, but cannot answer a redelivery of what a newer worker wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from stream.core.fencing import SNAPSHOTS_KEPT, Fenced, StoredOutput
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


FORM = 3  # the stored form written (see the module docstring)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
REPLACE = "r"  # ``snap_update``'s keep: the stored log is replaced, not appended to


def _text(output: Any) -> bytes:
    """An output snapshot as stored: a loaded one as it came, a new one serialised once."""
    if type(output) is StoredOutput:
        return output.encode()
    return orjson.dumps(output, option=_NUMPY)


def log_entries(snaps: dict[int, Any]) -> bytes:
    """Snapshots as log entries (``<offset>:<length in bytes>:<JSON text>``), in their order."""
    parts = []
    for off, out in snaps.items():
        text = _text(out)
        parts.append(b"%d:%d:%s" % (off, len(text), text))
    return b"".join(parts)


def _entries(log: bytes):
    """(offset, start of the entry, start of its text, end) of each log entry, in order."""
    pos, n = 0, len(log)
    while pos < n:
        c1 = log.index(b":", pos)
        c2 = log.index(b":", c1 + 1)
        end = c2 + 1 + int(log[c1 + 1 : c2])
        yield int(log[pos:c1]), pos, c2 + 1, end
        pos = end


def next_index(
    ix: bytes | None, keep: str, max_count: int, count: int, first: int, last: int
) -> tuple[bytes, int | None, list[int]]:
    """A save's new snapshot index, the chunk slot its ``count`` new entries (offsets
    ``first``..``last``) go to (None when there are none), and the slots of gone chunks whose
    fields are emptied (not the new chunk's: memory back at once). The index is ``<slots made>|<free
    slots, each followed by ','>|<live chunks>``, a live chunk ``<slot>:<first>:<last>:<count>;``
    in offset order. Chunks go from the front: while one is wholly below ``keep`` (``-1``: none
    is; ``REPLACE``: all are) or, with ``max_count``, while the rest still holds ``max_count``
    entries. A gone chunk's slot goes to the front of the free list; a new chunk takes the first
    free slot, or a new one. ``fenced_set.lua`` does the same in Redis, reading only the head of
    the index in the worker's case; the in-process backend calls this."""
    made, free, recs = 0, b"", b""
    if ix:
        head, free, recs = ix.split(b"|", 2)
        made = int(head)
    keep_from = float("inf") if keep == REPLACE else int(keep)
    chunks = [tuple(map(int, r.split(b":"))) for r in recs.split(b";") if r]
    total = sum(c[3] for c in chunks) + count if max_count else None
    gone = 0
    for slot, _first, end, n in chunks:
        if end >= keep_from and (total is None or total - n < max_count):
            break
        if total is not None:
            total -= n
        free = b"%d," % slot + free
        gone += 1
    live = chunks[gone:]
    emptied = [c[0] for c in chunks[:gone]]
    new_slot = None
    if count:
        if free:
            head, free = free.split(b",", 1)
            new_slot = int(head)
        else:
            new_slot, made = made, made + 1
        live.append((new_slot, first, last, count))
    ix = b"%d|%s|" % (made, free) + b"".join(b"%d:%d:%d:%d;" % c for c in live)
    return ix, new_slot, [s for s in emptied if s != new_slot]


def read_log(log: bytes | None, offsets=None) -> dict[int, StoredOutput]:
    """The snapshots at ``offsets`` (all without) among log entries (one chunk's)."""
    want, out, log = None if offsets is None else set(offsets), {}, log or b""
    for off, _, text, end in _entries(log):
        if want is None or off in want:
            out[off] = StoredOutput(log[text:end].decode())
    return out


def chunk_field(slot: int) -> bytes:
    return b"c%d" % slot


def read_stored(fields: dict[bytes, bytes], offsets=None) -> dict[int, StoredOutput]:
    """The snapshots at ``offsets`` (all without) among an entity's stored fields (``ix`` and the
    chunks it lists; ``HGETALL`` of its key)."""
    want = None if offsets is None else set(offsets)
    out: dict[int, StoredOutput] = {}
    for rec in (fields.get(b"ix") or b"||").split(b"|", 2)[2].split(b";"):
        if rec:
            slot, first, last, _count = map(int, rec.split(b":"))
            if want is None or any(first <= o <= last for o in want):
                out.update(read_log(fields.get(chunk_field(slot)), want))
    return out


def pack(e: Fenced[Any], encode: Callable[[Any], Any]) -> bytes:
    """The ``blob`` field: the state (the snapshots go to the log: ``snap_update``)."""
    return orjson.dumps({"f": FORM, "s": encode(e.state), "snap": {}}, option=_NUMPY)


def snap_update(e: Fenced[Any]) -> tuple[str, int, bytes, int, int, int]:
    """What a save does to the entity's snapshots: (keep, max_count, new entries, their count, first
    and last offset), the arguments of ``next_index`` plus the new chunk. Only snapshots the store
    does not hold yet are sent; the store trims as ``stream.core.fencing.apply`` did (below the
    committed offset, or all but the last ``SNAPSHOTS_KEPT`` without one), by whole chunks."""
    max_count = 0 if e.keep_from is not None else SNAPSHOTS_KEPT
    if e.snap_upto is None:  # fresh, or loaded from form 1/2, or moved partition: these replace all
        keep, new = REPLACE, e.snapshots
    else:
        upto = e.snap_upto
        new = {off: out for off, out in e.snapshots.items() if off > upto}  # not the fetched ones
        keep = str(e.keep_from) if e.keep_from is not None else "-1"
    offs = list(new)
    return keep, max_count, log_entries(new), len(offs), offs[0] if offs else 0, offs[-1] if offs else 0


def unpack(fence: bytes | None, blob: bytes | None, decode: Callable[[Any], Any]) -> Fenced[Any]:
    """The entity as stored, or a fresh one (``decode(None)``) when there is none. Form 3: no
    snapshots loaded (they stay in the store's log); form 2: as ``StoredOutput``; form 1: as
    their values."""
    if blob is None or fence is None:
        return Fenced(decode(None))
    d = orjson.loads(blob)
    part, _, off = fence.partition(b":")
    form = d.get("f")
    if form == FORM:
        offset = int(off)
        return Fenced(decode(d["s"]), int(part), offset, {}, loaded_fence=fence.decode(), snap_upto=offset)
    snap = d["snap"]
    if form == 2:
        snaps = dict(zip(map(int, snap), map(StoredOutput, snap.values())))
    else:
        snaps = {int(k): v for k, v in snap.items()}
    return Fenced(decode(d["s"]), int(part), int(off), snaps, loaded_fence=fence.decode())


def settle(kind: str, dirty: list[tuple[str, Fenced[Any]]], written: list[bool], secret: bytes | None) -> None:
    """After a batch of compare-and-sets: the written entities now hold their new fence (a later
    save in the same process compares against it, and sends only snapshots made since); any lost
    write raises ``StateConflict``."""
    lost = [i for (i, _), ok in zip(dirty, written) if not ok]
    for (_i, e), ok in zip(dirty, written):
        if ok:  # the store now holds its snapshots up to its offset: a later save sends only newer ones
            e.loaded_fence, e.dirty, e.snap_upto = fence_of(e), False, e.offset
    if lost:
        # ids only as pseudonyms, keyed or not (without a secret a key holds the raw id): this ends up in logs
        raise StateConflict(
            f"{len(lost)} {kind} state(s) changed under us, e.g. {[log_pseudonym(i, secret) for i in lost[:3]]}"
        )
