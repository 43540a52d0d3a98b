"""ticks -> time bars (fenced per-symbol state in Redis) -> one forecast per closed bar.

Each symbol's ticks are folded into bars of its interval (``FINSTREAM_BAR_INTERVAL`` and
``FINSTREAM_BAR_INTERVALS``) by ``stream.core.bars``; when a bar closes, the window of the last
W+1 closes goes to the forecaster trained at that interval (``forecast@<interval>`` in the
manifest), and the forecast states its horizon in seconds. The bar state is an entity under the
same fence and snapshot rules as accounts and profiles (``Job.fold``), so a redelivered tick
returns the bar outcome it had, and its forecast scores to the same bytes.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from stream.core.bars import BarError, BarState, FrequencyMismatch, advance, plan_forecasters, scale_factor
from stream.core.contracts import SCHEMA_VERSION, parse_tick
from stream.core.features import Standardiser, forecast_band, forecast_input
from stream.core.manifest import ManifestError, read_manifest
from stream.core.records import OutputRecord, SourceRecord, enveloped
from stream.serving.base import Job

DAY_S = 86400  # forecasters without a stated interval were trained on daily closes


def model_bar_s(card) -> int:
    return int(card.extra.get("bar_s", DAY_S))


class ForecastJob(Job):
    slot = "forecast"

    def __init__(self, settings, state, models):
        super().__init__(settings, state, models)
        manifest = read_manifest(settings.model_dir)
        trained = {
            slot: model_bar_s(manifest.get(name))
            for slot, name in manifest.defaults.items()
            if slot.startswith("forecast@")
        }
        try:  # interval (s) -> slot; the worker prints a ManifestError as one line and exits 1
            self.plan = plan_forecasters(trained, settings.bar_intervals_s, settings.bar_scaling_fallback)
        except FrequencyMismatch as exc:
            raise ManifestError(str(exc)) from None
        models.require(sorted(set(self.plan.values())))
        # a symbol's interval, asked per tick: the settings do not change while the job lives, so
        # the answers are kept (bounded: symbols beyond it are asked again)
        self._interval_s = lru_cache(maxsize=1 << 16)(settings.bar_interval_s)

    def _step(self, now_ms: int):
        keeps: dict[int, int] = {}  # interval -> closes kept (its model's window + 1), once per batch

        def plan(symbol: str) -> tuple[int, int]:
            iv = self._interval_s(symbol)
            keep = keeps.get(iv)
            if keep is None:
                slot = self.plan.get(iv)
                if slot is None:  # an interval configured after start would need a restart (plan checked there)
                    raise BarError(f"no forecaster planned for {symbol}'s {iv} s bars; restart the worker")
                # models change between batches only
                keep = keeps[iv] = self.models[slot].card.inputs[0].shape[1] + 1
            return iv, keep

        def for_event(tick):
            def step(st: BarState):
                try:
                    iv, keep = plan(tick.symbol)
                    nxt, closed = advance(st, tick.ts, tick.price, tick.volume, iv, keep, now_ms)
                except BarError as exc:
                    return st, {"error": str(exc)}
                if closed is None:
                    return nxt, None
                return nxt, {"bar": closed.bar.to_list(), "closes": closed.closes, "bar_s": iv}

            return step

        return for_event

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, parse_tick)
        results, kept = await self.fold(
            "bar",
            events,
            lambda t: t.symbol,
            BarState.from_dict,
            BarState.to_dict,
            self._step(int(time.time() * 1000)),
            out,
        )
        self.counts["ticks"] += len(events)
        ready: dict[str, list[int]] = {}  # slot -> indices into kept/results with a full window
        checks: dict[int, tuple[str, str | None, int]] = {}  # bar_s -> _check(bar_s), once per batch
        in_open_bar = closed = warming_up = 0
        for j, ((rec, _tick), res) in enumerate(zip(kept, results)):
            if res is None:  # the tick went into its open bar: no bar closed
                in_open_bar += 1
                continue
            if "error" in res:
                out.append(self.dead_letter(rec, res["error"]))
                continue
            closed += 1
            check = checks.get(res["bar_s"])
            if check is None:
                check = checks[res["bar_s"]] = self._check(res["bar_s"])
            slot, refused, length = check
            if refused is not None:
                out.append(self.dead_letter(rec, refused))
            elif len(res["closes"]) < length:
                warming_up += 1
            else:
                ready.setdefault(slot, []).append(j)
        tally = {"in_open_bar": in_open_bar, "bars_closed": closed, "warming_up": warming_up}
        self.counts.update({k: n for k, n in tally.items() if n})
        for slot, idx in ready.items():
            out.extend(self._forecast(slot, [kept[j] for j in idx], [results[j] for j in idx]))
        return out

    def _check(self, bar_s: int) -> tuple[str, str | None, int]:
        """A closed bar of ``bar_s`` seconds: (its slot, why it cannot be forecast or None, the
        closes a forecast needs). Models change between batches only, so this is asked once per
        interval and batch."""
        slot = self.plan.get(bar_s)
        if slot is None:  # a redelivered bar of an interval configured before a restart
            return "", f"no forecaster planned for {bar_s} s bars", 0
        card = self.models[slot].card
        if model_bar_s(card) != bar_s and not self.settings.bar_scaling_fallback:
            # a hot-reloaded manifest named a model of another interval: refuse, as at start
            reason = (
                f"{card.name} v{card.version} was trained at {model_bar_s(card)} s "
                f"bars, not {bar_s} s; set FINSTREAM_BAR_SCALING_FALLBACK"
            )
            return slot, reason, 0
        return slot, None, card.inputs[0].shape[1] + 1

    def _forecast(self, slot: str, events: list, results: list[dict]) -> list[OutputRecord]:
        model = self.models[slot]
        length = model.card.inputs[0].shape[1] + 1
        bar_s_l = [r["bar_s"] for r in results]
        k = np.array(bar_s_l, dtype=np.float64) / model_bar_s(model.card)  # 1.0 unless the fallback serves
        logp = np.log(np.array([r["closes"][-length:] for r in results], dtype=np.float64))
        prices = np.exp((logp - logp[:, :1]) / np.sqrt(k)[:, None])  # returns / sqrt(k): the model's scale
        norm = Standardiser.from_dict(model.card.normalisation["returns"])
        pred = model.run({model.card.inputs[0].name: forecast_input(prices, norm)})[0].astype(np.float64)
        ret, vol = pred[:, 0] * k, np.maximum(pred[:, 1], 0.0) * np.sqrt(k)
        lo, hi = forecast_band(ret, vol, float(model.card.extra.get("band_z", 1.96)))  # z fitted in training
        topic, name, version, trained_s = (
            self.settings.topic_forecasts,
            model.name,
            model.version,
            model_bar_s(model.card),
        )
        scaled = {
            b: {"scaled_from_bar_s": trained_s} if scale_factor(b, trained_s) != 1.0 else {} for b in set(bar_s_l)
        }
        # plain floats for the whole batch at once, not a numpy scalar per field; each output's
        # dict built once, envelope included (records.enveloped)
        ret_l, vol_l, lo_l, hi_l = ret.tolist(), vol.tolist(), lo.tolist(), hi.tolist()
        out = []
        for j, ((rec, tick), r) in enumerate(zip(events, results)):
            start, close_ts, o, h, low, c, v, n, _ = r["bar"]
            b = bar_s_l[j]
            value = {
                "v": SCHEMA_VERSION,
                "symbol": tick.symbol,
                "ts": tick.ts,
                "event_id": tick.event_id or rec.source_id,
                "bar_start": start,
                "bar_close_ts": close_ts,
                "bar_s": b,
                "horizon_s": b,
                "bar": {"open": o, "high": h, "low": low, "close": c, "volume": v, "count": n},
                "last_price": c,
                "predicted_return": ret_l[j],
                "predicted_volatility": vol_l[j],
                "band_95": [lo_l[j], hi_l[j]],
                "model": name,
                "model_version": version,
                **scaled[b],
                "source": rec.source(),
            }
            out.append(enveloped(topic, rec, value))
        self.counts["forecasts"] += len(out)
        return out
