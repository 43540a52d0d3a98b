"""transactions -> risk scores and alerts with reason codes, from per-entity state in Redis.

Two feature sets, chosen by the served model's card: the real-data card model
(``stream.core.cardrisk``, state per card id under ``card``) and the synthetic account model
(``stream.core.features``, state per account under ``acct``; kept for load tests). Both are
keyed by the record's ``account_id``; for real card data that is the card id.
"""

from __future__ import annotations

from stream.core.alerts import is_alert
from stream.core.cardbatch import all_remembered_fit, card_matrix, remembered_fits
from stream.core.cardrisk import CARD_FEATURES, CardState, CardTables, card_step
from stream.core.contracts import SCHEMA_VERSION, parse_transaction
from stream.core.dedupe import codec, once
from stream.core.features import AccountState, advance, txn_features
from stream.core.reasons import score_with_reasons
from stream.core.records import OutputRecord, SourceRecord, enveloped
from stream.core.rows import fits, pack_row, rows_matrix
from stream.core.spend import spend_record
from stream.serving.base import Job


def _step(t):
    def step(st: AccountState):
        feats = txn_features(st, t.ts, t.amount, t.country, t.merchant_category, t.channel)
        return advance(st, t.ts, t.amount, t.country, t.merchant_category), pack_row(feats)

    return step


def _card_step(t):
    # a parsed Transaction is a CardEvent (it extends it): the features read it as it is. Only
    # the history part is remembered: the event's own features come from the record each time
    # (stream.core.cardbatch)
    def step(st: CardState):
        state, history = card_step(st, t)
        return state, pack_row(history)

    return step


_TABLES: dict[tuple[str, str], CardTables] = {}


def _card_tables(model) -> CardTables:
    """The served card model's static tables (``extra["tables"]``), parsed once per model version."""
    key = (model.name, str(model.version))
    if key not in _TABLES:
        _TABLES.clear()
        _TABLES[key] = CardTables.from_dict(model.card.extra.get("tables"))
    return _TABLES[key]


# feature set -> (state kind, decode, encode, step)
_ACCOUNT = ("acct", *codec(AccountState.from_dict, AccountState.to_dict), _step)
_CARD = ("card", *codec(CardState.from_stored, CardState.stored), _card_step)


class RiskJob(Job):
    slot = "risk"

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, parse_transaction)
        model = self.models[self.slot]
        card = model.card
        kind, dec, enc, step = _CARD if tuple(card.features) == CARD_FEATURES else _ACCOUNT
        # a resent event id gets its original features back (same bytes, same score), state untouched;
        # a step's output is its feature row packed as float32 (stream.core.rows): small to store
        results, kept = await self.fold(
            kind, events, lambda t: t.account_id, dec, enc, lambda t: once(t.event_id, step(t)), out
        )
        width = len(card.features)
        usable = remembered_fits if kind == "card" else lambda row: fits(row, width)
        rows = [row for row, _ in results]
        if not (all_remembered_fit(rows) if kind == "card" else all(map(usable, rows))):
            results, kept = self._drop_stale(results, kept, usable, width, out)
            rows = [row for row, _ in results]
        repeats = [r for _, r in results].count(True)
        self.counts["transactions"] += len(kept) - repeats
        self.counts["repeated_event_ids"] += repeats
        if not kept:
            return out
        if kind == "card":
            x = card_matrix(rows, [t for _, t in kept], _card_tables(model))
        else:
            x = rows_matrix(rows, width)
        # reasons for the alerts only (a score below the threshold carries none): explaining every
        # score cost 73 model rows per event with the 72-feature card model
        scores, reasons = score_with_reasons(
            lambda batch: model.run({card.inputs[0].name: batch})[0],
            x,
            card.baseline,
            card.features,
            card.feature_labels,
            explain=lambda s: [is_alert(v, card.threshold) for v in s.tolist()],
        )
        out += self.drift_events(model, x)
        s = self.settings
        threshold, name, version, ids = card.threshold, model.name, model.version, self.ids
        scores_topic = s.topic_risk_scores if s.publish_risk_scores else None
        alerts_topic, alerts, spends = s.topic_risk_alerts, 0, 0
        for (rec, t), score, why in zip(kept, scores.tolist(), reasons):
            alert = is_alert(score, threshold)
            # the value is built (and printed) once, envelope included, and only when published:
            # without FINSTREAM_PUBLISH_RISK_SCORES most events have no output of their own
            if scores_topic is not None or alert:
                scored = enveloped(
                    scores_topic or alerts_topic,
                    rec,
                    {
                        "v": SCHEMA_VERSION,
                        "event_id": t.event_id,
                        "account_id": ids(t.account_id),
                        "ts": t.ts,
                        "amount": t.amount,
                        "currency": t.currency,
                        "risk_score": score,
                        "threshold": threshold,
                        "reasons": [r.to_dict() for r in why] if why else [],  # only alerts carry reasons
                        "model": name,
                        "model_version": version,
                        "source": rec.source(),
                    },
                )
                if scores_topic is not None:
                    out.append(scored)
                if alert:  # the same bytes as its score
                    out.append(scored._replace(topic=alerts_topic))
                    alerts += 1
            spend = spend_record(s.topic_user_events, rec, t)  # linked spend -> recommender interest
            if spend is not None:
                out.append(spend)
                spends += 1
        if alerts:
            self.counts["alerts"] += alerts
        if spends:
            self.counts["spend_signals"] += spends
        return out

    def _drop_stale(self, results: list, kept: list, usable, width: int, out: list) -> tuple[list, list]:
        """A remembered row (redelivery snapshot or resent event id) of another length than the
        served model reads was computed under a model with another feature list: its output
        cannot be reproduced, so the record is dead-lettered instead of failing the batch."""
        if all(usable(row) for row, _ in results):
            return results, kept
        good: tuple[list, list] = ([], [])
        for result, ev in zip(results, kept):
            if usable(result[0]):
                good[0].append(result)
                good[1].append(ev)
            else:
                reason = f"remembered feature row does not fit the served model's {width} features: cannot reproduce it"
                out.append(self.dead_letter(ev[0], reason))
        return good
