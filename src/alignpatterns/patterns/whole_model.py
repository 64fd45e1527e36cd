"""Whole-model APA variant (SPEC.md §4 "Whole-model variant").

A candidate that claims to model every ROI at once must reproduce the brain's ROI × ROI structure
between its own ROI-assigned layers: M_m[r, r′] = f(Z_{ℓ*(m,r)} → Z_{ℓ*(m,r′)}) is compared with
the brain's group-mean off-diagonal matrix Ā[r, r′] (mean over ordered subject pairs of
A_{s′→s}[r, r′], test split). Significance is a Mantel-type test: one permutation of the ROI labels
applied to rows and columns of Ā at once. ROI pairs whose assigned layers coincide (M would be a
self-comparison) are excluded and counted.

Layer assignment ℓ*(m, r) is the group-level train selection: the layer with the highest mean
train score over all subjects (the whole-model matrix has no target subject to leave out).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alignpatterns.measures.stats import permutation_p_value
from alignpatterns.patterns.alignment import LPOptions, _scores_and_null, model_representation
from alignpatterns.patterns.apa import ModelScores, _corr, _rowwise_corr, best_layer, brain_tensor
from alignpatterns.patterns.streams import stream

__all__ = ["group_layers", "model_roi_matrix", "brain_roi_matrix", "mantel",
           "whole_model_rows"]


def group_layers(ms: ModelScores) -> np.ndarray:
    """ℓ*(m, r): per ROI, the layer with the highest mean train score over subjects.

    Parameters
    ----------
    ms : ModelScores
        Scores of one candidate, ``train`` shaped (n_layers, n_subjects, n_rois).

    Returns
    -------
    layers : ndarray of int, shape (n_rois,)
        Layer index per ROI; -1 where the ROI has no finite train score.
    """
    with warnings.catch_warnings():  # all-NaN ROI columns (missing cells)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(ms.train, axis=1)  # (n_layers, n_rois)
    return np.where(np.isfinite(mean).any(axis=0), best_layer(mean), -1).astype(np.int64)


def model_roi_matrix(features: Mapping[str, tuple[np.ndarray, np.ndarray]],
                     layers: Sequence[str], assigned: Sequence[int], measure: str,
                     lp: LPOptions) -> np.ndarray:
    """M[r, r′] = f(Z_{ℓ*(r)} → Z_{ℓ*(r′)}) on the test split.

    Parameters
    ----------
    features : mapping layer → (Z_train (n_train, n_units), Z_test (n_test, n_units))
    layers : sequence of str
        Layer names in layer-index order.
    assigned : sequence of int, length n_rois
        ℓ* per ROI (-1: no layer, the row and column are NaN).
    measure : str
        One of :data:`alignpatterns.patterns.alignment.MEASURES`; for LP the target "vertices"
        are the target layer's units and the score is their mean Pearson r.
    lp : LPOptions

    Returns
    -------
    M : ndarray, shape (n_rois, n_rois)
        Each distinct layer pair is computed once.
    """
    distinct = sorted({int(i) for i in assigned if i >= 0})
    missing = [layers[i] for i in distinct if layers[i] not in features]
    if missing:
        raise ValueError(f"features lack the layers {missing} that the model_brain table "
                         f"assigns to ROIs (available: {list(features)}); rerun extract")
    reps = {i: model_representation(*features[layers[i]], measure) for i in distinct}
    pair = {}
    for i in distinct:
        scores, _ = _scores_and_null(reps[i], [reps[j] for j in distinct], measure, "test", lp,
                                     None)
        pair.update({(i, j): float(s) for j, s in zip(distinct, scores, strict=True)})
    R = len(assigned)
    M = np.full((R, R), np.nan)
    for r, i in enumerate(assigned):
        for r2, j in enumerate(assigned):
            if i >= 0 and j >= 0:
                M[r, r2] = pair[int(i), int(j)]
    return M


def brain_roi_matrix(A: np.ndarray, exclude: Sequence[int] = ()) -> np.ndarray:
    """Group-mean brain matrix Ā[r, r′] over ordered subject pairs.

    Parameters
    ----------
    A : ndarray, shape (n_subjects, n_subjects, n_rois, n_rois)
        A[s′, s] = A_{s′→s} (NaN on the diagonal s′ = s and for missing cells).
    exclude : sequence of int
        Subjects left out of every pair (for leave-subject-out references).

    Returns
    -------
    ndarray, shape (n_rois, n_rois)
    """
    keep = [s for s in range(A.shape[0]) if s not in set(exclude)]
    pairs = [A[a, b] for a in keep for b in keep if a != b]
    if not pairs:
        return np.full(A.shape[2:], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(pairs, axis=0)


def mantel(M: np.ndarray, B: np.ndarray, mask: np.ndarray, perms: np.ndarray,
           match: str = "pearson") -> tuple[float, float, np.ndarray]:
    """Mantel-type test of the match between a model and a brain ROI × ROI matrix.

    Parameters
    ----------
    M, B : ndarray, shape (n_rois, n_rois)
        Model and brain matrices.
    mask : ndarray of bool, shape (n_rois, n_rois)
        Entries compared (off-diagonal, finite, not excluded); fixed to the model's positions.
    perms : ndarray of int, shape (n_draws, n_rois)
        ROI-label permutations applied to B's rows and columns jointly.
    match : {"pearson", "spearman"}

    Returns
    -------
    r : float
        Correlation of M and B over ``mask`` (NaN with fewer than 3 entries or a constant vector).
    p : float
        One-sided permutation p-value (1 + #(null ≥ r − 1e-12)) / (1 + n_draws); NaN when r is
        NaN.
    null : ndarray, shape (n_draws,)
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.sum() < 3:
        return np.nan, np.nan, np.full(len(perms), np.nan)
    x = M[mask]
    # r by the same arithmetic as the null, so that the identity permutation ties exactly
    r = float(_rowwise_corr(B[mask][None], x, match)[0]) if np.std(x) > 0 else np.nan
    if not np.isfinite(r) or len(perms) == 0:
        return float(r), np.nan, np.full(len(perms), np.nan)
    Bp = B[perms[:, :, None], perms[:, None, :]]  # (n_draws, R, R)
    P = Bp[:, mask]
    ok = np.all(np.isfinite(P), axis=1)
    null = np.full(len(perms), np.nan)
    null[ok] = _rowwise_corr(P[ok], x, match)
    # draws equal to r up to rounding count as ≥ (a permutation within ROIs sharing a layer, or
    # the identity, gives r again but can differ from it in the last bit): conservative
    return float(r), float(permutation_p_value(r - 1e-12, null)), null


def whole_model_rows(features: Mapping[str, tuple[np.ndarray, np.ndarray]], ms: ModelScores,
                     bb: pd.DataFrame, subjects: Sequence[str], rois: Sequence[str],
                     measure: str, lp: LPOptions, matches: Sequence[str], n_draws: int,
                     seed: int) -> pd.DataFrame:
    """The whole-model variant for one candidate and one measure.

    Parameters
    ----------
    features : mapping layer → (Z_train, Z_test)
        The candidate's features (see :func:`alignpatterns.pipeline.load_features`).
    ms : ModelScores
        The candidate's model–brain scores for ``measure`` (layer selection on train).
    bb : DataFrame
        Brain–brain rows for ``measure``.
    subjects, rois : sequences of str
    measure : str
    lp : LPOptions
    matches : sequence of {"pearson", "spearman"}
    n_draws : int
        ROI-label permutations of the Mantel test.
    seed : int
        The config seed; the permutations come from the stream (seed, "whole_model", measure,
        candidate), so adding a candidate changes no other row.

    Returns
    -------
    DataFrame
        One row per match with columns of the ``apa_whole_model`` table: ``r`` (model vs the
        all-subject Ā), ``p_mantel``, ``model_r_loo`` / ``brain_r`` (mean over subjects s of the
        model's and of subject s's own matrix mean_{s′} A_{s′→s} against Ā without s; the same
        references), ``delta`` = model_r_loo − brain_r, and the pair counts.
    """
    assigned = group_layers(ms)
    M = model_roi_matrix(features, ms.layers, assigned, measure, lp)
    A = brain_tensor(bb, subjects, rois, split="test").values
    B = brain_roi_matrix(A)
    R = len(rois)
    off = ~np.eye(R, dtype=bool)
    same = (assigned[:, None] == assigned[None, :]) & (assigned[:, None] >= 0) & off
    mask = off & ~same & np.isfinite(M) & np.isfinite(B)
    rng = stream(seed, "whole_model", measure, ms.name)
    perms = (np.stack([rng.permutation(R) for _ in range(n_draws)]) if n_draws > 0
             else np.empty((0, R), dtype=np.int64))
    layer_names = ";".join(f"{roi}:{ms.layers[i] if i >= 0 else ''}"
                           for roi, i in zip(rois, assigned, strict=True))
    rows = []
    S = len(subjects)
    for match in matches:
        r, p, _ = mantel(M, B, mask, perms, match)
        model_loo, brain_loo = [], []
        for s in range(S):
            ref = brain_roi_matrix(A, exclude=[s])
            own = _own_matrix(A, s)
            m = mask & np.isfinite(ref) & np.isfinite(own)
            if m.sum() >= 3:
                model_loo.append(_corr(M[m], ref[m], match))
                brain_loo.append(_corr(own[m], ref[m], match))
        mr, br = _mean(model_loo), _mean(brain_loo)
        rows.append({"measure": measure, "candidate": ms.name, "weights": ms.weights,
                     "match": match, "layers": layer_names, "n_pairs": int(mask.sum()),
                     "n_pairs_excluded": int(same.sum()), "r": r, "p_mantel": p,
                     "n_draws": int(n_draws), "model_r_loo": mr, "brain_r": br,
                     "delta": mr - br})
    return pd.DataFrame(rows)


def _mean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else np.nan


def _own_matrix(A: np.ndarray, s: int) -> np.ndarray:
    """Subject s's brain matrix as a target: mean over sources s′ ≠ s of A_{s′→s}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.delete(A[:, s], s, axis=0), axis=0)
