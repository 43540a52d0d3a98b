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
codec time, ten times more per event at the paced load's small batches. Now a load reads ``fence``,
``blob`` and the small index ``ix``; a save sends only the snapshots made since the load, as a new
chunk, and drops chunks once all their offsets are committed by rewriting the index, which the
client computes from the one it loaded (``save_fields``, ``next_index``: the index changes only
with the fence, so the store's compare-and-set on the fence covers it). The script only compares
and sets: parsing the index in Lua cost Redis 6-8 us of CPU per save (11-17 against ~5 us), more
than the whole rest of a small entity's save. Chunks, not one log field: Redis
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
    free slot, or a new one. Both backends call this at save time on the index read with the fence
    (``save_fields``): in the worker's case (a committed offset, chunks going from the front) only
    the index's head is parsed, and the live tail is kept as it is."""
    made, free, recs = 0, b"", b""
    if ix:
        head, free, recs = ix.split(b"|", 2)
        made = int(head)
    keep_from = float("inf") if keep == REPLACE else int(keep)
    total = sum(int(r.rsplit(b":", 1)[1]) for r in recs.split(b";") if r) + count if max_count else 0
    pos, n, emptied = 0, len(recs), []
    while pos < n:
        end = recs.index(b";", pos)
        slot, _first, end_off, c = recs[pos:end].split(b":")
        if int(end_off) >= keep_from and (not max_count or total - int(c) < max_count):
            break
        total -= int(c)
        free = slot + b"," + free
        emptied.append(int(slot))
        pos = end + 1
    live = recs[pos:]
    new_slot = None
    if count:
        if free:
            head, free = free.split(b",", 1)
            new_slot = int(head)
        else:
            new_slot, made = made, made + 1
        live += b"%d:%d:%d:%d;" % (new_slot, first, last, count)
    return b"%d|%s|%s" % (made, free, live), new_slot, [s for s in emptied if s != new_slot]


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
        upto, new = e.snap_upto, e.snapshots
        # not the ones a redelivery fetched (at or below upto): they come first in the dict (fetched
        # before any record applied, each new one above upto), so a first offset above upto means none
        if new and next(iter(new)) <= upto:
            new = {off: out for off, out in new.items() if off > upto}
        keep = str(e.keep_from) if e.keep_from is not None else "-1"
    offs = list(new)
    return keep, max_count, log_entries(new), len(offs), offs[0] if offs else 0, offs[-1] if offs else 0


def save_fields(e: Fenced[Any], encode: Callable[[Any], Any]) -> tuple[bytes, bytes, list[bytes]]:
    """What a save of ``e`` writes besides the fence: the ``blob``, the new snapshot index (from the
    one loaded with the fence: ``next_index``) and the chunk fields as field, value pairs (gone
    chunks emptied, then the new chunk). The same bytes on both backends."""
    keep, max_count, entries, count, first, last = snap_update(e)
    ix, slot, emptied = next_index(e.loaded_index, keep, max_count, count, first, last)
    pairs: list[bytes] = []
    for gone in emptied:
        pairs += (chunk_field(gone), b"")
    if slot is not None:
        pairs += (chunk_field(slot), entries)
    return pack(e, encode), ix, pairs


def unpack(
    fence: bytes | None, blob: bytes | None, decode: Callable[[Any], Any], index: bytes | None = None
) -> Fenced[Any]:
    """The entity as stored, or a fresh one (``decode(None)``) when there is none; ``index`` its
    ``ix`` field as read with the fence. Form 3: no snapshots loaded (they stay in the store's
    chunks); form 2: as ``StoredOutput``; form 1: as their values."""
    if blob is None or fence is None:
        return Fenced(decode(None), loaded_index=index)
    d = orjson.loads(blob)
    part, _, off = fence.partition(b":")
    form = d.get("f")
    if form == FORM:
        offset = int(off)
        return Fenced(
            decode(d["s"]), int(part), offset, {}, loaded_fence=fence.decode(), loaded_index=index, snap_upto=offset
        )
    snap = d["snap"]
    if form == 2:
        snaps = dict(zip(map(int, snap), map(StoredOutput, snap.values())))
    else:
        snaps = {int(k): v for k, v in snap.items()}
    return Fenced(decode(d["s"]), int(part), int(off), snaps, loaded_fence=fence.decode(), loaded_index=index)


def settle(
    kind: str, dirty: list[tuple[str, Fenced[Any]]], written: list[bool], secret: bytes | None, indexes: list[bytes]
) -> None:
    """After a batch of compare-and-sets: the written entities now hold their new fence and
    snapshot index (``indexes``, as sent: a later save in the same process compares against the
    fence, builds on the index and sends only snapshots made since); any lost write raises
    ``StateConflict``."""
    lost = [i for (i, _), ok in zip(dirty, written) if not ok]
    for (_i, e), ok, ix in zip(dirty, written, indexes):
        if ok:  # the store now holds its snapshots up to its offset: a later save sends only newer ones
            e.loaded_fence, e.loaded_index, e.dirty, e.snap_upto = fence_of(e), ix, False, e.offset
    if lost:
        # ids only as pseudonyms, keyed or not (without a secret a key holds the raw id): this ends up in logs
        raise StateConflict(
            f"{len(lost)} {kind} state(s) changed under us, e.g. {[log_pseudonym(i, secret) for i in lost[:3]]}"
        )
