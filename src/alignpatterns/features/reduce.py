"""Feature reduction for linear predictivity only (SPEC.md §1): sparse random projection (as in
the APA paper's code, eps = 0.1) or PCA, fitted on the train split and applied to all stimuli.

RSA and CKA use the unreduced features; the reduced ones are stored beside them (``lp/...``).
"""

from __future__ import annotations

import numpy as np

METHODS = ("srp", "pca")


def n_components_for(method: str, n_train: int, n_features: int, n_components, eps: float
                     ) -> int:
    """Output dimensionality: ``n_components``, or for SRP with ``auto`` the
    Johnson–Lindenstrauss bound for ``n_train`` points at ``eps``; never above ``n_features``
    (nor ``n_train`` for PCA)."""
    if method not in METHODS:
        raise ValueError(f"reduction method {method!r}: expected one of {list(METHODS)}")
    if n_components in (None, "auto"):
        if method == "pca":
            raise ValueError("PCA needs an integer n_components")
        from sklearn.random_projection import johnson_lindenstrauss_min_dim

        k = int(johnson_lindenstrauss_min_dim(n_train, eps=eps))
    else:
        k = int(n_components)
    k = min(k, n_features)
    return min(k, n_train) if method == "pca" else k


def fit_reduction(method: str, X_train: np.ndarray, n_components, eps: float = 0.1,
                  seed: int = 0):
    """A fitted ``transform(X) -> (n, k)`` for one layer, fitted on ``X_train`` only.

    Parameters
    ----------
    X_train : ndarray, shape (n_train, n_features)
    n_components : int or "auto"

    Returns
    -------
    callable, or None when no reduction is needed (k equals n_features for SRP)
    """
    n_train, p = X_train.shape
    k = n_components_for(method, n_train, p, n_components, eps)
    if method == "srp":
        if k >= p:
            return None
        import scipy.sparse as sp
        from sklearn.random_projection import SparseRandomProjection

        # SRP depends on the data only through its shape: fit on an empty sparse matrix
        srp = SparseRandomProjection(n_components=k, random_state=seed, dense_output=True)
        srp.fit(sp.csr_matrix((n_train, p), dtype=np.float32))
        return lambda X: srp.transform(np.asarray(X, dtype=np.float32)).astype(np.float32)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, svd_solver="full", random_state=seed)
    pca.fit(np.asarray(X_train, dtype=np.float64))
    return lambda X: pca.transform(np.asarray(X, dtype=np.float64)).astype(np.float32)
