"""Conventional alignment: noise ceilings and the per-ROI model summary (SPEC.md §3).

- LP ceiling (Pearson r units) = mean over kept vertices of √(NC_v/100), NC from the split's
  ncsnr with n = its number of repetitions (test 10, train 3).
- RSA ceilings = rsatoolbox ``boot_noise_ceiling`` per subject: lower = compare(pool(others), RDM_s),
  upper = compare(pool(all), RDM_s), with the measure's brain RDMs and Spearman.
- CKA: NaN as a ceiling.
- ``split_half`` (test split, RSA and CKA): Spearman–Brown corrected reliability of the ROI's
  representation between odd and even test repetitions, the per-target ceiling that the
  ``normalized`` APA variants divide by (SPEC.md §4); LP normalises by ``lp_ceiling``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.measures import compare_rdms, linear_cka, rdm
from alignpatterns.measures.ceilings import effective_repetitions, rsa_noise_ceiling
from alignpatterns.patterns.alignment import brain_representation, is_lp, rdm_comparison

#: Measures with an odd/even split-half reliability (APA's ``split_half`` ceiling).
SPLIT_HALF_MEASURES = ("rsa-crossnobis-spearman", "rsa-correlation-spearman",
                       "rsa-correlation-pearson", "cka-linear-debiased")


def vertex_repetitions(d: ROIData, split: str) -> np.ndarray:
    """Repetitions behind each kept vertex's ``split`` average, shape (n_vertices,): the betas'
    repetition axis (BMD 3 train and 10 test, Algonauts 3 and 3), or with NaN repetitions the
    harmonic mean of the per-stimulus counts (SPEC.md §3)."""
    return effective_repetitions(d.train_reps if split == "train" else d.test_reps)


def n_repetitions(d: ROIData | None, split: str) -> float:
    """Mean over kept vertices of :func:`vertex_repetitions` (the ``n_reps`` column); NaN for a
    missing ROI."""
    if d is None:
        return float("nan")
    return float(np.nanmean(vertex_repetitions(d, split)))


def split_half_reliability(d: ROIData, measure: str) -> float:
    """Spearman–Brown corrected odd/even split-half reliability of one ROI on the test split.

    Parameters
    ----------
    d : ROIData
        Test repetitions ``d.test_reps`` shaped (n_stimuli, n_reps, n_vertices).
    measure : str
        ``rsa-crossnobis-spearman`` (crossnobis RDM of each half, Spearman),
        ``rsa-correlation-spearman`` (1 − Pearson RDM of each half's average, Spearman) or
        ``cka-linear-debiased`` (debiased CKA of the two halves' averages).

    Returns
    -------
    reliability : float
        ``2 r / (1 + r)`` with r the half-to-half similarity; NaN when r ≤ −1 or undefined
        (also when NaN repetitions leave a half without the data its representation needs).
    """
    if measure not in SPLIT_HALF_MEASURES:
        raise ValueError(f"no split-half reliability for measure {measure!r}")
    reps = d.test_reps
    halves = (reps[:, 0::2], reps[:, 1::2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if measure == "rsa-crossnobis-spearman":
                a, b = (rdm(h, "crossnobis", backend="numpy") for h in halves)
                r = compare_rdms(a, b, "spearman")
            elif measure == "cka-linear-debiased":
                a, b = (np.nanmean(h, axis=1) for h in halves)
                r = linear_cka(a, b, debiased=True, backend="numpy")
            else:
                a, b = (rdm(np.nanmean(h, axis=1), "correlation", backend="numpy")
                        for h in halves)
                r = compare_rdms(a, b, rdm_comparison(measure))
        except ValueError:
            # a half without the data its representation needs (NaN repetitions leave a
            # stimulus with no repetition, or one only, in that half): the reliability is
            # undefined, so the target column is dropped (NaN ceiling), not the whole job
            return float("nan")
    if not np.isfinite(r) or r <= -1:
        return float("nan")
    return float(2 * r / (1 + r))


def ceiling_rows(subjects: Mapping[str, SubjectData], rois: Sequence[str],
                 measures: Sequence[str]) -> list[dict]:
    """Rows of the ``ceilings`` table for every measure, subject, ROI and split."""
    rows = []
    subs = list(subjects)
    for measure in measures:
        for roi in rois:
            for split in ("train", "test"):
                n_reps = {s: n_repetitions(subjects[s].rois.get(roi), split) for s in subs}
                if is_lp(measure):
                    for s in subs:
                        d = subjects[s].rois.get(roi)
                        val = np.nan
                        if d is not None:
                            snr = d.ncsnr_train if split == "train" else d.ncsnr_test
                            # NC for the mean over the split's repetitions (SPEC §3: n = 10
                            # test and 3 train for BMD; Algonauts' held-out split has 3;
                            # harmonic mean of the counts with NaN repetitions)
                            nc = snr**2 / (snr**2 + 1.0 / vertex_repetitions(d, split))
                            # Pearson r is bounded by √NC, R² by NC
                            val = float(np.mean(nc if measure == "lp-ridge-r2" else np.sqrt(nc)))
                        rows.append({"measure": measure, "subject": s, "roi": roi,
                                     "split": split, "kind": "lp_ceiling", "value": val,
                                     "n_reps": n_reps[s]})
                elif measure.startswith("rsa-"):
                    reps = {s: brain_representation(subjects[s], roi, measure) for s in subs}
                    present = [s for s in subs if reps[s] is not None]
                    lower = upper = {}
                    if len(present) >= 2:
                        R = np.stack([reps[s].values[split] for s in present])
                        lo, up = rsa_noise_ceiling(R, rdm_comparison(measure))
                        lower = dict(zip(present, lo, strict=True))
                        upper = dict(zip(present, up, strict=True))
                    for s in subs:
                        for kind, vals in (("ceiling_lower", lower), ("ceiling_upper", upper)):
                            rows.append({"measure": measure, "subject": s, "roi": roi,
                                         "split": split, "kind": kind,
                                         "value": float(vals.get(s, np.nan)),
                                         "n_reps": n_reps[s]})
                else:
                    for s in subs:
                        rows.append({"measure": measure, "subject": s, "roi": roi,
                                     "split": split, "kind": "ceiling_upper", "value": np.nan,
                                     "n_reps": n_reps[s]})
                if split == "test" and not is_lp(measure):
                    for s in subs:
                        d = subjects[s].rois.get(roi)
                        val = np.nan if d is None else split_half_reliability(d, measure)
                        rows.append({"measure": measure, "subject": s, "roi": roi,
                                     "split": split, "kind": "split_half", "value": val,
                                     "n_reps": n_reps[s]})
    return rows


def _t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan, np.nan
    m = float(x.mean())
    if x.size < 2:
        return m, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return m, m - half, m + half


#: Intervals of the conventional summary: a t-interval over subjects (default) or the paper's
#: percentile bootstrap of subjects.
SUMMARY_CI = ("t", "percentile-bootstrap")


def _bootstrap_interval(x: np.ndarray, n_draws: int, seed: int, measure: str, roi: str
                        ) -> tuple[float, float, float]:
    """Mean and 95% percentile interval of the mean over subject resamples of ``x`` (S,)."""
    from alignpatterns.measures.stats import bootstrap_subjects, percentile_interval
    from alignpatterns.patterns.streams import stream

    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan, np.nan, np.nan
    if x.size < 2 or n_draws < 1:
        return float(x.mean()), np.nan, np.nan
    idx = bootstrap_subjects(x.size, n_draws,
                             stream(seed, measure, roi, "conventional-bootstrap"))
    lo, hi = percentile_interval(x[idx].mean(axis=1))
    return float(x.mean()), float(lo), float(hi)


def summarize_model_brain(mb: pd.DataFrame, ceilings: pd.DataFrame, *, ci: str = "t",
                          n_bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per measure × model × ROI: the train-selected layer's test score across subjects.

    The layer maximises the subject-mean train score; the test score's mean and interval over
    subjects are reported with the mean ceiling (LP: ``lp_ceiling``; RSA: ``ceiling_upper``) and
    ``distinguishable_from_best`` by the paper's rule (mean below the best model's lower bound).

    Parameters
    ----------
    mb : DataFrame
        The ``model_brain`` table.
    ceilings : DataFrame
        The ``ceilings`` table.
    ci : {"t", "percentile-bootstrap"}
        ``t``: mean ± t_{S−1}·SE over subjects. ``percentile-bootstrap`` (the paper preset): the
        2.5 and 97.5 percentiles of the mean over ``n_bootstrap`` subject resamples, the
        interval the released code's rule reads; the resamples come from the stream (seed,
        measure, ROI, "conventional-bootstrap"), shared by every model of a (measure, ROI) with
        the same subjects, so adding a model changes no other row.
    n_bootstrap, seed : int
        Resamples and seed of the percentile bootstrap.
    """
    if ci not in SUMMARY_CI:
        raise ValueError(f"ci must be one of {SUMMARY_CI}, got {ci!r}")
    rows = []
    ceil = ceilings[(ceilings["split"] == "test")
                    & ceilings["kind"].isin(["lp_ceiling", "ceiling_upper"])]
    ceil_mean = ceil.groupby(["measure", "roi"])["value"].mean()
    for (measure, model, weights, roi), d in mb.groupby(["measure", "model", "weights", "roi"],
                                                        sort=True):
        tr = d[d["split"] == "train"].groupby(["layer_index", "layer"])["score"].mean()
        if tr.dropna().empty:
            li, layer = -1, ""
            m = lo = hi = np.nan
        else:
            li, layer = tr.idxmax()
            te = d[(d["split"] == "test") & (d["layer_index"] == li)]["score"].to_numpy(float)
            if ci == "t":
                m, lo, hi = _t_interval(te)
            else:
                m, lo, hi = _bootstrap_interval(te, n_bootstrap, seed, measure, roi)
        c = float(ceil_mean.get((measure, roi), np.nan))
        rows.append({"measure": measure, "model": model, "weights": weights, "roi": roi,
                     "layer": layer, "layer_index": int(li), "score_mean": m, "ci_low": lo,
                     "ci_high": hi, "ceiling_mean": c,
                     "normalized": m / c if np.isfinite(c) and c != 0 else np.nan})
    out = pd.DataFrame(rows)
    if out.empty:
        out["distinguishable_from_best"] = pd.Series(dtype="boolean")
        return out
    flags = []
    for _, g in out.groupby(["measure", "roi"], sort=False):
        best = g["score_mean"].idxmax() if g["score_mean"].notna().any() else None
        for idx, row in g.iterrows():
            if best is None or not np.isfinite(row["score_mean"]):
                flags.append((idx, pd.NA))
            else:
                flags.append((idx, bool(row["score_mean"] < out.loc[best, "ci_low"])))
    out["distinguishable_from_best"] = pd.Series(dict(flags)).astype("boolean")
    return out
