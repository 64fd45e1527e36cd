"""Input checks shared by the measures modules (private)."""

from __future__ import annotations

import numpy as np


def as_float_array(x, name: str, ndim: int | tuple[int, ...], *, allow_nan: bool = False):
    """Return ``x`` as a float64 array after checking its dimensionality and values.

    Parameters
    ----------
    x : array-like
        Input.
    name : str
        Name used in error messages.
    ndim : int or tuple of int
        Accepted number(s) of dimensions.
    allow_nan : bool
        If True, NaN is accepted (infinities never are).

    Returns
    -------
    out : ndarray of float64
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a numeric array, got {type(x).__name__}") from exc
    accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in accepted:
        want = " or ".join(f"{d}-D" for d in accepted)
        raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if allow_nan:
        bad = np.isinf(arr)
        if bad.any():
            raise ValueError(
                f"{name}: contains {int(bad.sum())} infinite value(s); "
                "remove or replace them before calling"
            )
    else:
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{name}: contains {int(bad.sum())} non-finite value(s) (NaN or inf) in an "
                f"array of shape {arr.shape}; drop or impute them before calling"
            )
    return arr


def check_same_rows(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same number of rows (samples)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples (rows); "
            f"got {a.shape[0]} and {b.shape[0]}"
        )
