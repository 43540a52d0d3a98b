"""Settings come only from FINSTREAM_* env vars, fail loudly on bad values, and never print secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from stream import settings as settings_mod
from stream.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No FINSTREAM_* from the caller's shell (or the session stack) leaks into these tests."""
    for key in list(os.environ):
        if key.startswith("FINSTREAM_"):
            monkeypatch.delenv(key)
    settings_mod.get_settings.cache_clear()
    yield monkeypatch
    settings_mod.get_settings.cache_clear()


def test_defaults_point_at_local_stack():
    s = Settings()
    assert s.kafka_host_port == ("127.0.0.1", 9092)
    assert s.redis_host_port == ("127.0.0.1", 6379)
    assert s.stack_path == s.home / "stack"
    assert s.input_topics == ("ticks", "transactions", "user-events")


def test_env_vars_are_parsed(clean_env, tmp_path):
    clean_env.setenv("FINSTREAM_KAFKA_BOOTSTRAP", "broker-a:19092,broker-b:19092")
    clean_env.setenv("FINSTREAM_KAFKA_CONTROLLER_PORT", "19093")
    clean_env.setenv("FINSTREAM_REDIS_URL", "redis://cache:6380/2")
    clean_env.setenv("FINSTREAM_TOPIC_PARTITIONS", "8")
    clean_env.setenv("FINSTREAM_PUBLISH_RISK_SCORES", "true")
    clean_env.setenv("FINSTREAM_HOME", str(tmp_path))
    clean_env.setenv("FINSTREAM_STACK_DIR", str(tmp_path / "s"))
    clean_env.setenv("FINSTREAM_TOPIC_TICKS", "ticks-v2")
    s = settings_mod.get_settings()
    assert s.kafka_host_port == ("broker-a", 19092)
    assert s.kafka_client_options()["bootstrap_servers"] == "broker-a:19092,broker-b:19092"
    assert s.kafka_controller_port == 19093
    assert s.redis_host_port == ("cache", 6380)
    assert s.topic_partitions == 8 and s.publish_risk_scores is True
    assert s.home == Path(tmp_path) and s.stack_path == Path(tmp_path) / "s"
    assert s.input_topics[0] == "ticks-v2"


@pytest.mark.parametrize("bad", ["localhost", "127.0.0.1:abc", ":9092", "a:1,b"])
def test_bad_bootstrap_is_a_clear_error(clean_env, bad):
    clean_env.setenv("FINSTREAM_KAFKA_BOOTSTRAP", bad)
    with pytest.raises(ValidationError, match="FINSTREAM_KAFKA_BOOTSTRAP entry .* is not host:port"):
        Settings()


def test_bad_redis_scheme_and_partitions(clean_env):
    clean_env.setenv("FINSTREAM_REDIS_URL", "http://127.0.0.1:6379")
    with pytest.raises(ValidationError, match="must start with redis://"):
        Settings()
    clean_env.delenv("FINSTREAM_REDIS_URL")
    clean_env.setenv("FINSTREAM_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_redis_password_is_redacted(clean_env):
    clean_env.setenv("FINSTREAM_REDIS_URL", "redis://user:s3cret@cache:6379/1")
    s = Settings()
    assert s.redis_url_redacted == "redis://***@cache:6379/1"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())
    assert s.redis_url.get_secret_value().endswith("@cache:6379/1")


def test_sasl_options(clean_env):
    clean_env.setenv("FINSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    clean_env.setenv("FINSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    clean_env.setenv("FINSTREAM_KAFKA_SASL_USERNAME", "u")
    clean_env.setenv("FINSTREAM_KAFKA_SASL_PASSWORD", "p")
    opts = Settings().kafka_client_options()
    assert opts["sasl_mechanism"] == "SCRAM-SHA-256" and opts["sasl_plain_password"] == "p"
    assert "p" not in repr(Settings().kafka_sasl_password)
