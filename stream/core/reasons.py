"""Reason codes by occlusion: how much each feature pushes a risk score above the baseline.

For a batch of N rows and F features the plan stacks the N rows and, for each row, F copies
with one feature reset to the training baseline; one model call scores all N*(F+1) rows,
so reasons cost one batched onnxruntime call together with the scores themselves. When only
some rows need reasons (the alerts, when scores are not published), the rows are scored first
and only those rows' F copies go into a second call: with a 72-feature model that is about 70x
fewer rows than explaining every score.
For a logistic model this is exactly each feature's contribution to the logit (on the
probability scale); for a neural net it is the local effect of that feature.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def occlusion_batch(x: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """(N, F) rows -> (N*(F+1), F): each row followed by its F one-feature-occluded copies."""
    n, f = x.shape
    rep = np.repeat(x[:, None, :], f + 1, axis=1)  # (N, F+1, F)
    diag = np.arange(f)
    rep[:, diag + 1, diag] = baseline[diag]
    return rep.reshape(n * (f + 1), f).astype(np.float32, copy=False)


class Reason(NamedTuple):
    """A tuple rather than a frozen dataclass: a batch builds up to 3 per row, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) was visible in the risk profile."""

    feature: str
    text: str
    contribution: float  # score points this feature adds versus its baseline value
    value: float

    def to_dict(self) -> dict:
        return {
            "feature": self.feature,
            "reason": self.text,
            "contribution": round(self.contribution, 6),
            "value": round(self.value, 6),
        }


def split_scores(scores: np.ndarray, n: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Model output on an occlusion batch -> (scores (N,), contributions (N, F))."""
    s = np.asarray(scores, dtype=np.float64).reshape(n, f + 1)
    return s[:, 0], s[:, :1] - s[:, 1:]


def top_reasons(
    contrib: np.ndarray, x: np.ndarray, features: list[str], labels: dict[str, str], k: int = 3
) -> list[list[Reason]]:
    """The k features pushing each score up the most (only positive pushes count as reasons).

    The ranking and the picked values are gathered in numpy for the whole batch; Python only
    assembles the (at most k) reasons per row from plain lists."""
    if len(contrib) == 0:
        return []
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    picked_c = np.take_along_axis(contrib, order, axis=1).tolist()
    picked_x = np.take_along_axis(x, order, axis=1).tolist()
    names = [(f, labels.get(f, f)) for f in features]
    return [
        [Reason(*names[j], c, v) for j, c, v in zip(cols, cs, xs) if c > 0]  # type: ignore[call-arg]  # mypy cannot count *tuple into a NamedTuple
        for cols, cs, xs in zip(order.tolist(), picked_c, picked_x)
    ]


def score_with_reasons(
    run, x: np.ndarray, baseline, features: list[str], labels: dict[str, str], k: int = 3, explain=None
) -> tuple[np.ndarray, list[list[Reason]]]:
    """Every row's score and top reasons. ``explain(scores) -> bool mask`` picks the rows that
    need reasons (the others get none): two ``run`` calls, the scores, then only the picked
    rows' occluded copies. Without it every row is explained in one call over the occlusion batch."""
    x = np.asarray(x, dtype=np.float32)
    base = np.asarray(baseline, dtype=np.float32)
    if explain is None:
        scores, contrib = split_scores(run(occlusion_batch(x, base)), len(x), x.shape[1])
        return scores, top_reasons(contrib, x, features, labels, k=k)
    scores = np.asarray(run(x), dtype=np.float64).reshape(len(x))
    picked = np.flatnonzero(np.asarray(explain(scores), dtype=bool))
    reasons: list[list[Reason]] = [[] for _ in range(len(x))]
    if len(picked):
        sub = x[picked]
        n, f = sub.shape
        occluded = occlusion_batch(sub, base).reshape(n, f + 1, f)[:, 1:, :].reshape(n * f, f)
        contrib = scores[picked, None] - np.asarray(run(occluded), dtype=np.float64).reshape(n, f)
        for i, why in zip(picked.tolist(), top_reasons(contrib, sub, features, labels, k=k)):
            reasons[i] = why
    return scores, reasons
