"""Representational dissimilarity matrices (RDMs) in condensed form.

All RDMs are returned as the condensed upper triangle, in the order of
:func:`scipy.spatial.distance.pdist` (row-major over ``i < j``). Every metric is
computed from Gram matrices, never with per-pair Python loops.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array

__all__ = ["METRICS", "rdm", "n_stimuli_from_pairs", "permute_rdm"]

METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean", "crossnobis")


def rdm(X, metric: str) -> np.ndarray:
    """Compute a condensed RDM.

    Parameters
    ----------
    X : array-like of shape (n_stimuli, n_units), or (n_stimuli, n_repetitions, n_units)
        for ``metric="crossnobis"``.
        Response patterns, one row per stimulus.
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean", "crossnobis"}
        - ``correlation``: 1 - Pearson correlation across units (= pdist "correlation").
        - ``cosine``: 1 - cosine similarity (= pdist "cosine").
        - ``euclidean``: Euclidean distance (= pdist "euclidean").
        - ``sqeuclidean``: squared Euclidean distance, unnormalised (= pdist
          "sqeuclidean"; rsatoolbox's "euclidean" is this divided by ``n_units``).
        - ``crossnobis``: cross-validated squared Euclidean distance over repetitions,
          divided by ``n_units``; equals rsatoolbox ``calc_rdm_crossnobis`` with
          ``cv_descriptor`` = repetition index and identity noise precision, i.e.
          ``d_ij = sum_{k != l} (x_ik - x_jk) . (x_il - x_jl) / (R (R - 1) P)``.

    Returns
    -------
    d : ndarray of shape (n_stimuli * (n_stimuli - 1) / 2,)
        Condensed RDM (float64).

    Raises
    ------
    ValueError
        Unknown metric, wrong number of dimensions, fewer than 3 stimuli, non-finite
        values, or a constant / all-zero pattern for ``correlation`` / ``cosine``.

    Notes
    -----
    Missing repetitions (crossnobis only): a repetition of a stimulus is treated as
    missing when any of its units is NaN. Each pair ``(i, j)`` then uses only the
    repetitions present for both stimuli, so its value equals rsatoolbox's crossnobis
    distance computed on those two stimuli and their shared repetitions. A pair
    sharing fewer than 2 repetitions raises ValueError. Infinite values always raise.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown RDM metric {metric!r}; expected one of {METRICS}")
    if metric == "crossnobis":
        X = as_float_array(X, "X", 3, allow_nan=True)
        _check_n_stimuli(X.shape[0])
        return _crossnobis(X)
    X = as_float_array(X, "X", 2)
    _check_n_stimuli(X.shape[0])
    if X.shape[1] < 1:
        raise ValueError("X: needs at least one unit (column)")
    iu = np.triu_indices(X.shape[0], k=1)
    if metric in ("correlation", "cosine"):
        Z = X - X.mean(axis=1, keepdims=True) if metric == "correlation" else X
        norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
        bad = np.flatnonzero(norms == 0)
        if bad.size:
            what = "constant across units" if metric == "correlation" else "all zeros"
            raise ValueError(
                f"X: {bad.size} stimulus pattern(s) are {what} (first index {bad[0]}); "
                f"the {metric} distance is undefined for them"
            )
        Z = Z / norms[:, None]
        G = Z @ Z.T
        return 1.0 - G[iu]
    # euclidean / sqeuclidean: centre columns first (translation invariant, better
    # conditioned Gram matrix)
    Xc = X - X.mean(axis=0, keepdims=True)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    G = Xc @ Xc.T
    d2 = sq[iu[0]] + sq[iu[1]] - 2.0 * G[iu]
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2) if metric == "euclidean" else d2


def _check_n_stimuli(n: int) -> None:
    if n < 3:
        raise ValueError(f"X: an RDM needs at least 3 stimuli (rows), got {n}")


def _crossnobis(X: np.ndarray) -> np.ndarray:
    """Crossnobis RDM of X (n_stimuli, n_repetitions, n_units), NaN repetitions allowed."""
    n, R, P = X.shape
    if P < 1:
        raise ValueError("X: needs at least one unit")
    if R < 2:
        raise ValueError(f"X: crossnobis needs at least 2 repetitions, got {R}")
    valid = ~np.isnan(X).any(axis=2)  # (n, R): repetition present
    # centre by the grand mean over present repetitions (distances are invariant)
    Xz = np.where(valid[:, :, None], X, 0.0)
    n_valid = valid.sum()
    if n_valid == 0:
        raise ValueError("X: every repetition contains NaN")
    Xz = Xz - (Xz.sum(axis=(0, 1)) / n_valid)[None, None, :]
    Xz[~valid] = 0.0
    patterns, labels = np.unique(valid, axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    D = np.empty((n, n))
    groups = [np.flatnonzero(labels == g) for g in range(len(patterns))]
    for ga in range(len(patterns)):
        for gb in range(ga, len(patterns)):
            shared = patterns[ga] & patterns[gb]
            r = int(shared.sum())
            ia, ib = groups[ga], groups[gb]
            if r < 2:
                if ga == gb and ia.size == 1:
                    continue  # a lone stimulus: only its diagonal, not needed
                raise ValueError(
                    f"X: stimuli {ia[0]} and {ib[0] if ga != gb else ia[-1]} share {r} "
                    "non-NaN repetition(s); crossnobis needs at least 2 shared repetitions "
                    "per pair (drop the stimulus or impute)"
                )
            XA = Xz[ia][:, shared, :]
            XB = Xz[ib][:, shared, :]
            SA, SB = XA.sum(axis=1), XB.sum(axis=1)
            # sum over k != l of x_ik . x_il  (per stimulus)
            selfA = np.einsum("ij,ij->i", SA, SA) - np.einsum("ikp,ikp->i", XA, XA)
            selfB = np.einsum("ij,ij->i", SB, SB) - np.einsum("ikp,ikp->i", XB, XB)
            # sum over k != l of x_ik . x_jl
            cross = SA @ SB.T - XA.reshape(len(ia), -1) @ XB.reshape(len(ib), -1).T
            block = (selfA[:, None] + selfB[None, :] - 2.0 * cross) / (r * (r - 1) * P)
            D[np.ix_(ia, ib)] = block
            D[np.ix_(ib, ia)] = block.T
    return D[np.triu_indices(n, k=1)]


def n_stimuli_from_pairs(n_pairs: int) -> int:
    """Number of stimuli of a condensed RDM with ``n_pairs`` entries.

    Parameters
    ----------
    n_pairs : int
        Length of the condensed vector.

    Returns
    -------
    n : int
        ``n`` such that ``n * (n - 1) / 2 == n_pairs``.
    """
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not the length of a condensed RDM (n*(n-1)/2)")
    return n


def permute_rdm(d, perm) -> np.ndarray:
    """Relabel the stimuli of condensed RDM(s).

    Parameters
    ----------
    d : array-like of shape (n_pairs,) or (n_rdms, n_pairs)
        Condensed RDM(s) (or their ranks: ranks permute with the entries).
    perm : array-like of int, shape (n_stimuli,)
        New stimulus ``i`` is old stimulus ``perm[i]``.

    Returns
    -------
    out : ndarray, same shape as ``d``
        Condensed RDM of ``D[perm][:, perm]``.
    """
    d = np.asarray(d)
    n = n_stimuli_from_pairs(d.shape[-1])
    perm = np.asarray(perm)
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(f"perm must be a permutation of range({n})")
    i, j = np.triu_indices(n, k=1)
    a, b = perm[i], perm[j]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # condensed index of (lo, hi), lo < hi
    idx = n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)
    return d[..., idx]
