"""The report of ``finstream bench``: the rich table and the ratios that say where the time goes.

Apart from the scenarios because it only reads the JSON they produce (``scenarios[]``), so the
table can be changed without touching a measurement, and the other way round.
"""

from __future__ import annotations

from stream import pipelines


def rnd(x, nd=2):
    """A number as the report stores it (None stays None)."""
    return None if x is None else round(float(x), nd)


def _fmt(x, nd=1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}" if isinstance(x, float) else f"{x:,}"


def render(report: dict):
    from rich.table import Table

    n = report["events"]
    table = Table(
        title=f"finstream bench: {n:,} synthetic events per scenario "
        f"({report['machine']['cores']} cores, {report['stack']} stack, "
        f"batch_max {report['settings']['batch_max']}, {report['settings']['processing_guarantee']})",
        caption=f"load average at start {report['loadavg_start'][0]:.2f}; throughput = first produce -> last "
        f"output; p50/p99 = output - input Kafka timestamp under the flood (mostly queueing); paced = "
        f"at half the measured throughput; µs CPU/ev = the subprocess's CPU per event",
    )
    for col, just in (
        ("scenario", "left"),
        ("events", "right"),
        ("throughput", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("paced p50/p99 ms", "right"),
        ("details", "left"),
    ):
        table.add_column(col, justify=just, overflow="fold")
    for sc in report["scenarios"]:
        if sc["status"] in ("skipped", "failed"):
            table.add_row(
                sc["name"], "-", "-", "-", "-", "-", f"[yellow]{sc['status']}[/]: {sc.get('reason', '')[:160]}"
            )
            continue
        if sc["kind"] == "onnx":
            for r in sc["results"]:
                table.add_row(
                    f"onnx {r['slot']} ({r['model']})",
                    f"batch {r['batch']}",
                    f"{_fmt(r['rows_per_s'])} rows/s",
                    _fmt(r["p50_ms"], 3),
                    _fmt(r["p99_ms"], 3),
                    "-",
                    f"{r['runs']} runs",
                )
            continue
        c = sc["counts"]
        acct = (
            ("[green]all accounted[/]" if c["accounted"] else "[red]NOT accounted[/]")
            + f" (out {c['outputs']:,}, dead {c['dead_letters']:,}, warm {c['warming_up']:,}"
            + (f", alerts {c['alerts']:,}" if "alerts" in c else "")
            + (f", dups {c['duplicates']}" if c.get("duplicates") else "")
            + ")"
        )
        if sc["kind"] in ("engine", "naive"):
            sp = sc["time_split_pct"]
            details = (
                f"redis {sc['redis']['round_trips_per_batch']:g} RT/batch, "
                f"{sc['redis']['commands_per_event']:g} cmd/ev; time: redis {sp['redis']}%, "
                f"onnx {sp['onnxruntime']}% ({sc['onnx']['rows_per_call']:g} rows/call), "
                f"python {sp['python']}%; {acct}"
            )
            if sc.get("small_batch"):  # the same job at the paced load's batch size (bench_engine.SMALL_BATCH)
                sb = sc["small_batch"]
                details += (
                    f"; CPU {_fmt(sc['cpu_us_per_event']['process'], 0)} µs/ev; at batch {sb['batch_max']}: "
                    f"{_fmt(sb['throughput'])} ev/s, {_fmt(sb['cpu_us_per_event']['process'], 0)} µs CPU/ev, "
                    f"p50 {_fmt(sb['latency_ms']['p50'], 2)} ms"
                )
            nd, paced = 2, "-"  # in-process: sub-millisecond latencies, no paced phase
        else:
            cpu = sc["cpu_pct"]
            vis = sc["visible_latency_ms"]
            pc = sc.get("paced")
            details = (
                f"{_fmt(sc['cpu_us_per_event'].get('process'), 0)} µs CPU/ev; "
                f"start {sc['startup_s']:.1f}s, RSS {_fmt(sc['rss_mb']['ready'])}->"
                f"{_fmt(sc['rss_mb']['hwm'])} MB (HWM), CPU proc {_fmt(cpu.get('process'), 0)}% "
                f"kafka {_fmt(cpu.get('kafka_broker'), 0)}% redis {_fmt(cpu.get('redis_server'), 0)}% "
                f"bench {_fmt(cpu.get('bench'), 0)}%; visible p50/p99 {_fmt(vis['p50'], 0)}/"
                f"{_fmt(vis['p99'], 0)} ms"
                + (
                    f" (paced {_fmt(pc['visible_latency_ms']['p50'], 0)}/{_fmt(pc['visible_latency_ms']['p99'], 0)})"
                    if pc
                    else ""
                )
                + f"; {acct}"
            )
            if sc["status"] != "ok":
                details = f"[red]{sc['status']}[/] " + details
            nd = 0
            paced = (
                (f"{_fmt(pc['latency_ms']['p50'], 0)}/{_fmt(pc['latency_ms']['p99'], 0)} @{_fmt(pc['rate_eps'], 0)}/s")
                if pc
                else "-"
            )
        table.add_row(
            sc["name"],
            f"{sc['events']:,}",
            f"{_fmt(sc['throughput'])} ev/s",
            _fmt(sc["latency_ms"]["p50"], nd),
            _fmt(sc["latency_ms"]["p99"], nd),
            paced,
            details,
        )
    return table


def summarise(scenarios: list[dict]) -> dict:
    """Ratios that say where the time goes (only for the scenarios that ran)."""
    ok = {sc["name"]: sc for sc in scenarios if sc.get("status") == "ok"}
    eps = {k: v.get("throughput") for k, v in ok.items()}
    out: dict = {"lines": []}
    if "faust-passthrough" in eps and "aiokafka-passthrough" in eps:
        r = eps["aiokafka-passthrough"] / eps["faust-passthrough"]
        out["aiokafka_over_faust_passthrough"] = round(r, 2)
        out["lines"].append(
            f"plain aiokafka passes {r:.1f}x the events/s of the Faust adapter "
            f"({eps['aiokafka-passthrough']:,.0f} vs {eps['faust-passthrough']:,.0f} ev/s)"
        )
    if "aiokafka-passthrough-eos" in eps and "faust-passthrough" in eps:
        r = eps["faust-passthrough"] / eps["aiokafka-passthrough-eos"]
        out["faust_over_aiokafka_eos"] = round(r, 2)
        out["lines"].append(
            f"exactly-once: the Faust adapter passes {r:.0%} of the plain aiokafka loop with the same "
            f"delivery ({eps['faust-passthrough']:,.0f} vs {eps['aiokafka-passthrough-eos']:,.0f} ev/s)"
        )
    for job in pipelines.names():
        w, e, nv = eps.get(f"worker-{job}"), eps.get(f"engine-{job}"), eps.get(f"naive-{job}")
        ceiling = eps.get("aiokafka-passthrough-eos")
        if nv and (e or w):
            key = f"speedup_{job}"
            out[key] = {
                "engine_over_naive": round(e / nv, 1) if e else None,
                "worker_over_naive": round(w / nv, 1) if w else None,
            }
            out["lines"].append(
                f"{job}: naive (one event at a time) {nv:,.0f} ev/s; batched engine "
                + (f"{e / nv:,.0f}x" if e else "n/a")
                + ", worker end to end "
                + (f"{w / nv:,.0f}x" if w else "n/a")
            )
        if w and ceiling:
            out.setdefault(f"worker_{job}", {})["worker_share_of_aiokafka_eos"] = round(w / ceiling, 2)
    for job in pipelines.names():
        w, e, f = eps.get(f"worker-{job}"), eps.get(f"engine-{job}"), eps.get("faust-passthrough")
        if w and e:
            key = f"worker_{job}"
            out.setdefault(key, {}).update(
                {
                    "engine_over_worker": round(e / w, 2),
                    "worker_share_of_faust_ceiling": round(w / f, 2) if f else None,
                    "engine_us_per_event": round(1e6 / e, 1),
                    "worker_us_per_event": round(1e6 / w, 1),
                }
            )
            out["lines"].append(
                f"{job}: engine alone {e:,.0f} ev/s ({1e6 / e:,.0f} µs/ev), worker end to end {w:,.0f} ev/s "
                f"({1e6 / w:,.0f} µs/ev)" + (f" = {w / f:.0%} of the Faust pass-through ceiling" if f else "")
            )
    return out
