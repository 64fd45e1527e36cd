"""ROI sets: CIFTI dlabel placed on grayordinates by BrainModelAxis and matched by parcel name,
.npy labels, the shipped ROI-set files and stream groupings."""

from __future__ import annotations

import numpy as np
import pytest

from alignpatterns.config import DEFAULT_REPO, roi_set
from alignpatterns.data.dataset import open_dataset
from alignpatterns.data.rois import HCP91K, N_GRAYORDINATES, load_dlabel, load_labels
from alignpatterns.data.safe_pickle import DataFormatError
from tests import data_writers as W

N_SURF = 15  # vertices per miniature hemisphere surface


def _surface_axis(mask_l, mask_r):
    from nibabel import cifti2

    return (cifti2.BrainModelAxis.from_mask(mask_l, name="CortexLeft")
            + cifti2.BrainModelAxis.from_mask(mask_r, name="CortexRight"))


def _write_dlabel(path, models, values, table):
    from nibabel import cifti2

    ax = cifti2.LabelAxis(["parcels"], [{0: ("???", (0, 0, 0, 0)), **{
        k: (name, (1.0, 0.0, 0.0, 1.0)) for name, k in table.items()}}])
    img = cifti2.Cifti2Image(values[None, :].astype(np.int32),
                             cifti2.Cifti2Header.from_axes((ax, models)))
    img.to_filename(path)
    return path


def _write_reference(path, models):
    from nibabel import cifti2

    img = cifti2.Cifti2Image(np.zeros((1, len(models)), np.float32),
                             cifti2.Cifti2Header.from_axes((cifti2.ScalarAxis(["x"]), models)))
    img.to_filename(path)
    return path


@pytest.fixture
def cifti(tmp_path):
    """A dlabel on one vertex set and a 40-grayordinate reference on another, with volume."""
    from nibabel import cifti2

    rng = np.random.default_rng(0)
    table = {"L_A_ROI": 17, "R_A_ROI": 3, "L_B_ROI": 250, "R_B_ROI": 9, "L_C_ROI": 40}
    # dense per-surface-vertex truth, per hemisphere
    dense = {"L": rng.choice([0, 17, 250, 40], N_SURF), "R": rng.choice([0, 3, 9], N_SURF)}
    lab_mask = {h: np.ones(N_SURF, bool) for h in "LR"}
    lab_mask["L"][[0, 7]] = False  # the label file lacks some vertices (medial wall)
    models = _surface_axis(lab_mask["L"], lab_mask["R"])
    values = np.concatenate([dense[h][lab_mask[h]] for h in "LR"])
    dlabel = _write_dlabel(tmp_path / "parc.dlabel.nii", models, values, table)
    ref_mask = {h: np.ones(N_SURF, bool) for h in "LR"}
    ref_mask["L"][[3, 4]] = False
    ref_mask["R"][[1, 2, 14]] = False
    vol = np.zeros((3, 3, 3), bool)
    vol.flat[:15] = True
    ref_models = (_surface_axis(ref_mask["L"], ref_mask["R"])
                  + cifti2.BrainModelAxis.from_mask(vol, name="thalamus_left", affine=np.eye(4)))
    assert len(ref_models) == W.N_VERT
    ref = _write_reference(tmp_path / "ref.dscalar.nii", ref_models)
    expected = np.concatenate([
        np.where(lab_mask["L"], dense["L"], 0)[ref_mask["L"]],
        dense["R"][ref_mask["R"]], np.zeros(15, int)])
    return dlabel, ref, table, expected


def test_dlabel_is_placed_by_brain_model_axis_and_matched_by_name(cifti):
    dlabel, ref, table, expected = cifti
    lm = load_dlabel(dlabel, ref)
    assert lm.labels.shape == (W.N_VERT,)
    np.testing.assert_array_equal(lm.labels, expected)
    np.testing.assert_array_equal(lm.indices("A"), np.flatnonzero(np.isin(expected, [17, 3])))
    np.testing.assert_array_equal(lm.indices("C"), np.flatnonzero(expected == 40))
    np.testing.assert_array_equal(lm.indices("R_B_ROI", "separate"),
                                  np.flatnonzero(expected == 9))
    with pytest.raises(DataFormatError, match=r"parc.dlabel.nii: expected a parcel named D or "
                                              r"L_D_ROI.*found none"):
        lm.indices("D")


def test_dlabel_drives_a_whole_fslr_dataset(cifti, tmp_path):
    dlabel, ref, _, expected = cifti
    tr, te = W.mini_betas(seed=2)
    W.write_fslr(tmp_path / "bmd", "01", tr, te)
    ds = open_dataset({"root": str(tmp_path / "bmd"), "labels": str(dlabel),
                       "grayordinates": str(ref)})
    got, idx = ds.open_subject("01").roi_betas("B")
    np.testing.assert_array_equal(idx, np.flatnonzero(np.isin(expected, [250, 9])))
    np.testing.assert_array_equal(got["test"], te[:, :, idx])


def test_dlabel_without_reference_must_fit_the_standard_91k_layout(cifti):
    dlabel, _, _, _ = cifti
    with pytest.raises(DataFormatError, match=rf"parc.dlabel.nii: expected {N_GRAYORDINATES} "
                                              r"grayordinates.*found 28 grayordinates"):
        load_dlabel(dlabel)


def test_cortex_only_dlabel_on_the_standard_91k_layout(tmp_path):
    masks = {}
    for h, n in zip("LR", HCP91K.values(), strict=True):
        m = np.zeros(32492, bool)
        m[np.linspace(0, 32491, n).round().astype(int)] = True
        masks[h] = m
    models = _surface_axis(masks["L"], masks["R"])
    values = np.zeros(len(models), np.int32)
    values[5], values[29696 + 7] = 11, 12
    path = _write_dlabel(tmp_path / "g.dlabel.nii", models, values, {"L_V1_ROI": 11,
                                                                     "R_V1_ROI": 12})
    lm = load_labels(path)
    assert lm.labels.shape == (N_GRAYORDINATES,)
    np.testing.assert_array_equal(lm.indices("V1"), [5, 29696 + 7])
    with pytest.raises(DataFormatError, match=r"expected one label per vertex of betas.pkl "
                                              r"\(91283\), found 91282"):
        lm.check_length(91283, "betas.pkl")


def _annot(path, labels, names):
    import nibabel as nib

    ctab = np.array([[10 * i % 255, 20, 30, 0, 0] for i in range(len(names))], np.int32)
    nib.freesurfer.write_annot(str(path), np.asarray(labels, np.int32), ctab, names,
                               fill_ctab=True)


@pytest.mark.parametrize("names", [(["unknown", "V1"], ["unknown", "V1"]),
                                   (["???", "L_V1_ROI"], ["???", "R_V1_ROI"])])
def test_annot_pair_gives_both_hemispheres_of_a_parcel(names, tmp_path):
    """FreeSurfer atlases name a parcel the same in both hemispheres (aparc); Glasser's
    annotations prefix L_/R_. Either way ROI V1 is left and right."""
    from alignpatterns.data.rois import load_annot_pair

    lh = np.array([0] * 5 + [1] * 3 + [0] * 2)
    rh = np.array([1] * 2 + [0] * 8)
    _annot(tmp_path / "lh.x.annot", lh, names[0])
    _annot(tmp_path / "rh.x.annot", rh, names[1])
    lm = load_annot_pair(str(tmp_path / "{hemi}.x.annot"))
    np.testing.assert_array_equal(lm.indices("V1"), [5, 6, 7, 10, 11])
    if names[0][1] == "V1":  # one hemisphere by its l/r name
        np.testing.assert_array_equal(lm.indices("lV1", "separate"), [5, 6, 7])
        np.testing.assert_array_equal(lm.indices("rV1", "separate"), [10, 11])


def test_a_parcel_named_as_the_roi_wins_over_its_hemisphere_parcels():
    from alignpatterns.data.rois import LabelMap

    lm = LabelMap(np.array([1, 1, 2, 3, 0]), {"V1": 1, "L_V1_ROI": 2, "R_V1_ROI": 3}, "x.npy")
    np.testing.assert_array_equal(lm.indices("V1"), [0, 1])  # docs/data.md: V1 if present
    lm = LabelMap(np.array([1, 1, 2, 3, 0]), {"L_V1_ROI": 2, "R_V1_ROI": 3}, "x.npy")
    np.testing.assert_array_equal(lm.indices("V1"), [2, 3])  # else L ∪ R


def test_npy_labels_with_scrambled_keys_match_by_name(tmp_path):
    labels, names = W.glasser_style_labels()
    W.labels_tsv(tmp_path / "lab.npy", labels, names)
    lm = load_labels(tmp_path / "lab.npy")
    np.testing.assert_array_equal(lm.indices("A"), np.concatenate(W.ROIS["A"]))


@pytest.mark.parametrize("name, n", [("glasser19", 19), ("bmd_mni152", 23),
                                     ("bmd_versionA", 22), ("algonauts2021", 9),
                                     ("synthetic", 19)])
def test_roi_sets_and_streams(name, n):
    rs = roi_set(name, DEFAULT_REPO)
    assert len(rs["rois"]) == n == len(set(rs["rois"]))
    grouped = [r for members in rs["streams"].values() for r in members]
    assert sorted(grouped) == sorted(rs["rois"]), "every ROI in exactly one stream"
    assert "early" in rs["streams"]


def test_glasser19_is_the_paper_set():
    rs = roi_set("glasser19", DEFAULT_REPO)
    assert set(rs["rois"]) == {"V1", "V2", "V3", "V4", "V8", "PIT", "FFC", "V3A", "V3B", "V6",
                               "V6A", "V7", "IPS1", "MT", "MST", "FST", "LO1", "LO2", "LO3"}
