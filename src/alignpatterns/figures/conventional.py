"""Conventional model–brain scores per ROI (RSA, CKA, linear predictivity) with noise ceilings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._common import (
    CEILING_COLOR,
    DOUBLE_COLUMN,
    axis_label,
    check_roi_order,
    dodge,
    errorbar_series,
    finalize,
    mark_streams,
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

__all__ = ["plot_conventional_benchmark", "plot_conventional_scores",
           "plot_conventional_overview"]

_BEST_LABEL = "not distinguishable from best"
ABOVE_CEILING = "score > noise ceiling"


def _width(n_rois: int, n_series: int) -> float:
    return float(min(3.0 + n_rois * max(0.32, 0.07 * n_series), DOUBLE_COLUMN))


def _draw(ax, summary: pd.DataFrame, rois: list[str], measure: str,
          models: Sequence[str] | None, normalized: bool, mark_best: bool,
          palette=None, streams=None) -> tuple[int, bool, bool]:
    """Draw one measure's panel; returns (number of model series, has best-marking,
    has values above the ceiling)."""
    sel = select(summary, "model_brain_summary", measure=measure)
    series = series_table(sel, "model", models)
    styles = series_style(palette, series)
    x = np.arange(len(rois), dtype=float)
    offsets = dodge(len(series))
    ceiling = np.array([
        np.nanmean(v) if np.isfinite(v).any() else np.nan
        for v in (pd.to_numeric(sel.loc[sel["roi"].astype(str) == r, "ceiling_mean"],
                                errors="coerce").to_numpy(dtype=float) for r in rois)
    ])
    has_best = False
    above_x: list[float] = []
    above_y: list[float] = []
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
            over = np.isfinite(mean) & (mean > 1.0)
            above_x += list((x + offsets[i])[over])
            above_y += list(mean[over])
        filled = None
        if mark_best and "distinguishable_from_best" in rows.columns:
            dist = per_roi(rows.assign(distinguishable_from_best=rows[
                "distinguishable_from_best"].astype("boolean").astype("Float64")),
                rois, "distinguishable_from_best")
            if np.isfinite(dist).any():
                has_best = True
                # Filled = not distinguishable from the best model; hollow = worse; unknown: filled.
                filled = ~(dist == 1.0)
        color, marker = styles[i]
        errorbar_series(ax, x + offsets[i], mean, low, high, color=color, marker=marker,
                        label=label, filled=filled, markersize=4.0)
    if normalized:
        if np.isfinite(ceiling).any():
            ax.axhline(1.0, color=CEILING_COLOR, linewidth=1.2, linestyle="-", zorder=1,
                       label="noise ceiling", gid="noise ceiling")
        else:
            ax.text(0.5, 0.5, f"no noise ceiling for {measure}", transform=ax.transAxes,
                    ha="center", va="center", color="0.3", gid="no ceiling")
        if above_x:
            ax.plot(above_x, above_y, linestyle="none", marker="o", markersize=8.5,
                    markerfacecolor="none", markeredgecolor="black", markeredgewidth=0.8,
                    zorder=6, gid=ABOVE_CEILING, label=ABOVE_CEILING)
        ax.set_ylabel("score ÷ noise ceiling")
    else:
        ok = np.isfinite(ceiling)
        if ok.any():
            ax.hlines(ceiling[ok], x[ok] - 0.45, x[ok] + 0.45, colors=CEILING_COLOR,
                      linewidth=2.0, zorder=1, label="noise ceiling", gid="noise ceiling")
        ax.set_ylabel(axis_label(measure))
    ax.axhline(0.0, color="0.6", linewidth=0.6, linestyle="--", zorder=0)
    roi_axis(ax, rois)
    groups = stream_groups(rois, streams)
    if groups:
        mark_streams(ax, groups)
    return len(series), has_best, bool(above_x)


def _legend(fig, ax, has_best: bool, best_label: str) -> None:
    """One legend for the figure, right of the panels, from ``ax``'s artists."""
    handles, labels = ax.get_legend_handles_labels()
    seen = set(labels)
    for other in fig.axes:
        for h, lab in zip(*other.get_legend_handles_labels(), strict=True):
            if lab not in seen:
                handles.append(h)
                labels.append(lab)
                seen.add(lab)
    if has_best:
        handles.append(Line2D([], [], linestyle="none", marker="o", color="0.3",
                              markerfacecolor="0.3"))
        labels.append(f"filled: {best_label}")
        handles.append(Line2D([], [], linestyle="none", marker="o", color="0.3",
                              markerfacecolor="white"))
        labels.append("hollow: below the best")
    fig.legend(handles, labels, loc="outside right upper", title="model")


@styled
def plot_conventional_benchmark(summary: pd.DataFrame, roi_order: Sequence[str], measure: str,
                                *, models: Sequence[str] | None = None,
                                palette: Mapping[str, tuple[str, str]] | None = None,
                                streams: Mapping[str, Sequence[str]] | None = None,
                                mark_best: bool = True, best_label: str = _BEST_LABEL
                                ) -> Figure:
    """The conventional benchmark: raw scores with ceilings (top) and ceiling-normalised
    scores (bottom) per ROI, every model at its train-selected layer.

    Parameters
    ----------
    summary : DataFrame
        The ``model_brain_summary`` table.
    roi_order : sequence of str
        ROIs in stream/hierarchy order (x axis).
    measure : str
        Measure to show.
    models : sequence of str, optional
        Models and their order; default all, sorted.
    palette : mapping, optional
        label → (colour, marker), e.g. :func:`palette_from_models` of the config's models.
    streams : mapping, optional
        stream → ROIs; stream boundaries are drawn and named.
    mark_best, best_label
        As in :func:`plot_conventional_scores`.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (axes titles ``"raw score"`` and ``"score ÷ noise ceiling"``); in the lower
        one normalised means above 1 are ringed in black (gid ``"score > noise ceiling"``).
    """
    rois = check_roi_order(roi_order)
    sel = select(summary, "model_brain_summary", measure=measure)
    n = len(series_table(sel, "model", models))
    fig = new_figure(_width(len(rois), n) + 1.4, 4.6)
    ax, nax = fig.subplots(2, 1, sharex=True)
    _, has_best, _ = _draw(ax, summary, rois, measure, models, False, mark_best, palette,
                           streams)
    _draw(nax, summary, rois, measure, models, True, mark_best, palette, streams)
    ax.set_title("raw score", pad=10)
    nax.set_title("score ÷ noise ceiling", pad=10)
    ax.set_xlabel("")
    ax.tick_params(labelbottom=False)
    suptitle(fig, f"Conventional benchmark · {measure}\nmean over subjects, 95% CI; grey: "
             "noise ceiling; ringed: above the ceiling", reserve=2.4)
    _legend(fig, ax, has_best and mark_best, best_label)
    return finalize(fig)


@styled
def plot_conventional_scores(summary: pd.DataFrame, roi_order: Sequence[str], measure: str, *,
                             models: Sequence[str] | None = None, normalized: bool = False,
                             mark_best: bool = True, best_label: str = _BEST_LABEL,
                             palette: Mapping[str, tuple[str, str]] | None = None,
                             streams: Mapping[str, Sequence[str]] | None = None) -> Figure:
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
        no finite positive ceiling are left empty; means above 1 are ringed in black.
    mark_best : bool
        Draw models distinguishable from the best model in that ROI hollow (column
        ``distinguishable_from_best``), when that column has values.
    best_label : str
        Legend wording for filled markers; use ``"not distinguishable from best (paper rule)"``
        for the paper preset.
    palette : mapping, optional
        label → (colour, marker) shared by all figures (:func:`palette_from_models`).
    streams : mapping, optional
        stream → ROIs; stream boundaries are drawn and named.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: x = ROI, one coloured marker series per model (mean with CI error bars), the
        noise ceiling as a grey segment per ROI where finite. Missing cells draw nothing.
    """
    rois = check_roi_order(roi_order)
    sel = select(summary, "model_brain_summary", measure=measure)
    n = len(series_table(sel, "model", models))
    fig = new_figure(_width(len(rois), n) + 1.4, 2.8)
    ax = fig.add_subplot()
    _, has_best, _ = _draw(ax, summary, rois, measure, models, normalized, mark_best, palette,
                           streams)
    ax.set_title(measure, pad=10)
    suptitle(fig, "Model–brain score per ROI (mean over subjects, CI)", reserve=2.4)
    _legend(fig, ax, has_best and mark_best, best_label)
    return finalize(fig)


@styled
def plot_conventional_overview(summary: pd.DataFrame, roi_order: Sequence[str],
                               measures: Sequence[str], *, models: Sequence[str] | None = None,
                               normalized: bool = False, mark_best: bool = True,
                               best_label: str = _BEST_LABEL,
                               palette: Mapping[str, tuple[str, str]] | None = None,
                               streams: Mapping[str, Sequence[str]] | None = None) -> Figure:
    """One row per measure of :func:`plot_conventional_scores`, sharing the ROI axis.

    Parameters
    ----------
    summary : DataFrame
        The ``model_brain_summary`` table.
    roi_order : sequence of str
        ROIs in stream/hierarchy order.
    measures : sequence of str
        Measures, one panel each, top to bottom.
    models, normalized, mark_best, best_label, palette, streams
        As in :func:`plot_conventional_scores`.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(measures)`` stacked panels and one legend to the right.
    """
    rois = check_roi_order(roi_order)
    if isinstance(measures, str) or not measures:
        raise ValueError("measures must be a non-empty list of measure names")
    n = max(len(series_table(select(summary, "model_brain_summary", measure=m), "model", models))
            for m in measures)
    fig = new_figure(_width(len(rois), n) + 1.4, 2.0 * len(measures) + 0.4)
    axes = fig.subplots(len(measures), 1, squeeze=False, sharex=True)[:, 0]
    has_best = False
    for ax, m in zip(axes, measures, strict=True):
        _, hb, _ = _draw(ax, summary, rois, m, models, normalized, mark_best, palette, streams)
        has_best |= hb
        ax.set_title(m, pad=10)
    for ax in axes[:-1]:
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
    _legend(fig, axes[0], has_best and mark_best, best_label)
    return finalize(fig)
