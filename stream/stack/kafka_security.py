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

BROKER_USER = "finstream-broker"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def authorizes(settings: Settings) -> bool:
    """The local stack enforces Kafka ACLs when it runs SASL_SSL: the worker's user is then an
    ordinary principal with only the ACLs of :func:`grant_worker`; the broker has its own user."""
    return settings.kafka_security_protocol == "SASL_SSL"


def broker_credentials(settings: Settings) -> tuple[str, str]:
    """The broker's own SCRAM user (inter-broker traffic, ACL administration): a random password
    made once per stack directory, kept 0600 next to the broker's files."""
    import secrets

    from stream.stack.kafka import stack_dir

    f = stack_dir(settings) / "broker.secret"
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(secrets.token_urlsafe(24))
        f.chmod(0o600)
    return BROKER_USER, f.read_text().strip()


def _scram_jaas(user: str, password: str) -> str:
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


def security_properties(settings: Settings) -> dict[str, str]:
    """Broker side of FINSTREAM_KAFKA_SECURITY_PROTOCOL: TLS from the stack's own certificates
    (``stream.stack.tls``) and SCRAM users stored in the KRaft metadata (added at format time, see
    :func:`scram_credentials`). The broker talks to itself over the same listener as the worker, as
    its own user, so no plaintext client port is left open. Under SASL_SSL the broker also enforces
    ACLs, and its controller port (127.0.0.1) takes only TLS clients holding the stack's own key."""
    proto = settings.kafka_security_protocol
    props: dict[str, str] = {}
    if proto in ("SSL", "SASL_SSL"):
        t = tls.ensure_server_tls(settings)
        props.update(
            {
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(t.keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(t.ca),
                "ssl.client.auth": "requested" if settings.kafka_ssl_certfile else "none",
            }
        )
    if proto.startswith("SASL_"):
        mech = settings.kafka_sasl_mechanism
        if (
            not (mech or "").startswith("SCRAM-")
            or not settings.kafka_sasl_username
            or not settings.kafka_sasl_password
        ):
            raise StackError(
                "`finstream stack` runs SASL with SCRAM only: set FINSTREAM_KAFKA_SASL_MECHANISM="
                "SCRAM-SHA-512 and FINSTREAM_KAFKA_SASL_USERNAME / _PASSWORD"
            )
        user, password = settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()
        if any(c in user + password for c in '"\\\n'):
            raise StackError(
                "the local stack's SASL username/password must not contain quotes, backslashes or newlines"
            )
        props.update(
            {
                "sasl.enabled.mechanisms": mech,
                "sasl.mechanism.inter.broker.protocol": mech,
                f"listener.name.{proto.lower()}.{mech.lower()}.sasl.jaas.config": _scram_jaas(
                    *broker_credentials(settings)
                ),
            }
        )
    if authorizes(settings):
        props.update(
            {
                "listener.security.protocol.map": f"{proto}:{proto},CONTROLLER:SSL",
                "listener.name.controller.ssl.client.auth": "required",
                "authorizer.class.name": AUTHORIZER,
                "allow.everyone.if.no.acl.found": "false",
                "super.users": f"User:{BROKER_USER};User:CN=localhost",  # the broker, and itself at the controller
            }
        )
    return props


def scram_credentials(settings: Settings) -> list[str]:
    """``kafka-storage format`` arguments that store the SCRAM credentials of the worker's user and
    the broker's (KRaft has no ZooKeeper to add them to later; changing the password means a new
    stack directory)."""
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return []
    mech = settings.kafka_sasl_mechanism
    users = [
        (settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()),
        broker_credentials(settings),
    ]
    return [arg for user, pw in users for arg in ("--add-scram", f"{mech}=[name={user},password={pw}]")]


def admin_settings(settings: Settings) -> Settings:
    """The same deployment, seen as the broker's own (super) user: for creating topics and ACLs."""
    from pydantic import SecretStr

    user, password = broker_credentials(settings)
    return settings.model_copy(update={"kafka_sasl_username": user, "kafka_sasl_password": SecretStr(password)})


# Kafka protocol codes (org.apache.kafka.common.resource / acl): resource types, pattern types, operations.
TOPIC, GROUP, TRANSACTIONAL_ID = 2, 3, 5
LITERAL, PREFIXED = 3, 4
READ, WRITE, CREATE, DESCRIBE = 3, 4, 5, 8
ALLOW = 3


def worker_acls(settings: Settings) -> list[tuple[int, str, int, tuple[int, ...]]]:
    """(resource type, name, pattern type, operations) the worker's user needs (docs/security.md):
    read its inputs and its group, write its outputs under its transactional ids (``<app id>-...``),
    and use Faust's own ``<app id>-`` topics. Nothing else: no other topic, no cluster rights."""
    app = settings.app_id
    return [
        *[(TOPIC, t, LITERAL, (READ, DESCRIBE)) for t in settings.input_topics],
        (GROUP, app, LITERAL, (READ, DESCRIBE)),
        *[(TOPIC, t, LITERAL, (WRITE, DESCRIBE)) for t in settings.output_topics],
        (TRANSACTIONAL_ID, f"{app}-", PREFIXED, (WRITE, DESCRIBE)),
        (TOPIC, f"{app}-", PREFIXED, (CREATE, READ, WRITE, DESCRIBE)),
    ]


async def agrant_worker(settings: Settings) -> None:
    """Create the deployment's topics as the broker user and give the worker's user its ACLs.
    aiokafka has no create_acls call, so the admin client sends Kafka's CreateAcls request itself."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import for_code
    from aiokafka.protocol.admin import CreateAclsRequest

    from stream.stack import kafka

    admin_s = admin_settings(settings)
    await kafka.aensure_topics(admin_s)
    admin = AIOKafkaAdminClient(**admin_s.kafka_client_options())
    await admin.start()
    try:
        principal = f"User:{settings.kafka_sasl_username}"
        for rtype, name, pattern, operations in worker_acls(settings):
            for op in operations:
                resp = await admin._send_request(CreateAclsRequest(rtype, name, pattern, principal, "*", op, ALLOW))
                for result in resp.creation_responses:
                    if result[0] != 0:
                        raise StackError(f"granting Kafka ACL {op} on {name!r} failed: {for_code(result[0]).__name__}")
    finally:
        await admin.close()


def grant_worker(settings: Settings) -> None:
    """Synchronous :func:`agrant_worker`."""
    from stream.stack.kafka import _run

    _run(agrant_worker(settings))


def explain(settings: Settings, exc: BaseException) -> str:
    """One line saying why Kafka refused us, naming the setting to fix; never the password.
    Credential and certificate problems come back as :class:`Refusal` (waiting will not fix them)."""
    import ssl

    from aiokafka import errors

    where = f"Kafka at {settings.kafka_bootstrap}"
    kind = Refusal
    if isinstance(exc, (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError)):
        line = (
            f"{where} refused SASL user {settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): wrong "
            "username or password (FINSTREAM_KAFKA_SASL_USERNAME / FINSTREAM_KAFKA_SASL_PASSWORD)"
        )
    elif isinstance(exc, errors.UnsupportedSaslMechanismError):
        line = f"{where}: {exc} (FINSTREAM_KAFKA_SASL_MECHANISM)"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        line = (
            f"{where}: its TLS certificate is not trusted ({exc.verify_message}); "
            "set FINSTREAM_KAFKA_SSL_CAFILE to the CA that signed it"
        )
    elif isinstance(exc, ssl.SSLError):
        line = f"{where}: TLS handshake failed ({exc.reason}); check FINSTREAM_KAFKA_SECURITY_PROTOCOL"
    elif isinstance(exc, (asyncio.TimeoutError, errors.KafkaConnectionError, ConnectionError)) and port_in_use(
        *settings.kafka_host_port
    ):
        kind = str
        line = (
            f"{where} does not answer a {settings.kafka_security_protocol} client "
            f"({type(exc).__name__}: {exc}); check FINSTREAM_KAFKA_SECURITY_PROTOCOL"
        )
    else:
        kind = str
        line = f"{where} is not reachable: {type(exc).__name__}: {exc}"
    if settings.kafka_sasl_password:
        line = line.replace(settings.kafka_sasl_password.get_secret_value(), "***")
    return kind(" ".join(line.split()))
