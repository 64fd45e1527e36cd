"""A held-out subject scored as APA candidates (SPEC.md §5, "held-out subject").

Subject h is removed from the brain side; each of its ROIs r′ becomes a one-layer candidate
``heldout-<h>-<r′>`` whose "layer" is h's repetition-averaged responses in r′ (train and test
stimuli, shaped (n_stimuli, n_vertices)), scored against the other S−1 subjects exactly like a
model layer: the same measures, the same stimulus-permutation nulls, the same APA. With one layer
per candidate the layer is fixed, so the candidate's pattern for ROI r is h's own row r′ of the
ROI × ROI alignment matrix. A working APA must then pass ``heldout-<h>-<r>`` for ROI r (it is a
brain of the same kind, the brain baseline's own standard) and fail ``heldout-<h>-<r′>`` for most
r′ ≠ r (a brain region, but the wrong one: specificity must reject it).

All ROI candidates of one held-out subject share one set of stimulus permutations per measure
(stream ``(measure, "heldout-<h>")``), as the layers of one model do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alignpatterns.data.bmd import SubjectData
from alignpatterns.patterns.alignment import LPOptions, model_brain_scores
from alignpatterns.patterns.apa import MIN_SUBJECTS_VERDICT, run_apa
from alignpatterns.patterns.apa_boot import bootstrap_columns
from alignpatterns.patterns.streams import stimulus_permutations

__all__ = ["candidate_name", "subject_features", "heldout_scores", "heldout_apa",
           "heldout_outcome", "heldout_from_results"]

#: ``weights`` of a held-out-subject candidate in every table
WEIGHTS = "subject"


def candidate_name(subject: str, roi: str) -> str:
    """Candidate name of held-out subject ``subject``'s ROI ``roi``."""
    return f"heldout-{subject}-{roi}"


def subject_features(sd: SubjectData, rois: Sequence[str]
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A subject's ROIs as feature matrices.

    Parameters
    ----------
    sd : SubjectData
        Prepared data of the held-out subject.
    rois : sequence of str
        ROIs to use; ROIs missing in this subject are left out.

    Returns
    -------
    dict of ROI → (train (n_train, n_vertices), test (n_test, n_vertices))
        Repetition-averaged responses, in ``rois`` order.
    """
    return {r: (sd.rois[r].train, sd.rois[r].test) for r in rois if sd.rois.get(r) is not None}


def heldout_scores(held: SubjectData, others: Mapping[str, SubjectData], rois: Sequence[str],
                   measures: Sequence[str], lp: LPOptions, seed: int, n_permutations: int
                   ) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Model–brain scores of the held-out subject's ROI candidates on the other subjects.

    Parameters
    ----------
    held : SubjectData
        The held-out subject.
    others : mapping subject → SubjectData
        The scored subjects (same stimuli as ``held``), in APA order.
    rois : sequence of str
    measures : sequence of str
    lp : LPOptions
    seed : int
        The config's seed (stimulus-permutation streams).
    n_permutations : int
        Stimulus permutations per measure.

    Returns
    -------
    mb : DataFrame
        ``model_brain`` rows (``model`` = :func:`candidate_name`, ``weights`` = ``subject``,
        one layer per candidate, named after its ROI).
    nulls : dict of measure → dict of candidate → ndarray, shape (n_draws, 1, n_others, n_rois)
        Test scores under the stimulus permutations (the ``nulls`` argument of
        :func:`~alignpatterns.patterns.apa.run_apa`).
    """
    if held.subject in others:
        raise ValueError(f"held-out subject {held.subject!r} is also among the scored subjects")
    feats = subject_features(held, rois)
    if not feats:
        raise ValueError(f"held-out subject {held.subject!r} has none of the ROIs {list(rois)}")
    group = candidate_name(held.subject, "")[:-1]
    rows, per_sub = [], []
    for s, sd in others.items():
        if sd.train_ids != held.train_ids or sd.test_ids != held.test_ids:
            raise ValueError(f"sub-{s}: stimulus ids differ from held-out sub-{held.subject}")
        perms = {m: stimulus_permutations(seed, m, group, n_permutations, len(sd.test_ids))
                 for m in measures}
        r, n = model_brain_scores(feats, sd, rois, measures, lp, perms)
        rows += r
        per_sub.append(n)
    mb = pd.DataFrame(rows)
    mb.insert(1, "model", [candidate_name(held.subject, x) for x in mb["layer"]])
    mb.insert(2, "weights", WEIGHTS)
    mb["layer_index"] = 0  # every candidate has exactly one layer
    nulls = {}
    for m in measures:
        full = np.stack([n[m] for n in per_sub], axis=2)  # (draws, n_rois_held, subjects, rois)
        nulls[m] = {candidate_name(held.subject, roi): full[:, [j]]
                    for j, roi in enumerate(feats)}
    return mb, nulls


def heldout_apa(held: SubjectData, others: Mapping[str, SubjectData], bb: pd.DataFrame,
                rois: Sequence[str], measures: Sequence[str], lp: LPOptions, seed: int,
                n_permutations: int = 1000, variants: Sequence[str] = ("offdiag",),
                matches: Sequence[str] = ("pearson",), margin: float = 0.1,
                ceilings: pd.DataFrame | None = None, min_ceiling: float = 0.1
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """APA of a held-out subject's ROIs as candidates, on the other subjects.

    Parameters
    ----------
    held, others, rois, measures, lp, seed, n_permutations
        As :func:`heldout_scores`; verdicts need ≥ 6 scored subjects.
    bb : DataFrame
        ``brain_brain`` rows (any subjects: pairs involving the held-out subject are dropped).
    variants, matches, margin, ceilings, min_ceiling
        As :func:`~alignpatterns.patterns.apa.run_apa`.

    Returns
    -------
    mb : DataFrame
        The candidates' ``model_brain`` rows.
    summary : DataFrame
        ``apa_summary`` rows of every measure: the brain baseline on the other subjects and
        one row per held-out candidate × ROI × variant × match, with its verdict.
    """
    subjects = list(others)
    if len(subjects) < MIN_SUBJECTS_VERDICT:
        raise ValueError(f"a held-out subject check needs ≥ {MIN_SUBJECTS_VERDICT} other "
                         f"subjects for verdicts; found {len(subjects)}")
    mb, nulls = heldout_scores(held, others, rois, measures, lp, seed, n_permutations)
    bb = bb[bb["source_subject"].isin(subjects) & bb["target_subject"].isin(subjects)]
    out = []
    for m in measures:
        _, summary = run_apa(bb[bb["measure"] == m], mb[mb["measure"] == m], subjects, rois, m,
                             variants=variants, matches=matches, margin=margin,
                             ceilings=ceilings, min_ceiling=min_ceiling, nulls=nulls[m])
        # the table's stimulus-bootstrap columns, empty: the check reads the jackknife verdict
        out.append(bootstrap_columns(summary, bb, mb, subjects, rois, m, np.empty((0,)), {}, 0,
                                     seed))
    return mb, pd.concat(out, ignore_index=True)


def heldout_outcome(summary: pd.DataFrame, subject: str) -> pd.DataFrame:
    """Per measure × variant × match × ROI r: whether ``heldout-<h>-<r>`` passes for r, and
    the share of ``heldout-<h>-<r′>``, r′ ≠ r, that fail for r.

    Returns
    -------
    DataFrame with columns measure, variant, match, roi, own_passes, others_fail (share),
    n_others.
    """
    prefix = candidate_name(subject, "")
    d = summary[summary["candidate"].str.startswith(prefix)].copy()
    d["source_roi"] = d["candidate"].str[len(prefix):]
    rows = []
    for (m, v, match, r), g in d.groupby(["measure", "variant", "match", "roi"], sort=True):
        own = g[g["source_roi"] == r]["passes"]
        rest = g[g["source_roi"] != r]["passes"]
        rows.append({"measure": m, "variant": v, "match": match, "roi": r,
                     "own_passes": bool(own.iloc[0]) if len(own) and own.notna().all()
                     else pd.NA,
                     "others_fail": float((rest == False).mean()),  # noqa: E712 - NA stays NA
                     "n_others": int(len(rest))})
    return pd.DataFrame(rows)


def heldout_from_results(cfg: dict, results: str | Path, subject: str,
                         measures: Sequence[str] | None = None,
                         variants: Sequence[str] | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`heldout_apa` on the files of a workflow run (``alignpatterns heldout``).

    Parameters
    ----------
    cfg : dict
        The run's resolved config (subjects, ROIs, seed, ``lp`` and ``apa`` options).
    results : path-like
        The run's ``results`` folder: ``brain/sub-<s>.npz``, ``data/dataset.json``,
        ``alignment/brain_brain/<measure>/sub-<s>.parquet`` (or ``tables/brain_brain.parquet``)
        and, for the normalized variants, ``tables/ceilings.parquet``.
    subject : str
        The held-out subject (one of the config's subjects).
    measures, variants : sequences of str, optional
        Default: the config's measures and APA variants.

    Returns
    -------
    As :func:`heldout_apa`.
    """
    from alignpatterns.data.prepared import load_subject
    from alignpatterns.io import read_table
    from alignpatterns.pipeline import _lp_options

    results = Path(results)
    subjects = list(cfg["subjects"])
    if subject not in subjects:
        raise ValueError(f"held-out subject {subject!r} is not among the config's subjects "
                         f"{subjects}")
    measures = list(measures or cfg["measures"])
    variants = list(variants or cfg["apa"]["variants"])
    sds = {}
    for s in subjects:
        path = results / "brain" / f"sub-{s}.npz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: prepared subject not found (run the workflow "
                                    "up to prepare_brain first)")
        sds[s] = load_subject(path)
    held = sds.pop(subject)
    table = results / "tables" / "brain_brain.parquet"
    if table.exists():
        bb = read_table(table, "brain_brain")
    else:
        paths = [results / "alignment" / "brain_brain" / m / f"sub-{s}.parquet"
                 for m in measures for s in subjects if s != subject]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"brain–brain scores not found: {missing[:3]} (and "
                                    f"{max(0, len(missing) - 3)} more); expected {table} or "
                                    "the per-subject files")
        bb = pd.concat([read_table(p, "brain_brain") for p in paths], ignore_index=True)
    absent = sorted(set(measures) - set(bb["measure"]))
    if absent:
        raise ValueError(f"{results}: no brain–brain scores for measures {absent}")
    ceilings_path = results / "tables" / "ceilings.parquet"
    ceilings = read_table(ceilings_path, "ceilings") if ceilings_path.exists() else None
    a = cfg["apa"]
    return heldout_apa(held, sds, bb, cfg["rois"], measures,
                       _lp_options(cfg, results / "data" / "dataset.json"), cfg["seed"],
                       n_permutations=int(a["n_permutations"]), variants=variants,
                       matches=a["match"], margin=a["margin"], ceilings=ceilings,
                       min_ceiling=a["min_ceiling"])
