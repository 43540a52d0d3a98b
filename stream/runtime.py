"""Running one batch step through an outage: wait out what is transient, give up on what is not.

Why a module of its own: the Faust adapter (``stream.app``) and the bench's pass-through loops run
batches the same way, and this policy is what issue 7 item 4 is about. A Redis outage
(connection refused or reset, timeout, Redis loading its data, cluster down) is waited out with
backoff doubling from 0.2 s up to ``FINSTREAM_OUTAGE_BACKOFF_MAX_S``, for as long as it lasts,
``HEALTH`` redis false meanwhile (so ``/ready`` says so); fenced state makes a retry harmless and
the batch's events stay un-acked, so nothing is committed past it. Any other failure is retried
``RETRIES`` times, then the process exits without acking (75), so the batch is redelivered to the
next worker instead of being skipped. Kafka outages are the delivery lanes' (``stream.delivery``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from stream.health import HEALTH

RETRIES = 6  # attempts for a failure that is not an outage, backoff from 0.2 s
EXIT_UNPROCESSABLE = 75

log = logging.getLogger(__name__)


def is_outage(exc: BaseException) -> bool:
    """Redis unreachable, timing out, loading its data or its cluster down: wait, do not give up."""
    import redis.exceptions as rex

    return isinstance(
        exc,
        (
            rex.ConnectionError,
            rex.TimeoutError,
            rex.BusyLoadingError,
            rex.ClusterDownError,
            rex.TryAgainError,
            ConnectionError,
            asyncio.TimeoutError,
        ),
    )


async def process(job, batch, backoff_max_s: float):
    """``job.process(batch)``, waiting out Redis outages and retrying anything else ``RETRIES`` times."""
    delay, attempt, outage_since = 0.2, 0, None
    while True:
        try:
            out = await job.process(batch)
        except Exception as exc:
            if is_outage(exc):
                if outage_since is None:
                    outage_since = time.monotonic()
                HEALTH.set("redis", False, f"outage: {type(exc).__name__}")
                log.warning(
                    "Redis unavailable (%s) for %.0fs; batch held un-acked, retrying in %.1fs",
                    type(exc).__name__,
                    time.monotonic() - outage_since,
                    delay,
                )
            else:
                attempt += 1
                if attempt >= RETRIES:
                    log.critical(
                        "giving up on a batch after %d attempts; exiting without acking it", attempt, exc_info=True
                    )
                    logging.shutdown()
                    os._exit(EXIT_UNPROCESSABLE)  # no ack, no commit: the batch is redelivered
                log.warning(
                    "batch step failed (attempt %d/%d), retrying in %.1fs", attempt, RETRIES, delay, exc_info=True
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff_max_s)
            continue
        if outage_since is not None:
            log.warning("Redis answered again after %.1fs of outage; batch processed", time.monotonic() - outage_since)
            HEALTH.set("redis", True, "answering again")
        return out
