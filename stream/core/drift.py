"""Feature drift against the training reference: Population Stability Index per feature.

The manifest stores each feature's training quantiles; live rows are binned on the same edges
and, every ``window`` rows, PSI = sum((live - ref) * ln(live / ref)) over the bins is computed.
PSI above 0.2 is the usual "the population has shifted" line: the model is scoring data unlike
what it was trained on, which is worth an alert even when every record is individually valid.

Rows are only kept (the monitored columns, float32) until the window completes and binned then:
binning every batch as it came cost one ``searchsorted`` per feature per batch (72 for the card
model), 7% of the risk job at the paced rate's 40-record batches; binning 5,000 rows at once gives
the same counts, hence the same PSI, at a fraction of the calls.
"""

from __future__ import annotations

import numpy as np

PSI_ALERT = 0.2
_EPS = 1e-4


class DriftMonitor:
    def __init__(self, features: list[str], reference: dict, window: int = 5000, threshold: float = PSI_ALERT):
        self.features = [f for f in features if f in reference]
        self.cols = [features.index(f) for f in self.features]
        self.edges = []
        self.expected = []
        for f in self.features:
            probs = np.asarray(reference[f]["probs"], dtype=np.float64)
            q = np.asarray(reference[f]["quantiles"], dtype=np.float64)
            edges, keep = np.unique(q, return_index=True)  # ties (e.g. 0/1 flags) merge bins
            cdf = np.concatenate([[0.0], probs[keep], [1.0]])
            self.edges.append(edges)
            self.expected.append(np.maximum(np.diff(cdf), _EPS))
        self.window = window
        self.threshold = threshold
        self._rows: list[np.ndarray] = []  # the monitored columns of each batch since the last window
        self.seen = 0
        self.last_psi: dict[str, float] = {}  # every feature's PSI at the last full window (for metrics)

    def update(self, x: np.ndarray) -> list[dict]:
        """Add a batch of rows; returns drift findings whenever a window completes."""
        findings: list[dict] = []
        self._rows.append(x[:, self.cols])  # a copy: the caller's matrix is not kept alive
        self.seen += len(x)
        if self.seen < self.window:
            return findings
        rows = np.concatenate(self._rows)
        for k, f in enumerate(self.features):
            bins = np.searchsorted(self.edges[k], rows[:, k], side="right")
            counts = np.bincount(bins, minlength=len(self.expected[k]))[: len(self.expected[k])]
            actual = np.maximum(counts / self.seen, _EPS)
            psi = float(np.sum((actual - self.expected[k]) * np.log(actual / self.expected[k])))
            self.last_psi[f] = psi
            if psi > self.threshold:
                findings.append({"feature": f, "psi": round(psi, 4), "rows": self.seen})
        self._rows, self.seen = [], 0
        return findings
