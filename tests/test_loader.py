"""The BMD loader on the synthetic dataset: structure, preparation rules and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from alignpatterns.config import resolve_config
from alignpatterns.data.bmd import BMDLayout, check_stimulus_ids, load_betas, prepare_subject
from alignpatterns.data.safe_pickle import DataFormatError
from alignpatterns.measures.ceilings import ncsnr


def _prep(root, truth, subject="01", **kw):
    kw.setdefault("reliability_threshold", 0.2)
    kw.setdefault("min_vertices", 5)
    return prepare_subject(BMDLayout(root), subject, truth["rois"], "synthetic", **kw)


def _edit_pickle(path, edit):
    """Load the pickle at ``path``, apply ``edit`` (returns the new object), write it back."""
    with open(path, "rb") as f:
        obj = pickle.load(f)
    new = edit(obj)
    with open(path, "wb") as f:
        pickle.dump(new, f)
    return new


def test_layout_matches_bmd_format(tiny_dataset):
    root, truth = tiny_dataset
    lay = BMDLayout(root)
    assert lay.subjects() == truth["subjects"]
    betas, order = load_betas(lay.betas("01", "train"), "train")
    assert betas.shape[:2] == (truth["n_train"], 3) and betas.dtype == np.float64
    assert order[0] == "vid0001" and order[-1] == f"vid{truth['n_train']:04d}"
    te, te_order = load_betas(lay.betas("01", "test"), "test")
    assert te.shape[:2] == (truth["n_test"], 10)
    assert te_order[0] == f"vid{truth['n_train'] + 1:04d}"
    # z-scored per vertex with train statistics
    flat = betas.reshape(-1, betas.shape[2])
    np.testing.assert_allclose(flat.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(flat.std(0, ddof=1), 1, atol=1e-10)
    # noise-ceiling pickles are the BMD formula applied to the betas
    with open(lay.noiseceiling("01", "test", 10), "rb") as f:
        snr, nc = pickle.load(f)
    ref_snr, ref_nc = ncsnr(te, n=10)
    np.testing.assert_allclose(snr, ref_snr)
    np.testing.assert_allclose(nc, ref_nc)
    assert (root / "derivatives/stimuli_metadata/mp4_h264/0001.mp4").exists()


def test_preparation_selects_on_train_ncsnr(tiny_dataset):
    root, truth = tiny_dataset
    sd = _prep(root, truth)
    lay = BMDLayout(root)
    with open(lay.noiseceiling("01", "train", 3), "rb") as f:
        snr_train = pickle.load(f)[0]
    for roi, d in sd.rois.items():
        assert d is not None, roi
        assert np.all(snr_train[d.vertices] >= 0.2)
        np.testing.assert_allclose(d.test, d.test_reps.mean(axis=1))
        assert d.train.shape == (truth["n_train"], d.vertices.size)
    # a stricter threshold keeps a subset
    strict = _prep(root, truth, reliability_threshold=0.6)
    roi = truth["rois"][0]
    assert set(strict.rois[roi].vertices) < set(sd.rois[roi].vertices)


def test_too_few_reliable_vertices_is_a_missing_cell(tiny_dataset):
    root, truth = tiny_dataset
    sd = _prep(root, truth, min_vertices=10_000)
    assert all(d is None for d in sd.rois.values())
    assert all(row["missing"] and "need 10000" in row["reason"] for row in sd.summary)


def test_missing_cell_in_one_subject_is_reported(tiny_copy):
    root, truth = tiny_copy
    lay = BMDLayout(root)
    roi = truth["rois"][1]
    labels = np.load(lay.atlas_files("synthetic")[0])
    idx = np.flatnonzero(labels == 2)
    _edit_pickle(lay.noiseceiling("02", "train", 3),
                 lambda o: (np.where(np.isin(np.arange(o[0].size), idx), 0.0, o[0]), o[1]))
    assert _prep(root, truth, "02").rois[roi] is None
    assert _prep(root, truth, "01").rois[roi] is not None


def test_nan_repetitions_are_averaged_with_nanmean(tiny_copy):
    root, truth = tiny_copy
    lay = BMDLayout(root)

    def blank_first_rep(o):
        o[0][0, 0, :] = np.nan
        return o

    betas, _ = _edit_pickle(lay.betas("01", "test"), blank_first_rep)
    d = _prep(root, truth).rois[truth["rois"][0]]
    np.testing.assert_allclose(d.test[0], np.nanmean(betas[0, :, d.vertices].T, axis=0))
    assert np.all(np.isfinite(d.test))


def test_missing_pickle_names_the_file(tiny_copy):
    root, truth = tiny_copy
    path = BMDLayout(root).betas("01", "train")
    path.unlink()
    with pytest.raises(DataFormatError, match=str(path)):
        _prep(root, truth)


def test_corrupt_pickle_names_the_file(tiny_copy):
    root, truth = tiny_copy
    path = BMDLayout(root).betas("01", "test")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=rf"{path}.*corrupt"):
        _prep(root, truth)


def test_malicious_pickle_is_refused(tiny_copy):
    root, truth = tiny_copy
    path = BMDLayout(root).betas("01", "test")
    path.write_bytes(pickle.dumps(__import__("os").system))
    with pytest.raises(DataFormatError, match=str(path)):
        _prep(root, truth)


def test_swapped_axes_name_the_file_and_the_shapes(tiny_copy):
    root, truth = tiny_copy
    path = BMDLayout(root).betas("01", "train")
    _edit_pickle(path, lambda o: (np.swapaxes(o[0], 0, 1), o[1]))
    with pytest.raises(DataFormatError, match=rf"{path}.*\(stimuli, repetitions, vertices\).*"
                                              r"found \(3, 30, \d+\).*swapped"):
        _prep(root, truth)


def test_stimulus_ids_differing_between_subjects(tiny_copy):
    root, truth = tiny_copy
    lay = BMDLayout(root)
    path = lay.betas("02", "test")
    last = f"vid{truth['n_train'] + truth['n_test']:04d}"
    _edit_pickle(path, lambda o: (o[0][:-1], o[1][:-1]))  # consistent file, one stimulus short
    subs = [_prep(root, truth, s) for s in ("01", "02")]
    with pytest.raises(DataFormatError, match=rf"{path}: expected the {truth['n_test']} test "
                                              rf"stimulus ids of sub-01.*{last}"):
        check_stimulus_ids(subs, lay)


def test_excluded_stimuli_are_dropped_everywhere(tiny_dataset):
    root, truth = tiny_dataset
    sd = _prep(root, truth, exclude_stimuli=["vid0002", f"vid{truth['n_train'] + 1:04d}"])
    assert "vid0002" not in sd.train_ids and len(sd.train_ids) == truth["n_train"] - 1
    assert len(sd.test_ids) == truth["n_test"] - 1
    d = next(iter(sd.rois.values()))
    assert d.train.shape[0] == truth["n_train"] - 1 and d.test_reps.shape[0] == truth["n_test"] - 1


def test_check_data_reports_and_errors(tiny_copy, tiny_cfg, tmp_path):
    from alignpatterns import pipeline

    root, truth = tiny_copy
    tiny_cfg["dataset"]["root"] = str(root)
    cfg = resolve_config(tiny_cfg)
    table = pipeline.check_data(cfg, str(tmp_path / "c.parquet"), str(tmp_path / "d.json"))
    assert len(table) == len(truth["subjects"]) * len(truth["rois"])
    assert not table["missing"].any()
    cfg["min_vertices"] = 10_000  # every cell missing in every subject → an error
    with pytest.raises(DataFormatError, match="fewer than 10000 reliable vertices"):
        pipeline.check_data(cfg, str(tmp_path / "c2.parquet"), str(tmp_path / "d2.json"))
    assert not (tmp_path / "c2.parquet").exists()
