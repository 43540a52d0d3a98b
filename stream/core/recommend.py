"""Recommendation filtering: rank products, never recommend what the customer already holds."""

from __future__ import annotations

import numpy as np

from stream.core.spend import spend_words

_HELD = float("-inf")  # the score a held product gets: never recommended


def rank(scores: np.ndarray, held: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the (N, k) product indices of the k best scores with held products last, and those
    scores (float64; a held product's is ``-inf``). Ties break by catalogue order."""
    masked = np.where(np.asarray(held) > 0, _HELD, np.asarray(scores, dtype=np.float64))
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(masked, order, axis=1)


def top_k(scores: np.ndarray, held: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Per row, the k best (product index, score) pairs among products not held.

    ``held`` is an (N, P) 0/1 matrix. Ties break by catalogue order so output is deterministic.
    """
    order, top = rank(scores, held, k)
    values = top.tolist()  # plain floats: no per-item numpy scalars
    if not np.isneginf(top).any():  # the usual case: k products not held in every row
        return [list(zip(row, vals)) for row, vals in zip(order.tolist(), values)]
    return [[(j, v) for j, v in zip(row, vals) if v != _HELD] for row, vals in zip(order.tolist(), values)]


_VERBS = {"view": "you viewed", "click": "you clicked on", "apply": "you applied for", "spend": "you spent on"}


def reason_text(
    source: int,
    product: int,
    recent: list[list[str]],
    product_ids: tuple[str, ...],
    names: dict[str, str],
    profile_known: bool,
    latest: dict[str, list[str]] | None = None,
) -> str:
    """Plain words for the model's strongest source of one product's score (``because`` output):
    sources 0..P-1 are held products, P..2P-1 recent interest in a product, 2P the customer profile.
    ``latest``: ``latest_interest(recent)``, when the caller explains several products of one profile."""
    n = len(product_ids)
    if source < n:
        return f"customers holding {names[product_ids[source]]} often hold this"
    if source < 2 * n:
        pid = product_ids[source - n]
        if latest is None:
            latest = latest_interest(recent)
        last = latest.get(pid)
        action, note = (last[1], last[2] if len(last) > 2 else "") if last else ("view", "")
        what = f"{spend_words(note)} ({names[pid]})" if action == "spend" and note else names[pid]
        because = f"because {_VERBS.get(action, 'you looked at')} {what}"
        return because if source - n == product else f"{because}; customers with that often hold this"
    return "popular with customers like you" if profile_known else "popular with our customers"


def latest_interest(recent: list[list[str]]) -> dict[str, list[str]]:
    """Each product's most recent interest event (``recent`` is oldest first)."""
    return {r[0]: r for r in recent}


class Reasons:
    """``reason_text`` for the k items of every recommendation of a batch. The words of a held
    product's source and of the profile's are the same for every user (worded once); a recent
    event's depend on the source, whether it is the item itself and the user's latest event on the
    source's product (its action and note), so each such case is worded once too and then looked up
    (a memo bounded against ever new spend notes). The words themselves come from ``reason_text``."""

    MAX = 65_536

    def __init__(self, product_ids: tuple[str, ...], names: dict[str, str]):
        self.product_ids, self.names, n = product_ids, names, len(product_ids)
        self._held = [reason_text(s, 0, [], product_ids, names, False) for s in range(n)]
        self._profile = [reason_text(2 * n, 0, [], product_ids, names, known) for known in (False, True)]
        self._interest: dict[tuple, str] = {}

    def texts(self, sources: list[int], products: list[int], recent: list[list[str]], known: bool) -> list[str]:
        """The reason of each item (``sources[i]``: the model's ``because`` for ``products[i]``)."""
        n, held, memo, latest, out = len(self._held), self._held, self._interest, None, []
        for source, product in zip(sources, products):
            if 0 <= source < n:
                out.append(held[source])
            elif source >= 2 * n:
                out.append(self._profile[known])
            elif source < 0:  # no source the model gives: worded as reason_text words it
                out.append(reason_text(source, product, recent, self.product_ids, self.names, known))
            else:
                if latest is None:
                    latest = latest_interest(recent)
                last = latest.get(self.product_ids[source - n])
                key = (source, source - n == product, last[1], last[2]) if last and len(last) == 3 else None
                text = memo.get(key) if key else None
                if text is None:
                    text = reason_text(source, product, recent, self.product_ids, self.names, known, latest)
                    if key and len(memo) < self.MAX:
                        memo[key] = text
                out.append(text)
        return out
