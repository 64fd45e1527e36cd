"""RDM comparisons pinned against rsatoolbox and explicit formulas."""

import itertools

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import squareform

from alignpatterns.measures import compare_rdms, permute_rdm, rank_rdm

pytest.importorskip("rsatoolbox")
from rsatoolbox.rdm import RDMs, compare  # noqa: E402

RSA_NAME = {
    "spearman": "spearman",
    "pearson": "corr",
    "tau-a": "tau-a",
    "rho-a": "rho-a",
    "cosine": "cosine",
    "corr_cov": "corr_cov",
    "cosine_cov": "cosine_cov",
}
N_STIM = 12
N_PAIRS = N_STIM * (N_STIM - 1) // 2


@pytest.fixture
def continuous():
    rng = np.random.default_rng(0)
    a = np.abs(rng.standard_normal(N_PAIRS)) + 0.1
    B = np.abs(rng.standard_normal((4, N_PAIRS)) + 0.5 * a)
    return a, B


@pytest.fixture
def categorical():
    """A 3-level categorical model RDM (heavily tied) and tied data RDMs."""
    cats = np.repeat([0, 1, 2], 4)
    D = (cats[:, None] != cats[None, :]).astype(float)
    D[np.ix_(cats == 2, cats != 2)] = 2.0
    D[np.ix_(cats != 2, cats == 2)] = 2.0
    a = squareform(D, checks=False)
    rng = np.random.default_rng(1)
    B = np.round(a + rng.standard_normal((3, N_PAIRS)), 0)  # data with ties too
    return a, B


def _rsa(a, B, method):
    return compare(RDMs(a[None, :]), RDMs(B), RSA_NAME[method])[0]


@pytest.mark.parametrize("method", list(RSA_NAME))
@pytest.mark.parametrize("fixture", ["continuous", "categorical"])
def test_matches_rsatoolbox(method, fixture, request):
    a, B = request.getfixturevalue(fixture)
    out = compare_rdms(a, B, method)
    assert out.shape == (B.shape[0],)
    np.testing.assert_allclose(out, _rsa(a, B, method), atol=1e-10)
    single = compare_rdms(a, B[1], method)
    assert isinstance(single, float)
    np.testing.assert_allclose(single, out[1], atol=1e-12)


def test_tied_fixture_separates_variants(categorical):
    a, B = categorical
    b = B[0]
    assert abs(compare_rdms(a, b, "rho-a") - compare_rdms(a, b, "spearman")) > 1e-3
    tau_b = scipy.stats.kendalltau(a, b).statistic
    assert abs(compare_rdms(a, b, "tau-a") - tau_b) > 1e-3


def test_tau_a_brute_force(categorical, continuous):
    for a, B in (categorical, continuous):
        b = B[0]
        s = 0
        for i, j in itertools.combinations(range(a.size), 2):
            s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
        n = a.size
        assert compare_rdms(a, b, "tau-a") == pytest.approx(s / (n * (n - 1) / 2), abs=1e-12)


def test_rho_a_formula(categorical):
    a, B = categorical
    ra, rb = scipy.stats.rankdata(a), scipy.stats.rankdata(B[2])
    n = a.size
    expected = 12 * np.sum((ra - ra.mean()) * (rb - rb.mean())) / (n**3 - n)
    assert compare_rdms(a, B[2], "rho-a") == pytest.approx(expected, abs=1e-12)


def test_cov_weighted_is_frobenius_cosine_of_centred_matrices(continuous):
    a, B = continuous
    H = np.eye(N_STIM) - 1.0 / N_STIM

    def g(v):
        return H @ (-0.5 * squareform(v)) @ H

    Ga, Gb = g(a), g(B[0])
    expected = np.sum(Ga * Gb) / np.sqrt(np.sum(Ga * Ga) * np.sum(Gb * Gb))
    assert compare_rdms(a, B[0], "cosine_cov") == pytest.approx(expected, abs=1e-12)


def test_rank_rdm_matches_scipy(categorical, continuous):
    for a, B in (categorical, continuous):
        np.testing.assert_array_equal(rank_rdm(B), scipy.stats.rankdata(B, axis=1))
        np.testing.assert_array_equal(rank_rdm(a), scipy.stats.rankdata(a))
    assert rank_rdm(np.ones(5)).tolist() == [3.0] * 5


@pytest.mark.parametrize("method", ["spearman", "rho-a"])
def test_ranked_reuse_for_permutations(continuous, method):
    a, B = continuous
    ra, rB = rank_rdm(a), rank_rdm(B)
    np.testing.assert_allclose(
        compare_rdms(ra, rB, method, ranked=True), compare_rdms(a, B, method), atol=1e-14
    )
    perm = np.random.default_rng(7).permutation(N_STIM)
    np.testing.assert_allclose(
        compare_rdms(permute_rdm(ra, perm), rB, method, ranked=True),
        compare_rdms(permute_rdm(a, perm), B, method),
        atol=1e-14,
    )


def test_constant_rdm_gives_nan_with_warning(continuous):
    a, _ = continuous
    const = np.ones_like(a)
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(compare_rdms(a, const, "spearman"))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(compare_rdms(const, a, "pearson"))
    assert compare_rdms(a, const, "tau-a") == 0.0
    assert compare_rdms(a, const, "rho-a") == 0.0


def test_errors(continuous):
    a, B = continuous
    with pytest.raises(ValueError, match="same number"):
        compare_rdms(a, B[:, :-1], "spearman")
    with pytest.raises(ValueError, match="unknown"):
        compare_rdms(a, B, "kendall")
    with pytest.raises(ValueError, match="ranked"):
        compare_rdms(a, B, "pearson", ranked=True)
    bad = a.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        compare_rdms(bad, B, "spearman")
    with pytest.raises(ValueError, match="1-D"):
        compare_rdms(B, a, "spearman")
