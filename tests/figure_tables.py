"""Small synthetic result tables for the figure and report tests (built, never committed).

Every builder returns a DataFrame with exactly the contract columns of its table
(``alignpatterns.io.TABLE_SCHEMAS``): columns the builder does not set are filled with missing
values, so the fixtures follow schema changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alignpatterns.io import TABLE_SCHEMAS, coerce_table

ROIS = ["V1", "V2", "V3", "hV4", "LOC", "FFA"]  # stream/hierarchy order, not alphabetical
STREAMS = {"early": ["V1", "V2", "V3"], "ventral": ["hV4", "FFA"], "lateral": ["LOC"]}
MODELS = [("resnet18", "pretrained"), ("vit_b16", "pretrained"), ("alexnet", "pretrained")]
MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson"]
SUBJECTS = ["01", "02", "03", "04"]
NAN_MODEL, NAN_ROI = "vit_b16", "hV4"  # a missing cell
N_LAYERS = 3


def as_table(rows: list[dict] | pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows → a table of ``kind`` with the contract columns, order and dtypes."""
    df = pd.DataFrame(rows)
    for col, dtype in TABLE_SCHEMAS[kind].items():
        if col not in df.columns:
            df[col] = {"int64": 0, "float64": np.nan}.get(dtype, pd.NA)
    return coerce_table(df[list(TABLE_SCHEMAS[kind])], kind)


def model_brain_summary(rois=ROIS, models=MODELS, measures=MEASURES, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for model, weights in models:
            for j, roi in enumerate(rois):
                s = float(rng.uniform(0.05, 0.4))
                ceil = (np.nan if measure.startswith("cka") or roi == rois[-1]
                        else 0.6 + 0.02 * j)
                if model == NAN_MODEL and roi == NAN_ROI:
                    s = np.nan
                rows.append(dict(
                    measure=measure, model=model, weights=weights, roi=roi,
                    layer=f"layer{j % N_LAYERS}", layer_index=j % N_LAYERS, score_mean=s,
                    ci_low=s - 0.05, ci_high=s + 0.05, ceiling_mean=ceil, normalized=s / ceil))
    df = pd.DataFrame(rows)
    # the paper's rule, as summarize_model_brain applies it: mean below the best's lower bound
    best_low = df.loc[df.groupby(["measure", "roi"])["score_mean"].idxmax().dropna(),
                      ["measure", "roi", "ci_low"]].rename(columns={"ci_low": "best_low"})
    df = df.merge(best_low, on=["measure", "roi"], how="left")
    df["distinguishable_from_best"] = pd.array(
        [pd.NA if np.isnan(m) else bool(m < b) for m, b in zip(df.score_mean, df.best_low,
                                                                strict=True)],
        dtype="boolean")
    return as_table(df.drop(columns="best_low").to_dict("records"), "model_brain_summary")


def brain_brain(rois=ROIS, subjects=SUBJECTS, measures=MEASURES, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for split in ("train", "test"):
            for s in subjects:
                for t in subjects:
                    if s == t:
                        continue
                    for a in rois:
                        for b in rois:
                            score = 0.5 - 0.08 * abs(rois.index(a) - rois.index(b))
                            score += float(rng.normal(0, 0.02))
                            if NAN_ROI in (a, b) and t == subjects[1]:
                                score = np.nan  # ragged: ROI missing in one subject
                            rows.append(dict(measure=measure, source_subject=s, source_roi=a,
                                             target_subject=t, target_roi=b, split=split,
                                             score=score, n_source_dims=50, n_vertices=100))
    df = pd.DataFrame(rows)
    # last ROI → first ROI never measured: a fully missing cell.
    df.loc[(df["source_roi"] == rois[-1]) & (df["target_roi"] == rois[0]), "score"] = np.nan
    return as_table(df, "brain_brain")


def model_brain(rois=ROIS, subjects=SUBJECTS, models=MODELS, measures=MEASURES, seed=2
                ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for model, weights in models:
            for li in range(N_LAYERS):
                for s in subjects:
                    for roi in rois:
                        for split in ("train", "test"):
                            rows.append(dict(measure=measure, model=model, weights=weights,
                                             layer=f"layer{li}", layer_index=li, subject=s,
                                             roi=roi, split=split,
                                             score=float(rng.uniform(0, 0.5)),
                                             n_source_dims=64, n_vertices=100))
    return as_table(rows, "model_brain")


def ceilings(rois=ROIS, subjects=SUBJECTS, measures=MEASURES) -> pd.DataFrame:
    rows = []
    for measure in measures:
        kinds = ["lp_ceiling"] if measure.startswith("lp") else ["split_half", "ceiling_upper"]
        for s in subjects:
            for j, roi in enumerate(rois):
                for split in ("train", "test"):
                    for kind in kinds:
                        rows.append(dict(measure=measure, subject=s, roi=roi, split=split,
                                         kind=kind, value=0.4 + 0.05 * j, n_reps=10.0))
    return as_table(rows, "ceilings")


def apa_summary(rois=ROIS, models=MODELS, measures=MEASURES, variants=("full", "offdiag"),
                with_verdict=True, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for variant in variants:
            for cand, weights in [("brain", None), *models]:
                for roi in rois:
                    aps = float(rng.uniform(-0.2, 0.9))
                    if cand == NAN_MODEL and roi == NAN_ROI:
                        aps = np.nan
                    passes = (pd.NA if not with_verdict or cand == "brain"
                              else bool(cand == models[0][0] and roi in rois[:2]))
                    rows.append(dict(
                        measure=measure, variant=variant, match="pearson", selection="score",
                        candidate=cand, weights=weights, roi=roi,
                        layer=None if cand == "brain" else "layer1",
                        n_subjects=4, n_entries=len(rois) - 1, ci_method="jackknife-t",
                        aps_mean=aps, aps_ci_low=aps - 0.1, aps_ci_high=aps + 0.1,
                        brain_aps_mean=0.6, delta=aps - 0.6, delta_ci_low=aps - 0.75,
                        delta_ci_high=aps - 0.45, margin=0.1, passes=passes))
    return as_table(rows, "apa_summary")


def apa(rois=ROIS, subjects=SUBJECTS, models=MODELS, measures=MEASURES,
        variants=("full", "offdiag"), seed=4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for variant in variants:
            for cand, weights in [("brain", None), *models]:
                for roi in rois:
                    for s in subjects:
                        for si in subjects:
                            if si == s:
                                continue
                            rows.append(dict(
                                measure=measure, variant=variant, match="pearson",
                                selection="score", candidate=cand, weights=weights, roi=roi,
                                layer=None if cand == "brain" else "layer1", subject=s,
                                stand_in_subject=si, reference="double-exclusion",
                                n_entries=len(rois) - 1, aps=float(rng.uniform(0, 0.9))))
    return as_table(rows, "apa")


def apa_confusion(rois=ROIS, models=MODELS, measures=MEASURES, variants=("full", "offdiag"),
                  seed=5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for variant in variants:
            for cand, weights in [("brain", None), *models]:
                mat = rng.dirichlet(np.ones(len(rois)), size=len(rois)) + 2 * np.eye(len(rois))
                mat /= mat.sum(axis=1, keepdims=True)
                acc = float(np.trace(mat) / len(rois))
                for i, roi in enumerate(rois):
                    for j, ident in enumerate(rois):
                        rows.append(dict(measure=measure, variant=variant, match="pearson",
                                         candidate=cand, weights=weights, roi=roi,
                                         identified_roi=ident, fraction=float(mat[i, j]),
                                         top1_accuracy=acc, top1_p=0.01, chance=1 / len(rois),
                                         n_draws=100))
    return as_table(rows, "apa_confusion")


def apa_nulls(rois=ROIS, measures=MEASURES, variants=("full", "offdiag"), seed=6
              ) -> pd.DataFrame:
    """Generic nulls; ``target-reliability`` is NaN on ``offdiag`` (as on constant profiles)."""
    rng = np.random.default_rng(seed)
    rows = []
    for measure in measures:
        for variant in variants:
            for null in ("grand-mean", "adjacency", "target-reliability"):
                for roi in rois:
                    aps = (np.nan if null == "target-reliability" and variant == "offdiag"
                           else float(rng.uniform(-0.2, 0.8)))
                    rows.append(dict(measure=measure, variant=variant, match="pearson",
                                     null=null, roi=roi, n_subjects=len(SUBJECTS),
                                     aps_mean=aps))
    return as_table(rows, "apa_nulls")


def all_tables(**kw) -> dict[str, pd.DataFrame]:
    """Every table a figure reads, with shared ROIs / subjects / models / measures."""
    rois = kw.get("rois", ROIS)
    subjects = kw.get("subjects", SUBJECTS)
    models = kw.get("models", MODELS)
    measures = kw.get("measures", MEASURES)
    return {
        "model_brain_summary": model_brain_summary(rois, models, measures),
        "brain_brain": brain_brain(rois, subjects, measures),
        "model_brain": model_brain(rois, subjects, models, measures),
        "ceilings": ceilings(rois, subjects, measures),
        "apa_summary": apa_summary(rois, models, measures),
        "apa": apa(rois, subjects, models, measures),
        "apa_confusion": apa_confusion(rois, models, measures),
        "apa_nulls": apa_nulls(rois, measures),
    }
