"""``finstream worker``: wire settings, Redis, the model registry and the jobs into the Faust app."""
from __future__ import annotations

import logging

from stream.settings import Settings, get_settings


def build_jobs(s: Settings, redis_client=None, registry=None) -> dict:
    """Input topic -> Job. Loads and verifies the served models (fails fast if none is usable)."""
    from stream.serving.forecasting import ForecastJob
    from stream.serving.models import ModelRegistry
    from stream.serving.recommending import RecommendJob
    from stream.serving.risk import RiskJob
    from stream.state.redis_store import RedisState, connect

    secret = s.redis_key_secret.get_secret_value().encode() if s.redis_key_secret else None
    state = RedisState(redis_client or connect(s), s.redis_key_prefix, secret)
    registry = registry or ModelRegistry(s.model_dir, ("forecast", "risk", "recommend"))
    return {
        s.topic_ticks: ForecastJob(s, state, registry),
        s.topic_transactions: RiskJob(s, state, registry),
        s.topic_user_events: RecommendJob(s, state, registry),
    }


def main(settings: Settings | None = None) -> None:
    from faust.worker import Worker

    from stream.app import create_app
    from stream.stack.kafka import ensure_topics

    s = settings or get_settings()
    logging.basicConfig(level=s.log_level.upper() if s.log_level != "warn" else "WARNING",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_topics(s)  # Faust silently ignores a source topic that does not exist yet
    app = create_app(s, build_jobs(s))
    Worker(app, loglevel=s.log_level, quiet=True).execute_from_commandline()
