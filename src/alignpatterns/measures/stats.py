"""Resampling statistics for the alignment measures.

- Stimulus bootstrap of RDM comparisons (:func:`bootstrap_compare_rdms`), equal to
  rsatoolbox's ``RDMs.subsample_pattern('index', idx)`` followed by
  ``rsatoolbox.rdm.compare`` for every draw: pairs of two copies of the same stimulus
  are dropped, copy x other pairs are kept with their multiplicity and every draw
  re-ranks (SPEC §2). The resampled RDM is never materialised: it is the multiset of
  the original pairs ``{i, j}`` (``i != j``) with multiplicity ``w_ij = c_i c_j``
  (``c`` = bootstrap counts), so each RDM is sorted once and every draw costs
  O(n_pairs) without a sort.
- Stimulus-label permutation nulls (:func:`permutation_compare_rdms`), ranks computed
  once and reused across draws, and one-sided permutation p-values.
- Benjamini-Hochberg q-values (:func:`fdr_bh`), index draws for bootstraps over
  stimuli or subjects and percentile intervals.

Random draws take ``rng``: a :class:`numpy.random.Generator`, an int seed, a
:class:`numpy.random.SeedSequence` or None (anything :func:`numpy.random.default_rng`
accepts).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._validation import as_float_array
from .compare import METHODS, check_rdm_pair, compare_rdms, rank_rdm
from .rdm import n_stimuli_from_pairs, permute_rdm

__all__ = [
    "BOOTSTRAP_METHODS",
    "bootstrap_compare_rdms",
    "bootstrap_indices",
    "bootstrap_subjects",
    "fdr_bh",
    "percentile_interval",
    "permutation_compare_rdms",
    "permutation_indices",
    "permutation_p_value",
]

BOOTSTRAP_METHODS = ("spearman", "pearson", "rho-a", "cosine", "tau-a")
_EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------- draws


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def bootstrap_indices(n: int, n_draws: int, rng=None) -> np.ndarray:
    """Resample ``n`` items with replacement, ``n_draws`` times.

    Parameters
    ----------
    n : int
        Number of items (stimuli, subjects, ...), >= 1.
    n_draws : int
        Number of bootstrap draws, >= 1.
    rng : numpy.random.Generator, int, SeedSequence or None
        Random generator or seed.

    Returns
    -------
    idx : ndarray of int64, shape (n_draws, n)
        Row ``k`` holds the item indices of draw ``k`` (uniform, with replacement).
    """
    n = _check_count(n, "n", 1)
    n_draws = _check_count(n_draws, "n_draws", 1)
    return np.random.default_rng(rng).integers(0, n, size=(n_draws, n), dtype=np.int64)


def bootstrap_subjects(n_subjects: int, n_draws: int, rng=None) -> np.ndarray:
    """Subject bootstrap: ``n_draws`` resamples of ``n_subjects`` subjects.

    Parameters
    ----------
    n_subjects : int
        Number of subjects, >= 2.
    n_draws : int
        Number of draws, >= 1.
    rng : numpy.random.Generator, int, SeedSequence or None
        Random generator or seed.

    Returns
    -------
    idx : ndarray of int64, shape (n_draws, n_subjects)
        Subject indices per draw (with replacement), as :func:`bootstrap_indices`.
    """
    n_subjects = _check_count(n_subjects, "n_subjects", 2)
    return bootstrap_indices(n_subjects, n_draws, rng)


def permutation_indices(n: int, n_perm: int, rng=None) -> np.ndarray:
    """``n_perm`` independent uniform permutations of ``range(n)``.

    Parameters
    ----------
    n : int
        Number of items, >= 2.
    n_perm : int
        Number of permutations, >= 1.
    rng : numpy.random.Generator, int, SeedSequence or None
        Random generator or seed.

    Returns
    -------
    perms : ndarray of int64, shape (n_perm, n)
        One permutation per row (the identity may occur by chance).
    """
    n = _check_count(n, "n", 2)
    n_perm = _check_count(n_perm, "n_perm", 1)
    gen = np.random.default_rng(rng)
    return gen.permuted(np.broadcast_to(np.arange(n, dtype=np.int64), (n_perm, n)), axis=1)


def percentile_interval(samples, level: float = 0.95, axis: int = 0) -> np.ndarray:
    """Percentile interval of bootstrap samples, ignoring NaN draws.

    Parameters
    ----------
    samples : array-like, e.g. of shape (n_draws,) or (n_draws, k)
        Bootstrap (or other) samples; NaN entries (undefined draws) are ignored.
    level : float
        Coverage in (0, 1); the bounds are the ``(1 - level) / 2`` and
        ``(1 + level) / 2`` quantiles (numpy's default linear interpolation).
    axis : int
        Axis holding the draws.

    Returns
    -------
    interval : ndarray of shape (2,) + shape of ``samples`` without ``axis``
        ``interval[0]`` the lower bound, ``interval[1]`` the upper bound; NaN where a
        column has no finite sample.
    """
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    x = as_float_array(samples, "samples", tuple(range(1, 33)), allow_nan=True)
    if x.shape[axis] == 0:
        raise ValueError("samples: no draws along the given axis")
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        return np.nanquantile(x, q, axis=axis)


# ---------------------------------------------------------------- stimulus bootstrap


class _SortedRdm:
    """A condensed RDM sorted once: its sorted order and tie groups."""

    def __init__(self, x: np.ndarray):
        self.order = np.argsort(x, kind="stable")
        xs = x[self.order]
        new = np.empty(xs.size, dtype=bool)
        new[0] = True
        np.not_equal(xs[1:], xs[:-1], out=new[1:])
        if new.all():
            self.ends = None  # no ties
            self.gid = None
        else:
            starts = np.flatnonzero(new)
            self.ends = np.append(starts[1:], xs.size) - 1  # last position of each group
            self.gid = np.cumsum(new, dtype=np.intp) - 1  # group of each sorted position

    def ranks2(
        self, ws: np.ndarray, total: float, out: np.ndarray, tmp: np.ndarray
    ) -> tuple[np.ndarray, float | None]:
        """Twice the centred average ranks of the weighted multiset, in sorted order.

        Parameters
        ----------
        ws : ndarray of shape (n_pairs,)
            Multiplicities of the entries, in this RDM's sorted order.
        total : float
            ``ws.sum()``, the size ``W`` of the multiset.
        out, tmp : ndarray of shape (n_pairs,)
            Work buffers; the result is written into ``out``.

        Returns
        -------
        r2 : ndarray of shape (n_pairs,)
            ``2 (rank - (W + 1) / 2)``: a tie group (equal values, or the copies of one
            entry) of weight ``W_g`` preceded by weight ``W_<`` holds ranks ``W_< + 1 ..
            W_< + W_g``, so twice its average rank minus 1 is ``W_< + (W_< + W_g)``, a sum
            of two cumulative weights (integers: exact).
        ties : float or None
            ``sum_g (W_g - 1) W_g (W_g + 1)`` over tie groups of equal values, or None if
            the RDM has no ties (then the groups are the entries and the caller uses
            ``sum_k (w_k - 1) w_k (w_k + 1)``, the same for every tie-free RDM).
        """
        if self.ends is None:
            # cumsum of w_k + w_{k-1} gives cw_k + cw_{k-1}; the first term centres
            tmp[0] = ws[0] - total
            np.add(ws[1:], ws[:-1], out=tmp[1:])
            np.cumsum(tmp, out=out)
            return out, None
        cw = np.cumsum(ws, out=tmp)
        cum_end = cw[self.ends]
        before = np.concatenate(([0.0], cum_end[:-1]))
        np.take(cum_end + before - total, self.gid, out=out, mode="clip")
        gw = cum_end - before
        return out, float(np.sum((gw - 1.0) * gw * (gw + 1.0)))


def _check_indices(indices, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices: expected an integer array, got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(
            f"indices: expected a 2-D array (n_draws, n_stimuli), got shape {idx.shape}; "
            "for a single draw pass idx[None, :]"
        )
    if idx.shape[0] < 1 or idx.shape[1] < 1:
        raise ValueError(f"indices: needs at least one draw of one stimulus, got {idx.shape}")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        raise ValueError(
            f"indices: stimulus indices must lie in [0, {n - 1}] for RDMs of {n} stimuli; "
            f"got values in [{lo}, {hi}]"
        )
    return idx.astype(np.intp, copy=False)


def _check_n_jobs(n_jobs) -> int:
    if n_jobs == -1:
        if hasattr(os, "sched_getaffinity"):
            return max(1, len(os.sched_getaffinity(0)))
        return max(1, os.cpu_count() or 1)
    return _check_count(n_jobs, "n_jobs (or -1)", 1)


def bootstrap_compare_rdms(a, b, method: str, indices, *, n_jobs: int = 1) -> np.ndarray:
    """Compare RDMs on stimulus-bootstrap resamples (as rsatoolbox, without resampling).

    Parameters
    ----------
    a : array-like of shape (n_pairs,)
        Condensed RDM of ``n_stimuli >= 3`` stimuli (e.g. the model RDM).
    b : array-like of shape (n_pairs,) or (n_rdms, n_pairs)
        Condensed RDM(s) compared with ``a`` (e.g. data RDMs).
    method : {"spearman", "pearson", "rho-a", "cosine", "tau-a"}
        As :func:`alignpatterns.measures.compare_rdms`. ``tau-a`` takes a slower exact
        path (the resampled vectors are materialised); the others cost O(n_pairs) per
        draw and RDM, without sorting.
    indices : array-like of int, shape (n_draws, n_stimuli)
        Stimulus indices of each draw, e.g. from :func:`bootstrap_indices`; a row may
        have any length >= 1 and repeated entries.
    n_jobs : int
        Threads over draws (-1: all CPUs). Results do not depend on it.

    Returns
    -------
    sims : ndarray of shape (n_draws,) or (n_draws, n_rdms)
        ``sims[k]`` equals ``rsatoolbox.rdm.compare(A.subsample_pattern('index',
        indices[k]), B.subsample_pattern('index', indices[k]), method)`` with ``A``,
        ``B`` the rsatoolbox RDMs of ``a``, ``b``: the resampled RDM holds every pair of
        distinct stimuli ``{i, j}`` with multiplicity ``c_i * c_j`` (``c`` the counts of
        the draw), pairs of two copies of one stimulus are dropped, and ranks
        (spearman / rho-a) are recomputed on the resampled entries (ties averaged,
        rho-a with ``n`` = number of resampled entries).

    Notes
    -----
    Algorithm: each RDM is sorted once. In a draw, the average rank of a value is the
    total weight ``c_i c_j`` of the entries before its tie group plus (group weight +
    1) / 2, from a cumulative sum over the pre-sorted order; spearman is then the
    weighted Pearson correlation of these ranks with weights ``c_i c_j``, and pearson
    / cosine are weighted versions on the raw values.

    Undefined draws are NaN:

    - draws with fewer than 3 distinct stimuli, as in rsatoolbox's
      ``eval_bootstrap_pattern`` (which sets them to NaN without comparing);
    - spearman / pearson comparisons where a resampled RDM is constant, and cosine
      ones where it is all zeros (rsatoolbox's ``compare`` returns 0 there;
      :func:`compare_rdms` returns NaN). rho-a and tau-a are 0 for a constant RDM.

    One RuntimeWarning reports the number of NaN draws of each kind. Exclude NaN draws
    from summaries (:func:`percentile_interval` does).
    """
    if method not in BOOTSTRAP_METHODS:
        if method in METHODS:
            raise ValueError(
                f"method {method!r} is not supported by bootstrap_compare_rdms; "
                f"expected one of {BOOTSTRAP_METHODS}"
            )
        raise ValueError(
            f"unknown RDM comparison method {method!r}; expected one of {BOOTSTRAP_METHODS}"
        )
    n_jobs = _check_n_jobs(n_jobs)
    a, B, scalar = check_rdm_pair(a, b)
    n = n_stimuli_from_pairs(a.shape[0])
    if n < 3:
        raise ValueError(f"RDMs of at least 3 stimuli are needed, got {n}")
    idx = _check_indices(indices, n)
    n_draws = idx.shape[0]

    counts = np.zeros((n_draws, n), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(n_draws), idx.shape[1]), idx.ravel()), 1.0)
    distinct = (counts > 0).sum(axis=1)
    valid = np.flatnonzero(distinct >= 3)

    if method in ("spearman", "rho-a"):
        kernel = _RankKernel(a, B, method)
    elif method in ("pearson", "cosine"):
        kernel = _ValueKernel(a, B, method)
    else:
        kernel = _TauKernel(a, B)
    out = np.full((n_draws, B.shape[0]), np.nan)
    chunks = [ch for ch in np.array_split(valid, min(n_jobs, max(valid.size, 1))) if ch.size]

    def run(chunk: np.ndarray) -> int:
        state = kernel.buffers()
        for d in chunk:
            out[d] = kernel(counts[d], state)
        return 0

    if len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            list(pool.map(run, chunks))
    else:
        for ch in chunks:
            run(ch)

    n_few = n_draws - valid.size
    n_const = int(np.isnan(out[valid]).sum())
    if n_few or n_const:
        parts = []
        if n_few:
            parts.append(f"{n_few} draw(s) with fewer than 3 distinct stimuli")
        if n_const:
            parts.append(f"{n_const} comparison(s) with a constant or zero resampled RDM")
        warnings.warn(
            f"bootstrap_compare_rdms({method!r}): NaN for " + " and ".join(parts),
            RuntimeWarning,
            stacklevel=2,
        )
    return out[:, 0] if scalar else out


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.intp), j.astype(np.intp)  # intp: np.take converts other types


def _pair_power_sum(c: np.ndarray, k: int) -> float:
    """``sum_{i<j} (c_i c_j)^k = ((sum c^k)^2 - sum c^(2k)) / 2`` in O(n_stimuli)."""
    ck = c**k
    s = float(ck.sum())
    return 0.5 * (s * s - float((ck * ck).sum()))


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """Inner product of 1-D arrays without BLAS (whose threads spin under contention)."""
    return float(np.einsum("i,i->", x, y))


def _inverse(order: np.ndarray) -> np.ndarray:
    inv = np.empty(order.size, dtype=np.intp)
    inv[order] = np.arange(order.size)
    return inv


class _RankKernel:
    """spearman / rho-a on one draw, in O(n_pairs) per RDM (all RDMs pre-sorted).

    With ``r2`` twice the centred ranks (:meth:`_SortedRdm.ranks2`) and ``w`` the
    multiplicities: ``S_ab = sum_k w_k r_a r_b = (1/4) sum w r2_a r2_b``, and
    ``S_aa = ((W - 1) W (W + 1) - sum_g (W_g - 1) W_g (W_g + 1)) / 12`` (the variance of
    average ranks with ties), so spearman = ``S_ab / sqrt(S_aa S_bb)`` and rho-a =
    ``12 S_ab / (W^3 - W)``.
    """

    def __init__(self, a: np.ndarray, B: np.ndarray, method: str):
        pi, pj = _pairs(n_stimuli_from_pairs(a.shape[0]))
        self.method = method
        self.size = a.shape[0]
        self.sa = _SortedRdm(a)
        self.sb = [_SortedRdm(row) for row in B]
        # the two stimuli of each pair, in a's sorted order
        self.pi, self.pj = pi[self.sa.order], pj[self.sa.order]
        inv_a = _inverse(self.sa.order)
        # b's sorted position -> a's sorted position of the same pair, and back
        self.a_of_b = [inv_a[s.order] for s in self.sb]
        self.b_of_a = [_inverse(s.order)[self.sa.order] for s in self.sb]
        self.need_cube = method == "spearman" and (
            self.sa.ends is None or any(s.ends is None for s in self.sb)
        )

    def buffers(self) -> dict:
        return {k: np.empty(self.size) for k in ("wa", "ra", "xa", "wb", "rb", "t1")}

    def __call__(self, c: np.ndarray, buf: dict) -> np.ndarray:
        wa = np.take(c, self.pi, out=buf["wa"], mode="clip")
        wa *= np.take(c, self.pj, out=buf["t1"], mode="clip")
        total = _pair_power_sum(c, 1)  # = wa.sum(), exact (integers)
        ra, ties_a = self.sa.ranks2(wa, total, buf["ra"], buf["t1"])
        xa = np.multiply(wa, ra, out=buf["xa"])
        full = (total - 1.0) * total * (total + 1.0)
        # sum_k (w_k - 1) w_k (w_k + 1): the tie term when the groups are single entries
        cube = _pair_power_sum(c, 3) - total if self.need_cube else 0.0
        k = len(self.sb)
        sab, sbb = np.empty(k), np.empty(k)
        for r in range(k):
            wb = np.take(wa, self.a_of_b[r], out=buf["wb"], mode="clip")
            rb, ties_b = self.sb[r].ranks2(wb, total, buf["rb"], buf["t1"])
            sab[r] = _dot(xa, np.take(rb, self.b_of_a[r], out=buf["t1"], mode="clip"))
            sbb[r] = full - (cube if ties_b is None else ties_b)
        if self.method == "rho-a":
            return 3.0 * sab / full  # 12 (sab / 4) / (W^3 - W)
        saa = full - (cube if ties_a is None else ties_a)
        ok = (sbb > 0) & (saa > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            # (sab / 4) / sqrt((saa / 12) (sbb / 12))
            return np.where(ok, 3.0 * sab / np.sqrt(saa * sbb), np.nan)


class _ValueKernel:
    """pearson / cosine on one draw: weighted versions on the raw values."""

    def __init__(self, a: np.ndarray, B: np.ndarray, method: str):
        self.pi, self.pj = _pairs(n_stimuli_from_pairs(a.shape[0]))
        self.a, self.B, self.method = a, B, method
        self.scale_a = float(np.abs(a).max())
        self.scale_b = np.abs(B).max(axis=1)

    def buffers(self) -> dict:
        return {k: np.empty(self.a.shape[0]) for k in ("w", "t1", "t2")}

    def __call__(self, c: np.ndarray, buf: dict) -> np.ndarray:
        w = np.take(c, self.pi, out=buf["w"], mode="clip")
        w *= np.take(c, self.pj, out=buf["t1"], mode="clip")
        total = float(w.sum())
        a, B = self.a, self.B
        k = B.shape[0]
        sab, sbb = np.empty(k), np.empty(k)
        if self.method == "pearson":
            ac = np.subtract(a, _dot(w, a) / total, out=buf["t1"])
        else:
            ac = a
        wa = np.multiply(w, ac, out=buf["t2"])
        saa = _dot(wa, ac)
        for r in range(k):
            if self.method == "pearson":
                bc = np.subtract(B[r], _dot(w, B[r]) / total, out=buf["t1"])
            else:
                bc = B[r]
            sab[r] = _dot(wa, bc)
            sbb[r] = np.einsum("i,i,i->", w, bc, bc)
        if self.method == "pearson":
            # a resampled RDM whose entries are all equal: its centred values are
            # rounding noise of order eps * scale, not a spread
            tol = 64.0 * _EPS
            ok = (saa > total * (tol * self.scale_a) ** 2) & (
                sbb > total * (tol * self.scale_b) ** 2
            )
        else:
            ok = (saa > 0) & (sbb > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, sab / np.sqrt(saa * sbb), np.nan)


class _TauKernel:
    """tau-a on one draw: the resampled vectors are materialised (exact, slower)."""

    def __init__(self, a: np.ndarray, B: np.ndarray):
        self.pi, self.pj = _pairs(n_stimuli_from_pairs(a.shape[0]))
        self.a, self.B = a, B

    def buffers(self) -> dict:
        return {}

    def __call__(self, c: np.ndarray, buf: dict) -> np.ndarray:
        reps = (c[self.pi] * c[self.pj]).astype(np.intp)
        va = np.repeat(self.a, reps)
        return np.array([compare_rdms(va, np.repeat(row, reps), "tau-a") for row in self.B])


# ------------------------------------------------------------------------ permutation


def permutation_compare_rdms(
    a, b, method: str, n_perm: int = 1000, rng=None, *, perms=None
) -> np.ndarray:
    """Null distribution of RDM comparisons under permutation of the stimulus labels of ``a``.

    Parameters
    ----------
    a : array-like of shape (n_pairs,)
        Condensed RDM whose stimulus labels are permuted (e.g. the model RDM).
    b : array-like of shape (n_pairs,) or (n_rdms, n_pairs)
        Condensed RDM(s) kept fixed.
    method : str
        Any method of :func:`alignpatterns.measures.compare_rdms`.
    n_perm : int
        Number of random permutations (ignored when ``perms`` is given).
    rng : numpy.random.Generator, int, SeedSequence or None
        Random generator or seed for the permutations (ignored when ``perms`` is given).
    perms : array-like of int, shape (n_perm, n_stimuli), optional
        Explicit permutations (e.g. from :func:`permutation_indices`, shared across
        measures and RDMs); row ``k`` relabels ``a`` as
        :func:`alignpatterns.measures.permute_rdm` does.

    Returns
    -------
    null : ndarray of shape (n_perm,) or (n_perm, n_rdms)
        ``null[k] = compare_rdms(permute_rdm(a, perms[k]), b, method)`` (equal up to
        rounding, ~1e-15).

    Notes
    -----
    A relabelling only reorders the entries of ``a``, so ranks, means and norms are
    computed once: for spearman / rho-a the average ranks (``ranked=True`` in
    :func:`compare_rdms`), for spearman / pearson / cosine / rho-a also the centring
    and scaling, leaving one gather and one inner product per draw. tau-a,
    corr_cov and cosine_cov call :func:`compare_rdms` on the permuted ranks / RDM per
    draw. Where the comparison is undefined (a constant RDM), the null is NaN with a
    RuntimeWarning, as :func:`compare_rdms`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown RDM comparison method {method!r}; expected one of {METHODS}")
    a, B, scalar = check_rdm_pair(a, b)
    n = n_stimuli_from_pairs(a.shape[0])
    if n < 3:
        raise ValueError(f"RDMs of at least 3 stimuli are needed, got {n}")
    if perms is None:
        perms = permutation_indices(n, n_perm, rng)
    else:
        perms = np.asarray(perms)
        if perms.ndim != 2 or perms.shape[1] != n or perms.shape[0] < 1:
            raise ValueError(
                f"perms: expected shape (n_perm, {n}) for RDMs of {n} stimuli, got {perms.shape}"
            )
        if (
            not np.issubdtype(perms.dtype, np.integer)
            or not (np.sort(perms, axis=1) == np.arange(n)).all()
        ):
            raise ValueError(f"perms: every row must be a permutation of range({n})")
        perms = perms.astype(np.intp, copy=False)

    if method in ("spearman", "rho-a"):
        a, B = rank_rdm(a), rank_rdm(B)  # once; a relabelling permutes the ranks
    if method not in ("spearman", "pearson", "cosine", "rho-a"):
        kw = {"ranked": True} if method in ("spearman", "rho-a") else {}
        null = np.array([compare_rdms(permute_rdm(a, p), B, method, **kw) for p in perms])
        return null[:, 0] if scalar else null

    # sim(a o perm, b) = scale * <u o perm, v> with u, v centred / normalised once
    if method == "cosine":
        u, V = a, B
    else:
        u, V = a - a.mean(), B - B.mean(axis=1, keepdims=True)
    if method == "rho-a":
        m = a.shape[0]
        scale = np.full(B.shape[0], 12.0 / (m**3 - m))
    else:
        nu = np.sqrt(_dot(u, u))
        nv = np.sqrt(np.einsum("ij,ij->i", V, V))
        bad = ~(nu * nv > 0)
        if bad.any():
            warnings.warn(
                f"permutation_compare_rdms({method!r}): {int(bad.sum())} comparison(s) "
                "involve a constant or zero RDM; returning NaN",
                RuntimeWarning,
                stacklevel=2,
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(bad, np.nan, 1.0 / (nu * nv))
    U = np.zeros((n, n))
    iu, ju = np.triu_indices(n, k=1)
    U[iu, ju] = u
    U[ju, iu] = u
    tri = (iu * n + ju).astype(np.intp)
    null = np.empty((perms.shape[0], B.shape[0]))
    for d, p in enumerate(perms):
        up = np.take(np.take(U, p, axis=0).take(p, axis=1).ravel(), tri)  # = permute_rdm(u, p)
        null[d] = np.einsum("kj,j->k", V, up) * scale
    return null[:, 0] if scalar else null


def permutation_p_value(observed, null) -> np.ndarray | float:
    """One-sided permutation p-value ``(1 + #(null >= observed)) / (1 + n_perm)``.

    Parameters
    ----------
    observed : float or array-like of shape (k,)
        Observed statistic(s); larger means more similar (the alternative is
        "greater").
    null : array-like of shape (n_perm,) or (n_perm, k)
        Null distribution (e.g. from :func:`permutation_compare_rdms`).

    Returns
    -------
    p : float or ndarray of shape (k,)
        In ``(0, 1]``; the ``+1`` counts the observed value as one draw of the null,
        so p is never 0 and the test is valid (Phipson & Smyth 2010). NaN null draws
        are dropped (``n_perm`` counts the finite ones); NaN where ``observed`` is NaN
        or no null draw is finite.
    """
    null = as_float_array(null, "null", (1, 2), allow_nan=True)
    obs = as_float_array(observed, "observed", (0, 1), allow_nan=True)
    scalar = obs.ndim == 0 and null.ndim == 1
    N = null[:, None] if null.ndim == 1 else null
    o = np.atleast_1d(obs)
    if o.shape[0] != N.shape[1]:
        raise ValueError(f"observed has {o.shape[0]} value(s) but null has {N.shape[1]} column(s)")
    if N.shape[0] < 1:
        raise ValueError("null: needs at least one draw")
    finite = np.isfinite(N)
    n_valid = finite.sum(axis=0)
    with np.errstate(invalid="ignore"):
        exceed = ((N >= o[None, :]) & finite).sum(axis=0)
    p = (1.0 + exceed) / (1.0 + n_valid)
    p[np.isnan(o) | (n_valid == 0)] = np.nan
    return float(p[0]) if scalar else p


# ------------------------------------------------------------------------------- FDR


def fdr_bh(p) -> np.ndarray:
    """Benjamini-Hochberg q-values (adjusted p-values), NaN-aware.

    Parameters
    ----------
    p : array-like of any shape
        p-values in [0, 1]; NaN allowed. All finite entries form one family.

    Returns
    -------
    q : ndarray of float64, same shape as ``p``
        ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the ``m`` finite p-values
        sorted ascending; equals ``scipy.stats.false_discovery_control(p, method='bh')``
        on finite input. NaN stays NaN and does not count in ``m``.
    """
    p = np.asarray(p, dtype=np.float64)
    if np.isinf(p).any():
        raise ValueError("p: contains infinite value(s)")
    flat = p.ravel()
    ok = ~np.isnan(flat)
    vals = flat[ok]
    if ((vals < 0) | (vals > 1)).any():
        raise ValueError(
            f"p: p-values must lie in [0, 1]; got values in [{vals.min()}, {vals.max()}]"
        )
    q = np.full(flat.shape, np.nan)
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        adj = vals[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
        res = np.empty(m)
        # q ≥ p holds exactly (p_(j) ≥ p_(i), m/j ≥ 1) but p·m/m can round 1 ulp below p
        res[order] = np.clip(adj, vals[order], 1.0)
        q[ok] = res
    return q.reshape(p.shape)
