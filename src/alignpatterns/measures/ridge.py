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

from ._backend import get_backend
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

def _centred_kernel(K, rows, train):
    """Kernel of rows against train rows after centring X on the train rows.

    ``K`` is ``X X^T`` of the (uncentred) data; returns ``(X[rows] - m) (X[train] - m)^T``
    with ``m = X[train].mean(axis=0)``, without touching X.
    """
    Ktt = K[train][:, train]
    Krt = K[rows][:, train]
    return Krt - Krt.mean(axis=1)[:, None] - Ktt.mean(axis=0)[None, :] + Ktt.mean()


class _Decomposition:
    """Diagonalised ridge problem for one training set.

    Primal (``n_features <= n_samples``): ``X = U diag(s) Vt``. Kernel: ``X X^T = Q diag(lam)
    Q^T``. In both, ``basis`` is U (or Q) and ``ev`` the squared singular values (lam),
    so that the ridge fit of ``Y`` at ``alpha`` is ``basis diag(ev / (ev + alpha))
    basis^T Y``. In kernel mode the training kernel is passed in (sub-blocks of one
    kernel of all samples serve every fold).
    """

    def __init__(self, ops, X=None, K=None):
        self.ops = ops
        self.kernel = K is not None
        if self.kernel:
            lam, Q = ops.eigh(K)
            self.basis, self.ev = Q, ops.clip_min(lam, 0.0)
        else:
            U, s, Vt = ops.svd(X)
            self.basis, self.ev, self.s, self.Vt = U, s**2, s, Vt

    def test_operator(self, X_test=None, K_test=None):
        """A (n_test, k) such that predictions are ``A @ diag(w(alpha)) @ basis^T Y``."""
        if self.kernel:
            return K_test @ self.basis
        return X_test @ self.Vt.T

    def weights(self, alphas):
        """w (len(alphas), k) matching :meth:`test_operator` and :meth:`coef`."""
        alphas = alphas[:, None]
        if self.kernel:
            return 1.0 / (self.ev[None, :] + alphas)
        return self.s[None, :] / (self.ev[None, :] + alphas)

    def coef(self, X, WB):
        """Primal coefficients (n_features, t) from ``W * (basis^T Y)`` (k, t)."""
        if self.kernel:
            return X.T @ (self.basis @ WB)
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
    backend : {"auto", "numpy", "torch", "torch_cpu", "torch_cuda"}
        Array backend. "auto" is torch on CUDA when a GPU is visible, else numpy;
        "torch" is torch on CUDA if available, else on CPU. Always float64.
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
        Coefficients refit on all training data (1-D if ``Y`` was 1-D). With more
        features than samples they are formed on first access; :meth:`predict` does
        not need them.
    intercept_ : ndarray of shape (n_targets,) or float
        Only meaningful with ``fit_intercept=True`` (zeros otherwise).
    cv_scores_ : ndarray of shape (n_targets,)
        Fold-mean negative MSE at the chosen alpha.
    alpha_scores_ : ndarray of shape (n_alphas, n_targets)
        Fold-mean negative MSE for every alpha.
    n_features_in_ : int
    backend_ : str
        The resolved backend.

    Notes
    -----
    Ties between alphas are broken towards the first (SPEC §2, as scikit-learn);
    himalaya adds ``1e-10 * log(alpha)`` to the scores, which favours the larger alpha
    on exact ties (e.g. an all-zero target) but gives the same choice otherwise.

    Cost: per fold one decomposition (an SVD of X, or an eigendecomposition of the
    fold's block of the kernel ``X X^T``, which is formed once for all folds) and one
    matrix product for all alphas at once, ``(n_alphas n_test, k) @ (k, n_targets)``
    with ``k = min(n_train, n_features)``; the validation error is then reduced
    without further products.
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
        ops = get_backend(self.backend)
        X = as_float_array(X, "X", 2)
        Y = as_float_array(Y, "Y", (1, 2))
        check_same_rows(X, Y, "X", "Y")
        alphas_np = as_float_array(self.alphas, "alphas", (0, 1)).reshape(-1)
        if alphas_np.size == 0 or np.any(alphas_np <= 0):
            raise ValueError(
                f"alphas must be a non-empty list of positive values, got {alphas_np}"
            )
        ravel = Y.ndim == 1
        if ravel:
            Y = Y[:, None]
        n, p = X.shape
        if n < 2:
            raise ValueError(f"RidgeCV needs at least 2 samples, got {n}")
        splits = None if self.cv is None else _resolve_cv(self.cv, X)
        if self.fit_intercept:
            x_off, y_off = X.mean(axis=0), Y.mean(axis=0)
            X, Y = X - x_off, Y - y_off
        else:
            x_off, y_off = np.zeros(p), np.zeros(Y.shape[1])
        n_targets = Y.shape[1]
        Xb, Yb, alphas = ops.asarray(X), ops.asarray(Y), ops.asarray(alphas_np)
        kernel = p > n
        K = Xb @ Xb.T if kernel else None

        full = None
        if splits is None:
            full = _Decomposition(ops, X=None if kernel else Xb, K=K)
            scores = self._loo_scores(ops, full, Yb, alphas)
        else:
            scores = ops.zeros((len(alphas_np), n_targets))
            for train, test in splits:
                scores += self._fold_scores(ops, Xb, K, Yb, train, test, alphas)
            scores = scores / len(splits)
        scores = ops.to_numpy(scores)

        if self.shared_alpha:
            idx = np.full(n_targets, int(np.argmax(scores.mean(axis=1))))
        else:
            idx = np.argmax(scores, axis=0)  # first index on ties
        self.alpha_scores_ = scores
        self.cv_scores_ = scores[idx, np.arange(n_targets)]
        self.best_alphas_ = alphas_np[idx]

        # refit on all training data with per-target alphas; keep the dual form
        if full is None:
            full = _Decomposition(ops, X=None if kernel else Xb, K=K)
        W_all = full.weights(alphas)  # (n_alphas, k)
        idx_b = ops.index(idx)
        WB = ops.empty((full.ev.shape[0], n_targets))
        for sl in _target_batches(n_targets, max(n, p), self.n_targets_batch):
            WB[:, sl] = W_all[idx_b[sl]].T * (full.basis.T @ Yb[:, sl])
        self._ops, self._full, self._WB, self._X = ops, full, WB, Xb
        self._x_off, self._y_off, self._ravel = x_off, y_off, ravel
        self._coef = None if kernel else ops.to_numpy(full.coef(Xb, WB))
        self.n_features_in_ = p
        self.backend_ = ops.name
        return self

    @property
    def coef_(self) -> np.ndarray:
        if not hasattr(self, "_WB"):
            raise AttributeError("RidgeCV is not fitted yet; call fit(X, Y) first")
        if self._coef is None:
            self._coef = self._ops.to_numpy(self._full.coef(self._X, self._WB))
        return self._coef[:, 0] if self._ravel else self._coef

    @property
    def intercept_(self):
        if not hasattr(self, "_WB"):
            raise AttributeError("RidgeCV is not fitted yet; call fit(X, Y) first")
        if not self.fit_intercept:
            icpt = np.zeros(self._y_off.shape[0])
        else:
            coef = self.coef_ if not self._ravel else self.coef_[:, None]
            icpt = self._y_off - self._x_off @ coef
        return float(icpt[0]) if self._ravel else icpt

    def _fold_scores(self, ops, X, K, Y, train, test, alphas):
        n_alphas, n_te, n_tr = alphas.shape[0], len(test), len(train)
        tr, te = ops.index(train), ops.index(test)
        if K is not None:
            if self.fit_intercept:
                dec = _Decomposition(ops, K=_centred_kernel(K, tr, tr))
                A = dec.test_operator(K_test=_centred_kernel(K, te, tr))
            else:
                dec = _Decomposition(ops, K=K[tr][:, tr])
                A = dec.test_operator(K_test=K[te][:, tr])
        else:
            Xtr, Xte = X[tr], X[te]
            if self.fit_intercept:
                m = Xtr.mean(axis=0)
                Xtr, Xte = Xtr - m, Xte - m
            dec = _Decomposition(ops, X=Xtr)
            A = dec.test_operator(X_test=Xte)
        k = dec.ev.shape[0]
        # all alphas in one product: rows (alpha, test sample)
        AW = (A[None, :, :] * dec.weights(alphas)[:, None, :]).reshape(n_alphas * n_te, k)
        # fold the basis into the operator when that is cheaper than projecting Y
        direct = n_alphas * n_te * n_tr <= n_alphas * n_te * k + k * n_tr
        M = AW @ dec.basis.T if direct else AW
        out = ops.empty((n_alphas, Y.shape[1]))
        rows = max(n_alphas * n_te, n_tr)
        for sl in _target_batches(Y.shape[1], rows, self.n_targets_batch):
            Ytr, Yte = Y[tr, sl], Y[te, sl]
            if self.fit_intercept:
                m = Ytr.mean(axis=0)
                Ytr, Yte = Ytr - m, Yte - m
            P = M @ Ytr if direct else M @ (dec.basis.T @ Ytr)
            P = P.reshape(n_alphas, n_te, -1)
            P -= Yte[None]
            out[:, sl] = ops.einsum("aij,aij->aj", P, P) * (-1.0 / n_te)
        return out

    def _loo_scores(self, ops, dec: _Decomposition, Y, alphas):
        n = Y.shape[0]
        U = dec.basis
        U2 = U**2
        out = ops.empty((alphas.shape[0], Y.shape[1]))
        for sl in _target_batches(Y.shape[1], n, self.n_targets_batch):
            Yb = Y[:, sl]
            B = U.T @ Yb
            for a in range(alphas.shape[0]):
                f = dec.ev / (dec.ev + alphas[a])  # hat-matrix eigenvalues
                h = U2 @ f
                if self.fit_intercept:
                    h = h + 1.0 / n  # unpenalised intercept
                resid = (Yb - U @ (f[:, None] * B)) / (1.0 - h)[:, None]
                out[a, sl] = -(resid**2).mean(axis=0)
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
        if not hasattr(self, "_WB"):
            raise RuntimeError("RidgeCV is not fitted yet; call fit(X, Y) first")
        X = as_float_array(X, "X", 2)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features but RidgeCV was fitted with {self.n_features_in_}"
            )
        Xc = X - self._x_off
        if self._coef is not None:
            pred = Xc @ self._coef
        else:  # dual form: (X X_train^T) Q (W * Q^T Y)
            ops = self._ops
            A = self._full.test_operator(K_test=ops.asarray(Xc) @ self._X.T)
            pred = ops.to_numpy(A @ self._WB)
        pred = pred + self._y_off
        return pred[:, 0] if self._ravel else pred
