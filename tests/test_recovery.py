"""Ground-truth recovery (SPEC.md §5 "Recovery acceptance") on synth seeds 1, 2 and 3 of the
embedded default.

Each seed runs the default workflow up to its tables in a temporary directory (about 5 minutes on
2 cores alone). Seed 1 (the default) runs in ``make test``; seeds 2 and 3 are marked
``recovery`` and run by ``make test-recovery`` (CI runs it after ``make test``). The quantities
come from ``tests/recovery_checks.py`` (``python -m tests.recovery_checks RUN_DIR`` prints them
all). Outcomes known to miss their floor are strict xfails in ``KNOWN_MISSES`` with the measured
value, so the suite fails as soon as one is fixed and the entry must go.

With ``ALIGNPATTERNS_RECOVERY_DIR`` set, a seed whose ``$ALIGNPATTERNS_RECOVERY_DIR/seed<n>``
holds a finished run (``config.yaml`` and ``results/tables/apa_summary.parquet``) is read from
there instead of being run again (to re-check the assertions against runs made by hand).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import recovery_checks as rc

REPO = Path(__file__).resolve().parents[1]
SEEDS = [1, pytest.param(2, marks=pytest.mark.recovery),
         pytest.param(3, marks=pytest.mark.recovery)]

# (check, synth seed, measure[, variant]) → measured value that misses the floor (from the
# workflow runs of each seed; docs/status.md).
LP = "lp-ridge-pearson"
XN = "rsa-crossnobis-spearman"
CKA = "cka-linear-debiased"
# None since stop 26: at mix width 0.45 the oracle topped crossnobis RSA in only 50% of seed 2's
# ROIs (its re-seeded twin within -0.010 to +0.034 APS); width 0.35 gives 70% on every seed.
KNOWN_MISSES: dict[tuple, str] = {}


def expect(request, check: str, seed: int, *key) -> None:
    """Mark the running test as a strict xfail when ``(check, seed, *key)`` is a known miss."""
    reason = KNOWN_MISSES.get((check, seed, *key))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"seed {seed}: {reason}"))


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def recovery_run(request, tmp_path_factory):
    """(run, seed, config path) of the default workflow's tables on one synth seed."""
    seed = request.param
    done = Path(os.environ.get("ALIGNPATTERNS_RECOVERY_DIR", "/nonexistent")) / f"seed{seed}"
    if (done / "results/tables/apa_summary.parquet").exists():
        return rc.Run(done), seed, done / "config.yaml"
    wd = tmp_path_factory.mktemp(f"default-seed{seed}")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["dataset"]["synthesize"]["seed"] = seed
    config = wd / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    # the tables these tests read (not the figures nor the whole-model variant: time budget)
    tables = ["model_brain", "brain_brain", "ceilings", "apa_summary", "apa_confusion"]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(wd), "--configfile", str(config),
           "--cores", "2", *[f"results/tables/{t}.parquet" for t in tables]]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=wd, timeout=3600)
    assert res.returncode == 0, res.stderr[-4000:]
    return rc.Run(wd), seed, config


pytestmark = [pytest.mark.slow, pytest.mark.workflow]


@pytest.mark.parametrize("measure", rc.MEASURES)
@pytest.mark.parametrize("variant", ["offdiag", "normalized"])
def test_brain_baseline_is_stable(recovery_run, request, measure, variant):
    run, seed, _ = recovery_run
    expect(request, f"brain_{variant}", seed, measure)
    aps = rc.brain_aps(run, measure, variant)
    assert aps >= 0.5, aps


@pytest.mark.parametrize("measure", rc.MEASURES)
@pytest.mark.parametrize("variant", ["offdiag", "normalized"])
def test_brain_identifies_rois_above_twice_chance(recovery_run, request, measure, variant):
    run, seed, _ = recovery_run
    expect(request, "identification", seed, measure, variant)
    acc, chance, p = rc.identification(run, measure, variant)
    assert acc >= 2 * chance and p < 0.01, (acc, chance, p)


@pytest.mark.parametrize("measure", rc.PATTERN_MEASURES)
def test_group_pattern_matches_the_noiseless_pattern(recovery_run, request, measure):
    run, seed, _ = recovery_run
    expect(request, "pattern", seed, measure)
    r = rc.group_pattern_corr(run, measure)
    assert r >= 0.8, r


@pytest.mark.parametrize("measure", rc.ORACLE_MEASURES)
def test_oracle_has_the_top_aps(recovery_run, request, measure):
    run, seed, _ = recovery_run
    expect(request, "oracle_top", seed, measure)
    top = rc.oracle_top(run, measure)
    assert top >= 0.7, f"oracle top in {top:.0%} of ROIs"


@pytest.mark.parametrize("measure", rc.ORACLE_MEASURES)
def test_oracle_layer_is_the_true_layer(recovery_run, request, measure):
    run, seed, _ = recovery_run
    expect(request, "oracle_layer", seed, measure)
    hits = rc.oracle_layer_within_one(run, measure)
    assert hits >= 0.7, f"layer within ±1 in {hits:.0%} of ROIs"


@pytest.mark.parametrize("measure", rc.ORACLE_MEASURES)
def test_generator_architecture_beats_near_identity_inits_on_deep_rois(recovery_run, request,
                                                                      measure):
    run, seed, _ = recovery_run
    expect(request, "generator_arch", seed, measure)
    margins = rc.generator_arch_margins(run, measure)
    assert len(margins) == len(rc.NEAR_IDENTITY)
    assert min(margins.values()) > 0.3, margins


@pytest.mark.parametrize("measure", [XN, CKA])
def test_oracle_verdicts_follow_expected_pass(recovery_run, request, measure):
    """With 6 subjects and 1000 stimulus permutations every model cell has a verdict, and the
    oracle's verdict equals the noise-free ``expected_pass`` of ``ground_truth.json`` (the
    verdict without measurement noise, with the subjects' jackknife intervals;
    docs/synthetic.md) in ≥ 70% of ROIs. The oracle is expected to pass somewhere, and passes
    at least half of the ROIs it is expected to pass (agreement alone would also hold for an
    oracle that passes nothing where nothing is expected)."""
    run, seed, _ = recovery_run
    expect(request, "oracle_expected", seed, measure)
    s = run.table("apa_summary")
    cells = s[(s["measure"] == measure) & (s["variant"] == "offdiag")
              & (s["candidate"] != "brain")]
    assert cells["passes"].notna().all()
    assert (cells["p_stimulus"] > 0).all() and (cells["q_stimulus"] >= cells["p_stimulus"]).all()
    agree, n_expected, n_hit = rc.oracle_expected_agreement(run, measure)
    assert agree >= 0.7, (agree, n_expected, n_hit)
    assert n_expected >= 1 and n_hit >= 0.5 * n_expected, (agree, n_expected, n_hit)


@pytest.fixture(scope="module")
def negative_controls(recovery_run):
    run, _, config = recovery_run
    return rc.negative_controls(run, config)


def test_gaussian_and_stimulus_shuffled_features_never_pass(negative_controls, recovery_run,
                                                           request):
    expect(request, "negative_controls", recovery_run[1])
    s = negative_controls
    assert set(s["candidate"]) == {"gaussian", "permuted-oracle"}
    assert s["passes"].notna().all()
    assert not s["passes"].any(), s[s["passes"]][["measure", "variant", "candidate", "roi"]]


@pytest.fixture(scope="module")
def shuffle_calibration(recovery_run):
    run, _, config = recovery_run
    return rc.shuffle_calibration(run, config)


def test_stimulus_permutation_p_values_are_calibrated(shuffle_calibration, recovery_run):
    """The stimulus-permutation p-values of models without a stimulus-locked signal are
    uniform: over 16 independent stimulus shuffles of the oracle's features (every cell of
    3 measures × 4 variants × 2 selections × the ROIs), p < 0.05 in at most 10% of cells,
    p < 0.01 in at most 3.5%, mean p ≥ 0.4; and at most one shuffle passes anywhere.

    One shuffle cannot show this: its chance alignment repeats over the ROIs that share a
    latent, over variants and selections. On seed 1, 102 shuffles gave p < 0.05 in 5.6%
    (± 0.6%) of cells, p < 0.01 in 1.2%, mean p 0.50; resampling them, 16 shuffles exceed
    these bounds with probability ≈ 0.5% each (docs/status.md). The oracle's own cells of the
    same measures, which carry the signal, are far outside them (p < 0.05 in 95–100%).

    A shuffle passes only where its chance profile's Δ interval clears −margin, which the
    shuffles' near-zero alignment makes rare but not impossible where the brain baseline is
    low: over 208 shuffles on seeds 1–3 (stop 26), one passed, in one of its 240 cells (seed 2,
    LP offdiag V4, brain APS 0.44, p 0.001), so "no pass anywhere" would test luck; the shuffle
    is the independent unit (its cells share one chance alignment). SPEC.md's "never pass" is
    asserted on the two fixed controls
    (test_gaussian_and_stimulus_shuffled_features_never_pass)."""
    s = shuffle_calibration
    assert s["candidate"].nunique() == rc.N_CALIBRATION_SHUFFLES
    assert s["p_stimulus"].notna().all() and (s["p_stimulus"] > 0).all()
    p = s["p_stimulus"]
    assert (p < 0.05).mean() <= 0.10, (p < 0.05).mean()
    assert (p < 0.01).mean() <= 0.035, (p < 0.01).mean()
    assert p.mean() >= 0.4, p.mean()
    summary = recovery_run[0].table("apa_summary")
    oracle = summary[(summary["candidate"] == "oracle")
                     & summary["measure"].isin(rc.CONTROL_MEASURES)]["p_stimulus"]
    assert len(oracle) and (oracle < 0.05).mean() > 0.5, (oracle < 0.05).mean()
    assert s["passes"].notna().all()
    assert s.groupby("candidate")["passes"].any().sum() <= 1, \
        s[s["passes"]][["measure", "variant", "selection", "candidate", "roi"]]
