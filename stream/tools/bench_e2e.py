"""Kafka end-to-end runs for ``finstream bench``: a subprocess (the real worker or a pass-through) fed
through its own topics while the bench produces the input and consumes the outputs concurrently.

One run: create the run's topics, spawn the process, wait for its "ready" log line (start-up time),
then produce N records as fast as the producer goes and read every output (``read_committed``) until
each input is accounted for. Latency per output = its Kafka timestamp minus its source record's
(matched by the ``topic:partition:offset`` key every output carries); "visible" latency = when the
bench received it minus the source timestamp (includes the exactly-once transaction commit).
Memory (VmRSS/VmHWM) and CPU come from /proc of the subprocess. What runs, and on which topics,
is described apart (``stream.tools.bench_specs``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka import TopicPartition

from stream.tools.bench_specs import Proc, RunSpec, create_topics, proc_cpu_s, proc_status_kb


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


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
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    s = spec.settings
    opts = s.kafka_client_options()
    all_out = list(dict.fromkeys(spec.done_topics + spec.extra_topics))
    await create_topics(s, [spec.src_topic, *all_out])

    consumer = AIOKafkaConsumer(
        **opts,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        fetch_max_wait_ms=50,
    )
    producer = AIOKafkaProducer(**opts, linger_ms=5, enable_idempotence=True, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    proc: Proc | None = None
    done_topics = set(spec.done_topics)
    got: dict[str, int] = {t: 0 for t in all_out}
    # source (partition, offset) -> (output Kafka ts, bench receive ms, output topic)
    samples: dict[tuple[int, int], tuple[int, float, str]] = {}
    st = {"dups": 0, "last_progress": time.monotonic(), "first_recv": None}
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            if not batch:
                continue
            now_ms = time.time() * 1000.0
            st["last_progress"] = time.monotonic()
            st["first_recv"] = st["first_recv"] or st["last_progress"]
            for tp, msgs in batch.items():
                got[tp.topic] += len(msgs)
                if tp.topic not in done_topics:
                    continue
                for m in msgs:
                    _, p, o = m.key.decode().rsplit(":", 2)
                    key = (int(p), int(o))
                    if key in samples:
                        st["dups"] += 1
                    else:
                        samples[key] = (m.timestamp, now_ms, tp.topic)

    def check_alive(what: str) -> None:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{spec.name}: process exited with {proc.popen.returncode} {what}:\n"
                + "\n".join(proc.log_text().splitlines()[-25:])
            )

    acked_after: list[float] = []  # paced inputs: broker acknowledgement - input timestamp (ms)

    async def produce(recs, rate: float | None = None) -> tuple[dict, float, float]:
        """Send recs (flat out, or paced at rate/s); returns ({(partition, offset): input ts}, t0 wall, t0 mono)."""
        t0_wall, t0 = time.time() * 1000.0, time.monotonic()
        futures, acked = [], {}
        for i, (k, v) in enumerate(recs):
            if rate:
                ahead = t0 + i / rate - time.monotonic()
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            futures.append(await producer.send(spec.src_topic, key=k, value=v))
            if rate:
                futures[-1].add_done_callback(lambda f, i=i: acked.__setitem__(i, time.time() * 1000.0))
        metas = await asyncio.gather(*futures)
        st["last_progress"] = max(st["last_progress"], time.monotonic())
        if rate:
            acked_after[:] = [acked[i] - md.timestamp for i, md in enumerate(metas) if i in acked]
        return {(md.partition, md.offset): md.timestamp for md in metas}, t0_wall, t0

    async def outputs_of(in_ts: dict, want: int, what: str, timeout: float) -> list:
        """Wait until ``want`` of these sources have an output (or nothing arrives for ``timeout`` s)."""
        while True:
            check_alive(what)
            have = [k for k in in_ts if k in samples]
            if len(have) >= want or time.monotonic() - st["last_progress"] > timeout:
                return [(in_ts[k], *samples[k]) for k in have]
            await asyncio.sleep(0.02)

    def stats(matched: list) -> dict:
        kafka = [out_ts - ts for ts, out_ts, _, _ in matched]
        visible = [recv - ts for ts, _, recv, _ in matched]
        return {
            "latency_ms": {
                "p50": _pct(kafka, 50),
                "p99": _pct(kafka, 99),
                "min": min(kafka, default=None),
                "max": max(kafka, default=None),
            },
            "visible_latency_ms": {"p50": _pct(visible, 50), "p99": _pct(visible, 99)},
        }

    consumer_task = None
    try:
        await _wait_leaders(consumer, [spec.src_topic, *all_out])
        tps = [TopicPartition(t, p) for t in all_out for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning()

        t_spawn = time.monotonic()
        proc = Proc(spec, log_dir / f"{spec.name}.log")
        while spec.ready_marker not in proc.log_text():
            check_alive("before ready")
            if time.monotonic() - t_spawn > ready_timeout:
                raise RuntimeError(
                    f"{spec.name}: not ready after {ready_timeout:.0f}s:\n"
                    + "\n".join(proc.log_text().splitlines()[-25:])
                )
            await asyncio.sleep(0.02)
        startup_s = time.monotonic() - t_spawn
        rss_ready_kb = proc_status_kb(proc.pid, "VmRSS")
        consumer_task = asyncio.create_task(consume())

        # --- warm-up
        first_output_s = None
        if warmup:
            in_ts, _, _ = await produce(warmup)
            if len(await outputs_of(in_ts, warmup_expected, "during warm-up", 60.0)) < warmup_expected:
                raise RuntimeError(
                    f"{spec.name}: warm-up outputs did not arrive within 60s:\n"
                    + "\n".join(proc.log_text().splitlines()[-25:])
                )
            first_output_s = st["first_recv"] - t_spawn if st["first_recv"] else None

        # --- flood
        rss_before_kb = proc_status_kb(proc.pid, "VmRSS")
        peak = {"rss": rss_before_kb or 0}

        async def sample_rss() -> None:
            while not stop.is_set():
                peak["rss"] = max(peak["rss"], proc_status_kb(proc.pid, "VmRSS") or 0)
                await asyncio.sleep(0.2)

        rss_task = asyncio.create_task(sample_rss())
        cpu0 = proc_cpu_s(proc.pid)
        others0 = {k: proc_cpu_s(v) for k, v in (other_pids or {}).items()}
        self0 = time.process_time()
        in_ts, t0_wall, t0 = await produce(records)
        t_produced = time.monotonic()
        matched = await outputs_of(in_ts, expected, "while running", idle_timeout)
        last_recv = max((recv for _, _, recv, _ in matched), default=t0_wall)
        elapsed = (last_recv - t0_wall) / 1000.0 if expected else t_produced - t0
        wall = max(elapsed, 1e-9)
        cpu1 = proc_cpu_s(proc.pid)
        others1 = {k: proc_cpu_s(v) for k, v in (other_pids or {}).items()}
        self_cpu = time.process_time() - self0
        hwm_kb = proc_status_kb(proc.pid, "VmHWM")
        rss_end_kb = proc_status_kb(proc.pid, "VmRSS")
        n = len(records)
        complete = len(matched) >= expected
        throughput = (n if complete else len(matched)) / wall
        by_topic: dict[str, int] = {}
        for *_, topic in matched:
            by_topic[topic] = by_topic.get(topic, 0) + 1

        # --- paced
        paced_res = None
        if paced and complete and throughput > 0:
            rate = paced_load * throughput
            m = max(1, min(len(paced), int(rate * paced_seconds)))
            want = paced_expected(m) if paced_expected else m
            p_ts, p_wall, _ = await produce(paced[:m], rate=rate)
            p_matched = await outputs_of(p_ts, want, "while paced", idle_timeout)
            paced_res = {
                "rate_eps": round(rate, 1),
                "events": m,
                "expected_outputs": want,
                "matched": len(p_matched),
                "complete": len(p_matched) >= want,
                **stats(p_matched),
                # where the time goes before the worker (stream.tools.stage_breakdown joins the rest)
                "input_acked_ms": {"p50": _pct(acked_after, 50), "p99": _pct(acked_after, 99)},
                "window_ms": [p_wall, max((recv for _, _, recv, _ in p_matched), default=p_wall)],
            }

        await asyncio.sleep(0.3)  # a straggling duplicate would show up here (exactly-once: none)
        stop.set()
        rss_task.cancel()
    finally:
        stop.set()
        if consumer_task is not None:
            await consumer_task
        if proc is not None:
            proc.stop()
        await producer.stop()
        await consumer.stop()

    def cpu_pct(a, b):
        return None if a is None or b is None else round(100.0 * (b - a) / wall, 1)

    def cpu_us(a, b):
        return None if a is None or b is None else round(1e6 * (b - a) / max(n, 1), 1)

    flood = stats(matched)
    flood["latency_ms"]["basis"] = (
        "output Kafka timestamp - input Kafka timestamp (CreateTime), per source offset; "
        "inputs produced flat out, so this is mostly queueing behind the backlog"
    )
    flood["visible_latency_ms"]["basis"] = "bench receive time (read_committed consumer) - input Kafka timestamp"
    return {
        "events": n,
        "expected_outputs": expected,
        "complete": complete,
        "elapsed_s": round(elapsed, 3),
        "throughput_eps": round(throughput, 1),
        "produce_eps": round(n / max(t_produced - t0, 1e-9), 1),
        **flood,
        "paced": paced_res,
        "startup_s": round(startup_s, 2),
        "first_output_s": None if first_output_s is None else round(first_output_s, 2),
        "startup_basis": f"spawn until the log line {spec.ready_marker!r} (partitions assigned); "
        "first_output_s: spawn until the first warm-up output was read",
        "warmup_events": len(warmup),
        "rss_mb": {
            "ready": _mb(rss_ready_kb),
            "before_run": _mb(rss_before_kb),
            "peak_sampled": _mb(peak["rss"]),
            "end": _mb(rss_end_kb),
            "hwm": _mb(hwm_kb),
        },
        "cpu_pct": {
            "process": cpu_pct(cpu0, cpu1),
            "bench": round(100.0 * self_cpu / wall, 1),
            **{k: cpu_pct(others0.get(k), others1.get(k)) for k in others1},
        },
        "cpu_us_per_event": {
            "process": cpu_us(cpu0, cpu1),
            **{k: cpu_us(others0.get(k), others1.get(k)) for k in others1},
        },
        "outputs_by_topic": got,
        "timed_sources_by_topic": by_topic,
        "sources_matched": len(matched),
        "duplicates": st["dups"],
    }


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024.0, 1)
