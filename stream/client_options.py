"""What the Kafka and Redis clients are given, derived from the connection settings.

Apart from ``stream.settings`` (which reads and validates the ``FINSTREAM_*`` variables) because
this is a different idea: how those values become client arguments (aiokafka's SASL and SSL
context, redis-py's TLS files, host and port for probes, a URL safe to log). ``Settings`` inherits
it, so every caller still asks the one settings object (``s.kafka_client_options()``) and this
holds no values of its own.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


class ClientOptions:
    """Mixed into ``stream.settings.Settings``; reads only its connection fields."""

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        host, _, port = self.kafka_bootstrap.split(",")[0].strip().rpartition(":")
        return host, int(port)

    @property
    def redis_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.redis_url.get_secret_value())
        return parts.hostname or "127.0.0.1", parts.port or 6379

    @property
    def redis_url_redacted(self) -> str:
        parts = urlsplit(self.redis_url.get_secret_value())
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        if parts.password:
            netloc = f"***@{netloc}"
        return parts._replace(netloc=netloc).geturl()

    def kafka_client_options(self) -> dict:
        """Keyword arguments for aiokafka clients (security included)."""
        opts: dict = {"bootstrap_servers": self.kafka_bootstrap, "security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            opts["sasl_mechanism"] = self.kafka_sasl_mechanism
            opts["sasl_plain_username"] = self.kafka_sasl_username
            opts["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            opts["ssl_context"] = create_ssl_context(
                cafile=_str(self.kafka_ssl_cafile),
                certfile=_str(self.kafka_ssl_certfile),
                keyfile=_str(self.kafka_ssl_keyfile),
            )
        return opts

    @property
    def redis_tls(self) -> bool:
        return urlsplit(self.redis_url.get_secret_value()).scheme == "rediss"

    @property
    def redis_username(self) -> str | None:
        """The ACL user named in FINSTREAM_REDIS_URL (None: the ``default`` user)."""
        return urlsplit(self.redis_url.get_secret_value()).username or None

    def redis_client_options(self) -> dict:
        """Keyword arguments for redis-py's ``from_url`` (TLS files; the URL carries user and password).

        Every Redis client of the project (worker, preflight, stack, bench, tests) goes through
        ``stream.state.redis_store.connect``, which adds these, so TLS is configured in one place."""
        if not self.redis_tls:
            return {}
        opts: dict = {"ssl_cert_reqs": "required"}
        for key, path in (
            ("ssl_ca_certs", self.redis_ssl_cafile),
            ("ssl_certfile", self.redis_ssl_certfile),
            ("ssl_keyfile", self.redis_ssl_keyfile),
        ):
            if path is not None:
                opts[key] = str(path)
        return opts


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
