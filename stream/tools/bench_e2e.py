"""Kafka end-to-end runs for ``finstream bench``: a subprocess (the real worker or a pass-through) fed
through its own topics while the bench produces the input and consumes the outputs concurrently.

One run: create the run's topics, spawn the process, wait for its "ready" log line (start-up time),
then produce N records as fast as the producer goes and read every output (``read_committed``) until
each input is accounted for. Latency per output = its Kafka timestamp minus its source record's
(matched by the ``topic:partition:offset`` key every output carries); "visible" latency = when the
bench received it minus the source timestamp (includes the exactly-once transaction commit).
Memory (VmRSS/VmHWM) and CPU come from /proc of the subprocess. What runs, and on which topics,
is described apart (``stream.tools.bench_specs``).

The phases are methods of :class:`_Run`, which holds what they share (the bench's clients, the
process, every output seen); ``stream.tools.bench_measures`` turns their measures into the run's JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from pathlib import Path

from aiokafka import TopicPartition

from stream.tools.bench_measures import Flood, Matched, latency_stats, pct, report
from stream.tools.bench_specs import Proc, RunSpec, create_topics, proc_cpu_s, proc_status_kb


async def _wait_leaders(consumer, topics: list[str], timeout: float = 30.0) -> None:
    """Until the metadata names a leader for every partition of the (fresh) topics."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await consumer._client.force_metadata_update()
        cluster = consumer._client.cluster
        ok = True
        for t in topics:
            parts = cluster.partitions_for_topic(t)
            if not parts or any(cluster.leader_for_partition(TopicPartition(t, p)) in (None, -1) for p in parts):
                ok = False
        if ok or loop.time() > deadline:
            return
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def _collector_paused():
    """The bench process's cyclic garbage collector off while a run is timed: its full collections
    (round 9: up to 275 ms, one or two of 100-135 ms per paced window) paused the bench's receive
    and acknowledgement stamps and showed up as the worker's latency. Set-up is frozen first, so the
    collection on the way out walks only the run's own objects. Engine scenarios keep the collector."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
        gc.collect()


class _Run:
    """One run's shared parts: the bench's consumer and producer, the spawned process, and every
    output seen so far (source (partition, offset) -> (output Kafka ts, bench receive ms, topic))."""

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.consumer = self.producer = None  # started by open()
        self.out_topics = list(dict.fromkeys(spec.done_topics + spec.extra_topics))
        self.done_topics = set(spec.done_topics)
        self.got: dict[str, int] = {t: 0 for t in self.out_topics}
        self.samples: dict[tuple[int, int], tuple[int, float, str]] = {}
        self.dups = 0
        self.last_progress = time.monotonic()
        self.first_recv: float | None = None
        self.acked_after: list[float] = []  # paced inputs: broker acknowledgement - input timestamp (ms)
        self.stop = asyncio.Event()
        self.proc: Proc | None = None
        self.t_spawn = 0.0
        self.peak_rss_kb = 0
        self.tasks: list[asyncio.Task] = []

    @classmethod
    async def open(cls, spec: RunSpec) -> _Run:
        """Create the run's topics and start the bench's clients (the consumer reads every output
        partition from the beginning, ``read_committed``)."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        r = cls(spec)
        opts = spec.settings.kafka_client_options()
        await create_topics(spec.settings, [spec.src_topic, *r.out_topics])
        r.consumer = AIOKafkaConsumer(
            **opts,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
            fetch_max_wait_ms=50,
        )
        r.producer = AIOKafkaProducer(**opts, linger_ms=5, enable_idempotence=True, max_batch_size=256 * 1024)
        await r.consumer.start()
        await r.producer.start()
        return r

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            await task
        if self.proc is not None:
            self.proc.stop()
        await self.producer.stop()
        await self.consumer.stop()

    # --- spawn / ready ---------------------------------------------------------------------------
    async def spawn(self, log_dir: Path, ready_timeout: float) -> tuple[float, int | None]:
        """Assign the output partitions, spawn the process, wait for its ready line, then start
        reading outputs. Returns (start-up seconds, VmRSS kB when ready)."""
        spec = self.spec
        await _wait_leaders(self.consumer, [spec.src_topic, *self.out_topics])
        tps = [
            TopicPartition(t, p) for t in self.out_topics for p in sorted(self.consumer.partitions_for_topic(t) or ())
        ]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning()

        self.t_spawn = time.monotonic()
        self.proc = Proc(spec, log_dir / f"{spec.name}.log")
        while not self.proc.ready(self.t_spawn, ready_timeout):
            await asyncio.sleep(0.02)
        startup_s = time.monotonic() - self.t_spawn
        rss_ready_kb = proc_status_kb(self.proc.pid, "VmRSS")
        self.tasks.append(asyncio.create_task(self._consume()))
        return startup_s, rss_ready_kb

    async def _consume(self) -> None:
        while not self.stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=100)
            if not batch:
                continue
            now_ms = time.time() * 1000.0
            self.last_progress = time.monotonic()
            self.first_recv = self.first_recv or self.last_progress
            for tp, msgs in batch.items():
                self.got[tp.topic] += len(msgs)
                if tp.topic not in self.done_topics:
                    continue
                for m in msgs:
                    _, p, o = m.key.decode().rsplit(":", 2)
                    key = (int(p), int(o))
                    if key in self.samples:
                        self.dups += 1
                    else:
                        self.samples[key] = (m.timestamp, now_ms, tp.topic)

    async def _sample_rss(self) -> None:
        while not self.stop.is_set():
            self.peak_rss_kb = max(self.peak_rss_kb, proc_status_kb(self.proc.pid, "VmRSS") or 0)
            await asyncio.sleep(0.2)

    # --- producing and waiting -------------------------------------------------------------------
    async def produce(self, recs, rate: float | None = None) -> tuple[dict, float, float]:
        """Send recs (flat out, or paced at rate/s); returns ({(partition, offset): input ts}, t0 wall, t0 mono)."""
        t0_wall, t0 = time.time() * 1000.0, time.monotonic()
        futures, acked = [], {}
        for i, (k, v) in enumerate(recs):
            if rate:
                ahead = t0 + i / rate - time.monotonic()
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            futures.append(await self.producer.send(self.spec.src_topic, key=k, value=v))
            if rate:
                futures[-1].add_done_callback(lambda f, i=i: acked.__setitem__(i, time.time() * 1000.0))
        metas = await asyncio.gather(*futures)
        self.last_progress = max(self.last_progress, time.monotonic())
        if rate:
            self.acked_after[:] = [acked[i] - md.timestamp for i, md in enumerate(metas) if i in acked]
        return {(md.partition, md.offset): md.timestamp for md in metas}, t0_wall, t0

    async def outputs_of(self, in_ts: dict, want: int, what: str, timeout: float) -> list[Matched]:
        """Wait until ``want`` of these sources have an output (or nothing arrives for ``timeout`` s)."""
        while True:
            self.proc.check_alive(what)
            have = [k for k in in_ts if k in self.samples]
            if len(have) >= want or time.monotonic() - self.last_progress > timeout:
                return [(in_ts[k], *self.samples[k]) for k in have]
            await asyncio.sleep(0.02)

    # --- the phases ------------------------------------------------------------------------------
    async def warm_up(self, warmup, expected: int) -> float | None:
        """Produce the warm-up records and wait for their outputs; returns spawn -> first output (s)."""
        in_ts, _, _ = await self.produce(warmup)
        if len(await self.outputs_of(in_ts, expected, "during warm-up", 60.0)) < expected:
            raise RuntimeError(f"{self.spec.name}: warm-up outputs did not arrive within 60s:\n{self.proc.log_tail()}")
        return self.first_recv - self.t_spawn if self.first_recv else None

    async def flood(self, records, expected: int, idle_timeout: float, other_pids: dict[str, int]) -> Flood:
        """Produce ``records`` flat out and read until ``expected`` sources are accounted for; the
        peak RSS is sampled from here to the end of the run."""
        pid = self.proc.pid
        rss_before_kb = proc_status_kb(pid, "VmRSS")
        self.peak_rss_kb = rss_before_kb or 0
        self.tasks.append(asyncio.create_task(self._sample_rss()))
        cpu0 = proc_cpu_s(pid)
        others0 = {k: proc_cpu_s(v) for k, v in other_pids.items()}
        self0 = time.process_time()
        in_ts, t0_wall, t0 = await self.produce(records)
        t_produced = time.monotonic()
        matched = await self.outputs_of(in_ts, expected, "while running", idle_timeout)
        last_recv = max((recv for _, _, recv, _ in matched), default=t0_wall)
        elapsed = (last_recv - t0_wall) / 1000.0 if expected else t_produced - t0
        cpu1 = proc_cpu_s(pid)
        others1 = {k: proc_cpu_s(v) for k, v in other_pids.items()}
        bench_cpu_s = time.process_time() - self0
        n = len(records)
        complete = len(matched) >= expected
        return Flood(
            events=n,
            matched=matched,
            complete=complete,
            elapsed=elapsed,
            throughput=(n if complete else len(matched)) / max(elapsed, 1e-9),
            produce_eps=n / max(t_produced - t0, 1e-9),
            cpu_s={"process": (cpu0, cpu1), **{k: (others0.get(k), others1.get(k)) for k in others1}},
            bench_cpu_s=bench_cpu_s,
            rss_kb={
                "before_run": rss_before_kb,
                "end": proc_status_kb(pid, "VmRSS"),
                "hwm": proc_status_kb(pid, "VmHWM"),
            },
        )

    async def paced(self, paced, paced_expected, rate: float, seconds: float, idle_timeout: float) -> dict:
        """Produce a prefix of ``paced`` at ``rate``/s for about ``seconds``: latency when the
        process keeps up."""
        m = max(1, min(len(paced), int(rate * seconds)))
        want = paced_expected(m) if paced_expected else m
        p_ts, p_wall, _ = await self.produce(paced[:m], rate=rate)
        p_matched = await self.outputs_of(p_ts, want, "while paced", idle_timeout)
        return {
            "rate_eps": round(rate, 1),
            "events": m,
            "expected_outputs": want,
            "matched": len(p_matched),
            "complete": len(p_matched) >= want,
            **latency_stats(p_matched),
            # where the time goes before the worker (stream.tools.stage_breakdown joins the rest)
            "input_acked_ms": {"p50": pct(self.acked_after, 50), "p99": pct(self.acked_after, 99)},
            "window_ms": [p_wall, max((recv for _, _, recv, _ in p_matched), default=p_wall)],
        }


async def run(
    spec: RunSpec,
    records: list[tuple[bytes, bytes]],
    expected: int,
    log_dir: Path,
    warmup: list[tuple[bytes, bytes]] = (),
    warmup_expected: int = 0,
    paced: list[tuple[bytes, bytes]] = (),
    paced_expected=None,
    paced_load: float = 0.5,
    paced_seconds: float = 3.0,
    other_pids: dict[str, int] | None = None,
    ready_timeout: float = 120.0,
    idle_timeout: float = 45.0,
) -> dict:
    """Spawn, wait ready, then three phases on the same process:

    * warm-up: ``warmup`` records (entities of their own), waited for, not timed. Takes the one-off
      costs (fresh topics' leaders, transactional producer init, Lua script load, first onnxruntime
      run) out of the numbers and gives the first-output time;
    * flood: ``records`` produced flat out while the outputs are read, until ``expected`` sources are
      accounted for: throughput (first produce -> last needed output), latency under backlog, CPU, RSS;
    * paced: a prefix of ``paced`` produced at ``paced_load`` x the flood throughput for about
      ``paced_seconds``: latency when the worker keeps up. ``paced_expected(m)`` = outputs expected
      from the first m paced records.
    """
    r = await _Run.open(spec)
    try:
        startup_s, rss_ready_kb = await r.spawn(log_dir, ready_timeout)
        first_output_s = await r.warm_up(warmup, warmup_expected) if warmup else None
        with _collector_paused():
            flood = await r.flood(records, expected, idle_timeout, other_pids or {})
            paced_res = None
            if paced and flood.complete and flood.throughput > 0:
                rate = paced_load * flood.throughput
                paced_res = await r.paced(paced, paced_expected, rate, paced_seconds, idle_timeout)
        await asyncio.sleep(0.3)  # a straggling duplicate would show up here (exactly-once: none)
    finally:
        await r.close()
    return {"bench_gc": "paused while timed (flood and paced)"} | report(
        flood,
        expected=expected,
        paced=paced_res,
        startup_s=startup_s,
        first_output_s=first_output_s,
        warmup_events=len(warmup),
        ready_marker=spec.ready_marker,
        rss_ready_kb=rss_ready_kb,
        peak_rss_kb=r.peak_rss_kb,
        outputs_by_topic=r.got,
        duplicates=r.dups,
    )
