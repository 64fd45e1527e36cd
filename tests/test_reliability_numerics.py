"""Numerical edge cases give sensible results or clear errors (docs/bad_inputs.md).

Constant vertices, rank-deficient and dead feature layers, a single subject, two ROIs and fewer
stimuli than folds, on small constructed data with known answers.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest

from alignpatterns.config import ConfigError, check_folds, load_config, resolve_config
from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.measures import lp_oof_predict, lp_predict
from alignpatterns.measures.ceilings import ncsnr
from alignpatterns.patterns import apa
from alignpatterns.patterns.alignment import LPOptions, brain_brain_rows, model_brain_rows
from tests.conftest import REPO

N_TRAIN, N_TEST, REPS = 24, 12, 3
LP = LPOptions(alphas=(0.1, 10.0, 1000.0), inner_cv=3, outer_cv=3, n_components=None)
MEASURES = ["rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased",
            "lp-ridge-pearson"]


def _features(rng, p=12):
    Z = rng.standard_normal((N_TRAIN + N_TEST, p))
    return Z[:N_TRAIN], Z[N_TRAIN:]


def _roi(Z_train, Z_test, rng, v=15, constant=0, constant_value=3.0) -> ROIData:
    """An ROI driven linearly by the features, plus ``constant`` vertices that never vary."""
    W = rng.standard_normal((Z_train.shape[1], v))
    reps = []
    for Z in (Z_train, Z_test):
        r = (Z @ W)[:, None, :] + 0.5 * rng.standard_normal((len(Z), REPS, v))
        reps.append(np.concatenate([r, np.full((len(Z), REPS, constant), constant_value)], 2))
    tr, te = reps
    n = v + constant
    return ROIData(vertices=np.arange(n), train_reps=tr, test_reps=te, train=tr.mean(1),
                   test=te.mean(1), ncsnr_train=np.ones(n), ncsnr_test=np.ones(n),
                   n_reps_test=float(REPS))


def _subject(rois: dict[str, ROIData], name="01") -> SubjectData:
    return SubjectData(subject=name, train_ids=[f"vid{i:04d}" for i in range(1, N_TRAIN + 1)],
                       test_ids=[f"vid{i:04d}" for i in range(N_TRAIN + 1, N_TRAIN + N_TEST + 1)],
                       rois=rois)


def _scores(features, sd, rois) -> pd.DataFrame:
    return pd.DataFrame(model_brain_rows(features, sd, rois, MEASURES, LP)).set_index(
        ["measure", "layer", "roi", "split"])["score"].sort_index()


def _without_constant(d: ROIData, n: int) -> ROIData:
    return ROIData(vertices=d.vertices[:n], train_reps=d.train_reps[..., :n],
                   test_reps=d.test_reps[..., :n], train=d.train[:, :n], test=d.test[:, :n],
                   ncsnr_train=d.ncsnr_train[:n], ncsnr_test=d.ncsnr_test[:n],
                   n_reps_test=d.n_reps_test)


# --- constant vertices -----------------------------------------------------------------------

def test_constant_vertices_leave_lp_crossnobis_and_cka_unchanged():
    """A vertex that never varies carries no stimulus information: LP leaves it out of the mean
    over vertices (its r is undefined), the crossnobis RDM gets zero differences from it and the
    debiased CKA is invariant to the constant it adds to every Gram entry."""
    rng = np.random.default_rng(0)
    Ztr, Zte = _features(rng)
    with_const = _roi(Ztr, Zte, rng, v=15, constant=5)
    sd_c = _subject({"A": with_const})
    sd = _subject({"A": _without_constant(with_const, 15)})
    feats = {"L0": (Ztr, Zte)}
    a, b = _scores(feats, sd_c, ["A"]), _scores(feats, sd, ["A"])
    assert np.isfinite(a).all()
    for m in ("lp-ridge-pearson", "rsa-crossnobis-spearman", "cka-linear-debiased"):
        np.testing.assert_allclose(a[m], b[m], rtol=1e-9, atol=1e-12, err_msg=m)
    assert (a["lp-ridge-pearson"] > 0.5).all()  # the signal is still found


def test_all_constant_roi():
    """LP, CKA and crossnobis scores of an ROI with no variance are undefined (NaN); the
    correlation distance of its stimulus patterns is undefined too, an error naming the cell."""
    rng = np.random.default_rng(1)
    Ztr, Zte = _features(rng)
    sd = _subject({"A": _roi(Ztr, Zte, rng), "B": _roi(Ztr, Zte, rng, v=0, constant=6)})
    with pytest.warns(RuntimeWarning, match="CKA is undefined"):  # the NaN is explained
        rows = model_brain_rows({"L0": (Ztr, Zte)}, sd, ["A", "B"], MEASURES[:1] + MEASURES[2:],
                                LP)
    s = pd.DataFrame(rows).set_index(["measure", "roi", "split"])["score"]
    assert np.isfinite(s.xs("A", level="roi")).all()
    assert s.xs("B", level="roi").isna().all()  # carried as NaN, not an error
    with pytest.raises(ValueError, match=r"sub-01 ROI 'B', measure rsa-correlation-spearman: "
                                         r"X: 24 stimulus pattern\(s\) are constant across units"):
        model_brain_rows({"L0": (Ztr, Zte)}, sd, ["A", "B"], ["rsa-correlation-spearman"], LP)


def test_constant_vertex_has_nan_ncsnr_so_selection_drops_it():
    rng = np.random.default_rng(2)
    betas = rng.standard_normal((10, 3, 4))
    betas[:, :, 1] = 2.0
    with pytest.warns(RuntimeWarning):
        snr, ceil = ncsnr(betas)
    assert np.isnan(snr[1]) and np.isnan(ceil[1])
    assert np.isfinite(snr[[0, 2, 3]]).all()
    assert not (snr > 0.2)[1]  # the reliability threshold keeps only snr > threshold


# --- rank-deficient and dead feature layers ----------------------------------------------------

def test_rank_deficient_features():
    rng = np.random.default_rng(3)
    Ztr, Zte = _features(rng, p=3)
    M = rng.standard_normal((3, 40))  # 40 units of rank 3
    Xtr, Xte = Ztr @ M, Zte @ M
    sd = _subject({"A": _roi(Ztr, Zte, rng)})
    feats = {"low_rank": (Xtr, Xte), "duplicated": (np.hstack([Xtr, Xtr]), np.hstack([Xte, Xte]))}
    s = _scores(feats, sd, ["A"])
    assert np.isfinite(s).all()
    # duplicating every unit changes no RDM rank and no CKA
    for m in ("rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased"):
        np.testing.assert_allclose(s[m, "duplicated"], s[m, "low_rank"], rtol=1e-9, err_msg=m)
    # PCA beyond the rank adds all-zero components, which ridge gives zero weight
    Y = sd.rois["A"].train
    p5 = lp_predict(Xtr, Y, Xte, LP.alphas, inner_cv=3, n_components=5)
    p3 = lp_predict(Xtr, Y, Xte, LP.alphas, inner_cv=3, n_components=3)
    np.testing.assert_allclose(p5, p3, atol=1e-8)


def test_dead_layer():
    """An all-zero layer has no defined score (NaN) under LP, CKA and crossnobis RSA; under the
    correlation distance it is an error naming the layer (remove it from the registry)."""
    rng = np.random.default_rng(4)
    Ztr, Zte = _features(rng)
    sd = _subject({"A": _roi(Ztr, Zte, rng)})
    feats = {"L0": (Ztr, Zte), "dead": (np.zeros_like(Ztr), np.zeros_like(Zte))}
    defined = MEASURES[:1] + MEASURES[2:]
    with pytest.warns(RuntimeWarning, match="CKA is undefined"):  # the NaN is explained
        rows = model_brain_rows(feats, sd, ["A"], defined, LP)
    s = pd.DataFrame(rows).set_index(["measure", "layer", "roi", "split"])["score"]
    assert s.xs("dead", level="layer").isna().all()
    alone = pd.DataFrame(model_brain_rows({"L0": feats["L0"]}, sd, ["A"], defined, LP))
    np.testing.assert_allclose(s.xs("L0", level="layer"), alone["score"])
    with pytest.raises(ValueError, match="layer 'dead', measure rsa-correlation-spearman"):
        model_brain_rows(feats, sd, ["A"], ["rsa-correlation-spearman"], LP)


# --- a single subject ---------------------------------------------------------------------------

def _tiny_cfg(**top) -> dict:
    cfg = load_config(REPO / "tests" / "config" / "tiny.yaml")
    cfg.update(copy.deepcopy(top))
    return cfg


def test_single_subject():
    rng = np.random.default_rng(5)
    Ztr, Zte = _features(rng)
    sd = _subject({"A": _roi(Ztr, Zte, rng), "B": _roi(Ztr, Zte, rng)})
    # conventional scores are defined for one subject ...
    assert np.isfinite(_scores({"L0": (Ztr, Zte)}, sd, ["A", "B"])).all()
    # ... brain-brain has no other subject to compare with ...
    assert brain_brain_rows({"01": sd}, "01", ["A", "B"], "cka-linear-debiased", LP) == []
    # ... and APA needs four: a clear error in the library and before any job runs
    with pytest.raises(ValueError, match="APA needs ≥ 4 subjects"):
        apa.run_apa(pd.DataFrame(columns=["measure"]), pd.DataFrame(columns=["measure"]),
                    ["01"], ["A", "B", "C"], "m")
    # ... as do ROI identification and the generic nulls, which would otherwise report an
    # accuracy of 0 (p = 1) and empty rows instead of "undefined"
    with pytest.raises(ValueError, match="ROI identification needs ≥ 4 subjects"):
        apa.roi_identification(pd.DataFrame(columns=["measure"]),
                               pd.DataFrame(columns=["measure"]), ["01", "02", "03"],
                               ["A", "B", "C"], "m")
    with pytest.raises(ValueError, match="the generic nulls need ≥ 4 subjects"):
        apa.generic_null_rows(pd.DataFrame(columns=["measure"]), ["01", "02", "03"],
                              ["A", "B", "C"], "m")
    with pytest.raises(ConfigError, match=r"config key subjects: APA needs ≥ 4 subjects .*"
                                          r"found 1 \(\['01'\]\)"):
        resolve_config(_tiny_cfg(subjects=["01"]))


# --- two ROIs -----------------------------------------------------------------------------------

def _bb(A, subjects, rois):
    rows = []
    for (i, s1), (j, s2) in itertools.product(enumerate(subjects), repeat=2):
        if i != j:
            for (a, r1), (b, r2) in itertools.product(enumerate(rois), repeat=2):
                rows.append({"measure": "m", "source_subject": s1, "source_roi": r1,
                             "target_subject": s2, "target_roi": r2, "split": "test",
                             "score": A[i, j, a, b], "n_source_dims": 5, "n_vertices": 5})
    return pd.DataFrame(rows)


def _mb(arr, subjects, rois):
    rows = []
    for split in ("train", "test"):
        for si, ri in itertools.product(range(len(subjects)), range(len(rois))):
            rows.append({"measure": "m", "model": "model", "weights": "random", "layer": "L0",
                         "layer_index": 0, "subject": subjects[si], "roi": rois[ri],
                         "split": split, "score": arr[si, ri], "n_source_dims": 3,
                         "n_vertices": 5})
    return pd.DataFrame(rows)


def test_two_rois():
    subjects = [f"{i:02d}" for i in range(1, 7)]
    rng = np.random.default_rng(6)
    A = np.eye(2) + 0.1 * rng.standard_normal((6, 6, 2, 2))
    rows, summary = apa.run_apa(_bb(A, subjects, ["A", "B"]),
                                _mb(rng.uniform(size=(6, 2)), subjects, ["A", "B"]),
                                subjects, ["A", "B"], "m", variants=["full", "offdiag"])
    # a profile over two (or one) target ROIs has no defined correlation: APS is NaN and the
    # verdict is NA, never a number
    assert len(summary) == 2 * 2 * 2  # variants x candidates (model, brain) x ROIs
    assert summary["aps_mean"].isna().all() and rows["aps"].isna().all()
    assert summary["passes"].isna().all()
    # so the config asks for enough ROIs before any job runs
    with pytest.raises(ConfigError, match=r"config key rois: APA variants \['full', 'offdiag'\] "
                                          r"need ≥ 4 ROIs .* found 2 \(\['V1', 'V2'\]\)"):
        resolve_config(_tiny_cfg(rois=["V1", "V2"]))
    cfg = _tiny_cfg(rois=["V1", "V2", "V3"])
    cfg["apa"] = {**cfg["apa"], "variants": ["full"]}
    assert resolve_config(cfg)["rois"] == ["V1", "V2", "V3"]


# --- fewer stimuli than folds -------------------------------------------------------------------

def test_fewer_stimuli_than_folds():
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="n_splits=5 greater than the number of samples 4"):
        lp_oof_predict(X, Y, (1.0,), outer_cv=5, inner_cv=2)
    with pytest.raises(ValueError, match="n_splits=5 greater than the number of samples 4"):
        lp_predict(X, Y, X, (1.0,), inner_cv=5)
    with pytest.raises(ConfigError, match="config key lp.outer_folds: 5 folds need ≥ 5 training "
                                          "stimuli; the dataset has 4"):
        check_folds({"outer_folds": 5, "inner_folds": 2}, 4)
    # 10 stimuli in 3 outer folds: 6 left for fitting inside the largest fold
    with pytest.raises(ConfigError, match="config key lp.inner_folds: 7 folds .* leave 6"):
        check_folds({"outer_folds": 3, "inner_folds": 7}, 10)
    check_folds({"outer_folds": 3, "inner_folds": 6}, 10)
    lp_oof_predict(rng.standard_normal((10, 3)), rng.standard_normal((10, 2)), (1.0,),
                   outer_cv=3, inner_cv=6)  # the boundary case runs
    cfg = _tiny_cfg()
    cfg["lp"] = {**cfg["lp"], "outer_folds": 31}
    with pytest.raises(ConfigError, match="lp.outer_folds: 31 folds need ≥ 31 training stimuli; "
                                          "the dataset has 30"):
        resolve_config(cfg)


def test_fewer_stimuli_than_folds_in_a_real_dataset_stops_check_data(tiny_copy, tmp_path):
    """For a dataset on disk the count is known when check_data reads it: the error comes
    before any table is written."""
    from alignpatterns import pipeline

    root, _ = tiny_copy
    cfg = _tiny_cfg()
    cfg["dataset"] = {**cfg["dataset"], "root": str(root), "synthesize": None}
    cfg["models"] = [m for m in cfg["models"] if m["name"] != "oracle"]
    cfg["rois"] = ["V1", "V2", "V3", "V4"]
    cfg["lp"] = {**cfg["lp"], "outer_folds": 3, "inner_folds": 25}
    cfg = resolve_config(cfg)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="config key lp.inner_folds: 25 folds need ≥ 25 stimuli "
                                          "inside an outer fold; 30 training stimuli in 3 "
                                          "outer folds leave 20"):
        pipeline.check_data(cfg, str(out / "t.parquet"), str(out / "d.json"))
    assert not out.exists() or list(out.iterdir()) == []
