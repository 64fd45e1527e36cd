"""Ground-truth recovery on the embedded default (SPEC.md §5 floors; one synth seed).

Runs the default workflow up to its tables in a temporary directory (about 5 minutes on 2
cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alignpatterns.io import read_table
from alignpatterns.patterns.apa import selected_layers

REPO = Path(__file__).resolve().parents[1]
# LP does not meet the floors with the current generative model: with the generator's layers
# sharing their dominant components, LP profiles are shaped by target reliability more than by
# content, and a noise-free model's profile is flatter than a noisy brain source's
# (docs/status.md). Those two run and report; everything else is a hard assertion (LP's layer
# choice does recover the true layer).
LP_NOT_YET = pytest.mark.xfail(reason="LP recovery floors not met yet (docs/status.md)",
                               strict=False)
MEASURES = [
    "rsa-crossnobis-spearman",
    "cka-linear-debiased",
    pytest.param("lp-ridge-pearson", marks=LP_NOT_YET),
]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("default")
    # the tables these tests read (not the figures nor the whole-model variant: time budget)
    tables = ["model_brain", "brain_brain", "ceilings", "apa_summary", "apa_confusion"]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(wd), "--configfile", str(REPO / "config" / "config.yaml"),
           "--cores", "2", *[f"results/tables/{t}.parquet" for t in tables]]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=wd, timeout=1800)
    assert res.returncode == 0, res.stderr[-4000:]
    truth = json.loads((wd / "results/data/synthetic_bmd/ground_truth.json").read_text())
    return wd, truth, read_table(wd / "results/tables/apa_summary.parquet")


def _offdiag(summary, measure):
    """The primary cells: variant offdiag, layers selected by train score."""
    return summary[(summary["measure"] == measure) & (summary["variant"] == "offdiag")
                   & (summary["selection"] == "score")]


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", MEASURES)
def test_brain_baseline_is_stable(default_run, measure):
    _, _, s = default_run
    brain = _offdiag(s, measure).query("candidate == 'brain'")["aps_mean"]
    assert brain.mean() >= 0.5, brain.round(2).tolist()


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", MEASURES)
def test_oracle_has_the_top_aps(default_run, measure):
    _, truth, s = default_run
    cells = _offdiag(s, measure).query("candidate != 'brain'")
    top = [cells[cells["roi"] == r].sort_values("aps_mean").iloc[-1]["candidate"] == "oracle"
           for r in truth["rois"]]
    assert np.mean(top) >= 0.7, f"oracle top in {np.mean(top):.0%} of ROIs"


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "cka-linear-debiased",
                                     "lp-ridge-pearson"])
def test_oracle_layer_is_the_true_layer(default_run, measure):
    wd, truth, _ = default_run
    mb = read_table(wd / "results/tables/model_brain.parquet")
    sel = selected_layers(mb[(mb["measure"] == measure) & (mb["model"] == "oracle")],
                          truth["subjects"], truth["rois"])
    layers = truth["generator_layers"]
    hits = [np.mean(np.abs(sel[sel["roi"] == r]["layer"].map(layers.index).to_numpy()
                           - truth["roi_true_layer"][r]) <= 1) >= 0.5 for r in truth["rois"]]
    assert np.mean(hits) >= 0.7, f"layer within ±1 in {np.mean(hits):.0%} of ROIs"


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "cka-linear-debiased"])
def test_group_pattern_matches_the_noiseless_pattern(default_run, measure):
    wd, truth, _ = default_run
    bb = read_table(wd / "results/tables/brain_brain.parquet")
    bb = bb[(bb["measure"] == measure) & (bb["split"] == "test")]
    rois = truth["rois"]
    est = bb.groupby(["source_roi", "target_roi"])["score"].mean().unstack().loc[rois, rois]
    expected = np.array(truth["expected_pattern"][measure])
    r = np.corrcoef(est.to_numpy().ravel(), expected.ravel())[0, 1]
    assert r >= 0.8, r


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "rsa-correlation-spearman",
                                     "cka-linear-debiased", "lp-ridge-pearson"])
def test_brain_baseline_is_stable_on_normalized(default_run, measure):
    _, _, s = default_run
    d = s[(s["measure"] == measure) & (s["variant"] == "normalized")]
    brain = d.query("candidate == 'brain'")["aps_mean"]
    assert brain.mean() >= 0.5, brain.round(2).tolist()


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "cka-linear-debiased"])
def test_oracle_passes_in_most_rois_and_verdicts_are_complete(default_run, measure):
    """With 6 subjects and 1000 stimulus permutations every model cell has a verdict; the
    oracle (the generator's own weights) passes more ROIs than any other candidate."""
    _, _, s = default_run
    cells = _offdiag(s, measure).query("candidate != 'brain'")
    assert cells["passes"].notna().all()
    assert (cells["p_stimulus"] > 0).all() and (cells["q_stimulus"] >= cells["p_stimulus"]).all()
    n_pass = cells.groupby("candidate")["passes"].sum()
    assert n_pass["oracle"] >= 5, n_pass.to_dict()
    assert n_pass["oracle"] > n_pass.drop("oracle").max(), n_pass.to_dict()


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize(("measure", "variant"), [
    ("rsa-crossnobis-spearman", "offdiag"), ("cka-linear-debiased", "offdiag"),
    ("rsa-crossnobis-spearman", "normalized"), ("cka-linear-debiased", "normalized"),
    ("lp-ridge-pearson", "normalized"),
])
def test_brain_identifies_rois_above_twice_chance(default_run, measure, variant):
    wd, _, _ = default_run
    c = read_table(wd / "results/tables/apa_confusion.parquet")
    brain = c[(c["measure"] == measure) & (c["variant"] == variant) & (c["candidate"] == "brain")]
    acc, chance = brain["top1_accuracy"].iloc[0], brain["chance"].iloc[0]
    assert acc >= 2 * chance, (acc, chance)
    assert brain["top1_p"].iloc[0] < 0.01


CONTROL_MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson"]


@pytest.fixture(scope="module")
def negative_controls(default_run):
    """APA verdicts of two candidates that carry no stimulus information about the brain:
    Gaussian features, and the oracle's own features with the stimuli shuffled (one fixed
    permutation of all stimuli, so train selection and test scoring see the same mismatch).
    Both are scored exactly like a model (layer selection on train, 1000 stimulus
    permutations, BH within the two controls — a smaller family than the workflow's, so
    passing would be easier, not harder)."""
    import pandas as pd
    import yaml

    from alignpatterns import pipeline
    from alignpatterns.config import resolve_config
    from alignpatterns.data.prepared import load_subject
    from alignpatterns.patterns.alignment import model_brain_scores
    from alignpatterns.patterns.apa import run_apa
    from alignpatterns.patterns.streams import stimulus_permutations

    wd, truth, _ = default_run
    cfg = resolve_config(yaml.safe_load((REPO / "config/config.yaml").read_text()), repo=REPO)
    oracle, _ = pipeline.load_features(wd / "results/features/oracle.npz")
    keep = sorted({truth["generator_layers"][i] for i in truth["roi_true_layer"].values()})
    rng = np.random.default_rng(2024)
    n_train = len(next(iter(oracle.values()))[0])
    shuffle = rng.permutation(n_train + len(next(iter(oracle.values()))[1]))
    gaussian, permuted = {}, {}
    for name in keep:
        Z = np.concatenate(oracle[name])
        G = rng.standard_normal(Z.shape)
        gaussian[name] = (G[:n_train], G[n_train:])
        permuted[name] = (Z[shuffle][:n_train], Z[shuffle][n_train:])
    lp = pipeline._lp_options(cfg, wd / "results/data/dataset.json")
    subjects, rois = cfg["subjects"], cfg["rois"]
    rows, nulls = [], {}
    for cand, feats in (("gaussian", gaussian), ("permuted-oracle", permuted)):
        per_sub = []
        for s in subjects:
            sd = load_subject(wd / f"results/brain/sub-{s}.npz")
            perms = {m: stimulus_permutations(cfg["seed"], m, cand, 1000, len(sd.test_ids))
                     for m in CONTROL_MEASURES}
            r, n = model_brain_scores(feats, sd, rois, CONTROL_MEASURES, lp, perms)
            rows += [{**x, "model": cand, "weights": "control"} for x in r]
            per_sub.append(n)
        nulls[cand] = {m: np.stack([n[m] for n in per_sub], axis=2) for m in CONTROL_MEASURES}
    mb = pd.DataFrame(rows)
    bb = read_table(wd / "results/tables/brain_brain.parquet")
    ceilings = read_table(wd / "results/tables/ceilings.parquet")
    out = []
    for m in CONTROL_MEASURES:
        _, summary = run_apa(bb[bb["measure"] == m], mb[mb["measure"] == m], subjects, rois, m,
                             variants=cfg["apa"]["variants"], matches=["pearson"],
                             margin=cfg["apa"]["margin"], ceilings=ceilings,
                             min_ceiling=cfg["apa"]["min_ceiling"],
                             nulls={c: nulls[c][m] for c in nulls},
                             selections=cfg["apa"].get("selection", ["score"]))
        out.append(summary[summary["candidate"] != "brain"])
    return pd.concat(out, ignore_index=True)


@pytest.mark.slow
@pytest.mark.workflow
def test_gaussian_and_stimulus_shuffled_features_never_pass(negative_controls):
    s = negative_controls
    assert set(s["candidate"]) == {"gaussian", "permuted-oracle"}
    assert s["passes"].notna().all()
    assert not s["passes"].any(), s[s["passes"]][["measure", "variant", "candidate", "roi"]]
    # and not because of a degenerate table: the stimulus-permutation p-values are not small
    assert (s["q_stimulus"] >= 0.05).mean() >= 0.95
