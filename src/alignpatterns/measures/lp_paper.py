"""Linear predictivity exactly as the APA paper's released code (``lp.protocol: paper``).

The recipe (SPEC.md §4 "Paper preset"; ``reference/apa_method.md`` §2):

1. X (source) and Y (target vertices) in float32, each z-scored with the statistics of the
   **full** train split (ddof 0; a constant column becomes 0); the test split is transformed
   with the same statistics;
2. ``KFold(n_splits, shuffle=True, random_state=1)`` over the train stimuli;
3. per fold, scikit-learn ``RidgeCV(alphas)`` with its defaults: efficient leave-one-out
   (GCV) and one alpha shared by all target vertices, an unpenalised intercept;
4. score = scikit-learn R² (or Pearson r), averaged uniformly over target vertices;
   train score from the out-of-fold predictions of the 5 fold models, test score = mean over the
   fold models of each model's test score.

Our default LP (:mod:`alignpatterns.measures.encoding`) differs on purpose: train statistics
inside each outer fold (no leakage from the held-out fold), a per-vertex alpha by inner K-fold
CV, one model refit on all train stimuli for test, Pearson r, float64. See ``docs/apa.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PaperFit", "fit_paper_lp", "fold_scores", "permuted_scores", "PAPER_ALPHAS",
           "PAPER_RANDOM_STATE"]

PAPER_ALPHAS = tuple(float(a) for a in np.logspace(0, 9, 19))
PAPER_RANDOM_STATE = 1
SCORES = ("r2", "pearson")


@dataclass
class PaperFit:
    """Predictions of the paper's LP recipe for one source → target problem.

    Attributes
    ----------
    Y_train : ndarray, shape (n_train, n_targets)
        z-scored train targets (float32).
    Y_test : ndarray, shape (n_test, n_targets)
        Test targets z-scored with train statistics.
    oof : ndarray, shape (n_train, n_targets)
        Out-of-fold predictions (each stimulus by the fold model that did not see it).
    test : ndarray, shape (n_folds, n_test, n_targets)
        Test predictions of every fold model.
    alphas : ndarray, shape (n_folds,)
        The shared alpha chosen in each fold.
    held : tuple of ndarray
        Each fold's held-out train rows (the train score averages per fold, as the released
        code does); empty when the predictions come from elsewhere.
    """

    Y_train: np.ndarray
    Y_test: np.ndarray
    oof: np.ndarray
    test: np.ndarray
    alphas: np.ndarray
    held: tuple = ()


def _zscore(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    sd = train.std(axis=0)  # ddof 0, as sklearn's StandardScaler
    ok = sd > 0
    scale = np.where(ok, sd, 1).astype(train.dtype)
    return (np.where(ok, (train - mean) / scale, 0).astype(train.dtype),
            np.where(ok, (test - mean) / scale, 0).astype(train.dtype))


def fit_paper_lp(X_train, Y_train, X_test, Y_test, alphas: Sequence[float] = PAPER_ALPHAS,
                 n_splits: int = 5, random_state: int = PAPER_RANDOM_STATE) -> PaperFit:
    """Fit the released LP recipe.

    Parameters
    ----------
    X_train : array-like, shape (n_train, n_features)
    Y_train : array-like, shape (n_train, n_targets)
    X_test : array-like, shape (n_test, n_features)
    Y_test : array-like, shape (n_test, n_targets)
    alphas : sequence of float
        Ridge penalties (paper: ``logspace(0, 9, 19)``).
    n_splits : int
        Folds of the shuffled K-fold (paper: 5).
    random_state : int
        Seed of the K-fold shuffle (paper: 1).

    Returns
    -------
    PaperFit
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    Xtr, Xte = _zscore(np.asarray(X_train, dtype=np.float32),
                       np.asarray(X_test, dtype=np.float32))
    Ytr, Yte = _zscore(np.asarray(Y_train, dtype=np.float32),
                       np.asarray(Y_test, dtype=np.float32))
    if Xtr.shape[0] != Ytr.shape[0] or Xte.shape[0] != Yte.shape[0]:
        raise ValueError(f"X and Y disagree on stimuli: train {Xtr.shape[0]} vs "
                         f"{Ytr.shape[0]}, test {Xte.shape[0]} vs {Yte.shape[0]}")
    oof = np.empty_like(Ytr)
    test = np.empty((n_splits, *Yte.shape), dtype=np.float32)
    chosen = np.empty(n_splits)
    helds = []
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    for k, (fit, held) in enumerate(folds.split(Xtr)):
        model = RidgeCV(alphas=np.asarray(alphas, dtype=float)).fit(Xtr[fit], Ytr[fit])
        oof[held] = model.predict(Xtr[held])
        test[k] = model.predict(Xte)
        chosen[k] = float(model.alpha_)
        helds.append(held)
    return PaperFit(Ytr, Yte, oof, test, chosen, tuple(helds))


def _per_vertex(Y: np.ndarray, P: np.ndarray, score: str) -> np.ndarray:
    """R² (sklearn's, 1 − SS_res/SS_tot) or Pearson r per column; NaN for constant columns."""
    Y = np.asarray(Y, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    Yc = Y - Y.mean(axis=0)
    ss_tot = np.einsum("ij,ij->j", Yc, Yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        if score == "r2":
            ss_res = np.einsum("ij,ij->j", Y - P, Y - P)
            return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
        Pc = P - P.mean(axis=0)
        den = np.sqrt(ss_tot * np.einsum("ij,ij->j", Pc, Pc))
        return np.where(den > 0, np.einsum("ij,ij->j", Yc, Pc) / den, np.nan)


def _mean(v: np.ndarray) -> float:
    return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan


def fold_scores(fit: PaperFit, split: str, score: str = "r2",
                edges: Sequence[int] | None = None) -> list[float]:
    """Uniform average over target vertices of ``score``, per block of vertices.

    Parameters
    ----------
    fit : PaperFit
    split : {"train", "test"}
        ``train``: the released code's cross-validated score, Σ_k n_k·score_k / n over the
        folds, each fold's score on its held-out rows (R² around that fold's own mean); without
        ``fit.held``, the score of the pooled out-of-fold predictions. ``test``: mean over the
        fold models.
    score : {"r2", "pearson"}
    edges : sequence of int, optional
        Column boundaries of target blocks (default: one block of all columns).

    Returns
    -------
    list of float, one per block
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    n = fit.Y_train.shape[1]
    edges = [0, n] if edges is None else list(edges)
    blocks = list(zip(edges[:-1], edges[1:], strict=True))
    if split == "train":
        if not fit.held:
            v = _per_vertex(fit.Y_train, fit.oof, score)
            return [_mean(v[lo:hi]) for lo, hi in blocks]
        per_fold = np.array([[_mean(v[lo:hi]) for lo, hi in blocks]
                             for v in (_per_vertex(fit.Y_train[h], fit.oof[h], score)
                                       for h in fit.held)])
        sizes = np.array([len(h) for h in fit.held], dtype=float)
        with np.errstate(invalid="ignore"):
            return [float(x) for x in sizes @ per_fold / sizes.sum()]
    per_fold = np.array([[_mean(v[lo:hi]) for lo, hi in blocks]
                         for v in (_per_vertex(fit.Y_test, P, score) for P in fit.test)])
    with np.errstate(invalid="ignore"):
        return [float(x) for x in per_fold.mean(axis=0)]


def permuted_scores(fit: PaperFit, perms: np.ndarray, score: str = "r2",
                    edges: Sequence[int] | None = None) -> np.ndarray:
    """Test scores with the predictions' stimuli permuted (no refit), mean over fold models.

    With y, p the columns of one vertex, Σ_i y_i p_π(i) is the only term that depends on π
    (R² = 1 − (Σy² − 2Σ y p_π + Σp²)/SS_tot; Pearson likewise on centred unit columns), so the
    mean over vertices is Σ_i G[i, π(i)] for one matrix G per fold.

    Parameters
    ----------
    fit : PaperFit
    perms : ndarray of int, shape (n_draws, n_test)
    score : {"r2", "pearson"}
    edges : sequence of int, optional

    Returns
    -------
    null : ndarray, shape (n_draws, n_blocks)
    """
    Y = np.asarray(fit.Y_test, dtype=np.float64)
    n = Y.shape[1]
    edges = [0, n] if edges is None else list(edges)
    rows = np.arange(Y.shape[0])
    out = np.zeros((len(perms), len(edges) - 1))
    for P in fit.test:
        P = np.asarray(P, dtype=np.float64)
        for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            y, p = Y[:, lo:hi], P[:, lo:hi]
            yc = y - y.mean(axis=0)
            ss_tot = np.einsum("ij,ij->j", yc, yc)
            if score == "r2":
                ok = ss_tot > 0
                if not ok.any():
                    out[:, b] = np.nan
                    continue
                y, p, ss = y[:, ok], p[:, ok], ss_tot[ok]
                const = 1.0 - np.mean((np.einsum("ij,ij->j", y, y)
                                       + np.einsum("ij,ij->j", p, p)) / ss)
                G = (y / ss) @ p.T  # (n_test, n_test)
                out[:, b] += const + 2.0 * G[rows[None, :], perms].sum(axis=1) / ok.sum()
            else:
                pc = p - p.mean(axis=0)
                npr = np.linalg.norm(pc, axis=0)
                ok = (ss_tot > 0) & (npr > 0)
                if not ok.any():
                    out[:, b] = np.nan
                    continue
                G = (yc[:, ok] / np.sqrt(ss_tot[ok])) @ (pc[:, ok] / npr[ok]).T
                out[:, b] += G[rows[None, :], perms].sum(axis=1) / ok.sum()
    return out / len(fit.test)
