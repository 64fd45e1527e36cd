"""The paper's data-level noise ceiling ``ceiling_loo_data`` (SPEC.md §3): each subject's ROI
against the vertex-wise mean of the other subjects, checked against scipy and the CKA formula."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from alignpatterns import io, pipeline
from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.data.prepared import save_subject
from alignpatterns.patterns import brain_avg as ba
from alignpatterns.patterns.alignment import LPOptions, brain_brain_rows
from tests.test_brain_avg import ROIS, _dataset
from tests.test_measures_cka import _direct_debiased

LP = LPOptions(alphas=(1.0, 10.0, 100.0), inner_cv=3, outer_cv=3, n_components=5)
MEASURES = ["rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased",
            "lp-ridge-pearson"]


def _all_vertices(subjects):
    """The same subjects, every ROI cut to the vertices that all of them kept (so the union
    mean is the plain mean over subjects)."""
    out = {}
    first = next(iter(subjects.values()))
    common = {r: first.rois[r].vertices for r in ROIS}
    for sd in subjects.values():
        for r in ROIS:
            common[r] = np.intersect1d(common[r], sd.rois[r].vertices)
    for s, sd in subjects.items():
        cells = {}
        for r, d in sd.rois.items():
            i = np.searchsorted(d.vertices, common[r])
            cells[r] = ROIData(vertices=common[r], train_reps=d.train_reps[..., i],
                               test_reps=d.test_reps[..., i], train=d.train[:, i],
                               test=d.test[:, i], ncsnr_train=d.ncsnr_train[i],
                               ncsnr_test=d.ncsnr_test[i], n_reps_test=d.n_reps_test)
        out[s] = SubjectData(s, sd.train_ids, sd.test_ids, cells)
    return out


def test_values_match_scipy_and_the_cka_formula():
    subs = _all_vertices(_dataset(4, seed=11))
    assert min(subs["01"].rois[r].vertices.size for r in ROIS) >= 3
    rows = pd.DataFrame(ba.loo_data_ceiling_rows(subs, ROIS, MEASURES[1:3], LP))
    assert len(rows) == 4 * 2 * len(ROIS)
    assert (rows["kind"] == "ceiling_loo_data").all() and (rows["split"] == "test").all()
    assert (rows["n_reps"] == 10).all()
    got = rows.set_index(["measure", "subject", "roi"])["value"]
    for s in subs:
        for r in ROIS:
            X = subs[s].rois[r].test
            M = np.mean([subs[o].rois[r].test for o in subs if o != s], axis=0)
            rho = spearmanr(pdist(X, "correlation"), pdist(M, "correlation"))[0]
            assert got["rsa-correlation-spearman", s, r] == pytest.approx(rho, abs=1e-10)
            cka = _direct_debiased(X - X.mean(0), M - M.mean(0))  # SPEC.md §2's formula
            assert got["cka-linear-debiased", s, r] == pytest.approx(cka, abs=1e-10)


@pytest.mark.parametrize("measure", MEASURES)
def test_equals_the_brain_brain_score_of_the_average_as_a_source_subject(measure):
    """The ceiling is the brain–brain test score (a second code path) with the average of the
    others entered as one more source subject."""
    subs = _dataset(5, seed=3)
    rows = pd.DataFrame(ba.loo_data_ceiling_rows(subs, ROIS, [measure], LP))
    for s in ("01", "04"):
        avg = ba.average_subjects([subs[o] for o in subs if o != s])
        bb = pd.DataFrame(brain_brain_rows({"avg": avg, s: subs[s]}, s, ROIS, measure, LP))
        bb = bb[(bb["split"] == "test") & (bb["source_subject"] == "avg")
                & (bb["source_roi"] == bb["target_roi"])].set_index("target_roi")["score"]
        mine = rows[rows["subject"] == s].set_index("roi")["value"]
        np.testing.assert_allclose(mine[ROIS], bb[ROIS], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "lp-ridge-pearson"])
def test_the_mean_of_others_beats_a_single_other_subject(measure):
    """Averaging S − 1 subjects removes repetition noise: on data whose subjects share the
    signal, the ceiling exceeds the mean same-ROI score of single source subjects (the
    brain–brain diagonal) in every ROI."""
    subs = _dataset(6, seed=8, noise=2.0)
    ceil = pd.DataFrame(ba.loo_data_ceiling_rows(subs, ROIS, [measure], LP))
    ceil = ceil.groupby("roi")["value"].mean()
    bb = pd.DataFrame([r for t in subs for r in brain_brain_rows(subs, t, ROIS, measure, LP)])
    bb = bb[(bb["split"] == "test") & (bb["source_roi"] == bb["target_roi"])
            & (bb["source_subject"] != bb["target_subject"])]
    single = bb.groupby("target_roi")["score"].mean()
    assert (ceil[ROIS] > single[ROIS] + 0.02).all(), pd.DataFrame({"loo": ceil, "pair": single})


def test_missing_cell_is_nan():
    subs = _dataset(4, seed=2)
    subs["03"].rois["B"] = None
    rows = pd.DataFrame(ba.loo_data_ceiling_rows(subs, ROIS, ["rsa-correlation-spearman"], LP))
    v = rows.set_index(["subject", "roi"])["value"]
    # sub-03 lacks B; every other subject's average needs sub-03 (an ROI missing in any
    # averaged subject is missing in the average)
    assert np.isnan(v[:, "B"]).all()
    assert np.isfinite(v.drop("B", level="roi")).all()


@pytest.mark.parametrize("space", ["fsLR32k", "MNI152"])
def test_pipeline_writes_the_rows_only_in_surface_spaces(tmp_path, caplog, space):
    subs = _dataset(4, seed=6)
    paths = []
    for s, sd in subs.items():
        paths.append(str(tmp_path / f"sub-{s}.npz"))
        save_subject(sd, paths[-1])
    info = tmp_path / "dataset.json"
    info.write_text(json.dumps({"lp_n_components": 5}))
    cfg = {"dataset": {"format": "bmd", "space": space, "version": "B",
                       "betas": "prepared_betas" if space == "fsLR32k" else "allvoxel"},
           "rois": ROIS, "measures": ["cka-linear-debiased", "lp-ridge-pearson"],
           "min_vertices": 3, "lp": {"alphas": [1, 10, 100], "inner_folds": 3,
                                     "outer_folds": 3},
           "apa": {"brain_avg_vertices": "union"}}
    out = tmp_path / "ceilings.parquet"
    with caplog.at_level(logging.INFO, logger="alignpatterns"):
        pipeline.ceilings(cfg, paths, str(out), str(info))
    table = io.read_table(out, "ceilings")
    loo = table[table["kind"] == "ceiling_loo_data"]
    assert {"lp_ceiling", "split_half"} <= set(table["kind"])
    if space == "MNI152":
        assert loo.empty and "ceiling_loo_data not computed" in caplog.text
    else:
        assert len(loo) == 4 * len(ROIS) * 2 and np.isfinite(loo["value"]).all()
