"""``finstream worker``: wire settings, Redis, the model registry and the jobs into the Faust app."""

from __future__ import annotations

import gc
import logging

from stream.settings import Settings, get_settings


def build_jobs(s: Settings, redis_client=None, registry=None, state=None) -> dict:
    """Input topic -> Job, one per pipeline (``stream.pipelines``). Loads and verifies the served
    models (fails fast if none is usable). ``state``: an ``EntityStore`` other than the settings'
    Redis (``finstream backtest``: in-process)."""
    from stream import pipelines
    from stream.serving.models import ModelRegistry
    from stream.state.redis_store import RedisState, connect_state

    if state is None:
        state = RedisState(redis_client or connect_state(s), s.redis_key_prefix, s.key_secret, s.state_retention_ms())
    registry = registry or ModelRegistry(s.model_dir, pipelines.slots())
    return {p.topic(s): p.build(s, state, registry) for p in pipelines.all_pipelines()}


def preflight(s: Settings) -> None:
    """Fail fast, in one line, on what would otherwise surface as a retry loop or a traceback:
    an unreachable server, a refused password, an untrusted certificate (same checks as
    ``finstream stack status``; the password is never printed)."""
    from stream.stack import kafka, redis_server

    for component in (redis_server, kafka):
        problem = component.check(s, timeout=5.0)
        if problem:
            raise WorkerError(problem)
    try:
        kafka.ensure_topics(s)  # Faust silently ignores a source topic that does not exist yet
    except Exception as exc:  # aiokafka raises several connection error types
        raise WorkerError(kafka.explain(s, exc)) from None


class WorkerError(RuntimeError):
    pass


def main(settings: Settings | None = None) -> None:
    from faust.worker import Worker

    from stream.app import create_app
    from stream.core.logsafe import install_one_line_logging
    from stream.core.manifest import ManifestError

    s = settings or get_settings()
    install_one_line_logging()  # nothing from the wire can forge a log line
    logging.basicConfig(
        level=s.log_level.upper() if s.log_level != "warn" else "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        preflight(s)
        jobs = build_jobs(s)
    except (WorkerError, ManifestError) as exc:
        logging.getLogger("finstream.worker").error("%s", exc)
        raise SystemExit(1) from None
    app = create_app(s, jobs)
    # What start-up built (modules, models, the manifest) lives as long as the process: frozen, a
    # full collection no longer walks it again (about 11% of the risk engine's CPU per event, measured)
    gc.freeze()
    Worker(app, loglevel=s.log_level, quiet=True).execute_from_commandline()
