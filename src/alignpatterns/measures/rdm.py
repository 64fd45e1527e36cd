"""Representational dissimilarity matrices (RDMs) in condensed form.

All RDMs are returned as the condensed upper triangle, in the order of
:func:`scipy.spatial.distance.pdist` (row-major over ``i < j``). Every metric is
computed from Gram matrices, never with per-pair Python loops.
"""

from __future__ import annotations

import numpy as np

from ._backend import get_backend
from ._chunks import CHUNK_ELEMENTS, as_numeric, chunk_of, gram_chunked

__all__ = ["METRICS", "rdm", "n_stimuli_from_pairs", "permute_rdm"]

METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean", "crossnobis")


def rdm(X, metric: str, *, backend: str = "auto", chunk_size: int | None = None) -> np.ndarray:
    """Compute a condensed RDM.

    Parameters
    ----------
    X : array-like of shape (n_stimuli, n_units), or (n_stimuli, n_repetitions, n_units)
        for ``metric="crossnobis"``.
        Response patterns, one row per stimulus. Any float dtype; a numpy memmap is
        read chunk by chunk.
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
    backend : {"auto", "numpy", "torch", "torch_cpu", "torch_cuda"}, keyword-only
        Where the products run ("auto": CUDA if visible, else numpy). float64 always.
    chunk_size : int or None, keyword-only
        Units processed at once. The RDM is accumulated from Gram matrices of unit
        chunks, so besides ``X`` itself at most ``n_stimuli x chunk_size`` (times
        ``n_repetitions`` for crossnobis) plus ``n_stimuli x n_stimuli`` float64
        values are held. None: chunks of about 256 MiB.

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
    X = as_numeric(X, 3 if metric == "crossnobis" else 2)
    _check_n_stimuli(X.shape[0])
    if X.shape[-1] < 1:
        raise ValueError("X: needs at least one unit")
    ops = get_backend(backend)
    per_row = int(np.prod(X.shape[:-1]))
    chunk = chunk_size or max(1, CHUNK_ELEMENTS // per_row)
    if chunk < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if metric == "crossnobis":
        return ops.to_numpy(_crossnobis(X, ops, chunk))
    n = X.shape[0]
    iu, ju = ops.triu_pairs(n)
    center = "rows" if metric == "correlation" else None if metric == "cosine" else "cols"
    G = gram_chunked(X, ops, chunk, center)
    sq = G.diagonal()
    if metric in ("correlation", "cosine"):
        norms = ops.sqrt(ops.clip_min(sq, 0.0))
        bad = np.flatnonzero(ops.to_numpy(norms) == 0)
        if bad.size:
            what = "constant across units" if metric == "correlation" else "all zeros"
            raise ValueError(
                f"X: {bad.size} stimulus pattern(s) are {what} (first index {bad[0]}); "
                f"the {metric} distance is undefined for them"
            )
        return ops.to_numpy(1.0 - G[iu, ju] / (norms[iu] * norms[ju]))
    d2 = ops.clip_min(sq[iu] + sq[ju] - 2.0 * G[iu, ju], 0.0)
    return ops.to_numpy(ops.sqrt(d2) if metric == "euclidean" else d2)


def _check_n_stimuli(n: int) -> None:
    if n < 3:
        raise ValueError(f"X: an RDM needs at least 3 stimuli (rows), got {n}")


def _crossnobis(X, ops, chunk: int):
    """Crossnobis RDM of X (n_stimuli, n_repetitions, n_units), NaN repetitions allowed."""
    n, R, P = X.shape
    if R < 2:
        raise ValueError(f"X: crossnobis needs at least 2 repetitions, got {R}")
    # a repetition is missing when any unit is NaN
    valid = np.ones((n, R), dtype=bool)
    for start in range(0, P, chunk):
        valid &= ~np.isnan(np.asarray(X[..., start : start + chunk])).any(axis=2)
    if not valid.any():
        raise ValueError("X: every repetition contains NaN")
    patterns, labels = np.unique(valid, axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    groups = [np.flatnonzero(labels == g) for g in range(len(patterns))]
    blocks = []  # (group a, group b, shared repetitions)
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
            idx = (ops.index(ia), ops.index(ib), ops.index(np.flatnonzero(shared)))
            blocks.append((*idx, r, ga != gb))
    valid_b = ops.asarray(valid)
    n_valid = float(valid.sum())
    D = ops.zeros((n, n))
    for start in range(0, P, chunk):
        C = chunk_of(X, start, start + chunk, ops, allow_nan=True)
        C = (C.nan_to_num(0.0) if ops.is_torch else np.nan_to_num(C, nan=0.0)) * valid_b[:, :, None]
        # centre by the grand mean over present repetitions (distances are invariant)
        C = C - (C.sum(axis=(0, 1)) / n_valid)[None, None, :]
        C = C * valid_b[:, :, None]
        for ia, ib, shared, r, off_diagonal in blocks:
            XA = C[ia][:, shared, :]
            XB = C[ib][:, shared, :]
            SA, SB = XA.sum(axis=1), XB.sum(axis=1)
            # sum over k != l of x_ik . x_il  (per stimulus), and of x_ik . x_jl
            selfA = ops.einsum("ij,ij->i", SA, SA) - ops.einsum("ikp,ikp->i", XA, XA)
            selfB = ops.einsum("ij,ij->i", SB, SB) - ops.einsum("ikp,ikp->i", XB, XB)
            cross = SA @ SB.T - XA.reshape(len(ia), -1) @ XB.reshape(len(ib), -1).T
            block = (selfA[:, None] + selfB[None, :] - 2.0 * cross) / (r * (r - 1) * P)
            D[ia[:, None], ib[None, :]] += block
            if off_diagonal:
                D[ib[:, None], ia[None, :]] += block.T
    iu, ju = ops.triu_pairs(n)
    return D[iu, ju]


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
