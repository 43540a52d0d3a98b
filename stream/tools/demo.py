"""``finstream demo``: the whole system live on bundled real data.

Starts the stack (unless it already runs), a worker, and five feeds on topics of their own
(one set per demo run, so a second run never re-reads the first one's events): real S&P 500
and EuroStoxx daily closes and hourly EUR/USD as ticks (a forecast per closed bar), real Caravan
policy holdings as user events, and real IEEE-CIS card transactions (``stream.tools.cardfeed``;
synthetic ones when the data is not cached). Shows forecasts, risk alerts and recommendations
as they arrive.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, deque
from pathlib import Path

import orjson
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from stream import pipelines
from stream.dashboard.server import Dashboard, metrics_url, output_reader, watched_kinds
from stream.dashboard.view import horizon_label
from stream.settings import Settings, get_settings, topic_env
from stream.tools.demo_story import STORY_PREFIX, describe, play
from stream.tools.replay import publish, read_csv, rows_to_records

DATA = Path(__file__).parent.parent / "data"


def demo_env(run: str) -> dict[str, str]:
    return {
        "FINSTREAM_APP_ID": f"finstream-demo-{run}",
        "FINSTREAM_REDIS_KEY_PREFIX": f"demo-{run}",
        "FINSTREAM_PUBLISH_RISK_SCORES": "true",
        "FINSTREAM_WORKER_WEB_ENABLED": "true",
        "FINSTREAM_BAR_INTERVALS": "EURUSD=1h",  # daily closes make 1d bars (the default), EUR/USD hours 1h
        **topic_env(lambda topic: f"demo-{run}-{topic}"),
    }


def web_ports() -> dict[str, str]:
    """The worker's web port and the dashboard's: the configured ones when free, else free ones."""
    from stream.stack.procs import free_ports, port_in_use

    s = Settings()
    worker, board = s.worker_web_port, s.dashboard_port
    spare = iter(free_ports(2))
    worker = next(spare) if port_in_use("127.0.0.1", worker) else worker
    board = next(spare) if port_in_use("127.0.0.1", board) else board
    return {"FINSTREAM_WORKER_WEB_PORT": str(worker), "FINSTREAM_DASHBOARD_PORT": str(board)}


def feeds(s: Settings) -> list:
    from stream.tools.cardfeed import real_transactions
    from stream.tools.synthetic import transaction_stream

    forecast, risk, recommend = (pipelines.get(n) for n in ("forecast", "risk", "recommend"))
    sp500 = rows_to_records(read_csv(DATA / "sp500.csv"), forecast.kind, {"ts": "Date", "price": "Close"}, "SPX")
    eu = rows_to_records(read_csv(DATA / "eustocks.csv"), forecast.kind, {}, None)
    caravan = rows_to_records(read_csv(DATA / "caravan_events.csv"), recommend.kind, {}, None)
    txns = real_transactions(s.home) or (
        (t["account_id"].encode(), orjson.dumps(t))  # real hold-out rows, else synthetic
        for t in transaction_stream(n_accounts=300, fraud_rate=0.02, seed=7)
    )
    out = [
        publish(s, forecast.topic(s), sp500, rate=40),
        publish(s, forecast.topic(s), eu, rate=40),
        publish(s, recommend.topic(s), caravan, rate=8),
        publish(s, risk.topic(s), txns, rate=40),
        play(s),
    ]
    try:  # real hourly EUR/USD from PyPI `backtesting` (train extra; not bundled: AGPL data file)
        from training.data.market import eurusd_csv

        hours = ({"ts": r[""], "price": r["Close"], "volume": r["Volume"]} for r in read_csv(eurusd_csv()))
        out.append(publish(s, forecast.topic(s), rows_to_records(hours, forecast.kind, {}, "EURUSD"), rate=40))
    except (ImportError, FileNotFoundError):
        pass
    return out


def _table(title: str, columns: tuple[str, ...]) -> Table:
    t = Table(title=title, expand=True)
    for c in columns:
        t.add_column(c)
    return t


class View:
    def __init__(self, s: Settings):
        self.kinds = watched_kinds(s)  # topic -> panel, as the dashboard reads them
        self.forecasts: dict[str, dict] = {}
        self.alerts: deque = deque(maxlen=6)
        self.recs: deque = deque(maxlen=6)
        self.story: deque = deque(maxlen=8)
        self.counts: Counter = Counter()
        self.started = time.monotonic()

    def add(self, topic: str, v: dict) -> None:
        self.counts[topic] += 1
        kind = self.kinds.get(topic)
        if kind == "forecast":
            self.forecasts[v["symbol"]] = v
        elif kind == "alert":
            self.alerts.appendleft(v)
        elif kind == "recommendation":
            (self.story if v["user_id"].startswith(STORY_PREFIX) else self.recs).appendleft(v)

    def render(self):
        ft = _table(
            "forecasts per closed bar (real market data)",
            ("symbol", "bar closed", "horizon", "close", "pred. return", "pred. vol", "95% band", "model"),
        )
        for sym, v in sorted(self.forecasts.items()):
            lo, hi = v["band_95"]
            ft.add_row(
                sym,
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(v["bar_close_ts"] / 1000)),
                horizon_label(v),
                f"{v['last_price']:.4g}",
                f"{v['predicted_return']:+.4%}",
                f"{v['predicted_volatility']:.3%}",
                f"[{lo:+.2%}, {hi:+.2%}]",
                f"{v['model']} v{v['model_version']}",
            )
        at = _table(
            "risk alerts (real IEEE-CIS transactions when cached, else synthetic)",
            ("account", "amount", "score", "threshold", "top reasons"),
        )
        for v in self.alerts:
            at.add_row(
                v["account_id"],
                f"{v['amount']:.2f} {v['currency']}",
                f"{v['risk_score']:.3f}",
                f"{v['threshold']:.3f}",
                "; ".join(r["reason"] for r in v["reasons"]),
            )
        rt = _table("recommendations (real Caravan holdings)", ("user", "after", "holds", "recommended"))
        for v in self.recs:
            rt.add_row(
                v["user_id"],
                f"{v['trigger']['action']} {v['trigger']['product_id']}",
                ", ".join(v["holdings"]),
                ", ".join(i["product_id"] for i in v["items"][:3]),
            )
        st = _table(
            "one customer's journey: recommendations follow what they view and spend on",
            ("user", "after", "holds", "top 3 and why"),
        )
        for v in self.story:
            st.add_row(v["user_id"], *describe(v))
        secs = time.monotonic() - self.started
        summary = "  ".join(f"{t.removeprefix('demo-').split('-', 1)[-1]}: {n}" for t, n in sorted(self.counts.items()))
        return Group(ft, at, rt, st, Panel(f"{secs:.0f}s  {summary}", title="outputs so far"))


async def watch(s: Settings, view: View, live: Live, until: float) -> None:
    topics = [*(t for p in pipelines.all_pipelines() for t in p.output_topics(s)), s.topic_dead_letters]
    c = output_reader(s, topics, from_beginning=True)
    await c.start()
    try:
        while until == 0 or time.monotonic() < until:
            for tp, msgs in (await c.getmany(timeout_ms=300)).items():
                for m in msgs:
                    view.add(tp.topic, orjson.loads(m.value))
            live.update(view.render())
    finally:
        await c.stop()


def main(seconds: float = 0) -> None:
    import logging

    from stream.stack import manager
    from stream.stack.kafka import ensure_topics
    from stream.stack.procs import StackError, stop_group

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # leader moves on fresh topics: not news here
    run = uuid.uuid4().hex[:6]
    os.environ.update(demo_env(run))
    os.environ.update(web_ports())  # observe: worker /metrics + dashboard
    get_settings.cache_clear()
    s = get_settings()
    ours = not all(p.ready for p in manager.probe(s))
    try:
        if ours:
            print("starting Kafka and Redis ...", flush=True)
            manager.start(s)
        else:
            ensure_topics(s)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    log = s.stack_path / f"demo-worker-{run}.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "worker"],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    print(
        f"worker pid {worker.pid} (log: {log}); feeding real market data, Caravan holdings and synthetic "
        f"transactions ... Ctrl-C to stop",
        flush=True,
    )
    view = View(s)

    async def go():
        until = time.monotonic() + seconds if seconds else 0
        tasks = [asyncio.create_task(f) for f in feeds(s)]
        board = Dashboard(s, metrics_url(s), from_beginning=True)  # observe
        runner = await board.start("127.0.0.1", s.dashboard_port)  # observe
        print(f"dashboard: http://127.0.0.1:{s.dashboard_port}/   worker metrics: {metrics_url(s)}", flush=True)
        try:
            with Live(view.render(), refresh_per_second=4, screen=False) as live:
                await watch(s, view, live, until)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await board.stop(runner)  # observe

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass
    finally:
        stop_group(worker)
        if ours:
            manager.stop(s)
        print("\ndemo stopped. counts: " + ", ".join(f"{k}={v}" for k, v in sorted(view.counts.items())))
