"""The anatomical null profile (SPEC.md §4, N2): parcel adjacency tables, adjacency from a mesh,
0.9 ** path length, its APS in ``apa_nulls`` and how the workflow finds an atlas's adjacency."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pytest

from alignpatterns.data.safe_pickle import DataFormatError
from alignpatterns.patterns import apa
from alignpatterns.patterns.adjacency import (
    adjacency_from_mesh,
    adjacency_profiles,
    atlas_adjacency_file,
    read_adjacency,
    write_adjacency,
)
from tests.test_apa import SUBJECTS, _bb, _brute_force_aps


def _bfs_lengths(adj: np.ndarray) -> np.ndarray:
    """All-pairs path lengths by breadth-first search (inf where unreachable)."""
    n = adj.shape[0]
    out = np.full((n, n), np.inf)
    for a in range(n):
        out[a, a] = 0
        todo = deque([a])
        while todo:
            u = todo.popleft()
            for v in np.flatnonzero(adj[u]):
                if np.isinf(out[a, v]):
                    out[a, v] = out[a, u] + 1
                    todo.append(v)
    return out


def test_profiles_are_decay_to_the_path_length_and_zero_without_a_path():
    rng = np.random.default_rng(0)
    adj = np.triu(rng.random((9, 9)) < 0.25, k=1)
    adj = adj | adj.T
    adj[7, :] = adj[:, 7] = False  # an isolated parcel
    d = _bfs_lengths(adj)
    expect = np.where(np.isfinite(d), 0.9 ** np.where(np.isfinite(d), d, 0), 0.0)
    np.testing.assert_allclose(adjacency_profiles(adj), expect, rtol=1e-15)
    assert adjacency_profiles(adj)[7, 7] == 1 and (np.delete(adjacency_profiles(adj)[7], 7) == 0).all()


def test_adjacency_from_a_triangle_mesh():
    """A 2 × 4 vertex strip, labels A A B C / A B C 0: A–B, B–C adjacent, A–C only via B."""
    labels = np.array([1, 1, 2, 3, 1, 2, 3, 0])
    faces = np.array([[0, 4, 1], [1, 4, 5], [1, 5, 2], [2, 5, 6], [2, 6, 3], [3, 6, 7]])
    adj, rois = adjacency_from_mesh(labels, faces, {1: "A", 2: "B", 3: "C"})
    assert rois == ["A", "B", "C"]
    np.testing.assert_array_equal(adj, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"\(n_faces, 3\) indices into 8 vertices"):
        adjacency_from_mesh(labels, faces + 5, {1: "A"})


def test_read_adjacency_round_trip_and_bad_tables(tmp_path):
    rois = ["V1", "V2", "V3", "V4"]
    adj = np.zeros((4, 4), dtype=bool)
    adj[0, 1] = adj[1, 0] = adj[1, 2] = adj[2, 1] = True
    path = tmp_path / "adj.tsv"
    write_adjacency(path, adj, rois)
    np.testing.assert_array_equal(read_adjacency(path, rois), adj)
    # ROIs the run does not use are ignored; order follows the run's ROIs
    np.testing.assert_array_equal(read_adjacency(path, ["V3", "V2", "MT"]),
                                  [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    csv = tmp_path / "adj.csv"
    csv.write_text("roi_b,roi_a\nV4,V3\n")
    assert read_adjacency(csv, rois)[2, 3] and read_adjacency(csv, rois)[3, 2]

    with pytest.raises(DataFormatError, match="not found"):
        read_adjacency(tmp_path / "none.tsv", rois)
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nV1\tV2\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv: expected columns \['roi_a', 'roi_b'\], "
                                              r"found \['a', 'b'\]"):
        read_adjacency(bad, rois)
    bad.write_text("roi_a\troi_b\nV1\tV1\n")
    with pytest.raises(DataFormatError, match="cannot be adjacent to itself; found 'V1'"):
        read_adjacency(bad, rois)
    with pytest.raises(DataFormatError, match="no adjacent pair between two of the run's ROIs"):
        read_adjacency(path, ["V1", "MT"])


def test_adjacency_null_is_scored_like_a_candidate():
    """On a brain whose true pattern is 0.9 ** |i − j| along a chain, the adjacency null
    reproduces every ROI's profile; its APS equals a brute-force double-exclusion loop, and the
    other nulls are unchanged by adding it."""
    rng = np.random.default_rng(3)
    rois = [f"R{i}" for i in range(7)]
    chain = np.eye(7, k=1, dtype=bool) | np.eye(7, k=-1, dtype=bool)
    P = 0.9 ** np.abs(np.subtract.outer(np.arange(7), np.arange(7))).astype(float)
    A = P[None, None] + 0.02 * rng.standard_normal((6, 6, 7, 7))
    bb = _bb(A, rois=rois)
    with_adj = apa.generic_null_rows(bb, SUBJECTS, rois, "m", variants=["full", "offdiag"],
                                     adjacency=chain)
    without = apa.generic_null_rows(bb, SUBJECTS, rois, "m", variants=["full", "offdiag"])
    anat = with_adj[with_adj["null"] == "adjacency"].set_index(["variant", "roi"])
    assert len(anat) == 14
    assert (anat["aps_mean"] > 0.95).all()
    r = 2
    cols = [c for c in range(7) if c != r]
    expect = _brute_force_aps(A, r, cols, lambda s, s2, ref: P[r])
    assert anat.loc[("offdiag", "R2"), "aps_mean"] == pytest.approx(expect, abs=1e-12)
    expect_full = _brute_force_aps(A, r, list(range(7)), lambda s, s2, ref: P[r])
    assert anat.loc[("full", "R2"), "aps_mean"] == pytest.approx(expect_full, abs=1e-12)
    rest = with_adj[with_adj["null"] != "adjacency"].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, without.reset_index(drop=True))
    with pytest.raises(ValueError, match=r"adjacency must be \(7, 7\)"):
        apa.generic_null_rows(bb, SUBJECTS, rois, "m", adjacency=chain[:5, :5])


def test_a_dropped_roi_still_links_its_neighbours():
    """Listwise dropping an ROI keeps path lengths of the whole graph: with R1 missing in one
    subject, R0 and R2 stay two steps apart (0.81), not disconnected."""
    rng = np.random.default_rng(5)
    rois = ["R0", "R1", "R2", "R3"]
    chain = np.eye(4, k=1, dtype=bool) | np.eye(4, k=-1, dtype=bool)
    A = rng.standard_normal((6, 6, 4, 4))
    bb = _bb(A, rois=rois)
    bb = bb[~((bb["source_roi"] == "R1") & (bb["source_subject"] == "03"))
            & ~((bb["target_roi"] == "R1") & (bb["target_subject"] == "03"))]
    out = apa.generic_null_rows(bb, SUBJECTS, rois, "m", variants=["full"], adjacency=chain)
    anat = out[out["null"] == "adjacency"].set_index("roi")
    assert set(anat.index) == {"R0", "R2", "R3"}
    keep = [0, 2, 3]
    Ak = A[:, :, keep][:, :, :, keep]
    prof = np.array([1.0, 0.81, 0.729])
    expect = _brute_force_aps(Ak, 0, [0, 1, 2], lambda s, s2, ref: prof)
    assert anat.loc["R0", "aps_mean"] == pytest.approx(expect, abs=1e-12)


def test_atlas_adjacency_file_name(tmp_path):
    npy = tmp_path / "atlas-glasser_space-fsLR32k_dseg.npy"
    assert atlas_adjacency_file(npy) == tmp_path / "atlas-glasser_space-fsLR32k_adjacency.tsv"


def test_the_synthetic_atlas_ships_its_adjacency_and_the_workflow_reads_it(tiny_copy, tiny_cfg,
                                                                          tmp_path):
    """``apa.adjacency: atlas`` finds the synthetic atlas's chain (ROIs lie one after another
    along the vertex axis, as the label file shows); null turns the null off; a path is read;
    a missing path names the file."""
    from alignpatterns.config import resolve_config
    from alignpatterns.data.bmd import BMDLayout
    from alignpatterns.pipeline import roi_adjacency

    root, truth = tiny_copy
    tiny_cfg["dataset"]["root"] = str(root)
    cfg = resolve_config(tiny_cfg)
    rois = cfg["rois"]
    layout = BMDLayout(root, atlas="synthetic")
    labels = np.load(layout.atlas_files("synthetic")[0])
    order = [int(k) for k in dict.fromkeys(labels[labels > 0].tolist())]  # along the vertices
    names = {k + 1: r for k, r in enumerate(truth["rois"])}
    walk = [names[k] for k in order]
    expect = np.zeros((len(rois), len(rois)), dtype=bool)
    for a, b in zip(walk[:-1], walk[1:], strict=True):
        expect[rois.index(a), rois.index(b)] = expect[rois.index(b), rois.index(a)] = True
    np.testing.assert_array_equal(roi_adjacency(cfg), expect)

    cfg["apa"]["adjacency"] = None
    assert roi_adjacency(cfg) is None
    own = tmp_path / "own.tsv"
    own.write_text(f"roi_a\troi_b\n{rois[0]}\t{rois[-1]}\n")
    cfg["apa"]["adjacency"] = str(own)
    assert roi_adjacency(cfg)[0, -1] and roi_adjacency(cfg).sum() == 2
    cfg["apa"]["adjacency"] = str(tmp_path / "missing.tsv")
    with pytest.raises(DataFormatError, match="missing.tsv: ROI adjacency table not found"):
        roi_adjacency(cfg)
    # an atlas without an adjacency table: no anatomical null
    cfg["apa"]["adjacency"] = "atlas"
    atlas_adjacency_file(layout.atlas_files("synthetic")[0]).unlink()
    assert roi_adjacency(cfg) is None


@pytest.mark.workflow
def test_the_workflow_writes_the_adjacency_null(tiny_run):
    from alignpatterns.io import read_table

    nulls = read_table(tiny_run / "results" / "tables" / "apa_nulls.parquet", "apa_nulls")
    anat = nulls[nulls["null"] == "adjacency"]
    assert set(nulls["null"]) == {"target-reliability", "grand-mean", "adjacency"}
    assert len(anat) == len(nulls) // 3 and anat["aps_mean"].notna().any()
