"""Alignment Pattern Analysis figures: APS per ROI against the brain baseline, and profiles."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ._common import (
    BRAIN_COLOR,
    CEILING_COLOR,
    DOUBLE_COLUMN,
    MARKERS,
    OKABE_ITO,
    SINGLE_COLUMN,
    axis_label,
    check_roi_order,
    dodge,
    errorbar_series,
    finalize,
    mark_streams,
    measure_label,
    model_palette,
    new_figure,
    per_roi,
    roi_axis,
    rows_for,
    select,
    series_style,
    series_table,
    stream_groups,
    styled,
    suptitle,
)

__all__ = ["brain_aps_per_subject", "plot_apa_overview", "plot_aps_per_roi", "plot_confusion",
           "plot_pattern_profiles", "plot_profile_panels", "plot_score_vs_aps",
           "plot_trained_vs_untrained"]

APS_LABEL = "Alignment pattern similarity (Pearson r)"
BRAIN_LABEL = "brain (held-out subject)"


def _as_float(s: pd.Series) -> pd.Series:
    """Booleans / nullable values → float with NaN for missing."""
    if s.dtype == object or str(s.dtype) in {"bool", "boolean"}:
        s = s.astype("boolean").astype("Float64")
    return pd.to_numeric(s, errors="coerce").astype(float)


@styled
def plot_aps_per_roi(apa_summary: pd.DataFrame, roi_order: Sequence[str], measure: str,
                     variant: str = "offdiag", *, match: str = "pearson",
                     models: Sequence[str] | None = None, show_delta: bool = False) -> Figure:
    """APS of each model per ROI beside the brain baseline, with CIs.

    Parameters
    ----------
    apa_summary : DataFrame
        The ``apa_summary`` table. Rows with ``candidate == "brain"`` are the brain baseline;
        if there are none, the models' paired ``brain_aps_mean`` is drawn instead (no CI).
    roi_order : sequence of str
        ROIs in stream/hierarchy order (x axis).
    measure : str
        Measure, e.g. ``"lp-ridge-pearson"``.
    variant : str
        APA variant, default ``"offdiag"``.
    match : str
        Pattern-matching statistic, default ``"pearson"`` (the y label follows it).
    models : sequence of str, optional
        Candidate models to show and their order; default all non-brain candidates, sorted.
    show_delta : bool
        Add a lower panel with Δ = APS_model − APS_brain (paired CI), a dashed line at 0 and a
        dotted line at −margin (the verdict's δ).

    Returns
    -------
    matplotlib.figure.Figure
        Brain baseline in black, one colour/marker per model, a dashed line at APS = 0, legend
        outside the axes. Models with ``passes == True`` get a star above their CI when the
        ``passes`` column has values; NaN cells draw nothing.
    """
    rois = check_roi_order(roi_order)
    sel = select(apa_summary, "apa_summary", measure=measure, variant=variant, match=match)
    is_brain = (sel["candidate"].astype(str) == "brain").to_numpy()
    brain, cand = sel.loc[is_brain], sel.loc[~is_brain]
    if cand.empty:
        raise ValueError(f"apa_summary table: only brain rows for measure {measure!r}, "
                         f"variant {variant!r}; no model to plot")
    series = series_table(cand, "candidate", models)
    passes = _as_float(cand["passes"]) if "passes" in cand.columns else pd.Series(dtype=float)
    has_verdict = bool(np.isfinite(passes.to_numpy()).any())

    n_rows = 2 if show_delta else 1
    width = float(min(4.5 + len(rois) * max(0.55, 0.065 * (len(series) + 1)), 16.0))
    height = 3.8 if len(rois) * len(series) <= 40 else 4.6
    fig = new_figure(width, height * n_rows + 0.4)
    axes = fig.subplots(n_rows, 1, squeeze=False, sharex=True)[:, 0]
    ax = axes[0]
    x = np.arange(len(rois), dtype=float)
    offsets = dodge(len(series) + 1)

    if not brain.empty:
        b_mean = per_roi(brain, rois, "aps_mean")
        b_low, b_high = per_roi(brain, rois, "aps_ci_low"), per_roi(brain, rois, "aps_ci_high")
    else:
        b = (cand.assign(_b=_as_float(cand["brain_aps_mean"]))
             .groupby(cand["roi"].astype(str).to_numpy())["_b"].mean())
        b_mean = b.reindex(rois).to_numpy(dtype=float)
        b_low = b_high = np.full(len(rois), np.nan)
    errorbar_series(ax, x + offsets[0], b_mean, b_low, b_high, color=BRAIN_COLOR, marker="D",
                    label=BRAIN_LABEL, markersize=5.5, zorder=4)

    star_x, star_y, star_c = [], [], []
    for i, (name, weights, label) in enumerate(series):
        rows = rows_for(cand, "candidate", name, weights)
        color = OKABE_ITO[i % len(OKABE_ITO)]
        marker = MARKERS[i % len(MARKERS)]
        mean = per_roi(rows, rois, "aps_mean")
        high = per_roi(rows, rois, "aps_ci_high")
        errorbar_series(ax, x + offsets[i + 1], mean, per_roi(rows, rois, "aps_ci_low"), high,
                        color=color, marker=marker, label=label)
        if has_verdict:
            ok = per_roi(rows.assign(_p=_as_float(rows["passes"])), rois, "_p") == 1.0
            ok &= np.isfinite(mean)
            top = np.where(np.isfinite(high), high, mean)
            star_x += list(x[ok] + offsets[i + 1])
            star_y += list(top[ok])
            star_c += [color] * int(ok.sum())
        if show_delta:
            errorbar_series(axes[1], x + offsets[i + 1], per_roi(rows, rois, "delta"),
                            per_roi(rows, rois, "delta_ci_low"),
                            per_roi(rows, rois, "delta_ci_high"),
                            color=color, marker=marker, label=label)
    if star_x:
        span = np.nanmax(np.abs(np.asarray(star_y))) if star_y else 1.0
        ax.scatter(star_x, np.asarray(star_y) + 0.04 * max(span, 0.25), marker="*", s=60,
                   c=star_c, edgecolors="black", linewidths=0.4, zorder=5, gid="passes")

    ax.axhline(0.0, color=CEILING_COLOR, linestyle="--", linewidth=1.0, zorder=0)
    ax.set_ylabel(APS_LABEL if match == "pearson" else
                  f"Alignment pattern similarity ({match})")
    ax.set_title(f"APA · {measure} · {variant}: mean over target subjects, CI", loc="left",
                 fontsize="medium")
    handles, labels = ax.get_legend_handles_labels()
    if has_verdict:
        handles.append(Line2D([], [], linestyle="none", marker="*", markersize=9, color="0.5",
                              markeredgecolor="black"))
        labels.append("passes (Δ, specificity,\nstimulus permutation)")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              fontsize="small", title="candidate")
    if show_delta:
        dax = axes[1]
        dax.axhline(0.0, color=CEILING_COLOR, linestyle="--", linewidth=1.0, zorder=0)
        margins = pd.to_numeric(cand["margin"], errors="coerce").dropna() \
            if "margin" in cand.columns else pd.Series(dtype=float)
        if len(margins):
            dax.axhline(-float(margins.iloc[0]), color=BRAIN_COLOR, linestyle=":",
                        linewidth=1.0, zorder=0, gid="margin",
                        label=f"−δ (margin δ = {float(margins.iloc[0]):g})")
            dax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                       fontsize="small", handles=[h for h in dax.get_lines()
                                                  if h.get_gid() == "margin"])
        dax.set_ylabel("Δ APS, model − brain\n(Pearson r, paired)")
        roi_axis(ax, rois)
        roi_axis(dax, rois)
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
    else:
        roi_axis(ax, rois)
    return finalize(fig)


@styled
def plot_pattern_profiles(brain_brain: pd.DataFrame, model_brain: pd.DataFrame,
                          summary: pd.DataFrame, roi: str, roi_order: Sequence[str],
                          measure: str, *, variant: str = "offdiag", split: str = "test",
                          models: Sequence[str] | None = None,
                          standardize: bool = False) -> Figure:
    """The brain's alignment profile of one ROI beside the models' profiles.

    The brain profile is row ``roi`` of the mean cross-subject matrix, ā[roi, r′] (mean over
    ordered subject pairs of ``brain_brain``). A model's profile is its mean over subjects of
    ``model_brain`` scores on every target ROI r′, using the layer selected for ``roi`` in
    ``summary`` (the model pattern M[r′] of SPEC.md §4, averaged over subjects).

    Parameters
    ----------
    brain_brain : DataFrame
        The ``brain_brain`` table.
    model_brain : DataFrame
        The per-subject ``model_brain`` table (columns measure, model, weights, layer, subject,
        roi, split, score, ...).
    summary : DataFrame
        The ``model_brain_summary`` table, which gives each model's selected layer for ``roi``.
    roi : str
        The source ROI whose profile is drawn.
    roi_order : sequence of str
        Target ROIs in stream/hierarchy order (x axis).
    measure : str
        Measure.
    variant : str
        ``"offdiag"`` leaves the entry r′ = ``roi`` out (as APS does); ``"full"`` keeps it.
    split : str
        Split of the scores, default ``"test"``.
    models : sequence of str, optional
        Models and their order; default all, sorted.
    standardize : bool
        z-score each profile over its shown entries (APS with Pearson r ignores offset and
        scale, so this shows what it compares).

    Returns
    -------
    matplotlib.figure.Figure
        Brain profile in black, model profiles in colour; missing entries are gaps.
    """
    from .brain import brain_pattern_matrix

    rois = check_roi_order(roi_order)
    if roi not in rois:
        raise ValueError(f"roi {roi!r} is not in roi_order {rois}")
    mean, _, _ = brain_pattern_matrix(brain_brain, rois, measure, split)
    brain = mean.loc[roi].to_numpy(dtype=float)
    summ = select(summary, "model_brain_summary", measure=measure, roi=roi)
    mb = select(model_brain, "model_brain", measure=measure, split=split)
    series = series_table(summ, "model", models)
    keep = np.array([variant.endswith("full") or r != roi for r in rois])

    def prep(v: np.ndarray) -> np.ndarray:
        v = np.where(keep, v, np.nan)
        if standardize:
            f = v[np.isfinite(v)]
            if f.size >= 2 and f.std() > 0:
                v = (v - f.mean()) / f.std()
        return v

    fig = new_figure(float(min(3.6 + 0.5 * len(rois), 16.0)), 4.0)
    ax = fig.add_subplot()
    x = np.arange(len(rois), dtype=float)
    (line,) = ax.plot(x, prep(brain), color=BRAIN_COLOR, marker="D", linewidth=2.0,
                      label=f"brain ā[{roi}, ·]", zorder=4)
    line.set_gid(f"brain ā[{roi}, ·]")
    for i, (name, weights, label) in enumerate(series):
        layer = rows_for(summ, "model", name, weights)["layer"].astype(str).iloc[0]
        rows = rows_for(mb, "model", name, weights)
        rows = rows.loc[(rows["layer"].astype(str) == layer).to_numpy()]
        prof = (pd.to_numeric(rows["score"], errors="coerce").astype(float)
                .groupby(rows["roi"].astype(str).to_numpy()).mean()
                .reindex(rois).to_numpy(dtype=float))
        (line,) = ax.plot(x, prep(prof), color=OKABE_ITO[i % len(OKABE_ITO)],
                          marker=MARKERS[i % len(MARKERS)], linewidth=1.2,
                          label=f"{label} [{layer}]", zorder=3)
        line.set_gid(label)
    if not keep.all():
        ax.axvspan(rois.index(roi) - 0.5, rois.index(roi) + 0.5, color="0.9", zorder=0)
    roi_axis(ax, rois, xlabel="target ROI r′ (stream / hierarchy order)")
    ylabel = measure_label(measure, split)
    ax.set_ylabel(f"z-scored {ylabel}" if standardize else ylabel)
    ax.set_title(f"Alignment profile of {roi} ({measure}, {variant}); models: mean over subjects",
                 loc="left", fontsize="medium")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return finalize(fig)


VERDICT_COLORS = {"pass": "#009E73", "fail": "#D55E00", "n/a": "0.85"}


def _verdicts(rows: pd.DataFrame, rois: Sequence[str]) -> list[str]:
    """"pass" / "fail" / "n/a" per ROI from the ``passes`` column."""
    if "passes" not in rows.columns:
        return ["n/a"] * len(rois)
    v = per_roi(rows.assign(_p=_as_float(rows["passes"])), rois, "_p")
    return ["pass" if x == 1.0 else "fail" if x == 0.0 else "n/a" for x in v]


def brain_aps_per_subject(apa: pd.DataFrame, measure: str, variant: str, match: str = "pearson"
                          ) -> pd.DataFrame:
    """The brain baseline's APS per ROI and target subject (mean over stand-in subjects).

    Parameters
    ----------
    apa : DataFrame
        The ``apa`` table (one row per target × stand-in pair).

    Returns
    -------
    DataFrame
        Columns roi, subject, aps.
    """
    sel = select(apa, "apa", measure=measure, variant=variant, match=match, candidate="brain")
    if "selection" in sel.columns and (sel["selection"].astype(str) == "score").any():
        sel = sel.loc[(sel["selection"].astype(str) == "score").to_numpy()]
    df = pd.DataFrame({"roi": sel["roi"].astype(str).to_numpy(),
                       "subject": sel["subject"].astype(str).to_numpy(),
                       "aps": pd.to_numeric(sel["aps"], errors="coerce").to_numpy(float)})
    return df.groupby(["roi", "subject"], sort=True)["aps"].mean().reset_index()


@styled
def plot_apa_overview(apa: pd.DataFrame, apa_summary: pd.DataFrame, roi_order: Sequence[str],
                      measure: str, variant: str = "offdiag", *, match: str = "pearson",
                      models: Sequence[str] | None = None,
                      palette: Mapping[str, tuple[str, str]] | None = None,
                      streams: Mapping[str, Sequence[str]] | None = None,
                      nulls: pd.DataFrame | None = None) -> Figure:
    """APA overview per ROI: the brain baseline's distribution beside each model's APS, the
    generic null profiles' APS, and the verdicts.

    Parameters
    ----------
    apa : DataFrame
        The ``apa`` table: the brain rows give the per-target-subject baseline distribution.
    apa_summary : DataFrame
        The ``apa_summary`` table: model means, jackknife-t CIs and ``passes``.
    roi_order : sequence of str
        ROIs in stream/hierarchy order.
    measure, variant, match : str
        Which APA scores.
    models : sequence of str, optional
        Candidate models and their order; default all non-brain candidates, sorted.
    palette : mapping, optional
        label → (colour, marker) (:func:`palette_from_models`).
    streams : mapping, optional
        stream → ROIs; boundaries drawn and named.
    nulls : DataFrame, optional
        The ``apa_nulls`` table: each generic null profile's mean APS per ROI is drawn as a
        short grey bar across the ROI's slot (gid ``"null:<name>"``), the level a candidate
        must clear to say more than "r resembles what every ROI resembles".

    Returns
    -------
    matplotlib.figure.Figure
        Top axes (ylabel :data:`APS_LABEL`): per ROI a grey box of the brain APS over target
        subjects (gid ``"brain:box"``, dots gid ``"brain:subjects"``) beside each model's mean
        and CI (line gid = model label), and the nulls' bars. Bottom axes (title ``"verdict"``): one row per model,
        one cell per ROI, coloured pass / fail / n/a (texts gid ``"verdict:<model>:<roi>"``).
    """
    rois = check_roi_order(roi_order)
    sel = select(apa_summary, "apa_summary", measure=measure, variant=variant, match=match)
    cand = sel.loc[(sel["candidate"].astype(str) != "brain").to_numpy()]
    if cand.empty:
        raise ValueError(f"apa_summary table: only brain rows for measure {measure!r}, "
                         f"variant {variant!r}; no model to plot")
    series = series_table(cand, "candidate", models)
    styles = series_style(palette, series)
    brain = brain_aps_per_subject(apa, measure, variant, match)

    slots = len(series) + 1
    width = float(min(3.2 + len(rois) * max(0.35, 0.08 * slots), DOUBLE_COLUMN) + 1.4)
    fig = new_figure(width, 3.2 + 0.17 * len(series))
    ax, vax = fig.subplots(2, 1, sharex=True,
                           gridspec_kw={"height_ratios": [3.2, 0.3 + 0.17 * len(series)]})
    x = np.arange(len(rois), dtype=float)
    offsets = dodge(slots)
    data = [brain.loc[brain["roi"] == r, "aps"].dropna().to_numpy() for r in rois]
    has = [len(d) > 0 for d in data]
    if any(has):
        bp = ax.boxplot([d for d, h in zip(data, has, strict=True) if h],
                        positions=(x + offsets[0])[has], widths=0.7 / slots * 1.6,
                        patch_artist=True, showfliers=False, whis=(0, 100),
                        medianprops={"color": BRAIN_COLOR, "linewidth": 1.0},
                        boxprops={"facecolor": "0.85", "edgecolor": "0.3", "linewidth": 0.6},
                        whiskerprops={"color": "0.3", "linewidth": 0.6},
                        capprops={"color": "0.3", "linewidth": 0.6})
        for b in bp["boxes"]:
            b.set_gid("brain:box")
        xs = np.concatenate([np.full(len(d), xx) for d, xx in zip(data, x + offsets[0],
                                                                 strict=True)])
        ys = np.concatenate(data)
        (dots,) = ax.plot(xs, ys, linestyle="none", marker="o", markersize=2.2, color=BRAIN_COLOR,
                          alpha=0.7, zorder=4, label=f"{BRAIN_LABEL}, per target subject")
        dots.set_gid("brain:subjects")
    for i, ((name, weights, label), (color, marker)) in enumerate(zip(series, styles,
                                                                        strict=True)):
        rows = rows_for(cand, "candidate", name, weights)
        errorbar_series(ax, x + offsets[i + 1], per_roi(rows, rois, "aps_mean"),
                        per_roi(rows, rois, "aps_ci_low"), per_roi(rows, rois, "aps_ci_high"),
                        color=color, marker=marker, label=label, markersize=4.0)
    if nulls is not None:
        _draw_nulls(ax, nulls, rois, measure, variant, match)
    ax.axhline(0.0, color=CEILING_COLOR, linestyle="--", linewidth=0.8, zorder=0)
    ax.set_ylabel(APS_LABEL if match == "pearson" else f"Alignment pattern similarity ({match})")
    roi_axis(ax, rois)
    ax.set_xlabel("")
    ax.tick_params(labelbottom=False)
    groups = stream_groups(rois, streams)
    if groups:
        mark_streams(ax, groups)
    ax.set_title("APS per ROI", pad=12 if groups else 4)
    suptitle(fig, f"APA · {measure} · {variant}\nmodels: mean over target subjects, "
             "jackknife-t 95% CI", reserve=2.6)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="0.85", edgecolor="0.3", linewidth=0.6))
    labels.append("brain baseline (box: quartiles, whiskers: range)")
    for key, col in VERDICT_COLORS.items():
        handles.append(Patch(facecolor=col, edgecolor="none"))
        labels.append(f"verdict: {key}")
    fig.legend(handles, labels, loc="outside right upper", title="candidate")

    for j, ((name, weights, label), _) in enumerate(zip(series, styles, strict=True)):
        rows = rows_for(cand, "candidate", name, weights)
        for k, v in enumerate(_verdicts(rows, rois)):
            vax.add_patch(Rectangle((k - 0.45, j - 0.42), 0.9, 0.84, facecolor=VERDICT_COLORS[v],
                                    edgecolor="none", gid=f"verdict-cell:{label}:{rois[k]}"))
            vax.text(k, j, v, ha="center", va="center", fontsize=5.5,
                     color="white" if v != "n/a" else "0.3", gid=f"verdict:{label}:{rois[k]}")
    vax.set_ylim(len(series) - 0.5, -0.5)
    vax.set_yticks(np.arange(len(series)))
    vax.set_yticklabels([lab for _, _, lab in series])
    vax.tick_params(axis="y", length=0)
    for sp in ("left", "bottom"):
        vax.spines[sp].set_visible(False)
    vax.set_title("verdict", fontsize="small")
    roi_axis(vax, rois)
    return finalize(fig)


#: Generic null profiles (``apa_nulls``'s ``null``) → (legend label, line style).
NULL_STYLES = {
    "grand-mean": ("null: grand-mean profile", "-"),
    "adjacency": ("null: anatomical adjacency", "--"),
    "target-reliability": ("null: target reliability", ":"),
}


def _draw_nulls(ax, nulls: pd.DataFrame, rois: Sequence[str], measure: str, variant: str,
                match: str) -> None:
    """Each generic null's mean APS per ROI as a grey bar across the ROI's slot."""
    try:
        sel = select(nulls, "apa_nulls", measure=measure, variant=variant, match=match)
    except ValueError:  # no null scored for this cell (e.g. an empty table): nothing to draw
        return
    names = [n for n in NULL_STYLES if n in set(sel["null"].astype(str))]
    names += sorted(set(sel["null"].astype(str)) - set(names))
    for name in names:
        label, style = NULL_STYLES.get(name, (f"null: {name}", "-."))
        mean = per_roi(sel[sel["null"].astype(str) == name], rois, "aps_mean")
        if not np.isfinite(mean).any():  # e.g. target reliability on the normalized variants
            continue
        x = np.arange(len(rois), dtype=float)
        ax.hlines(mean, x - 0.45, x + 0.45, colors="0.45", linestyles=style, linewidth=1.0,
                  zorder=1, label=label, gid=f"null:{name}")


def _zscore(v: np.ndarray) -> np.ndarray:
    f = v[np.isfinite(v)]
    if f.size >= 2 and f.std() > 0:
        return (v - f.mean()) / f.std()
    return v * np.nan


@styled
def plot_profile_panels(brain_brain: pd.DataFrame, model_brain: pd.DataFrame,
                        summary: pd.DataFrame, roi_order: Sequence[str], measure: str, *,
                        variant: str = "offdiag", ceilings: pd.DataFrame | None = None,
                        min_ceiling: float = 0.1, split: str = "test",
                        models: Sequence[str] | None = None,
                        palette: Mapping[str, tuple[str, str]] | None = None,
                        standardize: bool = True, ncols: int | None = None) -> Figure:
    """One panel per ROI r: the brain's alignment profile of r (mean ± SD over target
    subjects) with the models' profiles overlaid.

    The brain profile of subject s is row r of M_s (:func:`~.brain.subject_matrices`, with the
    variant applied); a model's profile is its ``model_brain`` score on every target ROI r′ at
    the layer selected for r in ``summary``, averaged over subjects (the same variant masking
    and, for the normalized variants, division by the subject's ceiling, before averaging).

    Parameters
    ----------
    brain_brain, model_brain, summary : DataFrame
        The ``brain_brain``, ``model_brain`` and ``model_brain_summary`` tables.
    roi_order : sequence of str
        ROIs: one panel per ROI and the x axis of every panel.
    measure, variant, split : str
        Which scores; ``variant`` as in APA (``residual`` is drawn as ``offdiag``).
    ceilings : DataFrame, optional
        The ``ceilings`` table (normalized variants).
    min_ceiling : float
        ``apa.min_ceiling``.
    models, palette
        Models and their order; label → (colour, marker).
    standardize : bool
        z-score each profile over its shown entries (default; APS with Pearson r compares
        shapes, not offsets or scales).
    ncols : int, optional
        Panels per row; default up to 5.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per ROI (title = ROI; brain line gid ``"brain"``, band gid ``"brain:sd"``,
        model lines gid = model label); missing entries are gaps.
    """
    from .brain import subject_matrices

    rois = check_roi_order(roi_order)
    mvariant = "offdiag" if variant == "residual" else variant
    subjects, mats = subject_matrices(brain_brain, rois, measure, mvariant, ceilings=ceilings,
                                      min_ceiling=min_ceiling, split=split)
    mask = np.isfinite(mats).any(axis=0)  # (n_rois, n_rois): entries some subject has
    scale = np.ones((len(subjects), len(rois)))
    if mvariant.startswith("normalized"):
        # Recover each subject's column scaling from the matrices' ratio to the raw ones.
        _, raw = subject_matrices(brain_brain, rois, measure, "full", split=split)
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nanmedian(mats / raw, axis=1)
    summ = select(summary, "model_brain_summary", measure=measure)
    mb = select(model_brain, "model_brain", measure=measure, split=split)
    series = series_table(summ, "model", models)
    styles = series_style(palette, series)
    ncols = ncols or min(5, len(rois))
    nrows = int(np.ceil(len(rois) / ncols))
    fig = new_figure(DOUBLE_COLUMN, 1.5 * nrows + 1.1)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False)
    x = np.arange(len(rois), dtype=float)
    sidx = {s: i for i, s in enumerate(subjects)}
    for k, ax in enumerate(axes.flat):
        if k >= len(rois):
            ax.set_axis_off()
            continue
        roi = rois[k]
        prof = mats[:, k, :]
        if standardize:
            prof = np.stack([_zscore(p) for p in prof])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m, sd = np.nanmean(prof, axis=0), np.nanstd(prof, axis=0, ddof=1)
        ax.fill_between(x, m - sd, m + sd, color="0.8", linewidth=0, gid="brain:sd",
                        label="brain ± SD over subjects")
        (ln,) = ax.plot(x, m, color=BRAIN_COLOR, linewidth=1.4, marker="o", markersize=2.5,
                        label="brain (mean over target subjects)", zorder=4)
        ln.set_gid("brain")
        for (name, weights, label), (color, marker) in zip(series, styles, strict=True):
            lr = rows_for(summ, "model", name, weights)
            lr = lr.loc[(lr["roi"].astype(str) == roi).to_numpy()]
            if lr.empty:
                continue
            layer = str(lr["layer"].iloc[0])
            rows = rows_for(mb, "model", name, weights)
            rows = rows.loc[(rows["layer"].astype(str) == layer).to_numpy()]
            table = (pd.DataFrame({"s": rows["subject"].astype(str).to_numpy(),
                                   "r": rows["roi"].astype(str).to_numpy(),
                                   "v": pd.to_numeric(rows["score"], errors="coerce")
                                   .to_numpy(float)})
                     .groupby(["s", "r"])["v"].mean().unstack("r")
                     .reindex(columns=rois))
            vals = []
            for s, row in table.iterrows():
                v = row.to_numpy(dtype=float)
                if s in sidx:
                    v = v * scale[sidx[s]]
                vals.append(np.where(mask[k], v, np.nan))
            if not vals:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mp = np.nanmean(np.stack(vals), axis=0)
            if standardize:
                mp = _zscore(mp)
            (ln,) = ax.plot(x, mp, color=color, marker=marker, markersize=2.5, linewidth=0.9,
                            label=label, zorder=3)
            ln.set_gid(label)
        if mvariant.endswith("offdiag"):
            ax.axvspan(k - 0.5, k + 0.5, color="0.93", zorder=0, linewidth=0)
        ax.set_title(f"profile of {roi}", loc="center")
        ax.set_xticks(x)
        ax.set_xticklabels(rois, rotation=90)
        ax.set_xlim(-0.6, len(rois) - 0.4)
    ylabel = "z-scored score" if standardize else measure_label(measure).split(" (")[0]
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for k in range(len(rois)):
        r, c = divmod(k, ncols)
        bottom = k + ncols >= len(rois)
        axes[r, c].tick_params(labelbottom=bottom)
        if bottom:
            axes[r, c].set_xlabel("target ROI r′")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    suptitle(fig, f"Alignment profiles · {measure} · {variant}"
             + (" · each profile z-scored (APS compares shapes)" if standardize else "")
             + "\nshaded column: r′ = r, left out")
    return finalize(fig)


@styled
def plot_score_vs_aps(summary: pd.DataFrame, apa_summary: pd.DataFrame, measure: str,
                      variant: str = "offdiag", *, match: str = "pearson",
                      models: Sequence[str] | None = None,
                      palette: Mapping[str, tuple[str, str]] | None = None) -> Figure:
    """Conventional score against APS: one point per model × ROI.

    Parameters
    ----------
    summary : DataFrame
        The ``model_brain_summary`` table (x: ``score_mean``).
    apa_summary : DataFrame
        The ``apa_summary`` table (y: ``aps_mean``; the brain baseline's range is shaded).
    measure, variant, match : str
        Which scores.
    models, palette
        Models and their order; label → (colour, marker).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; one line per model (gid = label) with points at (score, APS); the title gives
        Spearman ρ over all points.
    """
    conv = select(summary, "model_brain_summary", measure=measure)
    aps = select(apa_summary, "apa_summary", measure=measure, variant=variant, match=match)
    brain = aps.loc[(aps["candidate"].astype(str) == "brain").to_numpy()]
    aps = aps.loc[(aps["candidate"].astype(str) != "brain").to_numpy()]
    series = series_table(conv, "model", models)
    styles = series_style(palette, series)
    fig = new_figure(SINGLE_COLUMN + 1.5, 3.0)
    ax = fig.add_subplot()
    b = pd.to_numeric(brain.get("aps_mean", pd.Series(dtype=float)), errors="coerce").dropna()
    if len(b):
        ax.axhspan(float(b.min()), float(b.max()), color="0.9", zorder=0,
                   label="brain baseline (range over ROIs)", gid="brain:range")
    xs_all, ys_all = [], []
    for (name, weights, label), (color, marker) in zip(series, styles, strict=True):
        c = rows_for(conv, "model", name, weights)
        a = rows_for(aps, "candidate", name, weights)
        rois = sorted(set(c["roi"].astype(str)) & set(a["roi"].astype(str)))
        if not rois:
            continue
        x, y = per_roi(c, rois, "score_mean"), per_roi(a, rois, "aps_mean")
        ok = np.isfinite(x) & np.isfinite(y)
        (ln,) = ax.plot(x[ok], y[ok], linestyle="none", marker=marker, color=color,
                        markersize=4, label=label)
        ln.set_gid(label)
        xs_all += list(x[ok])
        ys_all += list(y[ok])
    rho = (float(pd.Series(xs_all).corr(pd.Series(ys_all), method="spearman"))
           if len(xs_all) >= 3 else float("nan"))
    ax.axhline(0, color="0.6", linestyle="--", linewidth=0.6, zorder=0)
    ax.set_xlabel("conventional score: " + axis_label(measure))
    ax.set_ylabel(APS_LABEL.replace(" (", "\n(") if match == "pearson" else f"APS ({match})")
    ax.set_title(f"Spearman ρ = {rho:.2f}, n = {len(xs_all)}")
    suptitle(fig, f"Conventional score vs APS · {measure} · {variant}\n"
             "one point per model × ROI", reserve=1.8)
    fig.legend(loc="outside right upper", title="model")
    return finalize(fig)


def _trained_untrained_pairs(rows: pd.DataFrame, untrained: str,
                            controls: Mapping[str, str] | None
                            ) -> list[tuple[str, str, tuple[pd.DataFrame, pd.DataFrame]]]:
    """(trained name, legend label, (untrained rows, trained rows)) of every pair in ``rows``:
    one name under both kinds of weights, and each ``controls`` item present in ``rows``."""
    w = rows["weights"].astype(object).where(rows["weights"].notna(), "").astype(str)
    name = rows["candidate"].astype(str)
    out = []
    same = sorted(set(name[(w == untrained).to_numpy()]) & set(name[(w != untrained).to_numpy()]))
    for n in same:
        u = rows_for(rows, "candidate", n, untrained)
        for tw in sorted(set(w[((name == n) & (w != untrained)).to_numpy()])):
            out.append((n, f"{n} ({tw})", (u, rows_for(rows, "candidate", n, tw))))
    for tn, un in sorted((controls or {}).items()):
        u = rows_for(rows, "candidate", un, untrained)
        t = rows.loc[((name == tn) & (w != untrained)).to_numpy()]
        if len(u) and len(t):
            out.append((tn, f"{tn} vs {un}", (u, t)))
    return out


@styled
def plot_trained_vs_untrained(apa_summary: pd.DataFrame, measures: Sequence[str],
                              variant: str = "offdiag", *, match: str = "pearson",
                              untrained: str = "random",
                              palette: Mapping[str, tuple[str, str]] | None = None,
                              controls: Mapping[str, str] | None = None) -> Figure:
    """APS of trained against untrained weights of the same architecture, per ROI.

    Parameters
    ----------
    apa_summary : DataFrame
        The ``apa_summary`` table.
    measures : sequence of str
        One panel per measure.
    variant, match : str
        Which APS.
    untrained : str
        The ``weights`` value of untrained models (default ``"random"``); every other weights
        value of the same model name counts as trained.
    palette : mapping, optional
        model name → (colour, marker).
    controls : mapping, optional
        Trained candidate → its untrained control, for pairs with two names (candidate names
        are unique in a run; :func:`alignpatterns.features.registry.untrained_controls` builds
        the mapping from the config's models). A candidate listed under both kinds of weights
        (same name) pairs with itself as well.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per measure with the identity line; one line per pair (gid = the trained
        model's name, points = ROIs). When no pair is in the run, each panel says so (text gid
        ``"no pairs"``).
    """
    if isinstance(measures, str) or not measures:
        raise ValueError("measures must be a non-empty list of measure names")
    cand = apa_summary.loc[(apa_summary["candidate"].astype(str) != "brain").to_numpy()]
    if not _trained_untrained_pairs(cand, untrained, controls):
        fig = new_figure(SINGLE_COLUMN + 1.2, 1.6)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"No trained model has its {untrained!r}-weights control in this run.\n"
                "List both in `models`, e.g. {name: vgg11, weights: pretrained} and\n"
                f"{{name: vgg11_untrained, registry: vgg11, weights: {untrained}}}.",
                transform=ax.transAxes, ha="center", va="center", color="0.3", gid="no pairs")
        suptitle(fig, f"Trained vs untrained APS · {variant}")
        return finalize(fig)
    ncols = min(len(measures), 2)
    nrows = int(np.ceil(len(measures) / ncols))
    fig = new_figure(DOUBLE_COLUMN if ncols > 1 else SINGLE_COLUMN + 1.2, 2.6 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(measures):
            ax.set_axis_off()
            continue
        m = measures[k]
        sel = select(apa_summary, "apa_summary", measure=m, variant=variant, match=match)
        sel = sel.loc[(sel["candidate"].astype(str) != "brain").to_numpy()]
        pairs = _trained_untrained_pairs(sel, untrained, controls)
        names = sorted({name for name, _, _ in pairs})
        fallback = model_palette(names)
        lo, hi = np.inf, -np.inf
        for name, label, (u, t) in pairs:
            color, marker = (palette or {}).get(name, fallback[name])
            rois = sorted(set(u["roi"].astype(str)) & set(t["roi"].astype(str)))
            xu, yt = per_roi(u, rois, "aps_mean"), per_roi(t, rois, "aps_mean")
            ok = np.isfinite(xu) & np.isfinite(yt)
            (ln,) = ax.plot(xu[ok], yt[ok], linestyle="none", marker=marker, color=color,
                            markersize=4, label=label)
            ln.set_gid(name)
            if ok.any():
                lo = min(lo, xu[ok].min(), yt[ok].min())
                hi = max(hi, xu[ok].max(), yt[ok].max())
        if not names:
            ax.text(0.5, 0.5, f"no model has both {untrained!r} and trained\nweights in this "
                    "run: add both to `models`\nto compare them", transform=ax.transAxes,
                    ha="center", va="center", color="0.3", gid="no pairs")
            lo, hi = -1.0, 1.0
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", linewidth=0.7,
                linestyle="--", zorder=0, gid="identity")
        ax.set_xlabel(f"APS, untrained ({untrained} weights)")
        ax.set_ylabel("APS, trained weights")
        ax.set_title(m)
        ax.set_aspect("equal", adjustable="datalim")
        if names:
            ax.legend(loc="upper left", fontsize="small")
    suptitle(fig, f"Trained vs untrained APS · {variant} · one point per ROI")
    return finalize(fig)


@styled
def plot_confusion(apa_confusion: pd.DataFrame, roi_order: Sequence[str], measure: str,
                   variant: str = "offdiag", *, match: str = "pearson",
                   models: Sequence[str] | None = None,
                   streams: Mapping[str, Sequence[str]] | None = None,
                   ncols: int | None = None) -> Figure:
    """ROI-identity confusion matrices: the brain baseline first, then every model.

    Parameters
    ----------
    apa_confusion : DataFrame
        The ``apa_confusion`` table.
    roi_order : sequence of str
        ROIs (rows: true ROI, columns: identified ROI).
    measure, variant, match : str
        Which identification.
    models : sequence of str, optional
        Models and their order; default all, sorted.
    streams : mapping, optional
        stream → ROIs; separators between streams.
    ncols : int, optional
        Matrices per row; default up to 3.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per candidate (image gid ``"confusion"``, colour = fraction in [0, 1]); the
        title gives top-1 accuracy, chance and the permutation p-value.
    """
    from .brain import _cmap, _matrix_axes

    rois = check_roi_order(roi_order)
    sel = select(apa_confusion, "apa_confusion", measure=measure, variant=variant, match=match)
    cands = sel.loc[(sel["candidate"].astype(str) != "brain").to_numpy()]
    series = [("brain", "", "brain (held-out subject)")]
    if not cands.empty:
        series += series_table(cands, "candidate", models)
    ncols = ncols or min(3, len(series))
    nrows = int(np.ceil(len(series) / ncols))
    side = DOUBLE_COLUMN / ncols
    fig = new_figure(DOUBLE_COLUMN, side * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    groups = stream_groups(rois, streams)
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= len(series):
            ax.set_axis_off()
            continue
        name, weights, label = series[k]
        rows = (sel.loc[(sel["candidate"].astype(str) == "brain").to_numpy()] if name == "brain"
                else rows_for(cands, "candidate", name, weights))
        mat = (pd.DataFrame({"r": rows["roi"].astype(str).to_numpy(),
                             "c": rows["identified_roi"].astype(str).to_numpy(),
                             "v": pd.to_numeric(rows["fraction"], errors="coerce")
                             .to_numpy(float)})
               .pivot_table(index="r", columns="c", values="v", aggfunc="mean")
               .reindex(index=rois, columns=rois).to_numpy(dtype=float))
        im = ax.imshow(np.ma.masked_invalid(mat), cmap=_cmap("viridis"), vmin=0, vmax=1,
                       interpolation="nearest")
        im.set_gid("confusion")
        _matrix_axes(ax, rois, groups)
        acc = pd.to_numeric(rows["top1_accuracy"], errors="coerce").dropna()
        p = pd.to_numeric(rows["top1_p"], errors="coerce").dropna()
        ch = pd.to_numeric(rows["chance"], errors="coerce").dropna()
        stats = (f"top-1 {acc.iloc[0]:.2f}" if len(acc) else "top-1 n/a")
        stats += f", chance {ch.iloc[0]:.2f}" if len(ch) else ""
        stats += f", p = {p.iloc[0]:.2g}" if len(p) else ""
        ax.set_title(f"{label}\n{stats}", fontsize="small")
        if k % ncols == 0:
            ax.set_ylabel("true ROI")
        if k + ncols >= len(series):
            ax.set_xlabel("identified ROI")
    if im is not None:
        cbar = fig.colorbar(im, ax=axes, shrink=0.6, location="right")
        cbar.set_label("fraction of target × stand-in pairs")
    suptitle(fig, f"ROI identification from alignment profiles · {measure} · {variant}")
    return finalize(fig)
