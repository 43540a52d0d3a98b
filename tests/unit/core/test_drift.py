import numpy as np

from stream.core.drift import DriftMonitor

PROBS = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]


def reference(sample: np.ndarray) -> dict:
    return {
        "x": {"probs": PROBS, "quantiles": list(np.quantile(sample, PROBS))},
        "flag": {"probs": PROBS, "quantiles": [0, 0, 0, 0, 1, 1, 1]},
    }


def test_same_population_raises_nothing_and_shifted_one_does():
    rng = np.random.default_rng(0)
    ref = reference(rng.normal(size=20000))
    mon = DriftMonitor(["x", "flag", "unknown"], ref, window=4000)
    same = np.column_stack([rng.normal(size=4000), rng.random(4000) < 0.3, np.zeros(4000)])
    assert mon.update(same) == []
    shifted = np.column_stack([rng.normal(1.0, 1.0, size=4000), rng.random(4000) < 0.3, np.zeros(4000)])
    findings = mon.update(shifted)
    assert [f["feature"] for f in findings] == ["x"] and findings[0]["psi"] > 0.2


def test_window_accumulates_across_batches():
    rng = np.random.default_rng(1)
    mon = DriftMonitor(["x"], reference(rng.normal(size=10000)), window=1000)
    assert mon.update(rng.normal(3.0, 1.0, size=(600, 1))) == []
    assert mon.update(rng.normal(3.0, 1.0, size=(600, 1)))[0]["rows"] == 1200
