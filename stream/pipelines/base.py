"""What a pipeline declares: one use case of the stream, from its input topic to its outputs.

Words, each for one thing (used the same way across ``stream/`` and ``training/``):

* **pipeline**: a use case (forecast, risk, recommend), declared once in ``stream/pipelines/<name>.py``;
  its name is also its training job (``finstream train --only NAME``), bench scenario and report section.
* **kind**: the record kind of its input topic (``ticks``), i.e. the contract and ``finstream replay --kind``.
* **slot**: the model slot the manifest's ``defaults`` name (``forecast``; ``forecast@1h`` per bar interval).
* **Job**: the class that turns a micro-batch of source records into output records (``stream.serving``).
* **agent**: the Faust agent that feeds a Job (``<slot>-agent``); an adapter detail, not a concept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class InputContract:
    """The input records: how they parse, what keys them, what ``finstream replay`` maps from CSV."""

    kind: str                            # record kind; the default topic name and ``replay --kind``
    parse: Callable[[dict], Any]         # ``stream.core.contracts`` parser: ContractError on bad input
    key: str                             # the field producers key the topic by (the entity id)
    fields: tuple[str, ...]              # wire fields a CSV column can be mapped to
    numeric: tuple[str, ...] = ()        # of those, the ones sent as numbers


@dataclass(frozen=True)
class Pipeline:
    """One use case. Everything that lists the use cases (worker wiring, replay kinds, manifest
    slots, training and report order, bench, demo, topic creation) reads these declarations."""

    name: str
    order: int                           # position in every listing (training runs them in this order)
    input: InputContract
    input_topic: str                     # Settings field naming the input topic (``topic_ticks``)
    state: tuple[str, ...]               # entity kinds the Job keeps in the state store (Redis key kinds)
    served_tasks: frozenset[str]         # model tasks its slot may serve (a manifest default is checked)
    trained_tasks: frozenset[str]        # tasks its training job writes into the manifest
    outputs: tuple[str, ...]             # Settings fields of the topics it publishes (dead letters aside);
                                         # the first is its main one (the bench counts it per event)
    job: type                            # the Job (``stream.serving``): it declares the model ``slot``
    trainer: str                         # training module with ``train(ctx) -> JobResult`` (never imported here)
    feeds: tuple[str, ...] = ()          # Settings fields of input topics it publishes derived records to

    @property
    def slot(self) -> str:
        """The model slot the Job serves (declared on the Job, which picks its model by it)."""
        return self.job.slot

    @property
    def kind(self) -> str:
        return self.input.kind

    def topic(self, settings) -> str:
        """The input topic's name under these settings."""
        return getattr(settings, self.input_topic)

    def output_topics(self, settings) -> tuple[str, ...]:
        return tuple(getattr(settings, f) for f in self.outputs)

    def build(self, settings, state, models):
        """The pipeline's Job on a state backend and a model registry."""
        return self.job(settings, state, models)
