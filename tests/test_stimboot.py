"""Subject × stimulus bootstrap of Δ: score-level draws (stimboot) and the APA stage (apa_boot)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.measures import rank_rdm, rdm
from alignpatterns.measures.cka import cka_from_grams, gram, hsic_unbiased
from alignpatterns.patterns import alignment, apa_boot
from alignpatterns.patterns.alignment import LPOptions, brain_brain_rows, model_brain_scores
from alignpatterns.patterns.apa import BRAIN, _variant_data
from alignpatterns.patterns.stimboot import (
    boot_cka,
    boot_lp,
    boot_rsa,
    stimulus_bootstrap_draws,
)

rsatoolbox = pytest.importorskip("rsatoolbox")


def _idx(counts_row):
    return np.repeat(np.arange(len(counts_row)), counts_row)


# --- stimulus draws ------------------------------------------------------------------------------

def test_stimulus_draws_are_counts_of_one_stream_per_measure():
    a = stimulus_bootstrap_draws(7, "rsa-crossnobis-spearman", 50, 20)
    assert a.shape == (50, 20) and np.all(a.sum(axis=1) == 20) and a.min() >= 0
    assert np.array_equal(a, stimulus_bootstrap_draws(7, "rsa-crossnobis-spearman", 50, 20))
    assert not np.array_equal(a, stimulus_bootstrap_draws(7, "lp-ridge-pearson", 50, 20))
    assert not np.array_equal(a, stimulus_bootstrap_draws(8, "rsa-crossnobis-spearman", 50, 20))
    # a longer run extends the same stream: the first draws are unchanged
    assert np.array_equal(a, stimulus_bootstrap_draws(7, "rsa-crossnobis-spearman", 80, 20)[:50])
    assert np.all(a.max(axis=1) > 1)  # with replacement: copies occur


# --- RSA: re-ranked, copy pairs dropped, against rsatoolbox subsample_pattern --------------------

def test_rsa_draw_equals_rsatoolbox_subsample_pattern_spearman():
    rng = np.random.default_rng(0)
    n = 14
    X = rng.standard_normal((n, 6))
    tied = rdm(np.round(rng.standard_normal((n, 1))), "euclidean")  # heavily tied RDM
    A = np.stack([rdm(X, "correlation"), tied])
    B = np.stack([rdm(rng.standard_normal((n, 9)), "euclidean"), tied])
    counts = stimulus_bootstrap_draws(0, "m", 6, n)
    out = boot_rsa(A, B, counts)
    desc = {"index": np.arange(n)}
    for d in range(len(counts)):
        idx = _idx(counts[d])
        ra = rsatoolbox.rdm.RDMs(A, pattern_descriptors=desc).subsample_pattern("index", idx)
        rb = rsatoolbox.rdm.RDMs(B, pattern_descriptors=desc).subsample_pattern("index", idx)
        ref = rsatoolbox.rdm.compare(ra, rb, method="spearman")
        np.testing.assert_allclose(out[d], ref, atol=1e-12)
    # RDMs without ties take the cumulative-count shortcut: same values
    np.testing.assert_allclose(boot_rsa(A[:1], B[:1], counts), out[:, :1, :1], atol=1e-12)
    # stored average ranks give the same draws (re-ranking depends on the order only)
    ranked = boot_rsa(np.stack([rank_rdm(a) for a in A]), np.stack([rank_rdm(b) for b in B]),
                      counts)
    np.testing.assert_allclose(ranked, out, atol=1e-12)


def test_rsa_pearson_draw_equals_rsatoolbox_subsample_pattern_corr_without_reranking():
    rng = np.random.default_rng(10)
    n = 13
    A = np.stack([rdm(rng.standard_normal((n, 6)), "correlation"),
                  rdm(rng.standard_normal((n, 3)), "euclidean") + 100.0])  # offset: conditioning
    B = np.stack([rdm(rng.standard_normal((n, 9)), "correlation")])
    counts = stimulus_bootstrap_draws(5, "m", 6, n)
    out = boot_rsa(A, B, counts, "pearson")
    desc = {"index": np.arange(n)}
    for d in range(len(counts)):
        idx = _idx(counts[d])
        ra = rsatoolbox.rdm.RDMs(A, pattern_descriptors=desc).subsample_pattern("index", idx)
        rb = rsatoolbox.rdm.RDMs(B, pattern_descriptors=desc).subsample_pattern("index", idx)
        np.testing.assert_allclose(out[d], rsatoolbox.rdm.compare(ra, rb, method="corr"),
                                   atol=1e-10)
    # the identity draw is the plain Pearson correlation; Spearman (re-ranked) differs
    one = boot_rsa(A, B, np.ones((1, n), dtype=int), "pearson")[0]
    np.testing.assert_allclose(one[:, 0], [stats.pearsonr(a, B[0])[0] for a in A], atol=1e-12)
    assert np.abs(boot_rsa(A, B, counts) - out).max() > 1e-3
    with pytest.raises(ValueError, match="'cosine' is not implemented"):
        boot_rsa(A, B, counts, "cosine")


def test_rsa_pearson_draw_of_a_constant_resampled_rdm_is_nan():
    n = 6
    a = rdm(np.random.default_rng(0).standard_normal((n, 3)), "euclidean")
    two = np.zeros((1, n), dtype=int)
    two[0, :2] = 3  # two distinct stimuli: one kept pair, a constant vector
    assert np.isnan(boot_rsa(a[None], a[None], two, "pearson")).all()


def test_rsa_draw_is_not_the_reused_ranks_of_the_full_rdm():
    # reusing the full-sample ranks on the kept pairs (no re-ranking) gives another value
    rng = np.random.default_rng(1)
    n = 12
    a = rdm(rng.standard_normal((n, 4)), "euclidean")
    b = a + 0.5 * rng.random(a.size)
    c = stimulus_bootstrap_draws(3, "m", 1, n)
    i, j = np.triu_indices(n, 1)
    w = c[0, i] * c[0, j]
    ra, rb = stats.rankdata(a), stats.rankdata(b)
    reused = np.corrcoef(np.repeat(ra, w), np.repeat(rb, w))[0, 1]
    reranked = stats.spearmanr(np.repeat(a, w), np.repeat(b, w))[0]
    got = boot_rsa(a[None], b[None], c)[0, 0, 0]
    assert got == pytest.approx(reranked, abs=1e-12)
    assert abs(got - reused) > 1e-6


# --- CKA and LP ----------------------------------------------------------------------------------

def test_cka_draw_equals_explicit_resampled_grams_with_copy_pairs_zeroed():
    rng = np.random.default_rng(2)
    n = 16
    Ks = np.stack([gram(rng.standard_normal((n, k))) for k in (3, 8)])
    Ls = np.stack([gram(rng.standard_normal((n, 5))), Ks[0]])
    counts = stimulus_bootstrap_draws(1, "m", 4, n)
    out = boot_cka(Ks, Ls, counts)
    for d in range(len(counts)):
        idx = _idx(counts[d])
        same = idx[:, None] == idx[None, :]

        def resampled(G, idx=idx, same=same):
            return np.where(same, 0.0, G[np.ix_(idx, idx)])

        for k, K in enumerate(Ks):
            for t, L in enumerate(Ls):
                Kx, Lx = resampled(K), resampled(L)
                ref = hsic_unbiased(Kx, Lx) / np.sqrt(hsic_unbiased(Kx, Kx)
                                                      * hsic_unbiased(Lx, Lx))
                assert out[d, k, t] == pytest.approx(ref, abs=1e-10)
    # the identity draw is the observed debiased CKA
    one = boot_cka(Ks, Ls, np.ones((1, n), dtype=int))[0]
    np.testing.assert_allclose(one, [[cka_from_grams(K, L, debiased=True) for L in Ls]
                                     for K in Ks], atol=1e-12)


def test_no_draws_give_empty_arrays():
    rng = np.random.default_rng(9)
    none = np.zeros((0, 8), dtype=int)
    G = np.stack([gram(rng.standard_normal((8, 3)))])
    assert boot_rsa(rdm(rng.standard_normal((8, 3)), "euclidean")[None],
                    rdm(rng.standard_normal((8, 3)), "euclidean")[None], none).shape == (0, 1, 1)
    assert boot_cka(G, np.concatenate([G, G]), none).shape == (0, 1, 2)
    assert boot_lp(rng.standard_normal((8, 4)), rng.standard_normal((8, 4)), none,
                   [0, 2, 4]).shape == (0, 2)


def test_lp_draw_equals_numpy_pearson_on_resampled_rows():
    rng = np.random.default_rng(3)
    n = 20
    Y = rng.standard_normal((n, 7)) + 5.0
    P = Y + rng.standard_normal((n, 7))
    Y[:, 2] = 1.5  # constant vertex: left out as in the observed score
    counts = stimulus_bootstrap_draws(2, "m", 5, n)
    edges = [0, 4, 7]
    out = boot_lp(Y, P, counts, edges)
    for d in range(len(counts)):
        idx = _idx(counts[d])
        r = np.array([np.nan if np.ptp(Y[idx, v]) == 0
                      else np.corrcoef(Y[idx, v], P[idx, v])[0, 1] for v in range(7)])
        np.testing.assert_allclose(out[d], [np.nanmean(r[:4]), np.mean(r[4:])], atol=1e-12)


def test_lp_r2_draw_equals_sklearn_r2_on_resampled_rows():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(13)
    n = 20
    Y = rng.standard_normal((n, 7)) + 5.0
    P = 0.8 * Y + rng.standard_normal((n, 7)) + 0.3  # offset and scale errors count in R²
    Y[:, 2] = 1.5  # constant vertex: left out as in the observed score
    counts = stimulus_bootstrap_draws(2, "m", 5, n)
    edges = [0, 4, 7]
    out = boot_lp(Y, P, counts, edges, "r2")
    keep = [0, 1, 3]
    for d in range(len(counts)):
        idx = _idx(counts[d])
        want = [r2_score(Y[idx][:, keep], P[idx][:, keep]),  # uniform average
                r2_score(Y[idx, 4:], P[idx, 4:])]
        np.testing.assert_allclose(out[d], want, atol=1e-12)
    assert np.abs(boot_lp(Y, P, counts, edges) - out).max() > 1e-3  # not Pearson r
    with pytest.raises(ValueError, match="'mse' is not implemented"):
        boot_lp(Y, P, counts, edges, "mse")


@pytest.mark.parametrize("score", ["r2", "pearson"])
def test_lp_folds_draw_equals_paper_fold_scores_on_resampled_rows(score):
    from alignpatterns.measures.lp_paper import PaperFit, fit_paper_lp, fold_scores
    from alignpatterns.patterns.stimboot import boot_lp_folds

    rng = np.random.default_rng(14)
    X = rng.standard_normal((50, 8))
    Y = X @ rng.standard_normal((8, 6)) + rng.standard_normal((50, 6))
    fit = fit_paper_lp(X[:35], Y[:35], X[35:], Y[35:], alphas=(1.0, 10.0, 100.0))
    counts = np.vstack([np.ones((1, 15), dtype=int), stimulus_bootstrap_draws(4, "m", 4, 15)])
    out = boot_lp_folds(fit.Y_test, fit.test, counts, [0, 2, 6], score)
    for d in range(len(counts)):
        idx = _idx(counts[d])
        resampled = PaperFit(fit.Y_train, fit.Y_test[idx], fit.oof, fit.test[:, idx], fit.alphas)
        np.testing.assert_allclose(out[d], fold_scores(resampled, "test", score, [0, 2, 6]),
                                   atol=1e-10)


# --- through the scoring code: identity draws reproduce the observed test scores -----------------

def _subject(name, rng, n_train=24, n_test=12, reps=4, sizes=(6, 9, 7)):
    latent = np.random.default_rng(99).standard_normal((n_train + n_test, 4))
    rois = {}
    for i, v in enumerate(sizes):
        sig = latent @ rng.standard_normal((4, v))
        tr = sig[:n_train, None] + rng.standard_normal((n_train, reps, v))
        te = sig[n_train:, None] + rng.standard_normal((n_test, reps, v))
        rois[f"R{i}"] = ROIData(vertices=np.arange(v), train_reps=tr, test_reps=te,
                                train=tr.mean(axis=1), test=te.mean(axis=1),
                                ncsnr_train=np.full(v, 0.5), ncsnr_test=np.full(v, 0.5),
                                n_reps_test=float(reps))
    return SubjectData(name, [f"a{i}" for i in range(n_train)],
                       [f"b{i}" for i in range(n_test)], rois)


MEASURES = list(alignment.MEASURES)  # the registry: every measure is bootstrapped


def test_identity_draw_reproduces_observed_test_scores_for_every_measure():
    rng = np.random.default_rng(4)
    subs = {s: _subject(s, rng) for s in ("01", "02", "03")}
    rois = ["R0", "R1", "R2"]
    lp = LPOptions(alphas=(1.0, 10.0, 100.0), inner_cv=3, outer_cv=3)
    feats = {f"L{k}": (rng.standard_normal((24, 5 + k)), rng.standard_normal((12, 5 + k)))
             for k in range(2)}
    ident = np.ones((2, 12), dtype=int)
    for m in MEASURES:
        rows, _, boot = model_brain_scores(feats, subs["01"], rois, [m], lp,
                                           boots={m: ident})
        df = pd.DataFrame(rows)
        test = df[df["split"] == "test"].pivot(index="layer", columns="roi", values="score")
        np.testing.assert_allclose(boot[m][0], test.loc[list(feats), rois].to_numpy(),
                                   atol=1e-10, err_msg=m)
        bb_rows, bb_boot = brain_brain_rows(subs, "02", rois, m, lp, ident)
        bb = pd.DataFrame(bb_rows)
        bb = bb[bb["split"] == "test"]
        for si, src in enumerate(subs):
            if src == "02":
                assert np.isnan(bb_boot[:, si]).all()
                continue
            want = (bb[bb["source_subject"] == src]
                    .pivot(index="source_roi", columns="target_roi", values="score")
                    .loc[rois, rois].to_numpy())
            np.testing.assert_allclose(bb_boot[1, si], want, atol=1e-10, err_msg=m)


def _rescored(measure, lp, src, tgt, idx):
    """Test score of ``src`` → ``tgt`` (Representations) on the resampled test stimuli ``idx``,
    recomputed independently of stimboot: scipy on the kept RDM pairs (copy pairs dropped),
    the library's CKA on the resampled Grams (copy pairs zeroed), LP predictions refitted on
    train by the library's non-bootstrap functions and scored on the resampled rows by
    scikit-learn / numpy (no refit on the resample)."""
    from scipy.spatial.distance import squareform
    from sklearn.metrics import r2_score

    from alignpatterns.measures.encoding import lp_predict
    from alignpatterns.measures.lp_paper import fit_paper_lp

    a, b = src.values["test"], tgt.values["test"]
    if measure.startswith("rsa-"):
        p, q = np.triu_indices(len(idx), 1)
        kept = idx[p] != idx[q]
        va = squareform(a)[idx[p], idx[q]][kept]
        vb = squareform(b)[idx[p], idx[q]][kept]
        corr = stats.pearsonr if alignment.rdm_comparison(measure) == "pearson" else stats.spearmanr
        return corr(va, vb)[0]
    if measure.startswith("cka-"):
        same = idx[:, None] == idx[None, :]
        return cka_from_grams(np.where(same, 0.0, a[np.ix_(idx, idx)]),
                              np.where(same, 0.0, b[np.ix_(idx, idx)]), debiased=True)
    if lp.protocol == "paper":
        fit = fit_paper_lp(src.values["train"], tgt.values["train"], a, b, alphas=lp.alphas,
                           n_splits=lp.outer_cv)
        Y, Ps = fit.Y_test.astype(np.float64), fit.test.astype(np.float64)
    else:
        Y = b
        Ps = [lp_predict(src.values["train"], tgt.values["train"], a, lp.alphas,
                         inner_cv=lp.inner_cv, x_scaling=lp.x_scaling)]
        if measure == "lp-ridge-r2":  # R²: predictions back in data units (train statistics)
            t = tgt.values["train"]
            Ps = [P * t.std(axis=0) + t.mean(axis=0) for P in Ps]
    if measure == "lp-ridge-r2":
        return np.mean([r2_score(Y[idx], P[idx]) for P in Ps])
    return np.mean([np.mean([np.corrcoef(Y[idx, v], P[idx, v])[0, 1]
                             for v in range(Y.shape[1])]) for P in Ps])


BOOT_CASES = [(m, "default") for m in MEASURES] + [(m, "paper") for m in MEASURES
                                                   if alignment.is_lp(m)]


@pytest.mark.parametrize("measure,protocol", BOOT_CASES)
def test_every_measure_draw_equals_its_own_score_on_the_resampled_stimuli(measure, protocol):
    """Identity draw = observed test score; random draws = the measure's own score
    recomputed on the resampled stimuli (model–brain and brain–brain)."""
    rng = np.random.default_rng(6)
    subs = {s: _subject(s, rng) for s in ("01", "02", "03")}
    rois = ["R0", "R1", "R2"]
    lp = LPOptions(alphas=(1.0, 10.0, 100.0), inner_cv=3, outer_cv=3, protocol=protocol)
    feats = {f"L{k}": (rng.standard_normal((24, 5 + k)), rng.standard_normal((12, 5 + k)))
             for k in range(2)}
    counts = np.vstack([np.ones((1, 12), dtype=int),
                        stimulus_bootstrap_draws(1, measure, 3, 12)])
    rows, _, boot = model_brain_scores(feats, subs["01"], rois, [measure], lp,
                                       boots={measure: counts})
    df = pd.DataFrame(rows)
    test = df[df["split"] == "test"].pivot(index="layer", columns="roi", values="score")
    np.testing.assert_allclose(boot[measure][0], test.loc[list(feats), rois].to_numpy(),
                               atol=1e-10)
    targets = {r: alignment.brain_representation(subs["01"], r, measure) for r in rois}
    for li, (Ztr, Zte) in enumerate(feats.values()):
        src = alignment.model_representation(Ztr, Zte, measure)
        for ri, roi in enumerate(rois):
            want = [_rescored(measure, lp, src, targets[roi], _idx(c)) for c in counts[1:]]
            np.testing.assert_allclose(boot[measure][1:, li, ri], want, atol=1e-10)

    bb_rows, bb_boot = brain_brain_rows(subs, "02", rois, measure, lp, counts)
    bb = pd.DataFrame(bb_rows)
    bb = bb[(bb["split"] == "test") & (bb["source_subject"] == "03")]
    want = bb.pivot(index="source_roi", columns="target_roi", values="score").loc[rois, rois]
    np.testing.assert_allclose(bb_boot[0, 2], want.to_numpy(), atol=1e-10)
    src = alignment.brain_representation(subs["03"], "R0", measure)
    tgt = alignment.brain_representation(subs["02"], "R1", measure)
    np.testing.assert_allclose(bb_boot[1:, 2, 0, 1],
                               [_rescored(measure, lp, src, tgt, _idx(c)) for c in counts[1:]],
                               atol=1e-10)


# --- APA stage -----------------------------------------------------------------------------------

def _brute_delta(A, test, train, scale, E, r, idx, match):
    """Δ of one resample by explicit loops over positions (independent of apa_boot)."""
    S = len(idx)

    def rho(x, y):
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if match == "spearman":
            x, y = stats.rankdata(x), stats.rankdata(y)
        return np.corrcoef(x, y)[0, 1]

    deltas = []
    for i in range(S):
        s = idx[i]
        others = [k for k in range(S) if idx[k] != s]
        lay = int(np.nanargmax(np.nanmean(train[:, [idx[k] for k in others], r], axis=1)))
        prof = test[lay, s] / scale[s]
        m_vals, b_vals = [], []
        for k in others:
            s2 = idx[k]
            pairs = [A[idx[a], idx[c], r] for a in range(S) for c in range(S)
                     if idx[a] != idx[c] and idx[a] not in (s, s2) and idx[c] not in (s, s2)]
            ref = np.nanmean(pairs, axis=0)
            m_vals.append(rho(prof[E[r]], ref[E[r]]))
            b_vals.append(rho(A[s2, s, r][E[r]], ref[E[r]]))
        deltas.append(np.mean(m_vals) - np.mean(b_vals))
    return np.mean(deltas)


def _tensor(S, R, L, rng):
    pos = np.linspace(0, 1, R)
    P = np.exp(-np.abs(pos[:, None] - pos[None]) / 0.3)
    A = P[None, None] + 0.1 * rng.standard_normal((S, S, R, R))
    lpos = np.linspace(0, 1, L)
    prof = np.exp(-np.abs(lpos[:, None] - pos[None]) / 0.3)  # (L, R)
    test = prof[:, None, :] + 0.1 * rng.standard_normal((L, S, R))
    train = prof[:, None, :] + 0.1 * rng.standard_normal((L, S, R))
    return A, test, train


@pytest.mark.parametrize("variant,match,missing", [
    ("full", "pearson", False), ("offdiag", "spearman", False),
    ("normalized_offdiag", "pearson", False), ("full", "pearson", True),
    ("offdiag", "spearman", True)])
def test_resample_delta_matches_explicit_loops_and_never_pairs_a_subject_with_itself(
        variant, match, missing):
    rng = np.random.default_rng(5)
    S, R, L = 7, 5, 4
    A, test, train = _tensor(S, R, L, rng)
    if missing:  # one missing score: references average the finite pairs (masked path)
        A[1, 3, 2, 4] = np.nan
    ceil = rng.uniform(0.3, 0.9, (S, R))
    A_diag = A.copy()
    for s in range(S):
        A[s, s] = np.nan
        A_diag[s, s] = 1e6  # a subject paired with itself would blow up the result
    vd = _variant_data(variant, A, ceil, 0.1)
    r = 2
    for idx in ([0, 0, 1, 3, 3, 3, 6], [2, 4, 4, 5, 1, 1, 0], list(range(S))):
        idx = np.array(idx)
        w = np.bincount(idx, minlength=S).astype(float)[None]
        want = _brute_delta(vd.A, test, train, vd.scale, vd.mask, r, idx, match)
        for tensor in (vd.A, A_diag / vd.scale[None, :, None, :]):
            got = apa_boot._batch_delta(tensor[None, :, :, r, :], test[None], w, train[:, :, r],
                                        vd.scale, vd.mask[r], r, match)
            assert got[0] == pytest.approx(want, abs=1e-10)


def _summary(cands, rois, variants=("full", "offdiag"), delta=0.1):
    return pd.DataFrame([{"measure": "m", "variant": v, "match": "pearson", "candidate": c,
                          "weights": "random", "roi": r, "delta": delta}
                         for v in variants for c in [BRAIN, *cands] for r in rois])


def _tables(S, R, L, cands, rng, n_draws):
    A, _, _ = _tensor(S, R, L, rng)
    subjects = [f"{i:02d}" for i in range(S)]
    rois = [f"R{i}" for i in range(R)]
    bb = pd.DataFrame([(subjects[a], rois[x], subjects[b], rois[y], "test", A[a, b, x, y])
                       for a in range(S) for b in range(S) if a != b
                       for x in range(R) for y in range(R)],
                      columns=["source_subject", "source_roi", "target_subject", "target_roi",
                               "split", "score"])
    mb_rows, model_boot = [], {}
    for c in cands:
        _, test, train = _tensor(S, R, L, np.random.default_rng(abs(hash(c)) % 2**32))
        for split, arr in (("train", train), ("test", test)):
            for li in range(L):
                for si, s in enumerate(subjects):
                    for ri, roi in enumerate(rois):
                        mb_rows.append((c, "random", f"L{li}", li, s, roi, split,
                                        arr[li, si, ri]))
        model_boot[c] = test[None] + 0.05 * np.random.default_rng(len(c)).standard_normal(
            (n_draws, L, S, R))
    mb = pd.DataFrame(mb_rows, columns=["model", "weights", "layer", "layer_index", "subject",
                                        "roi", "split", "score"])
    brain_boot = A[None] + 0.05 * rng.standard_normal((n_draws, S, S, R, R))
    return bb, mb, brain_boot, model_boot, subjects, rois


def test_bootstrap_columns_deterministic_and_adding_a_model_changes_no_other_row():
    rng = np.random.default_rng(6)
    S, R, L, D = 7, 4, 3, 40
    bb, mb, brain_boot, model_boot, subjects, rois = _tables(S, R, L, ["ma", "mb", "mc"],
                                                             rng, D)
    two = mb[mb["model"] != "mc"]
    out2 = apa_boot.bootstrap_columns(_summary(["ma", "mb"], rois), bb, two, subjects, rois,
                                      "m", brain_boot, model_boot, 30, seed=3)
    again = apa_boot.bootstrap_columns(_summary(["ma", "mb"], rois), bb, two, subjects, rois,
                                       "m", brain_boot, model_boot, 30, seed=3)
    pd.testing.assert_frame_equal(out2, again)
    out3 = apa_boot.bootstrap_columns(_summary(["ma", "mb", "mc"], rois), bb, mb, subjects,
                                      rois, "m", brain_boot, model_boot, 30, seed=3)
    keep = out3[out3["candidate"] != "mc"].reset_index(drop=True)
    pd.testing.assert_frame_equal(keep, out2.reset_index(drop=True))
    models = out2[out2["candidate"] != BRAIN]
    # with 7 subjects ~8% of resamples hold < 4 distinct subjects (no reference): dropped
    assert models["n_bootstrap"].between(0.75 * D, D).all()
    assert np.all(models["delta_boot_se"] > 0)
    assert np.all(models["delta_boot_ci_low"] < 0.1) and np.all(models["delta_boot_ci_high"] > 0.1)
    assert out2.loc[out2["candidate"] == BRAIN, "delta_boot_se"].isna().all()
    other = apa_boot.bootstrap_columns(_summary(["ma", "mb"], rois), bb, two, subjects, rois,
                                       "m", brain_boot, model_boot, 30, seed=4)
    assert not np.allclose(other["delta_boot_se"].dropna(), models["delta_boot_se"])


def test_model_and_brain_share_the_stimulus_and_subject_indices():
    # brain rows identical across stand-ins (A[s′→s] = B_d[s]) and a candidate whose profile
    # is exactly B_d[s] in every draw: Δ = 0 in every draw only if both use draw d's stimuli
    # and the same subjects
    rng = np.random.default_rng(7)
    S, R, D = 6, 4, 30
    Bd = rng.standard_normal((D + 1, S, R, R))
    brain_boot = np.broadcast_to(Bd[:D, None], (D, S, S, R, R)).copy()
    A = Bd[D][None].repeat(S, axis=0)
    subjects = [f"{i:02d}" for i in range(S)]
    rois = [f"R{i}" for i in range(R)]
    bb = pd.DataFrame([(subjects[a], rois[x], subjects[b], rois[y], "test", A[a, b, x, y])
                       for a in range(S) for b in range(S) if a != b
                       for x in range(R) for y in range(R)],
                      columns=["source_subject", "source_roi", "target_subject", "target_roi",
                               "split", "score"])
    # layer ℓ = ROI ℓ's own pattern row; train picks layer r for ROI r
    rows = []
    for li in range(R):
        for si, s in enumerate(subjects):
            for ri, roi in enumerate(rois):
                rows.append(("cand", "random", f"L{li}", li, s, roi, "test", Bd[D, si, li, ri]))
                rows.append(("cand", "random", f"L{li}", li, s, roi, "train",
                             float(li == ri)))
    mb = pd.DataFrame(rows, columns=["model", "weights", "layer", "layer_index", "subject",
                                     "roi", "split", "score"])
    model_boot = Bd[:D].transpose(0, 2, 1, 3).copy()  # [d, layer = source ROI, s, r′]
    summ = _summary(["cand"], rois, variants=("full",), delta=0.0)
    out = apa_boot.bootstrap_columns(summ, bb, mb, subjects, rois, "m", brain_boot,
                                     {"cand": model_boot}, 20, seed=0)
    se = out.loc[out["candidate"] == "cand", "delta_boot_se"]
    assert np.allclose(se, 0.0, atol=1e-12)
    shifted = np.roll(model_boot, 1, axis=0)  # model on another draw's stimuli
    out = apa_boot.bootstrap_columns(summ, bb, mb, subjects, rois, "m", brain_boot,
                                     {"cand": shifted}, 20, seed=0)
    assert np.all(out.loc[out["candidate"] == "cand", "delta_boot_se"] > 1e-3)


@pytest.mark.slow
def test_synthetic_cka_interval_narrows_with_more_stimuli_and_agrees_with_jackknife():
    """Data-level synthetic: per-ROI latent signals seen by every subject with subject noise;
    the candidate's layers are the latents. Brain and model CKA scores and their bootstrap
    draws come from the Grams, so the stimulus factor is real."""
    from alignpatterns.patterns.apa import run_apa

    S, R, L = 8, 4, 4
    res = {}
    for n in (24, 96):
        rng = np.random.default_rng(11)
        lat = rng.standard_normal((R, n, 6))
        lat[1:] += 0.7 * lat[:-1]  # neighbouring ROIs share signal: a graded pattern
        grams = np.array([[gram(lat[r] @ rng.standard_normal((6, 10))
                                + rng.standard_normal((n, 10))) for r in range(R)]
                          for _ in range(S)])  # (S, R, n, n)
        layer_grams = np.array([gram(lat[li]) for li in range(L)])
        counts = stimulus_bootstrap_draws(0, "cka", 60, n)
        flat = grams.reshape(S * R, n, n)
        full = boot_cka(flat, flat, np.vstack([np.ones((1, n), int), counts]))
        full = full.reshape(-1, S, R, S, R).transpose(0, 1, 3, 2, 4)  # [d, s′, s, r, r′]
        for s in range(S):
            full[:, s, s] = np.nan
        mbf = boot_cka(layer_grams, flat, np.vstack([np.ones((1, n), int), counts]))
        mbf = mbf.reshape(-1, L, S, R)
        subjects = [f"{i:02d}" for i in range(S)]
        rois = [f"R{i}" for i in range(R)]
        bb = pd.DataFrame([(subjects[a], rois[x], subjects[b], rois[y], "test",
                            full[0, a, b, x, y]) for a in range(S) for b in range(S) if a != b
                           for x in range(R) for y in range(R)],
                          columns=["source_subject", "source_roi", "target_subject",
                                   "target_roi", "split", "score"])
        bb["measure"], bb["n_source_dims"], bb["n_vertices"] = "cka", 10, 10
        mb = pd.DataFrame([("cand", "random", f"L{li}", li, subjects[s], rois[r], split,
                            mbf[0, li, s, r]) for li in range(L) for s in range(S)
                           for r in range(R) for split in ("train", "test")],
                          columns=["model", "weights", "layer", "layer_index", "subject",
                                   "roi", "split", "score"])
        mb["measure"], mb["n_source_dims"], mb["n_vertices"] = "cka", 6, 10
        _, summary = run_apa(bb, mb, subjects, rois, "cka", variants=["full"])
        out = apa_boot.bootstrap_columns(summary, bb, mb, subjects, rois, "cka", full[1:],
                                         {"cand": mbf[1:]}, n, seed=0)
        m = out[out["candidate"] == "cand"]
        res[n] = m
        jk_half = (m["delta_ci_high"] - m["delta_ci_low"]) / 2
        boot_half = (m["delta_boot_ci_high"] - m["delta_boot_ci_low"]) / 2
        assert m["n_bootstrap"].between(50, 60).all()  # resamples with < 4 distinct dropped
        assert np.all(m["delta_boot_ci_low"] <= m["delta"])
        assert np.all(m["delta_boot_ci_high"] >= m["delta"])
        # the bootstrap adds the stimulus factor: same order as the jackknife, not wildly off
        ratio = (boot_half / jk_half).to_numpy()
        assert np.all((ratio > 0.3) & (ratio < 10)), ratio
    assert res[96]["delta_boot_se"].mean() < res[24]["delta_boot_se"].mean()


def test_bench_stimboot_quick_runs_both_parts():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_stimboot

    cfg = bench_stimboot.QUICK
    res = bench_stimboot.time_apa_stage(cfg, 10, log=lambda *a: None)
    assert res["n_cells"] == len(bench_stimboot.VARIANTS) * cfg["rois"] * cfg["candidates"]
    assert res["median_valid_draws"] > 0
    jobs = bench_stimboot.time_jobs(cfg, 5, log=lambda *a: None)
    assert set(jobs["brain_brain_job_s"]) == {"rsa", "cka", "lp"}


def test_load_boots_assembles_files_and_names_a_bad_one(tmp_path):
    from alignpatterns import io, pipeline

    subjects, rois, D = ["01", "02"], ["A", "B", "C"], 3
    rng = np.random.default_rng(0)
    bb_paths, null_paths, per_target = [], [], {}
    for t in subjects:
        arr = rng.standard_normal((D, 2, 3, 3))
        per_target[t] = arr
        path = tmp_path / "bb" / f"sub-{t}.npz"
        path.parent.mkdir(exist_ok=True)
        io.save_arrays(path, {"boot": arr, "subjects": np.array(subjects),
                              "rois": np.array(rois), "n_bootstrap": np.array(D),
                              "n_stimuli": np.array(20)})
        bb_paths.append(path)
        npath = tmp_path / "null" / "m1" / f"sub-{t}.npz"
        npath.parent.mkdir(parents=True, exist_ok=True)
        io.save_arrays(npath, {"boot__x": np.full((D, 4, 3), float(t))})
        null_paths.append(npath)
    brain, models, n = pipeline.load_boots(null_paths, bb_paths, "x", subjects, rois)
    assert n == 20 and brain.shape == (D, 2, 2, 3, 3)
    np.testing.assert_array_equal(brain[:, :, 1], per_target["02"])  # [draw, source, target]
    assert models["m1"].shape == (D, 4, 2, 3) and np.all(models["m1"][:, :, 1] == 2.0)
    with pytest.raises(ValueError, match=r"sub-01\.npz: no stimulus-bootstrap scores"):
        pipeline.load_boots(null_paths, bb_paths, "y", subjects, rois)
