"""What a pipeline declares: one use case of the stream, from its input topic to its outputs.

Words, each for one thing (used the same way across ``stream/`` and ``training/``):

* **pipeline**: a use case (forecast, risk, recommend), declared once in ``stream/pipelines/<name>.py``;
  its name is also its training job (``finstream train --only NAME``), bench scenario and report section.
* **kind**: the record kind of its input topic (``ticks``), i.e. the contract and ``finstream replay --kind``.
* **slot**: the model slot the manifest's ``defaults`` name (``forecast``; ``forecast@1h`` per bar interval).
* **Job**: the class that turns a micro-batch of source records into output records (``stream.serving``).
* **agent**: the Faust agent that feeds a Job (``<slot>-agent``); an adapter detail, not a concept.
* **topic**: declared by its default name (``ticks``, ``risk-alerts``); ``FINSTREAM_TOPIC_<NAME>``
  (``FINSTREAM_TOPIC_RISK_ALERTS``) renames it and ``Settings.topic_<name>`` reads it
  (``stream.topics``), so a new pipeline's topics need no Settings field of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InputContract:
    """The input records: how they parse, what keys them, what ``finstream replay`` maps from CSV."""

    #: record kind: the default topic name and ``finstream replay --kind``
    kind: str
    #: ``stream.core.contracts`` parser: dict -> event, ``ContractError`` on bad input
    parse: Callable[[dict], Any]
    #: the field producers key the topic by (the entity id)
    key: str
    #: wire fields a CSV column can be mapped to, and of those the ones sent as numbers
    fields: tuple[str, ...]
    numeric: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """One use case. Everything that lists the use cases (worker wiring, replay kinds, manifest
    slots, training and report order, bench, demo, topic creation) reads these declarations."""

    name: str
    #: position in every listing (training runs the jobs in this order)
    order: int
    input: InputContract
    #: default name of the input topic (``ticks``; configured as ``FINSTREAM_TOPIC_TICKS``)
    input_topic: str
    #: entity kinds the Job keeps in the state store (Redis key kinds)
    state: tuple[str, ...]
    #: model tasks its slot may serve (a manifest default is checked against them)
    served_tasks: frozenset[str]
    #: tasks its training job writes into the manifest
    trained_tasks: frozenset[str]
    #: default names of the topics it publishes (dead letters aside); the first is its main
    #: output (the bench counts it per event), the others are counted beside it (risk alerts)
    outputs: tuple[str, ...]
    #: the Job (``stream.serving``); it declares the model ``slot`` it picks its model by
    job: type
    #: training module with ``train(ctx) -> JobResult`` (named, never imported by the stream)
    trainer: str
    #: default names of input topics it publishes derived records to
    feeds: tuple[str, ...] = ()
    #: tools module that makes load for it (``finstream bench``), named like ``trainer`` because
    #: the runtime never imports the tools; see ``stream.tools.bench_load`` for what it provides
    load: str = ""
    #: default name of the output a person watches (the dashboard's and the demo's panel); the
    #: main output when not named
    watched: str = ""

    def __post_init__(self) -> None:
        if self.watched and self.watched not in self.outputs:
            raise ValueError(f"pipeline {self.name!r} watches {self.watched!r}, not one of its outputs {self.outputs}")

    @property
    def slot(self) -> str:
        """The model slot the Job serves (declared on the Job, which picks its model by it)."""
        return self.job.slot

    @property
    def kind(self) -> str:
        return self.input.kind

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic it declares (default names): input, outputs, feeds."""
        return (self.input_topic, *self.outputs, *self.feeds)

    @property
    def tasks(self) -> frozenset[str]:
        """The model tasks it brings into the manifest's vocabulary."""
        return self.served_tasks | self.trained_tasks

    def topic(self, settings) -> str:
        """The input topic's name under these settings."""
        return settings.topic(self.input_topic)

    def output_topics(self, settings) -> tuple[str, ...]:
        return tuple(settings.topic(t) for t in self.outputs)

    def watched_topic(self, settings) -> str:
        """The watched output's name under these settings."""
        return settings.topic(self.watched or self.outputs[0])

    def build(self, settings, state, models):
        """The pipeline's Job on a state backend and a model registry."""
        return self.job(settings, state, models)
