"""A small Keras MLP row scorer (credit, synthetic transactions): log1p of skewed money columns and
a frozen standardisation inside the model (``Preprocess``), so its ONNX graph (tf2onnx) takes the
raw encoded row like the logistic one. Also the Keras seeding and preprocessing layer the
two-tower recommender reuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stream.core.manifest import TensorSpec
from training.export import export_keras
from training.models.base import Example, TrainableModel, register, score_io
from training.models.examples import score_rows
from training.models.logistic import log_augment


def set_seed(seed: int) -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised
        pass


def _preprocess_layer():
    """A Keras layer: optional log1p columns appended, then frozen standardisation.

    Statistics live in non-trainable weights (not captured constants) so the ONNX converter
    freezes them into the graph like any kernel.
    """
    import keras
    from keras import ops

    class Preprocess(keras.layers.Layer):
        def __init__(self, mean, scale, log_cols=(), **kw):
            super().__init__(**kw)
            self._mean0 = np.asarray(mean, np.float32)
            self._scale0 = np.asarray(scale, np.float32)
            self.log_cols = [int(i) for i in log_cols]

        def build(self, input_shape):
            self.mu = self.add_weight(
                shape=self._mean0.shape,
                initializer=keras.initializers.Constant(self._mean0),
                trainable=False,
                name="mu",
            )
            self.sigma = self.add_weight(
                shape=self._scale0.shape,
                initializer=keras.initializers.Constant(self._scale0),
                trainable=False,
                name="sigma",
            )

        def call(self, x):
            if self.log_cols:
                x = ops.concatenate(
                    [x, ops.log(ops.relu(ops.take(x, self.log_cols, axis=1)) + 1.0)], axis=1
                )  # no Log1p in ONNX
            return (x - self.mu) / self.sigma

    return Preprocess


def keras_mlp(
    n_in: int,
    mean: np.ndarray,
    scale: np.ndarray,
    log_cols: Sequence[int] = (),
    hidden: Sequence[int] = (32, 16),
    dropout: float = 0.2,
    l2: float = 1e-4,
    lr: float = 1e-3,
    seed: int = 7,
    steps_per_execution: int = 1,
):
    """features -> Preprocess (log1p columns, frozen standardisation) -> Dense(relu)... -> sigmoid."""
    import keras

    reg = keras.regularizers.l2(l2) if l2 else None
    x_in = keras.Input((n_in,), name="features")
    x = _preprocess_layer()(mean, scale, log_cols, name="preprocess")(x_in)
    for i, h in enumerate(hidden):
        x = keras.layers.Dense(
            h,
            activation="relu",
            kernel_regularizer=reg,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + 100 + i)(x)
    out = keras.layers.Dense(
        1, activation="sigmoid", name="score", kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 99)
    )(x)
    model = keras.Model(x_in, out)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="binary_crossentropy",
        steps_per_execution=steps_per_execution,
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.AUC(curve="PR", name="pr_auc")],
    )
    return model


def fit_mlp(
    x_tr,
    y_tr,
    x_va,
    y_va,
    *,
    seed: int,
    epochs: int,
    batch: int,
    monitor: str = "val_auc",
    patience: int = 8,
    log_cols: Sequence[int] = (),
    **kw,
):
    import keras

    set_seed(seed)
    aug = log_augment(x_tr, log_cols)
    sd = aug.std(axis=0)
    model = keras_mlp(x_tr.shape[1], aug.mean(axis=0), np.where(sd > 0, sd, 1.0), log_cols, seed=seed, **kw)
    stop = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience, restore_best_weights=True)
    hist = model.fit(
        np.asarray(x_tr, np.float32),
        y_tr.astype(np.float32),
        validation_data=(np.asarray(x_va, np.float32), y_va.astype(np.float32)),
        epochs=epochs,
        batch_size=batch,
        verbose=0,
        callbacks=[stop],
        shuffle=True,
    )
    return model, len(hist.history["loss"])


def keras_predict(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(np.asarray(x, np.float32), training=False)).reshape(-1)


@register
class MLP(TrainableModel):
    """``keras_mlp`` fitted by ``fit_mlp`` (early stopping on ``validation``), exported by tf2onnx."""

    family = "mlp"
    task = "credit_default"
    deterministic = False  # Keras training: see ``TrainableModel.deterministic``

    def __init__(self, model, epochs: int | None = None):
        self.model, self.epochs = model, epochs

    @classmethod
    def fit(cls, x, y=None, seed: int = 7, *, validation=None, epochs: int = 30, batch: int = 64, **kw) -> MLP:
        """``validation`` = (x_val, y_val) for early stopping; without it the last 20% of the rows."""
        x, y = np.asarray(x), np.asarray(y)
        if validation is None:
            cut = int(0.8 * len(y))
            x, y, validation = x[:cut], y[:cut], (x[cut:], y[cut:])
        model, n_ep = fit_mlp(x, y, *validation, seed=seed, epochs=epochs, batch=batch, **kw)
        return cls(model, n_ep)

    def predict(self, x) -> np.ndarray:
        return keras_predict(self.model, x)

    def export(self, path: Path) -> Path:
        return export_keras(self.model, path, self.inputs(), output_names=("score",))

    def inputs(self) -> list[TensorSpec]:
        return score_io(int(self.model.inputs[0].shape[-1]))[0]

    def outputs(self) -> list[TensorSpec]:
        return score_io(int(self.model.inputs[0].shape[-1]))[1]

    @classmethod
    def example(cls, seed: int) -> Example:
        x, y = score_rows(seed)
        return Example((x[:200], y[:200]), x[200:], {"epochs": 2, "batch": 64, "log_cols": [0, 1], "hidden": (8,)})
