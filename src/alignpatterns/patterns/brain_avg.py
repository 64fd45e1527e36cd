"""The ``brain_avg`` baseline: the vertex-wise mean of k held-out subjects stands in (SPEC.md §4).

A single held-out subject is a noisy stand-in, so APS_brain is a lenient bar for noise-free
models. Averaging k subjects vertex-wise removes part of that noise; APS_brain as a function of k
shows how much of the gap between a model and the brain baseline is measurement noise.

For target subject s and a stand-in set K (|K| = k, s ∉ K), with X̄_K the vertex-wise mean of the
subjects in K:

- A_{K→s}[r, r′] = f(X̄_{K,r} → X_{s,r′}) on the test split (LP fitted on train);
- APS_brain_avg(r, s, K) = ρ(A_{K→s}[r, :], ā^{−({s} ∪ K)}[r]) on the variant's entries, with
  ā^{−Q}[r] the mean of A_{s′→s″}[r, :] over ordered pairs of subjects s′ ≠ s″ not in Q (the
  brain–brain tensor, exactly as APA's references);
- averaged over the stand-in sets of s, then over targets s; jackknife-t interval over subjects
  (references recomputed without the deleted subject, stand-in sets that contain it dropped).

k = 1 is the ordinary brain baseline: every other subject stands in, the scores come from the
brain–brain table and the value and interval equal the ``brain`` rows of ``apa_summary``. For
k ≥ 2 all C(S−1, k) sets are used when there are at most ``max_sets`` of them, else ``max_sets``
distinct sets drawn from the stream (seed, "brain_avg", target, k) — the same sets for every
measure. A reference needs two subjects outside {s} ∪ K, so k needs S ≥ k + 3 subjects (and
S ≥ k + 4 for the jackknife); fewer give NaN with a ``reason``, not an error.

The mean is taken on the whole-brain vertex axis, which means the same location in every subject
only in surface spaces (fsLR32k, fsaverage; SPEC.md §1); other spaces are refused. By default over
the union of the vertices the k subjects kept (each vertex averaged over the subjects that kept
it); ``intersection`` keeps only vertices kept by all, which shrinks the ROI as k grows and lowers
APS with k on the embedded data. Crossnobis needs the repetitions, so repetition i of the average
is the mean of the subjects' repetition i.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.patterns.alignment import (
    SPLITS,
    LPOptions,
    Representations,
    _named,
    _scores_and_null,
    brain_representation,
)

log = logging.getLogger("alignpatterns")

__all__ = ["check_vertex_correspondence", "average_subjects", "stand_in_sets",
           "stand_in_label", "brain_avg_score_rows", "brain_avg_aps", "min_subjects",
           "skipped_rows", "loo_data_ceiling_rows", "SCORE_COLUMNS"]

#: Columns of the per-job score table ``brain_avg`` (test split only).
SCORE_COLUMNS = ("measure", "k", "stand_in", "target_subject", "source_roi", "target_roi",
                 "score", "n_source_dims", "n_source_vertices", "n_vertices")
#: Subjects a reference needs outside the target and the stand-ins (one ordered pair each way).
REFERENCE_SUBJECTS = 2


def min_subjects(k: int) -> int:
    """Subjects that APS_brain_avg with k stand-ins needs: target + k + a reference pair."""
    return k + 1 + REFERENCE_SUBJECTS


def check_vertex_correspondence(ds: Mapping) -> None:
    """Raise ValueError unless a vertex-wise mean across subjects is valid for ``ds``.

    Parameters
    ----------
    ds : mapping
        The config's ``dataset`` section.
    """
    from alignpatterns.data.dataset import has_vertex_correspondence

    if not has_vertex_correspondence(ds):
        raise ValueError(
            f"brain_avg baseline: dataset format {ds.get('format', 'bmd')!r}, space "
            f"{ds.get('space', 'fsLR32k')!r}, version {ds.get('version', 'B')!r}, betas "
            f"{ds.get('betas', 'prepared_betas')!r} has no vertex correspondence across subjects; "
            "a vertex-wise mean is valid only for versionB prepared betas in surface spaces "
            "(fsLR32k, fsaverage) (SPEC.md §1)")


def stand_in_label(members: Sequence[str]) -> str:
    """Name of a stand-in set in tables: subject ids joined by ``+`` (``"02+05"``)."""
    return "+".join(members)


VERTEX_RULES = ("intersection", "union")


def average_subjects(subjects: Sequence[SubjectData], min_vertices: int = 1,
                     vertices: str = "union") -> SubjectData:
    """The vertex-wise mean of ``subjects``.

    Parameters
    ----------
    subjects : sequence of SubjectData
        Prepared subjects of a surface space (same stimuli in the same order).
    min_vertices : int
        An ROI with fewer vertices is a missing cell (None) of the average.
    vertices : {"union", "intersection"}
        ``union``: every vertex kept (reliable) in any of the subjects, each averaged over the
        subjects that kept it — the ROI keeps at least a single subject's extent;
        ``intersection``: only vertices kept in all of them (the ROI shrinks as k grows).

    Returns
    -------
    SubjectData
        ``subject`` = the ids joined by ``+``. Per ROI: ``vertices`` (v,) vertex indices;
        ``train_reps``/``test_reps`` (n_stimuli, n_reps, v) the mean over subjects of each
        repetition index (NaN-aware); ``train``/``test`` (n_stimuli, v) the mean of the subjects'
        repetition averages; ``ncsnr_*`` and ``n_reps_test`` the subjects' means (descriptive).
        An ROI missing in any subject is missing.
    """
    if vertices not in VERTEX_RULES:
        raise ValueError(f"brain_avg vertices {vertices!r}: expected one of {VERTEX_RULES}")
    subjects = list(subjects)
    if not subjects:
        raise ValueError("average_subjects: no subjects")
    first = subjects[0]
    for sd in subjects[1:]:
        if sd.train_ids != first.train_ids or sd.test_ids != first.test_ids:
            raise ValueError(f"average_subjects: sub-{sd.subject} has other stimuli (or another "
                             f"order) than sub-{first.subject}")
    rois = {}
    for roi in first.rois:
        cells = [sd.rois.get(roi) for sd in subjects]
        if any(c is None for c in cells):
            rois[roi] = None
            continue
        combine = np.union1d if vertices == "union" else np.intersect1d
        common = cells[0].vertices
        for c in cells[1:]:
            common = combine(common, c.vertices)
        if common.size < max(1, min_vertices):
            rois[roi] = None
            continue
        # per subject: columns of ``common`` it has, and where they are in its own arrays
        where = []
        for c in cells:
            if c.vertices.size == 0:
                where.append((np.empty(0, int), np.empty(0, int)))
                continue
            order = np.argsort(c.vertices, kind="stable")
            i = np.searchsorted(c.vertices, common, sorter=order)
            i = np.minimum(i, c.vertices.size - 1)
            has = c.vertices[order[i]] == common
            where.append((np.flatnonzero(has), order[i[has]]))

        def mean(field, cells=cells, where=where, n=common.size):
            stack = []
            for c, (dst, src) in zip(cells, where, strict=True):
                a = getattr(c, field)
                out = np.full(a.shape[:-1] + (n,), np.nan)
                out[..., dst] = a[..., src]
                stack.append(out)
            with warnings.catch_warnings():  # a value missing in every subject stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(stack, axis=0)

        rois[roi] = ROIData(vertices=common, train_reps=mean("train_reps"),
                            test_reps=mean("test_reps"), train=mean("train"), test=mean("test"),
                            ncsnr_train=mean("ncsnr_train"), ncsnr_test=mean("ncsnr_test"),
                            n_reps_test=float(np.mean([c.n_reps_test for c in cells])))
    return SubjectData(subject=stand_in_label([sd.subject for sd in subjects]),
                       train_ids=list(first.train_ids), test_ids=list(first.test_ids), rois=rois)


def stand_in_sets(seed: int, subjects: Sequence[str], target: str, k: int, max_sets: int
                  ) -> list[tuple[str, ...]]:
    """Stand-in sets K (|K| = k, target ∉ K) of one target subject.

    All C(S−1, k) sets when there are at most ``max_sets`` of them (or ``k = 1``: the ordinary
    baseline, whose scores exist already); else ``max_sets`` distinct sets drawn from the stream
    (seed, "brain_avg", target, k). Sets keep the order of ``subjects``; the list is sorted.
    Empty when fewer than :func:`min_subjects` (k) subjects exist.
    """
    from alignpatterns.patterns.streams import stream

    if k < 1:
        raise ValueError(f"brain_avg: k must be ≥ 1, got {k}")
    if len(subjects) < min_subjects(k):
        return []
    others = [s for s in subjects if s != target]
    if len(others) == len(subjects):
        raise ValueError(f"brain_avg: target subject {target!r} is not among {list(subjects)}")
    n_all = math.comb(len(others), k)
    if k == 1 or n_all <= max_sets:
        return list(itertools.combinations(others, k))
    rng = stream(seed, "brain_avg", target, k)
    if n_all <= 100_000:
        combos = list(itertools.combinations(others, k))
        pick = np.sort(rng.choice(n_all, size=max_sets, replace=False))
        return [combos[i] for i in pick]
    chosen: set[tuple[str, ...]] = set()  # many subjects: draw sets until enough are distinct
    while len(chosen) < max_sets:
        idx = np.sort(rng.choice(len(others), size=k, replace=False))
        chosen.add(tuple(others[i] for i in idx))
    return sorted(chosen)


def _test_scores(src: Representations, targets: Mapping[str, Representations | None],
                 measure: str, lp: LPOptions) -> dict[str, float]:
    """Test-split scores of one source against every target ROI (NaN where missing)."""
    present = [t for t, rep in targets.items() if rep is not None]
    scores, _ = _scores_and_null(src, [targets[t] for t in present], measure, "test", lp, None)
    by_target = dict(zip(present, scores, strict=True))
    return {t: float(by_target.get(t, np.nan)) for t in targets}


def brain_avg_score_rows(subjects: Mapping[str, SubjectData], target: str, rois: Sequence[str],
                         measure: str, ks: Sequence[int], max_sets: int, seed: int,
                         lp: LPOptions, min_vertices: int = 1, vertices: str = "union"
                         ) -> list[dict]:
    """A_{K→s}[r, r′] on test for one target subject, every k and every stand-in set K.

    Parameters
    ----------
    subjects : mapping of subject id → SubjectData
        All subjects (prepared, surface space), in the config's order.
    target : str
    rois : sequence of str
    measure : str
    ks : sequence of int
        Stand-in set sizes (k = 1 gives the ordinary A_{s′→s}, as ``brain_brain``).
    max_sets, seed : int
        See :func:`stand_in_sets`.
    lp : LPOptions
    min_vertices : int
        Vertices an averaged ROI needs (else its rows are NaN).
    vertices : {"union", "intersection"}
        Which vertices are averaged (:func:`average_subjects`).

    Returns
    -------
    list of dict
        Keys :data:`SCORE_COLUMNS`; ``n_source_vertices`` is the number of vertices averaged
        (0 for a missing source cell), ``n_source_dims`` the source's dimensionality as scored.
    """
    tgt = subjects[target]
    # test scores only: LP fits on train, RSA and CKA need no train representation
    splits = SPLITS if measure == "lp-ridge-pearson" else ("test",)
    targets = {roi: _named(f"sub-{target} ROI {roi!r}", measure, brain_representation, tgt,
                           roi, measure, splits) for roi in rois}
    n_vertices = {roi: 0 if rep is None else rep.n_dims for roi, rep in targets.items()}
    rows = []
    for k in ks:
        for K in stand_in_sets(seed, list(subjects), target, k, max_sets):
            avg = average_subjects([subjects[s] for s in K], min_vertices, vertices)
            label = avg.subject
            for roi in rois:
                src = _named(f"stand-in {label} ROI {roi!r}", measure, brain_representation,
                             avg, roi, measure, splits)
                scores = ({t: np.nan for t in rois} if src is None
                          else _test_scores(src, targets, measure, lp))
                n_src = 0 if src is None else src.n_dims
                n_dims = n_src
                if measure == "lp-ridge-pearson" and lp.n_components is not None:
                    n_dims = min(lp.n_components, n_src)
                for t in rois:
                    rows.append({"measure": measure, "k": int(k), "stand_in": label,
                                 "target_subject": target, "source_roi": roi, "target_roi": t,
                                 "score": scores[t], "n_source_dims": int(n_dims),
                                 "n_source_vertices": int(n_src),
                                 "n_vertices": int(n_vertices[t])})
    return rows


def loo_data_ceiling_rows(subjects: Mapping[str, SubjectData], rois: Sequence[str],
                          measures: Sequence[str], lp: LPOptions, min_vertices: int = 1,
                          vertices: str = "union") -> list[dict]:
    """The paper's data-level noise ceiling ``ceiling_loo_data`` (SPEC.md §3), test split.

    For subject s and ROI r: f(X̄_{−s,r} → X_{s,r}), the measure's test score with the vertex-wise
    mean of all other subjects' ROI r standing in for subject s's ROI r (LP fitted on train).
    This is the "upper" ceiling of the paper's released code (``reference/apa_method.md``); the
    mean of S − 1 subjects is less noisy than any single source, so it bounds the cross-subject
    scores of the brain–brain tensor from above, not a model's.

    Parameters
    ----------
    subjects : mapping of subject id → SubjectData
        Prepared subjects of a surface space (vertex correspondence across subjects).
    rois, measures : sequence of str
    lp : LPOptions
        Used for LP measures.
    min_vertices : int
        An averaged ROI with fewer vertices gives NaN.
    vertices : {"union", "intersection"}
        Which vertices are averaged (:func:`average_subjects`).

    Returns
    -------
    list of dict
        ``ceilings`` rows: measure, subject, roi, split ``"test"``, kind ``"ceiling_loo_data"``,
        value (NaN for a missing cell or fewer than 2 subjects), n_reps (test repetitions).
    """
    from alignpatterns.patterns.conventional import n_repetitions

    subs = list(subjects)
    rows = []
    for s in subs:
        others = [subjects[o] for o in subs if o != s]
        avg = average_subjects(others, min_vertices, vertices) if others else None
        for measure in measures:
            splits = SPLITS if measure.startswith("lp-") else ("test",)
            for roi in rois:
                value = np.nan
                tgt = _named(f"sub-{s} ROI {roi!r}", measure, brain_representation,
                             subjects[s], roi, measure, splits)
                src = None if avg is None else _named(
                    f"mean of the subjects other than sub-{s}, ROI {roi!r}", measure,
                    brain_representation, avg, roi, measure, splits)
                if src is not None and tgt is not None:
                    value = _test_scores(src, {roi: tgt}, measure, lp)[roi]
                rows.append({"measure": measure, "subject": s, "roi": roi, "split": "test",
                             "kind": "ceiling_loo_data", "value": value,
                             "n_reps": n_repetitions(subjects[s].rois.get(roi), "test")})
    return rows


# --- APS -------------------------------------------------------------------------------------------

def _reference(A: np.ndarray, pool: Sequence[int]) -> np.ndarray:
    """ā over ordered pairs (a, b), a ≠ b, of ``pool``: mean of A[a, b] (R, R), NaN-aware."""
    pairs = [A[a, b] for a in pool for b in pool if a != b]
    if not pairs:
        return np.full(A.shape[2:], np.nan)
    with warnings.catch_warnings():  # missing cells are NaN in every pair
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(pairs, axis=0)


def _diag_match(vd, P: np.ndarray, ref: np.ndarray, s: int, match: str) -> np.ndarray:
    """ρ(P[r], ref[r]) on the entries of r, for every ROI r, shape (R,)."""
    from alignpatterns.patterns.apa import _masked_pearson

    if vd.variant != "residual" and match == "pearson":
        W = vd.mask & np.isfinite(P) & np.isfinite(ref)
        return _masked_pearson(P, ref, W)
    return np.array([vd.match(P[r], ref, s, r, vd.entries(r), match)
                     for r in range(P.shape[0])])


def _profiles(scores: pd.DataFrame, measure: str, k: int, subjects: list[str], kept: list[str]
              ) -> dict[tuple[int, tuple[int, ...]], np.ndarray]:
    """(target index, stand-in indices) → P (R, R) with P[r, r′] = A_{K→s}[r, r′] (raw)."""
    sidx = {s: i for i, s in enumerate(subjects)}
    ridx = {r: i for i, r in enumerate(kept)}
    d = scores[(scores["measure"] == measure) & (scores["k"] == k)
               & scores["source_roi"].isin(ridx) & scores["target_roi"].isin(ridx)]
    out = {}
    for (target, label), g in d.groupby(["target_subject", "stand_in"], sort=True):
        members = str(label).split("+")
        if target not in sidx or any(m not in sidx for m in members):
            continue  # a set with a subject outside the analysis
        P = np.full((len(kept), len(kept)), np.nan)
        P[g["source_roi"].map(ridx).to_numpy(), g["target_roi"].map(ridx).to_numpy()] = \
            g["score"].to_numpy(dtype=float)
        out[sidx[target], tuple(sorted(sidx[m] for m in members))] = P
    return out


def _aps_over(vd, sets, profile, members: Sequence[int], match: str, refs: dict
              ) -> tuple[np.ndarray, int, int]:
    """Mean over targets in ``members`` of the mean over their stand-in sets (within
    ``members``) of ρ(P_{K→s}[r], ā^{−({s}∪K)}[r]) per ROI r, with references over ``members``.

    ``profile(s, K)`` is the stand-in's (R, R) profile in the variant's units (normalised
    columns divided by the target's ceilings, as ``vd.A``); ``refs`` caches references by pool.

    Returns (aps (R,), n_targets, n_sets); a target without a usable set is left out.
    """
    mset = set(members)
    per_target = []
    n_sets = 0
    for s in members:
        vals = []
        for K in sets.get(s, []):
            if not mset.issuperset(K):
                continue
            pool = tuple(m for m in members if m != s and m not in K)
            if len(pool) < REFERENCE_SUBJECTS:
                continue
            if pool not in refs:
                refs[pool] = _reference(vd.A, pool)
            vals.append(_diag_match(vd, profile(s, K), refs[pool], s, match))
        if vals:
            per_target.append(np.mean(vals, axis=0))
            n_sets += len(vals)
    if not per_target:
        return np.full(vd.A.shape[2], np.nan), 0, 0
    return np.mean(per_target, axis=0), len(per_target), n_sets


def brain_avg_aps(bb: pd.DataFrame, scores: pd.DataFrame | None, subjects: Sequence[str],
                  rois: Sequence[str], measure: str, ks: Sequence[int] = (1, 2, 4),
                  variants: Sequence[str] = ("full", "offdiag"),
                  matches: Sequence[str] = ("pearson",), ceilings: pd.DataFrame | None = None,
                  min_ceiling: float = 0.1) -> pd.DataFrame:
    """APS_brain_avg per variant × match × ROI × k for one measure (table ``apa_brain_avg``).

    Parameters
    ----------
    bb : DataFrame
        ``brain_brain`` rows of this measure (references; k = 1 stand-in scores).
    scores : DataFrame or None
        ``brain_avg`` score rows (:func:`brain_avg_score_rows`) for k ≥ 2; the stand-in sets are
        the ones found there.
    subjects, rois : sequences of str
        ROIs missing in any subject are dropped (listwise, as APA by default; this baseline
        stays listwise under ``apa.missing: pairwise``).
    measure : str
    ks : sequence of int
    variants, matches, ceilings, min_ceiling
        As :func:`alignpatterns.patterns.apa.run_apa`.

    Returns
    -------
    DataFrame
        Columns measure, variant, match, roi, k, n_subjects, n_targets, n_sets, n_entries,
        ci_method, aps_brain_avg, ci_low, ci_high, reason (NA when the value is defined).
    """
    from alignpatterns.patterns.apa import (
        NORMALIZED_VARIANTS,
        _entries,
        _jackknife_ci,
        _prepared,
        _variant_data,
    )

    subjects = list(subjects)
    for v in variants:
        _entries(v, 1, 0)
    needs_ceil = [v for v in variants if v in NORMALIZED_VARIANTS or v == "residual"]
    if needs_ceil and ceilings is None:
        raise ValueError(f"brain_avg: variants {needs_ceil} need the ceilings table")
    kept, A, ceil = _prepared(bb, subjects, rois, measure, ceilings)
    S = len(subjects)
    members = list(range(S))
    rows = []
    for k in ks:
        if k == 1:
            sets = {s: [(o,) for o in members if o != s] for s in members}
            raw = {}
        else:
            raw = _profiles(scores if scores is not None else pd.DataFrame(
                columns=list(SCORE_COLUMNS)), measure, k, subjects, kept)
            sets = {}
            for s, K in raw:
                sets.setdefault(s, []).append(K)
        reason = None
        if S < min_subjects(k):
            reason = (f"k={k} needs ≥ {min_subjects(k)} subjects (target, {k} stand-in(s) and "
                      f"{REFERENCE_SUBJECTS} for a reference); found {S}")
        elif not sets:
            reason = f"no stand-in scores for k={k}"
        for variant in variants:
            vd = _variant_data(variant, A, ceil, min_ceiling)
            if k == 1:  # the ordinary baseline: A_{s*→s} as the variant sees it
                def profile(s, K, vd=vd):
                    return vd.A[K[0], s]
            else:
                def profile(s, K, raw=raw, vd=vd):
                    return raw[s, K] / vd.scale[s][None, :]
            refs: dict = {}  # pool → reference, shared by the matches
            for match in matches:
                if reason is None:
                    full, n_targets, n_sets = _aps_over(vd, sets, profile, members, match, refs)
                    loo = [_aps_over(vd, sets, profile, [m for m in members if m != j], match,
                                     refs)[0] for j in members]
                else:
                    full, n_targets, n_sets = np.full(len(kept), np.nan), 0, 0
                    loo = []
                for r, roi in enumerate(kept):
                    lo, hi = (_jackknife_ci(float(full[r]), [x[r] for x in loo]) if loo
                              else (np.nan, np.nan))
                    why = reason
                    if why is None and not np.isfinite(full[r]):
                        why = "APS undefined (zero-variance or all-NaN profiles)"
                    elif why is None and not np.isfinite(lo):
                        why = (f"no jackknife interval: k={k} needs ≥ {min_subjects(k) + 1} "
                               f"subjects; found {S}" if S < min_subjects(k) + 1 else
                               "no jackknife interval: APS undefined in a delete-one-subject "
                               "sample")
                    rows.append({"measure": measure, "variant": variant, "match": match,
                                 "roi": roi, "k": int(k), "n_subjects": S,
                                 "n_targets": int(n_targets), "n_sets": int(n_sets),
                                 "n_entries": len(vd.entries(r)), "ci_method": "jackknife-t",
                                 "aps_brain_avg": float(full[r]), "ci_low": lo, "ci_high": hi,
                                 "reason": why})
    return pd.DataFrame(rows, columns=["measure", "variant", "match", "roi", "k", "n_subjects",
                                       "n_targets", "n_sets", "n_entries", "ci_method",
                                       "aps_brain_avg", "ci_low", "ci_high", "reason"])


def skipped_rows(measure: str, rois: Sequence[str], ks: Sequence[int], variants: Sequence[str],
                 matches: Sequence[str], n_subjects: int, reason: str) -> pd.DataFrame:
    """NaN rows of ``apa_brain_avg`` carrying ``reason`` (e.g. a space without vertex
    correspondence), one per variant × match × ROI × k."""
    rows = [{"measure": measure, "variant": v, "match": m, "roi": roi, "k": int(k),
             "n_subjects": n_subjects, "n_targets": 0, "n_sets": 0, "n_entries": 0,
             "ci_method": "jackknife-t", "aps_brain_avg": np.nan, "ci_low": np.nan,
             "ci_high": np.nan, "reason": reason}
            for v in variants for m in matches for roi in rois for k in ks]
    return pd.DataFrame(rows)
