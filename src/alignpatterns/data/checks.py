"""Structural checks shared by every dataset format (SPEC.md §1; ``reference/bmd_format.md``).

Each check raises :class:`~alignpatterns.data.safe_pickle.DataFormatError` whose message names the
file, what was expected and what was found. Whole-brain arrays are scanned in blocks of stimuli so a
check never allocates more than a small fraction of the betas.
"""

from __future__ import annotations

import re

import numpy as np

from alignpatterns.data.safe_pickle import DataFormatError

__all__ = ["check_betas", "check_ids", "nan_pattern", "implied_ids"]

_ID = re.compile(r"^vid(\d{4,})$")
#: Bytes of betas per block when scanning a whole-brain array.
CHUNK_BYTES = 1 << 26


def implied_ids(n: int, start: int = 1) -> list[str]:
    """``["vid0001", ...]``: ids of files that store no stimulus order (1-indexed)."""
    return [f"vid{i:04d}" for i in range(start, start + n)]


def check_ids(ids, where: str, split: str, start: int | None = None) -> list[str]:
    """Stimulus ids must be ``vidNNNN``, consecutive and ascending (from ``start`` if given).

    Parameters
    ----------
    ids : sequence
        Ids as stored (str or bytes).
    where : str
        File named in errors.
    split : str
        ``train`` or ``test``.
    start : int, optional
        Number the first id must have (test ids follow the train ids).

    Returns
    -------
    list of str
    """
    out = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
    if not out:
        raise DataFormatError(f"{where}: expected {split} stimulus ids, found none")
    m = _ID.match(out[0])
    if not m:
        raise DataFormatError(f"{where}: expected {split} stimulus ids like 'vid0001', found "
                              f"{out[0]!r} at position 0")
    first = int(m.group(1)) if start is None else start
    for k, sid in enumerate(out):
        want = f"vid{first + k:04d}"
        if sid != want:
            what = ("a duplicate" if out.count(sid) > 1
                    else "out of order" if want in out else f"{want} is missing")
            raise DataFormatError(
                f"{where}: expected {split} stimulus ids in order from vid{first:04d}; found "
                f"{sid!r} at position {k} where {want!r} was expected ({what})")
    return out


def check_betas(betas, where: str, split: str, reps: int, n_stimuli: int | None = None,
                n_vertices: int | None = None) -> np.ndarray:
    """Check a (stimuli, repetitions, vertices) betas array without copying it.

    Checks the type, dimensionality, axis order (repetitions on axis 1), sizes, dtype, that no value
    is infinite and that NaNs follow a pattern (:func:`nan_pattern`).

    Returns
    -------
    ndarray, float64, shape (n_stimuli, reps, n_vertices)
        ``betas`` itself when already float64 (the real files are), else one converted copy.
    """
    if not isinstance(betas, np.ndarray) or betas.ndim != 3:
        raise DataFormatError(f"{where}: expected {split} betas as a 3-D array (stimuli, "
                              f"repetitions, vertices), found {type(betas).__name__} "
                              f"{getattr(betas, 'shape', '')}")
    expected = "({}, {}, {})".format(n_stimuli if n_stimuli is not None else "n_stimuli", reps,
                                     n_vertices if n_vertices is not None else "n_vertices")
    if (betas.shape[1] != reps or (n_stimuli is not None and betas.shape[0] != n_stimuli)
            or (n_vertices is not None and betas.shape[2] != n_vertices)):
        hint = ""
        if reps in betas.shape and betas.shape[1] != reps:
            hint = " — the axes look swapped; BMD betas are (stimuli, repetitions, vertices)"
        raise DataFormatError(f"{where}: expected {split} betas of shape (stimuli, repetitions, "
                              f"vertices) = {expected}, found {betas.shape}{hint}")
    if not np.issubdtype(betas.dtype, np.floating):
        raise DataFormatError(f"{where}: expected floating-point betas, found {betas.dtype}")
    bad = nan_pattern(betas)
    if bad["n_inf"]:
        raise DataFormatError(f"{where}: expected finite betas (NaN for missing trials), found "
                              f"{bad['n_inf']} infinite values")
    if bad["n_scattered"]:
        s, r, v = bad["example"]
        raise DataFormatError(
            f"{where}: expected NaNs only in whole trials, whole vertices, or all repetitions of "
            f"a stimulus at a vertex; found {bad['n_scattered']} scattered NaN values (e.g. "
            f"stimulus index {s}, repetition {r}, vertex {v})")
    return betas.astype(np.float64, copy=False)


def nan_pattern(betas: np.ndarray) -> dict:
    """Classify the NaNs of a (stimuli, repetitions, vertices) array.

    A NaN at (s, r, v) is *patterned* when trial (s, r) is NaN at every vertex (a missing trial),
    or vertex v is NaN in every repetition of stimulus s (the vertex is dropped, SPEC.md §1).
    Anything else is *scattered*, which points to a corrupt or mis-assembled file. Both patterns
    lie within one stimulus, so the array is scanned in contiguous blocks of stimuli.

    Returns
    -------
    dict
        ``n_nan``, ``n_inf``, ``n_scattered``, ``missing_trials`` (list of (s, r)),
        ``example`` (s, r, v) of the first scattered NaN or None.
    """
    S, R, V = betas.shape
    step = max(1, CHUNK_BYTES // max(1, R * V * betas.itemsize))
    n_nan = n_inf = n_scattered = 0
    example, missing = None, []
    for a in range(0, S, step):
        blk = betas[a:a + step]
        nan = np.isnan(blk)
        k = int(nan.sum())
        n_inf += int(np.isinf(blk).sum())
        if not k or not V:
            continue
        n_nan += k
        trial = nan.all(axis=2)  # (s, r)
        missing += [(a + int(s), int(r)) for s, r in np.argwhere(trial)]
        loose = nan & ~trial[:, :, None] & ~nan.all(axis=1, keepdims=True)
        k = int(loose.sum())
        if k and example is None:
            s, r, v = (int(x[0]) for x in np.nonzero(loose))
            example = (a + s, r, v)
        n_scattered += k
    return {"n_nan": n_nan, "n_inf": n_inf, "n_scattered": n_scattered, "example": example,
            "missing_trials": missing}
