"""One interface for every trainable model: ``fit``, ``predict``, ``export``, ``card``.

Why: the jobs (forecast, risk, recommend) each grew their own verbs (``fit_ar``, ``Logistic.fit``,
``ItemCF(h)``, ``export_gbm(model, n, path)``...), so nothing could check every model the same
way. Now each family is one class with the same four verbs, and ``tests/training/
test_model_contract.py`` runs the same generated checks on every registered class (River's
``check_estimator`` idea): ONNX through the serving loader equals ``predict``, the same seed gives
the same file, and the card describes the graph.

* ``fit`` is a classmethod (``Model.fit(x, y, seed, **params) -> Model``): a fitted model is
  never half-built. ``x`` is a row array, a dict of named inputs (recommenders) or the family's
  data object (forecasters: ``MarketData``); ``y`` is None where the family has no labels.
* ``predict(x)`` is the in-memory output in the served layout of the first output (batch first);
  a one-column output (``score`` [N, 1]) comes back flat, [N], the layout every metric takes.
  ``predict_outputs`` gives every output by name (the interest blend also has ``because``).
* ``export(path) -> Path`` writes the ONNX file (helpers in ``training.export``).
* ``card(path, name, ...)`` is the manifest card of that file: ``task``, ``family``, inputs and
  outputs from the model, the job's figures in ``**fields``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from stream.core.manifest import ModelCard, TensorSpec

REGISTRY: dict[str, type[TrainableModel]] = {}


@dataclass(frozen=True)
class Example:
    """A tiny seeded data set for the generated checks: ``Model.fit(*fit_args, seed=seed,
    **fit_kwargs)`` then ``predict(x)``. Synthetic on purpose: it checks the plumbing (export,
    parity, determinism), never accuracy."""

    fit_args: tuple
    x: Any
    fit_kwargs: dict = field(default_factory=dict)


def register(cls: type[TrainableModel]) -> type[TrainableModel]:
    """Class decorator: the registry the contract tests are generated from (by ``family``)."""
    if cls.family in REGISTRY and REGISTRY[cls.family] is not cls:
        raise ValueError(f"two models claim family {cls.family!r}: {REGISTRY[cls.family]} and {cls}")
    REGISTRY[cls.family] = cls
    return cls


class TrainableModel(ABC):
    family: ClassVar[str]  # the card's ``family`` (ar, lstm, logistic, gbm, item_cf, ...)
    task: ClassVar[str]  # the card's default ``task`` (a job may name another: credit_default)
    # Whether the same seed gives the same ONNX bytes. Keras-trained models do not promise it
    # (TensorFlow's CPU kernels are not bit-stable under load): their check compares outputs.
    deterministic: ClassVar[bool] = True
    tolerance: ClassVar[float] = 1e-5  # max |ONNX - predict| (float32 graph against float64 numpy)

    @classmethod
    @abstractmethod
    def fit(cls, x, y=None, seed: int = 7, **params) -> TrainableModel: ...

    @abstractmethod
    def predict(self, x) -> np.ndarray: ...

    @abstractmethod
    def export(self, path: Path) -> Path: ...

    @abstractmethod
    def inputs(self) -> list[TensorSpec]: ...

    @abstractmethod
    def outputs(self) -> list[TensorSpec]: ...

    @classmethod
    @abstractmethod
    def example(cls, seed: int) -> Example: ...

    def predict_outputs(self, x) -> dict[str, np.ndarray]:
        """Every served output by name (override when there is more than one)."""
        return {self.outputs()[0].name: self.predict(x)}

    def feeds(self, x) -> dict[str, np.ndarray]:
        """``x`` as onnxruntime feeds: a dict of named inputs as is, a single array under the first input."""
        if isinstance(x, dict):
            return {k: np.asarray(v, np.float32) for k, v in x.items()}
        return {self.inputs()[0].name: np.asarray(x, np.float32)}

    def card(
        self,
        path: Path,
        name: str,
        *,
        task: str | None = None,
        features: list[str] | None = None,
        meaning: list[str] | None = None,
        **fields,
    ) -> ModelCard:
        """The manifest card of the exported ``path``. ``features`` / ``meaning`` name the columns of
        the first input / output when the model cannot know them (encoded credit columns)."""
        from training.export import make_card

        inputs, outputs = self.inputs(), self.outputs()
        if features is not None:
            inputs = [replace(inputs[0], features=list(features)), *inputs[1:]]
        if meaning is not None:
            outputs = [replace(outputs[0], meaning=list(meaning)), *outputs[1:]]
        return make_card(name, task or self.task, self.family, path, inputs, outputs, **fields)


def score_io(n_in: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The row scorers' signature: ``features`` [None, n_in] -> ``score`` [None, 1]."""
    return [TensorSpec("features", [None, n_in])], [TensorSpec("score", [None, 1])]
