"""The secure stack's credentials and the helpers its tests share: settings on it, the worker's
input, and reading its outputs and Redis state."""

from __future__ import annotations

import asyncio

import orjson

from stream.core.products import PRODUCT_IDS
from stream.dashboard.server import output_reader
from stream.settings import Settings, settings_from_env
from stream.stack import redis_server

KAFKA_PASSWORD = "kafka-Secret-7f3a"
REDIS_PASSWORD = "redis-Secret-91c2"
KEY_SECRET = "pseudonym-key-for-tests"


def secure_settings(env: dict[str, str], **changes) -> Settings:
    return settings_from_env({**env, **changes})


def user_events(n_users: int) -> list[tuple[str, dict]]:
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


async def read_raw(s: Settings, topics: list[str], until, timeout: float) -> dict[str, list[tuple]]:
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


def redis_state(s: Settings, prefix: str) -> dict[str, object]:
    """Every key under ``prefix`` (prefix stripped) with its value: hashes as dicts, strings as bytes."""
    with redis_server.client(s, timeout=10) as r:
        out = {}
        for key in r.scan_iter(match=f"{prefix}:*", count=1000):
            name = key.decode().removeprefix(f"{prefix}:")
            out[name] = r.hgetall(key) if r.type(key) == b"hash" else r.get(key)
        return out


def entity_state(state: dict[str, object]) -> dict[str, object]:
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
