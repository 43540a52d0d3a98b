"""The one place configuration is read: typed, from ``FINSTREAM_*`` environment variables.

Nothing else in the code base names a host, port or secret. Topics are named by what owns them:
a pipeline declares its topics' default names (``stream/pipelines``), and ``FINSTREAM_TOPIC_<NAME>``
renames one here like any other setting (``stream.topics``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream import topics
from stream.client_options import ClientOptions
from stream.topics import topic_defaults, topic_env  # noqa: F401  (their callers import them from here)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(ClientOptions, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINSTREAM_", extra="ignore")

    # --- Kafka -----------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_session_timeout_s: float = Field(10.0, ge=6.0)  # consumer-group liveness: failover time after a crash
    kafka_controller_port: int = 9093  # used only by `finstream stack` for the local KRaft controller

    # --- Redis -----------------------------------------------------------
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_cluster: bool = False
    redis_key_prefix: str = "fs"
    # When set, account/user ids in Redis keys are HMAC-SHA256 pseudonyms: a Redis dump or MONITOR
    # session shows no raw account numbers. Changing it orphans existing state.
    redis_key_secret: SecretStr | None = None

    # --- Transport security (docs/security.md) ----------------------------------------------
    # Redis over TLS is a rediss:// URL; an ACL user and password go in it (rediss://user:pw@host:port/0).
    # The CA names who may serve it; certfile/keyfile are only needed when the server asks for a client
    # certificate (tls-auth-clients yes). The same three exist for Kafka (SSL / SASL_SSL).
    redis_ssl_cafile: Path | None = None
    redis_ssl_certfile: Path | None = None
    redis_ssl_keyfile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    # --- Topics ----------------------------------------------------------
    # The pipelines' topics (ticks, forecasts, risk-alerts...) are declared by the pipelines
    # (stream/pipelines), not here: FINSTREAM_TOPIC_<NAME> renames one and ``topic_<name>`` or
    # ``topic("<name>")`` reads it (see ``__getattr__``). Dead letters and model events are the runtime's.
    topic_dead_letters: str = "dead-letters"
    topic_model_events: str = "model-events"
    topic_partitions: int = Field(4, ge=1)
    publish_risk_scores: bool = False

    # --- Worker ----------------------------------------------------------
    app_id: str = "finstream"
    worker_web_enabled: bool = True
    worker_web_port: int = 6066
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    batch_max: int = Field(500, ge=1)
    batch_within_s: float = Field(0.05, gt=0)
    recommend_k: int = Field(5, ge=1)
    drift_window: int = Field(5000, ge=100)  # rows per PSI drift check of the risk features
    model_dir: Path = REPO_ROOT / "onnx_models"
    model_poll_s: float = Field(2.0, gt=0)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "exactly_once"
    # How often offsets are committed (stream/delivery.py). exactly_once: how long a source
    # partition's transaction stays open across batches under load (default 100; a drained
    # partition commits at once). at_least_once: how often Faust commits acknowledged offsets,
    # i.e. the most a crash makes repeat (default 2800). Unset: the guarantee's default.
    commit_interval_ms: int | None = Field(None, ge=10)

    # --- Delivery and outages (stream/delivery.py, stream/runtime.py; docs/scaling.md) ---------
    commit_max_events: int = Field(5000, ge=1)  # a transaction commits at this many source events
    delivery_inflight: int = Field(4, ge=1)  # processed batches queued per partition (backpressure)
    # Transactional producers per source partition under exactly-once: 2 = used alternately, so a
    # transaction's sends overlap the previous one's commit (stream/lanes.py). Default 1: the A/B
    # runs showed no paced-latency gain from 2 on the 2-core machine (docs/scaling.md).
    delivery_producers: int = Field(1, ge=1, le=2)
    producer_linger_ms: int = Field(5, ge=0)
    outage_backoff_max_s: float = Field(5.0, gt=0)  # longest wait between retries during a Redis/Kafka outage
    # Fetched chunks (<= batch_max records of one partition) queued per job before the consumer's
    # drain waits (stream/bulk.py: backpressure on fetching).
    bulk_inbox: int = Field(8, ge=1)
    # How long the broker may hold the worker's fetch when nothing is new (Faust hard-codes 1500,
    # which showed up as a ~1.5 s mode of the paced latency: stream/bulk.py, docs/scaling.md).
    kafka_fetch_max_wait_ms: int = Field(50, ge=1)
    # Latency diagnosis (stream/stagetrace.py): a directory where each worker / pass-through
    # writes one JSON line per delivered unit with its stage timestamps. Unset: nothing recorded.
    stage_trace_dir: Path | None = None
    # `finstream bench` (stream/tools/bench_kafka.py): seconds of transactional pass-through load
    # through the broker before its first Kafka scenario, so the paced latencies are those of a
    # warmed-up broker JVM, as in production (a fresh broker's first minutes are ~2x slower:
    # docs/scaling.md). 0: measure the fresh broker.
    bench_broker_warmup_s: float = Field(30.0, ge=0)

    # --- Observability (stream/observe.py, stream/dashboard) -------------------
    health_probe_s: float = Field(1.0, gt=0)  # how often /ready re-checks Kafka and Redis itself
    dashboard_port: int = 8050  # `finstream dashboard` on 127.0.0.1
    worker_metrics_url: str | None = None  # what the dashboard scrapes; default: this worker's web port

    # --- Time bars (forecasts; docs/forecasting.md) ------------------------
    bar_interval: str = "1d"  # default bar interval per symbol: <n><s|m|h|d|w>
    bar_intervals: str = ""  # per-symbol overrides, "EURUSD=1h,SP500=1d"
    bar_scaling_fallback: bool = False  # serve a forecaster of another interval, square-root-of-time scaled

    _topic_names: dict[str, str] = PrivateAttr(default_factory=dict)  # FINSTREAM_TOPIC_* of the pipelines' topics

    def __init__(self, **values) -> None:
        """Fields as pydantic-settings reads them; the pipelines' topic names (``topic_ticks=`` or
        ``FINSTREAM_TOPIC_TICKS``, the argument first) kept aside, since they are no fields."""
        fields = type(self).model_fields
        given = {k: str(values.pop(k)) for k in list(values) if k.startswith("topic_") and k not in fields}
        super().__init__(**values)
        self._topic_names = {**topics.renamed(os.environ, fields), **given}

    def __getattr__(self, name: str):
        """``topic_<name>``: the configured name of a topic a pipeline declares (default: ``<name>``
        with dashes). Called only for what is no field, so fields and the rest work as usual."""
        if name.startswith("topic_"):
            default = topics.declared().get(name)
            if default is not None:
                value = self._topic_names.get(name, default)
                # kept as a plain instance attribute: the jobs read it per output record, and the
                # next read then costs a dict lookup, not this method (it is no field: not dumped)
                self.__dict__[name] = value
                return value
        return super().__getattr__(name)

    def topic(self, name: str) -> str:
        """A topic by its default name (``risk-alerts``) as configured here."""
        return getattr(self, topics.attr(name))

    @field_validator("bar_interval")
    @classmethod
    def _bar_interval(cls, v: str) -> str:
        from stream.core.bars import parse_interval

        parse_interval(v)
        return v

    @field_validator("bar_intervals")
    @classmethod
    def _bar_intervals(cls, v: str) -> str:
        from stream.core.bars import parse_overrides

        parse_overrides(v)
        return v

    def bar_interval_s(self, symbol: str) -> int:
        """The bar interval (seconds) of a symbol: its override, else the default."""
        from stream.core.bars import parse_interval, parse_overrides

        return parse_overrides(self.bar_intervals).get(symbol, parse_interval(self.bar_interval))

    @property
    def bar_intervals_s(self) -> set[int]:
        """Every bar interval (seconds) the worker may need a forecaster for."""
        from stream.core.bars import parse_interval, parse_overrides

        return {parse_interval(self.bar_interval), *parse_overrides(self.bar_intervals).values()}

    # --- Edge bounds and state retention (docs/reliability.md) -------------
    max_record_bytes: int = Field(65_536, ge=1_024)  # larger input records are dead-lettered unread
    dead_letter_original_max_bytes: int = Field(16_384, ge=0, le=262_144)  # beyond: prefix + length + sha256
    max_future_skew_s: float = Field(300.0, ge=0)  # events dated further ahead of the worker's clock are refused
    # Idle entities expire this long after their last update (0 = never): symbols (bars), accounts, users.
    state_retention_win_s: int = Field(7 * 86_400, ge=0)
    state_retention_acct_s: int = Field(90 * 86_400, ge=0)
    state_retention_user_s: int = Field(365 * 86_400, ge=0)

    def state_retention_ms(self) -> dict[str, int]:
        """Retention per state kind (Redis key kind -> ms; 0 = keep forever)."""
        win = self.state_retention_win_s * 1000  # time bars: market state of a symbol
        acct = self.state_retention_acct_s * 1000  # account and card states
        return {"bar": win, "acct": acct, "card": acct, "user": self.state_retention_user_s * 1000}

    # --- Local stack (finstream stack) ------------------------------------
    home: Path = Path.home() / ".cache" / "finstream"
    kafka_version: str = "3.9.1"
    kafka_heap: str = "512m"  # the broker's -Xms and -Xmx (Kafka's tools: -Xmx only)
    # The broker's GC options, Kafka's own start-script defaults plus 8 MB regions: with the JVM's
    # default 1 MB regions a produce request of about 1 MB is a humongous allocation, and each run
    # started dozens of extra concurrent cycles (docs/scaling.md, round 9). Empty: the JVM's defaults.
    kafka_jvm_opts: str = (
        "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
        "-XX:+ExplicitGCInvokesConcurrent -XX:G1HeapRegionSize=8M"
    )
    stack_dir: Path | None = None  # PID files, data and logs of `finstream stack`; default: <home>/stack

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, v: str) -> str:
        for server in v.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"FINSTREAM_KAFKA_BOOTSTRAP entry {server!r} is not host:port")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: SecretStr) -> SecretStr:
        scheme = urlsplit(v.get_secret_value()).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("FINSTREAM_REDIS_URL must start with redis://, rediss:// or unix://")
        return v

    # --- Derived (the clients' connection options: stream.client_options) ----------------
    @property
    def commit_interval_s(self) -> float:
        """``commit_interval_ms`` in seconds, or its default for the guarantee (see the field)."""
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms / 1000.0
        return 0.1 if self.processing_guarantee == "exactly_once" else 2.8

    @property
    def stack_path(self) -> Path:
        """Where `finstream stack` keeps PID files, data and logs."""
        return self.stack_dir or self.home / "stack"

    @property
    def input_topics(self) -> tuple[str, ...]:
        """One per pipeline (``stream.pipelines``), in their order."""
        from stream import pipelines

        return tuple(p.topic(self) for p in pipelines.all_pipelines())

    @property
    def output_topics(self) -> tuple[str, ...]:
        """What the pipelines publish, then dead letters and model events."""
        from stream import pipelines

        outs = [t for p in pipelines.all_pipelines() for t in p.output_topics(self)]
        return tuple(dict.fromkeys([*outs, self.topic_dead_letters, self.topic_model_events]))

    @property
    def key_secret(self) -> bytes | None:
        """FINSTREAM_REDIS_KEY_SECRET as bytes: the HMAC key of every pseudonym (Redis keys and outputs)."""
        return self.redis_key_secret.get_secret_value().encode() if self.redis_key_secret else None


def settings_from_env(env: dict[str, str]) -> Settings:
    """Settings as a process with exactly ``env`` would read them (for launching workers)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
