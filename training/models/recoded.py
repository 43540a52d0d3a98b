"""A row scorer fitted on a *recoded* credit row: ordered one-hot blocks as one ordinal code each,
and a piecewise-linear spline (hinges) of chosen numeric columns, in front of any row scorer.

Why (issue 10, credit7 round): the lending_club logistic leaned on ``int_rate`` and a 35-level
one-hot ``sub_grade``; ordinal codes of ordered categoricals (grade, employment length, term) and a
spline of the rate are what usually works on such data, and a monotone GBM needs an ordinal grade
to constrain. The served input stays the encoded row every credit model takes (the card's
``features`` and ``encoding`` unchanged, so ``finstream score`` and the worker need nothing new):
the recoding is the first part of the ONNX graph (``Gather`` of the kept columns, ``MatMul`` of the
one-hots with their ranks, ``Relu(x - knot)``, ``Concat``), and the inner model's graph follows.
The knots are quantiles of the rows ``fit`` is given (inside a CV fold: that fold's training rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.core.manifest import TensorSpec
from training.export import OPSET, save_graph
from training.models.base import REGISTRY, Example, TrainableModel, register, score_io
from training.models.examples import score_rows


@dataclass(frozen=True)
class RecodeSpec:
    """What to recode, by encoded column names: ``ordered`` maps a categorical column to its levels
    in order (rank 0, 1, ...; levels it does not list, e.g. ``unknown``, keep their one-hot column
    and code 0), ``spline`` maps a numeric column to its number of interior knots (its quantiles)."""

    names: tuple[str, ...]
    ordered: Mapping[str, Sequence[str]] = field(default_factory=dict)
    spline: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Recoding:
    """The fitted recoding: row -> [kept columns, one code per ordered column, hinges]."""

    n_in: int
    keep: list[int]
    ranks: np.ndarray  # [n_in, n_ordered] float32: the rank of each one-hot column in its block
    hinge_cols: list[int]
    knots: np.ndarray  # float32, one per hinge
    names: list[str]  # of the recoded columns

    @classmethod
    def fit(cls, spec: RecodeSpec, x: np.ndarray) -> Recoding:
        names = list(spec.names)
        ranks = np.zeros((len(names), len(spec.ordered)), np.float32)
        coded = set()
        for k, (col, levels) in enumerate(spec.ordered.items()):
            for r, lvl in enumerate(levels):
                j = names.index(f"{col}={lvl}")  # a level the schema lacks is a spec error: fail loudly
                ranks[j, k] = r
                coded.add(j)
        keep = [j for j in range(len(names)) if j not in coded]
        hinge_cols, knots = [], []
        for col, n_knots in spec.spline.items():
            j = names.index(col)
            qs = np.quantile(np.asarray(x[:, j], np.float64), np.arange(1, n_knots + 1) / (n_knots + 1))
            for q in np.unique(qs.astype(np.float32)):
                hinge_cols.append(j)
                knots.append(q)
        out_names = [names[j] for j in keep] + [f"{c} (rank)" for c in spec.ordered]
        out_names += [f"max({names[j]} - {k:g}, 0)" for j, k in zip(hinge_cols, knots)]
        return cls(len(names), keep, ranks, hinge_cols, np.asarray(knots, np.float32), out_names)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The recoded rows in float32, operation by operation as the graph computes them."""
        x = np.asarray(x, np.float32)
        parts = [x[:, self.keep], x @ self.ranks, np.maximum(x[:, self.hinge_cols] - self.knots, np.float32(0))]
        return np.concatenate(parts, axis=1)

    def graph(self, input_name: str, output_name: str):
        """(nodes, initializers) computing ``apply`` from ``input_name`` into ``output_name``."""
        from onnx import helper, numpy_helper

        inits = [
            numpy_helper.from_array(np.asarray(self.keep, np.int64), "RECODE_KEEP"),
            numpy_helper.from_array(self.ranks, "RECODE_RANKS"),
            numpy_helper.from_array(np.asarray(self.hinge_cols, np.int64), "RECODE_HINGE_COLS"),
            numpy_helper.from_array(self.knots.reshape(1, -1), "RECODE_KNOTS"),
        ]
        nodes = [
            helper.make_node("Gather", [input_name, "RECODE_KEEP"], ["recode_kept"], axis=1),
            helper.make_node("MatMul", [input_name, "RECODE_RANKS"], ["recode_ranks"]),
            helper.make_node("Gather", [input_name, "RECODE_HINGE_COLS"], ["recode_hinge_x"], axis=1),
            helper.make_node("Sub", ["recode_hinge_x", "RECODE_KNOTS"], ["recode_hinge_d"]),
            helper.make_node("Relu", ["recode_hinge_d"], ["recode_hinges"]),
            helper.make_node("Concat", ["recode_kept", "recode_ranks", "recode_hinges"], [output_name], axis=1),
        ]
        return nodes, inits


@register
class Recoded(TrainableModel):
    """``inner`` (a registered row scorer: ``logistic``, ``gbm``) fitted on ``recoding.apply(x)``."""

    family = "recoded"
    task = "credit_default"
    tolerance = 1e-4  # a tree inner model's float32 leaf sums

    def __init__(self, recoding: Recoding, inner: TrainableModel):
        self.recoding = recoding
        self.inner = inner

    @classmethod
    def fit(
        cls,
        x,
        y=None,
        seed: int = 7,
        *,
        spec: RecodeSpec,
        inner: str = "logistic",
        monotone: Mapping[str, int] | None = None,
        log_numeric: int | None = None,
        **params,
    ) -> Recoded:
        """``monotone`` (recoded column name -> +1/-1) becomes the GBM's ``monotonic_cst``;
        ``log_numeric=n``: the inner logistic's log1p columns are the skewed ones among the first
        ``n`` recoded columns (the kept numeric ones), chosen on these rows like the plain logistic's."""
        recoding = Recoding.fit(spec, np.asarray(x))
        z = recoding.apply(x)
        if monotone:
            params["monotonic_cst"] = [int(monotone.get(n, 0)) for n in recoding.names]
        if log_numeric is not None:
            from training.models.logistic import skewed_columns

            params["log_cols"] = skewed_columns(z, log_numeric)
        from training.models.gbm import single_thread

        with single_thread():  # BLAS threads made a lending_club lbfgs fit ~10x slower on the shared 2 cores
            return cls(recoding, REGISTRY[inner].fit(z, y, seed, **params))

    @property
    def log_cols(self) -> list[int]:
        """The inner model's in-graph log1p columns (indices of kept numeric columns, which keep their place)."""
        return list(getattr(self.inner, "log_cols", []))

    def predict(self, x) -> np.ndarray:
        return self.inner.predict(self.recoding.apply(x))

    def export(self, path: Path) -> Path:
        import tempfile

        import onnx
        from onnx import compose, helper

        with tempfile.TemporaryDirectory() as d:
            inner = onnx.load(str(self.inner.export(Path(d) / "inner.onnx")))
        inner = compose.add_prefix(inner, "inner_", rename_outputs=False)
        (x_in,), (out,) = self.inputs(), inner.graph.output
        nodes, inits = self.recoding.graph(x_in.name, inner.graph.input[0].name)
        graph = helper.make_graph(
            nodes + list(inner.graph.node),
            "recoded",
            [helper.make_tensor_value_info(x_in.name, onnx.TensorProto.FLOAT, [None, self.recoding.n_in])],
            [out],
            inits + list(inner.graph.initializer),
        )
        opsets = {o.domain: o.version for o in inner.opset_import}
        extra = {dom: v for dom, v in opsets.items() if dom not in ("", "ai.onnx")}
        return save_graph(graph, path, max(opsets.get("", OPSET), OPSET), extra_opsets=extra)

    def inputs(self) -> list[TensorSpec]:
        return score_io(self.recoding.n_in)[0]

    def outputs(self) -> list[TensorSpec]:
        return score_io(self.recoding.n_in)[1]

    @classmethod
    def example(cls, seed: int) -> Example:
        """Three numeric columns, then a 3-level ordered one-hot block (one level unordered) and a spline."""
        x, y = score_rows(seed, n_in=4)
        level = np.random.default_rng(seed).integers(0, 3, len(x))
        x = np.concatenate([x[:, :3], np.eye(3, dtype=np.float32)[level]], axis=1)
        names = ("m0", "m1", "z", "g=lo", "g=hi", "g=unknown")
        spec = RecodeSpec(names, ordered={"g": ["lo", "hi"]}, spline={"m0": 3})
        return Example((x[:200], y[:200]), x[200:], {"spec": spec, "Cs": (0.1, 1.0), "cv": 2, "log_numeric": 2})
