"""Every trainable model behind one interface (``TrainableModel``: fit, predict, export, card) and
the registry the generated contract checks run over (``registered()``).

The row scorers live here (``logistic``, ``mlp``, ``gbm``, ``mean_ensemble`` of them, and ``recoded``: one of them on
ordinal codes and splines of the credit row); the forecasters and recommenders live
beside their jobs (``training.forecast_models``, ``training.forecast_keras``, ``training.forecast_classic``,
``training.recommend_models``, ``training.recommend_twotower``) and register themselves when
imported: ``registered()`` imports them all, so a model class cannot exist without being listed.
"""

from __future__ import annotations

import importlib

from training.models.base import REGISTRY, Example, TrainableModel, register
from training.models.ensemble import MeanEnsemble
from training.models.gbm import GBM
from training.models.logistic import LinearRegression, Logistic
from training.models.mlp import MLP
from training.models.recoded import Recoded, RecodeSpec

MODEL_MODULES = (
    "training.models.logistic",
    "training.models.mlp",
    "training.models.gbm",
    "training.models.ensemble",
    "training.models.recoded",
    "training.forecast_models",
    "training.forecast_keras",
    "training.forecast_classic",
    "training.recommend_models",
    "training.recommend_twotower",
)


def registered() -> dict[str, type[TrainableModel]]:
    """family -> model class, for every module that defines trainable models."""
    for mod in MODEL_MODULES:
        importlib.import_module(mod)
    return dict(sorted(REGISTRY.items()))


__all__ = [
    "GBM",
    "MLP",
    "REGISTRY",
    "Example",
    "LinearRegression",
    "MeanEnsemble",
    "Logistic",
    "RecodeSpec",
    "Recoded",
    "TrainableModel",
    "register",
    "registered",
]
