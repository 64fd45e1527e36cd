"""Layer selection by APS on the train split, the secondary selection of SPEC.md §4."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.patterns import apa

SUBJECTS = [f"{i:02d}" for i in range(1, 7)]
ROIS = ["A", "B", "C", "D", "E"]
S, R = len(SUBJECTS), len(ROIS)


def _bb(tensors: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for split, A in tensors.items():
        for (i, s1), (j, s2) in itertools.product(enumerate(SUBJECTS), repeat=2):
            if i == j:
                continue
            for (a, r1), (b, r2) in itertools.product(enumerate(ROIS), repeat=2):
                rows.append({"measure": "m", "source_subject": s1, "source_roi": r1,
                             "target_subject": s2, "target_roi": r2, "split": split,
                             "score": A[i, j, a, b], "n_source_dims": 5, "n_vertices": 5})
    return pd.DataFrame(rows)


def _mb(train: np.ndarray, test: np.ndarray) -> pd.DataFrame:
    rows = []
    for split, arr in (("train", train), ("test", test)):
        for li, si, ri in itertools.product(*map(range, arr.shape)):
            rows.append({"measure": "m", "model": "model", "weights": "random",
                         "layer": f"L{li}", "layer_index": li, "subject": SUBJECTS[si],
                         "roi": ROIS[ri], "split": split, "score": arr[li, si, ri],
                         "n_source_dims": 3, "n_vertices": 5})
    return pd.DataFrame(rows)


def _pattern(rng):
    return rng.uniform(0, 1, (R, R)) + 2 * np.eye(R)


def _vd(variant, train, ceil=None):
    A = np.zeros_like(train)
    ceil = np.ones((S, R)) if ceil is None else ceil
    return apa._variant_data(variant, A, ceil, 0.1, train)


def _brute_train_aps(train, X, others, variant, match, scale):
    """APS^T(ℓ, r) by loops: mean over targets t and stand-ins u ≠ t of the selecting subjects of
    ρ(X[ℓ, t] / scale[t], ā^{−{t,u}}[r]) on the variant's entries of r."""
    L = X.shape[0]
    out = np.full((L, R), np.nan)
    for r in range(R):
        cols = [c for c in range(R) if not (variant == "offdiag" and c == r)]
        for ell in range(L):
            vals = []
            for t in others:
                for u in others:
                    if u == t:
                        continue
                    rest = [m for m in others if m not in (t, u)]
                    ref = np.nanmean([train[a, b] for a in rest for b in rest if a != b],
                                     axis=0)
                    x, y = X[ell, t, cols] / scale[t, cols], ref[r, cols]
                    ok = np.isfinite(x) & np.isfinite(y)
                    x, y = x[ok], y[ok]
                    if match == "spearman":
                        x, y = stats.rankdata(x), stats.rankdata(y)
                    vals.append(np.corrcoef(x, y)[0, 1])
            out[ell, r] = np.mean(vals)
    return out


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
@pytest.mark.parametrize(("variant", "match"), [("full", "pearson"), ("offdiag", "pearson"),
                                                ("offdiag", "spearman"), ("full", "spearman"),
                                                ("normalized", "pearson")])
def test_train_aps_matches_brute_force(variant, match):
    rng = np.random.default_rng(3)
    train = _pattern(rng)[None, None] + 0.5 * rng.standard_normal((S, S, R, R))
    X = rng.uniform(0, 1, (3, S, R))
    ceil = rng.uniform(0.3, 0.9, (S, R)) if variant == "normalized" else np.ones((S, R))
    vd = _vd(variant, train, ceil)
    ms = apa.ModelScores("model", "random", ["L0", "L1", "L2"], X, X)
    others = [0, 1, 2, 4, 5]
    got = apa._train_aps(vd, ms, others, match)
    # normalized: every tensor cell and profile entry divided by the target's ceiling of r′
    train_n = train / ceil[None, :, None, :]
    np.testing.assert_allclose(got, _brute_train_aps(train_n, X, others, variant, match, ceil),
                               atol=1e-12)
    # a cell missing in every pair (NaN) takes the masked path: entry 3 of ROI C's rows
    # is dropped from both vectors; one missing pair is averaged over. Spearman ranks
    # over the entries both vectors have (ranking each over its own is not Spearman)
    train2 = train.copy()
    train2[:, :, 2, 3] = np.nan
    train2[0, 1, 1, 1] = np.nan
    got2 = apa._train_aps(_vd(variant, train2, ceil), ms, others, match)
    np.testing.assert_allclose(
        got2, _brute_train_aps(train2 / ceil[None, :, None, :], X, others, variant, match,
                               ceil), atol=1e-12)


def test_tied_layers_go_to_the_shallowest():
    """Exact ties (Spearman train APS over a few entries) and rounding-level differences pick
    the shallowest layer, whatever the summation order; NaN never wins."""
    mean = np.array([[0.3, np.nan, 0.1, 0.2],
                     [0.5, np.nan, 0.1 + 1e-15, 0.2],
                     [0.5 + 1e-14, np.nan, 0.1, 0.2 + 1e-6],
                     [0.1, np.nan, np.nan, 0.2]])
    np.testing.assert_array_equal(apa.best_layer(mean)[[0, 2, 3]], [1, 0, 2])
    X = np.zeros((3, S, R))
    X[1:] = 1.0  # layers 1 and 2 score the same everywhere, above layer 0
    X[2] += 1e-13
    ms = apa.ModelScores("m", "w", ["L0", "L1", "L2"], X, X)
    assert (apa._select_layers(ms, list(range(S)), 0) == 1).all()
    # the bootstrap's and the whole-model variant's selections break ties alike
    from alignpatterns.patterns import apa_boot, whole_model

    assert (apa_boot._select(X[:, :, 0], np.ones((2, S))) == 1).all()
    assert (whole_model.group_layers(ms) == 1).all()


def test_score_and_aps_selection_pick_their_own_layer():
    """Layer 0 scores highest at ROI A but its profile over target ROIs is the reverse of A's
    pattern; layer 1 scores lower with A's pattern: score picks L0, APS picks L1."""
    rng = np.random.default_rng(4)
    P = _pattern(rng)
    tensors = {split: P[None, None] + 0.05 * rng.standard_normal((S, S, R, R))
               for split in ("train", "test")}
    noise = lambda: 0.01 * rng.standard_normal((S, R))  # noqa: E731
    train = np.stack([0.9 - 0.05 * P[0][None] + noise(), 0.2 * P[0][None] + noise()])
    test = np.stack([0.9 - 0.05 * P[0][None] + noise(), 0.2 * P[0][None] + noise()])
    assert np.all(train[0, :, 0] > train[1, :, 0])  # the score favours layer 0 at ROI A
    rows, summary = apa.run_apa(_bb(tensors), _mb(train, test), SUBJECTS, ROIS, "m",
                                variants=["full"], selections=["score", "aps"])
    model = rows[(rows["candidate"] == "model") & (rows["roi"] == "A")]
    assert set(model.loc[model["selection"] == "score", "layer"]) == {"L0"}
    assert set(model.loc[model["selection"] == "aps", "layer"]) == {"L1"}
    summ = summary[(summary["candidate"] == "model") & (summary["roi"] == "A")]
    by_sel = summ.set_index("selection")
    assert by_sel.loc["aps", "aps_mean"] > 0.9 > by_sel.loc["score", "aps_mean"]
    # the brain baseline repeats, identical, under each selection
    brain = summary[summary["candidate"] == "brain"].pivot(index="roi", columns="selection",
                                                            values="aps_mean")
    np.testing.assert_array_equal(brain["score"], brain["aps"])
    # the primary selection's rows are unchanged by adding the secondary one
    rows1, summary1 = apa.run_apa(_bb(tensors), _mb(train, test), SUBJECTS, ROIS, "m",
                                  variants=["full"])
    pd.testing.assert_frame_equal(
        summary[summary["selection"] == "score"].reset_index(drop=True),
        summary1.reset_index(drop=True))


def test_aps_selection_is_leave_subject_out():
    """Changing subject s's train scores and train brain cells never changes ℓ*_APS(m, ·, s);
    changing another subject's does change the train APS it is chosen from. Inside a
    jackknife resample without j, j's data play no part either."""
    rng = np.random.default_rng(5)
    train = _pattern(rng)[None, None] + 0.4 * rng.standard_normal((S, S, R, R))
    X = rng.uniform(0, 1, (4, S, R))
    members = list(range(S))
    for s in (0, 3):
        base = apa._select_layers(apa.ModelScores("m", "w", list("abcd"), X, X), members, s,
                                  "aps", _vd("offdiag", train), "pearson")
        ref_aps = apa._train_aps(_vd("offdiag", train), apa.ModelScores(
            "m", "w", list("abcd"), X, X), [m for m in members if m != s], "pearson")
        for _ in range(5):
            X2, T2 = X.copy(), train.copy()
            X2[:, s] = rng.uniform(-1, 2, (4, R))
            T2[s] = rng.standard_normal((S, R, R))
            T2[:, s] = rng.standard_normal((S, R, R))
            ms2 = apa.ModelScores("m", "w", list("abcd"), X2, X2)
            np.testing.assert_array_equal(
                apa._select_layers(ms2, members, s, "aps", _vd("offdiag", T2), "pearson"), base)
        other = (s + 1) % S
        X3 = X.copy()
        X3[:, other] = rng.uniform(-1, 2, (4, R))
        changed = apa._train_aps(_vd("offdiag", train), apa.ModelScores(
            "m", "w", list("abcd"), X3, X3), [m for m in members if m != s], "pearson")
        assert not np.allclose(changed, ref_aps)
    j, s = 2, 4  # jackknife resample without j: target s's layer ignores j's data as well
    loo = [m for m in members if m != j]
    ms = apa.ModelScores("m", "w", list("abcd"), X, X)
    base = apa._select_layers(ms, loo, s, "aps", _vd("full", train), "pearson")
    X2, T2 = X.copy(), train.copy()
    X2[:, j] = rng.uniform(-1, 2, (4, R))
    T2[j], T2[:, j] = rng.standard_normal((S, R, R)), rng.standard_normal((S, R, R))
    np.testing.assert_array_equal(apa._select_layers(apa.ModelScores(
        "m", "w", list("abcd"), X2, X2), loo, s, "aps", _vd("full", T2), "pearson"), base)


def test_aps_selection_refuses_what_it_cannot_do():
    rng = np.random.default_rng(6)
    P = _pattern(rng)
    A = P[None, None] + 0.1 * rng.standard_normal((S, S, R, R))
    X = rng.uniform(0, 1, (2, S, R))
    with pytest.raises(ValueError, match="≥ 6 subjects"):
        apa.run_apa(_bb({"train": A, "test": A}).query("source_subject != '06' and "
                                                       "target_subject != '06'"),
                    _mb(X, X).query("subject != '06'"), SUBJECTS[:5], ROIS, "m",
                    selections=["aps"])
    with pytest.raises(ValueError, match="train-split brain_brain"):
        apa.run_apa(_bb({"test": A}), _mb(X, X), SUBJECTS, ROIS, "m", selections=["aps"])
    with pytest.raises(ValueError, match="unknown layer selections"):
        apa.run_apa(_bb({"test": A}), _mb(X, X), SUBJECTS, ROIS, "m", selections=["best"])


def test_residual_variant_gets_score_selection_only():
    rng = np.random.default_rng(7)
    A = _pattern(rng)[None, None] + 0.1 * rng.standard_normal((S, S, R, R))
    X = rng.uniform(0, 1, (2, S, R))
    ceilings = pd.DataFrame([{"measure": "m", "subject": s, "roi": r, "split": "test",
                              "kind": "split_half", "value": 0.8, "n_reps": 10.0}
                             for s in SUBJECTS for r in ROIS])
    _, summary = apa.run_apa(_bb({"train": A, "test": A}), _mb(X, X), SUBJECTS, ROIS, "m",
                             variants=["full", "residual"], ceilings=ceilings,
                             selections=["score", "aps"])
    got = summary.groupby("variant")["selection"].agg(lambda x: sorted(set(x))).to_dict()
    assert got == {"full": ["aps", "score"], "residual": ["score"]}
