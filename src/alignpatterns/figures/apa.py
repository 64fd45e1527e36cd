"""Alignment Pattern Analysis figures: APS per ROI against the brain baseline, and profiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._common import (
    BRAIN_COLOR,
    CEILING_COLOR,
    MARKERS,
    OKABE_ITO,
    check_roi_order,
    dodge,
    errorbar_series,
    finalize,
    measure_label,
    new_figure,
    per_roi,
    roi_axis,
    rows_for,
    select,
    series_table,
)

__all__ = ["plot_aps_per_roi", "plot_pattern_profiles"]

APS_LABEL = "Alignment pattern similarity (Pearson r)"
BRAIN_LABEL = "brain (held-out subject)"


def _as_float(s: pd.Series) -> pd.Series:
    """Booleans / nullable values → float with NaN for missing."""
    if s.dtype == object or str(s.dtype) in {"bool", "boolean"}:
        s = s.astype("boolean").astype("Float64")
    return pd.to_numeric(s, errors="coerce").astype(float)


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
