"""``resp_command`` writes what redis-py's own encoder writes for the same arguments (the raw save
path in ``RedisState`` relies on it)."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from stream.state.redis_store import resp_command, script_calls


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


@pytest.mark.parametrize("ttl_ms", [0, 7_776_000_000])
def test_a_batch_of_script_calls_is_redis_py_encoding_of_each(ttl_ms):
    calls = [
        ("fs:user:{\u00e9t\u00e9}", ["", "3:17", b'{"f":3}', "r", 0, b"1:4:null", 1]),
        ("fs:bar:{A}", ["3:17", "3:20", b"{}", "18", 64, b"", 0]),
        ("k", ["a", "b"]),  # another number of arguments
    ]
    expected = b""
    for key, args in calls:
        expected += b"".join(bytes(p) for p in Connection().pack_command("EVALSHA", "c" * 40, 1, key, *args))
        if ttl_ms:
            expected += b"".join(bytes(p) for p in Connection().pack_command("PEXPIRE", key, ttl_ms))
    assert script_calls("c" * 40, calls, ttl_ms) == expected
