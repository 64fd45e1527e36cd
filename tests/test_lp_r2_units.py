"""``lp-ridge-r2`` under ``lp.protocol: default`` scores predictions and data in the same units.

The LP ridge is fitted on targets z-scored with train statistics, so its predictions are in those
units; R² = 1 − SS_res/SS_tot (unlike Pearson r) changes if the data it is compared with are in
other units. The expected scores here are computed independently with scikit-learn: the same
source scaling (``x_scaling: global``) and target z-scoring with train statistics (ddof 0),
``Ridge`` with one alpha, predictions mapped back to data units with the same train statistics,
``sklearn.metrics.r2_score`` per vertex. The observed test score, its stimulus-bootstrap identity
draw and its stimulus-permutation null must all agree with that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.patterns.alignment import LPOptions, brain_brain_rows, model_brain_scores

N_TRAIN, N_TEST, ALPHA = 30, 15, 10.0
ROIS = ["R0", "R1"]


def _subject(name, rng, sizes=(5, 4)):
    """Betas far from z-scored units (offset 8, scale 3), so that mixing units shows."""
    latent = np.random.default_rng(7).standard_normal((N_TRAIN + N_TEST, 4))
    rois = {}
    for i, v in enumerate(sizes):
        sig = latent @ rng.standard_normal((4, v))
        reps = 8.0 + 3.0 * (sig[:, None] + 0.7 * rng.standard_normal((N_TRAIN + N_TEST, 3, v)))
        tr, te = reps[:N_TRAIN], reps[N_TRAIN:]
        rois[f"R{i}"] = ROIData(vertices=np.arange(v), train_reps=tr, test_reps=te,
                                train=tr.mean(axis=1), test=te.mean(axis=1),
                                ncsnr_train=np.full(v, 0.5), ncsnr_test=np.full(v, 0.5),
                                n_reps_test=3.0)
    return SubjectData(name, [f"a{i}" for i in range(N_TRAIN)],
                       [f"b{i}" for i in range(N_TEST)], rois)


def _predict_raw(Xtr, Ytr, Xte):
    """The default LP recipe by hand (one alpha), predictions in data units."""
    xm, xs = Xtr.mean(axis=0), np.sqrt(np.mean(Xtr.var(axis=0)))  # GlobalScaler
    ym, ys = Ytr.mean(axis=0), Ytr.std(axis=0)
    model = Ridge(alpha=ALPHA, fit_intercept=False).fit((Xtr - xm) / xs, (Ytr - ym) / ys)
    return model.predict((Xte - xm) / xs) * ys + ym


def _expected(Xtr, Ytr, Xte, Yte, outer_cv):
    """(test R², out-of-fold train R²), mean over vertices, both in data units."""
    test = r2_score(Yte, _predict_raw(Xtr, Ytr, Xte))
    oof = np.empty_like(Ytr)
    for tr, te in KFold(outer_cv).split(Xtr):
        oof[te] = _predict_raw(Xtr[tr], Ytr[tr], Xtr[te])
    return test, r2_score(Ytr, oof)


LP = LPOptions(alphas=(ALPHA,), inner_cv=3, outer_cv=3)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    subs = {s: _subject(s, rng) for s in ("01", "02")}
    latent = np.random.default_rng(7).standard_normal((N_TRAIN + N_TEST, 4))
    Z = latent @ rng.standard_normal((4, 6)) + 0.5 * rng.standard_normal((N_TRAIN + N_TEST, 6))
    feats = {"L0": (Z[:N_TRAIN], Z[N_TRAIN:])}
    return subs, feats


def test_model_brain_r2_observed_boot_and_null_in_data_units(data):
    subs, feats = data
    sd = subs["01"]
    counts = np.ones((1, N_TEST), dtype=int)  # the bootstrap identity draw
    perms = np.vstack([np.arange(N_TEST), np.random.default_rng(1).permutation(N_TEST)])
    rows, nulls, boot = model_brain_scores(feats, sd, ROIS, ["lp-ridge-r2"], LP,
                                           perms={"lp-ridge-r2": perms},
                                           boots={"lp-ridge-r2": counts})
    df = pd.DataFrame(rows).set_index(["roi", "split"])["score"]
    Xtr, Xte = feats["L0"]
    for ri, roi in enumerate(ROIS):
        d = sd.rois[roi]
        want_test, want_train = _expected(Xtr, d.train, Xte, d.test, LP.outer_cv)
        assert df[roi, "test"] == pytest.approx(want_test, abs=1e-9)
        assert df[roi, "train"] == pytest.approx(want_train, abs=1e-9)
        assert boot["lp-ridge-r2"][0, 0, ri] == pytest.approx(want_test, abs=1e-9)
        P = _predict_raw(Xtr, d.train, Xte)
        want_null = [r2_score(d.test, P[p]) for p in perms]
        np.testing.assert_allclose(nulls["lp-ridge-r2"][:, 0, ri], want_null, atol=1e-9)


def test_brain_brain_r2_observed_and_boot_in_data_units(data):
    subs, _ = data
    counts = np.ones((1, N_TEST), dtype=int)
    rows, boot = brain_brain_rows(subs, "02", ROIS, "lp-ridge-r2", LP, counts)
    df = (pd.DataFrame(rows).query("source_subject == '01'")
          .set_index(["source_roi", "target_roi", "split"])["score"])
    for si, s in enumerate(ROIS):
        src = subs["01"].rois[s]
        for ti, t in enumerate(ROIS):
            tgt = subs["02"].rois[t]
            want_test, want_train = _expected(src.train, tgt.train, src.test, tgt.test,
                                              LP.outer_cv)
            assert df[s, t, "test"] == pytest.approx(want_test, abs=1e-9)
            assert df[s, t, "train"] == pytest.approx(want_train, abs=1e-9)
            assert boot[0, 0, si, ti] == pytest.approx(want_test, abs=1e-9)


def _pearson(Y, P):
    return np.mean([np.corrcoef(Y[:, v], P[:, v])[0, 1] for v in range(P.shape[1])])


def test_pearson_unaffected_by_units(data):
    """Pearson r on test is invariant to the per-vertex affine map between the units. Out of
    fold, each fold's predictions stay in its own z-units (centred by its own training mean):
    mapped back, the pooled fold means alone would correlate with the data."""
    subs, feats = data
    rows, _ = model_brain_scores(feats, subs["01"], ROIS, ["lp-ridge-pearson"], LP)
    df = pd.DataFrame(rows).set_index(["roi", "split"])["score"]
    Xtr, Xte = feats["L0"]
    for roi in ROIS:
        d = subs["01"].rois[roi]
        P = _predict_raw(Xtr, d.train, Xte)
        assert df[roi, "test"] == pytest.approx(_pearson(d.test, P), abs=1e-9)
        oof = np.empty_like(d.train)
        for tr, te in KFold(LP.outer_cv).split(Xtr):
            ym, ys = d.train[tr].mean(axis=0), d.train[tr].std(axis=0)
            oof[te] = (_predict_raw(Xtr[tr], d.train[tr], Xtr[te]) - ym) / ys
        assert df[roi, "train"] == pytest.approx(_pearson(d.train, oof), abs=1e-9)
