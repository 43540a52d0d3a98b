"""What the worker knows about its own readiness, in one process-wide place.

The runtime marks each dependency as it succeeds or fails (Kafka, Redis, models, partitions);
the web endpoints (``/health``, ``/ready``) and the metrics only read it. Keeping it a plain
object, with no web or Kafka import, lets the delivery loop mark an outage without knowing who
will report it, and lets tests read it directly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# What must be true for the worker to be ready to score.
COMPONENTS = ("kafka", "redis", "models", "partitions")


@dataclass(slots=True)
class Mark:
    ok: bool
    detail: str = ""
    since: float = field(default_factory=time.time)


class Health:
    def __init__(self, components: tuple[str, ...] = COMPONENTS):
        self._lock = threading.Lock()
        self._marks: dict[str, Mark] = {c: Mark(False, "not checked yet") for c in components}

    def set(self, component: str, ok: bool, detail: str = "") -> None:
        """Record a component's state; ``since`` moves only when ``ok`` flips."""
        with self._lock:
            old = self._marks.get(component)
            if old is not None and old.ok == ok:
                old.detail = detail
                return
            self._marks[component] = Mark(ok, detail)

    def ready(self) -> tuple[bool, dict[str, dict]]:
        """(all components ok, per-component {ok, detail, since})."""
        with self._lock:
            view = {c: {"ok": m.ok, "detail": m.detail, "since": m.since} for c, m in self._marks.items()}
        return all(v["ok"] for v in view.values()), view


HEALTH = Health()
