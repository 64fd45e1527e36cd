"""Feature-chunked Gram matrices shared by RDMs and CKA (private).

Features (units) are read in chunks along the last axis, converted to float64 one chunk
at a time and checked for bad values there, so a large (or memory-mapped, or float32)
array is never copied whole.
"""

from __future__ import annotations

import numpy as np

CHUNK_ELEMENTS = 2**25  # float64 elements per feature chunk (256 MiB)


def as_numeric(X, ndim: int, name: str = "X") -> np.ndarray:
    """X as a numpy array of a real dtype, without copying or converting it."""
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: expected a numeric array, got {type(X).__name__}") from exc
    if X.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise ValueError(f"{name}: expected a real numeric array, got dtype {X.dtype}")
    return X


def chunk_of(X, start: int, stop: int, ops, allow_nan: bool = False, name: str = "X"):
    """float64 copy of units ``start:stop`` (last axis), checked for bad values."""
    C = np.asarray(X[..., start:stop], dtype=np.float64)
    bad = np.isinf(C) if allow_nan else ~np.isfinite(C)
    if bad.any():
        where = np.argwhere(bad)[0]
        where[-1] += start
        what = "infinite" if allow_nan else "non-finite (NaN or inf)"
        raise ValueError(
            f"{name}: contains {what} values (first at index {tuple(int(w) for w in where)}) in "
            f"an array of shape {X.shape}; drop or impute them before calling"
        )
    return ops.asarray(C)


def gram_chunked(X, ops, chunk: int, center: str | None, name: str = "X"):
    """``Z Z^T`` (n, n) accumulated over unit chunks; Z = X centred per row or column."""
    n, P = X.shape
    if center == "rows":
        row_sum = ops.zeros(n)
        for start in range(0, P, chunk):
            row_sum += chunk_of(X, start, start + chunk, ops, name=name).sum(axis=1)
        row_mean = row_sum / P
    G = ops.zeros((n, n))
    for start in range(0, P, chunk):
        C = chunk_of(X, start, start + chunk, ops, name=name)
        if center == "rows":
            C = C - row_mean[:, None]
        elif center == "cols":  # translation invariant; better conditioned Gram matrix
            C = C - C.mean(axis=0)[None, :]
        G += C @ C.T
    return G
