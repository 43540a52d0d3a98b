"""Topic names: the pipelines declare theirs by default name, configuration renames them.

One rule links a topic's default name (``risk-alerts``), its Settings attribute
(``topic_risk_alerts``) and its variable (``FINSTREAM_TOPIC_RISK_ALERTS``), so a new pipeline's
topics are configured like the others with no Settings field of their own. ``stream.pipelines``
declares the names whenever its registry changes; ``stream.settings`` resolves them
(``Settings.__getattr__``). Dead letters and model events are the runtime's own Settings fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

PREFIX = "FINSTREAM_"
_DECLARED: dict[str, str] = {}  # attribute -> default name, of the topics the pipelines declare


def attr(name: str) -> str:
    """The Settings attribute of a topic's default name: ``risk-alerts`` -> ``topic_risk_alerts``."""
    return "topic_" + name.replace("-", "_")


def declare(names: Iterable[str]) -> None:
    """The pipelines' topics by default name (replaces what was declared before)."""
    _DECLARED.clear()
    _DECLARED.update({attr(n): n for n in names})


def declared() -> dict[str, str]:
    """Attribute -> default name of every topic the pipelines declare."""
    if not _DECLARED:
        import stream.pipelines  # noqa: F401  (declares them on import)
    return _DECLARED


def renamed(environ: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """Attribute -> configured name, from the ``FINSTREAM_TOPIC_*`` variables that are no Settings field."""
    own = set(fields)
    out = {}
    for key, value in environ.items():
        name = key[len(PREFIX) :].lower()
        if key.upper().startswith(PREFIX + "TOPIC_") and name not in own:
            out[name] = value
    return out


def topic_defaults() -> dict[str, str]:
    """Every topic attribute (``topic_ticks``) -> its default name (``ticks``): the pipelines'
    topics, then the runtime's own (dead letters, model events)."""
    from stream.settings import Settings

    own = {f: i.default for f, i in Settings.model_fields.items() if f.startswith("topic_") and f != "topic_partitions"}
    return {**declared(), **own}


def topic_env(name: Callable[[str], str]) -> dict[str, str]:
    """``FINSTREAM_TOPIC_*`` variables giving every topic its own name, ``name("user-events")``:
    a private deployment (the demo, the bench, a test) on a shared broker."""
    return {f"{PREFIX}{a.upper()}": name(default) for a, default in topic_defaults().items()}
