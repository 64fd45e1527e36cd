"""Workflow entry points: one call per figure file, from result tables on disk.

The Snakemake figure rules call :func:`render` with the paths of the tables the figure reads; no
figure reads anything but result tables (and, for fsaverage surface maps, the dataset's per-vertex
ROI labels when given).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from alignpatterns import io
from alignpatterns.features.registry import load_registry, untrained_controls

from . import apa, brain, conventional, layers, surface
from ._common import palette_from_models, save_figure

__all__ = ["FIGURE_KINDS", "PER_MEASURE", "render", "primary_variant"]

#: Figure kinds → the tables each reads (the rule's inputs, by name).
FIGURE_KINDS: dict[str, tuple[str, ...]] = {
    "conventional": ("model_brain_summary",),
    "layers": ("model_brain", "model_brain_summary"),
    "brain_patterns": ("brain_brain", "ceilings"),
    "aps": ("apa", "apa_summary", "apa_nulls"),
    "profiles": ("brain_brain", "model_brain", "model_brain_summary", "ceilings"),
    "score_vs_aps": ("model_brain_summary", "apa_summary"),
    "confusion": ("apa_confusion",),
    "roi_map": ("apa_summary",),
    "trained_vs_untrained": ("apa_summary",),
}
#: Kinds drawn once per measure (the others once per run).
PER_MEASURE = tuple(k for k in FIGURE_KINDS if k != "trained_vs_untrained")


def primary_variant(apa_cfg: Mapping) -> str:
    """The APA variant figures show: ``offdiag`` when configured (the primary), else the first."""
    variants = list(apa_cfg.get("variants", ["offdiag"]))
    return "offdiag" if "offdiag" in variants else variants[0]


def render(kind: str, cfg: Mapping, tables: Mapping[str, str], png_path: str | Path, *,
           measure: str | None = None,
           streams: Mapping[str, Sequence[str]] | None = None) -> tuple[Path, Path]:
    """Draw one figure from its tables and write ``<stem>.png`` and ``<stem>.pdf``.

    Parameters
    ----------
    kind : str
        One of :data:`FIGURE_KINDS`.
    cfg : mapping
        Resolved config (at least ``rois``, ``apa``, ``models``, ``measures``).
    tables : mapping
        Table name → Parquet path, for every table :data:`FIGURE_KINDS` lists for ``kind``.
    png_path : path-like
        The PNG to write (the PDF goes next to it).
    measure : str, optional
        The measure (every kind but ``trained_vs_untrained``).
    streams : mapping, optional
        stream → ROIs of the ROI set.

    Returns
    -------
    (Path, Path)
        The PNG and PDF written.
    """
    # fontTools logs every subsetting step at INFO when the PDF backend embeds fonts.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    if kind not in FIGURE_KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; expected one of {list(FIGURE_KINDS)}")
    missing = [t for t in FIGURE_KINDS[kind] if t not in tables]
    if missing:
        raise ValueError(f"figure {kind!r} needs the tables {missing}")
    t = {name: io.read_table(tables[name], name) for name in FIGURE_KINDS[kind]}
    rois = list(cfg["rois"])
    a = cfg.get("apa", {})
    variant = primary_variant(a)
    match = list(a.get("match", ["pearson"]))[0]
    min_ceiling = float(a.get("min_ceiling", 0.1))
    palette = palette_from_models(cfg.get("models", []))
    streams = {k: list(v) for k, v in (streams or {}).items()}
    if kind == "conventional":
        best = ("not distinguishable from best (paper rule)" if a.get("preset") == "paper"
                else "not distinguishable from best")
        fig = conventional.plot_conventional_benchmark(
            t["model_brain_summary"], rois, measure, palette=palette, streams=streams,
            best_label=best)
    elif kind == "layers":
        fig = layers.plot_layer_curves(t["model_brain"], rois, measure,
                                       summary=t["model_brain_summary"], palette=palette)
    elif kind == "brain_patterns":
        fig = brain.plot_brain_patterns(t["brain_brain"], rois, measure,
                                        a.get("variants", ["full", "offdiag"]),
                                        ceilings=t["ceilings"], min_ceiling=min_ceiling,
                                        streams=streams)
    elif kind == "aps":
        fig = apa.plot_apa_overview(t["apa"], t["apa_summary"], rois, measure, variant,
                                    match=match, palette=palette, streams=streams,
                                    nulls=t["apa_nulls"])
    elif kind == "profiles":
        fig = apa.plot_profile_panels(t["brain_brain"], t["model_brain"],
                                      t["model_brain_summary"], rois, measure, variant=variant,
                                      ceilings=t["ceilings"], min_ceiling=min_ceiling,
                                      palette=palette)
    elif kind == "score_vs_aps":
        fig = apa.plot_score_vs_aps(t["model_brain_summary"], t["apa_summary"], measure,
                                    variant, match=match, palette=palette)
    elif kind == "confusion":
        fig = apa.plot_confusion(t["apa_confusion"], rois, measure, variant, match=match,
                                 streams=streams)
    elif kind == "roi_map":
        values = surface.roi_values(t["apa_summary"], measure, variant, match=match)
        fig = surface.plot_roi_map(values, rois, streams=streams,
                                   label=f"APS ({match}), {variant}",
                                   title=f"APS per ROI · {measure} · {variant} "
                                   "(ROI-level map: no fsaverage labels)")
    else:  # trained_vs_untrained
        controls = untrained_controls(cfg.get("models", []), load_registry())
        fig = apa.plot_trained_vs_untrained(t["apa_summary"], list(cfg["measures"]), variant,
                                            match=match, palette=palette, controls=controls)
    return save_figure(fig, Path(png_path).with_suffix(""))
