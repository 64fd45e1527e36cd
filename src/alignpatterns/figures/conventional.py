"""Conventional model–brain scores per ROI (RSA, CKA, linear predictivity) with noise ceilings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._common import (
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

__all__ = ["plot_conventional_scores", "plot_conventional_overview"]

_BEST_LABEL = "not distinguishable from best"


def _width(n_rois: int, n_series: int) -> float:
    return float(min(4.5 + n_rois * max(0.5, 0.06 * n_series), 16.0))


def _draw(ax, summary: pd.DataFrame, rois: list[str], measure: str,
          models: Sequence[str] | None, normalized: bool, mark_best: bool,
          best_label: str, legend: bool) -> int:
    """Draw one measure's panel; returns the number of model series."""
    sel = select(summary, "model_brain_summary", measure=measure)
    series = series_table(sel, "model", models)
    x = np.arange(len(rois), dtype=float)
    offsets = dodge(len(series))
    ceiling = np.array([
        np.nanmean(v) if np.isfinite(v).any() else np.nan
        for v in (pd.to_numeric(sel.loc[sel["roi"].astype(str) == r, "ceiling_mean"],
                                errors="coerce").to_numpy(dtype=float) for r in rois)
    ])
    has_best = False
    for i, (name, weights, label) in enumerate(series):
        rows = rows_for(sel, "model", name, weights)
        mean = per_roi(rows, rois, "score_mean")
        low = per_roi(rows, rois, "ci_low")
        high = per_roi(rows, rois, "ci_high")
        if normalized:
            with np.errstate(divide="ignore", invalid="ignore"):
                ceil = per_roi(rows, rois, "ceiling_mean")
                ceil = np.where(np.isfinite(ceil) & (ceil > 0), ceil, np.nan)
                mean, low, high = mean / ceil, low / ceil, high / ceil
        filled = None
        if mark_best and "distinguishable_from_best" in rows.columns:
            dist = per_roi(rows.assign(distinguishable_from_best=rows[
                "distinguishable_from_best"].astype("boolean").astype("Float64")),
                rois, "distinguishable_from_best")
            if np.isfinite(dist).any():
                has_best = True
                # Filled = not distinguishable from the best model; hollow = worse; unknown: filled.
                filled = ~(dist == 1.0)
        errorbar_series(ax, x + offsets[i], mean, low, high,
                        color=OKABE_ITO[i % len(OKABE_ITO)], marker=MARKERS[i % len(MARKERS)],
                        label=label, filled=filled)
    if normalized:
        ax.axhline(1.0, color=CEILING_COLOR, linewidth=1.5, linestyle="-", zorder=1,
                   label="noise ceiling", gid="noise ceiling")
        ax.set_ylabel(f"{measure_label(measure)}\n÷ noise ceiling")
    else:
        ok = np.isfinite(ceiling)
        if ok.any():
            ax.hlines(ceiling[ok], x[ok] - 0.45, x[ok] + 0.45, colors=CEILING_COLOR,
                      linewidth=2.5, zorder=1, label="noise ceiling", gid="noise ceiling")
        ax.set_ylabel(measure_label(measure))
    ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--", zorder=0)
    ax.set_title(f"{measure}: model–brain score per ROI (mean over subjects, CI)", loc="left",
                 fontsize="medium")
    roi_axis(ax, rois)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if has_best:
            handles.append(Line2D([], [], linestyle="none", marker="o", color="0.3",
                                  markerfacecolor="white"))
            labels.append(f"hollow: distinguishable\nfrom best (filled:\n{best_label})")
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False, fontsize="small", title="model")
    return len(series)


def plot_conventional_scores(summary: pd.DataFrame, roi_order: Sequence[str], measure: str, *,
                             models: Sequence[str] | None = None, normalized: bool = False,
                             mark_best: bool = True, best_label: str = _BEST_LABEL) -> Figure:
    """Model–brain scores per ROI with CIs and the noise ceiling.

    Parameters
    ----------
    summary : DataFrame
        The ``model_brain_summary`` table (one row per measure × model × weights × ROI).
    roi_order : sequence of str
        ROIs to show, in stream/hierarchy order (x axis). ROIs absent from the table are empty
        columns; ROIs not listed are not shown.
    measure : str
        Which measure to plot, e.g. ``"rsa-crossnobis-spearman"``.
    models : sequence of str, optional
        Models to show and their order; default all, sorted.
    normalized : bool
        Plot score ÷ noise ceiling (CI bounds divided too) instead of the raw score; ROIs with
        no finite positive ceiling are left empty.
    mark_best : bool
        Draw models distinguishable from the best model in that ROI hollow (column
        ``distinguishable_from_best``), when that column has values.
    best_label : str
        Legend wording for filled markers; use ``"not distinguishable from best (paper rule)"``
        for the paper preset.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: x = ROI, one coloured marker series per model (mean with CI error bars), the
        noise ceiling as a grey segment per ROI where finite. Missing cells draw nothing.
    """
    rois = check_roi_order(roi_order)
    sel = select(summary, "model_brain_summary", measure=measure)
    n = len(series_table(sel, "model", models))
    fig = new_figure(_width(len(rois), n), 4.2 if len(rois) * n <= 40 else 5.0)
    ax = fig.add_subplot()
    _draw(ax, summary, rois, measure, models, normalized, mark_best, best_label, legend=True)
    return finalize(fig)


def plot_conventional_overview(summary: pd.DataFrame, roi_order: Sequence[str],
                               measures: Sequence[str], *, models: Sequence[str] | None = None,
                               normalized: bool = False, mark_best: bool = True,
                               best_label: str = _BEST_LABEL) -> Figure:
    """One row per measure of :func:`plot_conventional_scores`, sharing the ROI axis.

    Parameters
    ----------
    summary : DataFrame
        The ``model_brain_summary`` table.
    roi_order : sequence of str
        ROIs in stream/hierarchy order.
    measures : sequence of str
        Measures, one panel each, top to bottom.
    models, normalized, mark_best, best_label
        As in :func:`plot_conventional_scores`.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(measures)`` stacked panels; each has its own legend to the right (colours follow
        each panel's model order, which is the same when every measure has the same models).
    """
    rois = check_roi_order(roi_order)
    if isinstance(measures, str) or not measures:
        raise ValueError("measures must be a non-empty list of measure names")
    n = max(len(series_table(select(summary, "model_brain_summary", measure=m), "model", models))
            for m in measures)
    fig = new_figure(_width(len(rois), n), 3.2 * len(measures) + 0.6)
    axes = fig.subplots(len(measures), 1, squeeze=False)[:, 0]
    for ax, m in zip(axes, measures, strict=True):
        _draw(ax, summary, rois, m, models, normalized, mark_best, best_label, legend=True)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    return finalize(fig)
