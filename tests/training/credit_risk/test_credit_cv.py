"""Cross-validation on the credit sets without leaks: every preprocessing step fitted inside the
training fold, ensembles on the same folds, a fold never sees its test rows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.credit_risk.probes import spy
from training import risk
from training.data import credit

pytestmark = pytest.mark.training


def test_cv_fits_every_preprocessing_step_inside_the_training_fold(german):
    """Spies on the fitted encoding: every fold's fills and bounds come from its training rows only
    (never its test rows), every fold's feature matrix is built from that fold's encoding (not from
    defaults fitted on all rows), and a family runs only the repeats it is given."""
    from training import credit_cv

    cs = spy(german)
    rows = np.arange(0, 1000, 3)
    cv = credit_cv.cross_validate(
        cs,
        rows,
        3,
        risk.MLP_CONFIG["default"],
        folds=3,
        repeats={"logistic": 2, "gbm": 1},
        families=("logistic", "gbm"),
    )
    calls = cs.fits
    assert len(calls) == 6 and all(c is not None and c < set(rows.tolist()) for c in calls)
    assert set().union(*calls[:3]) == set(rows.tolist())  # each row is a test row once per repeat
    assert all(len(c) == pytest.approx(len(rows) * 2 / 3, abs=2) for c in calls)
    assert len(cs.used) == 6 and all(u is e for u, e in zip(cs.used, cs.encodings))  # features from the fold's own fit
    assert (cv["logistic"]["folds"], cv["gbm"]["folds"]) == (6, 3) and cv["gbm"]["repeats"] == 1
    chosen = credit_cv.choose(cv)  # compared on the 3 folds both ran, not on the logistic's 6
    assert cv["logistic"]["auc_shared"] == pytest.approx(np.mean(cv["logistic"]["fold_aucs"][:3]))
    assert chosen == max(("logistic", "gbm"), key=lambda f: cv[f]["auc_shared"])
    assert credit_cv.choose(cv) in ("logistic", "gbm") and not np.isnan(cv["gbm"]["oof"]).any()
    assert set(cv["gbm"]["importance"]) == set(german.encoding["numeric"]) | set(german.encoding["categorical"])


def test_cv_ensemble_averages_its_members_on_the_same_folds(german):
    """The ensemble is scored from its members' fits of each fold: no encoding (fills, bounds) of
    its own, its out-of-fold predictions are exactly the mean of the members' on the same rows,
    and it may not run repeats its members did not."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    from training import credit_cv

    cs = spy(german)
    rows = np.arange(0, 1000, 3)
    per = {"logistic": 2, "gbm": 2, "ensemble": 2}
    cv = credit_cv.cross_validate(cs, rows, 3, {}, folds=3, repeats=per, families=("ensemble", "logistic", "gbm"))
    assert len(cs.fits) == 6 and all(c < set(rows.tolist()) for c in cs.fits)  # one fold-only encoding a fold
    assert all(u is e for u, e in zip(cs.used, cs.encodings))
    want = (cv["logistic"]["oof"] + cv["gbm"]["oof"]) / 2
    np.testing.assert_array_equal(cv["ensemble"]["oof"], want)
    assert cv["ensemble"]["folds"] == 6 and cv["ensemble"]["auc"] == pytest.approx(np.mean(cv["ensemble"]["fold_aucs"]))
    _, b = next(RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=3).split(rows, cs.y[rows]))
    assert cv["ensemble"]["fold_aucs"][0] == pytest.approx(risk.auc(cs.y[rows][b], want[b]))  # the same first fold
    with pytest.raises(ValueError, match="members"):
        credit_cv.cross_validate(
            cs,
            rows,
            3,
            {},
            folds=3,
            repeats={"logistic": 1, "gbm": 1, "ensemble": 2},
            families=("logistic", "gbm", "ensemble"),
        )


def test_cv_fold_does_not_see_its_test_rows(german):
    """Leak check on values: wildly changing the first fold's test rows changes nothing the fold
    learnt (its fills and bounds), so its model scores the untouched rows the same."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    from training import credit_cv

    rows = np.arange(1000)
    a, b = next(RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=4).split(rows, german.y))
    frame = german.frame.copy()
    num = [c for c in german.numeric if c in german.winsorize] or list(german.numeric)
    frame.loc[b, num] = frame.loc[b, num] * 1000  # only the fold's test rows
    twisted = credit.CreditSet(
        german.name, frame, german.target, german.y, german.numeric, german.categorical, german.source, german.winsorize
    )
    out = []
    for cs in (spy(german), spy(twisted)):
        cv = credit_cv.cross_validate(cs, rows, 4, {}, folds=3, repeats=1, families=("logistic",))
        out.append((cs.used[0], cv["logistic"]["fold_aucs"]))
    assert out[0][0] == out[1][0]  # the encoding the first fold's rows were built with ignores its test rows
    assert out[0][1][1:] != out[1][1][1:]  # ... while later folds, which train on those rows, do change
