"""The security side of the local broker and of talking to any broker: SASL_SSL listener
properties, SCRAM credentials stored at format time, and one-line explanations of refusals.

Kept apart from ``stream.stack.kafka`` (which starts and probes the broker) because these rules
also serve the worker's preflight against a production cluster.
"""
from __future__ import annotations

import asyncio

from stream.settings import Settings
from stream.stack import tls
from stream.stack.procs import Refusal, StackError, port_in_use


def security_properties(settings: Settings) -> dict[str, str]:
    """Broker side of FINSTREAM_KAFKA_SECURITY_PROTOCOL: TLS from the stack's own certificates
    (``stream.stack.tls``) and SCRAM users stored in the KRaft metadata (added at format time, see
    :func:`scram_credentials`). The broker talks to itself over the same listener as the worker
    (same user), so no plaintext client port is left open; the controller port stays on 127.0.0.1."""
    proto = settings.kafka_security_protocol
    props: dict[str, str] = {}
    if proto in ("SSL", "SASL_SSL"):
        t = tls.ensure_server_tls(settings)
        props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(t.keystore),
                      "ssl.truststore.type": "PEM", "ssl.truststore.location": str(t.ca),
                      "ssl.client.auth": "requested" if settings.kafka_ssl_certfile else "none"})
    if proto.startswith("SASL_"):
        mech = settings.kafka_sasl_mechanism
        if not (mech or "").startswith("SCRAM-") or not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            raise StackError("`finstream stack` runs SASL with SCRAM only: set FINSTREAM_KAFKA_SASL_MECHANISM="
                             "SCRAM-SHA-512 and FINSTREAM_KAFKA_SASL_USERNAME / _PASSWORD")
        user = settings.kafka_sasl_username
        password = settings.kafka_sasl_password.get_secret_value()
        if any(c in user + password for c in '"\\\n'):
            raise StackError("the local stack's SASL username/password must not contain quotes, backslashes or newlines")
        props.update({
            "sasl.enabled.mechanisms": mech,
            "sasl.mechanism.inter.broker.protocol": mech,
            f"listener.name.{proto.lower()}.{mech.lower()}.sasl.jaas.config":
                f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";',
        })
    return props


def scram_credentials(settings: Settings) -> list[str]:
    """``kafka-storage format`` arguments that store the SASL user's SCRAM credentials (KRaft has no
    ZooKeeper to add them to later; changing the password means a new stack directory)."""
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return []
    password = settings.kafka_sasl_password.get_secret_value()
    return ["--add-scram", f"{settings.kafka_sasl_mechanism}=[name={settings.kafka_sasl_username},password={password}]"]


def explain(settings: Settings, exc: BaseException) -> str:
    """One line saying why Kafka refused us, naming the setting to fix; never the password.
    Credential and certificate problems come back as :class:`Refusal` (waiting will not fix them)."""
    import ssl

    from aiokafka import errors

    where = f"Kafka at {settings.kafka_bootstrap}"
    kind = Refusal
    if isinstance(exc, (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError)):
        line = (f"{where} refused SASL user {settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): wrong "
                "username or password (FINSTREAM_KAFKA_SASL_USERNAME / FINSTREAM_KAFKA_SASL_PASSWORD)")
    elif isinstance(exc, errors.UnsupportedSaslMechanismError):
        line = f"{where}: {exc} (FINSTREAM_KAFKA_SASL_MECHANISM)"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        line = (f"{where}: its TLS certificate is not trusted ({exc.verify_message}); "
                "set FINSTREAM_KAFKA_SSL_CAFILE to the CA that signed it")
    elif isinstance(exc, ssl.SSLError):
        line = f"{where}: TLS handshake failed ({exc.reason}); check FINSTREAM_KAFKA_SECURITY_PROTOCOL"
    elif isinstance(exc, (asyncio.TimeoutError, errors.KafkaConnectionError, ConnectionError)) and \
            port_in_use(*settings.kafka_host_port):
        kind = str
        line = (f"{where} does not answer a {settings.kafka_security_protocol} client "
                f"({type(exc).__name__}: {exc}); check FINSTREAM_KAFKA_SECURITY_PROTOCOL")
    else:
        kind = str
        line = f"{where} is not reachable: {type(exc).__name__}: {exc}"
    if settings.kafka_sasl_password:
        line = line.replace(settings.kafka_sasl_password.get_secret_value(), "***")
    return kind(" ".join(line.split()))
