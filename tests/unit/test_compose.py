"""docker-compose.yml stays consistent with Settings: real FINSTREAM_* names, URLs matching the services."""

from __future__ import annotations

import re

import pytest
import yaml

from stream.settings import REPO_ROOT, Settings


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services_images_and_healthchecks(compose):
    services = compose["services"]
    assert set(services) >= {"kafka", "redis", "worker", "replay"}
    assert services["kafka"]["image"] == f"apache/kafka:{Settings.model_fields['kafka_version'].default}"
    assert services["redis"]["image"].startswith("redis:7")
    for name, svc in services.items():
        assert "test" in svc.get("healthcheck", {}), f"{name} has no healthcheck"
    assert services["worker"]["command"][:2] == ["finstream", "worker"]
    replay = services["replay"]["command"]
    assert replay[:2] == ["finstream", "replay"] and "--kind" in replay and "ticks" in replay


def test_kafka_is_kraft_and_ports_published(compose):
    env = _env(compose["services"]["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in k for k in env)
    assert "127.0.0.1:9092:9092" in compose["services"]["kafka"]["ports"]
    assert "127.0.0.1:6379:6379" in compose["services"]["redis"]["ports"]
    # the host-side defaults of Settings reach the published ports
    assert Settings.model_fields["kafka_bootstrap"].default.endswith(":9092")
    assert "localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_every_finstream_env_var_is_a_settings_field(compose):
    fields = set(Settings.model_fields)
    seen = 0
    for name, svc in compose["services"].items():
        for key in _env(svc):
            if key.startswith("FINSTREAM_"):
                seen += 1
                assert key.removeprefix("FINSTREAM_").lower() in fields, f"{name}: {key} is not a Settings field"
    assert seen >= 4


@pytest.mark.parametrize("service", ["worker", "replay"])
def test_urls_agree_with_services(compose, service):
    services = compose["services"]
    env = _env(services[service])
    s = Settings(kafka_bootstrap=env["FINSTREAM_KAFKA_BOOTSTRAP"], redis_url=env["FINSTREAM_REDIS_URL"])

    host, port = s.kafka_host_port
    assert host in services, f"bootstrap host {host} is not a compose service"
    advertised = _env(services[host])["KAFKA_ADVERTISED_LISTENERS"]
    assert re.search(rf"://{host}:{port}(,|$)", advertised), f"{host}:{port} not advertised by {host}"

    rhost, rport = s.redis_host_port
    assert rhost in services and services[rhost]["image"].startswith("redis")
    assert rport == 6379  # redis:7 listens on its default port
    deps = services[service]["depends_on"]
    assert "kafka" in deps


def test_published_ports_are_loopback_only_and_services_restart(compose):
    """Issue 7 items 4 and 9: nothing listens on the host's other interfaces; a crashed Kafka,
    Redis or worker comes back by itself; Redis keeps its data (AOF on a volume) and never evicts."""
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name} has no restart policy"
    redis = compose["services"]["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(str(v).endswith(":/data") for v in redis["volumes"])
