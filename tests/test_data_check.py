"""``alignpatterns check-data`` on bad input: each case exits non-zero, and its last line names the
file, what was expected and what was found (DESIGN.md contracts; issue 4 acceptance)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import yaml

from alignpatterns.cli import main
from tests import data_writers as W

SUBJECTS = ("01", "02")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    W.write_videos(folder, W.N_TRAIN + W.N_TEST)
    return folder


@pytest.fixture
def mini(tmp_path, videos):
    """A two-subject fsLR32k dataset, its config file and the betas of sub-01."""
    root = tmp_path / "bmd"
    for k, sub in enumerate(SUBJECTS):
        tr, te = W.mini_betas(seed=10 + k)
        W.write_fslr(root, sub, tr, te)
    cfg = {"seed": 1, "dataset": {"format": "bmd", "root": str(root), "space": "fsLR32k",
                                  "version": "B", "atlas": "mini", "videos": str(videos),
                                  "synthesize": None},
           "subjects": "all", "rois": ["A", "B"], "reliability_threshold": 0.2,
           "min_vertices": 3, "models": [{"name": "vgg11", "weights": "random"}],
           "measures": ["rsa-crossnobis-spearman"]}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return root, path, cfg


def _betas(root, sub, split):
    return (root / "derivatives/versionB/fsLR32k/GLM" / f"sub-{sub}" / "prepared_betas"
            / f"sub-{sub}_organized_betas_task-{split}_normalized.pkl")


def _edit(path, edit):
    with open(path, "rb") as f:
        obj = pickle.load(f)
    with open(path, "wb") as f:
        pickle.dump(edit(obj), f, protocol=pickle.HIGHEST_PROTOCOL)


def _fails(cfg_path, capsys, *patterns):
    rc = main(["check-data", "--config", str(cfg_path), "--out", str(cfg_path.parent / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err, "check-data should fail"
    last = err[-1]
    for p in patterns:
        assert p in last, f"{p!r} not in {last!r}"
    assert not (cfg_path.parent / "out" / "check_data.parquet").exists()
    return last


def test_clean_dataset_passes_and_prints_the_summary(mini, capsys):
    _, cfg_path, _ = mini
    rc = main(["check-data", "--config", str(cfg_path), "--out", str(cfg_path.parent / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "4 subject x ROI cells, 0 missing" in out
    for sub in SUBJECTS:
        assert sub in out
    assert (cfg_path.parent / "out" / "check_data.parquet").exists()


def test_cell_with_too_few_reliable_vertices_is_reported_missing(mini, capsys):
    root, cfg_path, _ = mini
    p = _betas(root, "02", "train").parent
    tr = pickle.loads(_betas(root, "02", "train").read_bytes())[0]
    from alignpatterns.measures.ceilings import ncsnr

    snr, nc = ncsnr(tr, n=3)
    snr[np.concatenate(W.ROIS["B"])] = 0.05  # sub-02 B: nothing reliable
    W.dump(p / "sub-02_noiseceiling_task-train_n-3.pkl", (snr, nc))
    rc = main(["check-data", "--config", str(cfg_path), "--out", str(cfg_path.parent / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "4 subject x ROI cells, 1 missing" in out
    line = next(ln for ln in out.splitlines() if " 02 " in f" {ln} " and " B " in f" {ln} ")
    assert "True" in line and "0 of 15 vertices" in line


def test_truncated_pickle(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "02", "test")
    path.write_bytes(path.read_bytes()[:300])
    _fails(cfg_path, capsys, str(path), "expected a readable pickle", "corrupt")


def test_wrong_tuple_arity(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "01", "train")
    _edit(path, lambda o: (o[0], o[1], "extra"))
    _fails(cfg_path, capsys, str(path), "expected a 2-tuple (betas, stimorder)",
           "found a 3-tuple")


def test_vertices_stimuli_reps_axis_order(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "01", "train")
    _edit(path, lambda o: (np.ascontiguousarray(o[0].transpose(2, 0, 1)), o[1]))
    _fails(cfg_path, capsys, str(path), f"= ({W.N_TRAIN}, 3, n_vertices)",
           f"found ({W.N_VERT}, {W.N_TRAIN}, 3)", "swapped")


def test_ids_out_of_order(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "02", "train")

    def swap(o):
        ids = list(o[1])
        ids[3], ids[4] = ids[4], ids[3]
        return o[0], ids

    _edit(path, swap)
    _fails(cfg_path, capsys, str(path), "'vid0005' at position 3", "'vid0004' was expected",
           "out of order")


def test_id_missing(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "01", "test")
    _edit(path, lambda o: (o[0][1:], o[1][1:]))  # consistent file without its first stimulus
    _fails(cfg_path, capsys, str(path), f"from vid{W.N_TRAIN + 1:04d}",
           f"'vid{W.N_TRAIN + 1:04d}' was expected", "missing")


def test_unpatterned_nans(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "02", "test")

    def sprinkle(o):
        b = o[0].copy()
        b[2, 4, 7] = np.nan  # one cell: not a whole trial, not all repetitions of a stimulus
        b[0, :, 9] = np.nan  # patterned: vertex 9 lost for stimulus 0 (dropped, not an error)
        return b, o[1]

    _edit(path, sprinkle)
    _fails(cfg_path, capsys, str(path), "expected NaNs only in whole trials",
           "found 1 scattered NaN values", "stimulus index 2, repetition 4, vertex 7")


def test_patterned_nans_are_accepted(mini, capsys):
    root, cfg_path, _ = mini
    _edit(_betas(root, "02", "test"), lambda o: (np.where(
        np.arange(10)[None, :, None] == 3, np.nan, o[0]), o[1]))  # repetition 4 lost everywhere
    rc = main(["check-data", "--config", str(cfg_path), "--out", str(cfg_path.parent / "out")])
    assert rc == 0, capsys.readouterr().err


def test_missing_video(mini, capsys, tmp_path):
    _, cfg_path, cfg = mini
    folder = tmp_path / "few_videos"
    W.write_videos(folder, 5)
    cfg["dataset"]["videos"] = str(folder)
    cfg_path.write_text(yaml.safe_dump(cfg))
    _fails(cfg_path, capsys, str(folder / "0006.mp4"), "expected a video for each of the 18",
           "found none for vid0006")


def test_corrupt_video(mini, capsys, tmp_path):
    _, cfg_path, cfg = mini
    folder = tmp_path / "bad_videos"
    W.write_videos(folder, W.N_TRAIN + W.N_TEST)
    (folder / "0003.mp4").write_bytes(b"\x00" * 100)
    cfg["dataset"]["videos"] = str(folder)
    cfg_path.write_text(yaml.safe_dump(cfg))
    _fails(cfg_path, capsys, str(folder / "0003.mp4"), "expected a decodable video", "corrupt")


def test_label_file_of_wrong_length(mini, capsys):
    root, cfg_path, _ = mini
    npy = root / "derivatives/versionB/fsLR32k/atlas/atlas-mini_space-fsLR32k_dseg.npy"
    np.save(npy, np.load(npy)[:-3])
    _fails(cfg_path, capsys, str(npy), "expected one label per vertex", f"({W.N_VERT})",
           f"found {W.N_VERT - 3} labels")


def test_pickle_calling_a_function_is_refused(mini, capsys):
    root, cfg_path, _ = mini
    path = _betas(root, "01", "test")

    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned > /dev/null",)

    path.write_bytes(pickle.dumps(Evil()))
    _fails(cfg_path, capsys, str(path), "refused", "system")


def test_missing_root(mini, capsys, tmp_path):
    _, cfg_path, cfg = mini
    cfg["dataset"]["root"] = str(tmp_path / "nowhere")
    cfg_path.write_text(yaml.safe_dump(cfg))
    _fails(cfg_path, capsys, str(tmp_path / "nowhere"), "not found")


def test_stimulus_missing_in_one_subject_is_excluded_for_all(mini, tmp_path):
    import json

    from alignpatterns import pipeline
    from alignpatterns.cli import _validated_config
    from alignpatterns.config import resolve_config
    from alignpatterns.data.prepared import load_subject

    root, cfg_path, _ = mini

    def lose(o):
        b = o[0].copy()
        b[4] = np.nan  # vid0005: every repetition lost in sub-02 (a patterned NaN block)
        return b, o[1]

    _edit(_betas(root, "02", "train"), lose)
    cfg = resolve_config(_validated_config(str(cfg_path)), counts=False)
    table = pipeline.check_data(cfg, str(tmp_path / "c.parquet"), str(tmp_path / "d.json"))
    info = json.loads((tmp_path / "d.json").read_text())
    assert info["nan_stimuli"] == ["vid0005"] and "vid0005" not in info["train_ids"]
    assert info["n_train"] == W.N_TRAIN - 1 and not table["missing"].any()
    for sub in SUBJECTS:
        pipeline.prepare_brain(cfg, sub, str(tmp_path / f"{sub}.npz"), str(tmp_path / "d.json"))
        sd = load_subject(tmp_path / f"{sub}.npz")
        assert "vid0005" not in sd.train_ids
        assert np.isfinite(sd.rois["A"].train).all()
