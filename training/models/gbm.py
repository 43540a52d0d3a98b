"""Gradient-boosted trees (scikit-learn HistGradientBoosting) as a row scorer, written to ONNX as a
tree ensemble (``export_gbm``) so the worker needs only onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.core.manifest import TensorSpec
from training.export import OPSET, save_graph
from training.models.base import Example, TrainableModel, register, score_io
from training.models.examples import score_rows


def single_thread():
    """OpenMP (HistGradientBoosting) limited to one thread. On the shared, loaded 2-core machine
    its threads mostly wait for each other: a German-credit fit took 13.7 s with them and 0.6 s
    without; a card GBM on 12k / 194k rows 7.6 / 23.3 s against 2.6 / 19.6 s. Same trees."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@register
class GBM(TrainableModel):
    """A fitted binary ``HistGradientBoostingClassifier``; ``legit_share`` < 1 fits on all positives
    and a seeded share of the negatives, weighted back up (the card risk model's 590k rows)."""

    family = "gbm"
    task = "transaction_risk"
    tolerance = 1e-4  # float32 thresholds and leaf sums in the tree ensemble

    def __init__(self, model):
        self.model = model

    @classmethod
    def fit(cls, x, y=None, seed: int = 7, *, legit_share: float = 1.0, **params) -> GBM:
        """Fitted inside ``single_thread()`` (see there why)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        m = HistGradientBoostingClassifier(random_state=seed, **params)
        with single_thread():
            if legit_share >= 1:
                return cls(m.fit(x, y))
            rng = np.random.default_rng(seed)
            keep = (y == 1) | (rng.random(len(y)) < legit_share)
            w = np.where(y[keep] == 1, 1.0, 1.0 / legit_share)
            return cls(m.fit(x[keep], y[keep], sample_weight=w))

    def predict(self, x) -> np.ndarray:
        with single_thread():
            return self.model.predict_proba(x)[:, 1]

    def export(self, path: Path) -> Path:
        return export_gbm(self.model, self.model.n_features_in_, path)

    def inputs(self) -> list[TensorSpec]:
        return score_io(int(self.model.n_features_in_))[0]

    def outputs(self) -> list[TensorSpec]:
        return score_io(int(self.model.n_features_in_))[1]

    @classmethod
    def example(cls, seed: int) -> Example:
        x, y = score_rows(seed)
        params = {"max_iter": 20, "max_leaf_nodes": 7, "min_samples_leaf": 10, "legit_share": 0.5}
        return Example((x[:200], y[:200]), x[200:], params)


def export_gbm(model, n_in: int, path: Path) -> Path:
    """A fitted binary HistGradientBoostingClassifier as an ONNX TreeEnsembleRegressor + Sigmoid
    with one float32 ``score`` [None, 1] output (P(fraud)), like every risk model.

    Written directly (skl2onnx 1.20 fails on scikit-learn 1.9's boolean node attributes). Split
    thresholds are rounded *down* to float32: for a float32 input x, ``x <= t`` holds exactly when
    ``x <= largest float32 <= t``, so the graph takes the same branches as scikit-learn.
    """
    from onnx import TensorProto, helper

    if getattr(model, "n_trees_per_iteration_", 1) != 1 or model.is_categorical_ is not None:
        raise ValueError("export_gbm handles binary models on numeric features only")
    a: dict[str, list] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for t, (pred,) in enumerate(model._predictors):
        for i, nd in enumerate(pred.nodes):
            leaf = bool(nd["is_leaf"])
            thr = np.float32(nd["num_threshold"])
            if not leaf and float(thr) > float(nd["num_threshold"]):
                thr = np.nextafter(thr, np.float32(-np.inf))
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            a["nodes_featureids"].append(0 if leaf else int(nd["feature_idx"]))
            a["nodes_values"].append(0.0 if leaf else float(thr))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(nd["left"]))
            a["nodes_falsenodeids"].append(0 if leaf else int(nd["right"]))
            a["nodes_missing_value_tracks_true"].append(int(nd["missing_go_to_left"]) if not leaf else 0)
            if leaf:
                a["target_treeids"].append(t)
                a["target_nodeids"].append(i)
                a["target_ids"].append(0)
                a["target_weights"].append(float(nd["value"]))
    base = float(np.asarray(model._baseline_prediction).reshape(-1)[0])
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor",
            ["features"],
            ["logit"],
            domain="ai.onnx.ml",
            n_targets=1,
            aggregate_function="SUM",
            post_transform="NONE",
            base_values=[base],
            **a,
        ),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gbm",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
    )
    return save_graph(graph, path, OPSET, extra_opsets={"ai.onnx.ml": 3})
