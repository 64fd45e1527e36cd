"""The shipped real-data configs validate and say what the paper did (SPEC.md §1)."""

from __future__ import annotations

import pytest

from alignpatterns.cli import _validated_config, main
from alignpatterns.config import DEFAULT_REPO, roi_set

PAPER_EXCLUSIONS = ["vid0258", "vid0831", "vid1001", "vid1085", "vid1090", "vid1093", "vid1094",
                    "vid1097"]


def test_bmd_config_is_the_paper_setup():
    cfg = _validated_config(str(DEFAULT_REPO / "config" / "bmd.yaml"))
    ds = cfg["dataset"]
    assert (ds["format"], ds["space"], ds["version"], ds["betas"]) == (
        "bmd", "fsLR32k", "B", "prepared_betas")
    assert ds["synthesize"] is None and ds["hemispheres"] == "merge"
    assert ds["exclude_stimuli"] == PAPER_EXCLUSIONS
    assert cfg["subjects"] == [f"{i:02d}" for i in range(1, 11)]
    assert cfg["reliability_threshold"] == 0.2
    assert len(roi_set(cfg["rois"])["rois"]) == 19
    assert all(m["weights"] != "oracle" for m in cfg["models"])


@pytest.mark.parametrize("name", ["bmd.yaml", "algonauts.yaml"])
def test_real_data_configs_fail_clearly_without_data(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # dataset.root is relative to the working directory
    assert main(["check-data", "--config", str(DEFAULT_REPO / "config" / name)]) == 1
    assert "dataset root not found (dataset.root" in capsys.readouterr().err
