"""Per-ROI results on the cortical surface (nilearn, fsaverage5 mesh shipped with nilearn), or an
ROI-level map when the data have no fsaverage labels (e.g. fsLR32k with synthetic ROIs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ._common import (
    DOUBLE_COLUMN,
    check_roi_order,
    finalize,
    mark_streams,
    new_figure,
    order_by_stream,
    rows_for,
    select,
    series_table,
    stream_groups,
    styled,
    suptitle,
)

__all__ = ["FSAVERAGE5_VERTICES", "fsaverage5_mesh", "plot_roi_map", "plot_surface_map",
           "roi_values"]

#: Vertices per hemisphere of fsaverage5; fsaverage's first 10242 vertices are fsaverage5's
#: (icosahedral subdivision keeps the coarser vertices first).
FSAVERAGE5_VERTICES = 10242


def fsaverage5_mesh(kind: str = "infl") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fsaverage5 surfaces packaged inside nilearn (no download).

    Returns
    -------
    dict
        hemi ("left", "right") → (coordinates (10242, 3), faces (20480, 3)).
    """
    from nilearn import datasets, surface

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    out = {}
    for hemi in ("left", "right"):
        mesh = surface.load_surf_mesh(fs[f"{kind}_{hemi}"])
        out[hemi] = (np.asarray(mesh.coordinates), np.asarray(mesh.faces))
    return out


def roi_values(apa_summary: pd.DataFrame, measure: str, variant: str = "offdiag", *,
               match: str = "pearson", value: str = "aps_mean",
               models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-ROI values of every candidate (brain first), shaped candidates × ROIs.

    Returns
    -------
    DataFrame
        Index = candidate label (``"brain"``, then models), columns = ROIs, values = ``value``.
    """
    sel = select(apa_summary, "apa_summary", measure=measure, variant=variant, match=match)
    if value not in sel.columns:
        raise ValueError(f"apa_summary table: no column {value!r}; found {list(sel.columns)}")
    rows = {}
    brain = sel.loc[(sel["candidate"].astype(str) == "brain").to_numpy()]
    if len(brain):
        rows["brain"] = (pd.to_numeric(brain[value], errors="coerce")
                         .groupby(brain["roi"].astype(str).to_numpy()).mean())
    cand = sel.loc[(sel["candidate"].astype(str) != "brain").to_numpy()]
    for name, weights, label in series_table(cand, "candidate", models):
        r = rows_for(cand, "candidate", name, weights)
        rows[label] = pd.to_numeric(r[value], errors="coerce").groupby(
            r["roi"].astype(str).to_numpy()).mean()
    return pd.DataFrame(rows).T


def _norm(values: np.ndarray, center: float | None):
    f = values[np.isfinite(values)]
    if f.size == 0:
        return Normalize(0, 1), "viridis"
    if center is not None and f.min() < center < f.max():
        lim = float(np.abs(f - center).max())
        return TwoSlopeNorm(vcenter=center, vmin=center - lim, vmax=center + lim), "RdBu_r"
    return Normalize(float(f.min()), float(f.max()) if f.max() > f.min() else float(f.min()) + 1
                     ), "viridis"


@styled
def plot_roi_map(values: pd.DataFrame, roi_order: Sequence[str], *,
                 streams: Mapping[str, Sequence[str]] | None = None,
                 label: str = "APS (Pearson r)", title: str = "",
                 center: float | None = None) -> Figure:
    """ROI-level map: one tile per ROI (grouped by stream) per candidate, coloured by value.

    Used when per-vertex ROI labels on fsaverage are not available (fsLR32k or synthetic ROIs).

    Parameters
    ----------
    values : DataFrame
        Candidates × ROIs (:func:`roi_values`).
    roi_order : sequence of str
        ROIs; regrouped by ``streams``.
    streams : mapping, optional
        stream → ROIs; stream names head the tile groups.
    label, title : str
        Colour-bar label and figure title.
    center : float, optional
        Centre of a diverging colour map (e.g. 0 for Δ); default a sequential map.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with an image (gid ``"roi map"``) of shape (candidates, ROIs); y tick labels =
        candidates, x tick labels = ROIs, a colour bar labelled ``label``.
    """
    rois = order_by_stream(check_roi_order(roi_order), streams)
    v = values.reindex(columns=rois).to_numpy(dtype=float)
    norm, cmap = _norm(v, center)
    fig = new_figure(min(2.2 + 0.36 * len(rois), DOUBLE_COLUMN), 1.3 + 0.28 * len(values))
    ax = fig.add_subplot()
    from .brain import _cmap

    im = ax.imshow(np.ma.masked_invalid(v), cmap=_cmap(cmap), norm=norm, aspect="equal",
                   interpolation="nearest")
    im.set_gid("roi map")
    ax.set_xticks(np.arange(len(rois)))
    ax.set_xticklabels(rois, rotation=90)
    ax.set_yticks(np.arange(len(values)))
    ax.set_yticklabels([str(i) for i in values.index])
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)
    groups = stream_groups(rois, streams)
    if groups:
        mark_streams(ax, groups)
    if len(values) > 1 and str(values.index[0]) == "brain":
        ax.axhline(0.5, color="white", linewidth=2.0, gid="brain separator")
    ax.set_xlabel("ROI (grouped by stream)")
    cbar = fig.colorbar(im, ax=ax, shrink=0.9)
    cbar.set_label(label)
    if title:
        suptitle(fig, title)
    return finalize(fig)


@styled
def plot_surface_map(values: Mapping[str, float], labels: Mapping[str, np.ndarray], *,
                     label: str = "APS (Pearson r)", title: str = "",
                     center: float | None = None,
                     views: Sequence[str] = ("lateral", "medial")) -> Figure:
    """Per-ROI values painted on the fsaverage5 inflated surface (mesh shipped with nilearn).

    Parameters
    ----------
    values : mapping
        ROI name → value.
    labels : mapping
        hemi ("left", "right") → per-vertex ROI names, shape (10242,) on fsaverage5 or
        (163842,) on fsaverage (its first 10242 vertices are used). Vertices whose label is not
        in ``values`` (or empty) stay uncoloured.
    label, title : str
        Colour-bar label and title.
    center : float, optional
        Centre of a diverging colour map.
    views : sequence of str
        nilearn views drawn per hemisphere (default lateral and medial).

    Returns
    -------
    matplotlib.figure.Figure
        One 3-D axes per hemisphere × view (left hemisphere first, titles like
        ``"left lateral"``) and a colour bar labelled ``label``.
    """
    from nilearn import plotting

    mesh = fsaverage5_mesh("infl")
    sulc = fsaverage5_mesh_sulc()
    data = {}
    for hemi in ("left", "right"):
        lab = np.asarray(labels[hemi]).astype(str)
        if lab.shape[0] not in (FSAVERAGE5_VERTICES, 163842):
            raise ValueError(f"labels[{hemi!r}]: expected {FSAVERAGE5_VERTICES} (fsaverage5) or "
                             f"163842 (fsaverage) vertices, found {lab.shape[0]}")
        lab = lab[:FSAVERAGE5_VERTICES]
        data[hemi] = np.array([values.get(x, np.nan) for x in lab], dtype=float)
    allv = np.concatenate(list(data.values()))
    norm, cmap = _norm(allv, center)
    fig = new_figure(DOUBLE_COLUMN, 2.6)
    panels = [("left", v) for v in views] + [("right", v) for v in reversed(views)]
    for k, (hemi, view) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1, projection="3d")
        plotting.plot_surf(mesh[hemi], surf_map=data[hemi], bg_map=sulc[hemi], hemi=hemi,
                           view=view, cmap=cmap, colorbar=False, vmin=norm.vmin, vmax=norm.vmax,
                           axes=ax, figure=fig, bg_on_data=True, engine="matplotlib")
        ax.set_title(f"{hemi} {view}", loc="center")
        for coll in ax.collections:  # 20k triangles per view: a bitmap in the PDF, not vectors
            coll.set_rasterized(True)
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, ax=fig.axes, location="bottom", shrink=0.5, aspect=30)
    cbar.set_label(label)
    if title:
        suptitle(fig, title)
    return finalize(fig)


def fsaverage5_mesh_sulc() -> dict[str, np.ndarray]:
    """Sulcal depth of fsaverage5 (nilearn's packaged data), the grey background."""
    from nilearn import datasets, surface

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    return {h: np.asarray(surface.load_surf_data(fs[f"sulc_{h}"])) for h in ("left", "right")}
