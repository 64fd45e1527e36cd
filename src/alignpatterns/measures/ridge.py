"""Ridge regression with per-target cross-validated regularisation.

Semantics follow himalaya's ``RidgeCV`` (solver "svd"): for every target, the chosen
alpha is the first argmax over ``alphas`` of the fold-mean negative mean squared error
(each fold's MSE averaged over its validation samples, then averaged over folds); the
model is then refit on all training data with the per-target alphas. ``cv=None`` gives
exact efficient leave-one-out (generalised cross-validation as scikit-learn's
``RidgeCV(alpha_per_target=True)``).

One decomposition per fold (an SVD of X, or an eigendecomposition of the linear kernel
``X X^T`` when there are more features than samples) is shared by all alphas and
targets; targets are processed in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ._validation import as_float_array, check_same_rows

__all__ = ["RidgeCV", "kfold_splits"]

_TARGET_BLOCK = 2**24  # float64 elements per (samples x targets) block, ~128 MiB


def kfold_splits(n_samples: int, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Unshuffled K-fold splits, identical to ``sklearn.model_selection.KFold(n_splits)``.

    Parameters
    ----------
    n_samples : int
    n_splits : int
        At least 2 and at most ``n_samples``.

    Returns
    -------
    splits : list of (train_indices, test_indices)
        Consecutive test blocks; the first ``n_samples % n_splits`` are one larger.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)):
        raise ValueError(f"n_splits must be an int, got {n_splits!r}")
    if n_splits < 2:
        raise ValueError(f"K-fold cross-validation needs n_splits >= 2, got {n_splits}")
    if n_splits > n_samples:
        raise ValueError(
            f"cannot have n_splits={n_splits} greater than the number of samples {n_samples}"
        )
    sizes = np.full(n_splits, n_samples // n_splits)
    sizes[: n_samples % n_splits] += 1
    idx = np.arange(n_samples)
    out = []
    start = 0
    for size in sizes:
        test = idx[start : start + size]
        train = np.concatenate([idx[:start], idx[start + size :]])
        out.append((train, test))
        start += size
    return out


def _resolve_cv(cv, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    n = X.shape[0]
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        splits = kfold_splits(n, int(cv))
    elif hasattr(cv, "split"):
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X)]
    elif isinstance(cv, Iterable):
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
    else:
        raise ValueError(f"cv must be an int, a scikit-learn splitter or None, got {cv!r}")
    if not splits:
        raise ValueError("cv produced no splits")
    for tr, te in splits:
        if len(tr) == 0 or len(te) == 0:
            raise ValueError("cv produced an empty train or validation set")
        if max(tr.max(), te.max()) >= n or min(tr.min(), te.min()) < 0:
            raise ValueError("cv indices exceed the number of samples")
    return splits


class _Decomposition:
    """Diagonalised ridge problem for one training matrix.

    Primal (``n_features <= n_samples``): ``X = U diag(s) Vt``. Kernel: ``X X^T = Q diag(lam)
    Q^T``. In both, ``basis`` is U (or Q) and ``ev`` the squared singular values (lam),
    so that the ridge fit of ``Y`` at ``alpha`` is ``basis diag(ev / (ev + alpha))
    basis^T Y``.
    """

    def __init__(self, X: np.ndarray):
        n, p = X.shape
        self.X = X
        self.kernel = p > n
        if self.kernel:
            lam, Q = np.linalg.eigh(X @ X.T)
            np.maximum(lam, 0.0, out=lam)
            self.basis, self.ev = Q, lam
            self.s = None
        else:
            U, s, Vt = np.linalg.svd(X, full_matrices=False)
            self.basis, self.ev, self.s, self.Vt = U, s**2, s, Vt

    def test_operator(self, X_test: np.ndarray) -> np.ndarray:
        """A (n_test, k) such that predictions are ``A @ diag(w(alpha)) @ basis^T Y``."""
        if self.kernel:
            return (X_test @ self.X.T) @ self.basis
        return X_test @ self.Vt.T

    def weights(self, alphas: np.ndarray) -> np.ndarray:
        """w (len(alphas), k) matching :meth:`test_operator` and :meth:`coef`."""
        alphas = np.asarray(alphas, dtype=np.float64)[:, None]
        if self.kernel:
            return 1.0 / (self.ev[None, :] + alphas)
        return self.s[None, :] / (self.ev[None, :] + alphas)

    def coef(self, WB: np.ndarray) -> np.ndarray:
        """Primal coefficients (n_features, t) from ``W * (basis^T Y)`` (k, t)."""
        if self.kernel:
            return self.X.T @ (self.basis @ WB)
        return self.Vt.T @ WB


def _target_batches(n_targets: int, n_rows: int, batch: int | None) -> Iterator[slice]:
    if batch is None:
        batch = max(1, _TARGET_BLOCK // max(n_rows, 1))
    for start in range(0, n_targets, batch):
        yield slice(start, min(start + batch, n_targets))


class RidgeCV:
    """Ridge regression with cross-validated alpha per target (himalaya semantics).

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        Candidate regularisation strengths, all > 0.
    cv : int, scikit-learn splitter, iterable of (train, test) or None
        An int is unshuffled K-fold (``KFold(cv)``); None is exact efficient
        leave-one-out (as scikit-learn's ``RidgeCV`` GCV mode).
    fit_intercept : bool
        If True, X and Y are centred on the whole training set and again per training
        fold (as himalaya), and ``intercept_`` is fitted. No scaling is ever done.
    backend : {"auto", "numpy"}
        Array backend; only numpy is implemented ("auto" means numpy).
    shared_alpha : bool, keyword-only
        If True, one alpha for all targets: the first argmax of the fold-mean score
        averaged over targets (himalaya ``local_alpha=False``).
    n_targets_batch : int or None, keyword-only
        Targets processed at once (memory); None picks a size automatically.

    Attributes
    ----------
    best_alphas_ : ndarray of shape (n_targets,)
        Selected alpha per target.
    coef_ : ndarray of shape (n_features, n_targets) or (n_features,)
        Coefficients refit on all training data (1-D if ``Y`` was 1-D).
    intercept_ : ndarray of shape (n_targets,) or float
        Only meaningful with ``fit_intercept=True`` (zeros otherwise).
    cv_scores_ : ndarray of shape (n_targets,)
        Fold-mean negative MSE at the chosen alpha.
    alpha_scores_ : ndarray of shape (n_alphas, n_targets)
        Fold-mean negative MSE for every alpha.
    n_features_in_ : int

    Notes
    -----
    Ties between alphas are broken towards the first (SPEC §2, as scikit-learn);
    himalaya adds ``1e-10 * log(alpha)`` to the scores, which favours the larger alpha
    on exact ties (e.g. an all-zero target) but gives the same choice otherwise.
    """

    def __init__(
        self,
        alphas,
        cv=5,
        fit_intercept: bool = False,
        backend: str = "auto",
        *,
        shared_alpha: bool = False,
        n_targets_batch: int | None = None,
    ):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.shared_alpha = shared_alpha
        self.n_targets_batch = n_targets_batch
        self.backend = backend

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y) -> RidgeCV:
        """Select alphas by cross-validation and refit on all of ``X``, ``Y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : RidgeCV
        """
        if self.backend not in ("auto", "numpy"):
            raise NotImplementedError(
                f"backend={self.backend!r} is not implemented; use 'auto' or 'numpy'"
            )
        X = as_float_array(X, "X", 2)
        Y = as_float_array(Y, "Y", (1, 2))
        check_same_rows(X, Y, "X", "Y")
        alphas = as_float_array(self.alphas, "alphas", (0, 1)).reshape(-1)
        if alphas.size == 0 or np.any(alphas <= 0):
            raise ValueError(f"alphas must be a non-empty list of positive values, got {alphas}")
        ravel = Y.ndim == 1
        if ravel:
            Y = Y[:, None]
        n, p = X.shape
        if n < 2:
            raise ValueError(f"RidgeCV needs at least 2 samples, got {n}")
        if self.fit_intercept:
            x_off, y_off = X.mean(axis=0), Y.mean(axis=0)
            X, Y = X - x_off, Y - y_off
        n_targets = Y.shape[1]

        full = None
        if self.cv is None:
            full = _Decomposition(X)
            scores = self._loo_scores(full, Y, alphas)
        else:
            splits = _resolve_cv(self.cv, X)
            scores = np.zeros((len(alphas), n_targets))
            for train, test in splits:
                scores += self._fold_scores(X, Y, train, test, alphas)
            scores /= len(splits)

        if self.shared_alpha:
            idx = np.full(n_targets, int(np.argmax(scores.mean(axis=1))))
        else:
            idx = np.argmax(scores, axis=0)  # first index on ties
        self.alpha_scores_ = scores
        self.cv_scores_ = scores[idx, np.arange(n_targets)]
        self.best_alphas_ = alphas[idx]

        # refit on all training data with per-target alphas
        if full is None:
            full = _Decomposition(X)
        coef = np.empty((p, n_targets))
        W_all = full.weights(alphas)  # (n_alphas, k)
        for sl in _target_batches(n_targets, max(n, p), self.n_targets_batch):
            B = full.basis.T @ Y[:, sl]
            coef[:, sl] = full.coef(W_all[idx[sl]].T * B)
        intercept = y_off - x_off @ coef if self.fit_intercept else np.zeros(n_targets)
        self.coef_ = coef[:, 0] if ravel else coef
        self.intercept_ = float(intercept[0]) if ravel else intercept
        self.n_features_in_ = p
        return self

    def _fold_scores(self, X, Y, train, test, alphas) -> np.ndarray:
        Xtr, Xte = X[train], X[test]
        if self.fit_intercept:
            m = Xtr.mean(axis=0)
            Xtr, Xte = Xtr - m, Xte - m
        dec = _Decomposition(Xtr)
        A = dec.test_operator(Xte)  # (n_test, k)
        W = dec.weights(alphas)  # (n_alphas, k)
        out = np.empty((len(alphas), Y.shape[1]))
        for sl in _target_batches(Y.shape[1], max(len(train), dec.ev.size), self.n_targets_batch):
            Ytr, Yte = Y[train, sl], Y[test, sl]
            if self.fit_intercept:
                m = Ytr.mean(axis=0)
                Ytr, Yte = Ytr - m, Yte - m
            B = dec.basis.T @ Ytr  # (k, t)
            for a in range(len(alphas)):
                pred = A @ (W[a][:, None] * B)
                out[a, sl] = -np.mean((Yte - pred) ** 2, axis=0)
        return out

    def _loo_scores(self, dec: _Decomposition, Y: np.ndarray, alphas) -> np.ndarray:
        n = Y.shape[0]
        U = dec.basis
        U2 = U**2
        out = np.empty((len(alphas), Y.shape[1]))
        for sl in _target_batches(Y.shape[1], n, self.n_targets_batch):
            Yb = Y[:, sl]
            B = U.T @ Yb
            for a, alpha in enumerate(alphas):
                f = dec.ev / (dec.ev + alpha)  # hat-matrix eigenvalues
                h = U2 @ f
                if self.fit_intercept:
                    h = h + 1.0 / n  # unpenalised intercept
                resid = (Yb - U @ (f[:, None] * B)) / (1.0 - h)[:, None]
                out[a, sl] = -np.mean(resid**2, axis=0)
        return out

    # --------------------------------------------------------------- prediction
    def predict(self, X) -> np.ndarray:
        """Predict targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Y_pred : ndarray of shape (n_samples, n_targets) or (n_samples,)
        """
        if not hasattr(self, "coef_"):
            raise RuntimeError("RidgeCV is not fitted yet; call fit(X, Y) first")
        X = as_float_array(X, "X", 2)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features but RidgeCV was fitted with {self.n_features_in_}"
            )
        return X @ self.coef_ + self.intercept_
