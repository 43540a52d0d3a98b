"""Alert rule: a score at or above the model's threshold raises an alert."""

from __future__ import annotations


def is_alert(score: float, threshold: float | None) -> bool:
    if threshold is None:
        raise ValueError("risk model has no threshold in the manifest")
    return score >= threshold
