"""What every job shares: parse at the edge, dead-letter what fails, count what happens."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import orjson

from stream.core import fencing
from stream.core.contracts import ContractError, decode
from stream.core.fields import check_clock
from stream.core.logsafe import escape
from stream.core.pseudonyms import Pseudonyms, withheld_dead_letter
from stream.core.records import OutputRecord, SourceRecord, dead_letter

T = TypeVar("T")
log = logging.getLogger(__name__)


class Job:
    slot: str = ""

    def __init__(self, settings, state, models):
        self.settings = settings
        self.state = state
        self.models = models
        self.counts: Counter = Counter()
        self.ids = Pseudonyms(settings.key_secret)  # account/user ids as published (docs/security.md)
        # (topic, partition) -> an offset known to be committed, or None: the delivery layer sets it
        # (stream.app) so output snapshots are kept exactly as long as a redelivery can need them.
        self.committed: Callable[[str, int], int | None] = lambda topic, partition: None

    def begin(
        self, batch: list[SourceRecord], parse: Callable[[dict], T]
    ) -> tuple[list[tuple[SourceRecord, T]], list[OutputRecord]]:
        """Start a batch: pick up a new model version (between batches, never inside one), then
        parse at the edge. Returns the valid events in order, and the outputs so far: model events
        and a dead letter with the reason for each invalid record."""
        self.models.maybe_reload()
        good, out = [], self.model_events()
        s = self.settings
        now_ms, skew_ms = int(time.time() * 1000), int(s.max_future_skew_s * 1000)
        for rec in batch:
            try:
                event = parse(decode(rec.value, s.max_record_bytes))
                check_clock(event.ts, now_ms, skew_ms)
                good.append((rec, event))
            except ContractError as exc:
                out.append(self.dead_letter(rec, str(exc)))
            except Exception as exc:  # a parser bug must not make one record a poison pill
                log.exception("unexpected error parsing %s", rec.source_id)
                out.append(self.dead_letter(rec, f"unprocessable record ({type(exc).__name__})"))
        return good, out

    def dead_letter(self, rec: SourceRecord, reason: str) -> OutputRecord:
        """Count, log (position and reason only, one line) and build a bounded dead letter."""
        self.counts["dead_letters"] += 1
        log.warning("dead letter %s: %s", rec.source_id, escape(reason))
        if self.ids.enabled:
            return withheld_dead_letter(self.settings.topic_dead_letters, rec, reason, self.ids)
        return dead_letter(self.settings.topic_dead_letters, rec, reason, self.settings.dead_letter_original_max_bytes)

    async def fold(self, kind: str, events: list, entity_id, decode, encode, step, out: list) -> tuple[list, list]:
        """Apply each event to its entity's fenced state (``stream.core.fencing``), one load and
        one save per batch. Returns (each kept event's output, the kept events); a redelivered
        event whose snapshot is gone is dead-lettered into ``out`` rather than recomputed wrongly.
        """
        ids = [entity_id(e) for _, e in events]
        entities = await self.state.load(kind, ids, decode)
        # redelivered records answer from snapshots the load left in the store: fetch just those
        wanted = fencing.redelivered(entities, ids, [rec for rec, _ in events])
        if wanted:
            for i, snaps in (await self.state.load_snapshots(kind, wanted)).items():
                entities[i].snapshots.update(snaps)
        results, kept = [], []
        # the committed watermark cannot move inside this loop (nothing awaits): ask once per partition
        committed: dict[tuple[str, int], int | None] = {}
        for (rec, e), i in zip(events, ids):
            tp = (rec.topic, rec.partition)
            if tp not in committed:
                committed[tp] = self.committed(*tp)
            try:
                results.append(fencing.apply(entities[i], rec.partition, rec.offset, step(e), committed[tp]))
                kept.append((rec, e))
            except fencing.ReplayGap as exc:
                out.append(self.dead_letter(rec, f"cannot reproduce a redelivered record: {exc}"))
        await self.state.save(kind, entities, encode)
        return results, kept

    def model_events(self) -> list[OutputRecord]:
        return [
            OutputRecord(self.settings.topic_model_events, f"{e['slot']}:{e['event']}".encode(), orjson.dumps(e))
            for e in self.models.take_events()
        ]

    def drift_events(self, model, x) -> list[OutputRecord]:
        """Monitoring only: counts are per worker and a redelivered batch counts again."""
        from stream.core.drift import DriftMonitor

        if getattr(self, "_drift_for", None) is not model:
            ref = model.card.reference_distribution
            self._drift = DriftMonitor(model.card.features, ref, self.settings.drift_window) if ref else None
            self._drift_for = model
        if self._drift is None:
            return []
        out = []
        for f in self._drift.update(x):
            self.counts["drift_alerts"] += 1
            log.warning("feature drift on %s: %s PSI %.3f over %d rows", model.name, f["feature"], f["psi"], f["rows"])
            event = {"event": "feature_drift", "slot": self.slot, "model": model.name, "version": model.version, **f}
            out.append(
                OutputRecord(
                    self.settings.topic_model_events, f"{self.slot}:feature_drift".encode(), orjson.dumps(event)
                )
            )
        return out

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        raise NotImplementedError
