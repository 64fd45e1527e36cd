"""Within-subject matrices on disjoint (odd/even) test repetitions (SPEC.md §4, secondary)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.patterns import apa
from alignpatterns.patterns.alignment import LPOptions
from alignpatterns.patterns.within import within_subject_rows, within_summary

ROIS = ["A", "B", "C"]


def _subject(rng, n_test=12, n_train=30, test_reps=10, name="01"):
    shared = rng.standard_normal((n_train + n_test, 4))
    rois = {}
    for i, roi in enumerate(ROIS):
        v = 6 + i
        W = rng.standard_normal((4, v))
        sig = shared @ W
        tr = sig[:n_train, None] + rng.standard_normal((n_train, 3, v))
        te = sig[n_train:, None] + rng.standard_normal((n_test, test_reps, v))
        rois[roi] = ROIData(vertices=np.arange(v), train_reps=tr, test_reps=te,
                            train=tr.mean(axis=1), test=te.mean(axis=1),
                            ncsnr_train=np.full(v, 0.5), ncsnr_test=np.full(v, 0.5),
                            n_reps_test=float(test_reps))
    return SubjectData(name, [f"t{i}" for i in range(n_train)],
                       [f"s{i}" for i in range(n_test)], rois)


def _debiased_cka(X, Y):
    """Debiased linear CKA (Song et al. 2012 unbiased HSIC), written out with numpy."""
    def hsic(K, L):
        n = K.shape[0]
        K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        return (np.trace(K @ L) + one @ K @ one * (one @ L @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))
    K, L = X @ X.T, Y @ Y.T
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def _corr_rdm(X):
    i, j = np.triu_indices(X.shape[0], k=1)
    return (1 - np.corrcoef(X))[i, j]


@pytest.mark.parametrize("measure", ["cka-linear-debiased", "rsa-correlation-spearman"])
def test_within_matrix_equals_closed_form_on_odd_even_halves(measure):
    rng = np.random.default_rng(0)
    sd = _subject(rng)
    rows = pd.DataFrame(within_subject_rows(sd, ROIS, measure, LPOptions()))
    assert len(rows) == len(ROIS) ** 2
    odd = {r: sd.rois[r].test_reps[:, 0::2].mean(axis=1) for r in ROIS}   # reps 1, 3, 5, …
    even = {r: sd.rois[r].test_reps[:, 1::2].mean(axis=1) for r in ROIS}  # reps 2, 4, 6, …
    if measure == "cka-linear-debiased":
        f = _debiased_cka
    else:
        def f(X, Y):
            return stats.spearmanr(_corr_rdm(X), _corr_rdm(Y))[0]
    for r, r2 in itertools.product(ROIS, repeat=2):
        row = rows[(rows["source_roi"] == r) & (rows["target_roi"] == r2)].iloc[0]
        oe, eo = f(odd[r], even[r2]), f(even[r], odd[r2])
        np.testing.assert_allclose(row["score_odd_to_even"], oe, rtol=1e-9)
        np.testing.assert_allclose(row["score_even_to_odd"], eo, rtol=1e-9)
        np.testing.assert_allclose(row["score"], (oe + eo) / 2, rtol=1e-9)
    assert set(rows["n_reps_odd"]) == {5} and set(rows["n_reps_even"]) == {5}


def _sklearn_within_lp(src_train, tgt_train, src_test, tgt_test):
    """{half: mean Pearson r} of ridge(alpha 10, unit x-scaling) fitted on the given train data.

    ``src_train`` / ``tgt_train`` map the source half to the train data it is fitted on.
    """
    from sklearn.linear_model import Ridge

    halves = {"odd": slice(0, None, 2), "even": slice(1, None, 2)}
    got = {}
    for a, b in (("odd", "even"), ("even", "odd")):
        X, Y = src_train[a], tgt_train[a]
        mx, sx, my, sy = X.mean(0), X.std(0), Y.mean(0), Y.std(0)
        model = Ridge(alpha=10.0, fit_intercept=False).fit((X - mx) / sx, (Y - my) / sy)
        P = model.predict((src_test[:, halves[a]].mean(1) - mx) / sx)
        T = tgt_test[:, halves[b]].mean(1)
        got[a] = np.mean([stats.pearsonr(T[:, v], P[:, v])[0] for v in range(T.shape[1])])
    return got


def test_within_lp_fits_on_disjoint_train_halves_and_scores_the_other_half():
    rng = np.random.default_rng(1)
    sd = _subject(rng)
    lp = LPOptions(alphas=(10.0,), inner_cv=3, x_scaling="unit")  # one alpha: plain ridge
    rows = pd.DataFrame(within_subject_rows(sd, ROIS, "lp-ridge-pearson", lp))
    src, tgt = sd.rois["A"], sd.rois["B"]
    # odd → even: source train reps 1, 3 → target train rep 2; even → odd the converse
    got = _sklearn_within_lp(
        {"odd": src.train_reps[:, 0::2].mean(1), "even": src.train_reps[:, 1::2].mean(1)},
        {"odd": tgt.train_reps[:, 1::2].mean(1), "even": tgt.train_reps[:, 0::2].mean(1)},
        src.test_reps, tgt.test_reps)
    row = rows[(rows["source_roi"] == "A") & (rows["target_roi"] == "B")].iloc[0]
    np.testing.assert_allclose(row["score_odd_to_even"], got["odd"], rtol=1e-6)
    np.testing.assert_allclose(row["score_even_to_odd"], got["even"], rtol=1e-6)
    # a fit on the shared train averages gives other scores: the halves are really used
    shared = _sklearn_within_lp({"odd": src.train, "even": src.train},
                                {"odd": tgt.train, "even": tgt.train},
                                src.test_reps, tgt.test_reps)
    assert abs(shared["odd"] - got["odd"]) > 1e-3


def test_within_lp_with_one_train_repetition_fits_the_averages_and_warns():
    rng = np.random.default_rng(3)
    sd = _subject(rng)
    for roi in ROIS:  # keep the first train repetition only
        d = sd.rois[roi]
        sd.rois[roi] = ROIData(vertices=d.vertices, train_reps=d.train_reps[:, :1],
                               test_reps=d.test_reps, train=d.train_reps[:, 0],
                               test=d.test, ncsnr_train=d.ncsnr_train,
                               ncsnr_test=d.ncsnr_test, n_reps_test=d.n_reps_test)
    lp = LPOptions(alphas=(10.0,), inner_cv=3, x_scaling="unit")
    with pytest.warns(UserWarning, match="single train repetition"):
        rows = pd.DataFrame(within_subject_rows(sd, ROIS, "lp-ridge-pearson", lp))
    src, tgt = sd.rois["C"], sd.rois["A"]
    got = _sklearn_within_lp({"odd": src.train, "even": src.train},
                             {"odd": tgt.train, "even": tgt.train},
                             src.test_reps, tgt.test_reps)
    row = rows[(rows["source_roi"] == "C") & (rows["target_roi"] == "A")].iloc[0]
    np.testing.assert_allclose(row["score_odd_to_even"], got["odd"], rtol=1e-6)
    np.testing.assert_allclose(row["score_even_to_odd"], got["even"], rtol=1e-6)


def test_within_crossnobis_needs_two_repetitions_per_half():
    sd = _subject(np.random.default_rng(2), test_reps=3)
    with pytest.raises(ValueError, match="≥ 2 test repetitions per odd/even half"):
        within_subject_rows(sd, ROIS, "rsa-crossnobis-spearman", LPOptions())


def _bb_rows(A, subjects, rois):
    rows = []
    for (i, s1), (j, s2) in itertools.product(enumerate(subjects), repeat=2):
        for (a, r1), (b, r2) in itertools.product(enumerate(rois), repeat=2):
            rows.append({"measure": "m", "source_subject": s1, "source_roi": r1,
                         "target_subject": s2, "target_roi": r2, "split": "test",
                         "score": A[i, j, a, b], "n_source_dims": 5, "n_vertices": 5})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "rsa-correlation-spearman",
                                     "cka-linear-debiased", "lp-ridge-pearson"])
def test_a_half_without_data_for_a_stimulus_gives_nan_scores_and_a_warning(measure):
    """A stimulus NaN in every odd repetition of ROI B leaves B's odd half undefined: the
    scores that use it are NaN (as the split-half ceiling), the others unchanged."""
    sd = _subject(np.random.default_rng(21))
    lp = LPOptions(alphas=(10.0,), inner_cv=3, x_scaling="unit")
    before = pd.DataFrame(within_subject_rows(sd, ROIS, measure, lp))
    sd.rois["B"].test_reps[0, 0::2] = np.nan
    with pytest.warns(UserWarning, match=r"sub-01 ROI 'B': 1 test stimuli .* odd half"):
        rows = pd.DataFrame(within_subject_rows(sd, ROIS, measure, lp))
    src_b = rows["source_roi"] == "B"
    tgt_b = rows["target_roi"] == "B"
    assert rows.loc[src_b, "score_odd_to_even"].isna().all()
    assert rows.loc[tgt_b, "score_even_to_odd"].isna().all()
    assert rows.loc[src_b | tgt_b, "score"].isna().all()
    rest = ~src_b & ~tgt_b
    np.testing.assert_allclose(rows.loc[rest, "score"], before.loc[rest, "score"])
    ok = src_b & ~tgt_b
    np.testing.assert_allclose(rows.loc[ok, "score_even_to_odd"],
                               before.loc[ok, "score_even_to_odd"])


def test_within_rows_never_enter_references_and_summary_matches_direct():
    rng = np.random.default_rng(3)
    subjects = [f"{i:02d}" for i in range(1, 7)]
    rois = ["A", "B", "C", "D", "E"]
    S, R = len(subjects), len(rois)
    P = rng.uniform(0, 1, (R, R)) + 2 * np.eye(R)
    A = P[None, None] + 0.3 * rng.standard_normal((S, S, R, R))
    bb = _bb_rows(A, subjects, rois)
    between = bb[bb["source_subject"] != bb["target_subject"]]
    # s′ = s rows with wild values (as within-subject rows would be) change no reference
    tensor = apa.brain_tensor(bb.assign(score=np.where(
        bb["source_subject"] == bb["target_subject"], 1e6, bb["score"])), subjects, rois)
    assert np.all(np.isnan(tensor.values[np.arange(S), np.arange(S)]))
    assert np.nanmax(tensor.values) < 1e6
    no_models = pd.DataFrame(columns=["measure", "model", "weights", "layer", "layer_index",
                                      "subject", "roi", "split", "score"])
    _, s1 = apa.run_apa(between, no_models, subjects, rois, "m", variants=["offdiag"])
    wild = bb.assign(score=np.where(bb["source_subject"] == bb["target_subject"], 1e6,
                                    bb["score"]))
    _, s2 = apa.run_apa(wild, no_models, subjects, rois, "m", variants=["offdiag"])
    pd.testing.assert_frame_equal(s1, s2)
    # the summary against a direct computation for one subject and ROI
    W = P[None] + 0.1 * rng.standard_normal((S, R, R))
    within = pd.DataFrame([{"measure": "m", "subject": s, "source_roi": r1, "target_roi": r2,
                            "score": W[i, a, b]}
                           for i, s in enumerate(subjects)
                           for (a, r1), (b, r2) in itertools.product(enumerate(rois), repeat=2)])
    summ = within_summary(within, between, subjects, rois, ["full", "offdiag"])
    assert len(summ) == 2 * R
    r, cols = 1, [0, 2, 3, 4]
    direct_rwb, direct_aw = [], []
    for s in range(S):
        row_between = np.mean([A[t, s, r] for t in range(S) if t != s], axis=0)
        direct_rwb.append(stats.pearsonr(W[s, r, cols], row_between[cols])[0])
        ref = np.mean([A[a, c] for a in range(S) for c in range(S)
                       if a != c and s not in (a, c)], axis=0)
        direct_aw.append(stats.pearsonr(W[s, r, cols], ref[r, cols])[0])
    got = summ[(summ["variant"] == "offdiag") & (summ["roi"] == "B")].iloc[0]
    np.testing.assert_allclose(got["r_within_between"], np.mean(direct_rwb), rtol=1e-10)
    np.testing.assert_allclose(got["aps_within"], np.mean(direct_aw), rtol=1e-10)
    assert got["r_within_between_ci_low"] < got["r_within_between"] < \
        got["r_within_between_ci_high"]
    # aps_between is APA's brain baseline on the same tensor
    brain = s1[(s1["candidate"] == "brain") & (s1["roi"] == "B")].iloc[0]
    np.testing.assert_allclose(got["aps_between"], brain["aps_mean"], rtol=1e-10)
