"""The brain_avg baseline: a vertex-wise mean of k held-out subjects stands in (SPEC.md §4)."""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import pandas as pd
import pytest

from alignpatterns import io, pipeline
from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.data.prepared import save_subject
from alignpatterns.patterns import brain_avg as ba
from alignpatterns.patterns.alignment import LPOptions, brain_brain_rows
from alignpatterns.patterns.apa import run_apa
from alignpatterns.patterns.conventional import ceiling_rows

ROIS = ["A", "B", "C", "D", "E"]
RSA = "rsa-crossnobis-spearman"
N_TRAIN, N_TEST, N_VERT, N_KEEP = 24, 16, 16, 12


def _dataset(n_subjects, seed=0, noise=1.5, rois=ROIS):
    """Subjects sharing vertex-level signal (surface correspondence) plus repetition noise.

    ROI r's vertices respond to the stimulus features through a mixture of shared and
    ROI-specific weights, so the ROIs have distinct, partly shared geometries; every subject
    keeps a random subset of each ROI's vertices (a vertex index means the same location in
    every subject).
    """
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    F = rng.standard_normal((n, 6))
    common = rng.standard_normal((6, N_VERT))
    W = {r: 0.6 * common + rng.standard_normal((6, N_VERT)) for r in rois}
    out = {}
    for i in range(n_subjects):
        sid = f"{i + 1:02d}"
        cells = {}
        for j, roi in enumerate(rois):
            keep = np.sort(rng.choice(N_VERT, N_KEEP, replace=False))
            signal = (F @ W[roi])[:, keep]
            reps = {}
            for split, sl, n_reps in (("train", slice(0, N_TRAIN), 3),
                                      ("test", slice(N_TRAIN, n), 10)):
                x = signal[sl][:, None, :]
                reps[split] = x + noise * rng.standard_normal((x.shape[0], n_reps, N_KEEP))
            cells[roi] = ROIData(vertices=keep + j * N_VERT, train_reps=reps["train"],
                                 test_reps=reps["test"], train=reps["train"].mean(1),
                                 test=reps["test"].mean(1),
                                 ncsnr_train=rng.uniform(0.3, 1, N_KEEP),
                                 ncsnr_test=rng.uniform(0.3, 1, N_KEEP), n_reps_test=10.0)
        out[sid] = SubjectData(sid, [f"vid{k:04d}" for k in range(1, N_TRAIN + 1)],
                               [f"vid{k:04d}" for k in range(N_TRAIN + 1, n + 1)], cells)
    return out


def _bb(subjects, measure=RSA, rois=ROIS):
    rows = [r for t in subjects for r in brain_brain_rows(subjects, t, rois, measure,
                                                            LPOptions())]
    return pd.DataFrame(rows)


def _empty_mb():
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                         io.TABLE_SCHEMAS["model_brain"].items()})


def test_mean_of_identical_subjects_is_the_subject_and_vertices_intersect():
    sd = _dataset(2)["01"]
    twin = SubjectData("02", sd.train_ids, sd.test_ids, sd.rois)
    avg = ba.average_subjects([sd, twin])
    assert avg.subject == "01+02"
    for roi, d in sd.rois.items():
        a = avg.rois[roi]
        for f in ("vertices", "train_reps", "test_reps", "train", "test", "ncsnr_test"):
            np.testing.assert_array_equal(getattr(a, f), getattr(d, f))
    # different kept vertices: each vertex averaged over the subjects that kept it (union), or
    # only the vertices kept by all (intersection); by hand
    subs = _dataset(3)
    cells = [subs[s].rois["B"] for s in ("01", "02", "03")]
    for rule, combine in (("union", set.union), ("intersection", set.intersection)):
        avg = ba.average_subjects([subs["01"], subs["02"], subs["03"]], vertices=rule)
        verts = sorted(combine(*(set(c.vertices.tolist()) for c in cells)))
        np.testing.assert_array_equal(avg.rois["B"].vertices, verts)
        for f in ("test_reps", "train"):
            expect = np.stack([
                np.mean([getattr(c, f)[..., list(c.vertices).index(v)] for c in cells
                         if v in c.vertices], axis=0) for v in verts], axis=-1)
            np.testing.assert_allclose(getattr(avg.rois["B"], f), expect, rtol=1e-12)
    union2 = ba.average_subjects([subs["01"], subs["02"]]).rois["B"].vertices
    assert len(verts) < N_KEEP < len(union2)
    # fewer common vertices than min_vertices: a missing cell; a subject's missing cell too
    assert ba.average_subjects([subs["01"], subs["02"]], min_vertices=N_KEEP + 1,
                               vertices="intersection").rois["A"] is None
    subs["02"].rois["C"] = None
    assert ba.average_subjects([subs["01"], subs["02"]]).rois["C"] is None
    other = SubjectData("09", sd.test_ids + sd.train_ids, [], sd.rois)
    with pytest.raises(ValueError, match="sub-09 has other stimuli"):
        ba.average_subjects([sd, other])


def test_stand_in_sets_all_or_a_seeded_capped_draw():
    subs = [f"{i:02d}" for i in range(1, 11)]
    assert ba.stand_in_sets(1, subs, "03", 1, 2) == [(s,) for s in subs if s != "03"]
    assert ba.stand_in_sets(1, subs[:5], "01", 2, 10) == list(
        itertools.combinations(subs[1:5], 2))  # C(4, 2) = 6 ≤ 10: all of them
    draw = ba.stand_in_sets(1, subs, "03", 4, 5)
    assert len(draw) == len(set(draw)) == 5
    assert all(len(K) == 4 and "03" not in K and list(K) == sorted(K) for K in draw)
    assert draw == ba.stand_in_sets(1, subs, "03", 4, 5)  # seeded
    assert draw != ba.stand_in_sets(2, subs, "03", 4, 5)
    assert ba.stand_in_sets(1, subs[:6], "01", 4, 5) == []  # 6 < 4 + 3 subjects
    assert ba.min_subjects(4) == 7


@pytest.mark.parametrize("measure", ["rsa-crossnobis-spearman", "rsa-correlation-spearman",
                                     "cka-linear-debiased", "lp-ridge-pearson"])
def test_k1_scores_equal_the_brain_brain_test_scores(measure):
    subs = _dataset(4, seed=1)
    lp = LPOptions(alphas=(1.0, 100.0), inner_cv=3, outer_cv=3, n_components=5)
    got = pd.DataFrame(ba.brain_avg_score_rows(subs, "02", ROIS, measure, [1], 5, 0, lp))
    bb = pd.DataFrame(brain_brain_rows(subs, "02", ROIS, measure, lp))
    bb = bb[bb["split"] == "test"]
    m = got.merge(bb, left_on=["stand_in", "source_roi", "target_roi"],
                  right_on=["source_subject", "source_roi", "target_roi"], validate="1:1")
    assert len(m) == 3 * len(ROIS) ** 2
    np.testing.assert_allclose(m["score_x"], m["score_y"], rtol=1e-10, atol=1e-12)
    assert (m["n_source_dims_x"] == m["n_source_dims_y"]).all()
    assert (got["n_source_vertices"] == N_KEEP).all()


def test_k1_aps_and_interval_equal_the_apa_brain_baseline():
    rois = [*ROIS, "F", "G"]  # residual: ≥ 3 entries left after regressing 2 covariates
    subs = _dataset(6, seed=2, rois=rois)
    bb = _bb(subs, rois=rois)
    ceilings = pd.DataFrame(ceiling_rows(subs, rois, [RSA]))
    # (Spearman on fewer subjects and ROIs: run_apa compares ranks one pair at a time)
    for variants, match, n_s, n_r in ((["full", "offdiag", "normalized", "normalized_offdiag",
                                        "residual"], "pearson", 6, 7), (["offdiag"], "spearman",
                                                                         5, 5)):
        subjects, use = list(subs)[:n_s], rois[:n_r]
        got = ba.brain_avg_aps(bb, None, subjects, use, RSA, ks=[1], variants=variants,
                               matches=[match], ceilings=ceilings, min_ceiling=0.0)
        _, summary = run_apa(bb, _empty_mb(), subjects, use, RSA, variants=variants,
                             matches=[match], ceilings=ceilings, min_ceiling=0.0)
        m = got.merge(summary[summary["candidate"] == "brain"], on=["variant", "match", "roi"],
                      validate="1:1")
        assert len(m) == len(variants) * n_r
        assert np.isfinite(m["aps_brain_avg"]).all() and np.isfinite(m["ci_low"]).all()
        for a, b in (("aps_brain_avg", "aps_mean"), ("ci_low", "aps_ci_low"),
                     ("ci_high", "aps_ci_high")):
            np.testing.assert_allclose(m[a], m[b], rtol=1e-12, atol=1e-14)
        assert (m["n_sets"] == n_s * (n_s - 1)).all() and (m["n_targets"] == n_s).all()
        assert m["reason"].isna().all()


def _independent_aps(bb, scores, subjects, roi, k, members):
    """APS_brain_avg (full variant, Pearson) by direct loops over the long tables."""
    A = bb[bb["split"] == "test"].set_index(
        ["source_subject", "target_subject", "source_roi", "target_roi"])["score"]
    per_target = []
    for s in members:
        vals = []
        for label, g in scores[(scores["k"] == k) & (scores["target_subject"] == s)
                               & (scores["source_roi"] == roi)].groupby("stand_in"):
            K = label.split("+")
            if not set(K) <= set(members):
                continue
            pool = [m for m in members if m != s and m not in K]
            ref = [np.mean([A[a, b, roi, t] for a in pool for b in pool if a != b])
                   for t in ROIS]
            prof = g.set_index("target_roi")["score"].reindex(ROIS).to_numpy()
            vals.append(np.corrcoef(prof, ref)[0, 1])
        if vals:
            per_target.append(np.mean(vals))
    return np.mean(per_target)


@pytest.fixture(scope="module")
def eight():
    """8 subjects: brain_brain rows and brain_avg scores for k = 2 and 4 (RSA)."""
    subs = _dataset(8, seed=3)
    bb = _bb(subs)
    scores = pd.DataFrame([r for t in subs for r in ba.brain_avg_score_rows(
        subs, t, ROIS, RSA, [2, 4], 4, 7, LPOptions(), min_vertices=3)])
    return subs, bb, scores


def test_aps_and_jackknife_match_an_independent_computation(eight):
    subs, bb, scores = eight
    subjects = list(subs)
    got = ba.brain_avg_aps(bb, scores, subjects, ROIS, RSA, ks=[2, 4], variants=["full"])
    assert (got["n_sets"] == 8 * 4).all()
    for k in (2, 4):
        row = got[(got["k"] == k) & (got["roi"] == "C")].iloc[0]
        full = _independent_aps(bb, scores, subjects, "C", k, subjects)
        assert row["aps_brain_avg"] == pytest.approx(full, rel=1e-10)
        loo = np.array([_independent_aps(bb, scores, subjects, "C", k,
                                         [m for m in subjects if m != j]) for j in subjects])
        se = math.sqrt(7 / 8 * np.sum((loo - loo.mean()) ** 2))
        from scipy import stats

        half = stats.t.ppf(0.975, 7) * se
        assert row["ci_low"] == pytest.approx(full - half, rel=1e-9)
        assert row["ci_high"] == pytest.approx(full + half, rel=1e-9)


def test_averaging_more_subjects_raises_the_baseline(eight):
    """Averaging removes repetition noise from the stand-in: on data whose subjects differ only
    by noise, APS_brain_avg with k = 2 and 4 exceeds k = 1 (mean over ROIs). Averaging only the
    vertices kept by all k subjects shrinks the ROIs and lowers it instead."""
    subs, bb, scores = eight
    got = ba.brain_avg_aps(bb, scores, list(subs), ROIS, RSA, ks=[1, 2, 4],
                           variants=["full", "offdiag"])
    by_k = got.groupby(["variant", "k"])["aps_brain_avg"].mean()
    for variant in ("full", "offdiag"):
        assert by_k[variant, 1] + 0.03 < min(by_k[variant, 2], by_k[variant, 4]), by_k
    assert got["reason"].isna().all() and np.isfinite(got["ci_low"]).all()
    assert (scores["n_source_vertices"] > N_KEEP).all()  # union of the kept vertices
    inter = pd.DataFrame([r for t in list(subs)[:3] for r in ba.brain_avg_score_rows(
        subs, t, ROIS, RSA, [4], 4, 7, LPOptions(), min_vertices=3, vertices="intersection")])
    assert (inter["n_source_vertices"] < N_KEEP).all()


def test_too_few_subjects_give_nan_with_a_reason():
    subs = _dataset(6, seed=4)
    bb = _bb(subs)
    scores = pd.DataFrame([r for t in list(subs)[:2] for r in ba.brain_avg_score_rows(
        subs, t, ROIS, RSA, [2, 4], 2, 0, LPOptions())])
    assert set(scores["k"]) == {2}  # k = 4 needs 7 subjects: nothing scored
    got = ba.brain_avg_aps(bb, scores, list(subs), ROIS, RSA, ks=[1, 2, 4], variants=["full"])
    k4 = got[got["k"] == 4]
    assert k4["aps_brain_avg"].isna().all() and k4["ci_low"].isna().all()
    assert k4["reason"].str.contains("k=4 needs ≥ 7 subjects").all()
    assert (k4["n_sets"] == 0).all()
    k2 = got[got["k"] == 2]  # only targets 01 and 02 were scored
    assert np.isfinite(k2["aps_brain_avg"]).all() and (k2["n_targets"] == 2).all()
    assert (k2["n_sets"] == 4).all()
    # 4 subjects: k = 1 is defined, its jackknife (3 subjects per sample) is not
    few = {s: subs[s] for s in list(subs)[:4]}
    got = ba.brain_avg_aps(_bb(few), None, list(few), ROIS, RSA, ks=[1], variants=["full"])
    assert np.isfinite(got["aps_brain_avg"]).all() and got["ci_low"].isna().all()
    assert got["reason"].str.contains("no jackknife interval: k=1 needs ≥ 5").all()


def test_non_surface_space_is_refused_and_the_workflow_step_skips(tmp_path, caplog):
    with pytest.raises(ValueError, match="MNI152.*no vertex correspondence"):
        ba.check_vertex_correspondence({"space": "MNI152", "version": "A"})
    with pytest.raises(ValueError, match="algonauts2021"):
        ba.check_vertex_correspondence({"format": "algonauts2021"})
    ba.check_vertex_correspondence({"space": "fsaverage"})
    subs = _dataset(5, seed=5)
    paths = []
    for s, sd in subs.items():
        paths.append(str(tmp_path / f"sub-{s}.npz"))
        save_subject(sd, paths[-1])
    cfg = {"dataset": {"format": "bmd", "space": "MNI152", "version": "B",
                       "betas": "allvoxel"},
           "subjects": list(subs), "rois": ROIS, "measures": [RSA], "seed": 0,
           "min_vertices": 3, "apa": {"brain_avg_k": [1, 2], "brain_avg_max_sets": 3,
                                      "variants": ["full"], "match": ["pearson"],
                                      "min_ceiling": 0.1}}
    out = tmp_path / "scores.parquet"
    with caplog.at_level(logging.WARNING, logger="alignpatterns"):
        pipeline.brain_avg_scores(cfg, [RSA], "01", paths, None, [str(out)])
    assert "no vertex correspondence" in caplog.text
    assert io.read_table(out, "brain_avg").empty
    table = tmp_path / "apa_brain_avg.parquet"
    pipeline.apa_brain_avg(cfg, str(tmp_path / "absent.parquet"), [str(out)],
                           str(tmp_path / "absent.parquet"), str(table))
    got = io.read_table(table, "apa_brain_avg")
    assert len(got) == len(ROIS) * 2 and got["aps_brain_avg"].isna().all()
    assert got["reason"].str.contains("MNI152").all()
