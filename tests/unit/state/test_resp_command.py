"""``resp_command`` writes what redis-py's own encoder writes for the same arguments (the raw save
path in ``RedisState`` relies on it)."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from stream.state.redis_store import resp_command


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "a" * 40, 1, "fs:acct:{k1}", "", "3:17", b'{"f":2}'),
        ("PEXPIRE", "fs:user:{\u00e9t\u00e9}", 7_776_000_000),
        ("EVALSHA", "b" * 40, 1, "k", "0:1", "0:2", bytes(range(256)) * 40),  # beyond redis-py's 6 kB chunking
    ],
)
def test_resp_command_is_redis_py_encoding(args):
    assert resp_command(*args) == b"".join(bytes(p) for p in Connection().pack_command(*args))
