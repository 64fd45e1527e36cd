"""Smoke test of the RSA benchmark at a tiny size: equality fields, not timings."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

pytest.importorskip("rsatoolbox")
import bench_rsa  # noqa: E402

TINY = {"n": 40, "p": 300, "n_boot": 30, "n_boot_rsatoolbox": 8, "repeats": 1}


def test_rsa_benchmark_agrees_with_rsatoolbox():
    payload = bench_rsa.run_benchmark(TINY, n_jobs_all=2, log=lambda *a, **k: None)
    eq = payload["equality"]
    assert payload["all_agree"]
    assert eq["rdm_max_abs_diff"] <= 1e-10
    assert eq["observed_abs_diff"] <= 1e-10
    assert eq["bootstrap_max_abs_diff"] <= 1e-10
    assert eq["n_bootstrap_compared"] == 8
    assert eq["bootstrap_nan_draws_ours"] == 0
    s = payload["summary"]
    assert 0.1 < s["observed_spearman"] < 0.99  # the synthetic data have structure
    lo, hi = s["bootstrap_ci95"]
    assert lo < s["observed_spearman"] < hi
    assert s["speedup_total_n_jobs_1"] > 0
    assert set(payload["ours"]) == {"n_jobs_1", "n_jobs_all"}
    assert np.isfinite(payload["rsatoolbox"]["times_s"]["bootstrap"])
