"""Noise ceilings and the conventional per-ROI summary, against direct computations."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.data.bmd import BMDLayout, prepare_subject
from alignpatterns.measures import rdm
from alignpatterns.measures.ceilings import ncsnr, rsa_noise_ceiling
from alignpatterns.patterns.conventional import ceiling_rows, summarize_model_brain


@pytest.fixture(scope="module")
def subjects(tiny_dataset):
    root, truth = tiny_dataset
    return {s: prepare_subject(BMDLayout(root), s, truth["rois"], "synthetic", min_vertices=5)
            for s in truth["subjects"]}, truth


def test_lp_ceiling_is_mean_sqrt_nc(subjects):
    subs, truth = subjects
    rows = pd.DataFrame(ceiling_rows(subs, truth["rois"], ["lp-ridge-pearson"]))
    roi = truth["rois"][0]
    d = subs["02"].rois[roi]
    nc = ncsnr(d.test_reps, n=10)[1] / 100  # test ncsnr from the betas themselves
    got = rows.query("subject == '02' and roi == @roi and split == 'test'")["value"].item()
    assert got == pytest.approx(np.mean(np.sqrt(nc)), rel=1e-10)
    assert 0 < got < 1


def _roi_with_reps(rng, n_train_reps, n_test_reps, v=12, n=30):
    from alignpatterns.data.bmd import ROIData

    signal = rng.standard_normal((n, 1, v))
    tr = signal + rng.standard_normal((n, n_train_reps, v))
    te = signal + rng.standard_normal((n, n_test_reps, v))
    return ROIData(np.arange(v), tr, te, tr.mean(1), te.mean(1), ncsnr(tr)[0], ncsnr(te)[0],
                   float(n_test_reps))


def test_lp_ceiling_uses_the_split_s_own_repetition_count():
    """Algonauts' held-out test split has 3 repetitions, not BMD's 10: NC uses n = 3."""
    from alignpatterns.data.bmd import SubjectData

    rng = np.random.default_rng(7)
    subs = {s: SubjectData(s, [], [], {"A": _roi_with_reps(rng, 3, k)})
            for s, k in (("01", 3), ("02", 10))}
    rows = pd.DataFrame(ceiling_rows(subs, ["A"], ["lp-ridge-pearson"]))
    for s, k in (("01", 3), ("02", 10)):
        d = subs[s].rois["A"]
        for split, snr, n in (("test", d.ncsnr_test, k), ("train", d.ncsnr_train, 3)):
            row = rows.query("subject == @s and split == @split").iloc[0]
            nc = ncsnr(d.test_reps if split == "test" else d.train_reps, n=n)[1] / 100
            assert row["value"] == pytest.approx(np.mean(np.sqrt(nc)), rel=1e-10)
            assert row["value"] == pytest.approx(np.mean(np.sqrt(snr**2 / (snr**2 + 1 / n))))
            assert row["n_reps"] == n
    # with n = 10 the 3-repetition subject's ceiling would be inflated
    d = subs["01"].rois["A"]
    inflated = np.mean(np.sqrt(d.ncsnr_test**2 / (d.ncsnr_test**2 + 1 / 10)))
    assert inflated > rows.query("subject == '01' and split == 'test'")["value"].item() + 0.02


@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "rsa-correlation-spearman",
                                     "cka-linear-debiased"])
def test_split_half_ceiling_is_nan_when_nan_repetitions_empty_a_half(measure):
    """NaN repetitions that leave a stimulus without data in one half make that half's
    representation undefined: a NaN ceiling (the column is then dropped), not a crash."""
    from alignpatterns.data.bmd import SubjectData

    rng = np.random.default_rng(8)
    bad, good = _roi_with_reps(rng, 3, 10), _roi_with_reps(rng, 3, 10)
    # stimulus 0 loses every odd repetition but one, stimulus 1 all odd ones
    bad.test_reps[0, [0, 2, 4, 6]] = np.nan
    bad.test_reps[1, 0::2] = np.nan
    subs = {"01": SubjectData("01", [], [], {"bad": bad, "good": good})}
    rows = pd.DataFrame(ceiling_rows(subs, ["bad", "good"], [measure]))
    half = rows[rows["kind"] == "split_half"].set_index("roi")["value"]
    assert np.isnan(half["bad"])
    assert np.isfinite(half["good"]) and half["good"] > 0.5


def test_rsa_ceiling_uses_crossnobis_brain_rdms(subjects):
    subs, truth = subjects
    measure = "rsa-crossnobis-spearman"
    rows = pd.DataFrame(ceiling_rows(subs, truth["rois"], [measure]))
    roi = truth["rois"][1]
    rdms = np.stack([rdm(subs[s].rois[roi].test_reps, "crossnobis") for s in truth["subjects"]])
    lower, upper = rsa_noise_ceiling(rdms, "spearman")
    got = rows.query("roi == @roi and split == 'test'").set_index(["kind", "subject"])["value"]
    for i, s in enumerate(truth["subjects"]):
        assert got["ceiling_lower", s] == pytest.approx(lower[i], abs=1e-12)
        assert got["ceiling_upper", s] == pytest.approx(upper[i], abs=1e-12)
    assert np.all(lower <= upper + 1e-12)


def test_summary_selects_on_train_and_reports_test():
    rng = np.random.default_rng(0)
    rows = []
    subjects = [f"{i:02d}" for i in range(1, 6)]
    for model, layer, s in itertools.product(["a", "b"], range(3), subjects):
        train = {0: 0.1, 1: 0.5, 2: 0.3}[layer] + (0.2 if model == "a" else 0.0)
        test = train + rng.normal(0, 0.05)
        for split, score in (("train", train), ("test", test)):
            rows.append({"measure": "m", "model": model, "weights": "random",
                         "layer": f"L{layer}", "layer_index": layer, "subject": s, "roi": "V1",
                         "split": split, "score": score, "n_source_dims": 4, "n_vertices": 9})
    mb = pd.DataFrame(rows)
    ceil = pd.DataFrame({"measure": "m", "subject": subjects, "roi": "V1", "split": "test",
                         "kind": "lp_ceiling", "value": 0.8, "n_reps": 10.0})
    out = summarize_model_brain(mb, ceil).set_index("model")
    assert (out["layer"] == "L1").all()
    te = mb.query("model == 'a' and layer == 'L1' and split == 'test'")["score"].to_numpy()
    lo, hi = stats.t.interval(0.95, len(te) - 1, loc=te.mean(), scale=stats.sem(te))
    assert out.loc["a", "score_mean"] == pytest.approx(te.mean())
    assert (out.loc["a", "ci_low"], out.loc["a", "ci_high"]) == pytest.approx((lo, hi))
    assert out.loc["a", "normalized"] == pytest.approx(te.mean() / 0.8)
    # b is ~0.2 below a with a tight interval: distinguishable from the best (paper rule)
    assert bool(out.loc["b", "distinguishable_from_best"])
    assert not bool(out.loc["a", "distinguishable_from_best"])


def test_summary_paper_rule_reads_the_percentile_bootstrap_bound():
    """The paper preset's rule compares a model's mean with the best model's lower bound of a
    percentile subject bootstrap (the released code's interval), not with a t-interval."""
    from alignpatterns.patterns.streams import stream

    subjects = [f"{i:02d}" for i in range(1, 11)]
    best = np.random.default_rng(3).normal(0.30, 0.02, len(subjects))
    t_lo = stats.t.interval(0.95, len(best) - 1, loc=best.mean(), scale=stats.sem(best))[0]
    idx = stream(7, "m", "V1", "conventional-bootstrap").integers(
        0, len(best), size=(1000, len(best)))
    boot_lo, boot_hi = np.percentile(best[idx].mean(axis=1), [2.5, 97.5])
    assert t_lo < boot_lo  # 10 subjects: the percentile interval is the narrower
    other = np.full(len(subjects), (t_lo + boot_lo) / 2)  # between the two lower bounds
    rows = [{"measure": "m", "model": model, "weights": "random", "layer": "L0",
             "layer_index": 0, "subject": s, "roi": "V1", "split": split, "score": v,
             "n_source_dims": 4, "n_vertices": 9}
            for model, te in (("best", best), ("other", other))
            for s, v in zip(subjects, te, strict=True) for split in ("train", "test")]
    mb = pd.DataFrame(rows)
    ceil = pd.DataFrame({"measure": "m", "subject": subjects, "roi": "V1", "split": "test",
                         "kind": "lp_ceiling", "value": 0.8, "n_reps": 10.0})
    boot = summarize_model_brain(mb, ceil, ci="percentile-bootstrap", n_bootstrap=1000,
                                 seed=7).set_index("model")
    assert (boot.loc["best", "ci_low"], boot.loc["best", "ci_high"]) == pytest.approx(
        (boot_lo, boot_hi))
    assert bool(boot.loc["other", "distinguishable_from_best"])
    t = summarize_model_brain(mb, ceil).set_index("model")
    assert t.loc["best", "ci_low"] == pytest.approx(t_lo)
    assert not bool(t.loc["other", "distinguishable_from_best"])
    with pytest.raises(ValueError, match="ci must be one of"):
        summarize_model_brain(mb, ceil, ci="bca")


@pytest.mark.parametrize(
    "measure", ["rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased"]
)
def test_split_half_reliability_tracks_the_noise_level(measure):
    from alignpatterns.data.bmd import ROIData
    from alignpatterns.patterns.conventional import split_half_reliability

    rng = np.random.default_rng(0)
    signal = rng.standard_normal((40, 1, 30))

    def roi(noise):
        reps = signal + noise * rng.standard_normal((40, 10, 30))
        avg = reps.mean(axis=1)
        return ROIData(np.arange(30), reps[:, :3], reps, avg, avg, np.ones(30), np.ones(30), 10.0)

    clean, mid, pure = roi(0.05), roi(1.5), None
    pure_reps = rng.standard_normal((40, 10, 30))
    pure = ROIData(np.arange(30), pure_reps[:, :3], pure_reps, pure_reps.mean(1),
                   pure_reps.mean(1), np.ones(30), np.ones(30), 10.0)
    r_clean, r_mid, r_pure = (split_half_reliability(d, measure) for d in (clean, mid, pure))
    assert r_clean > 0.97
    assert 0.2 < r_mid < r_clean
    assert abs(r_pure) < 0.35


def test_effective_repetitions_is_the_harmonic_mean_of_the_counts():
    """σ²/n must be the mean noise variance of the averages: n is the harmonic mean over
    stimuli of each vertex's non-NaN repetition counts (SPEC.md §3)."""
    from alignpatterns.measures.ceilings import effective_repetitions

    b = np.ones((4, 10, 3))
    np.testing.assert_array_equal(effective_repetitions(b), [10.0, 10.0, 10.0])
    b[0, :5, 0] = np.nan  # vertex 0: counts 5, 10, 10, 10
    b[1, :, 1] = np.nan  # vertex 1: stimulus 1 has none, counts 10, 10, 10
    b[:, :, 2] = np.nan  # vertex 2: no data
    n = effective_repetitions(b)
    assert n[0] == pytest.approx(4 / (1 / 5 + 3 / 10))
    assert n[1] == pytest.approx(10.0) and np.isnan(n[2])
    # the n for which the noise variance of the averages is σ²/n: simulated, unit σ
    rng = np.random.default_rng(0)
    noise = [rng.standard_normal((200_000, c)).mean(1).var() for c in (5, 10, 10, 10)]
    assert np.mean(noise) == pytest.approx(1 / n[0], rel=0.02)


def test_lp_ceiling_with_nan_repetitions_uses_the_harmonic_mean_count():
    from alignpatterns.data.bmd import SubjectData

    rng = np.random.default_rng(9)
    d = _roi_with_reps(rng, 3, 10)
    d.test_reps[:10, 5:] = np.nan  # a third of the stimuli have 5 of 10 repetitions
    d = dataclasses.replace(d, ncsnr_test=ncsnr(d.test_reps)[0])
    subs = {"01": SubjectData("01", [], [], {"A": d})}
    row = pd.DataFrame(ceiling_rows(subs, ["A"], ["lp-ridge-pearson"])).query(
        "split == 'test'").iloc[0]
    n = 30 / (10 / 5 + 20 / 10)
    assert row["n_reps"] == pytest.approx(n)
    snr = d.ncsnr_test
    assert row["value"] == pytest.approx(np.mean(np.sqrt(snr**2 / (snr**2 + 1 / n))))
    assert row["value"] == pytest.approx(np.mean(np.sqrt(ncsnr(d.test_reps)[1] / 100)))
    nominal = np.mean(np.sqrt(snr**2 / (snr**2 + 1 / 10)))
    assert nominal > row["value"]
