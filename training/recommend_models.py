"""The Caravan recommenders: popularity, item-CF, content, two-tower (``training.recommend_twotower``)
(order-blind: holdings and attributes only) and the served interest-aware blend (holdings + recent
interest + profile), all behind ``Recommender`` (fit, predict, export, card on the inputs dict
``{"holdings", "attributes"[, "interest"]}``). See ``training.recommend`` for how they are trained
and chosen.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stream.core.interest import ACTION_STRENGTH
from stream.core.manifest import TensorSpec
from training.models.base import Example, TrainableModel, register
from training.models.examples import recommender_inputs
from training.recommend_onnx import (
    BLEND_INPUTS,
    BLEND_OUTPUTS,
    HELD_PENALTY,
    N_A,
    N_P,
    REC_INPUTS,
    REC_OUTPUTS,
    export_interest_blend,
    export_recommender_linear,
)


class Recommender(TrainableModel):
    """``fit(x)`` on training customers, ``x`` = {"holdings": [N, P], "attributes": [N, A]};
    ``predict(x)`` = ``scores(holdings, attributes)`` [N, P] (held products pushed down by
    ``HELD_PENALTY``); ``scores`` is the same with positional arrays, as the evaluators call it."""

    task = "recommend"
    tolerance = 1e-4  # CF scores are sums of many float32 cosines

    def scores(self, h: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, x: dict) -> np.ndarray:
        return self.scores(x["holdings"], x["attributes"])

    def inputs(self) -> list[TensorSpec]:
        return list(REC_INPUTS)

    def outputs(self) -> list[TensorSpec]:
        return list(REC_OUTPUTS)

    @classmethod
    def example(cls, seed: int) -> Example:
        return Example((recommender_inputs(seed),), recommender_inputs(seed + 1, n=64))


@register
class Popularity(Recommender):
    """Share of training customers holding each product; not served (the report's floor)."""

    family = "popularity"

    def __init__(self, h_train: np.ndarray):
        self.pop = h_train.mean(axis=0)

    @classmethod
    def fit(cls, x: dict, y=None, seed: int = 7) -> Popularity:
        return cls(x["holdings"])

    def scores(self, h: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.tile(self.pop, (len(h), 1)) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(path, item_sim=np.zeros((N_P, N_P)), bias=self.pop)


@register
class ItemCF(Recommender):
    family = "item_cf"

    def __init__(self, h_train: np.ndarray, prior: float = 1e-3):
        h = np.asarray(h_train, np.float64)
        co = h.T @ h
        norm = np.sqrt(np.diag(co))
        norm = np.where(norm > 0, norm, 1.0)
        self.sim = co / norm[:, None] / norm[None, :]
        np.fill_diagonal(self.sim, 0.0)
        self.bias = prior * h.mean(axis=0)  # popularity tie-breaker, far below any similarity

    @classmethod
    def fit(cls, x: dict, y=None, seed: int = 7, prior: float = 1e-3) -> ItemCF:
        return cls(x["holdings"], prior)

    def raw(self, h: np.ndarray) -> np.ndarray:
        return np.asarray(h, np.float64) @ self.sim + self.bias

    def scores(self, h, a):
        return self.raw(h) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(path, item_sim=self.sim, bias=self.bias)


@register
class Content(Recommender):
    """Per-product L2 logistic regression on standardised customer attributes."""

    family = "content"
    tolerance = 1e-5

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

    @classmethod
    def fit(cls, x: dict, y=None, seed: int = 7, C: float = 0.05) -> Content:
        return cls(x["holdings"], x["attributes"], C)

    def prob(self, a: np.ndarray) -> np.ndarray:
        z = (np.asarray(a, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.w + self.b)))

    def scores(self, h, a):
        return self.prob(a) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(
            path, attr_w=self.w, bias=self.b, mean=self.mean, scale=self.scale, sigmoid=True
        )


@register
class InterestBlend(Recommender):
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

    @classmethod
    def fit(
        cls,
        x: dict,
        y=None,
        seed: int = 7,
        *,
        gamma: float = 0.5,
        beta: float = 1.0,
        alpha: float = 1.0,
        half_life: float = 2.0,
        strength: dict[str, float] = ACTION_STRENGTH,
    ) -> InterestBlend:
        """Item-CF and content fitted on ``x``; the weights are the job's choices (validation)."""
        return cls(
            ItemCF.fit(x), Content.fit(x), gamma=gamma, beta=beta, alpha=alpha, half_life=half_life, strength=strength
        )

    def predict(self, x: dict) -> np.ndarray:
        return self.scores(x["holdings"], x["attributes"], x.get("interest"))

    def predict_outputs(self, x: dict) -> dict[str, np.ndarray]:
        interest = x.get("interest", np.zeros_like(x["holdings"]))
        return {"scores": self.predict(x), "because": self.because(x["holdings"], x["attributes"], interest)}

    def inputs(self) -> list[TensorSpec]:
        return list(BLEND_INPUTS)

    def outputs(self) -> list[TensorSpec]:
        return list(BLEND_OUTPUTS)

    @classmethod
    def example(cls, seed: int) -> Example:
        return Example((recommender_inputs(seed),), recommender_inputs(seed + 1, n=64, interest=True))

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
