"""Same inputs and seed → identical outputs; thread counts change results only within a
documented tolerance (docs/bad_inputs.md, "Determinism").

Byte-identical tables from two complete runs are tested in tests/test_workflow.py
(``test_rerun_is_a_no_op_and_reproducible``) and against the interrupted runs in
tests/test_reliability_interrupt.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from alignpatterns import io, pipeline

#: Tolerances between 1 and 2 threads (docs/bad_inputs.md): float32 features from torch differ
#: by reduction order in convolutions and matmuls (measured: ≤ 6.7e-7 of a layer's largest
#: activation); float64 scores from numpy/BLAS (measured: identical at this size).
FEATURE_RTOL = 1e-5
SCORE_ATOL = 1e-10


@pytest.fixture
def torch_threads():
    """Restore torch's thread count and determinism flags after the test."""
    torch = pytest.importorskip("torch")
    n, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield torch
    torch.set_num_threads(n)
    torch.use_deterministic_algorithms(det)


def _extract(tmp_path, threads: int, tag: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    frames = tmp_path / "frames.npz"
    if not frames.exists():
        io.save_arrays(frames, {"frames": rng.integers(0, 256, (6, 2, 64, 64, 3), np.uint8),
                                "ids": np.array([f"vid{i:04d}" for i in range(1, 7)]),
                                "n_train": np.array(4)})
    cfg = {"device": "cpu", "features": {"pool_grid": 2, "batch_size": 4},
           "models": [{"name": "m", "spec_name": "mobilenetv3_small_100", "weights": "random",
                       "seed": 11}]}
    out = tmp_path / f"{tag}.npz"
    pipeline.extract(cfg, "m", str(frames), str(out), threads=threads)
    return io.load_arrays(out)


def test_features_same_threads_identical_and_1_vs_2_threads_within_tolerance(tmp_path,
                                                                            torch_threads):
    one = _extract(tmp_path, 1, "one")
    assert torch_threads.are_deterministic_algorithms_enabled()
    _extract(tmp_path, 1, "again")
    two = _extract(tmp_path, 2, "two")
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "again.npz").read_bytes()
    layers = [k for k in one if k.startswith("layer/")]
    assert len(layers) >= 3
    for k in layers:
        scale = float(np.abs(one[k]).max())
        assert scale > 0, k
        np.testing.assert_allclose(two[k], one[k], rtol=0, atol=FEATURE_RTOL * scale, err_msg=k)


def test_scores_1_vs_2_blas_threads(tmp_path):
    from threadpoolctl import threadpool_limits

    from alignpatterns.patterns.alignment import LPOptions, model_brain_rows
    from tests.test_reliability_numerics import MEASURES, _features, _roi, _subject

    rng = np.random.default_rng(8)
    Ztr, Zte = _features(rng, p=60)
    sd = _subject({"A": _roi(Ztr, Zte, rng, v=40), "B": _roi(Ztr, Zte, rng, v=30)})
    lp = LPOptions(alphas=(0.1, 10.0, 1000.0), inner_cv=3, outer_cv=3, n_components=10)
    feats = {"L0": (Ztr, Zte), "L1": (np.tanh(Ztr), np.tanh(Zte))}
    scores = {}
    for n in (1, 2, 1):
        with threadpool_limits(n):
            rows = model_brain_rows(feats, sd, ["A", "B"], MEASURES, lp)
        scores.setdefault(n, []).append(np.array([r["score"] for r in rows]))
    np.testing.assert_array_equal(scores[1][0], scores[1][1])  # same threads: bit-identical
    np.testing.assert_allclose(scores[2][0], scores[1][0], rtol=0, atol=SCORE_ATOL)
