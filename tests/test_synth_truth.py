"""Noise-free ground truth: expected patterns against direct formulas, the oracle's verdict in
closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group, spearmanr

from alignpatterns.measures import linear_cka
from alignpatterns.synth import truth as T

N_TEST, SUBJECTS, ROIS = 40, ["01", "02", "03"], ["V1", "V4", "LO2", "LO3"]


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
