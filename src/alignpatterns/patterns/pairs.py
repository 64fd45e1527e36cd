"""Brain–brain subject pairs that APA uses (``apa.partners``; SPEC.md §4 "Paper preset").

Our default uses every ordered pair s′ → s. The paper's released code drew a few random source
partners per target subject (≈ 5 of 9, ≈ 50 ordered pairs) with no reciprocal pairs; its draw
was unseeded, so the published lists cannot be recovered. :func:`partner_pairs` draws such a
selection from a named random stream instead, so the same seed gives the same pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["partner_pairs", "select_pairs"]


def partner_pairs(n_subjects: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A random set of ordered pairs: ≤ ``k`` source partners per target, none reciprocal.

    The subjects are put on a circle in random order and each target receives from the next
    min(k, ⌊(S−1)/2⌋) subjects clockwise, so every subject is a target and a source equally
    often and no pair is reciprocal. When k exceeds ⌊(S−1)/2⌋ and S is even, the first half
    of the circle also receives from the opposite subject. With S = 10 and k = 5 that is 4 or
    5 partners per target, 45 pairs: 5 for every target would need 50 of the 45 unordered
    pairs, more than "no reciprocal pairs" allows.

    Parameters
    ----------
    n_subjects : int
        S ≥ 2.
    k : int
        Partners per target, ≥ 1.
    rng : numpy.random.Generator

    Returns
    -------
    P : ndarray of bool, shape (S, S)
        ``P[s′, s]``: s′ is a source partner of target s. Never ``P[a, b] & P[b, a]``, never
        the diagonal.
    """
    S = int(n_subjects)
    if S < 2 or int(k) < 1:
        raise ValueError(f"partner pairs need ≥ 2 subjects and k ≥ 1; got {S} and {k}")
    order = rng.permutation(S)
    m = (S - 1) // 2
    P = np.zeros((S, S), dtype=bool)
    for i in range(S):
        for d in range(1, min(int(k), m) + 1):
            P[order[(i + d) % S], order[i]] = True
        if int(k) > m and S % 2 == 0 and i < S // 2:  # the opposite subject, first half only
            P[order[i + S // 2], order[i]] = True
    return P


def select_pairs(bb: pd.DataFrame, subjects: Sequence[str], P: np.ndarray) -> pd.DataFrame:
    """Rows of a ``brain_brain`` table whose (source_subject → target_subject) is in ``P``.

    Parameters
    ----------
    bb : DataFrame
        ``brain_brain`` rows (columns source_subject, target_subject, ...).
    subjects : sequence of str
        Subject ids in the order of ``P``'s axes.
    P : ndarray of bool, shape (S, S)

    Returns
    -------
    DataFrame
        The kept rows (index preserved).
    """
    idx = {s: i for i, s in enumerate(subjects)}
    src = bb["source_subject"].map(idx)
    tgt = bb["target_subject"].map(idx)
    ok = src.notna() & tgt.notna()
    keep = np.zeros(len(bb), dtype=bool)
    keep[ok.to_numpy()] = P[src[ok].astype(int).to_numpy(), tgt[ok].astype(int).to_numpy()]
    return bb[keep]
