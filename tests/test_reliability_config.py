"""Config errors stop the workflow before any job runs, naming the key path (docs/bad_inputs.md)."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from alignpatterns.config import ConfigError, load_config, resolve_config, validate_config
from tests.conftest import REPO, snakemake_cmd

TINY = load_config(REPO / "tests" / "config" / "tiny.yaml")


def _with(**changes) -> dict:
    """The tiny config with ``changes`` applied; keys are dotted paths, ``None`` deletes."""
    cfg = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = cfg
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is None:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return cfg


# (config change, text the message must contain); keys path "a__b" = cfg["a"]["b"]
SCHEMA_CASES = {
    "unknown top-level key": (
        {"measure": ["lp-ridge-pearson"]},
        ["config key measure: unknown key", "did you mean 'measures'?"]),
    "unknown nested key": (
        {"lp__inner_fold": 3},
        ["config key lp.inner_fold: unknown key", "inner_folds", "did you mean 'inner_folds'?"]),
    "wrong type": (
        {"seed": "three"}, ["config key seed: 'three' is not of type 'integer'"]),
    "wrong type in a list": (
        {"lp__alphas": [1, "ten"]}, ["config key lp.alphas[1]: 'ten' is not of type 'number'"]),
    "out of range": (
        {"lp__outer_folds": 1}, ["config key lp.outer_folds: 1 is less than the minimum of 2"]),
    "measure name typo": (
        {"measures": ["rsa-crossnobis-spearman", "lp-ridge-pearsen"]},
        ["config key measures[1]: 'lp-ridge-pearsen' is not one of",
         "did you mean 'lp-ridge-pearson'?"]),
    "duplicate measure": (
        {"measures": ["cka-linear-debiased", "cka-linear-debiased"]},
        ["config key measures: ", "non-unique elements"]),
    "APA variant typo": (
        {"apa__variants": ["full", "ofdiag"]},
        ["config key apa.variants[1]: 'ofdiag' is not one of", "did you mean 'offdiag'?"]),
    "device typo": ({"device": "gpu"}, ["config key device: 'gpu' is not one of"]),
    "non-positive ceiling threshold": (  # 0 would keep a zero ceiling and divide by it
        {"apa__min_ceiling": 0}, ["config key apa.min_ceiling: 0 is less than or equal to"]),
    "missing required key": (
        {"models__0__weights": None}, ["config key models[0]: 'weights' is a required property"]),
    "unknown key in a model entry": (
        {"models__0__layer": "blocks.1"}, ["config key models[0].layer: unknown key"]),
    "unknown synthesize key": (
        {"dataset__synthesize__subject": 4},
        ["config key dataset.synthesize.subject: unknown key", "did you mean 'subjects'?"]),
    "subject id pattern": (
        {"subjects": ["1"]}, ["config key subjects[0]: '1' does not match"]),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_schema_errors_name_the_key_path(case):
    changes, expected = SCHEMA_CASES[case]
    with pytest.raises(ConfigError) as info:
        validate_config(_with(**changes), "my.yaml")
    msg = str(info.value)
    assert msg.startswith("my.yaml: invalid config: config key ")
    for text in expected:
        assert text in msg, msg
    assert "\n" not in msg  # one line, not the schema dump


RESOLVE_CASES = {
    "unknown model": (
        {"models__0__name": "mobilenetv3_small_10"},
        ["config key models[0].name: model 'mobilenetv3_small_10' is not in "
         "resources/models.yaml", "did you mean 'mobilenetv3_small_100'?"]),
    "unknown ROI set": (
        {"rois": "glasser"}, ["config key rois: ", "ROI set 'glasser' not found",
                              "available: [", "'glasser19'", "'synthetic'"]),
    "unknown ROI name": (
        {"rois": ["V1", "V5"]},
        ["config key rois[1]: ROI 'V5' is not in the synthesized dataset", "'V1', 'V2', 'V3'"]),
    "ROI beyond the synthesized ones": (
        {"rois": ["V1", "FFC"]}, ["config key rois[1]: ROI 'FFC' is not in the synthesized"]),
    "unknown subject": (
        {"subjects": ["01", "07"]},
        ["config key subjects[1]: subject '07' is not in the synthesized dataset"]),
    "oracle written wrongly": (
        {"models__1__weights": "random"},
        ["config key models[1]: the oracle is written {name: oracle, weights: oracle}"]),
}


@pytest.mark.parametrize("case", sorted(RESOLVE_CASES))
def test_registry_and_dataset_errors_name_the_key_path(case):
    changes, expected = RESOLVE_CASES[case]
    cfg = validate_config(_with(**changes))  # valid for the schema ...
    with pytest.raises(ConfigError) as info:  # ... but not for the registry or the dataset
        resolve_config(cfg)
    for text in expected:
        assert text in str(info.value), str(info.value)


def test_valid_config_passes_and_gets_defaults():
    cfg = validate_config(_with(features=None, lp__n_components=None))
    assert cfg["features"] == {"n_frames": 4, "size": 112, "pool_grid": 4, "batch_size": 32}
    assert cfg["lp"]["x_scaling"] == "global" and cfg["lp"]["n_components"] == 20
    assert resolve_config(cfg)["rois"] == ["V1", "V2", "V3", "V4"]


@pytest.mark.workflow
@pytest.mark.parametrize("changes, expected", [
    ({"lp__inner_fold": 3}, "invalid config: config key lp.inner_fold: unknown key"),
    ({"models__0__name": "resnet5"}, "config key models[0].name: model 'resnet5' is not in"),
], ids=["unknown key", "unknown model"])
def test_snakemake_stops_before_any_job(changes, expected, tmp_path):
    """Through Snakemake itself (``validate`` in common.smk): no job runs, nothing is written."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(**changes)))
    cmd = snakemake_cmd(tmp_path, "--configfile", str(bad))
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert expected in res.stderr, res.stderr[-3000:]
    assert "Failed validating" not in res.stderr  # the key path, not the schema dump
    assert {p.name for p in tmp_path.iterdir()} <= {".snakemake", "bad.yaml"}
    assert not list((tmp_path / ".snakemake").glob("metadata/*"))


def test_cli_reports_the_key_path(tmp_path, capsys):
    from alignpatterns.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(lp__inner_fold=3)))
    assert main(["info", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"error: {bad}: invalid config: config key lp.inner_fold: unknown key" in err
