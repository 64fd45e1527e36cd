"""The synthetic generator obeys SPEC.md §5 and is reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from alignpatterns.config import resolve_config
from alignpatterns.features.registry import generator_seed, model_seed
from alignpatterns.synth import responses as R
from alignpatterns.synth.dataset import driver_layers


def test_ground_truth_keys_and_layer_constraints(tiny_dataset):
    root, truth = tiny_dataset
    for key in ("seed", "generator", "generator_seed", "roi_layers", "snr", "layer_cka",
                "variance_fractions", "true_ncsnr", "expected_pattern",
                "indistinguishable_groups", "expected_pass", "roi_true_layer"):
        assert key in truth, key
    assert truth["generator_seed"] == generator_seed(truth["seed"])
    cka = np.array(truth["layer_cka"])
    true = sorted(set(truth["roi_true_layer"].values()))
    assert cka[true[0], true[-1]] <= 0.7
    for i in true:
        for j in true:
            assert i == j or cka[i, j] <= 0.95
    assert json.loads((root / "ground_truth.json").read_text())["seed"] == truth["seed"]
    # the oracle's noise-free verdict: per measure with a noise-free form, per ROI
    assert set(truth["expected_pass"]) == {"rsa-crossnobis-spearman", "cka-linear-debiased"}
    for measure, rows in truth["expected_oracle"].items():
        assert set(rows) == set(truth["rois"])
        for roi, row in rows.items():
            assert row["layer"] in truth["generator_layers"]
            assert row["passes"] == truth["expected_pass"][measure][roi]
            margin = truth["expected_pass_margin"]
            assert row["passes_point"] == (row["delta"] > -margin and row["spec"] > 0)
            # 4 subjects: no verdict interval (test_synth_truth checks the ≥ 6-subject one)
            assert row["delta_ci_low"] is None and row["spec_ci_low"] is None
            assert row["passes"] == row["passes_point"]


def test_reliability_and_sizes_follow_the_spec(tiny_dataset):
    from alignpatterns.data.bmd import BMDLayout, load_atlas

    root, truth = tiny_dataset
    labels, _ = load_atlas(BMDLayout(root), "synthetic")
    sizes = list(truth["roi_sizes"].values())
    assert max(sizes) >= 5 * min(sizes)
    medians = list(truth["snr"]["median_ncsnr"].values())
    assert all(a > b for a, b in zip(medians, medians[1:], strict=False))  # falls along hierarchy
    assert 0.3 <= min(medians) and max(medians) <= 0.8
    snr = np.concatenate([np.array(v)[labels > 0] for v in truth["true_ncsnr"].values()])
    assert snr.max() <= 1.4 + 1e-9
    assert 0.2 <= np.mean(snr < 0.2) <= 0.5
    # SPEC.md §5 per ROI: 20-50% of each ROI's vertices below 0.2, in every subject
    for v in truth["true_ncsnr"].values():
        v = np.array(v)
        for k in range(1, int(labels.max()) + 1):
            assert 0.2 <= np.mean(v[labels == k] < 0.2) <= 0.5


def test_vertex_ncsnr_distribution():
    rng = np.random.default_rng(0)
    design = R.ResponseDesign()
    for median in design.ncsnr_median:
        snr = R.vertex_ncsnr(200_000, median, design, rng)
        assert np.median(snr) == pytest.approx(1.4 * np.tanh(median / 1.4), rel=0.02)
        assert 0.2 <= np.mean(snr < 0.2) <= 0.5
        # stratified: a small ROI's share below 0.2 is the design's up to one vertex
        below = 1.4 * np.arctanh(0.2 / 1.4)  # 0.2 before the soft cap
        want = stats.norm.cdf(np.log(below / median) / design.ncsnr_sigma)
        for n in (60, 61, 97, 360):
            small = R.vertex_ncsnr(n, median, design, rng)
            assert abs(np.sum(small < 0.2) - n * want) <= 1
            assert np.mean(small < 0.2) >= 0.2


def test_depth_weights_mix_adjacent_layers():
    w = R.depth_weights(1.5, 5, 0.45)
    assert w.sum() == pytest.approx(1.0)
    assert set(np.flatnonzero(w)) <= {0, 1, 2, 3} and w[1] == pytest.approx(w[2])
    assert np.argmax(R.depth_weights(3.0, 5, 0.45)) == 3


@pytest.mark.parametrize("n_drivers", [3, 4, 5])
def test_default_depth_mix_is_two_or_three_adjacent_layers(n_drivers):
    # SPEC.md §5: each ROI's latent mixes 2–3 adjacent driving layers. With the generator's 4
    # drivers (seeds 1–3) the default width lets one of them carry ≥ 75% of the variance, so a
    # single selected layer can stand in for the ROI
    from alignpatterns.synth.dataset import roi_positions

    width = R.ResponseDesign().mix_width
    for pos in roi_positions(10, n_drivers):
        w = R.depth_weights(float(pos), n_drivers, width)
        used = np.flatnonzero(w)
        assert 2 <= len(used) <= 3 and np.all(np.diff(used) == 1), (pos, w)
        assert np.argmax(w) == round(pos), (pos, w)
        if n_drivers == 4:
            assert w.max() >= 0.75, (pos, w)


def test_a_single_layer_roi_is_refused():
    from alignpatterns.synth.dataset import SynthesisError, _check_depth_mix, roi_positions

    narrow = {f"R{i}": R.depth_weights(float(p), 4, 0.2) for i, p in
              enumerate(roi_positions(10, 4))}
    with pytest.raises(SynthesisError, match=r"ROI R0 mixes driving layers \[0\].*mix_width 0.2"):
        _check_depth_mix(narrow, 0.2)
    _check_depth_mix({f"R{i}": R.depth_weights(float(p), 4, R.ResponseDesign().mix_width)
                      for i, p in enumerate(roi_positions(10, 4))}, 0.35)


def test_driver_layers_are_distinct():
    cka = np.array([[1.0, 0.97, 0.9, 0.8], [0.97, 1.0, 0.96, 0.9],
                    [0.9, 0.96, 1.0, 0.93], [0.8, 0.9, 0.93, 1.0]])
    assert driver_layers(cka) == [0, 2, 3]


def test_layer_components_spectrum():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 40)) @ rng.standard_normal((40, 60))
    Z = R.layer_components(X, 10, 2.0)
    var = (Z**2).sum(axis=0)
    np.testing.assert_allclose(var / var[0], np.arange(1, 11) ** -2.0, rtol=1e-10)
    np.testing.assert_allclose(Z.T @ Z, np.diag(var), atol=1e-10)


def test_candidate_of_the_generator_architecture_uses_another_seed(tiny_cfg):
    cfg = resolve_config(tiny_cfg)
    oracle = next(m for m in cfg["models"] if m["name"] == "oracle")
    assert oracle["seed"] == generator_seed(tiny_cfg["dataset"]["synthesize"]["seed"])
    assert model_seed(cfg["seed"], "vgg11") != oracle["seed"]


def test_synthesis_is_reproducible(tiny_dataset, tmp_path):
    from alignpatterns.synth.dataset import synthesize
    from tests.conftest import TINY

    root, truth = tiny_dataset
    again = synthesize(tmp_path / "again", **TINY)
    assert again == truth
    rel = "derivatives/versionB/fsLR32k/GLM/sub-02/prepared_betas/" \
          "sub-02_organized_betas_task-test_normalized.pkl"
    assert (root / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes()
    vids = sorted((root / "derivatives/stimuli_metadata/mp4_h264").glob("*.mp4"))
    for v in vids:
        assert v.read_bytes() == (tmp_path / "again/derivatives/stimuli_metadata/mp4_h264"
                                  / v.name).read_bytes(), v.name


def _r2(X: np.ndarray, Y: np.ndarray) -> float:
    """Share of Y's variance linearly explained by X (least squares, centred)."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    coef, *_ = np.linalg.lstsq(X, Y, rcond=None)
    return float(1 - ((Y - X @ coef) ** 2).sum() / (Y**2).sum())


def test_specific_components_carry_the_unshared_share_of_each_latent():
    # Two "layers" that share a strong 4-dimensional stimulus subspace and each have their own
    # weaker dimensions: a latent of the layer's top components is almost only the shared
    # subspace; the specific block is orthogonal to it and carries `specific_fraction` of the
    # variance, which the other layer's top components cannot predict.
    rng = np.random.default_rng(3)
    n = 2000
    common = rng.standard_normal((n, 4)) * 10.0
    layers = [np.hstack([common @ rng.standard_normal((4, 50)),
                         rng.standard_normal((n, 30)) @ rng.standard_normal((30, 50))])
              for _ in range(2)]
    rois, pos = ["V1", "LO3"], np.array([0.0, 1.0])

    def latents(specific_fraction):
        design = R.ResponseDesign(n_components=20, n_common=4, mix_width=0.1,
                                  specific_fraction=(specific_fraction, specific_fraction))
        lat = R.shared_latents(layers, rois, pos, design, np.random.default_rng(0))
        return lat.generator["V1"], lat.generator["LO3"]

    v1, lo3 = latents(0.0)
    assert v1.shape[1] == 20
    # the top 4 of 20 power-law components (89% of the variance) are the shared subspace
    shared_only = _r2(v1, lo3)
    assert shared_only > 0.85
    v1, lo3 = latents(0.3)
    assert v1.shape[1] == 40
    specific = lo3[:, 20:]
    assert (specific**2).sum() / (lo3**2).sum() == pytest.approx(0.3, abs=1e-9)
    assert _r2(common, specific) < 1e-4
    assert _r2(v1[:, :20], specific) < 0.02
    assert _r2(v1[:, :20], lo3) == pytest.approx(0.7 * shared_only, abs=0.02)


def test_specific_fraction_must_be_a_share():
    with pytest.raises(ValueError, match="specific_fraction"):
        R.shared_latents([np.eye(10)], ["V1"], np.array([0.0]),
                         R.ResponseDesign(specific_fraction=(0.1, 1.0)),
                         np.random.default_rng(0))


def test_specific_share_grows_along_the_hierarchy():
    rng = np.random.default_rng(4)
    common = rng.standard_normal((400, 3)) * 10.0
    layers = [np.hstack([common @ rng.standard_normal((3, 40)),
                         rng.standard_normal((400, 20)) @ rng.standard_normal((20, 40))])
              for _ in range(3)]
    design = R.ResponseDesign(n_components=10, n_common=3, mix_width=0.1,
                              specific_fraction=(0.1, 0.5))
    lat = R.shared_latents(layers, ["V1", "V4", "LO3"], np.array([0.0, 1.0, 2.0]), design,
                           np.random.default_rng(0))
    shares = [float((lat.generator[r][:, 10:] ** 2).sum() / (lat.generator[r] ** 2).sum())
              for r in ("V1", "V4", "LO3")]
    np.testing.assert_allclose(shares, [0.1, 0.3, 0.5], atol=1e-9)


def test_a_layer_with_no_specific_share_gets_no_empty_columns():
    """Share 0 at the shallowest layer: its latent is its own 10 components, no zero block."""
    rng = np.random.default_rng(5)
    layers = [rng.standard_normal((200, 30)) for _ in range(3)]
    design = R.ResponseDesign(n_components=10, n_common=3, mix_width=0.1,
                              specific_fraction=(0.0, 0.4))
    lat = R.shared_latents(layers, ["V1", "V4", "LO3"], np.array([0.0, 1.0, 2.0]), design,
                           np.random.default_rng(0))
    assert lat.generator["V1"].shape == (200, 10)
    assert (np.abs(lat.generator["V1"]).max(axis=0) > 0).all()
    assert lat.generator["LO3"].shape == (200, 20)


def test_synthesis_does_not_depend_on_the_callers_thread_count(tiny_dataset, tmp_path):
    """One thread (``--cores 1``) gives the same bytes as the default: the synthesis pins its own
    torch and BLAS threads, and the caller's setting is restored afterwards."""
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from alignpatterns.synth.dataset import SYNTH_THREADS, synthesize
    from tests.conftest import TINY

    root, truth = tiny_dataset
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            again = synthesize(tmp_path / "one", **TINY)
            assert torch.get_num_threads() == 1
            assert all(p["num_threads"] == 1 for p in threadpool_info())
    finally:
        torch.set_num_threads(before)
    assert SYNTH_THREADS != 1
    assert again == truth
    for f in sorted(root.rglob("*.pkl")):
        assert f.read_bytes() == (tmp_path / "one" / f.relative_to(root)).read_bytes(), f.name
