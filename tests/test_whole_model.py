"""Whole-model APA variant: layer assignment, the model's ROI × ROI matrix and the Mantel test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from alignpatterns.measures.cka import linear_cka
from alignpatterns.patterns import whole_model as wm
from alignpatterns.patterns.alignment import LPOptions
from alignpatterns.patterns.apa import model_scores
from tests.test_apa import SUBJECTS, _bb, _mb

ROIS6 = ["A", "B", "C", "D", "E", "F"]


def _features(rng, n_layers=4, n_train=40, n_test=30, n_units=12):
    """Layers that drift away from the first one: a graded layer × layer structure."""
    base = rng.standard_normal((n_train + n_test, n_units))
    feats, Z = {}, base
    for i in range(n_layers):
        Z = Z + 0.8 * rng.standard_normal(Z.shape)
        feats[f"L{i}"] = (Z[:n_train].copy(), Z[n_train:].copy())
    return feats


def test_group_layers_is_the_argmax_of_the_mean_train_score():
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 0.5, (3, len(SUBJECTS), len(ROIS6)))
    best = [2, 0, 1, 1, 2, 0]
    for r, layer in enumerate(best):
        train[layer, :, r] += 1.0
    train[:, :, 5] = np.nan  # ROI F missing for everyone → no layer
    (ms,) = model_scores(_mb(train, train, rois=ROIS6), SUBJECTS, ROIS6)
    np.testing.assert_array_equal(wm.group_layers(ms), [2, 0, 1, 1, 2, -1])


def test_model_matrix_equals_cka_between_the_assigned_layers():
    rng = np.random.default_rng(1)
    feats = _features(rng)
    layers = list(feats)
    assigned = [0, 0, 1, 3, -1]
    M = wm.model_roi_matrix(feats, layers, assigned, "cka-linear-debiased", LPOptions())
    for r, r2 in itertools.product(range(5), repeat=2):
        i, j = assigned[r], assigned[r2]
        if i < 0 or j < 0:
            assert np.isnan(M[r, r2])
        else:
            ref = linear_cka(feats[layers[i]][1], feats[layers[j]][1], debiased=True)
            assert M[r, r2] == pytest.approx(ref, abs=1e-10)


def test_mantel_p_value_equals_exhaustive_enumeration():
    rng = np.random.default_rng(2)
    R = 5
    B = rng.standard_normal((R, R))
    M = B + 1.5 * rng.standard_normal((R, R))
    mask = ~np.eye(R, dtype=bool)
    mask[0, 1] = mask[1, 0] = False  # an excluded pair stays excluded under permutation
    perms = np.array(list(itertools.permutations(range(R))))
    r, p, null = wm.mantel(M, B, mask, perms)
    # independent brute force: permute the brain labels one permutation at a time
    x = M[mask]
    brute = []
    for pi in perms:
        Bp = B[np.ix_(pi, pi)]
        brute.append(np.corrcoef(x, Bp[mask])[0, 1])
    brute = np.array(brute)
    np.testing.assert_allclose(null, brute, atol=1e-12)
    assert r == pytest.approx(np.corrcoef(x, B[mask])[0, 1])
    assert p == pytest.approx((1 + np.sum(brute >= r - 1e-12)) / (1 + len(perms)))


@pytest.mark.parametrize("seed", range(6))
def test_mantel_counts_permutations_that_tie_with_the_observed_r(seed):
    # ROIs 0, 1 and 4, 5 share a layer: swapping within them (and the identity) leaves the
    # model's matrix, hence r, unchanged; rounding must not drop those draws from p
    rng = np.random.default_rng(seed)
    layers = np.array([0, 0, 1, 2, 3, 3])
    G = rng.uniform(0, 1, (4, 4))
    M = ((G + G.T) / 2)[np.ix_(layers, layers)]
    B = rng.standard_normal((6, 6))
    mask = ~np.eye(6, dtype=bool) & (layers[:, None] != layers[None, :])
    perms = np.array(list(itertools.permutations(range(6))))
    r, p, null = wm.mantel(M, B, mask, perms)
    x = M[mask]
    brute = np.array([np.corrcoef(x, B[np.ix_(pi, pi)][mask])[0, 1] for pi in perms])
    # the four within-layer swaps are exact ties of r; count them by construction, not by value
    ties = [np.array_equal(M[np.ix_(pi, pi)], M) for pi in perms]
    assert sum(ties) == 4
    above = np.sum(brute > r + 1e-9)
    assert np.sum(np.abs(brute - r) <= 1e-9) == sum(ties)
    assert p == (1 + above + sum(ties)) / (1 + len(perms))


def test_mantel_detects_shared_structure_and_is_calibrated_without_it():
    rng = np.random.default_rng(3)
    R = 8
    mask = ~np.eye(R, dtype=bool)
    perms = np.stack([rng.permutation(R) for _ in range(199)])
    B = rng.standard_normal((R, R))
    _, p_true, _ = wm.mantel(B + 0.3 * rng.standard_normal((R, R)), B, mask, perms)
    assert p_true == pytest.approx(1 / 200)
    # no shared structure: the false-positive rate at 0.05 stays near 0.05
    ps = [wm.mantel(rng.standard_normal((R, R)), rng.standard_normal((R, R)), mask, perms)[1]
          for _ in range(300)]
    assert 0.01 <= np.mean(np.array(ps) <= 0.05) <= 0.10


def test_mantel_with_too_few_pairs_is_nan():
    M = np.arange(9.0).reshape(3, 3)
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 1] = mask[1, 0] = True
    r, p, null = wm.mantel(M, M, mask, np.array([[0, 1, 2], [2, 1, 0]]))
    assert np.isnan(r) and np.isnan(p) and np.isnan(null).all()


def _whole_model_case(seed, brain_from_model=True, noise=0.02):
    """Model with 6 layers each assigned to its own ROI; the brain tensor reproduces the model's
    CKA structure (plus noise) or is unrelated."""
    rng = np.random.default_rng(seed)
    feats = _features(rng, n_layers=6)
    layers = list(feats)
    train = rng.uniform(0, 0.2, (6, len(SUBJECTS), len(ROIS6)))
    for r in range(6):
        train[r, :, r] += 1.0  # layer r is best for ROI r
    M = wm.model_roi_matrix(feats, layers, list(range(6)), "cka-linear-debiased", LPOptions())
    P = M if brain_from_model else rng.permutation(M.ravel()).reshape(M.shape)
    S = len(SUBJECTS)
    A = P[None, None] + noise * rng.standard_normal((S, S, 6, 6))
    bb = _bb(A, rois=ROIS6)
    (ms,) = model_scores(_mb(train, train, rois=ROIS6), SUBJECTS, ROIS6)
    return feats, ms, bb


def test_whole_model_recovers_a_model_whose_structure_the_brain_shares():
    feats, ms, bb = _whole_model_case(4)
    df = wm.whole_model_rows(feats, ms, bb, SUBJECTS, ROIS6, "cka-linear-debiased", LPOptions(),
                             ["pearson", "spearman"], 999, seed=7)
    assert list(df["match"]) == ["pearson", "spearman"]
    row = df.iloc[0]
    assert row["n_pairs"] == 30 and row["n_pairs_excluded"] == 0
    assert row["r"] > 0.95 and row["p_mantel"] < 0.01
    # with tiny noise the model matches the leave-one-subject-out references as well as a subject
    assert abs(row["delta"]) < 0.05
    assert row["layers"].startswith("A:L0;B:L1")


def test_whole_model_does_not_pass_an_unrelated_brain():
    feats, ms, bb = _whole_model_case(5, brain_from_model=False)
    row = wm.whole_model_rows(feats, ms, bb, SUBJECTS, ROIS6, "cka-linear-debiased",
                              LPOptions(), ["pearson"], 999, seed=7).iloc[0]
    assert row["p_mantel"] > 0.05
    assert row["brain_r"] > 0.9 and row["delta"] < -0.5


def test_same_layer_pairs_are_excluded_and_counted():
    feats, ms, bb = _whole_model_case(6)
    ms.train[1, :, 0] += 10.0  # ROIs A and B now both select layer L1
    row = wm.whole_model_rows(feats, ms, bb, SUBJECTS, ROIS6, "cka-linear-debiased",
                              LPOptions(), ["pearson"], 99, seed=7).iloc[0]
    assert row["n_pairs_excluded"] == 2 and row["n_pairs"] == 28
    assert row["layers"].startswith("A:L1;B:L1")


def test_permutations_are_reproducible_per_candidate():
    feats, ms, bb = _whole_model_case(8, noise=0.3)
    a = wm.whole_model_rows(feats, ms, bb, SUBJECTS, ROIS6, "cka-linear-debiased", LPOptions(),
                            ["pearson"], 199, seed=7)
    b = wm.whole_model_rows(feats, ms, bb, SUBJECTS, ROIS6, "cka-linear-debiased", LPOptions(),
                            ["pearson"], 199, seed=7)
    assert a.equals(b)


def test_features_missing_an_assigned_layer_name_it():
    feats = _features(np.random.default_rng(9), n_layers=2)
    with pytest.raises(ValueError, match=r"features lack the layers \['L3'\]"):
        wm.model_roi_matrix(feats, ["L0", "L1", "L2", "L3"], [0, 3], "cka-linear-debiased",
                            LPOptions())
