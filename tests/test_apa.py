"""APA on constructed brain tensors with known answers (SPEC.md §4)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.patterns import apa

SUBJECTS = [f"{i:02d}" for i in range(1, 7)]
ROIS = ["A", "B", "C", "D", "E"]


def _pattern(rng, n=5):
    P = rng.uniform(0, 1, (n, n))
    return P + 2 * np.eye(n)


def _bb(A, subjects=SUBJECTS, rois=ROIS, split="test"):
    rows = []
    for (i, s1), (j, s2) in itertools.product(enumerate(subjects), repeat=2):
        if i == j:
            continue
        for (a, r1), (b, r2) in itertools.product(enumerate(rois), repeat=2):
            rows.append({"measure": "m", "source_subject": s1, "source_roi": r1,
                         "target_subject": s2, "target_roi": r2, "split": split,
                         "score": A[i, j, a, b], "n_source_dims": 5, "n_vertices": 5})
    return pd.DataFrame(rows)


def _mb(train, test, name="model", subjects=SUBJECTS, rois=ROIS):
    """train/test: arrays (n_layers, n_subjects, n_rois)."""
    rows = []
    for split, arr in (("train", train), ("test", test)):
        for li, si, ri in itertools.product(*map(range, arr.shape)):
            rows.append({"measure": "m", "model": name, "weights": "random",
                         "layer": f"L{li}", "layer_index": li, "subject": subjects[si],
                         "roi": rois[ri], "split": split, "score": arr[li, si, ri],
                         "n_source_dims": 3, "n_vertices": 5})
    return pd.DataFrame(rows)


def _noisy_tensor(P, rng, noise):
    S, R = len(SUBJECTS), P.shape[0]
    A = P[None, None] + noise * rng.standard_normal((S, S, R, R))
    return A


def test_references_are_double_exclusion_means():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5, 3, 3))
    refs = apa._references(A, list(range(5)))
    for s, s2 in [(0, 1), (3, 2), (4, 0)]:
        rest = [m for m in range(5) if m not in (s, s2)]
        expect = np.mean([A[a, b] for a in rest for b in rest if a != b], axis=0)
        np.testing.assert_allclose(refs[s, s2], expect)


def test_brain_baseline_matches_brute_force():
    rng = np.random.default_rng(1)
    A = _noisy_tensor(_pattern(rng), rng, 0.3)
    _, summary = apa.run_apa(_bb(A), _mb(np.zeros((1, 6, 5)), np.zeros((1, 6, 5))),
                             SUBJECTS, ROIS, "m", variants=["offdiag"])
    brain = summary[summary["candidate"] == "brain"].set_index("roi")
    S = len(SUBJECTS)
    for r in range(len(ROIS)):
        cols = [c for c in range(len(ROIS)) if c != r]
        per_target = []
        for s in range(S):
            vals = []
            for s2 in range(S):
                if s2 == s:
                    continue
                rest = [m for m in range(S) if m not in (s, s2)]
                ref = np.mean([A[a, b] for a in rest for b in rest if a != b], axis=0)
                vals.append(stats.pearsonr(A[s2, s, r, cols], ref[r, cols])[0])
            per_target.append(np.mean(vals))
        assert brain.loc[ROIS[r], "aps_mean"] == pytest.approx(np.mean(per_target), abs=1e-12)


def test_layer_selection_is_leave_subject_out_and_recovers_the_matching_layer():
    rng = np.random.default_rng(2)
    P = _pattern(rng)
    A = _noisy_tensor(P, rng, 0.2)
    L, S, R = len(ROIS), len(SUBJECTS), len(ROIS)
    test = np.broadcast_to(P[:, None, :], (L, S, R)).copy()  # layer k reproduces ROI k's row
    train = np.zeros((L, S, R))
    for k in range(L):
        train[k, :, k] = 1.0  # layer k is best for ROI k on train ...
    train[1, 0, 0] = 6.0  # ... except subject 01 alone strongly prefers layer 1 for ROI A
    sel = apa.selected_layers(_mb(train, test), SUBJECTS, ROIS)
    # target 01: selection uses the other subjects only → layer 0
    assert sel.query("roi == 'A' and subject == '01'")["layer_index"].item() == 0
    # other targets see subject 01's train score: layer 1 mean 6/5 = 1.2 > layer 0 mean 1.0
    assert sel.query("roi == 'A' and subject == '02'")["layer_index"].item() == 1
    rows, summary = apa.run_apa(_bb(A), _mb(train, test), SUBJECTS, ROIS, "m",
                                variants=["offdiag", "full"])
    model = summary[(summary["candidate"] == "model") & (summary["variant"] == "offdiag")]
    brain = summary[(summary["candidate"] == "brain") & (summary["variant"] == "offdiag")]
    # the noise-free true pattern beats a noisy single subject standing in
    for roi in ROIS[1:]:
        m = model.set_index("roi").loc[roi]
        assert m["aps_mean"] > brain.set_index("roi").loc[roi, "aps_mean"]
        assert m["layer"] == f"L{ROIS.index(roi)}"
        assert m["delta"] > 0 and m["delta_ci_low"] <= m["delta"] <= m["delta_ci_high"]
    assert set(rows["n_entries"]) == {len(ROIS), len(ROIS) - 1}


def test_specificity_separates_the_right_roi():
    rng = np.random.default_rng(3)
    P = _pattern(rng)
    A = _noisy_tensor(P, rng, 0.2)
    L, S, R = len(ROIS), len(SUBJECTS), len(ROIS)
    test = np.broadcast_to(P[:, None, :], (L, S, R)).copy()
    train = np.broadcast_to(np.eye(L)[:, None, :], (L, S, R)).copy()
    _, summary = apa.run_apa(_bb(A), _mb(train, test), SUBJECTS, ROIS, "m", variants=["full"])
    model = summary[summary["candidate"] == "model"]
    assert (model["spec_margin"] > 0).all()


def test_jackknife_interval_formula():
    loo = np.array([1.0, 2.0, 4.0, 3.0])
    full = 2.5
    se = np.sqrt(3 / 4 * np.sum((loo - loo.mean()) ** 2))
    t = stats.t.ppf(0.975, 3)
    assert apa._jackknife_ci(full, loo) == pytest.approx((full - t * se, full + t * se))


def test_roi_missing_in_one_subject_is_dropped_listwise():
    rng = np.random.default_rng(4)
    A = _noisy_tensor(_pattern(rng), rng, 0.2)
    A[:, 2, :, 3] = np.nan  # ROI D missing as a target in subject 03
    A[2, :, 3, :] = np.nan  # ... and as a source
    rows, summary = apa.run_apa(_bb(A), _mb(np.zeros((1, 6, 5)), np.zeros((1, 6, 5))),
                                SUBJECTS, ROIS, "m", variants=["full"])
    assert "D" not in set(summary["roi"]) and set(summary["roi"]) == {"A", "B", "C", "E"}
    assert set(rows["n_entries"]) == {4}


def test_too_few_subjects_is_refused():
    rng = np.random.default_rng(5)
    A = _noisy_tensor(_pattern(rng), rng, 0.2)[:3, :3]
    with pytest.raises(ValueError, match="≥ 4 subjects"):
        apa.run_apa(_bb(A, SUBJECTS[:3]), _mb(np.zeros((1, 3, 5)), np.zeros((1, 3, 5)),
                                               subjects=SUBJECTS[:3]),
                    SUBJECTS[:3], ROIS, "m")


def _brute_force_aps(A, r, cols, profile):
    """mean over targets s and stand-ins s* of Pearson(profile(s, s*, ref), ref[r]) on ``cols``
    with the double-exclusion reference ref = ā^{−{s,s*}}, by explicit loops."""
    S = A.shape[0]
    vals = []
    for s in range(S):
        for s2 in range(S):
            if s2 == s:
                continue
            rest = [m for m in range(S) if m not in (s, s2)]
            ref = np.mean([A[a, b] for a in rest for b in rest if a != b], axis=0)
            vals.append(stats.pearsonr(profile(s, s2, ref)[cols], ref[r, cols])[0])
    return np.mean(vals)


def _ceilings(C, measure="m", kind="split_half", subjects=SUBJECTS, rois=ROIS):
    return pd.DataFrame([{"measure": measure, "subject": s, "roi": r, "split": "test",
                          "kind": kind, "value": C[i, k], "n_reps": 10.0}
                         for i, s in enumerate(subjects) for k, r in enumerate(rois)])


def test_normalized_variant_divides_columns_by_the_target_ceiling():
    """A reliability-shaped brain tensor: raw offdiag profiles follow each *target* subject's
    ceilings, normalisation removes that, and the brain baseline matches brute force."""
    rng = np.random.default_rng(4)
    P = _pattern(rng)
    C = rng.uniform(0.3, 1.0, (len(SUBJECTS), len(ROIS)))
    A = (P[None, None] + 0.2 * rng.standard_normal((6, 6, 5, 5))) * C[None, :, None, :]
    ce = _ceilings(C)
    _, summ = apa.run_apa(_bb(A), _mb(np.zeros((1, 6, 5)), np.zeros((1, 6, 5))), SUBJECTS,
                          ROIS, "m", variants=["normalized_offdiag"], ceilings=ce)
    brain = summ[summ["candidate"] == "brain"].set_index("roi")
    An = A / C[None, :, None, :]
    r, cols = 2, [0, 1, 3, 4]
    expect = _brute_force_aps(An, r, cols, lambda s, s2, ref: An[s2, s, r])
    assert brain.loc["C", "aps_mean"] == pytest.approx(expect, abs=1e-12)
    # relerr = ||M - ref|| / ||ref|| is reported on normalized variants only
    assert np.all(np.isfinite(brain["relerr"]))
    assert brain["n_entries"].eq(4).all()


def test_columns_below_min_ceiling_are_dropped():
    rng = np.random.default_rng(5)
    A = _noisy_tensor(_pattern(rng), rng, 0.2)
    C = np.full((6, 5), 0.8)
    C[3, 1] = 0.05  # ROI B is unreliable in one subject: column B goes for everyone
    _, summ = apa.run_apa(_bb(A), _mb(np.zeros((1, 6, 5)), np.zeros((1, 6, 5))), SUBJECTS,
                          ROIS, "m", variants=["normalized", "normalized_offdiag"],
                          ceilings=_ceilings(C), min_ceiling=0.1)
    n = summ[summ["candidate"] == "brain"].set_index(["variant", "roi"])["n_entries"]
    assert n[("normalized", "A")] == 4 and n[("normalized_offdiag", "A")] == 3
    assert n[("normalized_offdiag", "B")] == 4  # its own column is gone anyway


def test_residual_variant_removes_a_reliability_profile():
    """A model whose profile is just the target's reliability matches the raw offdiag
    reference (which follows reliability) but not after the residual regression."""
    rng = np.random.default_rng(6)
    R = 8
    rois = [f"R{i}" for i in range(R)]
    C = np.tile(np.linspace(0.3, 1.0, R), (6, 1)) + 0.02 * rng.standard_normal((6, R))
    P = rng.uniform(0, 1, (R, R))
    A = (P[None, None] + 0.05 * rng.standard_normal((6, 6, R, R)) + 3 * C[None, :, None, :])
    test = np.repeat(3 * C[None], 2, axis=0)  # profile = reliability, two identical layers
    mb = _mb(test, test, rois=rois)
    _, summ = apa.run_apa(_bb(A, rois=rois), mb, SUBJECTS, rois, "m",
                          variants=["offdiag", "residual"], ceilings=_ceilings(C, rois=rois))
    model = summ[summ["candidate"] == "model"].groupby("variant")["aps_mean"].mean()
    brain = summ[summ["candidate"] == "brain"].groupby("variant")["aps_mean"].mean()
    assert model["offdiag"] > 0.8
    assert model["residual"] < 0.3 < brain["residual"]


def test_variants_needing_ceilings_refuse_without_them():
    A = np.zeros((6, 6, 5, 5))
    with pytest.raises(ValueError, match="ceilings"):
        apa.run_apa(_bb(A), _mb(np.zeros((1, 6, 5)), np.zeros((1, 6, 5))), SUBJECTS, ROIS,
                    "m", variants=["normalized"])
    with pytest.raises(ValueError, match="unknown APA variant"):
        apa.run_apa(_bb(A), _mb(np.zeros((1, 6, 5)), np.zeros((1, 6, 5))), SUBJECTS, ROIS,
                    "m", variants=["weird"])


def _true_pattern_model(seed):
    rng = np.random.default_rng(seed)
    P = _pattern(rng)
    A = _noisy_tensor(P, rng, 0.2)
    L, S, R = len(ROIS), len(SUBJECTS), len(ROIS)
    test = np.broadcast_to(P[:, None, :], (L, S, R)).copy()
    train = np.broadcast_to(np.eye(L)[:, None, :], (L, S, R)).copy()
    return A, train, test, rng


def test_stimulus_permutation_p_value_and_verdict():
    """A model reproducing the true pattern passes when its permuted scores carry no pattern,
    and fails when permuting stimuli leaves its profile unchanged (the pattern is not
    stimulus-driven); p = (1 + #{null ≥ obs}) / (1 + draws); q is BH over each candidate's ROIs."""
    A, train, test, rng = _true_pattern_model(7)
    D = 199
    noise_null = rng.standard_normal((D,) + test.shape)  # permuted: profiles are noise
    same_null = np.broadcast_to(test, (D,) + test.shape).copy()  # permutation-invariant
    mb = pd.concat([_mb(train, test, name="stimulus_driven"), _mb(train, test, name="generic")])
    _, summ = apa.run_apa(_bb(A), mb, SUBJECTS, ROIS, "m", variants=["full"],
                          nulls={"stimulus_driven": noise_null, "generic": same_null})
    good = summ[summ["candidate"] == "stimulus_driven"].set_index("roi")
    bad = summ[summ["candidate"] == "generic"].set_index("roi")
    assert (good["p_stimulus"] == 1 / (D + 1)).all()
    assert (bad["p_stimulus"] == 1.0).all()
    models = summ[summ["candidate"] != "brain"]
    for _, g in models.groupby("candidate"):
        np.testing.assert_allclose(
            g["q_stimulus"], stats.false_discovery_control(g["p_stimulus"], method="bh"))
    assert good["passes"].all()
    assert not bad["passes"].any()
    assert summ.loc[summ["candidate"] == "brain", "passes"].isna().all()
    # margin sensitivity: the default margin reproduces passes; a wider margin never fails more
    pd.testing.assert_series_equal(models["passes_margin_0_1"], models["passes"],
                                   check_names=False)
    assert (models["passes_margin_0_05"] <= models["passes_margin_0_1"]).all()
    assert (models["passes_margin_0_1"] <= models["passes_margin_0_2"]).all()


def test_null_draws_compare_only_the_entries_the_observed_profile_has():
    """A draw's profile must not have entries the observed one lacks (e.g. a NaN test score):
    finite null scores there are ignored, so p equals that of a null NaN at the same place."""
    A, train, test, rng = _true_pattern_model(11)
    test = test.copy()
    test[:, 2, 3] = np.nan  # subject 03's score at ROI D undefined in every layer
    null = rng.standard_normal((99,) + test.shape)
    null_nan = null.copy()
    null_nan[:, :, 2, 3] = np.nan
    mb = pd.concat([_mb(train, test, name="a"), _mb(train, test, name="b")])
    _, summ = apa.run_apa(_bb(A), mb, SUBJECTS, ROIS, "m", variants=["full", "offdiag"],
                          nulls={"a": null, "b": null_nan})
    p = summ[summ["candidate"] != "brain"].pivot_table(
        index=["variant", "roi"], columns="candidate", values="p_stimulus")
    np.testing.assert_array_equal(p["a"], p["b"])
    assert p["a"].notna().all()


def test_verdict_is_na_without_nulls_or_with_too_few_subjects():
    A, train, test, rng = _true_pattern_model(8)
    _, summ = apa.run_apa(_bb(A), _mb(train, test), SUBJECTS, ROIS, "m", variants=["full"])
    assert summ["passes"].isna().all() and summ["p_stimulus"].isna().all()
    five = SUBJECTS[:5]
    null = rng.standard_normal((20, len(ROIS), 5, len(ROIS)))
    _, summ = apa.run_apa(_bb(A[:5, :5], subjects=five), _mb(train[:, :5], test[:, :5],
                          subjects=five), five, ROIS, "m", variants=["full"],
                          nulls={"model": null})
    assert summ.loc[summ["candidate"] == "model", "p_stimulus"].notna().all()
    assert summ["passes"].isna().all()
    with pytest.raises(ValueError, match="expected shape"):
        apa.run_apa(_bb(A), _mb(train, test), SUBJECTS, ROIS, "m", variants=["full"],
                    nulls={"model": null})


def test_undefined_aps_fails_and_counts_in_the_bh_family():
    """SPEC.md §4: a zero-variance profile gets APS = NaN, which counts as fail. A candidate
    whose every profile is flat fails everywhere (it used to get NA, as if no null had run);
    in a partly flat candidate the flat ROIs count in BH's m as p = 1."""
    A, train, test, rng = _true_pattern_model(10)
    flat = np.full_like(test, 0.5)  # every layer scores 0.5 on every ROI: flat profiles
    nulls = {n: rng.standard_normal((99,) + test.shape) for n in ("flat", "good")}
    mb = pd.concat([_mb(train, flat, name="flat"), _mb(train, test, name="good")])
    _, summ = apa.run_apa(_bb(A), mb, SUBJECTS, ROIS, "m", variants=["full"], nulls=nulls)
    f = summ[summ["candidate"] == "flat"]
    assert f["aps_mean"].isna().all() and f["p_stimulus"].isna().all()
    assert (f["passes"] == False).all()  # noqa: E712  (False, not NA)
    for col in ("passes_margin_0_05", "passes_margin_0_1", "passes_margin_0_2"):
        assert (f[col] == False).all()  # noqa: E712
    # BH with undefined claims: p = 1 for them in m, q NaN on their rows
    p = np.array([0.01, 0.02, np.nan, 0.04])
    summ2 = pd.DataFrame({"measure": "m", "variant": "full", "match": "pearson",
                          "candidate": "x", "roi": list("ABCD"), "p_stimulus": p,
                          "delta_ci_low": 0.0, "spec_ci_low": 1.0, "margin": 0.1,
                          apa._NULL_RUN: True})
    out = apa._verdicts(summ2, 6)
    expect = stats.false_discovery_control([0.01, 0.02, 1.0, 0.04], method="bh")
    np.testing.assert_allclose(out["q_stimulus"].to_numpy()[[0, 1, 3]], expect[[0, 1, 3]])
    # ROI D: q = 4 · 0.04 / 3 > 0.05 fails; leaving C out of m would give 0.04 and a pass
    assert np.isnan(out["q_stimulus"].iloc[2])
    assert out["passes"].tolist() == [True, True, False, False]
    assert stats.false_discovery_control([0.01, 0.02, 0.04], method="bh")[2] < 0.05
    assert apa._NULL_RUN not in out


def test_adding_a_model_changes_no_other_row():
    """Each candidate's scores, intervals, permutation p-values, q-values and verdicts depend on
    it alone. m1's null is built so that pooling BH over candidates would change its q-values
    and turn some of its passes into fails once the weak m3 (p = 1 everywhere) joins."""
    A, train, test, rng = _true_pattern_model(9)
    nulls = {n: rng.standard_normal((50,) + test.shape) for n in ("m1", "m2")}
    # m3: permutation-invariant features, so its p-values are all 1
    nulls["m3"] = np.broadcast_to(test[::-1], (50,) + test.shape).copy()
    two = pd.concat([_mb(train, test, name="m1"), _mb(train + 1, test * 0.5, name="m2")])
    three = pd.concat([two, _mb(train, test[::-1], name="m3")])
    rows2, s2 = apa.run_apa(_bb(A), two, SUBJECTS, ROIS, "m", variants=["full", "offdiag"],
                            nulls=nulls)
    rows3, s3 = apa.run_apa(_bb(A), three, SUBJECTS, ROIS, "m", variants=["full", "offdiag"],
                            nulls=nulls)
    keep = s3[s3["candidate"] != "m3"].reset_index(drop=True)
    pd.testing.assert_frame_equal(s2.reset_index(drop=True), keep)
    m3 = s3[s3["candidate"] == "m3"]
    assert (m3["p_stimulus"] == 1.0).all() and not m3["passes"].any()
    # the test has teeth: a family pooled over candidates changes m1's and m2's q-values
    models = s3[s3["candidate"] != "brain"]
    pooled = models.groupby(["variant", "match"])["p_stimulus"].transform(
        lambda p: stats.false_discovery_control(p, method="bh"))
    own = models["candidate"] != "m3"
    assert not np.allclose(pooled[own], models.loc[own, "q_stimulus"])
    pd.testing.assert_frame_equal(rows2.reset_index(drop=True),
                                  rows3[rows3["candidate"] != "m3"].reset_index(drop=True))


def test_permutation_streams_are_per_candidate_and_reproducible():
    from alignpatterns.patterns.streams import stimulus_permutations

    a = stimulus_permutations(1, "m", "vgg11", 20, 30)
    np.testing.assert_array_equal(a, stimulus_permutations(1, "m", "vgg11", 20, 30))
    assert not np.array_equal(a, stimulus_permutations(1, "m", "oracle", 20, 30))
    assert not np.array_equal(a, stimulus_permutations(2, "m", "vgg11", 20, 30))
    assert (np.sort(a, axis=1) == np.arange(30)).all()
    # more draws extend the same stream: the first 20 are unchanged
    np.testing.assert_array_equal(a, stimulus_permutations(1, "m", "vgg11", 40, 30)[:20])


def test_generic_null_profiles():
    """A tensor whose columns follow target reliability: the reliability null scores high on the
    raw variant and is undefined (constant) after normalisation; the grand-mean null equals the
    reference's mean over source ROIs, computed by brute force."""
    rng = np.random.default_rng(10)
    R = 8
    rois = [f"R{i}" for i in range(R)]
    C = np.tile(np.linspace(0.3, 1.0, R), (6, 1)) + 0.01 * rng.standard_normal((6, R))
    A = 3 * C[None, :, None, :] + 0.05 * rng.standard_normal((6, 6, R, R))
    out = apa.generic_null_rows(_bb(A, rois=rois), SUBJECTS, rois, "m",
                                variants=["offdiag", "normalized"],
                                ceilings=_ceilings(C, rois=rois))
    rel = out[out["null"] == "target-reliability"].set_index(["variant", "roi"])["aps_mean"]
    assert (rel.loc["offdiag"] > 0.9).all()
    assert rel.loc["normalized"].isna().all()
    gm = out[(out["null"] == "grand-mean") & (out["variant"] == "offdiag")].set_index("roi")
    r, cols = 3, [c for c in range(R) if c != 3]
    expect = _brute_force_aps(A, r, cols, lambda s, s2, ref: ref.mean(axis=0))
    assert gm.loc["R3", "aps_mean"] == pytest.approx(expect, abs=1e-12)
    assert set(out.columns) >= {"delta", "delta_ci_low", "spec_margin", "brain_aps_mean"}


def test_roi_identification_confusion_and_joint_label_permutation():
    """The true-pattern model and the brain identify every ROI (top-1 = 1, p near 1/R!);
    a model with random profiles sits near chance with a large p."""
    A, train, test, rng = _true_pattern_model(11)
    noise = rng.standard_normal(test.shape)
    mb = pd.concat([_mb(train, test, name="true"), _mb(train, noise, name="random")])
    out = apa.roi_identification(_bb(A), mb, SUBJECTS, ROIS, "m", variants=["full"],
                                 n_draws=999, seed=1)
    top = out.groupby("candidate")[["top1_accuracy", "top1_p"]].first()
    assert top.loc["true", "top1_accuracy"] == 1.0 and top.loc["brain", "top1_accuracy"] > 0.9
    # only the identity relabelling (1 in 5! = 120) matches a perfect identification
    assert 1 / 1000 < top.loc["true", "top1_p"] < 3 / 120
    assert top.loc["random", "top1_accuracy"] < 0.6 and top.loc["random", "top1_p"] > 0.01
    # each ROI's row of the confusion matrix is a distribution over identified ROIs
    sums = out.groupby(["candidate", "roi"])["fraction"].sum()
    np.testing.assert_allclose(sums, 1.0)
    diag = out[(out["candidate"] == "true") & (out["roi"] == out["identified_roi"])]
    assert (diag["fraction"] == 1.0).all()
    assert (out["chance"] == 1 / len(ROIS)).all()


@pytest.mark.parametrize("variant", ["full", "offdiag", "normalized_offdiag", "residual"])
@pytest.mark.parametrize("match", ["pearson", "spearman"])
def test_vectorised_row_matching_equals_the_per_row_definition(variant, match):
    rng = np.random.default_rng(11)
    S, R = 4, 6
    A = rng.standard_normal((S, S, R, R))
    ceil = rng.uniform(0.3, 0.9, (S, R))
    vd = apa._variant_data(variant, A, ceil, 0.1)
    ref = rng.standard_normal((R, R))
    ref[2, 4] = np.nan  # a missing reference entry
    for prof in (rng.standard_normal(R), np.full(R, 0.7), np.r_[np.nan, np.nan, 1.0, 2, 3, 1]):
        got = vd.match_rows(prof, ref, 1, match)
        want = [vd.match(prof, ref, 1, r2, vd.entries(r2), match) for r2 in range(R)]
        np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)
    assert np.isnan(vd.match_rows(np.full(R, 0.7), ref, 1, match)).all()
