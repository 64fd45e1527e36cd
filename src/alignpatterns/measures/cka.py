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

from ._validation import as_float_array, check_same_rows

__all__ = ["linear_cka", "gram", "cka_from_grams", "hsic_unbiased"]


def gram(X) -> np.ndarray:
    """Linear Gram matrix of column-centred features.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    K : ndarray of shape (n_samples, n_samples)
        ``Xc @ Xc.T`` with ``Xc = X - X.mean(axis=0)``. Both CKA variants are
        invariant to this centring; it only improves conditioning.
    """
    X = as_float_array(X, "X", 2)
    Xc = X - X.mean(axis=0, keepdims=True)
    return Xc @ Xc.T


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


def hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Unbiased HSIC estimator (Song et al. 2012).

    Parameters
    ----------
    K, L : ndarray of shape (n, n)
        Kernel (Gram) matrices; their diagonals are ignored (set to zero).

    Returns
    -------
    hsic : float
        ``[tr(K~L~) + (1'K~1)(1'L~1)/((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))``.
    """
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    k1, l1 = Kt.sum(axis=1), Lt.sum(axis=1)
    tr = np.einsum("ij,ji->", Kt, Lt)
    val = tr + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k1 @ l1)
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
        Gram matrix of the first representation (e.g. from :func:`gram`).
    L : array-like of shape (n_samples, n_samples)
        Gram matrix of the second representation.
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
    if debiased:
        kl, kk, ll = hsic_unbiased(K, L), hsic_unbiased(K, K), hsic_unbiased(L, L)
        return _ratio(kl, kk * ll)
    Kc = _double_centre(K)
    Lc = _double_centre(L)
    kl = np.einsum("ij,ij->", Kc, Lc)
    kk = np.einsum("ij,ij->", Kc, Kc)
    ll = np.einsum("ij,ij->", Lc, Lc)
    return _ratio(kl, kk * ll)


def _double_centre(K: np.ndarray) -> np.ndarray:
    r = K.mean(axis=0)
    return K - r[None, :] - K.mean(axis=1)[:, None] + r.mean()


def linear_cka(X, Y, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same samples.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
    Y : array-like of shape (n_samples, n_features_y)
    debiased : bool
        Use the unbiased HSIC estimator (needs ``n_samples >= 4``).

    Returns
    -------
    cka : float
        NaN (with a RuntimeWarning) when X or Y is constant over samples.

    Notes
    -----
    Computed in feature space (cost ``n p q``) when that is cheaper than the Gram
    route (cost ``n^2 (p + q)``); both give the same value.
    """
    X = as_float_array(X, "X", 2)
    Y = as_float_array(Y, "Y", 2)
    check_same_rows(X, Y, "X", "Y")
    n, p = X.shape
    q = Y.shape[1]
    _check_n(n, debiased)
    if p * q > n * (p + q):
        return cka_from_grams(gram(X), gram(Y), debiased)
    Xc = X - X.mean(axis=0, keepdims=True)
    Yc = Y - Y.mean(axis=0, keepdims=True)
    if not debiased:
        kl = np.sum((Xc.T @ Yc) ** 2)
        kk = np.sum((Xc.T @ Xc) ** 2)
        ll = np.sum((Yc.T @ Yc) ** 2)
        return _ratio(kl, kk * ll)
    hx = _FeatureHSIC(Xc)
    hy = _FeatureHSIC(Yc)
    kl = hx.hsic(hy, np.sum((Xc.T @ Yc) ** 2))
    kk = hx.hsic(hx, np.sum((Xc.T @ Xc) ** 2))
    ll = hy.hsic(hy, np.sum((Yc.T @ Yc) ** 2))
    return _ratio(kl, kk * ll)


class _FeatureHSIC:
    """Pieces of HSIC_u for a linear kernel ``K = X X^T`` without forming K."""

    def __init__(self, X: np.ndarray):
        self.n = X.shape[0]
        self.diag = np.einsum("ij,ij->i", X, X)  # K_ii
        self.row = X @ X.sum(axis=0) - self.diag  # K~ 1
        self.total = self.row.sum()  # 1' K~ 1

    def hsic(self, other: _FeatureHSIC, frob_cross: float) -> float:
        n = self.n
        # tr(K~ L~) = tr(K L) - sum_i K_ii L_ii, with tr(K L) = ||X^T Y||_F^2
        tr = frob_cross - self.diag @ other.diag
        val = (
            tr
            + self.total * other.total / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (self.row @ other.row)
        )
        return float(val / (n * (n - 3)))
