"""RSA benchmark: RDM + comparison + 1000 stimulus-bootstrap draws, ours against rsatoolbox.

Data are BMD-shaped (1102 stimuli x 50,000 features, float64): stimuli fall into a few
categories of a 20-dimensional latent space, the features are a random linear read-out of
the latents plus strong noise, and the model RDM comes from a noisy copy of the latents, so
the observed similarity is well above 0 but far from 1.

- ours: ``rdm(X, "correlation")``, ``compare_rdms(model, data, "spearman")`` and
  ``bootstrap_compare_rdms(model, data, "spearman", idx)`` on 1000 stimulus-bootstrap draws
  ``idx``; median of >= 3 repeats, with ``n_jobs=1`` and with all cores (``n_jobs=-1``).
- rsatoolbox 0.3.2: ``calc_rdm(Dataset(X), method="correlation")``, ``compare(model, data,
  "spearman")`` and, per draw, ``subsample_pattern("index", idx[k])`` on both RDMs then
  ``compare`` -- what ``rsatoolbox.inference.eval_bootstrap_pattern`` does per draw, here
  with the SAME resample indices as ours. Only the first 50 draws are run (one repeat,
  it is slow); the time for 1000 draws is extrapolated linearly, and the output says so.

Equality is checked on the data RDM, the observed similarity and the shared bootstrap
values (max abs differences recorded). Run ``python benchmarks/bench_rsa.py`` (full size,
~2-3 minutes on 2 cores, most of it rsatoolbox) or ``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_result  # noqa: E402

from alignpatterns.measures import (  # noqa: E402
    bootstrap_compare_rdms,
    bootstrap_indices,
    compare_rdms,
    rdm,
)

FULL = {"n": 1102, "p": 50_000, "n_boot": 1000, "n_boot_rsatoolbox": 50, "repeats": 3}
QUICK = {"n": 80, "p": 600, "n_boot": 100, "n_boot_rsatoolbox": 10, "repeats": 3}
TOLERANCE = {"rdm": 1e-10, "observed": 1e-10, "bootstrap": 1e-10}


def make_data(n: int, p: int, seed: int = 0, n_latent: int = 20, n_cats: int = 8):
    """(X (n, p) patterns, model RDM (n_pairs,)) sharing a categorical latent structure."""
    rng = np.random.default_rng(seed)
    cats = rng.integers(0, n_cats, n)
    Z = 1.5 * rng.standard_normal((n_cats, n_latent))[cats] + rng.standard_normal((n, n_latent))
    X = Z @ rng.standard_normal((n_latent, p))
    X += 4.0 * rng.standard_normal((n, p))
    X += rng.uniform(-1.0, 1.0, p)
    model = Z + 1.0 * rng.standard_normal((n, n_latent))
    return X, rdm(model, "correlation")


def run_ours(X, model_rdm, idx, n_jobs: int) -> dict[str, Any]:
    """One timed run of our pipeline, with per-stage times."""
    c0, t0 = time.process_time(), time.perf_counter()
    d = rdm(X, "correlation")
    t1 = time.perf_counter()
    obs = compare_rdms(model_rdm, d, "spearman")
    t2 = time.perf_counter()
    boot = bootstrap_compare_rdms(model_rdm, d, "spearman", idx, n_jobs=n_jobs)
    t3, c3 = time.perf_counter(), time.process_time()
    return {
        "rdm": d,
        "observed": obs,
        "bootstrap": boot,
        "times_s": {"rdm": t1 - t0, "compare": t2 - t1, "bootstrap": t3 - t2, "total": t3 - t0},
        "cpu_s": c3 - c0,
    }


def run_rsatoolbox(X, model_rdm, idx) -> dict[str, Any]:
    """rsatoolbox: calc_rdm + compare + per-draw subsample_pattern/compare on ``idx``."""
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs, calc_rdm, compare

    model = RDMs(model_rdm[None, :])
    c0, t0 = time.process_time(), time.perf_counter()
    # the "index" pattern descriptor is what subsample_pattern("index", ...) selects by
    ds = Dataset(X, obs_descriptors={"index": np.arange(X.shape[0])})
    data = calc_rdm(ds, method="correlation")
    t1 = time.perf_counter()
    obs = float(compare(model, data, "spearman")[0, 0])
    t2 = time.perf_counter()
    boot = np.array(
        [
            compare(
                model.subsample_pattern("index", i), data.subsample_pattern("index", i), "spearman"
            )[0, 0]
            for i in idx
        ]
    )
    t3, c3 = time.perf_counter(), time.process_time()
    return {
        "rdm": data.get_vectors()[0],
        "observed": obs,
        "bootstrap": boot,
        "times_s": {"rdm": t1 - t0, "compare": t2 - t1, "bootstrap": t3 - t2},
        "cpu_s": c3 - c0,
    }


def _summarise_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    stages = runs[0]["times_s"].keys()
    return {
        "repeats": len(runs),
        "times_s": {k: [r["times_s"][k] for r in runs] for k in stages},
        "median_s": {k: statistics.median(r["times_s"][k] for r in runs) for k in stages},
        "min_s": {k: min(r["times_s"][k] for r in runs) for k in stages},
        "cpu_s": [r["cpu_s"] for r in runs],
    }


def run_benchmark(
    size: dict[str, Any], *, seed: int = 0, n_jobs_all: int = -1, log=print
) -> dict[str, Any]:
    n, p, n_boot, n_rsa = size["n"], size["p"], size["n_boot"], size["n_boot_rsatoolbox"]
    repeats = size["repeats"]
    X, model_rdm = make_data(n, p, seed)
    idx = bootstrap_indices(n, n_boot, rng=seed + 1)
    log(f"data {n} x {p} float64; {n_boot} bootstrap draws; rsatoolbox runs {n_rsa} of them")

    ours: dict[str, Any] = {}
    last = None
    for label, n_jobs in (("n_jobs_1", 1), ("n_jobs_all", n_jobs_all)):
        runs = []
        for _ in range(repeats):
            last = None  # free the previous run
            last = run_ours(X, model_rdm, idx, n_jobs)
            runs.append(last)
        ours[label] = {"n_jobs": n_jobs, **_summarise_runs(runs)}
        med = ours[label]["median_s"]
        log(
            f"ours ({label}): rdm {med['rdm']:.3f} s, compare {med['compare']:.3f} s, "
            f"{n_boot} bootstrap draws {med['bootstrap']:.3f} s, total {med['total']:.3f} s "
            f"(median of {repeats})"
        )

    rsa = run_rsatoolbox(X, model_rdm, idx[:n_rsa])
    t = rsa["times_s"]
    per_draw = t["bootstrap"] / n_rsa
    rsa_total_extrapolated = t["rdm"] + t["compare"] + per_draw * n_boot
    log(
        f"rsatoolbox (1 repeat): calc_rdm {t['rdm']:.3f} s, compare {t['compare']:.3f} s, "
        f"{n_rsa} bootstrap draws {t['bootstrap']:.3f} s ({per_draw * 1e3:.1f} ms/draw); "
        f"total for {n_boot} draws EXTRAPOLATED from {n_rsa}: {rsa_total_extrapolated:.1f} s"
    )

    diffs = {
        "rdm_max_abs_diff": float(np.max(np.abs(last["rdm"] - rsa["rdm"]))),
        "observed_abs_diff": abs(last["observed"] - rsa["observed"]),
        "bootstrap_max_abs_diff": float(
            np.max(np.abs(last["bootstrap"][:n_rsa] - rsa["bootstrap"]))
        ),
        "n_bootstrap_compared": n_rsa,
        "bootstrap_nan_draws_ours": int(np.isnan(last["bootstrap"]).sum()),
    }
    agree = (
        diffs["rdm_max_abs_diff"] <= TOLERANCE["rdm"]
        and diffs["observed_abs_diff"] <= TOLERANCE["observed"]
        and diffs["bootstrap_max_abs_diff"] <= TOLERANCE["bootstrap"]
    )
    log(
        f"equality: rdm {diffs['rdm_max_abs_diff']:.1e}, observed "
        f"{diffs['observed_abs_diff']:.1e}, bootstrap ({n_rsa} shared draws) "
        f"{diffs['bootstrap_max_abs_diff']:.1e} -> agree={agree}"
    )

    summary = {
        "observed_spearman": last["observed"],
        "bootstrap_ci95": np.nanquantile(last["bootstrap"], [0.025, 0.975]),
        "rsatoolbox_total_s_extrapolated": rsa_total_extrapolated,
        "rsatoolbox_bootstrap_per_draw_s": per_draw,
    }
    for label in ours:
        med = ours[label]["median_s"]
        summary[f"ours_total_s_{label}"] = med["total"]
        summary[f"speedup_total_{label}"] = rsa_total_extrapolated / med["total"]
        summary[f"speedup_bootstrap_{label}"] = per_draw * n_boot / med["bootstrap"]
        summary[f"ours_bootstrap_per_draw_s_{label}"] = med["bootstrap"] / n_boot
    summary["speedup_rdm"] = t["rdm"] / ours["n_jobs_1"]["median_s"]["rdm"]
    # CPU seconds (all threads) are less sensitive to other processes on the machine
    # than wall time; rsatoolbox's CPU time is extrapolated like its wall time
    rsa_cpu_extrapolated = rsa["cpu_s"] * rsa_total_extrapolated / sum(t.values())
    summary["rsatoolbox_cpu_s_extrapolated"] = rsa_cpu_extrapolated
    for label in ours:
        cpu = statistics.median(ours[label]["cpu_s"])
        summary[f"ours_cpu_s_{label}"] = cpu
        summary[f"speedup_cpu_{label}"] = rsa_cpu_extrapolated / cpu
    for label in ours:
        log(
            f"speed ratio rsatoolbox / ours ({label}): total "
            f"{summary[f'speedup_total_{label}']:.1f}x, bootstrap only "
            f"{summary[f'speedup_bootstrap_{label}']:.1f}x; CPU time "
            f"{summary[f'speedup_cpu_{label}']:.1f}x"
        )

    try:
        import rsatoolbox

        rsa_version = rsatoolbox.__version__
    except (ImportError, AttributeError):
        rsa_version = None
    return {
        "benchmark": "rsa",
        "size": size,
        "seed": seed,
        "dtype": "float64",
        "rdm_metric": "correlation",
        "comparison": "spearman",
        "rsatoolbox_version": rsa_version,
        "timed": (
            "ours: rdm(X, 'correlation') + compare_rdms(model, rdm, 'spearman') + "
            f"bootstrap_compare_rdms on {n_boot} stimulus-bootstrap draws, median of "
            f"{repeats} repeats, n_jobs=1 and n_jobs={n_jobs_all}. rsatoolbox: calc_rdm "
            "(method 'correlation') + compare + per draw subsample_pattern('index', idx) on "
            f"model and data RDMs + compare (what eval_bootstrap_pattern does per draw) with "
            f"the same indices, 1 repeat, {n_rsa} draws timed; its total for {n_boot} draws is "
            f"EXTRAPOLATED linearly from those {n_rsa}."
        ),
        "tolerance": TOLERANCE,
        "all_agree": bool(agree),
        "equality": diffs,
        "ours": ours,
        "rsatoolbox": {
            "repeats": 1,
            "n_bootstrap_timed": n_rsa,
            "times_s": t,
            "cpu_s": rsa["cpu_s"],
        },
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small size (smoke test)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats of our side (>= 3)")
    ap.add_argument("--output", default=None, help="result name (default rsa / rsa_quick)")
    args = ap.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    if args.repeats is not None:
        size["repeats"] = args.repeats
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    payload = run_benchmark(size)
    payload["load_average_at_start_1_5_15"] = load_start
    payload["machine"] = machine_info()  # load average here is the one at the end
    payload["command"] = " ".join(["python", "benchmarks/bench_rsa.py", *(argv or sys.argv[1:])])
    path = write_result(args.output or ("rsa_quick" if args.quick else "rsa"), payload)
    print(f"all agree: {payload['all_agree']}")
    print(f"wrote {path}")
    return 0 if payload["all_agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
