"""Smoke test of the ridge and CKA benchmarks at --quick size: equality fields, not timings."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import bench_cka  # noqa: E402
import bench_ridge  # noqa: E402

FAKE_PEAK = {"gflops": 100.0, "n": 0, "best_s": 0.0}


def _quiet(*_args, **_kw):
    pass


def test_ridge_quick_agrees_with_references():
    pytest.importorskip("himalaya")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    # one BLAS thread: tiny products under oversubscription are otherwise erratically slow;
    # the torch-on-CPU rows are left out (first torch use costs seconds; torch is covered
    # by the ridge tests)
    with threadpoolctl.threadpool_limits(1):
        payload = bench_ridge.run_benchmark(
            bench_ridge.QUICK, repeats=1, gpu=False, torch_cpu=False, peak=FAKE_PEAK,
            profile=True, log=_quiet,
        )
    res = payload["results"]
    names = [n for n in res if n not in ("ours_kfold", "ours_loo")]
    assert {"himalaya_ridgecv_numpy", "himalaya_kernelridgecv_numpy",
            "sklearn_ridgecv_gcv"} <= set(names)
    for name in names:
        assert res[name]["status"] == "ok", name
        assert res[name]["alphas_agree_fraction"] == 1.0, name
        assert res[name]["max_rel_pred_diff"] < 1e-8, name
    assert res["sklearn_ridgecv_gcv"]["reference"] == "ours_loo"
    assert res["himalaya_ridgecv_numpy"]["reference"] == "ours_kfold"
    summary = payload["summary"]
    assert summary["fastest_himalaya_cpu"] in res
    assert summary["ratio_ours_to_fastest_himalaya_cpu"] > 0
    assert payload["flops_ours_kfold"]["total"] > 0
    prof = payload["profile_ours_kfold"]
    assert prof["lines"] and prof["lines"][0]["file"].endswith(".py")
    assert prof["traced_s"] <= prof["total_s"] * 1.01


def test_ridge_data_spreads_alphas():
    Xtr, Ytr, _ = bench_ridge.make_data(**{k: v for k, v in bench_ridge.QUICK.items()
                                           if k != "n_folds"})
    best = bench_ridge.RidgeCV(bench_ridge.ALPHAS, cv=5).fit(Xtr, Ytr).best_alphas_
    assert len(np.unique(best)) >= 4


def test_ridge_flops_regimes():
    kernel = bench_ridge.ridge_flops(1000, 102, 2048, 20_000, 20, 5)
    primal = bench_ridge.ridge_flops(1000, 102, 500, 100, 20, 5)
    parts = [v for k, v in kernel.items() if not k.startswith("total")]
    assert kernel["total"] == pytest.approx(sum(parts))
    assert 0 < kernel["total_excluding_factorisations"] < kernel["total"]
    assert kernel["fold_predictions"] / kernel["total"] > 0.5
    assert primal["kernel_gram"] == 0 and primal["factorisations"] > 0


def test_compare_reports_near_tie_of_a_disagreement():
    grid = np.array([10.0, 1.0, 100.0])  # order need not be sorted
    scores = np.array([[-1.0, -2.0], [-1.5, -2.0 - 1e-13], [-3.0, -2.5]])  # (alphas, targets)
    ref_alphas = grid[np.argmax(scores, axis=0)]  # [10, 10]
    other = np.array([10.0, 1.0])  # second target: a near-tie
    pred = np.ones((3, 2))
    out = bench_ridge.compare(ref_alphas, pred, other, pred, scores, grid)
    assert out["alphas_agree_fraction"] == 0.5 and out["alphas_disagree_count"] == 1
    assert out["disagreeing_targets_max_rel_score_gap"] == pytest.approx(5e-14, rel=1e-3)


def test_cka_quick_agrees_with_direct_formula():
    payload = bench_cka.run_benchmark(bench_cka.QUICK_CASES, repeats=1, log=_quiet)
    assert len(payload["results"]) == 3
    assert payload["all_agree"]
    routes = {r["ours_route"] for r in payload["results"]}
    assert routes == {"gram", "features"}  # both code paths are exercised
    for r in payload["results"]:
        for key in ("debiased", "biased"):
            assert r[key]["rel_diff"] <= bench_cka.TOLERANCE


def test_write_result_records_machine(tmp_path):
    path = _common.write_result("x", {"value": np.float64(1.5), "arr": np.arange(2)}, tmp_path)
    data = json.loads(path.read_text())
    assert data["value"] == 1.5 and data["arr"] == [0, 1]
    assert data["machine"]["logical_cores"] >= 1
    assert "numpy" in data["machine"]["versions"]
    stats, result = _common.timeit(lambda: 3, repeats=3)
    assert result == 3 and len(stats["times_s"]) == 3
    assert "alignpatterns.measures.cka_sha256" in _common.code_version(["alignpatterns.measures.cka"])


def test_apa_benchmark_quick_runs_every_stage():
    import bench_apa

    cfg = bench_apa.QUICK
    payload = bench_apa.run_benchmark(cfg, ["cka-linear-debiased"], log=_quiet)
    stage = payload["apa_stage"]
    # one summary row per selection × variant × ROI × (candidates + the brain baseline)
    assert stage["n_summary_rows"] == len(bench_apa.SELECTIONS) * len(bench_apa.VARIANTS) * (
        cfg["rois"] * (cfg["candidates"] + 1))
    assert stage["per_measure_s"] == pytest.approx(
        stage["run_apa_s"] + stage["generic_nulls_s"] + stage["identification_s"])
    bb = payload["brain_brain"]["per_measure"]["cka-linear-debiased"]
    # one (target, source) pair: R × R ROI pairs on both splits
    assert bb["n_rows"] == 2 * cfg["rois"] ** 2
