"""transactions -> risk alerts (and risk scores): where a card transaction becomes an alert.

Each transaction (keyed by account/card id) is checked at the edge
(``stream.core.contracts.parse_transaction``), folded into the card's live features
(``stream.core.cardrisk``, state ``card``; the synthetic load-test model uses ``acct`` and
``stream.core.features``), scored with reason codes in one onnxruntime call, and published to
``risk-alerts`` above the card's threshold (every score to ``risk-scores`` when
``FINSTREAM_PUBLISH_RISK_SCORES``). A transaction naming its ``user_id`` also feeds a derived
``spend`` event to ``user-events`` (the recommend pipeline). The Job:
``stream.serving.risk.RiskJob``; models come from ``training/risk.py``.
"""

from stream.core.contracts import parse_transaction
from stream.pipelines.base import InputContract, Pipeline
from stream.serving.risk import RiskJob

PIPELINE = Pipeline(
    name="risk",
    order=20,
    input=InputContract(
        kind="transactions",
        parse=parse_transaction,
        key="account_id",
        fields=(
            "event_id",
            "account_id",
            "ts",
            "amount",
            "currency",
            "merchant_category",
            "channel",
            "country",
            "merchant_id",
        ),
        numeric=("amount",),
    ),
    input_topic="transactions",
    state=("card", "acct"),
    served_tasks=frozenset({"transaction_risk"}),
    # transaction_risk: the live card scorer; credit_default (application default probability) and
    # credit_loss (continuous risk target): batch scoring only (``finstream score``)
    trained_tasks=frozenset({"transaction_risk", "credit_default", "credit_loss"}),
    outputs=("risk-scores", "risk-alerts"),
    watched="risk-alerts",  # the scores are published only on request (FINSTREAM_PUBLISH_RISK_SCORES)
    feeds=("user-events",),
    job=RiskJob,
    trainer="training.risk",
    load="stream.tools.synthetic.transaction_feeds",
)
