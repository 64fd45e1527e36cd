"""Named random streams (SPEC.md §4 "Random streams").

Every resampling draw comes from ``SeedSequence([seed, key(labels)])`` where the key is a stable
hash of the labels that identify its cell and purpose (never Python's salted ``hash``). Adding a
model therefore changes no other candidate's draws.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stream", "stimulus_permutations"]


def _key(labels) -> int:
    text = "\x1f".join(str(x) for x in labels)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def stream(seed: int, *labels) -> np.random.Generator:
    """Generator for the cell and purpose named by ``labels``.

    Parameters
    ----------
    seed : int
        The config's ``seed``.
    *labels
        E.g. ``(measure, candidate, "stimulus-permutation")``.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), _key(labels)]))


def stimulus_permutations(seed: int, measure: str, candidate: str, n_draws: int,
                          n_stimuli: int) -> np.ndarray:
    """Stimulus permutations of one candidate under one measure.

    One stream per (measure, candidate): the same permutations serve every subject, target ROI
    and variant, so a draw permutes the candidate jointly (SPEC.md §4, N3).

    Returns
    -------
    perms : ndarray of int64, shape (n_draws, n_stimuli)
    """
    rng = stream(seed, measure, candidate, "stimulus-permutation")
    if n_draws <= 0:
        return np.empty((0, n_stimuli), dtype=np.int64)
    return np.stack([rng.permutation(n_stimuli) for _ in range(n_draws)]).astype(np.int64)
