"""The ``onnx`` scenario of ``finstream bench``: raw onnxruntime per served model, apart from the
stream, so the engine's model cost can be told from the rest (``engine-<job>`` times the engine's
own calls).
"""

from __future__ import annotations

import time

import numpy as np

from stream.settings import Settings
from stream.tools.bench_env import served_models
from stream.tools.bench_report import rnd as _r

ONNX_BATCHES = (1, 64, 512)


def _feeds(card, batch: int, rng: np.random.Generator) -> dict:
    feeds = {}
    for t in card.inputs:
        shape = [batch if (d is None or not isinstance(d, int)) else d for d in t.shape]
        if t.name == "holdings":
            feeds[t.name] = (rng.random(shape) < 0.15).astype(t.dtype)
        elif np.issubdtype(np.dtype(t.dtype), np.integer):
            feeds[t.name] = rng.integers(0, 2, size=shape).astype(t.dtype)
        else:
            feeds[t.name] = rng.standard_normal(shape).astype(t.dtype)
    return feeds


def bench_onnx(s: Settings, budget_s: float = 1.0, max_runs: int = 500) -> dict:
    from stream.core.manifest import read_manifest
    from stream.serving.models import load_model

    manifest = read_manifest(s.model_dir)
    rng = np.random.default_rng(0)
    rows = []
    for slot, info in served_models(s.model_dir).items():
        card = manifest.get(info["name"])
        model = load_model(card, s.model_dir)  # same SHA check and session options as serving
        for b in ONNX_BATCHES:
            feeds = _feeds(card, b, rng)
            sess = model.session  # raw onnxruntime: no padding / slicing of ServedModel.run
            for _ in range(5):
                sess.run(None, feeds)
            times = []
            start = time.perf_counter()
            while len(times) < max_runs and (len(times) < 20 or time.perf_counter() - start < budget_s):
                t = time.perf_counter()
                sess.run(None, feeds)
                times.append(time.perf_counter() - t)
            ms = np.asarray(times) * 1000
            rows.append(
                {
                    "slot": slot,
                    "model": card.name,
                    "version": card.version,
                    "family": card.family,
                    "batch": b,
                    "runs": len(times),
                    "p50_ms": _r(np.percentile(ms, 50), 4),
                    "p99_ms": _r(np.percentile(ms, 99), 4),
                    "mean_ms": _r(ms.mean(), 4),
                    "rows_per_s": _r(b / (ms.mean() / 1000), 1),
                }
            )
    return {
        "name": "onnx",
        "kind": "onnx",
        "status": "ok",
        "results": rows,
        "throughput": min((r["rows_per_s"] for r in rows), default=0.0),
        "note": "InferenceSession.run on the served session (serving's session options: 1 intra-op thread, "
        "no spinning, ORT_ENABLE_ALL); random inputs; the engine's own calls are in engine-<job>",
    }
