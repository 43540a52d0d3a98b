"""The two-tower recommender (Keras): a user tower on holdings and standardised attributes, an item
tower of id + business-line embeddings, trained on denoised holdings (held products dropped at
random, to be recovered); exported by tf2onnx with the held products pushed down in the graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.core.products import CATALOGUE, LINES
from training.export import export_keras
from training.models.base import Example, register
from training.models.examples import recommender_inputs
from training.models.mlp import _preprocess_layer, set_seed
from training.recommend_models import Recommender
from training.recommend_onnx import HELD_PENALTY, N_A, N_P, REC_INPUTS


def _item_tower_layer():
    import keras
    from keras import ops

    class ItemTower(keras.layers.Layer):
        """Item vectors = id embedding + business-line embedding (content); returns user . item + bias."""

        def __init__(self, dim: int, line_onehot: np.ndarray, seed: int = 7, **kw):
            super().__init__(**kw)
            self.dim = dim
            self._lines0 = np.asarray(line_onehot, np.float32)
            self.seed = seed

        def build(self, input_shape):
            init = keras.initializers.GlorotUniform(seed=self.seed)
            self.item_id = self.add_weight(shape=(N_P, self.dim), initializer=init, name="item_id")
            self.line_emb = self.add_weight(
                shape=(self._lines0.shape[1], self.dim),
                initializer=keras.initializers.GlorotUniform(seed=self.seed + 1),
                name="line",
            )
            self.lines = self.add_weight(
                shape=self._lines0.shape,
                initializer=keras.initializers.Constant(self._lines0),
                trainable=False,
                name="line_onehot",
            )
            self.bias = self.add_weight(shape=(N_P,), initializer="zeros", name="item_bias")

        def call(self, u):
            items = self.item_id + ops.matmul(self.lines, self.line_emb)
            return ops.matmul(u, ops.transpose(items)) + self.bias

    return ItemTower


@register
class TwoTower(Recommender):
    family = "two_tower"
    tolerance = 1e-5
    deterministic = False  # Keras training: see ``TrainableModel.deterministic``

    def __init__(self, h_tr, a_tr, h_va, a_va, seed: int, epochs: int = 40, copies: int = 4, dim: int = 32):
        import keras
        from keras import ops

        set_seed(seed)
        rng = np.random.default_rng(seed)
        self.a_mean = a_tr.mean(axis=0)
        sd = a_tr.std(axis=0)
        self.a_scale = np.where(sd > 0, sd, 1.0)
        line_onehot = np.array([[float(p.line == ln) for ln in LINES] for p in CATALOGUE], np.float32)

        h_in = keras.Input((N_P,), name="holdings")
        a_in = keras.Input((N_A,), name="attributes")
        a_z = _preprocess_layer()(self.a_mean, self.a_scale, name="attr_standardise")(a_in)
        u = keras.layers.Concatenate()([h_in, a_z])
        u = keras.layers.Dense(
            64,
            activation="relu",
            kernel_regularizer=keras.regularizers.l2(1e-4),
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        )(u)
        u = keras.layers.Dropout(0.2, seed=seed + 1)(u)
        u = keras.layers.Dense(dim, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))(u)
        logits = _item_tower_layer()(dim, line_onehot, seed=seed + 3, name="item_tower")(u)
        prob = keras.layers.Activation("sigmoid", name="prob")(logits)
        self.model = keras.Model([h_in, a_in], prob)
        self.model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
        # Serving graph: same weights, held products pushed down.
        served = keras.layers.Lambda(lambda t: t[0] - HELD_PENALTY * t[1], name="scores")([prob, h_in])
        self.serving = keras.Model([h_in, a_in], served)

        x_h, x_a, y = self._denoise(h_tr, a_tr, rng, copies)
        v_h, v_a, v_y = self._denoise(h_va, a_va, rng, 1)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)
        hist = self.model.fit(
            [x_h, x_a],
            y,
            validation_data=([v_h, v_a], v_y),
            epochs=epochs,
            batch_size=256,
            verbose=0,
            callbacks=[stop],
            shuffle=True,
        )
        self.epochs = len(hist.history["loss"])
        del ops

    @classmethod
    def fit(cls, x: dict, y=None, seed: int = 7, *, validation: dict | None = None, **kw) -> TwoTower:
        """``validation`` (same layout as ``x``) for early stopping; without it the last 20% of ``x``."""
        h, a = np.asarray(x["holdings"]), np.asarray(x["attributes"])
        if validation is None:
            cut = int(0.8 * len(h))
            h, a, validation = h[:cut], a[:cut], {"holdings": h[cut:], "attributes": a[cut:]}
        return cls(h, a, validation["holdings"], validation["attributes"], seed, **kw)

    @classmethod
    def example(cls, seed: int) -> Example:
        return Example(
            (recommender_inputs(seed),), recommender_inputs(seed + 1, n=64), {"epochs": 1, "copies": 1, "dim": 4}
        )

    @staticmethod
    def _denoise(h, a, rng, copies):
        """Each copy drops every held product with probability 1/2 (at least one kept out when >= 2 held)."""
        hs, as_, ys = [], [], []
        for _ in range(copies):
            drop = (rng.random(h.shape) < 0.5) & (h > 0)
            hs.append(np.where(drop, 0.0, h))
            as_.append(a)
            ys.append(h)
        return (
            np.concatenate(hs).astype(np.float32),
            np.concatenate(as_).astype(np.float32),
            np.concatenate(ys).astype(np.float32),
        )

    def scores(self, h, a):
        out = self.serving([np.asarray(h, np.float32), np.asarray(a, np.float32)], training=False)
        return np.asarray(out)

    def export(self, path: Path) -> Path:
        return export_keras(self.serving, path, REC_INPUTS, output_names=("scores",))
