"""The Caravan recommenders: popularity, item-CF, content, two-tower (order-blind: holdings and
attributes only) and the served interest-aware blend (holdings + recent interest + profile).
See ``training.recommend`` for how they are trained and chosen.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stream.core.products import CATALOGUE, LINES
from training.export import export_keras
from training.recommend_onnx import (
    HELD_PENALTY,
    N_A,
    N_P,
    REC_INPUTS,
    export_interest_blend,
    export_recommender_linear,
)
from training.risk import _preprocess_layer, set_seed


class Popularity:
    family = "popularity"

    def __init__(self, h_train: np.ndarray):
        self.pop = h_train.mean(axis=0)

    def scores(self, h: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.tile(self.pop, (len(h), 1)) - HELD_PENALTY * h


class ItemCF:
    family = "item_cf"

    def __init__(self, h_train: np.ndarray, prior: float = 1e-3):
        h = np.asarray(h_train, np.float64)
        co = h.T @ h
        norm = np.sqrt(np.diag(co))
        norm = np.where(norm > 0, norm, 1.0)
        self.sim = co / norm[:, None] / norm[None, :]
        np.fill_diagonal(self.sim, 0.0)
        self.bias = prior * h.mean(axis=0)  # popularity tie-breaker, far below any similarity

    def raw(self, h: np.ndarray) -> np.ndarray:
        return np.asarray(h, np.float64) @ self.sim + self.bias

    def scores(self, h, a):
        return self.raw(h) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(path, item_sim=self.sim, bias=self.bias)


class Content:
    """Per-product L2 logistic regression on standardised customer attributes."""

    family = "content"

    def __init__(self, h_train: np.ndarray, a_train: np.ndarray, C: float = 0.05):
        from sklearn.linear_model import LogisticRegression

        a = np.asarray(a_train, np.float64)
        self.mean = a.mean(axis=0)
        sd = a.std(axis=0)
        self.scale = np.where(sd > 0, sd, 1.0)
        z = (a - self.mean) / self.scale
        self.w = np.zeros((N_A, N_P))
        self.b = np.zeros(N_P)
        for j in range(N_P):
            y = h_train[:, j] > 0
            if y.sum() < 2 or (~y).sum() < 2:  # too rare to fit: prior only
                self.b[j] = math.log((y.sum() + 0.5) / ((~y).sum() + 0.5))
                continue
            m = LogisticRegression(C=C, max_iter=2000).fit(z, y)
            self.w[:, j] = m.coef_[0]
            self.b[j] = m.intercept_[0]

    def prob(self, a: np.ndarray) -> np.ndarray:
        z = (np.asarray(a, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.w + self.b)))

    def scores(self, h, a):
        return self.prob(a) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(
            path, attr_w=self.w, bias=self.b, mean=self.mean, scale=self.scale, sigmoid=True
        )


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


class TwoTower:
    family = "two_tower"

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


class InterestBlend:
    """Holdings item-CF + recent interest through item-to-item similarity + the customer profile.

    ``interest @ (alpha * I + S)``: a product the user looked at counts for itself (alpha) and,
    through the holdings co-occurrence S, for the products held together with it.
    ``gamma * content(attributes) + prior`` is the profile term: with live attributes it is
    personal, with the training means it is a popularity prior. ``because`` names the largest of
    the 2P + 1 terms for each product (``training.recommend_onnx``)."""

    family = "interest_blend"

    def __init__(
        self,
        cf: ItemCF,
        content: Content,
        *,
        gamma: float,
        beta: float,
        alpha: float,
        half_life: float,
        strength: dict[str, float],
    ):
        self.cf, self.content = cf, content
        self.gamma, self.beta, self.alpha = gamma, beta, alpha
        self.half_life, self.strength = half_life, dict(strength)
        self.sources = np.vstack([cf.sim, beta * (alpha * np.eye(N_P) + cf.sim)])  # (2P, P)

    def _parts(self, h, a, interest):
        src = np.concatenate([np.asarray(h, np.float64), np.asarray(interest, np.float64)], axis=1)
        profile = self.gamma * self.content.prob(a) + self.cf.bias
        return src, profile

    def scores(self, h, a, interest=None):
        interest = np.zeros_like(h) if interest is None else interest
        src, profile = self._parts(h, a, interest)
        return src @ self.sources + profile - HELD_PENALTY * np.asarray(h, np.float64)

    def because(self, h, a, interest):
        src, profile = self._parts(h, a, interest)
        terms = np.concatenate([src[:, :, None] * self.sources[None], profile[:, None, :]], axis=1)
        return terms.argmax(axis=1)

    def export(self, path: Path) -> Path:
        return export_interest_blend(
            path,
            sources=self.sources,
            attr_w=self.content.w,
            attr_b=self.content.b,
            mean=self.content.mean,
            scale=self.content.scale,
            gamma=self.gamma,
            prior=self.cf.bias,
        )

    def params(self) -> dict:
        return {
            "half_life_events": self.half_life,
            "action_strength": self.strength,
            "beta": self.beta,
            "alpha": self.alpha,
            "gamma": self.gamma,
        }
