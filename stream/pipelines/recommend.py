"""user-events -> recommendations: where a view, click or card spend becomes a recommendation.

Each user event (keyed by user id; a product of ``stream.core.products``) is checked at the
edge (``stream.core.contracts.parse_user_event``), folded into the user's profile (holdings,
recent interest, attributes; state ``user``), and the default recommender ranks the products
not held, with a reason each, to ``recommendations``: ``stream.serving.recommending.RecommendJob``.
Derived ``spend`` events from the risk pipeline arrive here as ordinary user events. Models
come from ``training/recommend.py``.
"""

from stream.core.contracts import parse_user_event
from stream.pipelines.base import InputContract, Pipeline
from stream.serving.recommending import RecommendJob

PIPELINE = Pipeline(
    name="recommend",
    order=30,
    input=InputContract(
        kind="user-events",
        parse=parse_user_event,
        key="user_id",
        fields=("user_id", "ts", "product_id", "action", "event_id"),
    ),
    input_topic="user-events",
    state=("user",),
    served_tasks=frozenset({"recommend"}),
    # recommend: holdings (+ attributes) -> score per product; purchase_propensity: customer ->
    # probability of buying (caravan), batch scoring only
    trained_tasks=frozenset({"recommend", "purchase_propensity"}),
    outputs=("recommendations",),
    job=RecommendJob,
    trainer="training.recommend",
    load="stream.tools.synthetic.user_events",
)
