"""The worker's own view of itself on its web port: ``/health``, ``/ready``, ``/metrics``.

Why a module of its own: the runtime (``stream.app``) only calls :func:`instrument` and
:func:`install` once and ``METRICS.batch_started`` / ``batch_done`` once per batch; everything
else an operator needs lives here, so the delivery loop can change without touching it.

* Stage seconds without touching the jobs: each job's state store and model registry are
  wrapped so that Redis calls and onnxruntime runs charge their time to the batch's clock.
* Readiness: the runtime may mark outages as it meets them; on top of that an active probe pings
  Redis and asks Kafka for metadata every ``FINSTREAM_HEALTH_PROBE_S`` seconds, so ``/ready``
  turns false within seconds of losing either, even while no batch is running, and comes back
  by itself. Models are ready when every slot serves one; partitions once the group assigned.
* Values that are state (served models, drift PSI, consumer lag, readiness) are computed when
  Prometheus scrapes, not per batch.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily

from stream.health import HEALTH
from stream.metrics import METRICS, add_stage

log = logging.getLogger(__name__)


class _Timed:
    """Forwards to ``inner``; its coroutine methods charge their wall time to ``stage``."""

    def __init__(self, inner, stage: str):
        self._inner, self._stage = inner, stage

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        stage = self._stage

        async def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                add_stage(stage, time.perf_counter() - t)

        return timed


class _TimedModel:
    def __init__(self, served):
        self.served = served

    def __getattr__(self, name):
        return getattr(self.served, name)

    def run(self, feeds):
        t = time.perf_counter()
        try:
            return self.served.run(feeds)
        finally:
            add_stage("onnxruntime", time.perf_counter() - t)


class _TimedRegistry:
    """The registry, handing out one timed wrapper per served model (the same object until the
    model changes: the drift monitor keys on identity)."""

    def __init__(self, inner):
        self._inner = inner
        self._wrapped: dict[str, _TimedModel] = {}

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __getitem__(self, slot: str):
        served = self._inner[slot]
        w = self._wrapped.get(slot)
        if w is None or w.served is not served:
            w = self._wrapped[slot] = _TimedModel(served)
        return w


def instrument(jobs: dict) -> dict:
    """Wrap each job's state and models for stage timing; parse time is ``Job.begin``'s."""
    registries: dict[int, _TimedRegistry] = {}
    for job in jobs.values():  # a job without state or models (the bench's pass-through) is left as is
        if hasattr(job, "state"):
            job.state = _Timed(job.state, "redis")
        if hasattr(job.models, "served"):
            job.models = registries.setdefault(id(job.models), _TimedRegistry(job.models))
        begin = getattr(job, "begin", None)
        if begin is None:
            continue

        def timed_begin(batch, parse, begin=begin):
            t = time.perf_counter()
            try:
                return begin(batch, parse)
            finally:
                add_stage("parse", time.perf_counter() - t)

        job.begin = timed_begin
    return jobs


def _inner(registry):
    return getattr(registry, "_inner", registry)


class Probe:
    """Active readiness checks of Redis and Kafka, each bounded by ``timeout`` seconds."""

    def __init__(self, settings, timeout: float = 2.0):
        self.s = settings
        self.timeout = timeout
        self._redis = None
        self._kafka = None

    async def redis(self) -> None:
        from stream.state.redis_store import connect

        try:
            if self._redis is None:
                self._redis = connect(self.s)
            await asyncio.wait_for(self._redis.ping(), self.timeout)
            HEALTH.set("redis", True, f"ping ok ({self.s.redis_url_redacted})")
        except Exception as exc:  # every failure means the same here: not reachable now
            HEALTH.set("redis", False, f"{self.s.redis_url_redacted}: {type(exc).__name__}: {exc}"[:300])

    async def kafka(self) -> None:
        from aiokafka.client import AIOKafkaClient

        try:
            if self._kafka is None:
                client = AIOKafkaClient(**self.s.kafka_client_options(), request_timeout_ms=int(self.timeout * 1000))
                try:
                    await asyncio.wait_for(client.bootstrap(), self.timeout)
                except BaseException:
                    await client.close()  # a half-bootstrapped client is not reused: retry afresh
                    raise
                self._kafka = client  # bootstrapped once; it reconnects by itself later
            meta = await asyncio.wait_for(self._kafka.fetch_all_metadata(), self.timeout)
            brokers = len(meta.brokers())
            if not brokers:
                raise ConnectionError("no broker in the metadata")
            HEALTH.set("kafka", True, f"metadata ok, {brokers} broker(s) ({self.s.kafka_bootstrap})")
        except Exception as exc:
            HEALTH.set("kafka", False, f"{self.s.kafka_bootstrap}: {type(exc).__name__}: {exc}"[:300])

    async def _close_kafka(self) -> None:
        client, self._kafka = self._kafka, None
        try:
            await client.close()
        except Exception:  # closing a client of a dead broker: nothing to save
            pass

    async def close(self) -> None:
        if self._kafka is not None:
            await self._close_kafka()
        if self._redis is not None:
            await self._redis.aclose()


def models_ready(jobs: dict) -> None:
    registries = {id(_inner(j.models)): _inner(j.models) for j in jobs.values()}
    missing, serving = [], []
    for reg in registries.values():
        for slot in getattr(reg, "slots", ()):
            m = reg.served.get(slot)
            (serving.append(f"{slot}={m.name} v{m.version}") if m else missing.append(slot))
    HEALTH.set("models", not missing, f"missing {missing}" if missing else ", ".join(serving))


def scrape_families(jobs: dict, consumer_highwater, assigned, committed=lambda tp: None):
    """Metric families read at scrape time: readiness, served models, drift PSI, consumer lag."""
    ok, view = HEALTH.ready()
    up = GaugeMetricFamily("finstream_component_up", "Readiness of each dependency (1 ok)", labels=["component"])
    for c, v in view.items():
        up.add_metric([c], 1.0 if v["ok"] else 0.0)
    yield GaugeMetricFamily("finstream_ready", "1 when Kafka, Redis, models and partitions are all ok", value=float(ok))
    yield up
    info = InfoMetricFamily("finstream_model", "The model serving each slot", labels=["slot"])
    psi = GaugeMetricFamily(
        "finstream_feature_drift_psi", "Last PSI per feature against the training quantiles", labels=["slot", "feature"]
    )
    seen = set()
    for job in jobs.values():
        reg = _inner(job.models)
        if id(reg) not in seen:
            seen.add(id(reg))
            for slot, m in getattr(reg, "served", {}).items():
                info.add_metric([slot], {"model": m.name, "version": str(m.version), "sha256": m.card.sha256})
        drift = getattr(job, "_drift", None)
        for feature, value in (getattr(drift, "last_psi", None) or {}).items():
            psi.add_metric([job.slot, feature], value)
    yield info
    yield psi
    lag = GaugeMetricFamily(
        "finstream_consumer_lag_messages",
        "High watermark minus the next offset to process",
        labels=["topic", "partition"],
    )
    for tp in assigned():
        high = consumer_highwater(tp)
        pos = METRICS.positions.get((tp.topic, tp.partition))
        pos = committed(tp) if pos is None else pos  # before its first batch: where the group stands
        if high is not None and pos is not None:
            lag.add_metric([tp.topic, str(tp.partition)], float(max(high - pos, 0)))
    yield lag


def install(app, s, jobs: dict) -> None:
    """Routes, probes and signal handlers on the Faust app (its web server binds 127.0.0.1)."""
    METRICS.dead_letter_topic = s.topic_dead_letters
    METRICS.model_events_topic = s.topic_model_events
    probe = Probe(s)

    def assigned():
        try:
            return app.assignor.assigned_actives()
        except Exception:  # not joined yet
            return set()

    def highwater(tp):
        try:
            return app.consumer.highwater(tp)
        except Exception:  # consumer not started or partition unknown yet
            return None

    def committed(tp):
        try:  # Faust records the group's committed offset when a partition is assigned
            return app.consumer._committed_offset.get(tp)
        except Exception:
            return None

    METRICS.add_collector(lambda: scrape_families(jobs, highwater, assigned, committed))

    @app.on_partitions_revoked.connect
    async def revoked(sender, revoked, **kwargs) -> None:
        HEALTH.set("partitions", False, "rebalancing")

    @app.on_partitions_assigned.connect
    async def assigned_now(sender, assigned, **kwargs) -> None:
        n = len([tp for tp in assigned if tp.topic in jobs])
        METRICS.partitions.set(n)
        HEALTH.set("partitions", True, f"{n} input partition(s) assigned")

    @app.timer(interval=s.health_probe_s)
    async def probe_dependencies() -> None:
        models_ready(jobs)
        await asyncio.gather(probe.redis(), probe.kafka())

    @app.on_before_shutdown.connect
    async def close_probe(app, **kwargs) -> None:
        await probe.close()

    @app.page("/health")
    async def health(web, request):
        """The process is alive and its event loop answers."""
        return web.json({"status": "alive"})

    @app.page("/ready")
    async def ready(web, request):
        """200 when Kafka and Redis answer, every slot serves a model and partitions are assigned."""
        ok, view = HEALTH.ready()
        return web.json({"ready": ok, "components": view}, status=200 if ok else 503)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(METRICS.exposition(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
