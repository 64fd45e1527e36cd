"""Linear predictivity (LP): standardise, optionally reduce, ridge, predict.

Statistics (means, standard deviations, PCA) always come from the training part only.
Predictions are returned in standardised target units; score them separately with
:func:`~alignpatterns.measures.scores.correlation_score`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_float_array, check_same_rows
from .ridge import RidgeCV, _resolve_cv

__all__ = ["Standardizer", "LPDecomposition", "lp_decompose", "lp_predict", "lp_oof_predict",
           "lp_predict_decomposed", "lp_oof_predict_decomposed"]


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


def _scale_reduce(Xtr, Xte, n_components, x_scaling) -> tuple[np.ndarray, np.ndarray]:
    """The source side of the pipeline: scale with training statistics, then PCA."""
    xs = _x_scaler(x_scaling).fit(Xtr)
    return _reduce(xs.transform(Xtr), xs.transform(Xte), n_components)


def _ridge_predict(Xtr_z, Ytr, Xte_z, alphas, inner_cv) -> np.ndarray:
    """The target side: z-score Y with training statistics, ridge, predict."""
    ys = Standardizer().fit(Ytr)
    model = RidgeCV(alphas, cv=inner_cv, fit_intercept=False).fit(Xtr_z, ys.transform(Ytr))
    return model.predict(Xte_z)


def _predict(Xtr, Ytr, Xte, alphas, inner_cv, n_components, x_scaling="unit") -> np.ndarray:
    Xtr_z, Xte_z = _scale_reduce(Xtr, Xte, n_components, x_scaling)
    return _ridge_predict(Xtr_z, Ytr, Xte_z, alphas, inner_cv)


@dataclass(frozen=True)
class LPDecomposition:
    """The source side of the LP pipeline (scaling and PCA), computed once for every target.

    The source's transforms depend on the source and the split only, so one decomposition of a
    model layer serves every subject and ROI (DESIGN.md, "Compute once").

    Attributes
    ----------
    train, test : ndarray, shapes (n_train, k) and (n_test, k)
        The training split scaled and reduced with its own statistics, and the test split in
        the same coordinates (for the test predictions).
    folds : tuple of (train_idx, test_idx, train, test), or None
        Per outer fold: indices into the training split and the same two matrices fitted on
        the fold's training part only (for the out-of-fold train scores); None when only the
        test fit was decomposed.
    n_components : int or None
    x_scaling : str
    """

    train: np.ndarray
    test: np.ndarray
    folds: tuple
    n_components: int | None
    x_scaling: str


def lp_decompose(X_train, X_test, outer_cv=5, n_components=None, x_scaling="unit",
                 folds: bool = True) -> LPDecomposition:
    """Scale and reduce one LP source for the test fit and for every outer fold.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
    X_test : array-like of shape (n_test, n_features)
    outer_cv : int or scikit-learn splitter
        The outer folds of the out-of-fold train scores (a partition of the training split).
    n_components : int or None
    x_scaling : {"unit", "global"}
    folds : bool
        False: only the test fit's decomposition (``folds`` is then None).

    Returns
    -------
    LPDecomposition
        :func:`lp_predict_decomposed` and :func:`lp_oof_predict_decomposed` on it give exactly
        :func:`lp_predict` and :func:`lp_oof_predict` on the raw source.
    """
    X_train = as_float_array(X_train, "X_train", 2)
    X_test = as_float_array(X_test, "X_test", 2)
    if X_test.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"X_test has {X_test.shape[1]} features but X_train has {X_train.shape[1]}"
        )
    train, test = _scale_reduce(X_train, X_test, n_components, x_scaling)
    parts = None
    if folds:
        parts = tuple((tr, te, *_scale_reduce(X_train[tr], X_train[te], n_components, x_scaling))
                      for tr, te in _outer_splits(outer_cv, X_train))
    return LPDecomposition(train, test, parts, n_components, x_scaling)


def _targets_for(dec: LPDecomposition, Y_train) -> np.ndarray:
    Y_train = as_float_array(Y_train, "Y_train", 2)
    check_same_rows(dec.train, Y_train, "the decomposed source", "Y_train")
    return Y_train


def lp_predict_decomposed(dec: LPDecomposition, Y_train, alphas, inner_cv=5) -> np.ndarray:
    """:func:`lp_predict` from a precomputed source decomposition.

    Returns
    -------
    Y_pred : ndarray of shape (n_test, n_targets)
    """
    return _ridge_predict(dec.train, _targets_for(dec, Y_train), dec.test, alphas, inner_cv)


def lp_oof_predict_decomposed(dec: LPDecomposition, Y_train, alphas, inner_cv=5) -> np.ndarray:
    """:func:`lp_oof_predict` from a precomputed source decomposition.

    Returns
    -------
    Y_oof : ndarray of shape (n_train, n_targets)
    """
    Y_train = _targets_for(dec, Y_train)
    if dec.folds is None:
        raise ValueError("this LP decomposition has no outer folds (lp_decompose(folds=False))")
    out = np.empty(Y_train.shape)
    for tr, te, Xtr_z, Xte_z in dec.folds:
        out[te] = _ridge_predict(Xtr_z, Y_train[tr], Xte_z, alphas, inner_cv)
    return out


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
    out = np.empty(Y_train.shape)
    for train, test in _outer_splits(outer_cv, X_train):
        out[test] = _predict(
            X_train[train], Y_train[train], X_train[test], alphas, inner_cv, n_components,
            x_scaling,
        )
    return out


def _outer_splits(outer_cv, X_train: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The outer folds; they must hold out every training sample exactly once."""
    if outer_cv is None:
        raise ValueError("outer_cv must be an int or a splitter, not None")
    splits = _resolve_cv(outer_cv, X_train)
    seen = np.zeros(X_train.shape[0], dtype=int)
    for _, test in splits:
        seen[test] += 1
    if not np.all(seen == 1):
        raise ValueError("outer_cv must hold out every sample exactly once (a partition)")
    return splits
