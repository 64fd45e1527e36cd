"""Model–brain and brain–brain alignment scores for every measure (SPEC.md §2).

Measures (names as in the tables):

========================== ============================== =================================
measure                    brain representation           model representation
========================== ============================== =================================
rsa-crossnobis-spearman    crossnobis RDM over repetitions squared Euclidean RDM / n_units
rsa-correlation-spearman   1 − Pearson RDM of averages     1 − Pearson RDM
cka-linear-debiased        Gram of averaged betas          Gram of features
lp-ridge-pearson           averaged betas (target/source)  features (source)
========================== ============================== =================================

RSA compares RDMs with Spearman; CKA is the debiased linear CKA; LP standardises with train
statistics, optionally reduces the source to a common number of PCA components, fits ridge with a
per-vertex alpha by inner K-fold CV on train and scores the mean over target vertices of the Pearson
r between prediction and data — on test after fitting on all train stimuli, and on train from
out-of-fold predictions. Each representation is computed once and reused for every pairing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from alignpatterns.data.bmd import SubjectData
from alignpatterns.measures import (
    cka_from_grams,
    compare_rdms,
    correlation_score,
    gram,
    lp_oof_predict,
    lp_predict,
    rank_rdm,
    rdm,
)

MEASURES = ("rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased",
            "lp-ridge-pearson")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class LPOptions:
    """Options of the linear-predictivity pipeline.

    Attributes
    ----------
    alphas : tuple of float
        Ridge penalties searched per target vertex.
    inner_cv : int
        Folds of the inner (alpha) cross-validation on train.
    outer_cv : int
        Folds of the out-of-fold train scores.
    n_components : int or None
        Common PCA dimensionality of every source (None: no reduction).
    x_scaling : str
        Source scaling before reduction: ``unit`` (z-score each column) or ``global`` (one
        scale for all columns, keeping the source's geometry).
    """

    alphas: tuple[float, ...] = tuple(np.logspace(-1, 5, 13))
    inner_cv: int = 5
    outer_cv: int = 5
    n_components: int | None = None
    x_scaling: str = "global"


@dataclass
class Representations:
    """A source or target's per-split representation for one measure."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    n_dims: int = 0


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")


def brain_representation(sd: SubjectData, roi: str, measure: str) -> Representations | None:
    """Representation of one subject's ROI for ``measure`` on both splits (None if missing)."""
    _check_measure(measure)
    d = sd.rois.get(roi)
    if d is None:
        return None
    rep = Representations(n_dims=int(d.vertices.size))
    for split in SPLITS:
        avg = getattr(d, split)
        if measure == "rsa-crossnobis-spearman":
            rep.values[split] = rank_rdm(rdm(getattr(d, f"{split}_reps"), "crossnobis"))
        elif measure == "rsa-correlation-spearman":
            rep.values[split] = rank_rdm(rdm(avg, "correlation"))
        elif measure == "cka-linear-debiased":
            rep.values[split] = gram(avg)
        else:
            rep.values[split] = avg
    return rep


def model_representation(Z_train: np.ndarray, Z_test: np.ndarray, measure: str) -> Representations:
    """Representation of one model layer (features shaped (n_stimuli, n_units)) per split."""
    _check_measure(measure)
    rep = Representations(n_dims=int(Z_train.shape[1]))
    for split, Z in (("train", Z_train), ("test", Z_test)):
        Z = np.asarray(Z, dtype=np.float64)
        if measure == "rsa-crossnobis-spearman":
            rep.values[split] = rank_rdm(rdm(Z, "sqeuclidean") / Z.shape[1])
        elif measure == "rsa-correlation-spearman":
            rep.values[split] = rank_rdm(rdm(Z, "correlation"))
        elif measure == "cka-linear-debiased":
            rep.values[split] = gram(Z)
        else:
            rep.values[split] = Z
    return rep


def score_sources_to_targets(sources: Mapping[str, Representations],
                             targets: Mapping[str, Representations | None], measure: str,
                             lp: LPOptions) -> list[dict]:
    """Score every source against every target on both splits.

    Parameters
    ----------
    sources : mapping of source name to Representations
    targets : mapping of target ROI to Representations (None = missing cell → NaN rows)
    measure : str
    lp : LPOptions

    Returns
    -------
    list of dict with keys source, target, split, score, n_source_dims, n_vertices.
    """
    rows = []
    present = [t for t, rep in targets.items() if rep is not None]
    for src_name, src in sources.items():
        for split in SPLITS:
            scores = _scores(src, [targets[t] for t in present], measure, split, lp)
            n_dims = src.n_dims
            if measure == "lp-ridge-pearson" and lp.n_components is not None:
                n_dims = min(lp.n_components, src.n_dims)
            by_target = dict(zip(present, scores, strict=True))
            for tgt, tgt_rep in targets.items():
                rows.append({"source": src_name, "target": tgt, "split": split,
                             "score": float(by_target.get(tgt, np.nan)),
                             "n_source_dims": n_dims,
                             "n_vertices": 0 if tgt_rep is None else tgt_rep.n_dims})
    return rows


def _scores(src: Representations, tgts: Sequence[Representations], measure: str, split: str,
            lp: LPOptions) -> list[float]:
    if not tgts:
        return []
    a = src.values[split]
    if measure.startswith("rsa-"):
        B = np.stack([t.values[split] for t in tgts])
        return list(np.atleast_1d(compare_rdms(a, B, "spearman", ranked=True)))
    if measure == "cka-linear-debiased":
        return [cka_from_grams(a, t.values[split], debiased=True) for t in tgts]
    # LP: all targets in one ridge problem, scored per target ROI
    widths = [t.n_dims for t in tgts]
    edges = np.cumsum([0, *widths])
    Y_train = np.concatenate([t.values["train"] for t in tgts], axis=1)
    if split == "test":
        Y_true = np.concatenate([t.values["test"] for t in tgts], axis=1)
        Y_pred = lp_predict(src.values["train"], Y_train, src.values["test"], lp.alphas,
                            inner_cv=lp.inner_cv, n_components=_k(lp, src),
                            x_scaling=lp.x_scaling)
    else:
        Y_true = Y_train
        Y_pred = lp_oof_predict(src.values["train"], Y_train, lp.alphas, outer_cv=lp.outer_cv,
                                inner_cv=lp.inner_cv, n_components=_k(lp, src),
                                x_scaling=lp.x_scaling)
    with warnings.catch_warnings():  # constant target vertices score NaN, averaged out below
        warnings.simplefilter("ignore", RuntimeWarning)
        r = correlation_score(Y_true, Y_pred)
    return [float(np.nanmean(r[lo:hi])) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _k(lp: LPOptions, src: Representations) -> int | None:
    if lp.n_components is None:
        return None
    return int(min(lp.n_components, src.n_dims))


def model_brain_rows(features: Mapping[str, tuple[np.ndarray, np.ndarray]], sd: SubjectData,
                     rois: Sequence[str], measures: Sequence[str], lp: LPOptions) -> list[dict]:
    """Alignment of every layer of one model with every ROI of one subject.

    Parameters
    ----------
    features : mapping layer → (Z_train (n_train, p), Z_test (n_test, p)), in layer order
    sd : SubjectData
    rois : sequence of str
    measures : sequence of str
    lp : LPOptions

    Returns
    -------
    list of dict with keys measure, layer, layer_index, subject, roi, split, score,
    n_source_dims, n_vertices.
    """
    rows = []
    layer_index = {name: i for i, name in enumerate(features)}
    for measure in measures:
        targets = {roi: brain_representation(sd, roi, measure) for roi in rois}
        sources = {layer: model_representation(Ztr, Zte, measure)
                   for layer, (Ztr, Zte) in features.items()}
        for row in score_sources_to_targets(sources, targets, measure, lp):
            rows.append({"measure": measure, "layer": row["source"],
                         "layer_index": layer_index[row["source"]], "subject": sd.subject,
                         "roi": row["target"], "split": row["split"], "score": row["score"],
                         "n_source_dims": row["n_source_dims"], "n_vertices": row["n_vertices"]})
    return rows


def brain_brain_rows(subjects: Mapping[str, SubjectData], target: str, rois: Sequence[str],
                     measure: str, lp: LPOptions) -> list[dict]:
    """A_{s′→s}[r, r′] for target subject ``target`` and every source subject s′ ≠ s.

    Returns
    -------
    list of dict with keys measure, source_subject, source_roi, target_subject, target_roi,
    split, score, n_source_dims, n_vertices.
    """
    tgt_sd = subjects[target]
    targets = {roi: brain_representation(tgt_sd, roi, measure) for roi in rois}
    rows = []
    for src_sub, sd in subjects.items():
        if src_sub == target:
            continue
        sources = {roi: rep for roi in rois
                   if (rep := brain_representation(sd, roi, measure)) is not None}
        missing = [roi for roi in rois if roi not in sources]
        for row in score_sources_to_targets(sources, targets, measure, lp):
            rows.append({"measure": measure, "source_subject": src_sub,
                         "source_roi": row["source"], "target_subject": target,
                         "target_roi": row["target"], "split": row["split"],
                         "score": row["score"], "n_source_dims": row["n_source_dims"],
                         "n_vertices": row["n_vertices"]})
        for roi in missing:  # missing source cells: NaN rows keep the table rectangular
            for tgt, tgt_rep in targets.items():
                for split in SPLITS:
                    rows.append({"measure": measure, "source_subject": src_sub,
                                 "source_roi": roi, "target_subject": target,
                                 "target_roi": tgt, "split": split, "score": np.nan,
                                 "n_source_dims": 0,
                                 "n_vertices": 0 if tgt_rep is None else tgt_rep.n_dims})
    return rows
