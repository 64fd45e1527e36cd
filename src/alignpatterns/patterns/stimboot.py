"""Test scores under a stimulus bootstrap, from stored test RDMs, Grams and LP predictions.

One set of draws per measure (stream ``(seed, measure, "stimulus-bootstrap")``): every subject,
layer, ROI and candidate is rescored on the same resampled test stimuli, so the model's and the
brain's scores share them (SPEC.md §4, subject × stimulus bootstrap). A draw is stored as copy
counts ``c`` (n_test,): stimulus i appears c_i times in the resample. No refits: LP rescores the
stored test predictions.

- **RSA** (SPEC.md §2, "Bootstrap of RDM comparisons", as rsatoolbox ``subsample_pattern``):
  pairs of two copies of the same stimulus are dropped, copy × other pairs kept, so the distinct
  pair (i, j) enters c_i·c_j times; the kept entries are compared as the measure compares RDMs:
  ``spearman`` re-ranks them in every draw (average ranks) before the Pearson correlation of
  ranks, ``pearson`` correlates the values.
- **CKA** (debiased linear): the HSIC_u formula on the resampled Gram with copy × copy entries
  treated like the diagonal (zeroed) — the same rule as RSA's: a copy pair would bring back the
  self-similarity (noise) term the unbiased estimator excludes.
- **LP**: per target vertex, the measure's score (Pearson r, or R² = 1 − SS_res/SS_tot) of the
  resampled rows of data and prediction; score = mean over the ROI's vertices with a defined
  score (as the observed score). ``lp.protocol: paper``: the mean of that over the fold models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alignpatterns.patterns.streams import stream

__all__ = ["stimulus_bootstrap_draws", "boot_rsa", "boot_cka", "boot_lp", "boot_lp_folds"]

RSA_METHODS = ("spearman", "pearson")
LP_SCORES = ("pearson", "r2")


def stimulus_bootstrap_draws(seed: int, measure: str, n_draws: int, n_stimuli: int
                             ) -> np.ndarray:
    """Copy counts of the stimulus-bootstrap draws of one measure.

    One stream per measure, ``(seed, measure, "stimulus-bootstrap")``: the same draws serve
    every candidate, subject, ROI and variant, and the brain–brain tensor.

    Returns
    -------
    counts : ndarray of int64, shape (n_draws, n_stimuli)
        ``counts[d, i]`` = copies of test stimulus i in draw d (each row sums to n_stimuli).
    """
    rng = stream(seed, measure, "stimulus-bootstrap")
    out = np.zeros((max(int(n_draws), 0), n_stimuli), dtype=np.int64)
    for d in range(out.shape[0]):
        out[d] = np.bincount(rng.integers(0, n_stimuli, n_stimuli), minlength=n_stimuli)
    return out


def _check_counts(counts: np.ndarray, n: int) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != n or np.any(counts < 0):
        raise ValueError(f"bootstrap counts must be non-negative, shaped (n_draws, {n}); got "
                         f"shape {counts.shape}")
    return counts.astype(np.float64)


class _RankPlan:
    """Sort order and tie groups of condensed RDM vectors, fixed across draws.

    Re-ranking a weighted subset needs only cumulative weights along each vector's sorted
    order: the average rank of a tie group with weight W whose predecessors weigh C is
    C + (W + 1)/2.
    """

    def __init__(self, X: np.ndarray):
        k, P = X.shape
        self.order = np.argsort(X, axis=1, kind="stable")
        v = np.take_along_axis(X, self.order, axis=1)
        new = np.ones((k, P), dtype=bool)
        new[:, 1:] = v[:, 1:] != v[:, :-1]
        pos = np.broadcast_to(np.arange(P), (k, P))
        self.start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # first of group
        end = np.ones((k, P), dtype=bool)
        end[:, :-1] = new[:, 1:]
        last = np.where(end, pos, P)
        self.stop = np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1] + 1  # one past
        self.inverse = np.argsort(self.order, axis=1)
        self.ties = not bool(new.all())

    def ranks(self, w: np.ndarray) -> np.ndarray:
        """Average ranks (k, P) of every entry in the multiset where entry j appears w_j
        times (values of entries with w_j = 0 are meaningless: they carry no weight)."""
        ws = w[self.order]
        if not self.ties:  # each entry is its own group: C_before + (w + 1)/2
            C = np.cumsum(ws, axis=1)
            C -= (ws - 1.0) / 2.0
            return np.take_along_axis(C, self.inverse, axis=1)
        C = np.zeros((ws.shape[0], ws.shape[1] + 1))
        np.cumsum(ws, axis=1, out=C[:, 1:])
        before = np.take_along_axis(C, self.start, axis=1)
        W = np.take_along_axis(C, self.stop, axis=1) - before
        return np.take_along_axis(before + (W + 1.0) / 2.0, self.inverse, axis=1)


def _pair_weights(counts: np.ndarray) -> np.ndarray:
    """c_i·c_j of every condensed pair i < j, shape (n_draws, n_pairs)."""
    i, j = np.triu_indices(counts.shape[1], k=1)
    return counts[:, i] * counts[:, j]


def boot_rsa(A: np.ndarray, B: np.ndarray, counts: np.ndarray, method: str = "spearman"
             ) -> np.ndarray:
    """Correlations of RDMs under stimulus-bootstrap draws, with the measure's comparison.

    Parameters
    ----------
    A : ndarray, shape (n_sources, n_pairs)
        Condensed source RDMs (``spearman``: values or average ranks — re-ranking a subset
        depends only on the order, so stored ranks serve; ``pearson``: values).
    B : ndarray, shape (n_targets, n_pairs)
        Condensed target RDMs.
    counts : ndarray of int, shape (n_draws, n_stimuli)
        Copy counts (:func:`stimulus_bootstrap_draws`).
    method : {"spearman", "pearson"}
        How the measure compares RDMs (:func:`alignpatterns.patterns.alignment.rdm_comparison`):
        ``spearman`` re-ranks the kept entries in every draw, ``pearson`` correlates the values.

    Returns
    -------
    boot : ndarray, shape (n_draws, n_sources, n_targets)
        Equal to rsatoolbox's ``compare(a.subsample_pattern('index', idx),
        b.subsample_pattern('index', idx), method)`` (``pearson``: rsatoolbox's ``'corr'``)
        for the index list ``idx`` with those counts; NaN for a constant vector.
    """
    if method not in RSA_METHODS:
        raise ValueError(f"stimulus bootstrap of RDM comparison {method!r} is not implemented; "
                         f"expected one of {RSA_METHODS}")
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    B = np.atleast_2d(np.asarray(B, dtype=np.float64))
    n = int(round((1 + np.sqrt(1 + 8 * A.shape[1])) / 2))
    counts = _check_counts(counts, n)
    if len(counts) == 0:
        return np.empty((0, len(A), len(B)))
    W = _pair_weights(counts)
    if method == "spearman":
        plan_a, plan_b = _RankPlan(A), _RankPlan(B)
    else:  # centred on the full sample: keeps the weighted sums well conditioned
        A = A - A.mean(axis=1, keepdims=True)
        B = B - B.mean(axis=1, keepdims=True)
    out = np.empty((len(W), len(A), len(B)))
    for d, w in enumerate(W):
        if method == "spearman":
            N = w.sum()  # (N + 1)/2: the weighted mean of average ranks
            Ra, Rb = plan_a.ranks(w) - (N + 1.0) / 2.0, plan_b.ranks(w) - (N + 1.0) / 2.0
            ok_a = ok_b = None  # ranks of a constant vector are exactly constant
        else:
            Ra, ok_a = _weighted_centre(A, w)
            Rb, ok_b = _weighted_centre(B, w)
        out[d] = _weighted_corr(Ra, Rb, w, ok_a, ok_b)
    return out


def _weighted_centre(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``X`` (k, P) minus their ``w``-weighted means, and whether each row varies.

    Returns
    -------
    Xc : ndarray, shape (k, P)
    varies : ndarray of bool, shape (k,)
        False where the weighted sum of squares is at rounding level (the row is constant on
        the entries with weight): its correlation is NaN, as for the observed score.
    """
    Xc = X - (X @ w / w.sum())[:, None]
    tol = 1e-12 * ((X * X) @ w)
    return Xc, (Xc * Xc) @ w > tol


def _weighted_corr(Ra: np.ndarray, Rb: np.ndarray, w: np.ndarray,
                   ok_a: np.ndarray | None = None, ok_b: np.ndarray | None = None
                   ) -> np.ndarray:
    """Weighted Pearson correlations of the rows of centred ``Ra`` and ``Rb``.

    Parameters
    ----------
    Ra : ndarray, shape (k_a, P)
    Rb : ndarray, shape (k_b, P)
        Rows centred on their ``w``-weighted means.
    w : ndarray, shape (P,)
        Non-negative weights (multiplicities of the entries).
    ok_a, ok_b : ndarray of bool, shape (k_a,) and (k_b,), optional
        Rows that vary (default: a non-zero weighted norm).

    Returns
    -------
    r : ndarray, shape (k_a, k_b)
        NaN where either row does not vary.
    """
    sw = np.sqrt(w)
    Ra, Rb = Ra * sw, Rb * sw
    na = np.sqrt(np.einsum("ij,ij->i", Ra, Ra))
    nb = np.sqrt(np.einsum("ij,ij->i", Rb, Rb))
    ok_a = na > 0 if ok_a is None else ok_a & (na > 0)
    ok_b = nb > 0 if ok_b is None else ok_b & (nb > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Ra @ Rb.T) / (na[:, None] * nb[None, :])
    r[~(ok_a[:, None] & ok_b[None, :])] = np.nan
    return r


def _hsic_terms(K: np.ndarray, counts: np.ndarray):
    """Per draw: Kc (D, k, n), 1ᵀK̃1 (D, k) of zero-diagonal Grams K (k, n, n)."""
    Kc = np.einsum("kij,dj->dki", K, counts)
    s = np.einsum("dki,di->dk", Kc, counts)
    return Kc, s


def boot_cka(Ks: np.ndarray, Ls: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Debiased linear CKA of Gram matrices under stimulus-bootstrap draws.

    With copy counts c, the resampled Gram over N = Σc positions has entry K_ij between copies of
    stimuli i ≠ j and 0 between copies of one stimulus (treated as the diagonal), so
    tr(K̃L̃) = cᵀ(K̃∘L̃)c, 1ᵀK̃1 = cᵀK̃c and 1ᵀK̃L̃1 = Σ_i c_i (K̃c)_i (L̃c)_i in the HSIC_u
    formula of :func:`alignpatterns.measures.cka.hsic_unbiased` with n = N.

    Parameters
    ----------
    Ks : ndarray, shape (n_sources, n, n)
    Ls : ndarray, shape (n_targets, n, n)
    counts : ndarray of int, shape (n_draws, n)

    Returns
    -------
    boot : ndarray, shape (n_draws, n_sources, n_targets)
        NaN where a representation's HSIC_u(K, K) is not positive.
    """
    Ks = np.asarray(Ks, dtype=np.float64)
    Ls = np.asarray(Ls, dtype=np.float64)
    n = Ks.shape[-1]
    counts = _check_counts(counts, n)
    if len(counts) == 0:
        return np.empty((0, len(Ks), len(Ls)))
    N = counts.sum(axis=1)  # (D,)
    eye = np.eye(n, dtype=bool)
    Kt = np.where(eye, 0.0, Ks)
    Lt = np.where(eye, 0.0, Ls)
    cc = (counts[:, :, None] * counts[:, None, :]).reshape(len(counts), -1)  # (D, n²)
    Kc, sK = _hsic_terms(Kt, counts)
    Lc, sL = _hsic_terms(Lt, counts)
    a = 1.0 / ((N - 1) * (N - 2))
    b = 2.0 / (N - 2)
    norm = 1.0 / (N * (N - 3))

    def self_hsic(T, Tc, sT):
        tr = cc @ (T * T).reshape(len(T), -1).T  # (D, k)
        cross = np.einsum("di,dki,dki->dk", counts, Tc, Tc)
        return (tr + sT * sT * a[:, None] - b[:, None] * cross) * norm[:, None]

    kk, ll = self_hsic(Kt, Kc, sK), self_hsic(Lt, Lc, sL)
    Lflat = Lt.reshape(len(Lt), -1)
    out = np.empty((len(counts), len(Ks), len(Ls)))
    for k in range(len(Ks)):
        tr = cc @ (Kt[k].reshape(-1)[None, :] * Lflat).T  # (D, T)
        cross = np.einsum("di,di,dti->dt", counts, Kc[:, k], Lc)
        out[:, k] = (tr + sK[:, k, None] * sL * a[:, None] - b[:, None] * cross) * norm[:, None]
    den = kk[:, :, None] * ll[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, out / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)


def boot_lp(Y: np.ndarray, P: np.ndarray, counts: np.ndarray,
            edges: Sequence[int] | None = None, score: str = "pearson") -> np.ndarray:
    """Mean over target vertices of the LP score of (data, prediction) on resampled test rows.

    Parameters
    ----------
    Y, P : ndarray, shape (n_test, n_vertices)
        Test data and stored test predictions.
    counts : ndarray of int, shape (n_draws, n_test)
    edges : sequence of int, optional
        Column boundaries of the target ROIs (``[0, v1, v1 + v2, ...]``); one target if None.
    score : {"pearson", "r2"}
        The measure's per-vertex score (:func:`alignpatterns.patterns.alignment.lp_score`):
        Pearson r (``lp-ridge-pearson``) or R² = 1 − SS_res/SS_tot (``lp-ridge-r2``, as
        :func:`alignpatterns.measures.r2_score`), both over the resampled rows.

    Returns
    -------
    boot : ndarray, shape (n_draws, n_targets)
        Per ROI the mean score over vertices where it is defined in the resample (Pearson: data
        and prediction vary; R²: data vary), NaN if none, as the observed score leaves constant
        vertices out.
    """
    Y = np.asarray(Y, dtype=np.float64)
    counts = _check_counts(counts, Y.shape[0])
    v, ok = _boot_lp_per_vertex(Y, np.asarray(P, dtype=np.float64), counts, score)
    edges = [0, Y.shape[1]] if edges is None else list(edges)
    v = np.where(ok, v, 0.0)
    out = np.full((len(counts), len(edges) - 1), np.nan)
    for t, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        n_ok = ok[:, lo:hi].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, t] = np.where(n_ok > 0, v[:, lo:hi].sum(axis=1) / n_ok, np.nan)
    return out


def _boot_lp_per_vertex(Y: np.ndarray, P: np.ndarray, counts: np.ndarray, score: str
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per draw and vertex, the LP score of the resampled rows and where it is defined.

    Parameters
    ----------
    Y, P : ndarray of float64, shape (n_test, n_vertices)
    counts : ndarray of float64, shape (n_draws, n_test)
    score : {"pearson", "r2"}

    Returns
    -------
    values : ndarray, shape (n_draws, n_vertices)
        Pearson r (clipped to [-1, 1]) or R²; meaningless where not ``defined``.
    defined : ndarray of bool, shape (n_draws, n_vertices)
    """
    if score not in LP_SCORES:
        raise ValueError(f"stimulus bootstrap of LP score {score!r} is not implemented; "
                         f"expected one of {LP_SCORES}")
    ss_res = counts @ ((Y - P) ** 2) if score == "r2" else None
    Y = Y - Y.mean(axis=0)  # centred on the full sample: keeps the sums below well conditioned
    P = P - P.mean(axis=0)
    N = counts.sum(axis=1)[:, None]
    sy, yy = counts @ Y, counts @ (Y * Y)
    vy = yy - sy * sy / N  # SS_tot of the resampled rows
    if score == "r2":
        # a vertex constant in the resample has (rounding-level) zero SS_tot
        ok = vy > 1e-12 * yy
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - ss_res / np.where(ok, vy, 1.0), ok
    sp, pp = counts @ P, counts @ (P * P)
    vp = pp - sp * sp / N
    cov = counts @ (Y * P) - sy * sp / N
    ok = (vy * vp > 1e-12 * yy * pp) & (vy > 0) & (vp > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(cov / np.sqrt(np.where(ok, vy * vp, 1.0)), -1.0, 1.0), ok


def boot_lp_folds(Y: np.ndarray, Ps: np.ndarray, counts: np.ndarray,
                  edges: Sequence[int] | None = None, score: str = "pearson") -> np.ndarray:
    """:func:`boot_lp` of every fold model's test predictions, averaged over the folds.

    ``lp.protocol: paper`` scores the test split as the mean over the fold models of each
    model's score (:func:`alignpatterns.measures.lp_paper.fold_scores`); each draw does the same.

    Parameters
    ----------
    Y : ndarray, shape (n_test, n_vertices)
        Test data.
    Ps : ndarray, shape (n_folds, n_test, n_vertices)
        Test predictions of every fold model.
    counts : ndarray of int, shape (n_draws, n_test)
    edges : sequence of int, optional
    score : {"pearson", "r2"}

    Returns
    -------
    boot : ndarray, shape (n_draws, n_targets)
        NaN where a fold's score is NaN.
    """
    return np.mean([boot_lp(Y, P, counts, edges, score) for P in Ps], axis=0)
