"""Brain–brain alignment patterns: the ROI × ROI matrix of cross-subject alignment."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Colormap, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from ._common import (
    BRAIN_COLOR,
    DOUBLE_COLUMN,
    check_roi_order,
    finalize,
    mark_streams,
    measure_label,
    new_figure,
    order_by_stream,
    select,
    stream_groups,
    styled,
    suptitle,
)

__all__ = ["brain_pattern_matrix", "plot_brain_pattern_matrix", "plot_brain_patterns",
           "subject_matrices", "matrix_stability"]

#: Matrix variants the brain-pattern figure can draw (``residual`` has no matrix form).
MATRIX_VARIANTS = ("full", "offdiag", "normalized", "normalized_offdiag")


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


def _ceiling_kind(measure: str) -> str:
    """The ceilings-table ``kind`` that APA divides by (docs/apa.md, Variants)."""
    return "lp_ceiling" if measure.startswith("lp-") else "split_half"


def pair_matrices(brain_brain: pd.DataFrame, roi_order: Sequence[str], measure: str,
                  variant: str = "full", *, ceilings: pd.DataFrame | None = None,
                  min_ceiling: float = 0.1, split: str = "test"
                  ) -> tuple[list[str], np.ndarray]:
    """Every ordered subject pair's alignment-pattern matrix, with the APA variant applied.

    P[s′, s] = A_{s′→s} (``brain_brain``; source s′, target s). The variant masks or scales
    entries as APA does (docs/apa.md): ``offdiag`` blanks r′ = r; ``normalized`` divides column
    r′ by the target subject's ceiling C_s[r′] and blanks columns whose ceiling is below
    ``min_ceiling`` in any subject; ``normalized_offdiag`` does both.

    Parameters
    ----------
    brain_brain : DataFrame
        The ``brain_brain`` table.
    roi_order : sequence of str
        ROIs (rows = source ROI r, columns = target ROI r′).
    measure, split : str
        Which scores.
    variant : str
        One of :data:`MATRIX_VARIANTS`.
    ceilings : DataFrame, optional
        The ``ceilings`` table; required by the normalized variants.
    min_ceiling : float
        Ceiling threshold of the normalized variants (``apa.min_ceiling``).

    Returns
    -------
    subjects : list of str
        Subjects (sources and targets), sorted.
    pairs : ndarray, shape (n_subjects, n_subjects, n_rois, n_rois)
        [source, target]; NaN on s′ = s, where an entry is missing, or masked.
    """
    rois = check_roi_order(roi_order)
    if variant not in MATRIX_VARIANTS:
        raise ValueError(f"variant {variant!r} has no matrix form; expected one of "
                         f"{list(MATRIX_VARIANTS)}")
    sel = select(brain_brain, "brain_brain", measure=measure, split=split)
    sel = sel.loc[(sel["source_subject"].astype(str)
                   != sel["target_subject"].astype(str)).to_numpy()]
    frame = pd.DataFrame({"s": sel["source_subject"].astype(str).to_numpy(),
                          "t": sel["target_subject"].astype(str).to_numpy(),
                          "r": sel["source_roi"].astype(str).to_numpy(),
                          "c": sel["target_roi"].astype(str).to_numpy(),
                          "v": pd.to_numeric(sel["score"], errors="coerce").to_numpy(float)})
    subjects = sorted(set(frame["t"]) | set(frame["s"]))
    mean = frame.groupby(["s", "t", "r", "c"])["v"].mean()
    idx = pd.MultiIndex.from_product([subjects, subjects, rois, rois])
    S, R = len(subjects), len(rois)
    pairs = mean.reindex(idx).to_numpy(dtype=float, copy=True).reshape(S, S, R, R)
    if variant.endswith("offdiag"):
        pairs[:, :, np.arange(R), np.arange(R)] = np.nan
    if variant.startswith("normalized"):
        if ceilings is None:
            raise ValueError(f"variant {variant!r} needs the ceilings table")
        kind = _ceiling_kind(measure)
        c = select(ceilings, "ceilings", measure=measure, split=split, kind=kind)
        cm = (pd.DataFrame({"s": c["subject"].astype(str).to_numpy(),
                            "r": c["roi"].astype(str).to_numpy(),
                            "v": pd.to_numeric(c["value"], errors="coerce").to_numpy(float)})
              .groupby(["s", "r"])["v"].mean()
              .reindex(pd.MultiIndex.from_product([subjects, rois]))
              .to_numpy(dtype=float).reshape(S, R))
        keep = np.all(np.isfinite(cm) & (cm >= min_ceiling), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            pairs = pairs / cm[None, :, None, :]  # column r′ by the target's ceiling
        pairs[..., ~keep] = np.nan
    return subjects, pairs


def subject_matrices(brain_brain: pd.DataFrame, roi_order: Sequence[str], measure: str,
                     variant: str = "full", *, ceilings: pd.DataFrame | None = None,
                     min_ceiling: float = 0.1, split: str = "test"
                     ) -> tuple[list[str], np.ndarray]:
    """Each target subject's alignment-pattern matrix, with the APA variant applied.

    M_s[r, r′] = mean over source subjects s′ ≠ s of A_{s′→s}[r, r′] (:func:`pair_matrices`,
    whose parameters these are).

    Returns
    -------
    subjects : list of str
        Target subjects, sorted.
    matrices : ndarray, shape (n_subjects, n_rois, n_rois)
        NaN where an entry is missing or masked.
    """
    return _target_means(*pair_matrices(brain_brain, roi_order, measure, variant,
                                        ceilings=ceilings, min_ceiling=min_ceiling,
                                        split=split))


def _target_means(subjects: list[str], pairs: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(targets, M (n_targets, R, R)): each target's mean over its sources of ``pairs``."""
    targets = [k for k in range(len(subjects)) if np.isfinite(pairs[:, k]).any()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN entries stay NaN
        mats = np.nanmean(pairs[:, targets], axis=0)
    return [subjects[k] for k in targets], mats


def matrix_stability(pairs: np.ndarray) -> np.ndarray:
    """Cross-subject stability of each target subject's matrix, against double-exclusion
    references (SPEC.md §4, "Stability").

    stability_s = mean over stand-ins s* ≠ s of r(A_{s*→s}, ā^{−{s,s*}}), with ā^{−Q} the mean
    of A_{a→b} over the ordered pairs with a, b ∉ Q and r the Pearson correlation over the
    matrix entries finite in both: the same form as APA's brain baseline, on whole matrices.
    No reference shares the stand-in's or the target's data (the other subjects' mean
    matrices would, through the pairs with s* as source, and overstate stability).

    Parameters
    ----------
    pairs : ndarray, shape (n_subjects, n_subjects, n_rois, n_rois)
        [source, target] from :func:`pair_matrices`.

    Returns
    -------
    ndarray, shape (n_subjects,)
        NaN for a subject without a stand-in whose correlation is defined (≥ 3 shared finite
        entries, both non-constant; needs ≥ 4 subjects for a reference).
    """
    from alignpatterns.patterns.apa import double_exclusion_references

    S = pairs.shape[0]
    refs = double_exclusion_references(pairs, range(S))
    out = np.full(S, np.nan)
    for s in range(S):
        rs = []
        for s_star in range(S):
            if s_star == s:
                continue
            x, ref = pairs[s_star, s].ravel(), refs[s, s_star].ravel()
            ok = np.isfinite(x) & np.isfinite(ref)
            if ok.sum() >= 3 and x[ok].std() > 0 and ref[ok].std() > 0:
                rs.append(float(np.corrcoef(x[ok], ref[ok])[0, 1]))
        if rs:
            out[s] = float(np.mean(rs))
    return out


def _norm_for(values: np.ndarray):
    finite = values[np.isfinite(values)]
    diverging = finite.size > 0 and finite.min() < 0
    if finite.size == 0:
        return Normalize(0.0, 1.0), "viridis"
    if diverging:
        lim = float(np.abs(finite).max()) or 1.0
        return TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim), "RdBu_r"
    hi = float(finite.max())
    return Normalize(0.0, hi if hi > 0 else 1.0), "viridis"


def _matrix_axes(ax, rois: list[str], groups) -> None:
    n = len(rois)
    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xticklabels(rois, rotation=90 if n > 4 else 0)
    ax.set_yticklabels(rois)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if groups:
        mark_streams(ax, groups, y=True, label=False)


@styled
def plot_brain_patterns(brain_brain: pd.DataFrame, roi_order: Sequence[str], measure: str,
                        variants: Sequence[str] = ("full", "offdiag"), *,
                        ceilings: pd.DataFrame | None = None, min_ceiling: float = 0.1,
                        streams: Mapping[str, Sequence[str]] | None = None,
                        split: str = "test") -> Figure:
    """Brain alignment-pattern matrices, one per APA variant, and their cross-subject stability.

    Parameters
    ----------
    brain_brain : DataFrame
        The ``brain_brain`` table.
    roi_order : sequence of str
        ROIs; they are regrouped by ``streams`` (stream order, then ``roi_order`` within).
    measure : str
        Measure to show.
    variants : sequence of str
        Variants to draw (those of :data:`MATRIX_VARIANTS`; others are skipped, since
        ``residual`` has no matrix form).
    ceilings : DataFrame, optional
        The ``ceilings`` table, for the normalized variants (skipped without it).
    min_ceiling : float
        ``apa.min_ceiling``.
    streams : mapping, optional
        stream → ROIs; separators are drawn between streams and streams are named on top.
    split : str
        ``"test"`` (default) or ``"train"``.

    Returns
    -------
    matplotlib.figure.Figure
        One heatmap per variant (axes title = variant; image gid ``"matrix"``; rows = source ROI,
        columns = target ROI; mean over subjects of M_s), then a panel "cross-subject stability"
        with one dot per target subject per variant (:func:`matrix_stability`: double
        exclusion, as APA's brain baseline).
    """
    rois = order_by_stream(check_roi_order(roi_order), streams)
    groups = stream_groups(rois, streams)
    drawn = [v for v in variants if v in MATRIX_VARIANTS
             and (ceilings is not None or not v.startswith("normalized"))]
    if not drawn:
        raise ValueError(f"none of the variants {list(variants)} can be drawn as a matrix "
                         f"(drawable: {list(MATRIX_VARIANTS)}; normalized ones need ceilings)")
    mats, stability = {}, {}
    for v in drawn:
        subjects, pairs = pair_matrices(brain_brain, rois, measure, v, ceilings=ceilings,
                                        min_ceiling=min_ceiling, split=split)
        mats[v] = _target_means(subjects, pairs)
        stability[v] = matrix_stability(pairs)[[subjects.index(t) for t in mats[v][0]]]
    ncol = min(len(drawn), 2)
    nrow = int(np.ceil(len(drawn) / ncol))
    cell = 3.1 if ncol > 1 else 3.4
    fig = new_figure(DOUBLE_COLUMN if ncol > 1 else 4.6, cell * nrow + 2.0)
    gs = fig.add_gridspec(nrow + 1, ncol, height_ratios=[*([cell] * nrow), 1.3])
    for k, v in enumerate(drawn):
        subjects, m = mats[v]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(m, axis=0)
        ax = fig.add_subplot(gs[k // ncol, k % ncol])
        norm, cmap = _norm_for(mean)
        im = ax.imshow(np.ma.masked_invalid(mean), cmap=_cmap(cmap), norm=norm,
                       interpolation="nearest", aspect="equal")
        im.set_gid("matrix")
        _matrix_axes(ax, rois, groups)
        if not np.isfinite(mean).any():
            why = (f"no target ROI with a ceiling ≥ {min_ceiling:g}\nin every subject"
                   if v.startswith("normalized") else "no finite scores")
            ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center",
                    color="0.3", gid="empty", bbox={"facecolor": "white", "edgecolor": "none"})
        ax.set_title(v)
        ax.set_xlabel("target ROI r′")
        ax.set_ylabel("source ROI r")
        cbar = fig.colorbar(im, ax=ax, shrink=0.8)
        cbar.set_label("÷ target ceiling" if v.startswith("normalized") else
                        measure_label(measure).split(" (")[0])
        cbar.outline.set_linewidth(0.4)
    sax = fig.add_subplot(gs[nrow, :])
    for k, v in enumerate(drawn):
        st = stability[v]
        x = np.full(len(st), float(k)) + np.linspace(-0.15, 0.15, len(st))
        sax.plot(x, st, linestyle="none", marker="o", markersize=3.5, color="0.45",
                 gid=f"stability:{v}", label="one target subject" if k == 0 else "_nolegend_")
        if np.isfinite(st).any():
            sax.plot([k - 0.25, k + 0.25], [np.nanmean(st)] * 2, color=BRAIN_COLOR,
                     linewidth=1.5, label="mean" if k == 0 else "_nolegend_")
            sax.annotate(f"{np.nanmean(st):.2f}", (k + 0.28, np.nanmean(st)), va="center",
                         fontsize="small")
    sax.set_xticks(np.arange(len(drawn)))
    sax.set_xticklabels(drawn)
    sax.set_xlim(-0.6, len(drawn) - 0.4)
    sax.set_ylabel("r with the rest's\nmean (double excl.)")
    sax.set_title("cross-subject stability: r(A_{s*→s}, mean of the pairs without s, s*), "
                  "dots: target subjects s; bar: mean")
    names = ", ".join(f"{g[0]}" for g in groups if g[0])
    suptitle(fig, f"Brain alignment patterns · {measure} · {split} split · mean over "
             f"{len(mats[drawn[0]][0])} target subjects"
             + (f"\nROIs grouped by stream ({names})" if names else ""))
    return finalize(fig)


@styled
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
