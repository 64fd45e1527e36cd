"""Linear centred kernel alignment (CKA), biased and debiased.

- Biased: ``||Xc^T Yc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred X, Y.
- Debiased: ``HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L))`` with the unbiased HSIC
  estimator (Song et al. 2012) on linear kernels; needs ``n >= 4`` and can be negative.

For reuse (one model's Gram matrix against many ROIs), compute :func:`gram` once and
call :func:`cka_from_grams`.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._backend import get_backend
from ._chunks import CHUNK_ELEMENTS, as_numeric, chunk_of, gram_chunked
from ._validation import as_float_array, check_same_rows

__all__ = ["linear_cka", "gram", "cka_from_grams", "hsic_unbiased"]


def gram(X, *, backend: str = "numpy", chunk_size: int | None = None) -> np.ndarray:
    """Linear Gram matrix of column-centred features.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    backend : {"auto", "numpy", "torch", "torch_cpu", "torch_cuda"}, keyword-only
    chunk_size : int or None, keyword-only
        Features processed at once (bounded memory; see :func:`alignpatterns.measures.rdm`).

    Returns
    -------
    K : ndarray of shape (n_samples, n_samples)
        ``Xc @ Xc.T`` with ``Xc = X - X.mean(axis=0)``. Both CKA variants are
        invariant to this centring; it only improves conditioning.
    """
    X = as_numeric(X, 2, "X")
    ops = get_backend(backend)
    return ops.to_numpy(gram_chunked(X, ops, _chunk(X, chunk_size), "cols"))


def _chunk(X, chunk_size):
    return chunk_size or max(1, CHUNK_ELEMENTS // max(X.shape[0], 1))


def _check_gram(K, name: str) -> np.ndarray:
    K = as_float_array(K, name, 2)
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"{name}: a Gram matrix must be square, got shape {K.shape}")
    return K


def _check_n(n: int, debiased: bool) -> None:
    if debiased and n < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")
    if n < 2:
        raise ValueError(f"CKA needs at least 2 samples, got {n}")


def hsic_unbiased(K, L) -> float:
    """Unbiased HSIC estimator (Song et al. 2012).

    Parameters
    ----------
    K, L : array of shape (n, n)
        Symmetric kernel (Gram) matrices (numpy or torch); their diagonals are ignored.

    Returns
    -------
    hsic : float
        ``[tr(K~L~) + (1'K~1)(1'L~1)/((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))``, with
        ``K~`` = K with a zero diagonal.
    """
    n = K.shape[0]
    dK, dL = K.diagonal(), L.diagonal()
    k1, l1 = K.sum(axis=1) - dK, L.sum(axis=1) - dL  # K~ 1, L~ 1
    tr = (K * L).sum() - (dK * dL).sum()  # tr(K~ L~) for symmetric K, L
    val = tr + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k1 * l1).sum()
    return float(val / (n * (n - 3)))


def _ratio(num: float, den2: float) -> float:
    if not den2 > 0:
        warnings.warn(
            "CKA is undefined (a representation has zero (or, debiased, non-positive) "
            "self-similarity); returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return float("nan")
    return float(num / np.sqrt(den2))


def cka_from_grams(K, L, debiased: bool = False) -> float:
    """Linear CKA from precomputed Gram matrices.

    Parameters
    ----------
    K : array-like of shape (n_samples, n_samples)
        Symmetric Gram matrix of the first representation (e.g. from :func:`gram`).
    L : array-like of shape (n_samples, n_samples)
        Symmetric Gram matrix of the second representation.
    debiased : bool
        Use the unbiased HSIC estimator (needs ``n_samples >= 4``).

    Returns
    -------
    cka : float
        NaN (with a RuntimeWarning) when a representation has zero self-similarity.
    """
    K = _check_gram(K, "K")
    L = _check_gram(L, "L")
    check_same_rows(K, L, "K", "L")
    _check_n(K.shape[0], debiased)
    return _cka_grams(K, L, debiased)


def _cka_grams(K, L, debiased: bool) -> float:
    if debiased:
        kl, kk, ll = hsic_unbiased(K, L), hsic_unbiased(K, K), hsic_unbiased(L, L)
        return _ratio(kl, kk * ll)
    Kc = _double_centre(K)
    Lc = _double_centre(L)
    return _ratio(float((Kc * Lc).sum()), float((Kc * Kc).sum() * (Lc * Lc).sum()))


def _double_centre(K):
    r = K.mean(axis=0)
    return K - r[None, :] - K.mean(axis=1)[:, None] + r.mean()


def linear_cka(
    X,
    Y,
    debiased: bool = False,
    *,
    backend: str = "auto",
    chunk_size: int | None = None,
) -> float:
    """Linear CKA between two representations of the same samples.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    debiased : bool
        Use the unbiased HSIC estimator (needs ``n_samples >= 4``).
    backend : {"auto", "numpy", "torch", "torch_cpu", "torch_cuda"}, keyword-only
        Where the products run ("auto": CUDA if visible, else numpy). float64 always.
    chunk_size : int or None, keyword-only
        Features processed at once on the Gram route (bounded memory).

    Returns
    -------
    cka : float
        NaN (with a RuntimeWarning) when X or Y is constant over samples.

    Notes
    -----
    Computed in feature space (cost ``n p q``, never forming ``p x p`` matrices beyond
    ``p q`` elements) when that is cheaper than the Gram route (cost ``n^2 (p + q)``,
    features read in chunks); both give the same value.
    """
    X = as_numeric(X, 2, "X")
    Y = as_numeric(Y, 2, "Y")
    check_same_rows(X, Y, "X", "Y")
    n, p = X.shape
    q = Y.shape[1]
    _check_n(n, debiased)
    ops = get_backend(backend)
    if p * q > n * (p + q):
        K = gram_chunked(X, ops, _chunk(X, chunk_size), "cols")
        L = gram_chunked(Y, ops, _chunk(Y, chunk_size), "cols", name="Y")
        return _cka_grams(K, L, debiased)
    Xc = chunk_of(X, 0, p, ops, name="X")
    Yc = chunk_of(Y, 0, q, ops, name="Y")
    Xc = Xc - Xc.mean(axis=0)[None, :]
    Yc = Yc - Yc.mean(axis=0)[None, :]
    xy = float(((Xc.T @ Yc) ** 2).sum())
    xx = float(((Xc.T @ Xc) ** 2).sum())
    yy = float(((Yc.T @ Yc) ** 2).sum())
    if not debiased:
        return _ratio(xy, xx * yy)
    hx = _FeatureHSIC(ops, Xc)
    hy = _FeatureHSIC(ops, Yc)
    return _ratio(hx.hsic(hy, xy), hx.hsic(hx, xx) * hy.hsic(hy, yy))


class _FeatureHSIC:
    """Pieces of HSIC_u for a linear kernel ``K = X X^T`` without forming K."""

    def __init__(self, ops, X):
        self.n = X.shape[0]
        self.diag = ops.einsum("ij,ij->i", X, X)  # K_ii
        self.row = X @ X.sum(axis=0) - self.diag  # K~ 1
        self.total = float(self.row.sum())  # 1' K~ 1

    def hsic(self, other: _FeatureHSIC, frob_cross: float) -> float:
        n = self.n
        # tr(K~ L~) = tr(K L) - sum_i K_ii L_ii, with tr(K L) = ||X^T Y||_F^2
        tr = frob_cross - float((self.diag * other.diag).sum())
        val = (
            tr
            + self.total * other.total / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * float((self.row * other.row).sum())
        )
        return float(val / (n * (n - 3)))
