"""Seeded synthetic event generators, one module per stream kind: card transactions with labelled
fraud (``transactions``: the simulator; ``world``: its assumptions; ``transaction_feeds``: what it
feeds), ticks (``ticks``), user events (``user_events``).

Used by training (the transaction-risk model has no public labelled source with per-account
histories) and by the stream for feeds and load tests. Pure numpy + Python so the worker's
install can import it; nothing here touches Kafka, pandas or TensorFlow. Every record matches its
input-topic contract (``stream.core.contracts``). Each kind's module also gives its pipeline's
load for ``finstream bench`` (``load_records``; the pipeline names it, ``stream.tools.bench_load``).
The data is synthetic: fine for load, never for accuracy claims.
"""

from stream.tools.synthetic.ticks import tick_stream
from stream.tools.synthetic.transaction_feeds import (
    fraud_labels,
    generate_transactions,
    replay_rows,
    strip_labels,
    transaction_stream,
)
from stream.tools.synthetic.transactions import TransactionSimulator
from stream.tools.synthetic.user_events import user_event_stream
from stream.tools.synthetic.world import START_MS

__all__ = [
    "START_MS",
    "TransactionSimulator",
    "fraud_labels",
    "generate_transactions",
    "replay_rows",
    "strip_labels",
    "tick_stream",
    "transaction_stream",
    "user_event_stream",
]
