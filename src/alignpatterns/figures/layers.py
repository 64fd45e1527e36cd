"""Per-layer curves: every layer's score per model and ROI, not only the selected layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._common import (
    DOUBLE_COLUMN,
    check_roi_order,
    finalize,
    measure_label,
    new_figure,
    rows_for,
    select,
    series_style,
    series_table,
    styled,
    suptitle,
)

__all__ = ["layer_curves", "plot_layer_curves"]


def layer_curves(model_brain: pd.DataFrame, measure: str, split: str = "test") -> pd.DataFrame:
    """Mean and SEM over subjects of every model × weights × layer × ROI score.

    Parameters
    ----------
    model_brain : DataFrame
        The ``model_brain`` table.
    measure, split : str
        Which scores.

    Returns
    -------
    DataFrame
        Columns model, weights, layer, layer_index, depth (layer_index ÷ the model's last
        layer_index, in [0, 1]), roi, mean, sem, n (subjects with a finite score).
    """
    sel = select(model_brain, "model_brain", measure=measure, split=split)
    df = pd.DataFrame({
        "model": sel["model"].astype(str).to_numpy(),
        "weights": sel["weights"].astype(object).where(sel["weights"].notna(), "")
        .astype(str).to_numpy(),
        "layer": sel["layer"].astype(str).to_numpy(),
        "layer_index": pd.to_numeric(sel["layer_index"]).to_numpy(int),
        "roi": sel["roi"].astype(str).to_numpy(),
        "score": pd.to_numeric(sel["score"], errors="coerce").to_numpy(float)})
    g = df.groupby(["model", "weights", "layer_index", "layer", "roi"], sort=True)["score"]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    out["sem"] = out["sd"] / np.sqrt(out["n"].clip(lower=1))
    last = out.groupby(["model", "weights"])["layer_index"].transform("max").replace(0, 1)
    out["depth"] = out["layer_index"] / last
    return out.drop(columns="sd")


@styled
def plot_layer_curves(model_brain: pd.DataFrame, roi_order: Sequence[str], measure: str, *,
                      summary: pd.DataFrame | None = None, split: str = "test",
                      models: Sequence[str] | None = None,
                      palette: Mapping[str, tuple[str, str]] | None = None,
                      ncols: int | None = None) -> Figure:
    """Score against relative layer depth, one panel per ROI, one curve per model.

    Parameters
    ----------
    model_brain : DataFrame
        The ``model_brain`` table.
    roi_order : sequence of str
        ROIs, one panel each, in this order (row-major).
    measure : str
        Measure to show.
    summary : DataFrame, optional
        The ``model_brain_summary`` table; each model's train-selected layer for the ROI is
        marked with a large filled marker.
    split : str
        Split of the scores (default ``"test"``).
    models : sequence of str, optional
        Models and their order; default all, sorted.
    palette : mapping, optional
        label → (colour, marker) (:func:`palette_from_models`).
    ncols : int, optional
        Panels per row; default up to 5.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per ROI (title = ROI; lines with gid = model label; shaded ±1 SEM over
        subjects), shared axes, x = relative depth (0 = first hooked layer, 1 = last).
    """
    rois = check_roi_order(roi_order)
    curves = layer_curves(model_brain, measure, split)
    series = series_table(curves, "model", models)
    styles = series_style(palette, series)
    ncols = ncols or min(5, len(rois))
    nrows = int(np.ceil(len(rois) / ncols))
    fig = new_figure(DOUBLE_COLUMN, 1.45 * nrows + 1.0)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    chosen = None
    if summary is not None:
        chosen = select(summary, "model_brain_summary", measure=measure)
    for k, ax in enumerate(axes.flat):
        if k >= len(rois):
            ax.set_axis_off()
            continue
        roi = rois[k]
        for (name, weights, label), (color, marker) in zip(series, styles, strict=True):
            c = rows_for(curves, "model", name, weights)
            c = c.loc[c["roi"] == roi].sort_values("layer_index")
            if c.empty:
                continue
            x, m, e = c["depth"].to_numpy(), c["mean"].to_numpy(), c["sem"].to_numpy()
            (ln,) = ax.plot(x, m, color=color, linewidth=1.0, label=label)
            ln.set_gid(label)
            ax.fill_between(x, m - e, m + e, color=color, alpha=0.18, linewidth=0)
            if chosen is not None:
                r = rows_for(chosen, "model", name, weights)
                r = r.loc[(r["roi"].astype(str) == roi).to_numpy()]
                if len(r):
                    hit = c.loc[c["layer"] == str(r["layer"].iloc[0])]
                    if len(hit):
                        ax.plot(hit["depth"], hit["mean"], linestyle="none", marker=marker,
                                color=color, markersize=5, markeredgecolor="black",
                                markeredgewidth=0.5, zorder=4, gid=f"{label}:selected")
        ax.set_title(roi, loc="center")
        ax.axhline(0, color="0.7", linewidth=0.5, linestyle="--", zorder=0)
    for k in range(len(rois)):
        r, c = divmod(k, ncols)
        bottom = k + ncols >= len(rois)
        axes[r, c].tick_params(labelbottom=bottom)
        if bottom:
            axes[r, c].set_xlabel("relative layer depth")
    for ax in axes[:, 0]:
        ax.set_ylabel(measure_label(measure).split(" (")[0])
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
               title="model (shaded: ±1 SEM over subjects; outlined marker: train-selected layer)")
    suptitle(fig, f"Per-layer scores · {measure} · {split} split · mean over subjects")
    return finalize(fig)
