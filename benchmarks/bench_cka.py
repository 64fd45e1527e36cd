"""CKA benchmark: ``alignpatterns.measures.linear_cka`` against a direct implementation.

The direct implementation (:func:`direct_cka`) writes the formulas of SPEC.md §2 literally
with explicit n x n matrices:

* debiased: K = X Xᵀ, L = Y Yᵀ on the raw (uncentred) features, K̃, L̃ = K, L with zero
  diagonal, HSIC_u(K, L) = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − (2/(n−2))·1ᵀK̃L̃1] / (n(n−3)),
  CKA = HSIC_u(K, L) / √(HSIC_u(K, K)·HSIC_u(L, L));
* biased: H = I − 11ᵀ/n, K_c = H K H, L_c = H L H,
  CKA = tr(K_c L_c) / √(tr(K_c K_c)·tr(L_c L_c))  (= ‖X_cᵀY_c‖²_F / (‖X_cᵀX_c‖_F‖Y_cᵀY_c‖_F)).

Cases (stimuli x features of X vs Y): the BMD model-vs-ROI shape 1102 x 50,000 vs
1102 x 2,000 (ours takes the Gram route), two wide representations 1102 x 50,000 vs
1102 x 20,000, and narrow ones 1102 x 256 vs 1102 x 128 (ours takes the feature-space
route, never forming n x n matrices). For each: relative difference (must be <= 1e-10), and
median time of ours, of the direct formula, and of ``cka_from_grams`` on precomputed Gram
matrices (the per-pair cost when one model's Gram is reused against many ROIs).

Run ``python benchmarks/bench_cka.py`` (full size, ~1 minute) or ``--quick``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_version, machine_info, timeit, write_result  # noqa: E402

from alignpatterns.measures import cka_from_grams, gram, linear_cka  # noqa: E402

FULL_CASES = [
    {"name": "model_vs_roi", "n": 1102, "p": 50_000, "q": 2_000},
    {"name": "wide_vs_wide", "n": 1102, "p": 50_000, "q": 20_000},
    {"name": "narrow_vs_narrow", "n": 1102, "p": 256, "q": 128},
]
QUICK_CASES = [
    {"name": "model_vs_roi", "n": 60, "p": 900, "q": 40},
    {"name": "wide_vs_wide", "n": 60, "p": 900, "q": 500},
    {"name": "narrow_vs_narrow", "n": 60, "p": 12, "q": 7},
]
TOLERANCE = 1e-10


def make_data(n, p, q, seed=0, shared_dims=30):
    """Two representations sharing a 30-dim latent signal plus independent noise (CKA well
    inside (0, 1)), with non-zero feature means."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, shared_dims))
    X = Z @ (0.1 * rng.standard_normal((shared_dims, p))) + 2.0 * rng.standard_normal((n, p))
    Y = Z @ (0.1 * rng.standard_normal((shared_dims, q))) + 2.0 * rng.standard_normal((n, q))
    X += rng.uniform(-1, 1, p)
    Y += rng.uniform(-1, 1, q)
    return X, Y


def _hsic_u_direct(K: np.ndarray, L: np.ndarray) -> float:
    n = K.shape[0]
    Kt = K.copy()
    Lt = L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    one = np.ones(n)
    KL = Kt @ Lt
    val = (
        np.trace(KL)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ KL @ one)
    )
    return float(val / (n * (n - 3)))


def direct_cka(X: np.ndarray, Y: np.ndarray, debiased: bool) -> float:
    """CKA written as the formula (explicit n x n kernels and centring matrix)."""
    n = X.shape[0]
    K = X @ X.T
    L = Y @ Y.T
    if debiased:
        return _hsic_u_direct(K, L) / np.sqrt(_hsic_u_direct(K, K) * _hsic_u_direct(L, L))
    H = np.eye(n) - np.ones((n, n)) / n
    Kc = H @ K @ H
    Lc = H @ L @ H
    return float(np.trace(Kc @ Lc) / np.sqrt(np.trace(Kc @ Kc) * np.trace(Lc @ Lc)))


def ours_cka(X: np.ndarray, Y: np.ndarray, debiased: bool) -> float:
    """Our linear_cka pinned to the numpy backend (its "auto" would use a visible GPU)."""
    try:
        return linear_cka(X, Y, debiased=debiased, backend="numpy")
    except TypeError:  # a version without the backend option
        return linear_cka(X, Y, debiased=debiased)


def run_case(case: dict[str, Any], repeats: int = 3) -> dict[str, Any]:
    X, Y = make_data(case["n"], case["p"], case["q"])
    n, p, q = case["n"], case["p"], case["q"]
    out: dict[str, Any] = {**case, "ours_route": "gram" if p * q > n * (p + q) else "features"}
    K, L = gram(X), gram(Y)
    for debiased in (True, False):
        key = "debiased" if debiased else "biased"
        t_ours, v_ours = timeit(lambda d=debiased: ours_cka(X, Y, d), repeats)
        t_direct, v_direct = timeit(lambda d=debiased: direct_cka(X, Y, d), repeats)
        t_grams, v_grams = timeit(lambda d=debiased: cka_from_grams(K, L, debiased=d), repeats)
        rel = abs(v_ours - v_direct) / abs(v_direct)
        rel_g = abs(v_grams - v_direct) / abs(v_direct)
        out[key] = {
            "ours": v_ours,
            "direct": v_direct,
            "from_grams": v_grams,
            "rel_diff": rel,
            "rel_diff_from_grams": rel_g,
            "agree": bool(rel <= TOLERANCE and rel_g <= TOLERANCE),
            "ours_time": t_ours,
            "direct_time": t_direct,
            "from_grams_time": t_grams,
            "speedup_ours_vs_direct": t_direct["median_s"] / t_ours["median_s"],
        }
    return out


def run_benchmark(cases, repeats: int = 3, log=print) -> dict[str, Any]:
    results = []
    for case in cases:
        res = run_case(case, repeats)
        results.append(res)
        for key in ("debiased", "biased"):
            r = res[key]
            log(f"{case['name']:18s} {case['n']}x{case['p']} vs {case['n']}x{case['q']} {key:8s} "
                f"cka {r['ours']:.6f} rel diff {r['rel_diff']:.1e}  ours "
                f"{r['ours_time']['median_s']:.3f} s  direct {r['direct_time']['median_s']:.3f} s"
                f"  from grams {r['from_grams_time']['median_s']:.4f} s")
    return {
        "benchmark": "cka",
        "code_version": code_version(["alignpatterns.measures.cka"]),
        "repeats": repeats,
        "dtype": "float64",
        "tolerance_rel": TOLERANCE,
        "all_agree": all(r[k]["agree"] for r in results for k in ("debiased", "biased")),
        "timed": "ours: linear_cka(X, Y, backend='numpy') from raw features; direct: the formula with "
        "explicit n x n matrices; from_grams: cka_from_grams(K, L) on precomputed Grams",
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", default=None, help="result name (default cka / cka_quick)")
    args = ap.parse_args(argv)
    payload = run_benchmark(QUICK_CASES if args.quick else FULL_CASES, args.repeats)
    payload["machine"] = machine_info()  # load average here is the one at the end
    payload["command"] = " ".join(["python", "benchmarks/bench_cka.py", *(argv or sys.argv[1:])])
    path = write_result(args.output or ("cka_quick" if args.quick else "cka"), payload)
    print(f"all agree (<= {TOLERANCE:g} relative): {payload['all_agree']}")
    print(f"wrote {path}")
    return 0 if payload["all_agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
