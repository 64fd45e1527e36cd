"""Per-target prediction scores."""

from __future__ import annotations

import warnings

import numpy as np

from ._validation import as_float_array

__all__ = ["correlation_score", "r2_score"]


def _pair(y_true, y_pred):
    y_true = as_float_array(y_true, "y_true", (1, 2))
    y_pred = as_float_array(y_pred, "y_pred", (1, 2))
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape; got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.shape[0] < 2:
        raise ValueError(f"scores need at least 2 samples, got {y_true.shape[0]}")
    ravel = y_true.ndim == 1
    if ravel:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    return y_true, y_pred, ravel


def _finish(num, den, ravel, what):
    bad = ~(den > 0)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=~bad)
    if bad.any():
        warnings.warn(
            f"{what}: {int(bad.sum())} target(s) are constant; their score is NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return float(out[0]) if ravel else out


def correlation_score(y_true, y_pred):
    """Pearson correlation between true and predicted values, per target.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_targets)
    y_pred : array-like, same shape as ``y_true``

    Returns
    -------
    r : float or ndarray of shape (n_targets,)
        NaN, with a RuntimeWarning, where ``y_true`` or ``y_pred`` is constant.
    """
    y_true, y_pred, ravel = _pair(y_true, y_pred)
    t = y_true - y_true.mean(axis=0)
    p = y_pred - y_pred.mean(axis=0)
    num = np.einsum("ij,ij->j", t, p)
    den = np.sqrt(np.einsum("ij,ij->j", t, t) * np.einsum("ij,ij->j", p, p))
    r = _finish(num, den, ravel, "correlation_score")
    return np.clip(r, -1.0, 1.0) if not ravel else float(np.clip(r, -1.0, 1.0))


def r2_score(y_true, y_pred):
    """Coefficient of determination per target (``1 - SS_res / SS_tot``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_targets)
    y_pred : array-like, same shape as ``y_true``

    Returns
    -------
    r2 : float or ndarray of shape (n_targets,)
        Can be negative. NaN, with a RuntimeWarning, where ``y_true`` is constant.
    """
    y_true, y_pred, ravel = _pair(y_true, y_pred)
    ss_res = np.sum((y_true - y_pred) ** 2, axis=0)
    t = y_true - y_true.mean(axis=0)
    ss_tot = np.einsum("ij,ij->j", t, t)
    frac = _finish(ss_res, ss_tot, ravel, "r2_score")
    return 1.0 - frac
