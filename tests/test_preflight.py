"""Preflight: memory estimates from array shapes, and the early, clear failure."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from alignpatterns import io, preflight
from tests.conftest import run_tiny

MB = 1024**2


def _features(path, n_stim, widths):
    arrays = {f"layer/{i:02d}/l{i}": np.zeros((n_stim, w), np.float32)
              for i, w in enumerate(widths)}
    arrays.update(ids=np.array([f"vid{i:04d}" for i in range(n_stim)]), n_train=np.array(5))
    io.save_arrays(path, arrays)


def _subject(path, n_train, n_test, widths):
    arrays = {"subject": np.array("01"), "rois": np.array([f"r{i}" for i in range(len(widths))]),
              "train_ids": np.array([f"vid{i:04d}" for i in range(n_train)]),
              "test_ids": np.array([f"vid{i:04d}" for i in range(n_train, n_train + n_test)])}
    for i, v in enumerate(widths):
        arrays[f"roi/r{i}/vertices"] = np.arange(v)
        arrays[f"roi/r{i}/train"] = np.zeros((n_train, v))
        arrays[f"roi/r{i}/train_reps"] = np.zeros((n_train, 3, v))
    io.save_arrays(path, arrays)
    return sum(a.nbytes for a in arrays.values()) / MB


def test_npz_headers_give_the_shapes_without_loading(tmp_path):
    _features(tmp_path / "f.npz", 7, [3, 11])
    members = preflight.npz_members(tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz") as npz:
        for key in npz.files:
            assert members[key] == (npz[key].shape, npz[key].dtype)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        preflight.npz_members(tmp_path / "bad.npz")


def test_model_brain_estimate_follows_the_shapes(tmp_path):
    n_train, n_test, widths = 40, 12, [8, 300, 64]
    _features(tmp_path / "f.npz", n_train + n_test, widths)
    subj_mb = _subject(tmp_path / "s.npz", n_train, n_test, [5, 9])
    cfg = {"apa": {"n_permutations": 100}, "measures": ["rsa-correlation-spearman", "lp"]}
    est = preflight.estimate_from_files(
        "model_brain", {"features": [str(tmp_path / "f.npz")],
                        "subject": [str(tmp_path / "s.npz")]}, cfg)
    n = n_train + n_test
    expected = {  # written out independently of the module's helper
        "interpreter": preflight.BASE_MB,
        "features float32 + float64": n * sum(widths) * 12 / MB,
        "widest layer working copies": 4 * n * 300 * 8 / MB,
        "subject": 2 * subj_mb,
        "stimulus Gram/RDM": 6 * n * n * 8 / MB,
        "permutation nulls": 2 * 100 * (n_test * (n_test - 1) / 2 + 3) * 8 / MB,
    }
    assert est.terms == pytest.approx(expected)
    assert est.mb == pytest.approx(sum(expected.values()))
    # doubling the stimuli quadruples the stimulus x stimulus term
    _features(tmp_path / "f2.npz", 2 * n, widths)
    est2 = preflight.estimate_from_files(
        "model_brain", {"features": [str(tmp_path / "f2.npz")],
                        "subject": [str(tmp_path / "s.npz")]}, cfg)
    assert est2.terms["stimulus Gram/RDM"] == pytest.approx(4 * expected["stimulus Gram/RDM"])


def test_check_fails_early_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_MEM_PER_NODE", raising=False)
    _features(tmp_path / "f.npz", 2000, [4096] * 6)  # 2000 x 24576 float32: ~560 MB float64
    _subject(tmp_path / "s.npz", 1900, 100, [50])
    inputs = {"features": [str(tmp_path / "f.npz")], "subject": [str(tmp_path / "s.npz")]}
    cfg = {"apa": {"n_permutations": 10}, "measures": ["lp-ridge-pearson"]}
    est = preflight.estimate_from_files("model_brain", inputs, cfg)
    assert preflight.check("model_brain", inputs, cfg, est.mb + 1).mb == est.mb
    with pytest.raises(preflight.PreflightError) as err:
        preflight.check("model_brain", inputs, cfg, 1000, {"model": "m", "subject": "01"})
    msg = str(err.value)
    assert "model_brain[model=m, subject=01]" in msg
    assert f"{est.mb:,.0f} MB exceeds the job's 1,000 MB" in msg
    assert "features float32 + float64" in msg
    assert "--set-resources model_brain:mem_mb=" in msg
    # SLURM granted less than the job declared: the grant is the limit
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1000")
    with pytest.raises(preflight.PreflightError, match="1,000 MB"):
        preflight.check("model_brain", inputs, cfg, est.mb + 1)
    # rules without a file-based estimate are not checked
    assert preflight.check("gather_apa", {}, cfg, 1) is None


@pytest.mark.workflow
@pytest.mark.slow
def test_a_job_that_cannot_fit_fails_before_any_work(tiny_run, tmp_path):
    wd = tmp_path / "wd"
    shutil.copytree(tiny_run, wd, symlinks=True)
    target = "results/alignment/model_brain/oracle/sub-01.parquet"
    res = run_tiny(wd, target, "--forcerun", "model_brain", "--allowed-rules", "model_brain",
                   "--set-resources", "model_brain:mem_mb=200")
    assert res.returncode != 0
    log = (wd / "results/logs/model_brain/oracle/sub-01.log").read_text()
    assert "model_brain[model=oracle, subject=01]: estimated peak memory" in log
    assert "exceeds the job's 200 MB" in log and "Nothing was computed" in log
    assert not (wd / target).exists()
