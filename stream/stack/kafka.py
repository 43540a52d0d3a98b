"""The real Apache Kafka broker in KRaft mode (one node: broker + controller), run from Maven Central jars.

Why jars + ``java`` instead of a tarball: only Maven Central is reachable, and ``mvn
dependency:copy-dependencies`` on a tiny POM gives exactly the broker's classpath, cached outside the repo.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import subprocess
import uuid
from importlib import resources
from pathlib import Path

from stream.settings import Settings
from stream.stack import kafka_security
from stream.stack.procs import StackError, port_in_use, require_binary

NAME = "kafka"
JAVA_HINT = "Kafka needs Java 17+: apt-get install -y openjdk-17-jre-headless"
MVN_HINT = "The Kafka jars are resolved with Maven: apt-get install -y maven"


# --- jars ------------------------------------------------------------------------------------------
def kafka_root(settings: Settings) -> Path:
    return settings.home / f"kafka-{settings.kafka_version}"


def libs_dir(settings: Settings) -> Path:
    return kafka_root(settings) / "libs"


def jars_ready(settings: Settings) -> bool:
    return (kafka_root(settings) / ".resolved").exists() and any(libs_dir(settings).glob("kafka_2.13-*.jar"))


def install_jars(settings: Settings) -> bool:
    """Resolve the broker jars into <home>/kafka-<version>/libs (skipped when done). True if it ran mvn."""
    if jars_ready(settings):
        return False
    mvn = require_binary("mvn", MVN_HINT)
    root = kafka_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    pom = root / "pom.xml"
    pom.write_text(resources.files("stream.stack").joinpath("pom.xml").read_text())
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs_dir(settings)}",
        f"-Dkafka.version={settings.kafka_version}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(
            f"mvn could not resolve Kafka {settings.kafka_version}:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    (root / ".resolved").write_text(settings.kafka_version + "\n")
    return True


# --- files -----------------------------------------------------------------------------------------
def stack_dir(settings: Settings) -> Path:
    return settings.stack_path / NAME


def pid_file(settings: Settings) -> Path:
    return stack_dir(settings) / "kafka.pid"


def log_file(settings: Settings) -> Path:
    return stack_dir(settings) / "kafka.log"


def properties_file(settings: Settings) -> Path:
    return stack_dir(settings) / "server.properties"


def marker(settings: Settings) -> str:
    """Text in the broker's command line that proves a PID is ours."""
    return str(properties_file(settings))


def ports(settings: Settings) -> list[int]:
    return [settings.kafka_host_port[1], settings.kafka_controller_port]


def server_properties(settings: Settings) -> str:
    _, port = settings.kafka_host_port
    ctrl = settings.kafka_controller_port
    proto = settings.kafka_security_protocol  # the client listener is named after its protocol
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{ctrl}",
        "listeners": f"{proto}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
        "advertised.listeners": f"{proto}://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": f"{proto}:{proto},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": proto,
        "log.dirs": str(stack_dir(settings) / "data"),
        "num.partitions": str(settings.topic_partitions),
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",  # default 50: slow first consumer-group join on a small box
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        **kafka_security.security_properties(settings),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _cluster_id() -> str:
    while True:  # Kafka's own random-uuid never starts with '-' (it would parse as a CLI flag)
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _classpath(settings: Settings) -> str:
    return str(libs_dir(settings)) + "/*"


def java_command(settings: Settings) -> list[str]:
    """``java`` with the broker's classpath and quiet logging: the broker and Kafka's own tools."""
    java = require_binary("java", JAVA_HINT)
    log4j = stack_dir(settings) / "log4j.properties"
    log4j.parent.mkdir(parents=True, exist_ok=True)
    log4j.write_text(resources.files("stream.stack").joinpath("log4j.properties").read_text())
    return [java, f"-Xmx{settings.kafka_heap}", f"-Dlog4j.configuration=file:{log4j}", "-cp", _classpath(settings)]


def prepare(settings: Settings) -> list[str]:
    """Write the config, format storage on first start, and return the broker's argv."""
    host, _ = settings.kafka_host_port
    if host not in ("127.0.0.1", "localhost"):
        raise StackError(f"FINSTREAM_KAFKA_BOOTSTRAP points at {host}; `finstream stack` only runs a local broker")
    install_jars(settings)
    d = stack_dir(settings)
    (d / "data").mkdir(parents=True, exist_ok=True)
    properties_file(settings).write_text(server_properties(settings))
    properties_file(settings).chmod(0o600)  # may hold the broker's own SCRAM password
    jvm = java_command(settings)
    if not (d / "data" / "meta.properties").exists():
        fmt = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(properties_file(settings)),
                *kafka_security.scram_credentials(settings),
            ],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise StackError(f"Formatting Kafka storage in {d / 'data'} failed:\n{(fmt.stdout + fmt.stderr)[-3000:]}")
    java, *rest = jvm
    broker = [java, f"-Xms{settings.kafka_heap}", *settings.kafka_jvm_opts.split(), *rest]
    return [*broker, "kafka.Kafka", str(properties_file(settings))]


# --- readiness and topics --------------------------------------------------------------------------
def _run(coro):
    """asyncio.run, also from code that already has a running loop (then in a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _metadata(settings: Settings, timeout: float) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return len(cluster["brokers"])
    finally:
        await admin.close()


async def _handshake(settings: Settings, timeout: float) -> None:
    """One connection to the first bootstrap server, TLS and SASL included: raises what the broker
    said (aiokafka's own bootstrap turns every refusal into "Unable to bootstrap")."""
    from aiokafka.conn import create_conn

    opts = settings.kafka_client_options()
    opts.pop("bootstrap_servers")
    conn = await asyncio.wait_for(
        create_conn(*settings.kafka_host_port, request_timeout_ms=int(timeout * 1000), **opts), timeout
    )
    conn.close()


explain = kafka_security.explain


def check(settings: Settings, timeout: float = 3.0) -> str | None:
    """None when the broker accepts our credentials and answers a metadata request, else why not."""
    host, port = settings.kafka_host_port
    if not port_in_use(host, port):
        return f"Kafka at {settings.kafka_bootstrap} is not reachable: nothing listens on {host}:{port}"
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a not-yet-ready broker makes aiokafka log connection errors
    try:
        _run(_handshake(settings, timeout))
        if _run(_metadata(settings, timeout)) > 0:
            return None
        return f"Kafka at {settings.kafka_bootstrap} reports no live broker yet"
    except Exception as exc:
        return kafka_security.explain(settings, exc)
    finally:
        quiet.setLevel(level)


def ready(settings: Settings, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request."""
    return check(settings, timeout) is None


async def aensure_topics(settings: Settings) -> list[str]:
    """Create the project's input and output topics that are missing; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    wanted = list(dict.fromkeys([*settings.input_topics, *settings.output_topics]))
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        resp = await admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in missing])
        created = []
        for topic, code, *rest in resp.topic_errors:
            if code == 0:
                created.append(topic)
            elif for_code(code) is not TopicAlreadyExistsError:  # a concurrent creator is fine
                raise StackError(f"Creating topic {topic!r} failed: {for_code(code).__name__} {rest}")
        return created
    finally:
        await admin.close()


def ensure_topics(settings: Settings) -> list[str]:
    """Synchronous :func:`aensure_topics` (idempotent); async code can await aensure_topics instead."""
    return _run(aensure_topics(settings))
