"""ONNX export for every model family, plus the manifest card that describes the file.

Keras models go through tf2onnx with an explicit ``input_signature`` (without it Keras 3 breaks
the converter: tf2onnx #2329, #2348). Linear models (AR, logistic/linear regression, item-item
CF) are written directly as a MatMul+Add(+activation) graph: no framework needed at serve time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stream.core.manifest import ModelCard, TensorSpec, sha256_file

OPSET = 17
_DTYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}


def export_keras(
    model, path: Path, inputs: Sequence[TensorSpec], output_names: Sequence[str] = ("output",), opset: int = OPSET
) -> Path:
    """Convert a Keras model through a ``tf.function`` with an explicit signature.

    ``tf2onnx.convert.from_keras`` fails on Keras 3 models (tf2onnx #2329, #2348: KeyError on the
    output tensor names); converting the traced call gives the same graph (LSTM stays a native
    ONNX LSTM op) with input and output names we choose.
    """
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec(tuple(s.shape), getattr(tf, s.dtype), name=s.name) for s in inputs]

    @tf.autograph.experimental.do_not_convert
    def call(*xs):
        out = model(list(xs) if len(xs) > 1 else xs[0], training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(output_names, outs, strict=True))

    fn = tf.function(call, input_signature=signature)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=signature, opset=opset)
    canonicalise_names(proto)
    _strip_and_save(proto, path)
    return path


def export_linear(
    weights: np.ndarray,
    bias: np.ndarray,
    path: Path,
    *,
    input_name: str = "features",
    output_name: str = "score",
    activation: str | None = None,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    opset: int = OPSET,
) -> Path:
    """y = act(((x - mean) / scale) @ W + b) as a plain ONNX graph.

    ``weights`` is (F, K); ``bias`` (K,). ``mean``/``scale`` fold a fitted standardisation into
    the graph so the served input is the raw feature row. ``activation``: None, "sigmoid", "softmax".
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim == 1:
        w = w[:, None]
    b = np.asarray(bias, dtype=np.float32).reshape(-1)
    n_in, n_out = w.shape
    nodes, inits = [], [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    x = input_name
    if mean is not None:
        inits.append(numpy_helper.from_array(np.asarray(mean, dtype=np.float32).reshape(1, -1), "MU"))
        nodes.append(helper.make_node("Sub", [x, "MU"], ["x_centered"]))
        x = "x_centered"
    if scale is not None:
        s = np.asarray(scale, dtype=np.float32).reshape(1, -1)
        inits.append(numpy_helper.from_array(np.where(s == 0, 1, s).astype(np.float32), "SIGMA"))
        nodes.append(helper.make_node("Div", [x, "SIGMA"], ["x_scaled"]))
        x = "x_scaled"
    nodes.append(helper.make_node("MatMul", [x, "W"], ["xw"]))
    last = output_name if activation is None else "logit"
    nodes.append(helper.make_node("Add", ["xw", "B"], [last]))
    if activation == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["logit"], [output_name]))
    elif activation == "softmax":
        nodes.append(helper.make_node("Softmax", ["logit"], [output_name], axis=-1))
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, n_out])],
        inits,
    )
    return save_graph(graph, path, opset)


def save_graph(
    graph: onnx.GraphProto, path: Path, opset: int = OPSET, extra_opsets: dict[str, int] | None = None
) -> Path:
    """A hand-built graph as a checked model file (the AR, linear, recommender and tree graphs;
    ``extra_opsets`` e.g. ``{"ai.onnx.ml": 3}`` for tree ensembles)."""
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="finstream")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _strip_and_save(model, path)
    return path


def canonicalise_names(model) -> bool:
    """Rename internal tensors/nodes by position so a retrain gives byte-identical files.

    tf2onnx's optimisers name folded constants from run-dependent counters (same graph, same
    weights, different names between processes); renaming every non-IO tensor in order of first
    use and sorting the initializers makes the bytes a function of the graph alone. Graphs with
    subgraphs (Loop/If/Scan) are left as they are (returns False).
    """
    g = model.graph
    if any(a.type in (a.GRAPH, a.GRAPHS) for n in g.node for a in n.attribute):
        return False
    io = {v.name for v in g.input} | {v.name for v in g.output}
    inits = {i.name for i in g.initializer}
    mapping: dict[str, str] = {}

    def new(name: str) -> str:
        if not name or name in io:
            return name
        if name not in mapping:
            mapping[name] = f"{'c' if name in inits else 't'}{len(mapping)}"
        return mapping[name]

    for k, n in enumerate(g.node):
        ins = [new(x) for x in n.input]
        outs = [new(x) for x in n.output]
        del n.input[:], n.output[:]
        n.input.extend(ins)
        n.output.extend(outs)
        n.name = f"{n.op_type}_{k}"
    for i in g.initializer:
        i.name = new(i.name)
    for v in g.value_info:
        v.name = new(v.name)
    ordered = sorted(g.initializer, key=lambda i: (i.name[0], int(i.name[1:]) if i.name[1:].isdigit() else 0, i.name))
    ordered = [type(o).FromString(o.SerializeToString()) for o in ordered]
    del g.initializer[:]
    g.initializer.extend(ordered)
    vi = sorted((type(v).FromString(v.SerializeToString()) for v in g.value_info), key=lambda v: v.name)
    del g.value_info[:]
    g.value_info.extend(vi)
    return True


def _strip_and_save(model: onnx.ModelProto, path: Path) -> None:
    """Drop producer timestamps/doc strings so a retrain with the same seed gives the same bytes."""
    model.doc_string = ""
    model.graph.doc_string = ""
    onnx.save(model, str(path))


def onnx_output_names(path: Path) -> list[str]:
    return [o.name for o in onnx.load(str(path)).graph.output]


def onnx_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def make_card(
    name: str,
    task: str,
    family: str,
    path: Path,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    version: str = "1",
    opset: int = OPSET,
    **fields,
) -> ModelCard:
    """A manifest card for an exported file (its SHA-256 taken from the bytes on disk)."""
    path = Path(path)
    return ModelCard(
        name=name,
        task=task,
        family=family,
        version=version,
        file=path.name,
        sha256=sha256_file(path),
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        **fields,
    )


def reference_distribution(
    x: np.ndarray, names: Sequence[str], probs=(0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
) -> dict:
    """Per-feature quantiles of the training rows: the reference the stream's drift checks compare to."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    q = np.quantile(x, probs, axis=0)
    return {
        n: {
            "probs": list(probs),
            "quantiles": [float(v) for v in q[:, i]],
            "mean": float(x[:, i].mean()),
            "std": float(x[:, i].std()),
        }
        for i, n in enumerate(names)
    }


def data_fingerprint(*arrays) -> str:
    """SHA-256 over the training arrays' bytes: which data a model saw, exactly."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()
