"""Parcel adjacency and the anatomical null profile of APA (SPEC.md §4, nulls N2).

Neighbouring cortical areas tend to be similar, so a candidate whose profile for ROI r only says
"r resembles the ROIs next to it" is not yet a model of r. The anatomical null profile of r is
0.9 ** (path length from r to r′) on the parcel adjacency graph (1 on the diagonal, 0 where no
path exists).

An adjacency is known when a table of adjacent ROI pairs is given (``apa.adjacency``), or when
the atlas ships one beside its label files (``atlas-<name>_space-<space>_adjacency.tsv``; the
synthetic dataset writes its own). :func:`adjacency_from_mesh` derives the table from per-vertex
labels and a surface mesh (e.g. the fsLR32k midthickness triangles).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from alignpatterns.data.safe_pickle import DataFormatError

#: Decay per step on the adjacency graph (SPEC.md §4).
DECAY = 0.9
COLUMNS = ("roi_a", "roi_b")


def read_adjacency(path: str | os.PathLike, rois: Sequence[str]) -> np.ndarray:
    """Symmetric boolean adjacency of ``rois`` from a table of adjacent pairs.

    Parameters
    ----------
    path : path-like
        Tab- (``.tsv``) or comma-separated (``.csv``) table with columns ``roi_a`` and
        ``roi_b``, one adjacent pair per row (order within a pair does not matter). Pairs with
        an ROI outside ``rois`` are ignored (the atlas may hold more parcels than a run uses).
    rois : sequence of str, length R

    Returns
    -------
    ndarray, bool, shape (R, R)
        False on the diagonal.

    Raises
    ------
    DataFormatError
        Missing file, missing columns, a pair of an ROI with itself, or no pair between two of
        ``rois``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: ROI adjacency table not found (apa.adjacency)")
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: expected a table with columns roi_a, roi_b; "
                              f"could not parse it ({err})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataFormatError(f"{path}: expected columns {list(COLUMNS)}, found "
                              f"{list(table.columns)}")
    table = table.dropna(subset=list(COLUMNS))
    same = table[table["roi_a"] == table["roi_b"]]
    if len(same):
        raise DataFormatError(f"{path}: an ROI cannot be adjacent to itself; found "
                              f"{same['roi_a'].iloc[0]!r} paired with itself")
    index = {r: i for i, r in enumerate(rois)}
    adj = np.zeros((len(rois), len(rois)), dtype=bool)
    for a, b in zip(table["roi_a"], table["roi_b"], strict=True):
        if a in index and b in index:
            adj[index[a], index[b]] = adj[index[b], index[a]] = True
    if not adj.any():
        raise DataFormatError(f"{path}: no adjacent pair between two of the run's ROIs "
                              f"({', '.join(list(rois)[:5])}{', ...' if len(rois) > 5 else ''})")
    return adj


def write_adjacency(path: str | os.PathLike, adjacency: np.ndarray, rois: Sequence[str]) -> None:
    """Write the pairs of a boolean adjacency (each once, i < j) as a tab-separated table."""
    i, j = np.nonzero(np.triu(adjacency, k=1))
    rois = list(rois)
    pd.DataFrame({"roi_a": [rois[k] for k in i], "roi_b": [rois[k] for k in j]}).to_csv(
        path, sep="\t", index=False)


def adjacency_from_mesh(labels: np.ndarray, faces: np.ndarray, names: dict[int, str]
                        ) -> tuple[np.ndarray, list[str]]:
    """Parcel adjacency from per-vertex labels on a triangle mesh.

    Two parcels are adjacent when a mesh edge joins a vertex of one to a vertex of the other.

    Parameters
    ----------
    labels : ndarray, int, shape (n_vertices,)
        Parcel label per vertex; labels absent from ``names`` (e.g. 0, the medial wall) are
        ignored.
    faces : ndarray, int, shape (n_faces, 3)
        Vertex indices of each triangle.
    names : dict of int to str
        Label → ROI name.

    Returns
    -------
    adjacency : ndarray, bool, shape (R, R)
    rois : list of str, length R
        ROI names in label order.
    """
    labels = np.asarray(labels)
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size and faces.max() >= labels.size:
        raise ValueError(f"faces must be (n_faces, 3) indices into {labels.size} vertices, got "
                         f"shape {faces.shape}" + (f" with max {faces.max()}" if faces.size else ""))
    keys = sorted(names)
    pos = {k: i for i, k in enumerate(keys)}
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    la, lb = labels[edges[:, 0]], labels[edges[:, 1]]
    keep = (la != lb) & np.isin(la, keys) & np.isin(lb, keys)
    adj = np.zeros((len(keys), len(keys)), dtype=bool)
    for a, b in set(zip(la[keep].tolist(), lb[keep].tolist(), strict=True)):
        adj[pos[a], pos[b]] = adj[pos[b], pos[a]] = True
    return adj, [names[k] for k in keys]


def adjacency_profiles(adjacency: np.ndarray, decay: float = DECAY) -> np.ndarray:
    """Anatomical null profiles: decay ** (shortest path length) between every two ROIs.

    Parameters
    ----------
    adjacency : ndarray, bool, shape (R, R)
    decay : float

    Returns
    -------
    ndarray, float64, shape (R, R)
        Row r is the profile standing in for ROI r: 1 on the diagonal, ``decay`` for neighbours,
        ``decay**2`` two steps away, ..., 0 without a path.
    """
    if not 0 < decay < 1:
        raise ValueError(f"decay must lie in (0, 1), got {decay}")
    adjacency = np.asarray(adjacency, dtype=bool)
    graph = coo_matrix(adjacency.astype(np.float64))
    dist = shortest_path(graph, method="D", directed=False, unweighted=True)
    return decay ** dist  # no path: inf length, decay ** inf = 0 (0 < decay < 1)


def atlas_adjacency_file(atlas_labels: str | os.PathLike) -> Path:
    """The adjacency table an atlas ships beside its label file ``atlas-…_dseg.npy``."""
    p = Path(atlas_labels)
    stem = p.name[:-len("_dseg.npy")] if p.name.endswith("_dseg.npy") else p.stem
    return p.with_name(f"{stem}_adjacency.tsv")
