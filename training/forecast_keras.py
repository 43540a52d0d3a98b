"""The Keras forecasters (``forecast_conv1d``, ``forecast_lstm``): (mean, sd) of the next bar's log
return from the standardised window, trained with the Gaussian negative log-likelihood and
exported by tf2onnx (the LSTM stays a native ONNX LSTM op). Interface: ``training.forecast_models``.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from pathlib import Path

import numpy as np

from stream.core.features import FORECAST_WINDOW, Standardiser
from training.data.market import MarketData
from training.export import export_keras
from training.forecast_models import Forecaster, clip_target, input_spec
from training.models.base import Example, register

# (max epochs, Adam learning rate); early stopping (patience 5) on the validation NLL decides
KERAS_FIT = {"conv1d": (40, 1e-3), "lstm": (80, 3e-3)}


def _keras_setup(seed: int):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass
    return keras, tf


def build_keras(kind: str, norm: Standardiser, window: int = FORECAST_WINDOW, seed: int = 7, units: int = 16):
    """A model from ``window`` (N,W,1) standardised returns to ``forecast`` (N,2) raw (mean, sd)."""
    keras, _ = _keras_setup(seed)
    from keras import layers, ops

    mean, std = float(norm.mean), float(norm.std)

    @keras.saving.register_keras_serializable(package="finstream")
    class RawUnits(layers.Layer):
        """(mu_z, s_raw) in standardised units -> [mu_z*std + mean, (softplus(s_raw) + 1e-3)*std]."""

        def call(self, x):
            mu = x[:, :1] * std + mean
            sd = (ops.softplus(x[:, 1:2]) + 1e-3) * std
            return ops.concatenate([mu, sd], axis=1)

    inp = keras.Input((window, 1), name="window")
    if kind == "conv1d":
        x = layers.Conv1D(units, 5, padding="causal", activation="relu")(inp)
        x = layers.Conv1D(units, 5, padding="causal", dilation_rate=2, activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(16, activation="relu")(x)
    elif kind == "lstm":
        x = layers.LSTM(units)(inp)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    head = layers.Dense(2, bias_initializer=keras.initializers.Constant([0.0, math.log(math.e - 1)]))(x)
    out = RawUnits(name="forecast")(head)
    return keras.Model(inp, out, name=f"forecast_{kind}")


def gaussian_nll(y_true, y_pred):
    from keras import ops

    y = ops.reshape(y_true, (-1,))
    mu, sd = y_pred[:, 0], y_pred[:, 1]
    return ops.mean(ops.log(sd) + 0.5 * ops.square((y - mu) / sd))


def train_keras(
    kind: str,
    data: MarketData,
    *,
    seed: int = 7,
    epochs: int = 40,
    patience: int = 5,
    batch_size: int = 256,
    max_rows: int | None = None,
    units: int = 16,
    lr: float = 1e-3,
):
    """Fit on the pooled training split with early stopping on the validation split."""
    keras, _ = _keras_setup(seed)
    model = build_keras(kind, data.norm, data.window, seed=seed, units=units)
    Xtr, ytr = data.pooled("train")
    Xva, yva = data.pooled("val")
    if max_rows:
        Xtr, ytr, Xva, yva = Xtr[-max_rows:], ytr[-max_rows:], Xva[-max_rows:], yva[-max_rows:]
    ytr_c = clip_target(ytr, data.norm).astype(np.float32)
    yva_c = clip_target(yva, data.norm).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=gaussian_nll)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    t0 = time.perf_counter()
    hist = model.fit(
        Xtr,
        ytr_c,
        validation_data=(Xva, yva_c),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[stop],
        verbose=0,
    )
    info = {
        "epochs_run": len(hist.history["loss"]),
        "best_epoch": int(np.argmin(hist.history["val_loss"])) + 1,
        "best_val_nll": float(np.min(hist.history["val_loss"])),
        "params": int(model.count_params()),
        "fit_seconds": round(time.perf_counter() - t0, 1),
    }
    return model, info


def keras_predict(model, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(X, batch_size=4096, verbose=0), dtype=np.float64)


def export_forecaster_keras(model, path: Path, window: int = FORECAST_WINDOW) -> Path:
    return export_keras(model, path, [input_spec(window)], output_names=("forecast",))


class KerasForecaster(Forecaster):
    """``build_keras(kind)`` fitted by ``train_keras``; ``fit`` keywords go to ``train_keras``."""

    deterministic = False  # Keras training: see ``TrainableModel.deterministic``

    def __init__(self, model, info: dict, window: int):
        self.model, self.info, self.window = model, info, window

    @property
    @abstractmethod
    def kind(self) -> str:
        """``build_keras``'s architecture; each subclass names one (a class attribute)."""

    @classmethod
    def fit(cls, x: MarketData, y=None, seed: int = 7, **kw) -> KerasForecaster:
        model, info = train_keras(cls.kind, x, seed=seed, **kw)
        return cls(model, info, x.window)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return keras_predict(self.model, x)

    def export(self, path: Path) -> Path:
        return export_forecaster_keras(self.model, path, self.window)

    @classmethod
    def example(cls, seed: int) -> Example:
        ex = super().example(seed)
        return Example(ex.fit_args, ex.x, {"epochs": 1, "max_rows": 256, "units": 4})


@register
class Conv1DForecaster(KerasForecaster):
    family = kind = "conv1d"


@register
class LSTMForecaster(KerasForecaster):
    family = kind = "lstm"
