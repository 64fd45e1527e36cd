"""Within-subject alignment matrices on disjoint repetition sets (SPEC.md §4, a secondary check).

For subject s, ROIs r and r′ and measure f, with X^odd and X^even the test data of the odd
(1st, 3rd, …) and even (2nd, 4th, …) test repetitions:

    A_{s→s}[r, r′] = ½ [f(X^odd_{s,r} → X^even_{s,r′}) + f(X^even_{s,r} → X^odd_{s,r′})]

so that source and target never share a repetition, also for r = r′. Per measure:

- ``rsa-crossnobis-spearman``: crossnobis RDM over each half's repetitions (≥ 2 per half),
  Spearman between the source half's and the target half's RDM;
- ``rsa-correlation-spearman``: 1 − Pearson RDM of each half's average, Spearman;
- ``cka-linear-debiased``: debiased linear CKA of the two halves' averages;
- ``lp-ridge-pearson``: ridge fitted on the train split from the source half's train
  repetitions of r to the other half's train repetitions of r′ (odd → even and even → odd, so
  no fit sees noise shared within a trial), applied to the source half's test average and
  scored (mean Pearson r over vertices) against the other half's test average of r′. With a
  single train repetition both assignments use one fit on the train averages.

These rows never enter APA references (they live in their own table, ``brain_within``).
:func:`within_summary` compares them with the between-subject patterns.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from alignpatterns.data.bmd import SubjectData
from alignpatterns.measures import (
    cka_from_grams,
    compare_rdms,
    correlation_score,
    gram,
    lp_predict,
    rank_rdm,
    rdm,
)
from alignpatterns.patterns.alignment import MEASURES, LPOptions, _k, brain_representation

HALVES = ("odd", "even")


def split_halves(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Odd (1st, 3rd, …) and even (2nd, 4th, …) repetitions of (n_stimuli, n_reps, n_vertices)."""
    return reps[:, 0::2], reps[:, 1::2]


def _lost_stimuli(half: np.ndarray) -> int:
    """Stimuli of a half (n_stimuli, n_reps_half, n_vertices) with some vertex NaN in every
    repetition: the half's average, RDM or Gram is undefined there."""
    return int(np.any(np.all(np.isnan(half), axis=1), axis=1).sum()) if half.size else 0


def _half_representation(half: np.ndarray, measure: str) -> np.ndarray:
    """One half's representation (half shaped (n_stimuli, n_reps_half, n_vertices))."""
    with warnings.catch_warnings():  # NaN repetitions are averaged over
        warnings.simplefilter("ignore", RuntimeWarning)
        avg = np.nanmean(half, axis=1)
    if measure == "rsa-crossnobis-spearman":
        return rank_rdm(rdm(half, "crossnobis"))
    if measure == "rsa-correlation-spearman":
        return rank_rdm(rdm(avg, "correlation"))
    if measure == "cka-linear-debiased":
        return gram(avg)
    return avg


def within_subject_rows(sd: SubjectData, rois: Sequence[str], measure: str, lp: LPOptions
                        ) -> list[dict]:
    """A_{s→s}[r, r′] of one subject for every ROI pair (see the module docstring).

    Parameters
    ----------
    sd : SubjectData
        Its ROIs' ``test_reps`` shaped (n_test, n_reps, n_vertices); ``train`` averages for LP.
    rois : sequence of str
    measure : str
    lp : LPOptions

    Returns
    -------
    list of dict
        Keys measure, subject, source_roi, target_roi, score (mean of both assignments),
        score_odd_to_even, score_even_to_odd, n_reps_odd, n_reps_even, n_vertices (target);
        NaN scores where either ROI is missing.
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")
    halves = {}
    n_reps = (0, 0)
    for roi in rois:
        d = sd.rois.get(roi)
        if d is None:
            continue
        odd, even = split_halves(d.test_reps)
        n_reps = (odd.shape[1], even.shape[1])
        if measure == "rsa-crossnobis-spearman" and min(n_reps) < 2:
            raise ValueError(f"sub-{sd.subject} ROI {roi!r}: within-subject crossnobis needs "
                             f"≥ 2 test repetitions per odd/even half; found {n_reps}")
        lost = {h: _lost_stimuli(x) for h, x in zip(HALVES, (odd, even), strict=True)}
        for h in HALVES:
            if lost[h]:
                warnings.warn(f"sub-{sd.subject} ROI {roi!r}: {lost[h]} test stimuli have no "
                              f"finite {h} repetition at some vertex, so the {h} half is "
                              "undefined and its within-subject scores are NaN (as the "
                              "split-half ceiling)", stacklevel=2)
        halves[roi] = {h: None if lost[h] else _half_representation(x, measure)
                       for h, x in zip(HALVES, (odd, even), strict=True)}
    scores = {}  # (source, target) → (odd→even, even→odd)
    present = [r for r in rois if r in halves]
    if measure == "lp-ridge-pearson" and not train_halves_disjoint(sd, present):
        warnings.warn(f"sub-{sd.subject}: an ROI has a single train repetition, so the "
                      "within-subject LP fits use the train averages for both half "
                      "assignments (source and target then share train trials)", stacklevel=2)
    for src in present:
        if measure == "lp-ridge-pearson":
            scores.update(_lp_scores(sd, src, present, halves, lp))
            continue
        for tgt in present:
            pair = []
            for a, b in (("odd", "even"), ("even", "odd")):
                x, y = halves[src][a], halves[tgt][b]
                if x is None or y is None:
                    pair.append(np.nan)
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    pair.append(float(compare_rdms(x, y, "spearman", ranked=True))
                                if measure.startswith("rsa-")
                                else float(cka_from_grams(x, y, debiased=True)))
            scores[src, tgt] = tuple(pair)
    rows = []
    for src in rois:
        for tgt in rois:
            oe, eo = scores.get((src, tgt), (np.nan, np.nan))
            d = sd.rois.get(tgt)
            rows.append({"measure": measure, "subject": sd.subject, "source_roi": src,
                         "target_roi": tgt, "score": 0.5 * (oe + eo), "score_odd_to_even": oe,
                         "score_even_to_odd": eo, "n_reps_odd": n_reps[0],
                         "n_reps_even": n_reps[1],
                         "n_vertices": 0 if d is None else int(d.vertices.size)})
    return rows


def _lp_scores(sd, src, targets, halves, lp: LPOptions):
    """LP of one source ROI to every target ROI, one fit per half assignment.

    For odd → even the ridge maps the source's odd *train* repetitions to the targets' even
    train repetitions, so that no fit sees noise shared by source and target within a trial
    (the within-subject global and spatially smooth noise); likewise even → odd. With a
    single train repetition there is nothing to split and both assignments use one fit on
    the train averages (``lp_train_disjoint`` False).
    """
    d = sd.rois[src]
    rep = brain_representation(sd, src, "lp-ridge-pearson")
    widths = [sd.rois[t].vertices.size for t in targets]
    edges = np.cumsum([0, *widths])
    disjoint = train_halves_disjoint(sd, [src, *targets])
    preds = {}
    for a, b in (("odd", "even"), ("even", "odd")):
        if halves[src][a] is None:  # an undefined test half: nothing to predict from
            preds[a] = None
            continue
        if disjoint:
            X_train = _half_mean(d.train_reps, a)
            Y_train = np.concatenate([_half_mean(sd.rois[t].train_reps, b) for t in targets],
                                     axis=1)
        else:
            X_train = d.train
            Y_train = np.concatenate([sd.rois[t].train for t in targets], axis=1)
        preds[a] = lp_predict(X_train, Y_train, halves[src][a], lp.alphas,
                              inner_cv=lp.inner_cv, n_components=_k(lp, rep),
                              x_scaling=lp.x_scaling)
    out = {}
    for t, lo, hi in zip(targets, edges[:-1], edges[1:], strict=True):
        pair = []
        for a, b in (("odd", "even"), ("even", "odd")):
            if preds[a] is None or halves[t][b] is None:
                pair.append(np.nan)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r = correlation_score(halves[t][b], preds[a][:, lo:hi])
            pair.append(float(np.nanmean(r)) if np.isfinite(r).any() else np.nan)
        out[src, t] = tuple(pair)
    return out


def train_halves_disjoint(sd: SubjectData, rois: Sequence[str]) -> bool:
    """Whether every ROI of ``rois`` has ≥ 2 train repetitions, so LP fits can use halves."""
    return all(sd.rois[r].train_reps.shape[1] >= 2 for r in rois if r in sd.rois)


def _half_mean(reps: np.ndarray, half: str) -> np.ndarray:
    """Mean over the odd or even repetitions of (n_stimuli, n_reps, n_vertices)."""
    odd, even = split_halves(reps)
    with warnings.catch_warnings():  # NaN repetitions are averaged over
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(odd if half == "odd" else even, axis=1)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return np.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def within_summary(within: pd.DataFrame, bb: pd.DataFrame, subjects: Sequence[str],
                   rois: Sequence[str], variants: Sequence[str] = ("full", "offdiag"),
                   level: float = 0.95) -> pd.DataFrame:
    """How similar within- and between-subject patterns are, per measure × variant × ROI.

    For target subject s and ROI r (entries: every r′, or r′ ≠ r for ``offdiag``):

    - ``r_within_between`` = mean_s ρ(A_{s→s}[r, :], mean_{s′≠s} A_{s′→s}[r, :]) (Pearson, the
      same target subject's between-subject row), with a t-interval over subjects;
    - ``aps_within`` = mean_s ρ(A_{s→s}[r, :], ā^{−{s}}[r]) against the reference of the other
      subjects' pairs;
    - ``aps_between`` = mean_s mean_{s*≠s} ρ(A_{s*→s}[r, :], ā^{−{s,s*}}[r]), the brain baseline
      of APA, for comparison;
    - ``mean_within`` / ``mean_between``: the rows' mean level (within-subject is usually
      higher: same brain, same vertices).

    Only the test split of ``bb`` (between subjects) is used; ``within`` rows enter no reference.

    Returns
    -------
    DataFrame
        Table ``brain_within_summary``.
    """
    from alignpatterns.patterns.apa import brain_tensor

    rows = []
    sidx = {s: i for i, s in enumerate(subjects)}
    ridx = {r: i for i, r in enumerate(rois)}
    for measure, w in within.groupby("measure", sort=True):
        b = bb[bb["measure"] == measure]
        A = brain_tensor(b, list(subjects), list(rois)).values  # (S, S, R, R), NaN on s′ = s
        S, R = len(subjects), len(rois)
        W = np.full((S, R, R), np.nan)
        w = w[w["subject"].isin(sidx) & w["source_roi"].isin(ridx) & w["target_roi"].isin(ridx)]
        W[w["subject"].map(sidx).to_numpy(), w["source_roi"].map(ridx).to_numpy(),
          w["target_roi"].map(ridx).to_numpy()] = w["score"].to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            between = np.nanmean(A, axis=0)  # (S, R, R): mean over sources of rows into s
            refs1 = {s: np.nanmean([A[a, c] for a in range(S) for c in range(S)
                                    if a != c and s not in (a, c)], axis=0) for s in range(S)}
            refs2 = {(s, t): np.nanmean([A[a, c] for a in range(S) for c in range(S)
                                         if a != c and not {a, c} & {s, t}], axis=0)
                     for s in range(S) for t in range(S) if s != t}
        for variant in variants:
            if variant not in ("full", "offdiag"):
                raise ValueError(f"within-subject summary: variant {variant!r} not supported; "
                                 "expected full or offdiag")
            for r, roi in enumerate(rois):
                cols = [c for c in range(R) if not (variant == "offdiag" and c == r)]
                rwb = np.array([_pearson(W[s, r, cols], between[s, r, cols]) for s in range(S)])
                aw = [_pearson(W[s, r, cols], refs1[s][r, cols]) for s in range(S)]
                ab = [np.mean([_pearson(A[t, s, r, cols], refs2[s, t][r, cols])
                               for t in range(S) if t != s]) for s in range(S)]
                ok = rwb[np.isfinite(rwb)]
                m = float(ok.mean()) if ok.size else np.nan
                if ok.size >= 2:
                    h = stats.t.ppf(0.5 + level / 2, ok.size - 1) * ok.std(ddof=1) / np.sqrt(
                        ok.size)
                else:
                    h = np.nan
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    rows.append({
                        "measure": measure, "variant": variant, "roi": roi, "n_subjects": S,
                        "n_entries": len(cols), "r_within_between": m,
                        "r_within_between_ci_low": m - h, "r_within_between_ci_high": m + h,
                        "aps_within": float(np.nanmean(aw)),
                        "aps_between": float(np.nanmean(ab)),
                        "mean_within": float(np.nanmean(W[:, r, cols])),
                        "mean_between": float(np.nanmean(between[:, r, cols]))})
    return pd.DataFrame(rows)
