"""Resampling statistics: stimulus bootstrap pinned to rsatoolbox, permutation nulls, FDR."""

import warnings

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import squareform

from alignpatterns.measures import (
    bootstrap_compare_rdms,
    bootstrap_indices,
    bootstrap_subjects,
    compare_rdms,
    fdr_bh,
    percentile_interval,
    permutation_compare_rdms,
    permutation_indices,
    permutation_p_value,
    permute_rdm,
)
from alignpatterns.measures.compare import METHODS

pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import eval_bootstrap_pattern  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs, compare  # noqa: E402

RSA_NAME = {
    "spearman": "spearman",
    "pearson": "corr",
    "rho-a": "rho-a",
    "cosine": "cosine",
    "tau-a": "tau-a",
}
N_STIM = 12
N_PAIRS = N_STIM * (N_STIM - 1) // 2
CATS = np.repeat([0, 1, 2], 4)


@pytest.fixture
def continuous():
    rng = np.random.default_rng(0)
    a = np.abs(rng.standard_normal(N_PAIRS)) + 0.1
    B = np.abs(rng.standard_normal((3, N_PAIRS)) + 0.5 * a)
    return a, B


@pytest.fixture
def categorical():
    """A 3-level categorical model RDM (heavily tied) and tied data RDMs."""
    D = (CATS[:, None] != CATS[None, :]).astype(float)
    D[np.ix_(CATS == 2, CATS != 2)] = 2.0
    D[np.ix_(CATS != 2, CATS == 2)] = 2.0
    a = squareform(D, checks=False)
    rng = np.random.default_rng(1)
    B = np.round(a + rng.standard_normal((3, N_PAIRS)), 0)
    return a, B


def _rsa_boot(a, B, method, indices):
    """rsatoolbox per draw: subsample_pattern on both RDMs, then compare."""
    A, BB = RDMs(a[None, :]), RDMs(np.atleast_2d(B))
    return np.array(
        [
            compare(
                A.subsample_pattern("index", idx),
                BB.subsample_pattern("index", idx),
                RSA_NAME[method],
            )[0]
            for idx in indices
        ]
    )


# ------------------------------------------------------------------ stimulus bootstrap


@pytest.mark.parametrize("method", list(RSA_NAME))
@pytest.mark.parametrize("fixture", ["continuous", "categorical"])
def test_bootstrap_matches_rsatoolbox(method, fixture, request):
    a, B = request.getfixturevalue(fixture)
    idx = bootstrap_indices(N_STIM, 40, rng=5)
    assert (np.array([len(np.unique(r)) for r in idx]) >= 3).all()
    out = bootstrap_compare_rdms(a, B, method, idx)
    assert out.shape == (40, 3)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _rsa_boot(a, B, method, idx), rtol=0, atol=1e-10)
    single = bootstrap_compare_rdms(a, B[1], method, idx)
    assert single.shape == (40,)
    np.testing.assert_allclose(single, out[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(bootstrap_compare_rdms(a, B, method, idx, n_jobs=2), out)


def test_bootstrap_without_resampling_is_compare_rdms(categorical):
    a, B = categorical
    ident = np.arange(N_STIM)[None, :]
    for method in RSA_NAME:
        np.testing.assert_allclose(
            bootstrap_compare_rdms(a, B, method, ident)[0],
            compare_rdms(a, B, method),
            rtol=0,
            atol=1e-12,
        )


@pytest.mark.parametrize("method", ["spearman", "rho-a", "pearson"])
def test_bootstrap_draws_of_other_sizes(continuous, method):
    """Rows need not have n_stimuli entries (m-out-of-n); order within a row is irrelevant."""
    a, B = continuous
    rng = np.random.default_rng(2)
    idx = rng.integers(0, N_STIM, size=(15, 7))
    out = bootstrap_compare_rdms(a, B, method, idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ok = np.array([len(np.unique(r)) >= 3 for r in idx])
        np.testing.assert_allclose(out[ok], _rsa_boot(a, B, method, idx[ok]), atol=1e-10)
    shuffled = rng.permuted(idx, axis=1)
    np.testing.assert_array_equal(bootstrap_compare_rdms(a, B, method, shuffled), out)


def test_bootstrap_equals_eval_bootstrap_pattern():
    """Few stimuli: draws with < 3 distinct stimuli are NaN, as in eval_bootstrap_pattern."""
    rng = np.random.default_rng(3)
    n, n_draws = 5, 200
    a = rng.random(n * (n - 1) // 2)
    b = a + rng.random(a.size)
    np.random.seed(11)  # noqa: NPY002 (rsatoolbox draws with the legacy global generator)
    res = eval_bootstrap_pattern(
        ModelFixed("m", RDMs(a[None, :])),
        RDMs(b[None, :]),
        method="spearman",
        N=n_draws,
        boot_noise_ceil=False,
    )
    np.random.seed(11)  # noqa: NPY002
    idx = np.array([np.random.randint(0, n, size=n) for _ in range(n_draws)])  # noqa: NPY002
    with pytest.warns(RuntimeWarning, match="fewer than 3 distinct"):
        out = bootstrap_compare_rdms(a, b, "spearman", idx)
    ref = np.asarray(res.evaluations).reshape(n_draws)
    assert np.isnan(out).sum() > 5
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_bootstrap_constant_resample(categorical):
    """Stimuli of one category only: the resampled model RDM is all zeros (constant)."""
    a, B = categorical
    idx = np.array([[0, 1, 2, 3, 0, 1, 2, 3, 3, 3, 1, 0]])
    for method in ("spearman", "pearson", "cosine"):
        with pytest.warns(RuntimeWarning, match="constant or zero"):
            out = bootstrap_compare_rdms(a, B, method, idx)
        assert np.isnan(out).all()
        # rsatoolbox returns 0 here instead of NaN
        np.testing.assert_array_equal(_rsa_boot(a, B, method, idx), 0.0)
    for method in ("rho-a", "tau-a"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = bootstrap_compare_rdms(a, B, method, idx)
        np.testing.assert_array_equal(out, 0.0)


def test_bootstrap_errors(continuous):
    a, B = continuous
    idx = bootstrap_indices(N_STIM, 3, rng=0)
    with pytest.raises(ValueError, match="same number of RDM entries"):
        bootstrap_compare_rdms(a, B[:, :-1], "spearman", idx)
    with pytest.raises(ValueError, match="unknown RDM comparison method"):
        bootstrap_compare_rdms(a, B, "kendall", idx)
    with pytest.raises(ValueError, match="not supported by bootstrap"):
        bootstrap_compare_rdms(a, B, "corr_cov", idx)
    with pytest.raises(ValueError, match=r"must lie in \[0, 11\]"):
        bootstrap_compare_rdms(a, B, "spearman", idx + 1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 11\]"):
        bootstrap_compare_rdms(a, B, "spearman", idx - 1)
    with pytest.raises(ValueError, match="2-D"):
        bootstrap_compare_rdms(a, B, "spearman", idx[0])
    with pytest.raises(ValueError, match="integer"):
        bootstrap_compare_rdms(a, B, "spearman", idx.astype(float))
    with pytest.raises(ValueError, match="at least 3 stimuli"):
        bootstrap_compare_rdms([1.0], [2.0], "spearman", [[0, 1]])
    with pytest.raises(ValueError, match="condensed RDM"):
        bootstrap_compare_rdms(a[:-1], B[:, :-1], "spearman", idx)
    with pytest.raises(ValueError, match="n_jobs"):
        bootstrap_compare_rdms(a, B, "spearman", idx, n_jobs=0)


def test_index_draws():
    idx = bootstrap_indices(10, 500, rng=1)
    assert idx.shape == (500, 10) and idx.dtype == np.int64
    assert idx.min() == 0 and idx.max() == 9
    np.testing.assert_array_equal(idx, bootstrap_indices(10, 500, np.random.default_rng(1)))
    assert not np.array_equal(idx, bootstrap_indices(10, 500, rng=2))
    subj = bootstrap_subjects(6, 4, rng=0)
    assert subj.shape == (4, 6) and subj.max() < 6
    perms = permutation_indices(8, 30, rng=0)
    assert perms.shape == (30, 8)
    np.testing.assert_array_equal(np.sort(perms, axis=1), np.tile(np.arange(8), (30, 1)))
    assert len({tuple(p) for p in perms}) > 25
    with pytest.raises(ValueError, match="n_draws"):
        bootstrap_indices(10, 0)
    with pytest.raises(ValueError, match="n_subjects"):
        bootstrap_subjects(1, 10)
    with pytest.raises(ValueError, match="int"):
        bootstrap_indices(10.0, 3)


def test_percentile_interval():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    lo, hi = percentile_interval(x, 0.9)
    np.testing.assert_allclose(lo, np.quantile(x, 0.05, axis=0))
    np.testing.assert_allclose(hi, np.quantile(x, 0.95, axis=0))
    x[::7, 1] = np.nan
    x[:, 2] = np.nan
    iv = percentile_interval(x)
    assert iv.shape == (2, 3)
    np.testing.assert_allclose(iv[:, 1], np.quantile(x[~np.isnan(x[:, 1]), 1], [0.025, 0.975]))
    assert np.isnan(iv[:, 2]).all()
    with pytest.raises(ValueError, match="level"):
        percentile_interval(x, 95)


# ------------------------------------------------------------------------ permutation


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fixture", ["continuous", "categorical"])
def test_permutation_null_equals_naive_loop(method, fixture, request):
    a, B = request.getfixturevalue(fixture)
    perms = permutation_indices(N_STIM, 25, rng=4)
    null = permutation_compare_rdms(a, B, method, perms=perms)
    naive = np.array([compare_rdms(permute_rdm(a, p), B, method) for p in perms])
    assert null.shape == (25, 3)
    np.testing.assert_allclose(null, naive, rtol=0, atol=1e-12)
    single = permutation_compare_rdms(a, B[2], method, perms=perms)
    assert single.shape == (25,)
    np.testing.assert_allclose(single, naive[:, 2], rtol=0, atol=1e-12)


def test_permutation_rng_and_errors(continuous):
    a, B = continuous
    n1 = permutation_compare_rdms(a, B, "spearman", n_perm=30, rng=9)
    n2 = permutation_compare_rdms(a, B, "spearman", perms=permutation_indices(N_STIM, 30, 9))
    np.testing.assert_array_equal(n1, n2)
    assert n1.shape == (30, 3)
    with pytest.raises(ValueError, match="permutation of range"):
        permutation_compare_rdms(a, B, "spearman", perms=np.zeros((2, N_STIM), dtype=int))
    with pytest.raises(ValueError, match="perms: expected shape"):
        permutation_compare_rdms(a, B, "spearman", perms=np.arange(N_STIM))
    with pytest.raises(ValueError, match="unknown RDM comparison method"):
        permutation_compare_rdms(a, B, "kendall")
    with pytest.raises(ValueError, match="same number of RDM entries"):
        permutation_compare_rdms(a, B[:, 1:], "spearman")
    with pytest.warns(RuntimeWarning, match="constant"):
        null = permutation_compare_rdms(a, np.ones_like(a), "pearson", n_perm=3, rng=0)
    assert np.isnan(null).all()


def test_permutation_p_value():
    null = np.array([0.1, 0.2, 0.25, 0.3, np.nan])
    # (1 + #(null >= 0.25)) / (1 + 4 finite draws)
    assert permutation_p_value(0.25, null) == pytest.approx(3 / 5)
    assert permutation_p_value(1.0, null) == pytest.approx(1 / 5)
    assert permutation_p_value(-1.0, null) == pytest.approx(1.0)
    assert np.isnan(permutation_p_value(np.nan, null))
    N = np.column_stack([null, null[::-1]])
    p = permutation_p_value([0.25, 0.05], N)
    np.testing.assert_allclose(p, [3 / 5, 5 / 5])
    with pytest.raises(ValueError, match="column"):
        permutation_p_value([0.1, 0.2, 0.3], N)


def test_permutation_p_value_is_uniform_under_null(continuous):
    """Observed drawn from the null: P(p <= alpha) <= alpha (one-sided, valid)."""
    a, B = continuous
    null = permutation_compare_rdms(a, B[0], "spearman", n_perm=999, rng=1)
    p = np.array([permutation_p_value(x, np.delete(null, i)) for i, x in enumerate(null)])
    assert p.min() == pytest.approx(1 / 999)
    assert abs(np.mean(p <= 0.1) - 0.1) < 0.02


# ------------------------------------------------------------------------------- FDR


def test_fdr_bh_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=10), [0.03, 0.03, 0, 1]])
    np.testing.assert_allclose(
        fdr_bh(p), scipy.stats.false_discovery_control(p, method="bh"), rtol=1e-14
    )
    P = p[:54].reshape(6, 9)
    np.testing.assert_allclose(
        fdr_bh(P).ravel(), scipy.stats.false_discovery_control(P.ravel(), method="bh")
    )


def test_fdr_bh_q_never_below_p():
    """The largest of m p-values gets q = p·m/m, which rounds 1 ulp below p for some p (here
    924/1001, a permutation p-value with 1000 draws); q must still be ≥ p."""
    p = np.append(np.linspace(0.001, 0.9, 99), 924 / 1001)
    assert p[-1] * 100 / 100 < p[-1]  # the rounding this guards against
    q = fdr_bh(p)
    assert (q >= p).all()
    assert q[-1] == p[-1]


def test_fdr_bh_nan_aware():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, size=30)
    p[[3, 8, 20]] = np.nan
    q = fdr_bh(p)
    assert np.isnan(q[[3, 8, 20]]).all()
    ok = ~np.isnan(p)
    np.testing.assert_allclose(q[ok], scipy.stats.false_discovery_control(p[ok], method="bh"))
    assert np.isnan(fdr_bh([np.nan, np.nan])).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fdr_bh([0.1, 1.2])
    with pytest.raises(ValueError, match="infinite"):
        fdr_bh([0.1, np.inf])
