"""Noise ceilings: voxel ncsnr (BMD / GLMsingle formula) and RSA ceilings (rsatoolbox)."""

from __future__ import annotations

import warnings

import numpy as np

from ._validation import as_float_array
from .compare import METHODS, compare_rdms, rank_rdm

__all__ = ["effective_repetitions", "ncsnr", "pool_rdms", "rsa_noise_ceiling"]


def effective_repetitions(betas) -> np.ndarray:
    """Repetitions behind each voxel's trial average, for the noise ceiling's 1/n.

    Parameters
    ----------
    betas : array-like of shape (n_stimuli, n_repetitions, n_voxels)
        Single-trial responses; NaN marks a missing repetition.

    Returns
    -------
    ndarray of shape (n_voxels,)
        ``n_repetitions`` where nothing is NaN; otherwise, per voxel, the harmonic mean over
        stimuli of the non-NaN repetition counts (stimuli with none left out), so that
        σ²/n is the mean noise variance of the averages. NaN for a voxel without data.
    """
    B = as_float_array(betas, "betas", 3, allow_nan=True)
    S, R, V = B.shape
    counts = (~np.isnan(B)).sum(axis=1)  # (S, V)
    if (counts == R).all():
        return np.full(V, float(R))
    present = counts > 0
    inv = np.where(present, 1.0 / np.maximum(counts, 1), 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inv > 0, present.sum(axis=0) / inv, np.nan)


def ncsnr(betas, n=None) -> tuple[np.ndarray, np.ndarray]:
    """Noise-ceiling SNR and noise ceiling per voxel (BMD / GLMsingle example 9).

    Parameters
    ----------
    betas : array-like of shape (n_stimuli, n_repetitions, n_voxels)
        Single-trial responses; NaN marks a missing repetition.
    n : float or None
        Number of trials averaged in the data the ceiling applies to. None: the number
        of repetitions, or, when there are NaNs, per voxel the harmonic mean over
        stimuli of the non-NaN repetition counts.

    Returns
    -------
    ncsnr : ndarray of shape (n_voxels,)
        ``sqrt(max(totalvar - noisevar, 0)) / sqrt(noisevar)`` with
        ``noisevar = mean_stimuli(var_reps(betas, ddof=1))`` and
        ``totalvar = var(all stimuli x repetitions, ddof=0)`` (nan-aware; stimuli with
        fewer than 2 repetitions do not enter ``noisevar``).
    noise_ceiling : ndarray of shape (n_voxels,)
        ``100 * ncsnr**2 / (ncsnr**2 + 1 / n)``, percent explainable variance.

    Notes
    -----
    A voxel with zero noise variance gets ncsnr = inf and ceiling 100 if it has signal
    variance, else NaN for both (with a RuntimeWarning).
    """
    B = as_float_array(betas, "betas", 3, allow_nan=True)
    S, R, V = B.shape
    if R < 2:
        raise ValueError(f"betas: ncsnr needs at least 2 repetitions (axis 1), got {R}")
    valid = ~np.isnan(B)
    counts = valid.sum(axis=1)  # (S, V)
    if (counts < 2).all(axis=0).any():
        bad = int((counts < 2).all(axis=0).sum())
        raise ValueError(
            f"betas: {bad} voxel(s) have fewer than 2 non-NaN repetitions for every "
            "stimulus; their noise variance cannot be estimated (drop them first)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var_reps = np.nanvar(B, axis=1, ddof=1)  # (S, V), NaN where count < 2
        noisevar = np.nanmean(var_reps, axis=0)
        totalvar = np.nanvar(B.reshape(S * R, V), axis=0, ddof=0)
    signalvar = np.maximum(totalvar - noisevar, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.sqrt(signalvar) / np.sqrt(noisevar)
    if n is None:
        n_eff = effective_repetitions(B)
    else:
        n_eff = np.broadcast_to(np.asarray(n, dtype=np.float64), (V,))
        if np.any(n_eff <= 0):
            raise ValueError(f"n must be positive, got {n}")
    nc = np.empty(V)
    fin = np.isfinite(snr)
    nc[fin] = 100.0 * snr[fin] ** 2 / (snr[fin] ** 2 + 1.0 / n_eff[fin])
    nc[np.isposinf(snr)] = 100.0
    nc[np.isnan(snr)] = np.nan
    if np.isnan(snr).any():
        warnings.warn(
            f"ncsnr: {int(np.isnan(snr).sum())} voxel(s) are constant; ncsnr is NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    return snr, nc


def pool_rdms(rdms, method: str) -> np.ndarray:
    """Pool RDMs into the one best under ``method``, as rsatoolbox's ``pool_rdm``.

    Parameters
    ----------
    rdms : array-like of shape (n_rdms, n_pairs)
        Condensed RDMs.
    method : str
        A comparison method of :func:`~alignpatterns.measures.compare_rdms`:
        rank average for spearman / rho-a / tau-a; z-scored average (shifted to a
        positive minimum) for pearson / corr_cov; RMS-normalised average for cosine /
        cosine_cov (rsatoolbox ``inference_util.pool_rdm``, used by
        ``boot_noise_ceiling``).

    Returns
    -------
    pooled : ndarray of shape (n_pairs,)
    """
    if method not in METHODS:
        raise ValueError(f"unknown RDM comparison method {method!r}; expected one of {METHODS}")
    D = as_float_array(rdms, "rdms", 2)
    if method in ("spearman", "rho-a", "tau-a"):
        return rank_rdm(D).mean(axis=0)
    if method in ("pearson", "corr_cov"):
        Z = D - D.mean(axis=1, keepdims=True)
        Z = Z / Z.std(axis=1, keepdims=True)
        m = Z.mean(axis=0)
        return m - m.min() + (0.01 if method == "corr_cov" else 0.0)
    # cosine, cosine_cov
    return (D / np.sqrt(np.mean(D**2, axis=1, keepdims=True))).mean(axis=0)


def rsa_noise_ceiling(rdms, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-subject-out RSA noise ceiling per subject (rsatoolbox semantics).

    Parameters
    ----------
    rdms : array-like of shape (n_subjects, n_pairs)
        One condensed RDM per subject.
    method : str
        Comparison method (see :func:`~alignpatterns.measures.compare_rdms`).

    Returns
    -------
    lower : ndarray of shape (n_subjects,)
        ``compare(pool(other subjects), rdm_s)``.
    upper : ndarray of shape (n_subjects,)
        ``compare(pool(all subjects), rdm_s)``.

    Notes
    -----
    The means over subjects equal rsatoolbox's ``boot_noise_ceiling(rdms, method)``
    (method "pearson" is rsatoolbox's "corr").
    """
    D = as_float_array(rdms, "rdms", 2)
    S = D.shape[0]
    if S < 2:
        raise ValueError(f"an RSA noise ceiling needs at least 2 subjects, got {S}")
    upper = np.asarray(compare_rdms(pool_rdms(D, method), D, method), dtype=np.float64)
    lower = np.empty(S)
    for s in range(S):
        others = np.delete(D, s, axis=0)
        lower[s] = compare_rdms(pool_rdms(others, method), D[s], method)
    return lower, upper
