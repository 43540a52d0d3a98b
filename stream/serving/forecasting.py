"""ticks -> forecasts: rolling windows in Redis, one onnxruntime call per batch."""
from __future__ import annotations

import numpy as np

from stream.core.contracts import parse_tick
from stream.core.features import Standardiser, forecast_band, forecast_input
from stream.core.records import OutputRecord, SourceRecord, output
from stream.core.windows import full_windows, pack_tick
from stream.serving.base import Job
from stream.state.redis_store import OUT_OF_ORDER


class ForecastJob(Job):
    slot = "forecast"

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, parse_tick)
        model = self.models[self.slot]
        window = model.card.inputs[0].shape[1]           # returns per window
        length = window + 1                               # prices per window
        items = [(t.symbol, pack_tick(r.partition, r.offset, t.ts, t.price), r.partition, r.offset, t.ts)
                 for r, t in events]
        buffers = await self.state.append_ticks(items, length, length + self.settings.window_history)
        gaps = []
        for i, b in enumerate(buffers):
            if b is None:
                gaps.append(i)
                out.append(self.dead_letter(events[i][0], "redelivered tick is older than the kept window history; "
                                            "raise FINSTREAM_WINDOW_HISTORY"))
            elif b == OUT_OF_ORDER:
                gaps.append(i)
                out.append(self.dead_letter(events[i][0], f"out-of-order tick: ts {events[i][1].ts} is older than "
                                            f"the last tick of {events[i][1].symbol}"))
        prices, idx = full_windows([b if isinstance(b, bytes) else b"" for b in buffers], length)
        self.counts["ticks"] += len(events)
        self.counts["warming_up"] += len(events) - len(idx) - len(gaps)
        if len(idx) == 0:
            return out
        norm = Standardiser.from_dict(model.card.normalisation["returns"])
        pred = model.run({model.card.inputs[0].name: forecast_input(prices, norm)})[0].astype(np.float64)
        ret, vol = pred[:, 0], np.maximum(pred[:, 1], 0.0)
        lo, hi = forecast_band(ret, vol)
        for j, i in enumerate(idx):
            rec, tick = events[i]
            out.append(output(self.settings.topic_forecasts, rec, {
                "symbol": tick.symbol, "ts": tick.ts, "event_id": tick.event_id or rec.source_id, "horizon": 1,
                "last_price": tick.price, "predicted_return": float(ret[j]), "predicted_volatility": float(vol[j]),
                "band_95": [float(lo[j]), float(hi[j])], "model": model.name, "model_version": model.version,
            }))
        self.counts["forecasts"] += len(idx)
        return out
