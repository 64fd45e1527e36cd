"""Brain–brain alignment patterns: the ROI × ROI matrix of cross-subject alignment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Colormap, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ._common import check_roi_order, finalize, measure_label, new_figure, select

__all__ = ["brain_pattern_matrix", "plot_brain_pattern_matrix"]


def _cmap(cmap: str | Colormap) -> Colormap:
    """A copy of ``cmap`` that leaves NaN cells transparent."""
    cm = cmap if isinstance(cmap, Colormap) else colormaps[cmap]
    return cm.with_extremes(bad=(1.0, 1.0, 1.0, 0.0))


def brain_pattern_matrix(brain_brain: pd.DataFrame, roi_order: Sequence[str], measure: str,
                         split: str = "test") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean, SD and count over ordered cross-subject pairs of the brain–brain scores.

    Parameters
    ----------
    brain_brain : DataFrame
        The ``brain_brain`` table.
    roi_order : sequence of str
        ROIs in stream/hierarchy order (rows and columns).
    measure : str
        Measure to aggregate.
    split : str
        ``"test"`` or ``"train"``.

    Returns
    -------
    mean, sd, count : DataFrame
        Each shaped (n_rois, n_rois), rows = source ROI, columns = target ROI, in ``roi_order``.
        Within-subject rows (source_subject == target_subject) are excluded; cells without a
        finite score are NaN (count 0).
    """
    rois = check_roi_order(roi_order)
    sel = select(brain_brain, "brain_brain", measure=measure, split=split)
    cross = (sel["source_subject"].astype(str) != sel["target_subject"].astype(str)).to_numpy()
    sel = sel.loc[cross]
    if sel.empty:
        raise ValueError(f"brain_brain table: no cross-subject rows for measure {measure!r}, "
                         f"split {split!r}")
    score = pd.to_numeric(sel["score"], errors="coerce").astype(float)
    frame = pd.DataFrame({"source_roi": sel["source_roi"].astype(str).to_numpy(),
                          "target_roi": sel["target_roi"].astype(str).to_numpy(),
                          "score": score.to_numpy()})
    g = frame.groupby(["source_roi", "target_roi"], sort=True)["score"]

    def square(s: pd.Series) -> pd.DataFrame:
        m = s.unstack("target_roi").reindex(index=rois, columns=rois)
        m.index.name, m.columns.name = "source_roi", "target_roi"
        return m.astype(float)

    count = square(g.count()).fillna(0).astype(int)
    return square(g.mean()), square(g.std(ddof=1)), count


def plot_brain_pattern_matrix(brain_brain: pd.DataFrame, roi_order: Sequence[str], measure: str,
                              split: str = "test", *, show_spread: bool = False,
                              annotate: bool | None = None,
                              cmap: str | Colormap | None = None) -> Figure:
    """Heatmap of the ROI × ROI cross-subject alignment matrix (the brain's alignment pattern).

    Parameters
    ----------
    brain_brain : DataFrame
        The ``brain_brain`` table.
    roi_order : sequence of str
        ROIs in stream/hierarchy order (rows = source ROI, columns = target ROI).
    measure : str
        Measure to show.
    split : str
        ``"test"`` (default) or ``"train"``.
    show_spread : bool
        Add a second panel with the SD over ordered subject pairs.
    annotate : bool, optional
        Write each cell's value; default when there are at most 10 ROIs.
    cmap : str, optional
        Colour map; default ``"viridis"`` for non-negative values, ``"RdBu_r"`` centred on 0
        otherwise (both colour-blind safe).

    Returns
    -------
    matplotlib.figure.Figure
        The heatmap with a labelled colour bar; NaN cells (missing ROI data) are left blank.
    """
    rois = check_roi_order(roi_order)
    mean, sd, count = brain_pattern_matrix(brain_brain, rois, measure, split)
    n = len(rois)
    if annotate is None:
        annotate = n <= 10
    values = mean.to_numpy()
    finite = values[np.isfinite(values)]
    diverging = finite.size > 0 and finite.min() < 0
    if cmap is None:
        cmap = "RdBu_r" if diverging else "viridis"
    if finite.size == 0:
        norm = Normalize(0.0, 1.0)
    elif diverging:
        lim = float(np.abs(finite).max()) or 1.0
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
    else:
        hi = float(finite.max())
        norm = Normalize(0.0, hi if hi > 0 else 1.0)

    side = float(min(max(3.5, 0.38 * n + 2.0), 11.0))
    panels = [(values, norm, cmap, measure_label(measure, split) + "\nmean over subject pairs",
               "mean cross-subject alignment")]
    if show_spread:
        sdv = sd.to_numpy()
        f = sdv[np.isfinite(sdv)]
        panels.append((sdv, Normalize(0.0, float(f.max()) if f.size and f.max() > 0 else 1.0),
                       "cividis", "SD over ordered subject pairs", "subject-to-subject spread"))
    fig = new_figure(side * len(panels) + 0.8, side)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    pairs = int(count.to_numpy().max()) if count.size else 0
    fig.suptitle(f"Brain alignment pattern · {measure} · {split} split\n"
                 f"up to {pairs} ordered subject pairs per cell", fontsize="medium")
    for ax, (arr, nrm, cm, cbar_label, title) in zip(axes, panels, strict=True):
        im = ax.imshow(np.ma.masked_invalid(arr), cmap=_cmap(cm), norm=nrm, interpolation="nearest",
                       aspect="equal")
        im.set_gid("matrix")
        ax.set_facecolor("white")
        ax.set_xticks(np.arange(n))
        ax.set_yticks(np.arange(n))
        ax.set_xticklabels(rois, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center",
                           rotation_mode="anchor")
        ax.set_yticklabels(rois)
        ax.set_xlabel("target ROI (subject s)")
        ax.set_ylabel("source ROI (subject s′ ≠ s)")
        ax.set_title(title, fontsize="medium")
        cbar = fig.colorbar(im, ax=ax, shrink=0.85)
        cbar.set_label(cbar_label)
        if annotate:
            for i in range(n):
                for j in range(n):
                    v = arr[i, j]
                    if np.isfinite(v):
                        rgba = im.cmap(im.norm(v))
                        lum = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="x-small",
                                color="black" if lum > 0.5 else "white", gid=f"cell:{i},{j}")
    return finalize(fig)
