"""Linear predictivity (LP): standardise, optionally reduce, ridge, predict.

Statistics (means, standard deviations, PCA) always come from the training part only.
Predictions are returned in standardised target units; score them separately with
:func:`~alignpatterns.measures.scores.correlation_score`.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array, check_same_rows
from .ridge import RidgeCV, _resolve_cv

__all__ = ["Standardizer", "lp_predict", "lp_oof_predict"]


class Standardizer:
    """z-scoring with training statistics (ddof=0); constant columns map to 0.

    Attributes
    ----------
    mean_ : ndarray of shape (n_columns,)
    scale_ : ndarray of shape (n_columns,)
        Standard deviation, replaced by 1 where it is 0.
    """

    def fit(self, A: np.ndarray) -> Standardizer:
        """Fit on A of shape (n_samples, n_columns)."""
        self.mean_ = A.mean(axis=0)
        sd = A.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self._constant = ~(sd > 0)
        return self

    def transform(self, A: np.ndarray) -> np.ndarray:
        """Return ``(A - mean_) / scale_``; constant training columns become 0."""
        out = (A - self.mean_) / self.scale_
        out[:, self._constant] = 0.0
        return out


class GlobalScaler(Standardizer):
    """Centre columns and divide *all* of them by one training scale (the RMS column sd).

    Unlike per-column z-scoring this keeps the geometry of the features (relative variances of
    units and of principal components), as an encoding model of raw layer activations expects;
    per-column z-scoring gives near-silent ReLU units the same weight as the dominant ones.
    """

    def fit(self, A: np.ndarray) -> GlobalScaler:
        """Fit on A of shape (n_samples, n_columns)."""
        self.mean_ = A.mean(axis=0)
        rms = float(np.sqrt(np.mean(A.var(axis=0))))
        self.scale_ = np.full(A.shape[1], rms if rms > 0 else 1.0)
        self._constant = np.zeros(A.shape[1], dtype=bool)
        return self


X_SCALINGS = ("unit", "global")


def _x_scaler(x_scaling: str) -> Standardizer:
    if x_scaling == "unit":
        return Standardizer()
    if x_scaling == "global":
        return GlobalScaler()
    raise ValueError(f"x_scaling must be one of {X_SCALINGS}, got {x_scaling!r}")


def _reduce(Xtr: np.ndarray, Xte: np.ndarray, n_components: int | None):
    if n_components is None:
        return Xtr, Xte
    n, p = Xtr.shape
    if (
        isinstance(n_components, bool)
        or not isinstance(n_components, (int, np.integer))
        or not 1 <= n_components <= min(n, p)
    ):
        raise ValueError(
            f"n_components must be an int in [1, min(n_train, n_features)] = [1, {min(n, p)}], "
            f"got {n_components!r}"
        )
    # Xtr is already centred by the standardisation, so this is PCA
    scores, comps = _top_components(Xtr, n_components)
    return scores, Xte @ comps.T


def _top_components(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` principal axes of a centred ``X`` (n, p) and the scores on them.

    With n < p (layers are wide) the eigendecomposition of the n × n Gram matrix gives the same
    axes as a thin SVD 10–30× faster; the axes' signs may differ from the SVD's, which ridge on
    the scores does not see. Falls back to the SVD when the k-th axis is numerically null.

    Returns
    -------
    scores : ndarray (n, k)
        ``X @ comps.T``.
    comps : ndarray (k, p)
        Orthonormal rows.
    """
    n, p = X.shape
    if n < p:
        w, U = np.linalg.eigh(X @ X.T)
        w, U = w[::-1][:k], U[:, ::-1][:, :k]
        if w[-1] > w[0] * 1e-8:  # singular values within 1e-4 of the top: accurate
            s = np.sqrt(w)
            return U * s, (U.T @ X) / s[:, None]
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    comps = Vt[:k]
    return X @ comps.T, comps


def _check_inputs(X_train, Y_train):
    X_train = as_float_array(X_train, "X_train", 2)
    Y_train = as_float_array(Y_train, "Y_train", 2)
    check_same_rows(X_train, Y_train, "X_train", "Y_train")
    return X_train, Y_train


def _predict(Xtr, Ytr, Xte, alphas, inner_cv, n_components, x_scaling="unit") -> np.ndarray:
    xs = _x_scaler(x_scaling).fit(Xtr)
    ys = Standardizer().fit(Ytr)
    Xtr_z, Xte_z = _reduce(xs.transform(Xtr), xs.transform(Xte), n_components)
    model = RidgeCV(alphas, cv=inner_cv, fit_intercept=False).fit(Xtr_z, ys.transform(Ytr))
    return model.predict(Xte_z)


def lp_predict(X_train, Y_train, X_test, alphas, inner_cv=5, n_components=None,
               x_scaling="unit") -> np.ndarray:
    """Fit the LP pipeline on a training split and predict a test split.

    Steps: z-score X and Y with training statistics (ddof=0; constant columns become
    0); optional PCA of X to ``n_components`` fitted on train; ``RidgeCV(alphas,
    cv=inner_cv, fit_intercept=False)`` with one alpha per target; predict.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Source features (a model layer or a source ROI).
    Y_train : array-like of shape (n_train, n_targets)
        Target responses (vertices).
    X_test : array-like of shape (n_test, n_features)
    alphas : array-like of shape (n_alphas,)
    inner_cv : int, scikit-learn splitter or None
        Ridge's alpha selection (int: unshuffled K-fold; None: efficient LOO).
    n_components : int or None
        PCA dimensionality of X; None keeps all features.
    x_scaling : {"unit", "global"}
        ``unit``: z-score every column of X; ``global``: centre the columns and divide all of
        them by one scale (:class:`GlobalScaler`), which keeps the features' geometry.

    Returns
    -------
    Y_pred : ndarray of shape (n_test, n_targets)
        Predictions in standardised target units ``(Y - mean_train) / sd_train``.
    """
    X_train, Y_train = _check_inputs(X_train, Y_train)
    X_test = as_float_array(X_test, "X_test", 2)
    if X_test.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"X_test has {X_test.shape[1]} features but X_train has {X_train.shape[1]}"
        )
    return _predict(X_train, Y_train, X_test, alphas, inner_cv, n_components, x_scaling)


def lp_oof_predict(
    X_train, Y_train, alphas, outer_cv=5, inner_cv=5, n_components=None, x_scaling="unit"
) -> np.ndarray:
    """Out-of-fold LP predictions on the training split.

    For each outer fold (unshuffled K-fold if an int), the whole pipeline of
    :func:`lp_predict` (standardisation, PCA, ridge with inner CV) is refitted on the
    fold's training part only and predicts its held-out part.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
    Y_train : array-like of shape (n_train, n_targets)
    alphas : array-like of shape (n_alphas,)
    outer_cv : int or scikit-learn splitter
        Must put every sample in exactly one held-out fold.
    inner_cv : int, scikit-learn splitter or None
    n_components : int or None
    x_scaling : {"unit", "global"}

    Returns
    -------
    Y_oof : ndarray of shape (n_train, n_targets)
        Each row predicted by the model that did not see it, in the units of that
        outer fold's training standardisation.
    """
    X_train, Y_train = _check_inputs(X_train, Y_train)
    if outer_cv is None:
        raise ValueError("outer_cv must be an int or a splitter, not None")
    splits = _resolve_cv(outer_cv, X_train)
    seen = np.zeros(X_train.shape[0], dtype=int)
    for _, test in splits:
        seen[test] += 1
    if not np.all(seen == 1):
        raise ValueError("outer_cv must hold out every sample exactly once (a partition)")
    out = np.empty(Y_train.shape)
    for train, test in splits:
        out[test] = _predict(
            X_train[train], Y_train[train], X_train[test], alphas, inner_cv, n_components,
            x_scaling,
        )
    return out
