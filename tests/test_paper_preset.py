"""The `paper` preset (SPEC.md §4 "Paper preset"): each item's code path against an independent
reference, and the preset file itself."""

from __future__ import annotations

import copy
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.config import (
    DEFAULT_REPO,
    ConfigError,
    load_config,
    resolve_config,
    validate_config,
)
from alignpatterns.data.prepare import impute_trial_mean
from alignpatterns.measures.lp_paper import (
    PAPER_ALPHAS,
    fit_paper_lp,
    fold_scores,
    permuted_scores,
)
from alignpatterns.patterns import apa
from alignpatterns.patterns.alignment import (
    LPOptions,
    Representations,
    _scores_and_null,
    brain_representation,
    model_representation,
)
from alignpatterns.patterns.pairs import partner_pairs, select_pairs

PRESET = DEFAULT_REPO / "config" / "presets" / "paper.yaml"


def _overlay(base: dict, over: dict) -> dict:
    """Snakemake's merge of a later --configfile (nested dicts updated, the rest replaced)."""
    from snakemake.utils import update_config

    out = copy.deepcopy(base)
    update_config(out, copy.deepcopy(over))
    return out


# ------------------------------------------------------------------------------ LP protocol


def _sklearn_recipe(Xtr, Ytr, Xte, Yte):
    """The released recipe written directly with scikit-learn (float32 throughout)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    xs, ys = StandardScaler().fit(Xtr), StandardScaler().fit(Ytr)
    Xtr, Xte = xs.transform(Xtr), xs.transform(Xte)
    Ytr, Yte = ys.transform(Ytr), ys.transform(Yte)
    train = []
    test = []
    for fit, held in KFold(5, shuffle=True, random_state=1).split(Xtr):
        m = RidgeCV(alphas=np.logspace(0, 9, 19)).fit(Xtr[fit], Ytr[fit])
        # the released LinearPredictivity: score(held) * len(held), summed, / len(x)
        train.append(m.score(Xtr[held], Ytr[held]) * len(held))
        test.append(r2_score(Yte, m.predict(Xte)))  # uniform average over targets
    return float(np.sum(train) / len(Xtr)), float(np.mean(test))


def _lp_problem(seed, n_train=120, n_test=40, p=30, v=12):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, v))
    X = rng.standard_normal((n_train + n_test, p)).astype(np.float32) * 3 + 1
    Y = (X @ W * 0.2 + rng.standard_normal((n_train + n_test, v)) * 2 + 5).astype(np.float32)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def test_paper_lp_equals_a_direct_sklearn_implementation():
    Xtr, Ytr, Xte, Yte = _lp_problem(0)
    fit = fit_paper_lp(Xtr, Ytr, Xte, Yte, PAPER_ALPHAS, 5, 1)
    want_train, want_test = _sklearn_recipe(Xtr, Ytr, Xte, Yte)
    assert fit.oof.dtype == np.float32 and fit.test.shape == (5, 40, 12)
    np.testing.assert_allclose(fold_scores(fit, "train", "r2")[0], want_train, atol=1e-5)
    np.testing.assert_allclose(fold_scores(fit, "test", "r2")[0], want_test, atol=1e-5)
    # one alpha per fold, shared by all target vertices, from the grid
    assert np.all(np.isin(fit.alphas, np.float64(PAPER_ALPHAS)))


def test_paper_lp_alpha_is_the_shared_loo_optimum_in_closed_form():
    """Fold 1's alpha equals the argmin over the grid of the mean (over vertices and samples)
    squared LOO residual, computed from the hat matrix of ridge with an intercept."""
    from sklearn.model_selection import KFold

    Xtr, Ytr, Xte, Yte = _lp_problem(3)
    fit = fit_paper_lp(Xtr, Ytr, Xte, Yte)
    X = ((Xtr - Xtr.mean(0)) / Xtr.std(0)).astype(np.float64)
    Y = ((Ytr - Ytr.mean(0)) / Ytr.std(0)).astype(np.float64)
    tr = next(KFold(5, shuffle=True, random_state=1).split(X))[0]
    Xf, Yf = X[tr] - X[tr].mean(0), Y[tr] - Y[tr].mean(0)
    n = len(tr)
    errs = []
    for a in PAPER_ALPHAS:
        H = Xf @ np.linalg.solve(Xf.T @ Xf + a * np.eye(X.shape[1]), Xf.T) + 1.0 / n
        loo = (Yf - H @ Yf) / (1 - np.diag(H))[:, None]
        errs.append(np.mean(loo**2))
    assert fit.alphas[0] == pytest.approx(PAPER_ALPHAS[int(np.argmin(errs))])


def test_paper_lp_permuted_scores_equal_rescoring_permuted_predictions():
    from sklearn.metrics import r2_score

    Xtr, Ytr, Xte, Yte = _lp_problem(1)
    fit = fit_paper_lp(Xtr, Ytr, Xte, Yte)
    rng = np.random.default_rng(0)
    perms = np.stack([np.arange(40), *(rng.permutation(40) for _ in range(4))])
    for score in ("r2", "pearson"):
        null = permuted_scores(fit, perms, score, edges=[0, 5, 12])
        for d, pi in enumerate(perms):
            for b, (lo, hi) in enumerate([(0, 5), (5, 12)]):
                Y = fit.Y_test[:, lo:hi].astype(float)
                per_fold = []
                for P in fit.test:
                    Pp = P[pi, lo:hi].astype(float)
                    per_fold.append(r2_score(Y, Pp) if score == "r2" else np.mean(
                        [stats.pearsonr(Y[:, j], Pp[:, j])[0] for j in range(hi - lo)]))
                assert null[d, b] == pytest.approx(np.mean(per_fold), abs=1e-9)
        # the identity permutation reproduces the observed test score
        assert null[0] == pytest.approx(fold_scores(fit, "test", score, [0, 5, 12]), abs=1e-9)


def test_paper_protocol_scores_each_target_roi_with_its_own_fit():
    Xtr, Ytr, Xte, Yte = _lp_problem(2, v=10)
    src = Representations({"train": Xtr.astype(float), "test": Xte.astype(float)}, n_dims=30)
    tgts = [Representations({"train": Ytr[:, a:b], "test": Yte[:, a:b]}, n_dims=b - a)
            for a, b in ((0, 4), (4, 10))]
    lp = LPOptions(alphas=PAPER_ALPHAS, outer_cv=5, protocol="paper")
    for split, k in (("train", 0), ("test", 1)):
        got, _ = _scores_and_null(src, tgts, "lp-ridge-r2", split, lp, None)
        for i, (a, b) in enumerate(((0, 4), (4, 10))):
            want = _sklearn_recipe(Xtr, Ytr[:, a:b], Xte, Yte[:, a:b])[k]
            assert got[i] == pytest.approx(want, abs=1e-5)
    with pytest.raises(ValueError, match="protocol"):
        LPOptions(protocol="released")


# ------------------------------------------------------------------------------ RSA float32


def test_rsa_correlation_pearson_is_float32_pearson_of_one_minus_pearson_rdms():
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(4)
    Z = {s: rng.standard_normal((20, 15)) for s in ("train", "test")}
    W = {s: Z[s] @ rng.standard_normal((15, 9)) + rng.standard_normal((20, 9)) for s in Z}
    src = model_representation(Z["train"], Z["test"], "rsa-correlation-pearson")
    tgt = model_representation(W["train"], W["test"], "rsa-correlation-pearson")
    got, _ = _scores_and_null(src, [tgt], "rsa-correlation-pearson", "test", LPOptions(), None)
    a = pdist(Z["test"].astype(np.float32), "correlation").astype(np.float32)
    b = pdist(W["test"].astype(np.float32), "correlation").astype(np.float32)
    assert got[0] == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-6)
    assert np.all(src.values["test"] == src.values["test"].astype(np.float32))
    # Spearman measure differs on the same data (a real switch, not a relabel)
    sp, _ = _scores_and_null(
        model_representation(Z["train"], Z["test"], "rsa-correlation-spearman"),
        [model_representation(W["train"], W["test"], "rsa-correlation-spearman")],
        "rsa-correlation-spearman", "test", LPOptions(), None)
    assert sp[0] == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-6)
    assert abs(sp[0] - got[0]) > 1e-4


# ------------------------------------------------------------------------------ NaN betas


def _released_impute(reps: np.ndarray) -> np.ndarray:
    """The released code, re-told: nanmean over repetitions (keeping a length-1 trial axis),
    then ``impute_nans``: NaN → mean over the trial axis of the same stimulus and voxel → 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data = np.nanmean(reps, axis=1)[:, None, :]
        nan_ids = np.where(np.isnan(data))
        trial_mean = np.nanmean(data, axis=1)
    data[nan_ids] = trial_mean[nan_ids[0], nan_ids[2]]
    data[np.isnan(data)] = 0.0
    return data[:, 0, :]


def test_impute_trial_mean_is_the_released_codes_trial_mean_then_zero():
    rng = np.random.default_rng(5)
    reps = rng.standard_normal((6, 3, 8))
    reps[0, :, 1] = np.nan        # no finite repetition: 0
    reps[0, 0, 4] = np.nan        # one repetition missing: the mean of the other two
    reps[5] = np.nan              # a stimulus without any data: 0 everywhere
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        avg = np.nanmean(reps, axis=1)
    got = impute_trial_mean(avg)
    np.testing.assert_array_equal(got, _released_impute(reps))
    assert got[0, 1] == 0.0 and np.all(got[5] == 0.0)
    assert got[0, 4] == pytest.approx(reps[0, 1:, 4].mean())
    assert not np.isnan(got).any() and np.isnan(avg).sum() == 9  # input untouched


def test_prepare_keeps_and_imputes_vertices_the_default_drops():
    from alignpatterns.data.prepare import SubjectSource, prepare

    rng = np.random.default_rng(6)
    betas = {"train": rng.standard_normal((10, 3, 12)), "test": rng.standard_normal((4, 10, 12))}
    betas["train"][2, :, 5] = np.nan  # vertex 5: NaN in every repetition of stimulus 2
    betas["train"][7, 0, 3] = np.nan  # vertex 3: one repetition missing (nanmean)

    class Source(SubjectSource):
        subject = "01"
        ids = {"train": [f"vid{i:04d}" for i in range(1, 11)],
               "test": [f"vid{i:04d}" for i in range(11, 15)]}
        files = {"train": "train.pkl", "test": "test.pkl"}

        def roi_betas(self, roi):
            return betas, np.arange(12)

        def roi_ncsnr(self, roi, split, vertices):
            return np.ones(12)  # shipped ncsnr: every vertex reliable

    dropped = prepare(Source(), ["R"], 0.2, 2).rois["R"]
    imputed = prepare(Source(), ["R"], 0.2, 2, nan_betas="trial_mean").rois["R"]
    assert 5 not in dropped.vertices and 5 in imputed.vertices
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        avg = np.nanmean(betas["train"], axis=1)
    want = avg.copy()
    want[2, 5] = 0.0  # no finite repetition: the released code's trial mean is NaN, then 0
    np.testing.assert_allclose(imputed.train, want)
    np.testing.assert_allclose(imputed.train, _released_impute(betas["train"]))
    np.testing.assert_allclose(dropped.train, np.delete(avg, 5, axis=1))
    with pytest.raises(ValueError, match="nan_betas"):
        prepare(Source(), ["R"], 0.2, 2, nan_betas="zero")


# ------------------------------------------------------------------------------ frames, SRP


def test_paper_frame_policy_takes_4_fps_over_the_first_3_seconds(tmp_path):
    """12 frames at t = 0, 0.25, …, 2.75 s from a 8 fps, 4 s video whose frame k is flat
    grey level 7k: the frames taken are 0, 2, …, 22 (2 per second of 8 fps)."""
    from alignpatterns.features.frames import read_video_frames
    from alignpatterns.synth import stimuli as S

    video = np.stack([np.full((32, 32, 3), 7 * k, dtype=np.uint8) for k in range(32)])
    path = S.write_mp4(tmp_path / "0001.mp4", video, fps=8)
    cfg = load_config(PRESET)["features"]
    got = read_video_frames(path, cfg["n_frames"], 32, max_seconds=cfg["max_seconds"],
                            fps=cfg["fps"])
    levels = got.reshape(len(got), -1).mean(axis=1)
    np.testing.assert_allclose(levels, 7 * np.arange(0, 24, 2), atol=3)


def test_paper_srp_uses_the_jl_dimension_at_eps_and_is_reproducible():
    from sklearn.random_projection import johnson_lindenstrauss_min_dim

    from alignpatterns.features.reduce import fit_reduction

    eps = load_config(PRESET)["features"]["reduction"]["eps"]
    X = np.random.default_rng(7).standard_normal((50, 6000)).astype(np.float32)
    f1 = fit_reduction("srp", X, "auto", eps=eps, seed=3)
    f2 = fit_reduction("srp", X, "auto", eps=eps, seed=3)
    assert f1(X).shape == (50, johnson_lindenstrauss_min_dim(50, eps=0.1))
    np.testing.assert_array_equal(f1(X), f2(X))
    assert not np.array_equal(f1(X), fit_reduction("srp", X, "auto", eps=eps, seed=4)(X))


# ------------------------------------------------------------------------------ APA pairs, CI


@pytest.mark.parametrize("S,k", [(10, 5), (6, 5), (7, 2), (9, 4)])
def test_partner_pairs_have_no_reciprocal_pairs_and_k_partners_where_possible(S, k):
    from alignpatterns.patterns.streams import stream

    P = partner_pairs(S, k, stream(1, "apa-partners"))
    assert not np.any(P & P.T) and not np.any(np.diag(P))
    most = (S - 1) // 2  # every target can have this many without reciprocal pairs
    assert np.all(P.sum(axis=0) >= min(k, most)) and np.all(P.sum(axis=0) <= k)
    assert np.all(P.sum(axis=1) >= min(k, most))  # every subject is a source as often
    np.testing.assert_array_equal(P, partner_pairs(S, k, stream(1, "apa-partners")))
    if S == 10:
        assert P.sum() == 45  # 5 for half the targets, 4 for the others
        assert not np.array_equal(P, partner_pairs(S, k, stream(2, "apa-partners")))


SUBJECTS = [f"{i:02d}" for i in range(1, 8)]
ROIS = ["A", "B", "C", "D"]


def _bb(A):
    rows = []
    subjects = SUBJECTS[:A.shape[0]]
    for (i, s1), (j, s2) in itertools.product(enumerate(subjects), repeat=2):
        if i == j:
            continue
        for (a, r1), (b, r2) in itertools.product(enumerate(ROIS), repeat=2):
            rows.append({"measure": "m", "source_subject": s1, "source_roi": r1,
                         "target_subject": s2, "target_roi": r2, "split": "test",
                         "score": A[i, j, a, b], "n_source_dims": 5, "n_vertices": 5})
    return pd.DataFrame(rows)


def _mb(test):
    rows = []
    for split, arr in (("train", test), ("test", test)):
        for li, si, ri in itertools.product(*map(range, arr.shape)):
            rows.append({"measure": "m", "model": "model", "weights": "random",
                         "layer": f"L{li}", "layer_index": li, "subject": SUBJECTS[si],
                         "roi": ROIS[ri], "split": split, "score": arr[li, si, ri],
                         "n_source_dims": 3, "n_vertices": 5})
    return pd.DataFrame(rows)


def _tensor(seed):
    rng = np.random.default_rng(seed)
    S, R = len(SUBJECTS), len(ROIS)
    P = rng.uniform(0, 1, (R, R)) + 2 * np.eye(R)
    return P[None, None] + 0.3 * rng.standard_normal((S, S, R, R))


def test_apa_with_partner_pairs_uses_only_the_selected_pairs():
    """Brain APS by brute force over the selected pairs: stand-ins of s are its partners,
    references the mean over selected pairs without s and the stand-in."""
    from alignpatterns.patterns.streams import stream

    A = _tensor(8)
    S = len(SUBJECTS)
    P = partner_pairs(S, 2, stream(0, "apa-partners"))
    bb = select_pairs(_bb(A), SUBJECTS, P)
    assert len(bb) == P.sum() * len(ROIS) ** 2
    _, summary = apa.run_apa(bb, _mb(np.zeros((1, S, len(ROIS)))), SUBJECTS, ROIS, "m",
                             variants=["full"])
    brain = summary[summary["candidate"] == "brain"].set_index("roi")
    for r, roi in enumerate(ROIS):
        per_target = []
        for s in range(S):
            vals = []
            for s2 in np.flatnonzero(P[:, s]):
                rest = [m for m in range(S) if m not in (s, s2)]
                ref = np.mean([A[a, b] for a in rest for b in rest if a != b and P[a, b]],
                              axis=0)
                vals.append(stats.pearsonr(A[s2, s, r], ref[r])[0])
            per_target.append(np.mean(vals))
        assert brain.loc[roi, "aps_mean"] == pytest.approx(np.mean(per_target), abs=1e-12)


def test_generic_nulls_and_identification_run_on_four_subjects_with_partner_pairs():
    """4 subjects, 5 partners wanted: 1 or 2 per target, so a jackknife subset can leave a
    target without a stand-in; that cell is NaN, not an error."""
    from alignpatterns.patterns.streams import stream

    A = _tensor(12)[:4, :4]
    P = partner_pairs(4, 5, stream(0, "apa-partners"))
    bb = select_pairs(_bb(A), SUBJECTS[:4], P)
    out = apa.generic_null_rows(bb, SUBJECTS[:4], ROIS, "m", variants=["full"])
    grand = out[out["null"] == "grand-mean"]  # target-reliability needs ceilings
    assert len(grand) == len(ROIS) and np.isfinite(grand["aps_mean"]).all()
    conf = apa.roi_identification(bb, _mb(np.zeros((1, 7, 4))).pipe(
        lambda d: d[d["subject"].isin(SUBJECTS[:4])]), SUBJECTS[:4], ROIS, "m",
        variants=["full"], n_draws=20)
    assert set(conf["candidate"]) == {"brain", "model"}


def test_percentile_bootstrap_ci_resamples_the_per_subject_values():
    from alignpatterns.measures.stats import bootstrap_subjects
    from alignpatterns.patterns.streams import stream

    A = _tensor(9)
    S, R = len(SUBJECTS), len(ROIS)
    rng = np.random.default_rng(10)
    test = A.mean(axis=0)[None].transpose(0, 1, 2, 3)[:, :, 0, :] + rng.normal(0, .1, (1, S, R))
    rows, summary = apa.run_apa(_bb(A), _mb(test), SUBJECTS, ROIS, "m", variants=["full"],
                                ci_method="percentile-bootstrap", n_bootstrap=500, seed=4)
    jk = apa.run_apa(_bb(A), _mb(test), SUBJECTS, ROIS, "m", variants=["full"])[1]
    assert set(summary["ci_method"]) == {"percentile-bootstrap"}
    for roi in ROIS:
        idx = bootstrap_subjects(S, 500, stream(4, "m", roi, "subject-bootstrap"))
        per = rows[rows["roi"] == roi].groupby(["candidate", "subject"])["aps"].mean()
        m, b = per["model"].to_numpy(), per["brain"].to_numpy()
        got = summary[(summary["roi"] == roi)].set_index("candidate")
        for name, v in (("model", m), ("brain", b)):
            lo, hi = np.quantile(v[idx].mean(axis=1), [0.025, 0.975])
            assert got.loc[name, "aps_ci_low"] == pytest.approx(lo, abs=1e-12)
            assert got.loc[name, "aps_ci_high"] == pytest.approx(hi, abs=1e-12)
        dlo, dhi = np.quantile((m - b)[idx].mean(axis=1), [0.025, 0.975])
        assert got.loc["model", "delta_ci_low"] == pytest.approx(dlo, abs=1e-12)
        assert got.loc["model", "delta_ci_high"] == pytest.approx(dhi, abs=1e-12)
        # same means as the jackknife run; only the intervals differ
        j = jk[jk["roi"] == roi].set_index("candidate")
        assert got.loc["model", "aps_mean"] == pytest.approx(j.loc["model", "aps_mean"])
    with pytest.raises(ValueError, match="ci_method"):
        apa.run_apa(_bb(A), _mb(test), SUBJECTS, ROIS, "m", ci_method="bca")


# ------------------------------------------------------------------------------ the preset


def _synthetic_with_preset():
    return _overlay(load_config(DEFAULT_REPO / "config" / "config.yaml"), load_config(PRESET))


def test_preset_validates_resolves_and_sets_every_item():
    cfg = resolve_config(validate_config(_synthetic_with_preset()))
    assert cfg["nan_betas"] == "trial_mean" and cfg["reliability_threshold"] == 0.2
    assert (cfg["features"]["fps"], cfg["features"]["max_seconds"], cfg["features"]["size"],
            cfg["features"]["n_frames"]) == (4, 3, 256, 12)
    assert cfg["features"]["reduction"] == {"method": "srp", "n_components": "auto", "eps": 0.1}
    assert cfg["measures"] == ["rsa-correlation-pearson", "lp-ridge-r2"]
    assert cfg["lp"]["protocol"] == "paper" and cfg["lp"]["outer_folds"] == 5
    np.testing.assert_allclose(cfg["lp"]["alphas"], np.logspace(0, 9, 19), rtol=1e-12)
    a = cfg["apa"]
    assert (a["variants"], a["partners"], a["ci_method"], a["n_bootstrap"]) == (
        ["full"], 5, "percentile-bootstrap", 1000)
    # the dataset config's own keys are kept
    assert cfg["dataset"]["synthesize"]["subjects"] == 6 and cfg["features"]["pool_grid"] == 4


def test_a_key_changed_after_the_preset_is_a_clear_error():
    cfg = _overlay(_synthetic_with_preset(), {"lp": {"protocol": "default"}})
    with pytest.raises(ConfigError, match=r"lp\.protocol.*'paper' preset.*sets 'paper'"):
        resolve_config(validate_config(cfg))
    cfg = _overlay(_synthetic_with_preset(), {"measures": ["lp-ridge-r2"]})
    with pytest.raises(ConfigError, match=r"config key measures"):
        resolve_config(validate_config(cfg))
    cfg = _overlay(_synthetic_with_preset(), {"apa": {"preset": "papr"}})
    with pytest.raises(ConfigError, match=r"preset 'papr' not found.*did you mean 'paper'"):
        resolve_config(validate_config(cfg))
    cfg = _overlay(load_config(DEFAULT_REPO / "config" / "config.yaml"),
                   {"apa": {"ci_method": "percentile-bootstrap", "n_bootstrap": 0}})
    with pytest.raises(ConfigError, match=r"apa\.n_bootstrap"):
        resolve_config(validate_config(cfg))


def test_cli_merges_config_files_as_snakemake_does():
    from alignpatterns.cli import _validated_config

    base = DEFAULT_REPO / "config" / "config.yaml"
    got = _validated_config([str(base), str(PRESET)])
    assert got == validate_config(_synthetic_with_preset())


def test_defaults_are_unchanged_without_the_preset():
    cfg = resolve_config(validate_config(load_config(DEFAULT_REPO / "config" / "config.yaml")))
    assert cfg["nan_betas"] == "drop" and cfg["lp"]["protocol"] == "default"
    assert cfg["apa"]["ci_method"] == "jackknife-t" and cfg["apa"]["partners"] is None


def test_preset_model_brain_and_brain_brain_run_with_the_stimulus_bootstrap(tiny_dataset,
                                                                              tmp_path):
    """The preset's model_brain and brain_brain jobs (its measures, LP protocol and
    apa.n_bootstrap) on the tiny synthetic dataset, as library calls: every measure's
    stimulus-bootstrap scores are written, finite and centred near the observed score."""
    from alignpatterns import io, pipeline
    from alignpatterns.data.prepared import load_subject

    root, _ = tiny_dataset
    raw = _overlay(load_config(DEFAULT_REPO / "tests" / "config" / "tiny.yaml"),
                   load_config(PRESET))
    raw["dataset"]["root"] = str(root)
    cfg = resolve_config(validate_config(raw))
    assert cfg["apa"]["n_bootstrap"] == 1000 and cfg["lp"]["protocol"] == "paper"
    info = str(tmp_path / "dataset.json")
    pipeline.check_data(cfg, str(tmp_path / "check_data.parquet"), info)
    paths = [str(tmp_path / f"sub-{s}.npz") for s in cfg["subjects"]]
    for s, p in zip(cfg["subjects"], paths, strict=True):
        pipeline.prepare_brain(cfg, s, p, info)
    # a model's features, with the reduced copies that features.reduction (srp) writes for LP
    sd = load_subject(paths[0])
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((len(sd.train_ids) + len(sd.test_ids), 30))
    io.save_arrays(tmp_path / "m.npz", {"layer/00/L": Z.astype(np.float32),
                                        "lp/00/L": (Z @ rng.standard_normal((30, 12))
                                                    ).astype(np.float32),
                                        "ids": np.array(sd.train_ids + sd.test_ids),
                                        "n_train": np.array(len(sd.train_ids))})
    cfg["models"] = [{"name": "m", "weights": "random"}]
    pipeline.model_brain(cfg, "m", str(tmp_path / "m.npz"), paths[0], info,
                         str(tmp_path / "mb.parquet"), str(tmp_path / "mb_null.npz"))
    mb = io.read_table(tmp_path / "mb.parquet")
    n_rois = len(cfg["rois"])
    with np.load(tmp_path / "mb_null.npz") as z:
        for m in cfg["measures"]:
            boot = z[f"boot__{m}"]
            assert boot.shape == (1000, 1, n_rois), m
            obs = (mb[(mb["measure"] == m) & (mb["split"] == "test")]
                   .set_index("roi").loc[cfg["rois"], "score"].to_numpy())
            ok = np.isfinite(obs)
            assert ok.any() and np.isfinite(boot[:, 0, ok]).all(), m
            # the draws scatter around the observed score (bootstrap SE ≪ 1 here)
            assert np.all(np.abs(np.median(boot[:, 0, ok], axis=0) - obs[ok]) < 0.5), m
    for m in cfg["measures"]:
        pipeline.brain_brain(cfg, m, cfg["subjects"][0], paths, info,
                             str(tmp_path / f"bb-{m}.parquet"), str(tmp_path / f"bb-{m}.npz"))
        with np.load(tmp_path / f"bb-{m}.npz") as z:
            boot = z["boot"]
        assert boot.shape == (1000, len(paths), n_rois, n_rois), m
        assert np.isnan(boot[:, 0]).all() and np.isfinite(boot[:, 1:]).any(), m


@pytest.mark.workflow
def test_workflow_dry_run_with_the_preset(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    snakemake = Path(sys.executable).parent / "snakemake"
    tiny = DEFAULT_REPO / "tests" / "config" / "tiny.yaml"
    out = subprocess.run(
        [str(snakemake), "-n", "-q", "--snakefile", str(DEFAULT_REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(tiny), str(PRESET)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Building DAG" in out.stdout + out.stderr


def test_brain_representation_pearson_rdm_for_rois():
    from alignpatterns.data.prepare import ROIData, SubjectData

    rng = np.random.default_rng(11)
    tr, te = rng.standard_normal((15, 6)), rng.standard_normal((12, 6))
    d = ROIData(np.arange(6), tr[:, None], te[:, None], tr, te, np.ones(6), np.ones(6), 1.0)
    sd = SubjectData("01", [], [], {"R": d})
    rep = brain_representation(sd, "R", "rsa-correlation-pearson")
    from scipy.spatial.distance import pdist

    np.testing.assert_allclose(rep.values["test"],
                               pdist(te.astype(np.float32), "correlation"), rtol=1e-5)
