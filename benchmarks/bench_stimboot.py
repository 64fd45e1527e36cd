"""Cost of the subject × stimulus bootstrap of Δ at BOLD Moments size (issue "APA complete").

Three parts, on synthetic data with BMD's shapes (10 subjects, 19 ROIs, 5 candidates × 10
layers, 96 test stimuli, ROIs of 150–1500 kept vertices):

1. **APA stage** — ``bootstrap_columns`` (the corrected dual bootstrap: subjects × stimuli,
   subjects only, stimuli only, same draws) for every candidate × ROI × variant (4 variants,
   Pearson), i.e. what the ``apa`` job adds per measure. The stage's cost does not depend on
   the measure once the bootstrap score files exist.
2. **model_brain job** (one model × subject) — the extra rescoring of 10 layers × 19 ROIs under
   the draws, per measure (RSA re-ranks; CKA; LP from stored predictions).
3. **brain_brain job** (one target subject) — the extra rescoring of 9 source subjects × 19 ROIs
   × 19 target ROIs under the draws, per measure.

Run ``python benchmarks/bench_stimboot.py [--draws 200]`` (~5 min on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_version, machine_info, write_result  # noqa: E402
from bench_apa import FULL, QUICK, VARIANTS, make_tables  # noqa: E402

from alignpatterns.patterns.apa import BRAIN, _prepared, model_scores  # noqa: E402
from alignpatterns.patterns.apa_boot import bootstrap_columns  # noqa: E402
from alignpatterns.patterns.stimboot import (  # noqa: E402
    boot_cka,
    boot_lp,
    boot_rsa,
    stimulus_bootstrap_draws,
)


def time_apa_stage(cfg: dict, n_draws: int, log=print) -> dict[str, Any]:
    """Seconds ``bootstrap_columns`` adds to one measure's APA job."""
    bb, mb, ceilings, _, subjects, rois = make_tables(cfg)
    rng = np.random.default_rng(5)
    kept, A, _ = _prepared(bb, subjects, rois, "m", ceilings)
    brain_boot = A[None] + 0.05 * rng.standard_normal((n_draws, *A.shape))
    cands = model_scores(mb, subjects, rois)
    model_boot = {ms.name: ms.test[None] + 0.05 * rng.standard_normal((n_draws, *ms.test.shape))
                  for ms in cands}
    rows = [{"measure": "m", "variant": v, "match": "pearson", "candidate": c, "weights": w,
             "roi": r, "delta": 0.0}
            for v in VARIANTS for c, w in [(BRAIN, None), *((m.name, m.weights) for m in cands)]
            for r in rois]
    summary = pd.DataFrame(rows)
    t0, c0 = time.perf_counter(), time.process_time()
    out = bootstrap_columns(summary, bb, mb, subjects, rois, "m", brain_boot, model_boot,
                            cfg["n_test"], 0, ceilings=ceilings, min_ceiling=0.1)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    n_cells = int((out["candidate"] != BRAIN).sum())
    res = {"n_draws": n_draws, "per_measure_s": dt, "per_measure_cpu_s": cpu, "n_cells": n_cells,
           "per_cell_ms": 1000 * dt / max(n_cells, 1),
           "all_measures_s": dt * cfg["measures"],
           "median_valid_draws": float(out.loc[out["candidate"] != BRAIN, "n_bootstrap"]
                                       .median())}
    log(f"APA stage bootstrap ({n_draws} draws): {dt:.1f} s wall ({cpu:.1f} s CPU, all threads) "
        f"per measure, {n_cells} cells "
        f"({res['per_cell_ms']:.0f} ms each); {cfg['measures']} measures {dt * cfg['measures']:.0f} s")
    return res


def _timed(fn, *args) -> float:
    """CPU seconds of ``fn(*args)`` (all threads: robust to a busy shared machine)."""
    c0 = time.process_time()
    fn(*args)
    return time.process_time() - c0


def time_jobs(cfg: dict, n_draws: int, log=print) -> dict[str, Any]:
    """CPU seconds the draws add to one model_brain and one brain_brain job, per measure."""
    rng = np.random.default_rng(2)
    n, R, L, S = cfg["n_test"], cfg["rois"], cfg["layers"], cfg["subjects"]
    lo, hi = cfg["vertex_range"]
    sizes = [int(x) for x in np.exp(rng.uniform(np.log(lo), np.log(hi), R))]
    edges = np.cumsum([0, *sizes])
    counts = stimulus_bootstrap_draws(0, "m", n_draws, n)
    P = n * (n - 1) // 2
    rdm_l, rdm_r = rng.random((L, P)), rng.random((R, P))
    X = rng.standard_normal((L + R, n, 30))
    grams = np.einsum("kia,kja->kij", X, X)
    Y = rng.standard_normal((n, edges[-1]))
    preds = [Y + rng.standard_normal(Y.shape) for _ in range(2)]
    out: dict[str, Any] = {"roi_vertices": sizes, "n_draws": n_draws}
    # model_brain job: layers × ROIs
    mb = {"rsa": _timed(boot_rsa, rdm_l, rdm_r, counts),
          "cka": _timed(boot_cka, grams[:L], grams[L:], counts),
          "lp": L * _timed(boot_lp, Y, preds[0], counts, edges)}
    # brain_brain job (one target): RSA and CKA rescore all (S − 1) × R source ROIs against the
    # R target ROIs in one call; LP rescores each source ROI's stored predictions
    src_rdms = np.tile(rdm_r, (S - 1, 1))
    src_grams = np.tile(grams[L:], (S - 1, 1, 1))
    t_lp = np.mean([_timed(boot_lp, Y, p, counts, edges) for p in preds])
    bb = {"rsa": _timed(boot_rsa, src_rdms, rdm_r, counts),
          "cka": _timed(boot_cka, src_grams, grams[L:], counts), "lp": (S - 1) * R * t_lp}
    out["model_brain_job_s"] = mb
    out["brain_brain_job_s"] = bb
    out["brain_brain_all_targets_s"] = {k: S * v for k, v in bb.items()}
    for k in mb:
        log(f"{k}: + {mb[k]:.2f} CPU s per model_brain job (model × subject); + {bb[k]:.1f} s per "
            f"brain_brain job, {S * bb[k]:.0f} s for all {S} targets")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny shapes (smoke test)")
    ap.add_argument("--draws", type=int, default=200, help="bootstrap draws (default 200)")
    ap.add_argument("--no-jobs", action="store_true", help="skip the score-job timing")
    ap.add_argument("--no-apa", action="store_true", help="skip the APA-stage timing")
    ap.add_argument("--out", default=None, help="result name (default stimboot[_quick])")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    payload: dict[str, Any] = {"config": dict(cfg)}
    if not args.no_apa:
        payload["apa_stage"] = time_apa_stage(cfg, args.draws)
    if not args.no_jobs:
        payload["jobs"] = time_jobs(cfg, args.draws)
    payload["machine"] = machine_info()
    payload["code"] = code_version(["alignpatterns.patterns.apa_boot",
                                    "alignpatterns.patterns.stimboot"])
    name = args.out or ("stimboot_quick" if args.quick else "stimboot")
    print(write_result(name, payload))


if __name__ == "__main__":
    main()
