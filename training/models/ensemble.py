"""A small ensemble served as ONE ONNX graph: the mean of its members' probabilities.

Why: on the credit sets the mean of the logistic regression's and the gradient-boosted trees'
probabilities beat either member on the same cross-validation folds (``training.credit_cv``,
issue 10): the two make different mistakes (a linear score against axis-aligned splits). The
worker and ``finstream score`` load one model file per name, so the members' graphs are merged
into one (``merge_mean``: each member's tensors prefixed, the shared ``features`` input kept, an
ONNX ``Mean`` over their ``score`` outputs) instead of teaching the serving side about ensembles.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stream.core.manifest import TensorSpec
from training.export import OPSET, save_graph
from training.models.base import REGISTRY, Example, TrainableModel, register, score_io
from training.models.examples import score_rows

# What the credit job averages (both deterministic, so the merged file is byte-reproducible too).
DEFAULT_MEMBERS = ("logistic", "gbm")


@register
class MeanEnsemble(TrainableModel):
    """Mean of the ``score`` of row scorers that share the ``features`` [N, n_in] -> ``score`` [N, 1] layout."""

    family = "mean_ensemble"
    task = "credit_default"
    tolerance = 1e-4  # the tree member's float32 leaf sums

    def __init__(self, members: Sequence[TrainableModel]):
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        n_in = {m.inputs()[0].shape[1] for m in members}
        if len(n_in) != 1:
            raise ValueError(f"members disagree on the input width: {sorted(n_in)}")
        self.members = list(members)

    @classmethod
    def fit(cls, x, y=None, seed: int = 7, *, members: dict[str, dict] | None = None) -> MeanEnsemble:
        """Each member family (``REGISTRY`` name -> its fit parameters) fitted on the same rows and seed."""
        members = members or {f: {} for f in DEFAULT_MEMBERS}
        return cls([REGISTRY[f].fit(x, y, seed, **params) for f, params in members.items()])

    def predict(self, x) -> np.ndarray:
        return np.mean([m.predict(x) for m in self.members], axis=0)

    def export(self, path: Path) -> Path:
        with tempfile.TemporaryDirectory() as d:
            parts = [m.export(Path(d) / f"member{i}.onnx") for i, m in enumerate(self.members)]
            return merge_mean(parts, path)

    def inputs(self) -> list[TensorSpec]:
        return self.members[0].inputs()

    def outputs(self) -> list[TensorSpec]:
        return score_io(int(self.inputs()[0].shape[1]))[1]

    @classmethod
    def example(cls, seed: int) -> Example:
        x, y = score_rows(seed)
        members = {
            "logistic": {"Cs": (0.1, 1.0), "cv": 2, "log_cols": [0, 1]},
            "gbm": {"max_iter": 20, "max_leaf_nodes": 7, "min_samples_leaf": 10},
        }
        return Example((x[:200], y[:200]), x[200:], {"members": members})


def merge_mean(
    member_paths: Sequence[Path], path: Path, input_name: str = "features", output_name: str = "score"
) -> Path:
    """One graph computing ``Mean`` of the members' ``output_name`` on their shared ``input_name``.

    Every member tensor except the shared input is prefixed ``m<i>_`` so names cannot clash; the
    opsets are the union of the members' (the tree member needs ``ai.onnx.ml``).
    """
    import onnx
    from onnx import compose, helper

    nodes, inits, outs, opsets = [], [], [], {}
    graph_in = None
    for i, p in enumerate(member_paths):
        m = onnx.load(str(p))
        if [v.name for v in m.graph.input] != [input_name] or [v.name for v in m.graph.output] != [output_name]:
            raise ValueError(f"{p}: expected {input_name} -> {output_name}")
        m = compose.add_prefix(m, f"m{i}_", rename_inputs=False)
        graph_in = graph_in or m.graph.input[0]
        nodes += list(m.graph.node)
        inits += list(m.graph.initializer)
        outs.append(m.graph.output[0].name)
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    nodes.append(helper.make_node("Mean", outs, [output_name]))
    out = helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph(nodes, "mean_ensemble", [graph_in], [out], inits)
    extra = {d: v for d, v in opsets.items() if d not in ("", "ai.onnx")}
    return save_graph(graph, path, max(opsets.get("", OPSET), OPSET), extra_opsets=extra)
