"""The committed model manifest is true to the committed ONNX files, and runnable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from stream import pipelines
from stream.core.features import FORECAST_WINDOW, RETURN_CLIP
from stream.core.manifest import ModelCard, TensorSpec, read_manifest, sha256_file

MODEL_DIR = Path(__file__).resolve().parents[2] / "onnx_models"
ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT32: "int32",
}
NP_DTYPES = {"float32": np.float32, "int64": np.int64, "float64": np.float64, "int32": np.int32}

manifest = read_manifest(MODEL_DIR)
CARDS = sorted(manifest.models.values(), key=lambda c: c.name)


def _graph_io(path):
    g = onnx.load(str(path)).graph
    init = {i.name for i in g.initializer}

    def spec(v):
        t = v.type.tensor_type
        return v.name, len(t.shape.dim), ONNX_DTYPES.get(t.elem_type, str(t.elem_type))

    return [spec(v) for v in g.input if v.name not in init], [spec(v) for v in g.output]


def test_manifest_has_models():
    assert CARDS, "no models in onnx_models/manifest.json"
    assert "forecast" in manifest.defaults


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_file_exists_and_sha256_matches(card: ModelCard):
    path = MODEL_DIR / card.file
    assert path.exists(), f"{card.file} is missing"
    assert sha256_file(path) == card.sha256, f"{card.file} changed since the manifest was written"


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_specs_match_graph(card: ModelCard):
    ins, outs = _graph_io(MODEL_DIR / card.file)
    assert [(s.name, len(s.shape), s.dtype) for s in card.inputs] == ins
    assert [(s.name, len(s.shape), s.dtype) for s in card.outputs] == outs


def _feed(spec: TensorSpec, batch: int = 3) -> np.ndarray:
    shape = [batch if d is None else d for d in spec.shape]
    return np.zeros(shape, dtype=NP_DTYPES[spec.dtype])


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_runs_on_zero_batch(card: ModelCard):
    sess = ort.InferenceSession(str(MODEL_DIR / card.file), providers=["CPUExecutionProvider"])
    outs = sess.run([o.name for o in card.outputs], {s.name: _feed(s) for s in card.inputs})
    for spec, arr in zip(card.outputs, outs):
        want = [3 if d is None else d for d in spec.shape]
        assert list(arr.shape) == want, f"{card.name}:{spec.name} shape {arr.shape} != {want}"
        assert np.isfinite(arr).all()
        if spec.meaning:
            assert len(spec.meaning) == arr.shape[-1]


def test_defaults_point_at_models_of_the_right_task():
    for slot, name in manifest.defaults.items():
        served = pipelines.by_slot(slot).served_tasks  # forecast@1h: the forecast slot of one bar interval
        assert manifest.get(name).task in served
    # a slot whose task has models must have a default
    tasks = {c.task for c in CARDS}
    for p in pipelines.all_pipelines():
        if tasks & p.served_tasks:
            assert p.slot in manifest.defaults, f"models for {p.slot!r} exist but no default is set"


@pytest.mark.parametrize("card", [c for c in CARDS if c.task == "forecast"], ids=lambda c: c.name)
def test_forecasters_carry_normalisation(card: ModelCard):
    norm = card.normalisation["returns"]
    assert norm["std"] > 0 and np.isfinite(norm["mean"]) and norm["clip"] == RETURN_CLIP
    assert card.extra["window"] == FORECAST_WINDOW
    assert card.inputs[0].name == "window" and card.inputs[0].shape == [None, FORECAST_WINDOW, 1]
    assert card.outputs[0].name == "forecast" and card.outputs[0].meaning == ["next_return", "next_volatility"]
    assert card.metrics.get("qlike") is not None and card.data_fingerprint
    # the same statistics for every forecaster of one bar interval: one Standardiser, served == trained
    first = next(c for c in CARDS if c.task == "forecast" and c.extra["bar_s"] == card.extra["bar_s"])
    assert card.normalisation == first.normalisation


def test_manifest_json_round_trips():
    raw = json.loads((MODEL_DIR / "manifest.json").read_text())
    assert raw["schema"] == 1 and set(raw["models"]) == set(manifest.models)


def test_partial_run_merge_keeps_other_jobs(tmp_path):
    """``finstream train --only forecast`` replaces forecast entries and keeps everything else."""
    from stream.core.manifest import Manifest
    from training.export import make_card
    from training.job import JobResult
    from training.pipeline import merge_manifest

    for name in ("forecast_old.onnx", "forecast_new.onnx", "risk_a.onnx"):
        (tmp_path / name).write_bytes(name.encode())
    spec = [TensorSpec("x", [None, 1])]
    old = make_card(
        "forecast_old", "forecast", "ar", tmp_path / "forecast_old.onnx", spec, spec, extra={"job": "forecast"}
    )
    risk = make_card(
        "risk_a", "transaction_risk", "logistic", tmp_path / "risk_a.onnx", spec, spec, extra={"job": "risk"}
    )
    existing = Manifest({"forecast_old": old, "risk_a": risk}, {"forecast": "forecast_old", "risk": "risk_a"})
    new = make_card("forecast_new", "forecast", "lstm", tmp_path / "forecast_new.onnx", spec, spec)
    m, stale = merge_manifest(existing, {"forecast": JobResult([new], {"forecast": "forecast_new"}, "", {})}, tmp_path)
    assert set(m.models) == {"forecast_new", "risk_a"}
    assert m.defaults == {"forecast": "forecast_new", "risk": "risk_a"}
    assert stale == [tmp_path / "forecast_old.onnx"]
    assert m.models["forecast_new"].extra["job"] == "forecast"
