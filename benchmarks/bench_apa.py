"""APA-stage benchmark at BOLD Moments size (issue "APA complete", speed acceptance).

Two parts, both on synthetic data with BMD's shapes:

1. **APA stage** — from the score tables and the stored stimulus-permutation test scores to
   every APA output, exactly what the workflow's ``apa`` rule runs per measure: ``run_apa`` (all
   four variants, jackknife-t intervals, specificity, stimulus-permutation p/q, verdicts),
   ``generic_null_rows`` and ``roi_identification`` (10⁴ joint ROI-label permutations). Shapes:
   10 subjects (90 ordered pairs), 19 ROIs, 5 candidates × 10 layers = 50 candidate layers,
   1000 stimulus permutations per candidate, one job per measure (3 measures at BMD scale:
   the stage's cost does not depend on the measure once the tables exist).
2. **Brain–brain tensor** — ``brain_brain_rows`` for one (target, source) subject pair per
   measure on ROI data of BMD size (1000 train stimuli × 3 repetitions, 96 test stimuli × 10
   repetitions, 19 ROIs of 150–1500 kept vertices). One workflow job (one target subject)
   scores 9 source subjects, and the study has 10 targets, so the full tensor costs about
   90 × the pair time per measure; the projection is reported beside the measurement.

Run ``python benchmarks/bench_apa.py`` (full, ~10–20 min on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_version, machine_info, write_result  # noqa: E402

from alignpatterns.data.bmd import ROIData, SubjectData  # noqa: E402
from alignpatterns.patterns.adjacency import adjacency_profiles  # noqa: E402
from alignpatterns.patterns.alignment import LPOptions, brain_brain_rows  # noqa: E402
from alignpatterns.patterns.apa import (  # noqa: E402
    generic_null_rows,
    roi_identification,
    run_apa,
)

FULL = {"subjects": 10, "rois": 19, "candidates": 5, "layers": 10, "n_permutations": 1000,
        "n_identification": 10_000, "measures": 3,
        "n_train": 1000, "n_test": 96, "train_reps": 3, "test_reps": 10,
        "vertex_range": (150, 1500)}
QUICK = {"subjects": 6, "rois": 5, "candidates": 2, "layers": 3, "n_permutations": 50,
         "n_identification": 200, "measures": 1,
         "n_train": 40, "n_test": 16, "train_reps": 3, "test_reps": 4,
         "vertex_range": (10, 30)}
VARIANTS = ["full", "offdiag", "normalized", "normalized_offdiag"]
SELECTIONS = ["score", "aps"]  # the embedded default's apa.selection


def chain_adjacency(n_rois: int) -> np.ndarray:
    """Anatomical-null profiles (R × R) of ROIs adjacent along a chain, as the synthetic atlas."""
    adjacency = np.eye(n_rois, k=1, dtype=bool) | np.eye(n_rois, k=-1, dtype=bool)
    return adjacency_profiles(adjacency)
MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson",
            "rsa-correlation-spearman"]


def make_tables(cfg: dict, seed: int = 0):
    """Synthetic brain_brain / model_brain / ceilings tables and permutation nulls.

    The brain pattern P (R × R) has a hierarchy (similarity falls with ROI distance) and each
    candidate's layer ℓ matches ROIs near position ℓ; every score gets subject-pair noise.
    """
    rng = np.random.default_rng(seed)
    S, R, C, L = cfg["subjects"], cfg["rois"], cfg["candidates"], cfg["layers"]
    subjects = [f"{i + 1:02d}" for i in range(S)]
    rois = [f"R{i:02d}" for i in range(R)]
    pos = np.linspace(0, 1, R)
    P = 0.6 * np.exp(-np.abs(pos[:, None] - pos[None, :]) / 0.3) + 0.2
    bb_rows = []
    for split in ("train", "test"):
        A = P[None, None] + 0.05 * rng.standard_normal((S, S, R, R))
        for (i, s1), (j, s2) in itertools.permutations(enumerate(subjects), 2):
            for a, b in itertools.product(range(R), repeat=2):
                bb_rows.append((s1, rois[a], s2, rois[b], split, A[i, j, a, b]))
    bb = pd.DataFrame(bb_rows, columns=["source_subject", "source_roi", "target_subject",
                                        "target_roi", "split", "score"])
    bb["measure"], bb["n_source_dims"], bb["n_vertices"] = "m", 500, 500
    mb_rows = []
    lpos = np.linspace(0, 1, L)
    for c in range(C):
        for split in ("train", "test"):
            for li in range(L):
                prof = 0.6 * np.exp(-np.abs(lpos[li] - pos) / 0.3) + 0.1 * c
                for s in subjects:
                    sc = prof + 0.05 * rng.standard_normal(R)
                    for ri in range(R):
                        mb_rows.append((f"model{c}", li, s, rois[ri], split, sc[ri]))
    mb = pd.DataFrame(mb_rows, columns=["model", "layer_index", "subject", "roi", "split",
                                        "score"])
    mb["layer"] = "L" + mb["layer_index"].astype(str)
    mb["measure"], mb["weights"], mb["n_source_dims"], mb["n_vertices"] = "m", "random", 500, 500
    ceilings = pd.DataFrame([(s, r, kind, float(rng.uniform(0.4, 0.9)))
                             for s in subjects for r in rois
                             for kind in ("split_half", "lp_ceiling")],
                            columns=["subject", "roi", "kind", "value"])
    ceilings["measure"], ceilings["split"], ceilings["n_reps"] = "m", "test", 10.0
    nulls = {f"model{c}": 0.05 * rng.standard_normal((cfg["n_permutations"], L, S, R))
             for c in range(C)}
    return bb, mb, ceilings, nulls, subjects, rois


def time_apa_stage(cfg: dict, log=print) -> dict[str, Any]:
    """Seconds of one measure's APA job (run_apa + generic nulls + identification)."""
    bb, mb, ceilings, nulls, subjects, rois = make_tables(cfg)
    out = {}
    t0 = time.perf_counter()
    rows, summary = run_apa(bb, mb, subjects, rois, "m", variants=VARIANTS, matches=["pearson"],
                            margin=0.1, ceilings=ceilings, min_ceiling=0.1, nulls=nulls,
                            selections=SELECTIONS)
    out["run_apa_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    generic_null_rows(bb, subjects, rois, "m", variants=VARIANTS, matches=["pearson"],
                      ceilings=ceilings, min_ceiling=0.1, adjacency=chain_adjacency(len(rois)))
    out["generic_nulls_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    roi_identification(bb, mb, subjects, rois, "m", variants=VARIANTS, matches=["pearson"],
                       ceilings=ceilings, min_ceiling=0.1, n_draws=cfg["n_identification"],
                       seed=0)
    out["identification_s"] = time.perf_counter() - t0
    out["per_measure_s"] = out["run_apa_s"] + out["generic_nulls_s"] + out["identification_s"]
    out["all_measures_s"] = out["per_measure_s"] * cfg["measures"]
    out["n_summary_rows"] = int(len(summary))
    out["n_apa_rows"] = int(len(rows))
    log(f"APA stage: {out['per_measure_s']:.1f} s per measure "
        f"(run_apa {out['run_apa_s']:.1f}, nulls {out['generic_nulls_s']:.1f}, "
        f"identification {out['identification_s']:.1f}); "
        f"{cfg['measures']} measures {out['all_measures_s']:.1f} s")
    return out


def make_subject(cfg: dict, subject: str, sizes: list[int], seed: int) -> SubjectData:
    """One subject's prepared ROIs with a shared stimulus signal plus noise."""
    rng = np.random.default_rng(seed)
    n_tr, n_te = cfg["n_train"], cfg["n_test"]
    latent = np.random.default_rng(12345).standard_normal((n_tr + n_te, 20))
    rois = {}
    for i, v in enumerate(sizes):
        W = rng.standard_normal((20, v)) / np.sqrt(20)
        signal = latent @ W
        tr = signal[:n_tr, None, :] + rng.standard_normal((n_tr, cfg["train_reps"], v))
        te = signal[n_tr:, None, :] + rng.standard_normal((n_te, cfg["test_reps"], v))
        rois[f"R{i:02d}"] = ROIData(
            vertices=np.arange(v), train_reps=tr, test_reps=te, train=tr.mean(axis=1),
            test=te.mean(axis=1), ncsnr_train=np.full(v, 0.5), ncsnr_test=np.full(v, 0.5),
            n_reps_test=float(cfg["test_reps"]))
    return SubjectData(subject, [f"vid{i:04d}" for i in range(n_tr)],
                       [f"vid{n_tr + i:04d}" for i in range(n_te)], rois)


def time_brain_brain(cfg: dict, measures: list[str], log=print) -> dict[str, Any]:
    """Seconds of one (target, source) pair per measure, and the projection to the study."""
    rng = np.random.default_rng(1)
    lo, hi = cfg["vertex_range"]
    sizes = [int(x) for x in np.exp(rng.uniform(np.log(lo), np.log(hi), cfg["rois"]))]
    subjects = {"01": make_subject(cfg, "01", sizes, 1), "02": make_subject(cfg, "02", sizes, 2)}
    roi_names = list(subjects["01"].rois)
    lp = LPOptions(alphas=tuple(10.0 ** k for k in range(-1, 6)), inner_cv=5, outer_cv=5,
                   n_components=20)
    S = cfg["subjects"]
    out = {"roi_vertices": sizes, "per_measure": {}}
    for m in measures:
        t0 = time.perf_counter()
        rows = brain_brain_rows(subjects, "01", roi_names, m, lp)
        dt = time.perf_counter() - t0
        pairs = S * (S - 1)
        out["per_measure"][m] = {"pair_s": dt, "n_rows": len(rows),
                                 "projected_job_s": dt * (S - 1),
                                 "projected_tensor_s": dt * pairs}
        log(f"brain-brain {m}: {dt:.1f} s per subject pair → one target job ≈ "
            f"{dt * (S - 1):.0f} s, full tensor ({pairs} pairs) ≈ {dt * pairs / 60:.1f} min")
    return out


def run_benchmark(cfg: dict, measures: list[str], brain: bool = True, log=print
                  ) -> dict[str, Any]:
    payload: dict[str, Any] = {"config": {k: v for k, v in cfg.items()},
                               "apa_stage": time_apa_stage(cfg, log)}
    if brain:
        payload["brain_brain"] = time_brain_brain(cfg, measures, log)
    return payload


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny shapes (smoke test)")
    ap.add_argument("--no-brain", action="store_true", help="skip the brain–brain timing")
    ap.add_argument("--measures", nargs="+", default=MEASURES, choices=MEASURES)
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    payload = run_benchmark(cfg, args.measures, brain=not args.no_brain)
    payload["machine"] = machine_info()
    payload["code"] = code_version(["alignpatterns.patterns.apa",
                                    "alignpatterns.patterns.alignment"])
    name = "apa_quick" if args.quick else "apa"
    print(write_result(name, payload))


if __name__ == "__main__":
    main()
