"""End-to-end: the Snakemake workflow on the tiny config in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alignpatterns.io import TABLE_SCHEMAS, read_table
from tests.conftest import run_tiny as _run

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TABLES = ["model_brain", "model_brain_summary", "brain_brain", "ceilings", "apa", "apa_summary",
          "apa_nulls", "apa_confusion", "apa_whole_model", "brain_within",
          "brain_within_summary", "apa_brain_avg", "synth_layer_cka"]


@pytest.mark.workflow
@pytest.mark.slow
def test_tables_have_the_contract_columns(tiny_run):
    for name in TABLES:
        df = read_table(tiny_run / "results" / "tables" / f"{name}.parquet")
        assert list(df.columns) == list(TABLE_SCHEMAS[name]), name
        assert len(df) > 0, name
    mb = read_table(tiny_run / "results/tables/model_brain.parquet")
    assert set(mb["model"]) == {"mobilenetv3_small_100", "oracle"}
    assert set(mb["split"]) == {"train", "test"}
    assert mb["score"].notna().all()
    apa = read_table(tiny_run / "results/tables/apa_summary.parquet")
    assert set(apa["variant"]) == {"full", "offdiag"}
    assert "brain" in set(apa["candidate"])
    # brain_avg: k = 1 is the brain baseline itself; 4 subjects are too few for k = 2 and 4
    ba = read_table(tiny_run / "results/tables/apa_brain_avg.parquet")
    k1 = ba[ba["k"] == 1].merge(apa[apa["candidate"] == "brain"],
                                on=["measure", "variant", "match", "roi"], validate="1:1")
    assert len(k1) == (apa["candidate"] == "brain").sum() > 0
    assert (k1["aps_brain_avg"] - k1["aps_mean"]).abs().max() < 1e-12
    assert ba.loc[ba["k"] > 1, "reason"].str.contains("needs ≥").all()
    # the oracle is the generator: its best layer for every ROI is the ROI's driving layer
    slc = read_table(tiny_run / "results/tables/synth_layer_cka.parquet")
    assert set(slc["candidate"]) == {"mobilenetv3_small_100", "oracle"}
    orc = slc[slc["candidate"] == "oracle"]
    assert (orc["best_layer"] == orc["driver_layer"]).all()
    assert (orc["rsa_best_layer"] == orc["driver_layer"]).all()
    assert np.allclose(orc[["cka", "rsa", "eccentricity_r"]], 1.0)
    assert slc.loc[slc["candidate"] != "oracle", "cka"].between(0, 1).all()
    assert slc.loc[slc["candidate"] != "oracle", "rsa"].between(-1, 1).all()


@pytest.mark.workflow
@pytest.mark.slow
def test_figures_exist(tiny_run):
    figs = sorted(p.name for p in (tiny_run / "results" / "figures").iterdir())
    for kind in ("conventional", "brain_patterns", "aps"):
        for ext in ("png", "pdf"):
            assert f"{kind}_lp-ridge-pearson.{ext}" in figs
    assert all((tiny_run / "results/figures" / f).stat().st_size > 1000 for f in figs)


@pytest.mark.workflow
@pytest.mark.slow
def test_rerun_is_a_no_op_and_reproducible(tiny_run, tmp_path):
    res = _run(tiny_run)
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr
    # same config + seed → byte-identical tables from a fresh run in another directory
    # (dataset synthesis included)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    # the tables only (figures are covered by tests/test_report.py)
    res = _run(fresh, *[f"results/tables/{name}.parquet" for name in TABLES])
    assert res.returncode == 0, res.stderr[-3000:]
    for name in TABLES:
        a = (tiny_run / "results/tables" / f"{name}.parquet").read_bytes()
        b = (fresh / "results/tables" / f"{name}.parquet").read_bytes()
        assert a == b, f"{name}.parquet differs between identical runs"
    a = (tiny_run / "data/tiny_bmd/ground_truth.json").read_bytes()
    assert a == (fresh / "data/tiny_bmd/ground_truth.json").read_bytes()


@pytest.mark.workflow
def test_lint_and_dry_run():
    res = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    # --forceall: the plan of the whole DAG, whatever results/ already holds
    res = subprocess.run([*SNAKEMAKE, "-n", "--forceall", "--cores", "1"], capture_output=True,
                         text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    # the embedded default fans out to every model x subject and measure x subject; brain_avg
    # per subject, whole_model per model, figures per kind (all measures inside)
    for rule, n in (("model_brain", 5 * 6), ("brain_brain", 4 * 6), ("brain_avg", 6),
                    ("whole_model", 5), ("figure_profiles", 1),
                    ("extract", 5)):
        assert any(line.split()[:2] == [rule, str(n)] for line in res.stdout.splitlines()), rule


def test_unknown_layer_names_the_registry(tmp_path, monkeypatch):
    from alignpatterns import io, pipeline
    from alignpatterns.features import registry

    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n  tiny:\n    arch: mobilenetv3_small_100\n"
                   "    layers: [blocks.0, no_such_layer]\n")
    monkeypatch.setattr(registry, "DEFAULT_REGISTRY", reg)
    import numpy as np

    io.save_arrays(tmp_path / "frames.npz", {
        "frames": np.zeros((2, 1, 32, 32, 3), np.uint8), "ids": np.array(["vid0001", "vid0002"]),
        "n_train": np.array(1)})
    cfg = {"device": "cpu", "features": {"pool_grid": 2, "batch_size": 2},
           "models": [{"name": "tiny", "spec_name": "tiny", "weights": "random", "seed": 1}]}
    with pytest.raises(ValueError, match=rf"{reg}.*tiny.*no_such_layer"):
        pipeline.extract(cfg, "tiny", str(tmp_path / "frames.npz"), str(tmp_path / "o.npz"))
    assert not (tmp_path / "o.npz").exists()
