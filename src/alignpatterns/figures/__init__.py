"""Figures for people: one function per figure kind, each reading tables and returning a Figure.

Figures read the workflow's tables (pandas DataFrames, DESIGN.md "Tables") and never recompute
alignment. Every function builds a :class:`matplotlib.figure.Figure` with an Agg canvas and leaves
matplotlib's global state (backend, rcParams) alone; :func:`save_figure` writes ``stem.png`` and
``stem.pdf`` deterministically and atomically.

Conventions: ROIs follow the caller's ``roi_order`` (stream/hierarchy order); models use the
Okabe–Ito colour-blind-safe palette with a distinct marker each; the brain (baseline, noise ceiling)
is black/grey; missing cells (NaN) draw nothing.
"""

from ._common import BRAIN_COLOR, MARKERS, OKABE_ITO, measure_label, save_figure
from .apa import plot_aps_per_roi, plot_pattern_profiles
from .brain import brain_pattern_matrix, plot_brain_pattern_matrix
from .conventional import plot_conventional_overview, plot_conventional_scores

__all__ = [
    "BRAIN_COLOR",
    "MARKERS",
    "OKABE_ITO",
    "brain_pattern_matrix",
    "measure_label",
    "plot_aps_per_roi",
    "plot_brain_pattern_matrix",
    "plot_conventional_overview",
    "plot_conventional_scores",
    "plot_pattern_profiles",
    "save_figure",
]
