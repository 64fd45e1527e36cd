"""Shared helpers for the figures: palette, measure labels, table selection and saving.

Nothing here touches matplotlib's global state: figures are built as
:class:`matplotlib.figure.Figure` objects with an Agg canvas, never through :mod:`pyplot`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alignpatterns.io import atomic_path

#: Okabe & Ito (2008) colour-blind-safe palette without black (black is reserved for the brain).
OKABE_ITO: tuple[str, ...] = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
)
#: Markers cycled together with the colours, so that > 7 series stay distinguishable.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
#: Colour of the brain baseline.
BRAIN_COLOR = "black"
#: Colour of noise ceilings and reference lines.
CEILING_COLOR = "0.45"
#: The project's matplotlib style (applied inside every figure function, never globally).
STYLE = Path(__file__).with_name("alignpatterns.mplstyle")
#: Figure widths in inches: one journal column and the full page width.
SINGLE_COLUMN = 3.5
DOUBLE_COLUMN = 7.2

_F = TypeVar("_F", bound=Callable)


def styled(func: _F) -> _F:
    """Run a figure function under the project style; rcParams are restored afterwards."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(fname=str(STYLE)):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def model_palette(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Colour and marker of every model series, fixed by the order of ``labels``.

    Build it once from the configured model list and pass it to every figure function, so a
    model has the same colour and marker in every figure. Colours cycle through the Okabe–Ito
    palette and markers through :data:`MARKERS` independently, so up to 70 series get distinct
    (colour, marker) pairs.

    Parameters
    ----------
    labels : sequence of str
        Series labels (model names, or ``"name (weights)"`` when a name has several weights).

    Returns
    -------
    dict
        label → (colour, marker).
    """
    out: dict[str, tuple[str, str]] = {}
    for i, lab in enumerate(dict.fromkeys(str(x) for x in labels)):
        out[lab] = (OKABE_ITO[i % len(OKABE_ITO)], MARKERS[(i + i // len(OKABE_ITO)) % len(MARKERS)])
    return out


def palette_from_models(models: Sequence[Mapping]) -> dict[str, tuple[str, str]]:
    """:func:`model_palette` for the config's ``models`` list (entries with name and weights).

    Labels follow :func:`series_table`: the name alone when it has one weights setting,
    ``"name (weights)"`` otherwise; both spellings are keys, so lookups by name work too.
    """
    names = [str(m["name"]) for m in models]
    labels = [n if names.count(n) == 1 else f"{n} ({m.get('weights', '')})"
              for n, m in zip(names, models, strict=True)]
    pal = model_palette(labels)
    for n, m, lab in zip(names, models, labels, strict=True):
        pal.setdefault(n, pal[lab])
        pal.setdefault(f"{n} ({m.get('weights', '')})", pal[lab])
    return pal


def series_style(palette: Mapping[str, tuple[str, str]] | None,
                 series: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """(colour, marker) for each (name, weights, label) series: from ``palette`` when it knows
    the label (or the name), otherwise from a palette over the series in their order."""
    fallback = model_palette([lab for _, _, lab in series])
    out = []
    for name, _, lab in series:
        if palette and lab in palette:
            out.append(palette[lab])
        elif palette and name in palette:
            out.append(palette[name])
        else:
            out.append(fallback[lab])
    return out


def stream_groups(rois: Sequence[str], streams: Mapping[str, Sequence[str]] | None
                  ) -> list[tuple[str, int, int]]:
    """Runs of consecutive ROIs that belong to one stream, as (stream, first, last) indices.

    ROIs in no stream form runs named ``""``. Returns ``[]`` when ``streams`` is empty.
    """
    if not streams:
        return []
    of = {str(r): str(s) for s, members in streams.items() for r in members}
    groups: list[tuple[str, int, int]] = []
    for i, r in enumerate(rois):
        s = of.get(str(r), "")
        if groups and groups[-1][0] == s:
            groups[-1] = (s, groups[-1][1], i)
        else:
            groups.append((s, i, i))
    return groups


def order_by_stream(rois: Sequence[str], streams: Mapping[str, Sequence[str]] | None
                    ) -> list[str]:
    """``rois`` reordered so that each stream's ROIs are contiguous (streams in the order of
    ``streams``, ROIs within a stream in the order of ``rois``, unassigned ROIs last)."""
    rois = [str(r) for r in rois]
    if not streams:
        return rois
    out = [r for members in streams.values() for r in rois if r in {str(m) for m in members}]
    out = list(dict.fromkeys(out))
    return out + [r for r in rois if r not in out]


def mark_streams(ax, groups: Sequence[tuple[str, int, int]], *, y: bool = False,
                 label: bool = True) -> None:
    """Separator lines between streams and the stream names along the x (and y) axis."""
    for k, (name, first, last) in enumerate(groups):
        if k:
            ax.axvline(first - 0.5, color="0.25", linewidth=0.8, zorder=5, gid="stream")
            if y:
                ax.axhline(first - 0.5, color="0.25", linewidth=0.8, zorder=5, gid="stream")
        if label and name:
            ax.annotate(name, xy=((first + last) / 2, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize="small", color="0.25", gid=f"stream:{name}",
                        annotation_clip=False)

_RSA_COMPARISONS = {
    "spearman": "Spearman ρ",
    "pearson": "Pearson r",
    "tau-a": "Kendall τ-a",
    "rho-a": "Spearman ρ-a",
    "cosine": "cosine similarity",
}


def measure_label(measure: str, split: str | None = None) -> str:
    """Axis label (statistic and its units) for a measure name.

    Parameters
    ----------
    measure : str
        Measure name as in the tables, e.g. ``"rsa-crossnobis-spearman"``,
        ``"cka-linear-debiased"`` or ``"lp-ridge-pearson"``.
    split : str, optional
        Data split the score was computed on; shown in parentheses when given.

    Returns
    -------
    str
        A label such as ``"Spearman ρ (RDM comparison, crossnobis)"``.
    """
    parts = str(measure).split("-")
    family = parts[0]
    suffix = f", {split}" if split else ""
    if family == "rsa" and len(parts) >= 3:
        comparison = "-".join(parts[2:])
        stat = _RSA_COMPARISONS.get(comparison, comparison)
        return f"{stat} (RDM comparison, {parts[1]} RDMs{suffix})"
    if family == "cka":
        kind = parts[1] if len(parts) > 1 else "linear"
        debiased = "debiased " if "debiased" in parts else ""
        return f"{debiased}{kind} CKA{' (' + split + ')' if split else ''}"
    if family == "lp":
        stat = parts[-1]
        if stat == "pearson":
            return f"Pearson r (ridge prediction{suffix or ', test'})"
        if stat == "r2":
            return f"R² (ridge prediction{suffix or ', test'})"
        return f"{stat} (ridge prediction{suffix})"
    return f"{measure}{' (' + split + ')' if split else ''}"


def suptitle(fig: Figure, text: str, reserve: float = 0.0) -> None:
    """Left-aligned figure title, wrapped to the figure's width less ``reserve`` inches (the
    width of a legend at the upper right). Constrained layout makes room for it; an over-long
    axes title would instead run into the legend."""
    import textwrap

    width = max(int((fig.get_figwidth() - reserve) * 13), 30)
    lines = [textwrap.fill(line, width, break_on_hyphens=False) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), x=0.01, ha="left")


def axis_label(measure: str, split: str | None = None) -> str:
    """:func:`measure_label` on two lines (statistic, then the parenthesis), for y axes."""
    return measure_label(measure, split).replace(" (", "\n(", 1)


def new_figure(width: float, height: float) -> Figure:
    """A fresh figure with an Agg canvas (no pyplot, no global backend change).

    Call it inside a :func:`styled` function so that the project style applies."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finalize(fig: Figure) -> Figure:
    """Compute the constrained layout once, then freeze it.

    Constrained layout refines positions a little on every draw, so an unfrozen figure saved
    twice can differ by a pixel; frozen, every save of the figure is byte-identical and the PNG
    and PDF share one layout. Call ``fig.set_layout_engine("constrained")`` to re-enable it after
    adding artists.
    """
    for _ in range(2):
        fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return fig


def select(df: pd.DataFrame, table: str, **equal) -> pd.DataFrame:
    """Rows of ``df`` where every column in ``equal`` equals its value.

    For the ``apa`` and ``apa_summary`` tables without a ``selection`` filter, only the primary
    layer selection (``score``) is kept, so that each cell has one row.

    Raises
    ------
    ValueError
        If a column is missing, or if no row matches; the message lists the values present.
    """
    out = df
    if (table in ("apa", "apa_summary") and "selection" not in equal
            and "selection" in df.columns and (df["selection"] == "score").any()):
        # figures show the primary layer selection (one row per cell); 'aps' is secondary
        equal = {**equal, "selection": "score"}
    for col, value in equal.items():
        if col not in df.columns:
            raise ValueError(f"{table} table: expected a column {col!r}, found {list(df.columns)}")
        mask = (out[col] == value).fillna(False).to_numpy(dtype=bool)
        if not mask.any():
            present = sorted(map(str, df[col].dropna().unique()))
            raise ValueError(
                f"{table} table: no rows with {col} == {value!r} "
                f"(after the other filters); values present: {present}"
            )
        out = out.loc[mask]
    return out


def check_roi_order(roi_order: Sequence[str]) -> list[str]:
    """Validate the caller's ROI order: a non-empty sequence of distinct names."""
    if isinstance(roi_order, str):
        raise TypeError("roi_order must be a list of ROI names, not a single string")
    rois = [str(r) for r in roi_order]
    if not rois:
        raise ValueError("roi_order is empty: pass the ROIs in stream/hierarchy order")
    dupes = sorted({r for r in rois if rois.count(r) > 1})
    if dupes:
        raise ValueError(f"roi_order has duplicate ROIs: {dupes}")
    return rois


def series_table(df: pd.DataFrame, name_col: str, order: Sequence[str] | None = None
                 ) -> list[tuple[str, str, str]]:
    """The (name, weights, legend label) of every series, in a stable order.

    A series is one ``name_col`` × ``weights`` pair. The label is the name alone when that name
    has one weights setting, ``"name (weights)"`` otherwise. ``order`` (names) sets the order and
    subset; by default names are sorted, and weights too.
    """
    weights = df["weights"].astype(object).where(df["weights"].notna(), "")
    pairs = sorted({(str(n), str(w)) for n, w in zip(df[name_col], weights, strict=True)})
    if order is not None:
        rank = {str(n): i for i, n in enumerate(order)}
        unknown = [n for n in order if str(n) not in {p[0] for p in pairs}]
        if unknown:
            present = sorted({p[0] for p in pairs})
            raise ValueError(f"unknown {name_col}s {unknown}; present: {present}")
        pairs = sorted((p for p in pairs if p[0] in rank), key=lambda p: (rank[p[0]], p[1]))
    counts: dict[str, int] = {}
    for n, _ in pairs:
        counts[n] = counts.get(n, 0) + 1
    return [(n, w, n if counts[n] == 1 or not w else f"{n} ({w})") for n, w in pairs]


def rows_for(df: pd.DataFrame, name_col: str, name: str, weights: str) -> pd.DataFrame:
    """Rows of one series (``weights == ""`` also matches missing weights)."""
    w = df["weights"].astype(object).where(df["weights"].notna(), "")
    mask = (df[name_col].astype(str) == name).to_numpy() & (w.astype(str) == weights).to_numpy()
    return df.loc[mask]


def per_roi(rows: pd.DataFrame, rois: Sequence[str], col: str) -> np.ndarray:
    """Values of ``col`` aligned to ``rois`` (NaN where a ROI has no row or a missing value)."""
    if rows.empty:
        return np.full(len(rois), np.nan)
    s = pd.to_numeric(rows[col], errors="coerce").astype(float)
    s.index = rows["roi"].astype(str).to_numpy()
    s = s[~s.index.duplicated(keep="first")]
    return s.reindex(list(rois)).to_numpy(dtype=float)


def dodge(n_series: int, width: float = 0.8) -> np.ndarray:
    """Horizontal offsets that spread ``n_series`` markers over ``width`` within a group."""
    if n_series <= 1:
        return np.zeros(max(n_series, 0))
    step = width / n_series
    return (np.arange(n_series) - (n_series - 1) / 2) * step


def errorbar_series(ax, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray,
                    *, color, marker: str, label: str, filled: np.ndarray | None = None,
                    markersize: float = 5.0, zorder: float = 3):
    """Dots with CI error bars at finite means only; a NaN cell draws nothing.

    Points whose ``filled`` entry is False are drawn hollow. Error bars are drawn only where both
    CI bounds are finite. Returns the data :class:`~matplotlib.lines.Line2D` (gid ``label``).
    """
    ok = np.isfinite(mean)
    xs, ms, lo, hi = x[ok], mean[ok], low[ok], high[ok]
    ci = np.isfinite(lo) & np.isfinite(hi)
    if ci.any():
        yerr = np.vstack([ms[ci] - lo[ci], hi[ci] - ms[ci]])
        yerr = np.clip(yerr, 0, None)
        ax.errorbar(xs[ci], ms[ci], yerr=yerr, fmt="none", ecolor=color, elinewidth=1.2,
                    capsize=0, zorder=zorder - 0.5, gid=f"{label}:ci")
    face = np.full(xs.shape, True) if filled is None else np.asarray(filled, bool)[ok]
    (line,) = ax.plot(xs[face], ms[face], linestyle="none", marker=marker, color=color,
                      markersize=markersize, label=label, zorder=zorder)
    line.set_gid(label)
    if (~face).any():
        (hollow,) = ax.plot(xs[~face], ms[~face], linestyle="none", marker=marker, color=color,
                            markerfacecolor="white", markersize=markersize, zorder=zorder,
                            label="_nolegend_")
        hollow.set_gid(f"{label}:hollow")
    return line


def roi_axis(ax, rois: Sequence[str], xlabel: str = "ROI (stream / hierarchy order)") -> None:
    """ROI tick labels in the caller's order, rotated when there are many."""
    ax.set_xticks(np.arange(len(rois)))
    rotate = len(rois) > 6
    ax.set_xticklabels(list(rois), rotation=45 if rotate else 0,
                       ha="right" if rotate else "center", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(rois) - 0.4)
    ax.set_xlabel(xlabel)
    for x in np.arange(len(rois) - 1) + 0.5:
        ax.axvline(x, color="0.92", linewidth=0.8, zorder=0)


def save_figure(fig: Figure, stem: str | os.PathLike, dpi: int = 150) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.pdf`` deterministically and atomically.

    Each file is written to a temporary name in the destination directory and moved into place
    with :func:`os.replace`, so a failure leaves no partial file. Timestamps and the software tag
    are left out of the metadata, so the same figure gives byte-identical files.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    stem : path-like
        Destination without suffix; parent directories are created.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    (Path, Path)
        Paths of the PNG and the PDF.
    """
    stem = Path(stem)
    if stem.suffix in {".png", ".pdf"}:
        stem = stem.with_suffix("")
    if type(fig.canvas) is FigureCanvasBase:
        FigureCanvasAgg(fig)
    png = stem.parent / f"{stem.name}.png"
    pdf = stem.parent / f"{stem.name}.pdf"
    mode = _file_mode()
    # Under the style: artists created lazily at draw time (ticks) must match the layout.
    with mpl.rc_context(fname=str(STYLE)), atomic_path(png, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
        os.chmod(tmp, mode)
    with mpl.rc_context(fname=str(STYLE)), atomic_path(pdf, ".pdf") as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "ModDate": None})
        os.chmod(tmp, mode)
    return png, pdf


def _file_mode() -> int:
    """Permissions of a normally created file (0o666 minus the umask); temp files are 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
