"""Exactly-once state updates under redelivery, as a pure fold over a batch.

Kafka redelivers after a crash. Each entity's state carries the source position of the last
record applied to it (its *fence*) and a few snapshots of the outputs it produced. A record at
or behind the fence is a redelivery: its output is taken from the snapshot instead of being
recomputed from a state that already contains it, and the state is left alone. So applying a
log prefix twice gives the same state and the same outputs as applying it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

S = TypeVar("S")

# Without a known committed offset (callers outside the worker: bench, tools), the last
# SNAPSHOTS_KEPT outputs per entity are kept; the worker always passes the committed offset.
SNAPSHOTS_KEPT = 64


class StoredOutput(str):
    """An output snapshot as a store keeps it (its JSON text), decoded only when a redelivery asks
    for it. Almost every snapshot is only carried from load to save until its offset is committed,
    so a store hands these out rather than decoding every snapshot of every entity on each load
    (a ``str`` subclass: made without a Python ``__init__``, written back as it came). Equal to
    its decoded value (a loaded entity compares equal to the one that was saved)."""

    __slots__ = ()

    def value(self) -> Any:
        return orjson.loads(str(self))  # orjson reads only exact str

    def __eq__(self, other: object) -> bool:
        return self.value() == (other.value() if isinstance(other, StoredOutput) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredOutput({str.__repr__(self)})"


@dataclass(slots=True)
class Fenced(Generic[S]):
    state: S
    partition: int = -1
    offset: int = -1
    snapshots: dict[int, Any] = field(default_factory=dict)  # offset -> output computed then (or StoredOutput)
    dirty: bool = False
    loaded_fence: str = ""  # the fence as read from the store: writes are compare-and-set on it
    # The store's snapshot index as read with the fence (``stream.state.entities``): it changes only
    # with the fence, so the save computes the next one and the store's script only compares and sets.
    loaded_index: bytes | None = None
    # Where the older snapshots are: None = all in ``snapshots`` (a save writes exactly these);
    # an offset = the store keeps this partition's snapshots up to it in a log of its own, not
    # loaded (``stream.state.entities``, form 3): ``snapshots`` holds only newer ones (and any a
    # redelivery fetched), and a save appends the newer ones to that log and trims it.
    snap_upto: int | None = None
    keep_from: int | None = None  # the committed offset the last apply trimmed at (the log is trimmed alike)

    def seen(self, partition: int, offset: int) -> bool:
        return partition == self.partition and offset <= self.offset


class ReplayGap(LookupError):
    """A redelivered record whose snapshot was trimmed: its output cannot be reproduced."""


def apply(
    entity: Fenced[S], partition: int, offset: int, step: Callable[[S], tuple[S, Any]], committed: int | None = None
) -> Any:
    """Apply one record to an entity (in place) and return the record's output.

    ``step(state) -> (new_state, output)`` must be pure. A partition change (topic repartitioned,
    keys moved) counts as new: the old partition's offsets mean nothing on the new one.
    ``committed``: an offset of this partition known to be committed (Kafka never redelivers
    below it). Snapshots below it are dropped and none at or above it ever is, however many
    records one entity sees in an uncommitted stretch; without it the last ``SNAPSHOTS_KEPT``
    are kept.
    """
    if entity.seen(partition, offset):
        try:
            out = entity.snapshots[offset]
        except KeyError:
            raise ReplayGap(f"no snapshot for partition {partition} offset {offset}") from None
        return out.value() if type(out) is StoredOutput else out
    if partition != entity.partition:
        entity.snapshots.clear()  # offsets of another partition are not comparable
        entity.snap_upto = None  # nor are the stored ones: the save replaces the log
    entity.state, output = step(entity.state)
    entity.partition, entity.offset = partition, offset
    entity.snapshots[offset] = output
    snaps = entity.snapshots  # offsets go in ascending, so the first is the oldest
    if committed is not None:
        entity.keep_from = committed
        while snaps and next(iter(snaps)) < committed:
            del snaps[next(iter(snaps))]
    else:
        while len(snaps) > SNAPSHOTS_KEPT:
            del snaps[next(iter(snaps))]
    entity.dirty = True
    return output


def redelivered(entities: dict[str, Fenced[Any]], ids: list[str], records) -> dict[str, list[int]]:
    """Per entity id, the offsets of the batch's records (``records[n]`` applies to
    ``entities[ids[n]]``; each has ``partition`` and ``offset``) that are redeliveries whose
    snapshot is in the store's log, not loaded: what the store's ``load_snapshots`` must fetch
    first. Runs per event: the common case (a new record) fails the first comparison."""
    want: dict[str, list[int]] = {}
    for i, rec in zip(ids, records):
        e = entities[i]
        off = rec.offset
        if off <= e.offset and e.snap_upto is not None and rec.partition == e.partition and off not in e.snapshots:
            want.setdefault(i, []).append(off)
    return want
