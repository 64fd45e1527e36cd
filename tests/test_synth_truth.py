"""Noise-free ground truth: expected patterns against direct formulas, the oracle's verdict in
closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group, spearmanr

from alignpatterns.measures import linear_cka
from alignpatterns.synth import truth as T

N_TEST, SUBJECTS, ROIS = 40, ["01", "02", "03", "04"], ["V1", "V4", "LO2", "LO3"]


def _layers(rng, n_layers=4, width=12):
    """Generator-like layers: each a nonlinear function of the previous one."""
    out, x = [], rng.standard_normal((N_TEST, width))
    for _ in range(n_layers):
        x = np.tanh(x @ rng.standard_normal((width, width)) * 0.9) + 0.3 * x
        out.append(x.copy())
    return out


def _rotated_copies(layers, rng):
    """Every subject's ROI k = layer k in a subject-specific orthonormal basis (noise-free)."""
    return {(s, r): layers[k] @ ortho_group.rvs(layers[k].shape[1], random_state=rng)
            for s in SUBJECTS for k, r in enumerate(ROIS)}


def test_expected_patterns_are_the_mean_over_ordered_pairs():
    rng = np.random.default_rng(0)
    data = {(s, r): rng.standard_normal((N_TEST, 8 + k)) for s in SUBJECTS
            for k, r in enumerate(ROIS)}
    got = T.expected_patterns(data)
    pairs = [(a, b) for a in SUBJECTS for b in SUBJECTS if a != b]
    cka = np.mean([[[linear_cka(data[a, r], data[b, r2], debiased=True) for r2 in ROIS]
                    for r in ROIS] for a, b in pairs], axis=0)
    np.testing.assert_allclose(got["cka-linear-debiased"], cka, atol=2e-6)

    def sq(X):
        d = ((X[:, None] - X[None]) ** 2).sum(-1)
        return d[np.triu_indices(len(X), 1)]

    rsa = np.mean([[[spearmanr(sq(data[a, r]), sq(data[b, r2]))[0] for r2 in ROIS]
                    for r in ROIS] for a, b in pairs], axis=0)
    np.testing.assert_allclose(got["rsa-crossnobis-spearman"], rsa, atol=2e-6)
    corr = np.mean([[[spearmanr(pdist(data[a, r], "correlation"),
                                pdist(data[b, r2], "correlation"))[0] for r2 in ROIS]
                     for r in ROIS] for a, b in pairs], axis=0)
    np.testing.assert_allclose(got["rsa-correlation-spearman"], corr, atol=2e-6)


def _lp_data(rng, n_train=50, n_test=30):
    """Subjects whose ROIs mix a shared latent (ROI-specific mixing) with private signal;
    whole-brain arrays with slices and true ncsnr, some vertices below 0.2."""
    n = n_train + n_test
    latent = rng.standard_normal((n, 6))
    sizes = {"V1": 9, "V4": 14, "LO2": 11}
    slices, start = {}, 0
    for r, size in sizes.items():
        slices[r] = slice(start, start + size)
        start += size
    noiseless, snr = {}, {}
    for s in SUBJECTS[:3]:
        cols = [latent[:, :4 + k] @ rng.standard_normal((4 + k, size))
                + 0.5 * rng.standard_normal((n, size)) for k, size in enumerate(sizes.values())]
        noiseless[s] = np.concatenate(cols, axis=1)
        snr[s] = rng.uniform(0.1, 1.0, start)
    return noiseless, snr, slices, n_train


def test_lp_pattern_matches_scikit_learn_pca_and_least_squares():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    noiseless, snr, slices, n_train = _lp_data(rng)
    got, k = T.expected_lp_pattern(noiseless, snr, slices, n_train, n_components=5)
    assert k == 5
    rois, subs = list(slices), sorted(noiseless)
    keep = {(s, r): noiseless[s][:, sl][:, snr[s][sl] >= 0.2] for s in subs
            for r, sl in slices.items()}

    def lp(X, Y):
        pca = PCA(5).fit(X[:n_train])
        reg = LinearRegression().fit(pca.transform(X[:n_train]), Y[:n_train])
        P = reg.predict(pca.transform(X[n_train:]))
        return np.mean([np.corrcoef(P[:, v], Y[n_train:, v])[0, 1] for v in range(Y.shape[1])])

    want = np.mean([[[lp(keep[a, r], keep[b, r2]) for r2 in rois] for r in rois]
                    for a in subs for b in subs if a != b], axis=0)
    np.testing.assert_allclose(got, want, atol=2e-6)
    # a source whose components span the target's signal predicts it perfectly; k is capped by
    # the smallest reliable ROI
    same = {s: np.tile(noiseless["01"][:, slices["V1"]], (1, 3)) for s in subs}
    ones = {s: np.ones(27) for s in subs}
    tiled = {r: slice(9 * i, 9 * (i + 1)) for i, r in enumerate(rois)}
    full, k = T.expected_lp_pattern(same, ones, tiled, n_train, n_components=50)
    assert k == 9
    np.testing.assert_allclose(full, 1.0, atol=1e-9)


def test_an_oracle_that_generated_the_rois_passes_with_its_own_layers():
    rng = np.random.default_rng(1)
    layers = _layers(rng)
    data = _rotated_copies(layers, rng)
    names = [f"l{k}" for k in range(len(layers))]
    got = T.expected_oracle(data, layers, names)
    for measure, rows in got.items():
        for k, r in enumerate(ROIS):
            row = rows[r]
            assert row["layer"] == names[k], (measure, r)
            # rotations leave RDMs and Grams unchanged: model and brain patterns equal E
            assert row["aps"] == pytest.approx(1.0, abs=1e-6)
            assert row["aps_brain"] == pytest.approx(1.0, abs=1e-6)
            assert row["spec"] > 0
            assert row["passes"]


def test_an_oracle_of_unrelated_features_does_not_pass():
    rng = np.random.default_rng(2)
    data = _rotated_copies(_layers(rng), rng)
    unrelated = _layers(np.random.default_rng(99))
    got = T.expected_oracle(data, unrelated, [f"l{k}" for k in range(4)])
    for measure, rows in got.items():
        assert sum(v["passes"] for v in rows.values()) <= 1, measure
        assert all(v["aps_brain"] == pytest.approx(1.0, abs=1e-6) for v in rows.values())


def test_the_margin_decides_a_close_delta():
    """Same oracle, same data: a margin above |delta| passes, one below it fails."""
    rng = np.random.default_rng(3)
    layers = _layers(rng)
    data = _rotated_copies(layers, rng)
    # the oracle sees a slightly different network: deltas are small but negative
    shifted = [x + 0.6 * rng.standard_normal(x.shape) for x in layers]
    got = T.expected_oracle(data, shifted, [f"l{k}" for k in range(4)], margin=1.0)
    row = min(got["cka-linear-debiased"].values(), key=lambda v: v["delta"])
    assert row["delta"] < 0
    wide = T.expected_oracle(data, shifted, [f"l{k}" for k in range(4)],
                             margin=-row["delta"] + 1e-3)
    tight = T.expected_oracle(data, shifted, [f"l{k}" for k in range(4)],
                              margin=-row["delta"] - 1e-3)
    roi = next(r for r, v in got["cka-linear-debiased"].items() if v is row)
    assert wide["cka-linear-debiased"][roi]["passes"] == (row["spec"] > 0)
    assert not tight["cka-linear-debiased"][roi]["passes"]


def test_double_exclusion_references_leave_out_both_subjects():
    rng = np.random.default_rng(5)
    subjects = ["01", "02", "03", "04", "05"]
    order = [(a, b) for a in subjects for b in subjects if a != b]
    pairs = rng.standard_normal((len(order), 3, 3))
    refs = T.double_exclusion_references(pairs, subjects)
    for p, (a, b) in enumerate(order):
        # the pairs among the three other subjects: 3 · 2 ordered pairs
        rest = [q for q, (c, d) in enumerate(order) if a not in (c, d) and b not in (c, d)]
        assert len(rest) == 6
        np.testing.assert_allclose(refs[p], pairs[rest].mean(axis=0), rtol=1e-12)
    assert np.isnan(T.double_exclusion_references(pairs[:6], subjects[:3])).all()


def test_the_brain_baseline_is_scored_against_double_exclusion_references():
    """aps_brain is the mean over ordered pairs of ρ(A_p[r, r′ ≠ r], ā^{−{s*,s}}[r, r′ ≠ r]),
    recomputed here from the pair patterns with direct loops."""
    rng = np.random.default_rng(6)
    data = {(s, r): rng.standard_normal((N_TEST, 6)) + 0.8 * rng.standard_normal((N_TEST, 1))
            * (k + 1) for s in SUBJECTS for k, r in enumerate(ROIS)}
    got = T.expected_oracle(data, _layers(rng), [f"l{k}" for k in range(4)])
    pairs = [(a, b) for a in SUBJECTS for b in SUBJECTS if a != b]
    A = {(a, b): np.array([[linear_cka(data[a, r], data[b, r2], debiased=True) for r2 in ROIS]
                           for r in ROIS]) for a, b in pairs}
    for i, r in enumerate(ROIS):
        keep = [j for j in range(len(ROIS)) if j != i]
        vals = []
        for a, b in pairs:
            ref = np.mean([A[c, d] for c, d in pairs if not {c, d} & {a, b}], axis=0)
            vals.append(np.corrcoef(A[a, b][i, keep], ref[i, keep])[0, 1])
        assert got["cka-linear-debiased"][r]["aps_brain"] == pytest.approx(np.mean(vals),
                                                                          abs=2e-6)


def test_the_verdict_uses_jackknife_intervals_over_subjects():
    """With ≥ 6 subjects, expected_pass is the interval verdict: delete-one-subject jackknife-t
    intervals of delta and spec, each resample recomputing ℓ*, pairs and double-exclusion
    references on the other subjects — recomputed here with direct loops."""
    from scipy import stats

    rng = np.random.default_rng(8)
    layers = _layers(rng)
    subjects = [f"{k:02d}" for k in range(1, 7)]
    # rotated layers plus subject-specific private signal: noise-free, but subjects differ
    data = {(s, r): layers[k] @ ortho_group.rvs(layers[k].shape[1], random_state=rng)
            + (0.3 + 0.3 * j) * rng.standard_normal((N_TEST, layers[k].shape[1]))
            for j, s in enumerate(subjects) for k, r in enumerate(ROIS)}
    shifted = [x + 0.5 * rng.standard_normal(x.shape) for x in layers]
    got = T.expected_oracle(data, shifted, [f"l{k}" for k in range(4)], margin=0.1)
    cka = lambda a, b: linear_cka(a, b, debiased=True)  # noqa: E731
    A = {(a, b): np.array([[cka(data[a, r], data[b, r2]) for r2 in ROIS] for r in ROIS])
         for a in subjects for b in subjects if a != b}
    score = {(lay, s): np.array([cka(shifted[lay], data[s, r]) for r in ROIS])
             for lay in range(4) for s in subjects}

    def corr(x, y):
        return np.corrcoef(x, y)[0, 1]

    def means(keep, i):
        best = max(range(4), key=lambda lay: np.mean([score[lay, s][i] for s in keep]))
        order = [(a, b) for a in keep for b in keep if a != b]
        aps, brain, spec = [], [], []
        for a, b in order:
            ref = np.mean([A[c, d] for c, d in order if not {c, d} & {a, b}], axis=0)
            own = score[best, b]
            rest = [j for j in range(len(ROIS)) if j != i]
            aps.append(corr(own[rest], ref[i, rest]))
            brain.append(corr(A[a, b][i, rest], ref[i, rest]))
            spec.append(aps[-1] - np.mean([
                corr(own[[j for j in rest if j != k]], ref[k, [j for j in rest if j != k]])
                for k in rest]))
        return np.mean(aps) - np.mean(brain), np.mean(spec)

    n = len(subjects)
    t = stats.t.ppf(0.975, n - 1)
    for i, r in enumerate(ROIS):
        delta, spec = means(subjects, i)
        loo = np.array([means([s for s in subjects if s != j], i) for j in subjects])
        se = np.sqrt((n - 1) / n * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
        row = got["cka-linear-debiased"][r]
        assert row["delta"] == pytest.approx(delta, abs=2e-6)
        assert row["delta_ci_low"] == pytest.approx(delta - t * se[0], abs=2e-5)
        assert row["delta_ci_high"] == pytest.approx(delta + t * se[0], abs=2e-5)
        assert row["spec_ci_low"] == pytest.approx(spec - t * se[1], abs=2e-5)
        assert row["passes_point"] == (delta > -0.1 and spec > 0)
        assert row["passes"] == (delta - t * se[0] > -0.1 and spec - t * se[1] > 0)
    # the subjects' differences matter: some ROI passes on its point values but not on its
    # interval
    rows = got["cka-linear-debiased"].values()
    assert any(v["passes_point"] and not v["passes"] for v in rows)
    assert all(v["delta_ci_low"] < v["delta"] < v["delta_ci_high"] for v in rows)


def test_below_six_subjects_the_verdict_is_the_point_verdict():
    rng = np.random.default_rng(3)
    layers = _layers(rng)
    got = T.expected_oracle(_rotated_copies(layers, rng), layers, [f"l{k}" for k in range(4)])
    for rows in got.values():
        for row in rows.values():
            assert row["delta_ci_low"] is None and row["spec_ci_low"] is None
            assert row["passes"] == row["passes_point"]


def test_fewer_than_four_subjects_leave_no_reference():
    rng = np.random.default_rng(7)
    layers = _layers(rng)
    data = {k: v for k, v in _rotated_copies(layers, rng).items() if k[0] != "04"}
    got = T.expected_oracle(data, layers, [f"l{k}" for k in range(4)])
    for rows in got.values():
        for row in rows.values():
            assert row["aps"] is None and row["aps_brain"] is None and not row["passes"]


def _biased_cka(X, Y):
    """Linear CKA from its definition ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on centred X, Y."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    return np.linalg.norm(X.T @ Y) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def test_candidate_layer_cka_finds_the_driving_layer():
    rng = np.random.default_rng(3)
    layers = _layers(rng, n_layers=4, width=12)
    names = [f"g{k}" for k in range(4)]
    truth = {"rois": ROIS, "roi_true_layer_name": dict(zip(ROIS, names, strict=True))}
    oracle = dict(zip(names, layers, strict=True))
    # a candidate whose layers are the generator's in reverse order and rotated (CKA- and
    # distance-invariant), and one of unrelated Gaussian features
    rotated = {f"c{k}": layers[3 - k] @ ortho_group.rvs(12, random_state=rng) for k in range(4)}
    noise = {f"n{k}": rng.standard_normal((N_TEST, 12)) for k in range(4)}
    table = T.candidate_layer_cka(truth, oracle, {"rot": rotated, "noise": noise})
    rot = table[table["candidate"] == "rot"].set_index("roi")
    for k, roi in enumerate(ROIS):
        assert rot.loc[roi, "driver_layer"] == names[k]
        assert rot.loc[roi, "best_layer"] == rot.loc[roi, "rsa_best_layer"] == f"c{3 - k}"
        assert rot.loc[roi, "best_layer_index"] == rot.loc[roi, "rsa_best_layer_index"] == 3 - k
        assert rot.loc[roi, "cka"] == pytest.approx(1.0, abs=1e-10)
        assert rot.loc[roi, "rsa"] == pytest.approx(1.0, abs=1e-10)
        assert rot.loc[roi, "eccentricity_r"] == pytest.approx(1.0, abs=1e-10)
    nz = table[table["candidate"] == "noise"].set_index("roi")
    for k, roi in enumerate(ROIS):
        expected = [_biased_cka(layers[k], noise[f"n{j}"]) for j in range(4)]
        assert nz.loc[roi, "cka"] == pytest.approx(max(expected), rel=1e-10)
        assert nz.loc[roi, "best_layer_index"] == int(np.argmax(expected))
        rsa = [spearmanr(pdist(layers[k], "sqeuclidean"), pdist(noise[f"n{j}"], "sqeuclidean"))[0]
               for j in range(4)]
        j = int(np.argmax(rsa))
        assert nz.loc[roi, "rsa"] == pytest.approx(rsa[j], rel=1e-10)
        assert nz.loc[roi, "rsa_best_layer_index"] == j
        centroid_distance = [np.sqrt(((x - x.mean(0)) ** 2).sum(1)) for x in (layers[k],
                                                                             noise[f"n{j}"])]
        assert nz.loc[roi, "eccentricity_r"] == pytest.approx(
            spearmanr(*centroid_distance)[0], rel=1e-10)
    assert (nz["cka"] < 0.6).all() and (nz["rsa"] < 0.4).all()


def test_a_candidate_sharing_only_the_distances_from_the_centroid_has_high_rsa():
    """Squared-Euclidean RDM entries are e_i² + e_j² − 2 x_i·x_j (e: distance from the
    centroid): features that share only e with the driving layer and are otherwise random reach
    a high RSA, and ``eccentricity_r`` says why."""
    rng = np.random.default_rng(5)
    n = 120
    scale = np.exp(rng.normal(0.0, 0.6, n))  # stimuli differ in how far they lie from the centroid
    driver = scale[:, None] * rng.standard_normal((n, 30))
    e = np.sqrt(((driver - driver.mean(0)) ** 2).sum(1))
    directions = rng.standard_normal((n, 2000))
    only_e = e[:, None] * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    unrelated = rng.standard_normal((n, 2000))
    truth = {"rois": ["V1"], "roi_true_layer_name": {"V1": "g0"}}
    table = T.candidate_layer_cka(truth, {"g0": driver},
                                  {"ecc": {"e0": only_e}, "noise": {"u0": unrelated}}
                                  ).set_index("candidate")
    assert table.loc["ecc", "eccentricity_r"] > 0.99
    assert table.loc["ecc", "rsa"] > 0.9
    assert table.loc["noise", "rsa"] < 0.1 and abs(table.loc["noise", "eccentricity_r"]) < 0.3


def test_candidate_layer_cka_rejects_mismatched_inputs():
    rng = np.random.default_rng(4)
    layers = _layers(rng, n_layers=2)
    truth = {"rois": ["V1"], "roi_true_layer_name": {"V1": "g1"}}
    with pytest.raises(ValueError, match=r"driving layers \['g1'\]"):
        T.candidate_layer_cka(truth, {"g0": layers[0]}, {})
    with pytest.raises(ValueError, match="different numbers of stimuli"):
        T.candidate_layer_cka(truth, {"g1": layers[1]}, {"c": {"c0": layers[0][:-1]}})


def test_synth_layer_cka_names_the_bad_input(tmp_path):
    from alignpatterns import pipeline

    cfg = {"models": [{"name": "oracle", "weights": "oracle"}]}
    out = tmp_path / "t.parquet"
    with pytest.raises(FileNotFoundError, match="ground_truth.json: ground truth not found"):
        pipeline.synth_layer_cka(cfg, str(tmp_path), ["features/oracle.npz"], str(out))
    (tmp_path / "ground_truth.json").write_text('{"rois": ["V1"]}')
    with pytest.raises(ValueError, match="ground_truth.json: no 'roi_true_layer_name'"):
        pipeline.synth_layer_cka(cfg, str(tmp_path), ["features/oracle.npz"], str(out))
    (tmp_path / "ground_truth.json").write_text(
        '{"rois": ["V1"], "roi_true_layer_name": {"V1": "g0"}}')
    with pytest.raises(ValueError, match=r"needs the oracle's features, got \['vgg11'\]"):
        pipeline.synth_layer_cka(cfg, str(tmp_path), ["features/vgg11.npz"], str(out))
    assert not out.exists()
