"""Every dataset format: a miniature dataset written in exactly that format loads, and the same
betas give identical arrays through two formats (``reference/bmd_format.md``; SPEC.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

from alignpatterns.data.dataset import has_vertex_correspondence, open_dataset
from alignpatterns.data.prepare import prepare
from alignpatterns.data.safe_pickle import DataFormatError
from alignpatterns.measures.ceilings import ncsnr
from tests import data_writers as W

SUB = "01"


@pytest.fixture(scope="module")
def betas():
    return W.mini_betas(seed=5)


def _open(root, **ds):
    return open_dataset({"root": str(root), "atlas": "mini", **ds})


def _roi_reference(tr, te, roi):
    idx = np.concatenate(W.ROIS[roi])
    return tr[:, :, idx], te[:, :, idx]


FORMATS = {
    "fsLR32k": (W.write_fslr, {"space": "fsLR32k"}),
    "MNI152": (W.write_mni, {"space": "MNI152"}),
    "fsaverage": (W.write_fsaverage, {"space": "fsaverage"}),
    "MNI152-allvoxel": (W.write_allvoxel, {"space": "MNI152", "betas": "allvoxel"}),
    "versionA": (W.write_version_a, {"space": "MNI152", "version": "A"}),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_bmd_format_loads_its_miniature(fmt, betas, tmp_path):
    tr, te = betas
    write, ds = FORMATS[fmt]
    write(tmp_path, SUB, tr, te)
    dataset = _open(tmp_path, **ds)
    assert dataset.subjects() == [SUB]
    src = dataset.open_subject(SUB)
    assert src.ids["train"] == W.ids(W.N_TRAIN)
    assert src.ids["test"] == W.ids(W.N_TEST, W.N_TRAIN + 1)
    for roi in W.ROIS:
        got, _ = src.roi_betas(roi)
        ref_tr, ref_te = _roi_reference(tr, te, roi)
        # left then right voxels, float64 values kept exactly
        np.testing.assert_array_equal(got["train"], ref_tr)
        np.testing.assert_array_equal(got["test"], ref_te)
        assert got["train"].dtype == np.float64
    sd = dataset.prepare_subject(SUB, list(W.ROIS), reliability_threshold=0.2, min_vertices=3)
    for roi in W.ROIS:
        d = sd.rois[roi]
        ref_tr, ref_te = _roi_reference(tr, te, roi)
        keep = ncsnr(ref_tr)[0] >= 0.2
        assert keep.sum() >= 3
        np.testing.assert_allclose(d.ncsnr_train, ncsnr(ref_tr)[0][keep], rtol=1e-12)
        np.testing.assert_array_equal(d.train, ref_tr[:, :, keep].mean(axis=1))
        np.testing.assert_array_equal(d.test_reps, ref_te[:, :, keep])


def test_same_betas_through_all_formats_give_identical_arrays(betas, tmp_path):
    tr, te = betas
    prepared = {}
    for fmt, (write, ds) in FORMATS.items():
        root = tmp_path / fmt
        write(root, SUB, tr, te)
        prepared[fmt] = _open(root, **ds).prepare_subject(SUB, list(W.ROIS), min_vertices=3,
                                                          exclude_stimuli=["vid0002", "vid0014"])
    ref = prepared.pop("fsLR32k")
    assert "vid0002" not in ref.train_ids and "vid0014" not in ref.test_ids
    for fmt, sd in prepared.items():
        assert (sd.train_ids, sd.test_ids) == (ref.train_ids, ref.test_ids), fmt
        for roi in W.ROIS:
            a, b = ref.rois[roi], sd.rois[roi]
            for f in ("train_reps", "test_reps", "train", "test", "ncsnr_train", "ncsnr_test"):
                np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f"{fmt} {f}")


def test_shipped_noise_ceilings_are_used_for_selection(betas, tmp_path):
    tr, te = betas
    W.write_fslr(tmp_path, SUB, tr, te, noiseceiling=True)
    p = tmp_path / "derivatives/versionB/fsLR32k/GLM/sub-01/prepared_betas"
    snr, nc = ncsnr(tr, n=3)
    snr[W.ROIS["A"][0]] = 0.0  # the shipped file, not the betas, decides
    W.dump(p / "sub-01_noiseceiling_task-train_n-3.pkl", (snr, nc))
    d = _open(tmp_path).prepare_subject(SUB, ["A"], min_vertices=3).rois["A"]
    assert set(d.vertices) <= set(W.ROIS["A"][1])


def test_excluded_test_stimuli_reach_the_ceilings_with_shipped_files(betas, tmp_path):
    """SPEC.md §1: exclusions apply to the ceilings too. BMD's shipped test ncsnr covers every
    test stimulus, so with one excluded the test ncsnr is computed from the kept betas, while
    selection keeps reading the shipped train file."""
    tr, te = betas
    te = te.copy()
    te[0] = np.random.default_rng(1).standard_normal(te[0].shape) * 6  # a noisy stimulus
    W.write_fslr(tmp_path, SUB, tr, te, noiseceiling=True)
    first_test = f"vid{tr.shape[0] + 1:04d}"
    d = _open(tmp_path).prepare_subject(SUB, ["A"], min_vertices=3,
                                        exclude_stimuli=[first_test]).rois["A"]
    assert d.test.shape[0] == te.shape[0] - 1
    cols = np.concatenate(W.ROIS["A"])
    idx = np.searchsorted(cols, d.vertices)
    np.testing.assert_allclose(d.ncsnr_test, ncsnr(te[1:][:, :, cols[idx]], n=10)[0])
    np.testing.assert_allclose(d.ncsnr_train, ncsnr(tr[:, :, cols[idx]], n=3)[0])
    # without the exclusion the shipped test file is read as is
    full = _open(tmp_path).prepare_subject(SUB, ["A"], min_vertices=3).rois["A"]
    np.testing.assert_allclose(full.ncsnr_test,
                               ncsnr(te[:, :, cols[np.searchsorted(cols, full.vertices)]],
                                     n=10)[0])
    assert abs(full.ncsnr_test.mean() - d.ncsnr_test.mean()) > 0.05


class _Plain:
    """A hand-made source: every vertex one ROI ``all``, ncsnr computed."""

    subject, files = "09", {"train": "t", "test": "e"}
    ids = {"train": W.ids(W.N_TRAIN), "test": W.ids(W.N_TEST, W.N_TRAIN + 1)}

    def __init__(self, tr, te):
        self.tr, self.te = tr, te

    def roi_betas(self, roi):
        return {"train": self.tr, "test": self.te}, np.arange(W.N_VERT)

    def roi_ncsnr(self, roi, split, vertices):
        return None


def test_dropped_nan_vertices_are_counted_and_trial_mean_keeps_them_eligible(betas, caplog):
    tr, te = betas
    tr = tr.copy()
    bad = np.flatnonzero(ncsnr(tr)[0] >= 0.5)[:2]  # two reliable vertices ...
    tr[2][:, bad] = np.nan  # ... NaN in every repetition of train stimulus 2
    with caplog.at_level("INFO", logger="alignpatterns"):
        dropped = prepare(_Plain(tr, te), ["all"], min_vertices=3).rois["all"]
    assert f"2 of {W.N_VERT} vertices dropped" in caplog.text
    assert not set(bad) & set(dropped.vertices)
    # the paper's nan_betas: trial_mean keeps them eligible, with their NaN-aware ncsnr
    kept = prepare(_Plain(tr, te), ["all"], min_vertices=3, nan_betas="trial_mean").rois["all"]
    assert set(bad) <= set(kept.vertices)


def test_hemispheres_kept_separate(betas, tmp_path):
    tr, te = betas
    W.write_allvoxel(tmp_path / "a", SUB, tr, te)
    W.write_fslr(tmp_path / "f", SUB, tr, te)
    per_roi = _open(tmp_path / "a", space="MNI152", betas="allvoxel", hemispheres="separate")
    whole = _open(tmp_path / "f", hemispheres="separate")
    a = per_roi.open_subject(SUB).roi_betas("rA")[0]["train"]
    b = whole.open_subject(SUB).roi_betas("R_A_ROI")[0]["train"]
    np.testing.assert_array_equal(a, tr[:, :, W.ROIS["A"][1]])
    np.testing.assert_array_equal(b, a)


def test_version_a_empty_roi_is_a_missing_cell(betas, tmp_path):
    tr, te = betas
    W.write_version_a(tmp_path, "06", tr, te, empty=("B",))
    sd = _open(tmp_path, space="MNI152", version="A").prepare_subject("06", ["A", "B"],
                                                                     min_vertices=3)
    assert sd.rois["A"] is not None and sd.rois["B"] is None
    row = {r["roi"]: r for r in sd.summary}["B"]
    assert row["missing"] and row["n_vertices"] == 0 and "0 voxels" in row["reason"]


def test_algonauts_heldout_split_and_voxel_mask(betas, tmp_path):
    tr, _ = betas  # 12 released videos, 3 repetitions
    W.write_algonauts(tmp_path, SUB, tr)
    ds = open_dataset({"format": "algonauts2021", "root": str(tmp_path), "heldout": 4})
    assert ds.subjects() == [SUB]
    src = ds.open_subject(SUB)
    assert src.ids["train"] == W.ids(8) and src.ids["test"] == W.ids(4, 9)
    got, _ = src.roi_betas("WB")
    np.testing.assert_array_equal(got["train"], tr[:8])
    np.testing.assert_array_equal(got["test"], tr[8:])
    # same betas as versionA per-ROI train data: identical arrays
    W.write_version_a(tmp_path / "a", SUB, tr, tr[:, :1].repeat(10, axis=1)[:4])
    ref = _open(tmp_path / "a", space="MNI152", version="A").open_subject(SUB).roi_betas("A")[0]
    alg = src.roi_betas("A")[0]
    np.testing.assert_array_equal(np.concatenate([alg["train"], alg["test"]]), ref["train"])
    sd = ds.prepare_subject(SUB, ["A", "B"], min_vertices=3)
    assert sd.rois["A"].test_reps.shape[1] == 3
    np.testing.assert_allclose(sd.rois["A"].ncsnr_train,
                               ncsnr(tr[:8, :, np.concatenate(W.ROIS["A"])])[0][
                                   sd.rois["A"].vertices], rtol=1e-12)


def test_algonauts_voxel_mask_must_match(betas, tmp_path):
    tr, _ = betas
    W.write_algonauts(tmp_path, SUB, tr)
    path = tmp_path / "participants_data_v2021/full_track/sub01/WB.pkl"
    W.dump(path, {"train": tr, "voxel_mask": np.zeros((3, 3, 3))}, protocol=2)
    ds = open_dataset({"format": "algonauts2021", "root": str(tmp_path), "heldout": 4})
    with pytest.raises(DataFormatError, match=rf"{path}.*voxel_mask.*\({W.N_VERT}\).*with 0"):
        ds.open_subject(SUB).roi_betas("WB")


def test_mni152_mask_must_match_voxel_axis(betas, tmp_path):
    tr, te = betas
    W.write_mni(tmp_path, SUB, tr, te)
    p = tmp_path / "derivatives/versionB/MNI152/GLM/sub-01/prepared_betas"
    path = p / "sub-01_organized_betas_task-test_normalized.pkl"
    W.dump(path, (te, W.ids(W.N_TEST, W.N_TRAIN + 1), W.mask_image(7)))
    with pytest.raises(DataFormatError, match=rf"{path}.*\({W.N_VERT}\), found 7"):
        _open(tmp_path, space="MNI152").open_subject(SUB)


def test_vertex_correspondence_only_for_surface_spaces():
    assert has_vertex_correspondence({"space": "fsLR32k"})
    assert has_vertex_correspondence({"space": "fsaverage"})
    assert not has_vertex_correspondence({"space": "MNI152", "betas": "allvoxel"})
    assert not has_vertex_correspondence({"space": "MNI152", "version": "A"})
    assert not has_vertex_correspondence({"format": "algonauts2021"})


@pytest.mark.filterwarnings("ignore:ncsnr:RuntimeWarning")
def test_prepare_is_format_independent_on_a_plain_source(betas):
    """The shared core against a hand-made source: selection on train ncsnr only."""
    tr, te = betas
    te = te.copy()
    te[:, :, 36] = 0.0  # a test-only artefact must not change the train-based selection

    class Src:
        subject, files = "09", {"train": "t", "test": "e"}
        ids = {"train": W.ids(W.N_TRAIN), "test": W.ids(W.N_TEST, W.N_TRAIN + 1)}

        def roi_betas(self, roi):
            return {"train": tr, "test": te}, np.arange(W.N_VERT)

        def roi_ncsnr(self, roi, split, vertices):
            return None

    sd = prepare(Src(), ["all"], min_vertices=3)
    keep = np.flatnonzero(ncsnr(tr)[0] >= 0.2)
    np.testing.assert_array_equal(sd.rois["all"].vertices, keep)


@pytest.mark.parametrize("space", ["MNI152", "fsaverage"])
def test_shipped_noise_ceilings_of_mni152_and_fsaverage(space, betas, tmp_path):
    """MNI152: (ncsnr, NC%, mask) over the voxel axis; fsaverage: one file per hemisphere."""
    tr, te = betas
    (W.write_mni if space == "MNI152" else W.write_fsaverage)(tmp_path, SUB, tr, te)
    p = tmp_path / f"derivatives/versionB/{space}/GLM/sub-01/prepared_betas"
    snr = {s: ncsnr(b, n=n)[0] for s, b, n in (("train", tr, 3), ("test", te, 10))}
    snr["train"][W.ROIS["B"][1]] = 0.0  # only the shipped values can remove these
    snr["test"][:] = 7.0
    for split, n in (("train", 3), ("test", 10)):
        nc = 100 * snr[split] ** 2 / (snr[split] ** 2 + 1 / n)
        if space == "MNI152":
            W.dump(p / f"sub-01_noiseceiling_task-{split}_n-{n}.pkl",
                   (snr[split], nc, W.mask_image(W.N_VERT)))
        else:
            for hemi, sl in (("left", slice(0, W.N_LEFT)), ("right", slice(W.N_LEFT, None))):
                W.dump(p / f"sub-01_noiseceiling_space-fsaverage_task-{split}_hemi-{hemi}_n-{n}"
                           ".pkl", (snr[split][sl], nc[sl]))
    d = _open(tmp_path, space=space).prepare_subject(SUB, ["B"], min_vertices=3).rois["B"]
    assert set(d.vertices) <= set(W.ROIS["B"][0]) and d.vertices.size >= 3
    np.testing.assert_array_equal(d.ncsnr_test, 7.0)


def test_annotations(tmp_path):
    import json

    from alignpatterns.data.stimuli import load_annotations

    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"0001": {"set": "train", "text_descriptions": ["a dog runs"]},
                                "0002": {"set": "test", "text_descriptions": []}}))
    ann = load_annotations(path, ["vid0001", "vid0002"])
    assert ann["vid0001"]["text_descriptions"] == ["a dog runs"]
    with pytest.raises(DataFormatError, match=r"annotations.json: expected an entry '0003'"):
        load_annotations(path, ["vid0003"])


def test_missing_roi_file_names_the_files(betas, tmp_path):
    tr, te = betas
    W.write_allvoxel(tmp_path, SUB, tr, te)
    ds = _open(tmp_path, space="MNI152", betas="allvoxel")
    (ds.roi_file(SUB, "rB")).unlink()
    with pytest.raises(DataFormatError, match=r"sub-01_roi-B_betas_normalized.pkl: ROI file not "
                                              r"found \(nor both hemisphere files "
                                              r"sub-01_roi-lB_betas_normalized.pkl and "
                                              r"sub-01_roi-rB_betas_normalized.pkl\)"):
        ds.prepare_subject(SUB, ["A", "B"], min_vertices=3)


def test_mni152_mask_pickled_from_a_file_that_is_gone(betas, tmp_path, caplog):
    """The released 3-tuples may hold an image made by nib.load() on the authors' machine: its
    data proxy points to a file the user does not have. Loading must not depend on it."""
    import nibabel as nib

    tr, te = betas
    W.write_mni(tmp_path, SUB, tr, te)
    img_path = tmp_path / "gone.nii"
    nib.save(W.mask_image(W.N_VERT), img_path)
    proxy_img = nib.load(img_path)  # data not read: an ArrayProxy on gone.nii
    p = tmp_path / "derivatives/versionB/MNI152/GLM/sub-01/prepared_betas"
    W.dump(p / "sub-01_organized_betas_task-train_normalized.pkl",
           (tr, W.ids(W.N_TRAIN), proxy_img))
    img_path.unlink()
    src = _open(tmp_path, space="MNI152").open_subject(SUB)
    np.testing.assert_array_equal(src.roi_betas("A")[0]["train"], _roi_reference(tr, te, "A")[0])
    assert "cannot be read" in caplog.text


@pytest.mark.filterwarnings("ignore:ncsnr:RuntimeWarning")
def test_constant_vertices_are_reported_and_never_kept(betas, tmp_path, caplog):
    tr, te = betas
    tr = tr.copy()
    tr[:, :, W.ROIS["A"][0][:2]] = 0.25  # two flat train vertices in A
    W.write_fslr(tmp_path, SUB, tr, te)
    d = _open(tmp_path).prepare_subject(SUB, ["A"], min_vertices=3).rois["A"]
    assert not set(W.ROIS["A"][0][:2]) & set(d.vertices)
    assert "sub-01 A: 2 constant vertices" in caplog.text


def _fsaverage_file(root, split, hemi):
    return (W._prepared(root, "fsaverage", SUB)
            / f"sub-{SUB}_organized_betas_task-{split}_hemi-{hemi}_normalized.pkl")


def test_fsaverage_hemispheres_with_different_stimuli_name_the_file_and_counts(betas,
                                                                               tmp_path):
    """Each file's own order is checked first (ids in order from vid0001), so hemispheres can
    only differ in how many stimuli they hold."""
    tr, te = betas
    W.write_fsaverage(tmp_path, SUB, tr, te)
    right = _fsaverage_file(tmp_path, "train", "right")
    W.dump(right, (tr[:-1, :, W.N_LEFT:], W.ids(len(tr) - 1)))
    with pytest.raises(DataFormatError) as err:
        _open(tmp_path, space="fsaverage").open_subject(SUB)
    msg = str(err.value)
    assert msg.startswith(f"{right}: expected the stimulus order of ")
    assert "task-train_hemi-left" in msg
    assert msg.endswith(f"found {len(tr) - 1} stimuli instead of {len(tr)}")


def test_fsaverage_vertex_count_error_names_the_hemisphere_file(betas, tmp_path):
    tr, te = betas
    W.write_fsaverage(tmp_path, SUB, tr, te)
    left_test = _fsaverage_file(tmp_path, "test", "left")
    W.dump(left_test, (te[:, :, :W.N_LEFT - 2], W.ids(len(te), len(tr) + 1)))
    with pytest.raises(DataFormatError) as err:
        _open(tmp_path, space="fsaverage").open_subject(SUB)
    msg = str(err.value)
    assert msg.startswith(f"{left_test}: expected {W.N_LEFT} vertices as in ")
    assert "task-train_hemi-left" in msg and msg.endswith(f"found {W.N_LEFT - 2}")
    assert "{left,right}" not in msg


def test_an_exclusion_absent_from_the_data_is_an_error_naming_the_files(betas, tmp_path):
    """A typo in ``dataset.exclude_stimuli`` would silently exclude nothing."""
    tr, te = betas
    W.write_fslr(tmp_path, SUB, tr, te)
    ds = _open(tmp_path)
    with pytest.raises(DataFormatError) as err:
        ds.prepare_subject(SUB, ["A"], min_vertices=3, exclude_stimuli=["vid0002", "vid9999"])
    msg = str(err.value)
    assert "task-train" in msg and "task-test" in msg and "dataset.exclude_stimuli" in msg
    assert msg.endswith("found 1 that are not: ['vid9999']")
    assert f"{W.N_TRAIN} train and {W.N_TEST} test ids" in msg
    kept = ds.prepare_subject(SUB, ["A"], min_vertices=3, exclude_stimuli=["vid0002"])
    assert "vid0002" not in kept.train_ids and len(kept.train_ids) == W.N_TRAIN - 1
