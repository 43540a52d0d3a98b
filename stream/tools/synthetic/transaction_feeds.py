"""Feeds of the simulated card transactions (``transactions``): a finite labelled list for training,
an endless unlabelled stream for demos and load, the label helpers, and the risk pipeline's load
for ``finstream bench``. Apart from the simulator so its users read what they get without reading
how the world is simulated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from stream.tools.synthetic.transactions import TransactionSimulator
from stream.tools.synthetic.world import START_MS


def generate_transactions(
    n_accounts: int = 2000,
    days: int = 30,
    fraud_rate: float = 0.01,
    seed: int = 7,
    start_ms: int = START_MS,
    with_labels: bool = True,
) -> list[dict]:
    """A finite, time-ordered list of transaction records (``is_fraud`` included when labelled)."""
    sim = TransactionSimulator(
        n_accounts=n_accounts, fraud_rate=fraud_rate, seed=seed, start_ms=start_ms, with_labels=with_labels
    )
    return list(sim.stream(days))


def transaction_stream(
    n_accounts: int = 2000, fraud_rate: float = 0.01, seed: int = 7, start_ms: int = START_MS, with_labels: bool = False
) -> Iterator[dict]:
    """An endless, time-ordered transaction feed (unlabelled by default) for demos and load tests."""
    return TransactionSimulator(
        n_accounts=n_accounts, fraud_rate=fraud_rate, seed=seed, start_ms=start_ms, with_labels=with_labels
    ).stream(None)


def replay_rows(records: Sequence[dict]) -> Iterator[tuple]:
    """Records -> the (account_id, ts, amount, country, category, channel) tuples ``replay_features`` takes."""
    for r in records:
        yield (r["account_id"], r["ts"], r["amount"], r["country"], r["merchant_category"], r["channel"])


def fraud_labels(records: Sequence[dict]) -> np.ndarray:
    """The parallel 0/1 label vector of labelled records."""
    return np.fromiter((r["is_fraud"] for r in records), dtype=np.int8, count=len(records))


def strip_labels(records: Sequence[dict]) -> list[dict]:
    """Copies of the records without the label (what would be published)."""
    return [{k: v for k, v in r.items() if k != "is_fraud"} for r in records]


def load_records(n: int, seed: int = 7, spread: int | None = None) -> list[tuple[bytes, bytes]]:
    """The risk pipeline's load (``stream.tools.bench_load``): real IEEE-CIS rows when cached
    (``stream.tools.cardfeed``), else this simulator's, keyed by account."""
    from itertools import islice

    import orjson

    from stream.settings import get_settings
    from stream.tools.cardfeed import real_transactions

    real = real_transactions(get_settings().home, start_share=0.0, limit=n)
    if real is not None:
        return list(real)
    return [
        (r["account_id"].encode(), orjson.dumps(r)) for r in islice(transaction_stream(n_accounts=2000, seed=seed), n)
    ]
