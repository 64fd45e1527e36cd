"""Voxel ncsnr (BMD formula) and RSA noise ceilings (rsatoolbox boot_noise_ceiling)."""

import warnings

import numpy as np
import pytest
import scipy.stats

from alignpatterns.measures.ceilings import ncsnr, pool_rdms, rsa_noise_ceiling

pytest.importorskip("rsatoolbox")
from rsatoolbox.inference import boot_noise_ceiling  # noqa: E402
from rsatoolbox.rdm import RDMs, compare  # noqa: E402
from rsatoolbox.util.inference_util import pool_rdm  # noqa: E402

RSA_NAME = {
    "spearman": "spearman",
    "pearson": "corr",
    "tau-a": "tau-a",
    "rho-a": "rho-a",
    "cosine": "cosine",
    "corr_cov": "corr_cov",
    "cosine_cov": "cosine_cov",
}


def test_ncsnr_hand_computed():
    # one voxel, 2 stimuli x 2 repetitions: values 1,3 | 5,7
    # noise var = mean(var([1,3],ddof=1), var([5,7],ddof=1)) = 2
    # total var = var([1,3,5,7], ddof=0) = 5 -> signal var 3 -> ncsnr = sqrt(3/2)
    # NC(n=2) = 100 * 1.5 / (1.5 + 0.5) = 75
    betas = np.array([[[1.0], [3.0]], [[5.0], [7.0]]])
    snr, nc = ncsnr(betas)
    assert snr.shape == (1,) and nc.shape == (1,)
    assert snr[0] == pytest.approx(np.sqrt(1.5), abs=1e-12)
    assert nc[0] == pytest.approx(75.0, abs=1e-10)
    assert ncsnr(betas, n=1)[1][0] == pytest.approx(60.0, abs=1e-10)
    # noise larger than total: signal clipped to 0
    snr0, nc0 = ncsnr(np.array([[[1.0], [5.0]], [[1.0], [5.0]]]))
    assert snr0[0] == 0.0 and nc0[0] == 0.0


def test_ncsnr_matches_bmd_notebook_formula():
    rng = np.random.default_rng(0)
    S, R, V = 30, 4, 7
    betas = rng.standard_normal((S, 1, V)) * np.linspace(0.1, 2, V) + rng.standard_normal((S, R, V))
    b = betas.T  # the notebook's layout: (V, reps, stimuli)
    noisesd = np.sqrt(np.mean(np.std(b, axis=1, ddof=1) ** 2, axis=1))
    totalvar = np.std(b.reshape(V, R * S), axis=1) ** 2
    signalvar = np.maximum(totalvar - noisesd**2, 0)
    expected = np.sqrt(signalvar) / noisesd
    snr, nc = ncsnr(betas, n=10)
    np.testing.assert_allclose(snr, expected, rtol=1e-12)
    np.testing.assert_allclose(nc, 100 * expected**2 / (expected**2 + 1 / 10), rtol=1e-12)
    np.testing.assert_allclose(ncsnr(betas)[1], 100 * expected**2 / (expected**2 + 1 / R))


def test_ncsnr_nan_repetitions():
    rng = np.random.default_rng(1)
    betas = rng.standard_normal((3, 3, 2))
    betas[1, 2, :] = np.nan  # stimulus 1 has 2 repetitions
    snr, nc = ncsnr(betas)
    noisevar = np.mean(
        [
            np.var(betas[0], axis=0, ddof=1),
            np.var(betas[1, :2], axis=0, ddof=1),
            np.var(betas[2], axis=0, ddof=1),
        ],
        axis=0,
    )
    allv = np.concatenate([betas[0], betas[1, :2], betas[2]])
    totalvar = np.var(allv, axis=0)
    expected = np.sqrt(np.maximum(totalvar - noisevar, 0)) / np.sqrt(noisevar)
    np.testing.assert_allclose(snr, expected, rtol=1e-12)
    n_eff = scipy.stats.hmean([3, 2, 3])
    assert n_eff == pytest.approx(18 / 7)
    np.testing.assert_allclose(nc, 100 * expected**2 / (expected**2 + 1 / n_eff), rtol=1e-12)


def test_ncsnr_errors_and_constant_voxel():
    with pytest.raises(ValueError, match="2 repetitions"):
        ncsnr(np.ones((4, 1, 3)))
    with pytest.raises(ValueError, match="3-D"):
        ncsnr(np.ones((4, 3)))
    betas = np.random.default_rng(2).standard_normal((5, 3, 2))
    betas[:, :, 1] = 1.0
    with pytest.warns(RuntimeWarning, match="constant"):
        snr, nc = ncsnr(betas)
    assert np.isfinite(snr[0]) and np.isnan(snr[1]) and np.isnan(nc[1])


@pytest.fixture
def subject_rdms():
    rng = np.random.default_rng(3)
    shared = np.abs(rng.standard_normal(66))
    return shared + 0.8 * np.abs(rng.standard_normal((6, 66)))


@pytest.mark.parametrize("method", list(RSA_NAME))
def test_rsa_ceiling_matches_boot_noise_ceiling(subject_rdms, method):
    lower, upper = rsa_noise_ceiling(subject_rdms, method)
    assert lower.shape == upper.shape == (6,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_lower, ref_upper = boot_noise_ceiling(RDMs(subject_rdms), RSA_NAME[method])
    assert lower.mean() == pytest.approx(ref_lower, abs=1e-10)
    assert upper.mean() == pytest.approx(ref_upper, abs=1e-10)
    assert np.all(upper >= lower - 1e-12)


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_rsa_ceiling_per_subject_and_pooling(subject_rdms, method):
    lower, _ = rsa_noise_ceiling(subject_rdms, method)
    rname = RSA_NAME[method]
    for s in range(subject_rdms.shape[0]):
        others = RDMs(np.delete(subject_rdms, s, axis=0))
        ref = compare(pool_rdm(others, rname), RDMs(subject_rdms[s][None]), rname)[0, 0]
        assert lower[s] == pytest.approx(ref, abs=1e-10)
    ref_pool = pool_rdm(RDMs(subject_rdms), rname).get_vectors()[0]
    np.testing.assert_allclose(pool_rdms(subject_rdms, method), ref_pool, atol=1e-10)


def test_rsa_ceiling_errors(subject_rdms):
    with pytest.raises(ValueError, match="2 subjects"):
        rsa_noise_ceiling(subject_rdms[:1], "spearman")
    with pytest.raises(ValueError, match="unknown"):
        rsa_noise_ceiling(subject_rdms, "kendall")
