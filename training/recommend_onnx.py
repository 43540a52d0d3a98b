"""The recommenders' ONNX graphs and their shared signature.

Order-blind models (item-CF, content, two-tower) take ``holdings`` and ``attributes``; the served
interest-aware blend adds ``interest`` (``stream.core.interest``) and a second output,
``because``: for each product, which input contributed most to its score, so each
recommendation's reason comes out of the same onnxruntime call as the scores.

    inputs  holdings   float32 [None, 22]  0/1 in PRODUCT_IDS order
            interest   float32 [None, 22]  recency- and action-weighted recent events (blend only)
            attributes float32 [None, 43]  CUSTOMER_ATTRIBUTES order, raw values
    output  scores     float32 [None, 22]  higher = recommend first; held products - HELD_PENALTY
            because    int64   [None, 22]  0..21 = held product i, 22..43 = interest in product i-22,
                                           44 = the customer profile / popularity (blend only)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.core.manifest import TensorSpec
from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS
from training.export import OPSET, save_graph

HELD_PENALTY = 100.0
N_P = len(PRODUCT_IDS)
N_A = len(CUSTOMER_ATTRIBUTES)

REC_INPUTS = [
    TensorSpec("holdings", [None, N_P], features=list(PRODUCT_IDS)),
    TensorSpec("attributes", [None, N_A], features=list(CUSTOMER_ATTRIBUTES)),
]
REC_OUTPUTS = [
    TensorSpec(
        "scores", [None, N_P], meaning=[f"score for {p} (held products: -{HELD_PENALTY:g})" for p in PRODUCT_IDS]
    )
]
BLEND_INPUTS = [REC_INPUTS[0], TensorSpec("interest", [None, N_P], features=list(PRODUCT_IDS)), REC_INPUTS[1]]
BLEND_OUTPUTS = REC_OUTPUTS + [
    TensorSpec(
        "because",
        [None, N_P],
        dtype="int64",
        meaning=[
            f"strongest source of the score for {p}: 0..{N_P - 1} holding, {N_P}..{2 * N_P - 1} interest, {2 * N_P} profile"
            for p in PRODUCT_IDS
        ],
    )
]


def export_recommender_linear(
    path: Path,
    *,
    item_sim: np.ndarray | None = None,
    attr_w: np.ndarray | None = None,
    bias: np.ndarray,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    sigmoid: bool = False,
    held_penalty: float = HELD_PENALTY,
) -> Path:
    """scores = act(holdings @ S + ((attributes - mu) / sigma) @ W + b) - penalty * holdings.

    Either term may be absent; both inputs are always declared so every recommender has the
    same signature.
    """
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.asarray(bias, np.float32).reshape(1, N_P), "B"),
        numpy_helper.from_array(np.full((1, 1), held_penalty, np.float32), "PENALTY"),
    ]
    nodes, terms = [], []
    if item_sim is not None:
        inits.append(numpy_helper.from_array(np.asarray(item_sim, np.float32), "S"))
        nodes.append(helper.make_node("MatMul", ["holdings", "S"], ["cf"]))
        terms.append("cf")
    if attr_w is not None:
        inits += [
            numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, N_A), "MU"),
            numpy_helper.from_array(np.asarray(scale, np.float32).reshape(1, N_A), "SIGMA"),
            numpy_helper.from_array(np.asarray(attr_w, np.float32), "W"),
        ]
        nodes += [
            helper.make_node("Sub", ["attributes", "MU"], ["a_c"]),
            helper.make_node("Div", ["a_c", "SIGMA"], ["a_z"]),
            helper.make_node("MatMul", ["a_z", "W"], ["content"]),
        ]
        terms.append("content")
    acc = terms[0]
    for t in terms[1:]:
        nodes.append(helper.make_node("Add", [acc, t], [f"{acc}_{t}"]))
        acc = f"{acc}_{t}"
    nodes.append(helper.make_node("Add", [acc, "B"], ["logit"]))
    raw = "logit"
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["logit"], ["prob"]))
        raw = "prob"
    nodes += [
        helper.make_node("Mul", ["holdings", "PENALTY"], ["held_pen"]),
        helper.make_node("Sub", [raw, "held_pen"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "recommender",
        [
            helper.make_tensor_value_info("holdings", TensorProto.FLOAT, [None, N_P]),
            helper.make_tensor_value_info("attributes", TensorProto.FLOAT, [None, N_A]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, N_P])],
        inits,
    )
    return save_graph(graph, path, OPSET)


def export_interest_blend(
    path: Path,
    *,
    sources: np.ndarray,
    attr_w: np.ndarray,
    attr_b: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    gamma: float,
    prior: np.ndarray,
) -> Path:
    """scores = [holdings, interest] @ M + gamma * sigmoid(z(attributes) @ W + b) + prior - penalty * holdings;
    ``because`` = argmax over the 2P per-source terms and the profile term (see the module doc)."""
    from onnx import TensorProto, helper, numpy_helper

    f = lambda a, n: numpy_helper.from_array(np.asarray(a, np.float32), n)  # noqa: E731
    inits = [
        f(sources, "M"),
        f(np.reshape(mean, (1, N_A)), "MU"),
        f(np.reshape(scale, (1, N_A)), "SIGMA"),
        f(attr_w, "W"),
        f(np.reshape(attr_b, (1, N_P)), "BC"),
        f(np.full((1, 1), gamma), "GAMMA"),
        f(np.reshape(prior, (1, N_P)), "PRIOR"),
        f(np.full((1, 1), HELD_PENALTY), "PENALTY"),
        numpy_helper.from_array(np.array([2], np.int64), "AX2"),
        numpy_helper.from_array(np.array([1], np.int64), "AX1"),
    ]
    n = helper.make_node
    nodes = [
        n("Concat", ["holdings", "interest"], ["src"], axis=1),
        n("MatMul", ["src", "M"], ["cf"]),
        n("Sub", ["attributes", "MU"], ["a_c"]),
        n("Div", ["a_c", "SIGMA"], ["a_z"]),
        n("MatMul", ["a_z", "W"], ["c_lin"]),
        n("Add", ["c_lin", "BC"], ["c_logit"]),
        n("Sigmoid", ["c_logit"], ["c_prob"]),
        n("Mul", ["c_prob", "GAMMA"], ["c_w"]),
        n("Add", ["c_w", "PRIOR"], ["profile"]),
        n("Add", ["cf", "profile"], ["raw"]),
        n("Mul", ["holdings", "PENALTY"], ["held_pen"]),
        n("Sub", ["raw", "held_pen"], ["scores"]),
        n("Unsqueeze", ["src", "AX2"], ["src3"]),
        n("Mul", ["src3", "M"], ["terms"]),
        n("Unsqueeze", ["profile", "AX1"], ["profile3"]),
        n("Concat", ["terms", "profile3"], ["all_terms"], axis=1),
        n("ArgMax", ["all_terms"], ["because"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "interest_blend",
        [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, [None, t.shape[1]]) for t in BLEND_INPUTS],
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, N_P]),
            helper.make_tensor_value_info("because", TensorProto.INT64, [None, N_P]),
        ],
        inits,
    )
    return save_graph(graph, path, OPSET)


def onnx_scores(
    path: Path,
    holdings: np.ndarray,
    attributes: np.ndarray,
    interest: np.ndarray | None = None,
    all_outputs: bool = False,
):
    from training.export import onnx_run

    feeds = {"holdings": np.asarray(holdings, np.float32), "attributes": np.asarray(attributes, np.float32)}
    if interest is not None:
        feeds["interest"] = np.asarray(interest, np.float32)
    out = onnx_run(path, feeds)
    return out if all_outputs else out[0]
