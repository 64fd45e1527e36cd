"""Figures for people: one function per figure kind, each reading tables and returning a Figure.

Figures read the workflow's tables (pandas DataFrames, DESIGN.md "Tables") and never recompute
alignment. Every function builds a :class:`matplotlib.figure.Figure` with an Agg canvas under the
project style (``alignpatterns.mplstyle``, applied with ``rc_context`` so matplotlib's global
state is left alone); :func:`save_figure` writes ``stem.png`` and ``stem.pdf`` deterministically
and atomically; :mod:`.render` holds the workflow's entry point.

Conventions: ROIs follow the caller's ``roi_order`` (stream/hierarchy order) and are grouped by
stream where streams are given; models take colour and marker from one palette
(:func:`palette_from_models` of the config's models, Okabe–Ito colour-blind-safe colours), so a
model looks the same in every figure; the brain (baseline, noise ceiling) is black/grey; missing
cells (NaN) draw nothing.
"""

from ._common import (
    BRAIN_COLOR,
    DOUBLE_COLUMN,
    MARKERS,
    OKABE_ITO,
    SINGLE_COLUMN,
    STYLE,
    measure_label,
    model_palette,
    palette_from_models,
    save_figure,
)
from .apa import (
    plot_apa_overview,
    plot_aps_per_roi,
    plot_confusion,
    plot_pattern_profiles,
    plot_profile_panels,
    plot_score_vs_aps,
    plot_trained_vs_untrained,
)
from .brain import (
    brain_pattern_matrix,
    matrix_stability,
    plot_brain_pattern_matrix,
    plot_brain_patterns,
    subject_matrices,
)
from .conventional import (
    plot_conventional_benchmark,
    plot_conventional_overview,
    plot_conventional_scores,
)
from .layers import layer_curves, plot_layer_curves
from .surface import plot_roi_map, plot_surface_map, roi_values

__all__ = [
    "BRAIN_COLOR",
    "DOUBLE_COLUMN",
    "MARKERS",
    "OKABE_ITO",
    "SINGLE_COLUMN",
    "STYLE",
    "brain_pattern_matrix",
    "layer_curves",
    "matrix_stability",
    "measure_label",
    "model_palette",
    "palette_from_models",
    "plot_apa_overview",
    "plot_aps_per_roi",
    "plot_brain_pattern_matrix",
    "plot_brain_patterns",
    "plot_confusion",
    "plot_conventional_benchmark",
    "plot_conventional_overview",
    "plot_conventional_scores",
    "plot_layer_curves",
    "plot_pattern_profiles",
    "plot_profile_panels",
    "plot_roi_map",
    "plot_score_vs_aps",
    "plot_surface_map",
    "plot_trained_vs_untrained",
    "roi_values",
    "save_figure",
    "subject_matrices",
]
