"""The dashboard's web server (aiohttp, 127.0.0.1): one page, its static files, and a
server-sent-events stream of updates.

Two background tasks feed it: a ``read_committed`` Kafka consumer of the output topics (no group,
no commits: watching never moves anybody's offsets) and a scraper of the worker's ``/metrics``.
Every script and style is served from ``stream/dashboard/static`` (hand-written JS drawing SVG),
so the page works with no internet and no CDN.
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources

import orjson
from aiohttp import ClientSession, ClientTimeout, web

from stream.dashboard import promread
from stream.dashboard.view import DEAD_LETTER, PANELS, Board
from stream.settings import Settings

log = logging.getLogger(__name__)
STATIC = resources.files("stream.dashboard") / "static"
PUSH_S = 0.5  # how often each browser gets what is new
SCRAPE_S = 2.0


def watched_kinds(s: Settings) -> dict[str, str]:
    """Topic -> panel: each pipeline's watched output (from its declaration, under these settings)
    and the dead letters. The dashboard and the demo read the outputs through this one map."""
    from stream import pipelines

    kinds = {p.watched_topic(s): PANELS[p.name] for p in pipelines.all_pipelines() if p.name in PANELS}
    return {**kinds, s.topic_dead_letters: DEAD_LETTER}


def output_reader(s: Settings, topics, from_beginning: bool):
    """A consumer of the committed output records that moves nobody's offsets (no group, no
    commits): what the page and the demo's terminal view read."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        *topics,
        **s.kafka_client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",
    )


def board_for(s: Settings) -> Board:
    return Board(watched_kinds(s))


class Dashboard:
    def __init__(self, s: Settings, metrics_url: str, from_beginning: bool = False):
        self.s = s
        self.metrics_url = metrics_url
        self.from_beginning = from_beginning
        self.board = board_for(s)
        self.metrics: dict = {"worker": "not scraped yet", "url": metrics_url}
        self.metrics_seq = 0
        self._tasks: list[asyncio.Task] = []

    # --- feeds -----------------------------------------------------------------------------------
    async def consume(self) -> None:
        while True:
            c = output_reader(self.s, self.board.kinds, self.from_beginning)
            try:
                await c.start()
                while True:
                    for tp, msgs in (await c.getmany(timeout_ms=500, max_records=2000)).items():
                        for m in msgs:
                            try:
                                self.board.add(tp.topic, orjson.loads(m.value))
                            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
                                log.warning("unreadable record %s:%s:%s: %s", tp.topic, tp.partition, m.offset, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker away: keep the page up, say so, try again
                self.metrics["kafka_error"] = f"{type(exc).__name__}: {exc}"
                log.warning("output consumer failed (%s); retrying in 2s", exc)
                await asyncio.sleep(2.0)
            finally:
                await c.stop()

    async def scrape(self) -> None:
        prev, prev_t = None, 0.0
        async with ClientSession(timeout=ClientTimeout(total=3)) as http:
            while True:
                try:
                    async with http.get(self.metrics_url) as r:
                        text = await r.text()
                    cur, now = promread.parse(text), time.monotonic()
                    self.metrics = {
                        **promread.summarise(prev, cur, now - prev_t),
                        "worker": "up",
                        "url": self.metrics_url,
                        "at": time.time(),
                    }
                    prev, prev_t = cur, now
                except Exception as exc:  # worker not up (yet): the page says so
                    self.metrics = {**self.metrics, "worker": f"unreachable: {type(exc).__name__} {exc}"[:200]}
                self.metrics_seq += 1
                await asyncio.sleep(SCRAPE_S)

    # --- web -------------------------------------------------------------------------------------
    async def page(self, request):
        return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html")

    async def static(self, request):
        name = request.match_info["name"]
        if name not in ("app.js", "style.css"):
            raise web.HTTPNotFound()
        ctype = "text/javascript" if name.endswith(".js") else "text/css"
        return web.Response(body=(STATIC / name).read_bytes(), content_type=ctype)

    async def state(self, request):
        b = self.board
        return web.json_response(
            {
                "counts": dict(b.counts),
                "forecasts": b.last_forecast,
                "alerts": list(b.alerts)[:10],
                "recommendations": list(b.latest_recs.values())[-10:],
                "metrics": self.metrics,
            }
        )

    async def events(self, request):
        """Server-sent events: ``update`` (new outputs and counts) and ``metrics``."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        seq, mseq = 0, -1
        try:
            while True:
                seq, items = self.board.since(seq)
                if items or seq == 0:
                    data = {"items": items, "counts": dict(self.board.counts)}
                    await resp.write(b"event: update\ndata: " + orjson.dumps(data) + b"\n\n")
                if self.metrics_seq != mseq:
                    mseq = self.metrics_seq
                    await resp.write(b"event: metrics\ndata: " + orjson.dumps(self.metrics) + b"\n\n")
                await asyncio.sleep(PUSH_S)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_get("/", self.page)
        a.router.add_get("/static/{name}", self.static)
        a.router.add_get("/events", self.events)
        a.router.add_get("/api/state", self.state)
        return a

    async def start(self, host: str, port: int) -> web.AppRunner:
        self._tasks = [asyncio.create_task(self.consume()), asyncio.create_task(self.scrape())]
        runner = web.AppRunner(self.app(), shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner

    async def stop(self, runner: web.AppRunner) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await runner.cleanup()


def metrics_url(s: Settings) -> str:
    return s.worker_metrics_url or f"http://127.0.0.1:{s.worker_web_port}/metrics"


def main(s: Settings, port: int | None = None, from_beginning: bool = False) -> None:
    """``finstream dashboard``: serve until Ctrl-C."""
    port = port or s.dashboard_port
    d = Dashboard(s, metrics_url(s), from_beginning)

    async def go():
        runner = await d.start("127.0.0.1", port)
        print(
            f"dashboard: http://127.0.0.1:{port}/  (outputs from {s.kafka_bootstrap}, metrics from {d.metrics_url})",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await d.stop(runner)

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass
