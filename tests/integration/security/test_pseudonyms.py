"""Pseudonyms (FINSTREAM_REDIS_KEY_SECRET): no raw account or user id in any output, Redis key or log,
and an authorised consumer with the secret maps them back."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from stream.core.pseudonyms import pseudonym
from stream.settings import REPO_ROOT
from stream.stack import redis_server
from tests.integration.security.secure import KEY_SECRET, redis_state

pytestmark = pytest.mark.integration


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
    state = redis_state(s, s.redis_key_prefix)
    # the served risk model's entity kind: per card (real-data model) or per account (synthetic model)
    assert {f"card:{{{table[accounts[0]]}}}", f"acct:{{{table[accounts[0]]}}}"} & set(state)
    assert f"user:{{{table[users[0]]}}}" in state
    assert table[accounts[0]] == pseudonym(KEY_SECRET.encode(), accounts[0])
