"""Checks generated for every registered trainable model (``training.models.registered()``), the way
River's ``check_estimator`` runs the same checks on every estimator.

Per model, on its own tiny seeded data set (``Model.example``, synthetic: plumbing, not accuracy):

* the exported ONNX file, loaded and run by the worker's own loader (``stream.serving.models``),
  gives ``predict_outputs`` within the model's stated absolute ``tolerance`` (1e-5; 1e-4 for tree
  ensembles, CF sums and the interest-rate regression);
  integer outputs (the blend's ``because``) must be equal;
* two fits with the same seed give the same ONNX bytes, for the models that promise it
  (``deterministic``); Keras-trained ones (MLP, Conv1D, LSTM, two-tower) promise only the same
  graph (same operators, inputs and outputs, initializer names and shapes) and outputs within 1e-4
  (seen here: their weights come out identical, but tf2onnx names dynamic dimensions from a
  process-wide counter, so a second export in one process differs in those names);
* the card (``model.card``) describes the graph: input and output names in order, shapes (None =
  a dynamic dimension), dtypes, the opset, the file's SHA-256, a known task, the class's family.

And for the registry itself: every concrete ``TrainableModel`` subclass is registered (a new model
cannot skip these checks), and every family in the committed manifest is a registered one.
"""

from __future__ import annotations

import gc
import inspect

import numpy as np
import onnx
import pytest

from stream import pipelines
from stream.core.manifest import read_manifest, sha256_file
from stream.serving.models import load_model
from stream.settings import REPO_ROOT
from training.forecast_models import ARModel
from training.models import TrainableModel, registered

pytestmark = pytest.mark.training

MODELS = registered()
SEED = 11
ONNX_DTYPES = {"float32": onnx.TensorProto.FLOAT, "int64": onnx.TensorProto.INT64}


def unregistered_models() -> list[type]:
    """Concrete subclasses of ``TrainableModel`` (at any depth) missing from the registry."""
    seen, stack = [], [TrainableModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if not inspect.isabstract(sub) and sub not in MODELS.values():
                seen.append(sub)
    return seen


def test_every_model_class_is_registered():
    assert len(MODELS) >= 14
    assert unregistered_models() == []


def test_an_unregistered_model_is_caught():
    class Unlisted(ARModel):  # a new family someone forgot to register
        family = "unlisted"

    assert Unlisted in unregistered_models()
    del Unlisted
    gc.collect()


def test_every_served_family_is_registered():
    manifest = read_manifest(REPO_ROOT / "onnx_models")
    assert {c.family for c in manifest.models.values()} <= set(MODELS)


class Fitted:
    """One model fitted twice with the same seed, each fit exported into its own directory."""

    def __init__(self, cls: type[TrainableModel], tmp):
        self.cls, self.example = cls, cls.example(SEED)
        self.models, self.paths, self.cards = [], [], []
        for run in ("a", "b"):
            model = cls.fit(*self.example.fit_args, seed=SEED, **self.example.fit_kwargs)
            path = model.export(tmp / run / f"{cls.family}.onnx")
            self.models.append(model)
            self.paths.append(path)
            self.cards.append(model.card(path, f"contract_{cls.family}"))


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, tmp_path_factory):
    return Fitted(MODELS[request.param], tmp_path_factory.mktemp(request.param))


def _close(got: np.ndarray, want: np.ndarray, tol: float, what: str) -> None:
    assert got.shape == want.shape, f"{what}: served shape {got.shape}, predict shape {want.shape}"
    if np.issubdtype(want.dtype, np.integer):
        assert np.array_equal(got, want), f"{what}: {int((got != want).sum())} of {got.size} entries differ"
        return
    err = float(np.max(np.abs(got - want)))
    assert err <= tol, f"{what}: |served - predict| = {err:.2e} > {tol:g}"


def test_served_onnx_equals_predict(fitted):
    model, card = fitted.models[0], fitted.cards[0]
    served = load_model(card, fitted.paths[0].parent)  # SHA-256 check, onnxruntime session, input names
    outs = served.run(model.feeds(fitted.example.x))
    want = model.predict_outputs(fitted.example.x)
    names = [o.name for o in served.session.get_outputs()]
    assert names == [t.name for t in card.outputs] and set(want) == set(names)
    for name, got in zip(names, outs, strict=True):
        w = np.asarray(want[name])
        if w.ndim == 1:  # a one-column output comes back flat from predict (see TrainableModel)
            assert got.shape == (len(w), 1), f"{name}: served {got.shape} for a flat prediction"
            got = got[:, 0]
        _close(got, w.astype(got.dtype) if np.issubdtype(got.dtype, np.integer) else w, fitted.cls.tolerance, name)
    assert len(next(iter(want.values()))) > 0


def test_same_seed_same_file(fitted):
    a, b = (p.read_bytes() for p in fitted.paths)
    if fitted.cls.deterministic:
        assert a == b, f"{fitted.cls.family}: two fits with seed {SEED} wrote different ONNX files"
        return
    ga, gb = (onnx.load_from_string(x).graph for x in (a, b))
    assert [n.op_type for n in ga.node] == [n.op_type for n in gb.node]
    # tf2onnx names dynamic dimensions from a process-wide counter (unk__7 in one export, unk__12 in
    # the next): the interface must be the same up to those names
    assert [(v.name, _dims(v), v.type.tensor_type.elem_type) for v in [*ga.input, *ga.output]] == [
        (v.name, _dims(v), v.type.tensor_type.elem_type) for v in [*gb.input, *gb.output]
    ]
    assert [(i.name, list(i.dims)) for i in ga.initializer] == [(i.name, list(i.dims)) for i in gb.initializer]
    x = fitted.example.x
    for name, want in fitted.models[0].predict_outputs(x).items():
        _close(np.asarray(fitted.models[1].predict_outputs(x)[name]), np.asarray(want), 1e-4, f"refit {name}")


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def test_card_matches_graph(fitted):
    card, path = fitted.cards[0], fitted.paths[0]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    g = proto.graph
    inits = {i.name for i in g.initializer}
    graph_inputs = [v for v in g.input if v.name not in inits]
    assert card.file == path.name and card.sha256 == sha256_file(path)
    assert card.family == fitted.cls.family and card.task in pipelines.tasks()
    assert card.opset == next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    for specs, values in ((card.inputs, graph_inputs), (card.outputs, list(g.output))):
        assert [s.name for s in specs] == [v.name for v in values]
        for spec, value in zip(specs, values, strict=True):
            assert ONNX_DTYPES[spec.dtype] == value.type.tensor_type.elem_type, spec.name
            assert _dims(value) == list(spec.shape), f"{spec.name}: graph {_dims(value)}, card {spec.shape}"
            for names in (spec.features, spec.meaning):
                assert not names or len(names) == spec.shape[-1], f"{spec.name}: {len(names)} column names"
