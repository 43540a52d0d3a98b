import numpy as np

from stream.core.reasons import occlusion_batch, score_with_reasons, split_scores, top_reasons


def test_occlusion_batch_layout():
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.0], dtype=np.float32)
    batch = occlusion_batch(x, b)
    assert batch.shape == (4, 3)
    np.testing.assert_array_equal(batch, [[1, 2, 3], [0, 2, 3], [1, 0, 3], [1, 2, 0]])


def test_linear_model_contributions_are_exact():
    rng = np.random.default_rng(0)
    w = np.array([2.0, -1.0, 0.5, 0.0])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    base = np.zeros(4, dtype=np.float32)
    scores, contrib = split_scores(occlusion_batch(x, base) @ w, 5, 4)
    np.testing.assert_allclose(scores, x @ w, rtol=1e-6)
    np.testing.assert_allclose(contrib, x * w, rtol=1e-5, atol=1e-6)


def test_top_reasons_only_positive_pushes_in_order():
    contrib = np.array([[0.1, -0.5, 0.3, 0.0]])
    x = np.ones((1, 4))
    [reasons] = top_reasons(contrib, x, ["a", "b", "c", "d"], {"c": "C words"}, k=3)
    assert [r.feature for r in reasons] == ["c", "a"]
    assert reasons[0].text == "C words" and reasons[1].text == "a"


def linear_model(w: np.ndarray):
    """A linear model's run function, and the batch shape of each call it gets (one per onnxruntime call)."""
    calls: list[tuple] = []

    def run(batch):
        calls.append(batch.shape)
        return batch @ w

    return run, calls


def test_score_with_reasons_is_one_run_over_the_occlusion_batch():
    run, calls = linear_model(np.array([1.0, -2.0, 3.0]))
    x = np.array([[1.0, 1.0, 1.0], [0.0, -1.0, 0.0]])
    scores, reasons = score_with_reasons(run, x, [0.0, 0.0, 0.0], ["a", "b", "c"], {"c": "C"})
    assert calls == [(8, 3)]
    np.testing.assert_allclose(scores, [2.0, 2.0])
    assert [r.feature for r in reasons[0]] == ["c", "a"] and [r.feature for r in reasons[1]] == ["b"]


def test_explaining_some_rows_scores_all_then_occludes_only_those():
    """The same reasons as the one-call plan for the picked rows, none for the others, and the
    second call holds only the picked rows' occluded copies."""
    run, calls = linear_model(np.array([1.0, -2.0, 3.0]))
    x = np.array([[1.0, 1.0, 1.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    _, every = score_with_reasons(run, x, [0.0, 0.0, 0.0], ["a", "b", "c"], {})
    calls.clear()
    scores, reasons = score_with_reasons(run, x, [0.0, 0.0, 0.0], ["a", "b", "c"], {}, explain=lambda s: s > 0)
    assert calls == [(3, 3), (2 * 3, 3)]  # scores of all 3 rows, then 3 copies of the 2 picked
    np.testing.assert_allclose(scores, [2.0, 2.0, -3.0])
    assert reasons[:2] == every[:2] and reasons[2] == []
    calls.clear()
    score_with_reasons(run, x, [0.0, 0.0, 0.0], ["a", "b", "c"], {}, explain=lambda s: s > 5)
    assert calls == [(3, 3)]  # nothing to explain: no second call
