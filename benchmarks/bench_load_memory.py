"""Peak memory of loading one full-size BMD subject (issue 4 acceptance).

A versionB fsLR32k subject is (1000 × 3 + 102 × 10) × 91,282 float64 betas ≈ 2.94 GB. The loader
must not hold more than one copy of them. This script writes such a subject (random betas, a
19-ROI label file, noise-ceiling pickles) to a temporary folder, then measures in fresh child
processes the peak resident set size (``resource.getrusage(...).ru_maxrss``) of:

- ``pickle``: plain ``pickle.load`` of both splits (the reference: one copy);
- ``safe_load``: the restricted unpickler (:func:`alignpatterns.data.safe_pickle.load_pickle`);
- ``open``: ``BMDLayout.open_subject`` (loads and checks both splits: structure, ids, NaN pattern);
- ``prepare``: ``BMDLayout.prepare_subject`` with the paper's 8 excluded stimuli and 19 ROIs.

Each child reports its current RSS after imports (baseline) and its peak; "extra" = peak − baseline,
"output" = the arrays the prepared subject holds (kept ROI vertices; ``prepare`` only), and
"copies" = (extra − output) / size of the betas. The files are deleted afterwards.

Run ``python benchmarks/bench_load_memory.py`` (needs ~6 GB of free disk under ``--tmp`` and ~4 GB
of free memory; ~2 minutes) or ``--quick`` (1/20 of the vertices). ``--protocol 4`` writes the
arrays the NumPy-1.x ``_reconstruct`` way (protocol ≤ 4) instead of ``HIGHEST_PROTOCOL``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST, N_GRAY = 1000, 102, 91282
EXCLUDE = ["vid0258", "vid0831", "vid1001", "vid1085", "vid1090", "vid1093", "vid1094", "vid1097"]


def write_subject(root: Path, n_vert: int, protocol: int) -> float:
    """Write sub-01 in the versionB fsLR32k format; return the betas' size in GB."""
    rng = np.random.default_rng(0)
    p = root / "derivatives/versionB/fsLR32k/GLM/sub-01/prepared_betas"
    p.mkdir(parents=True)
    size = 0
    for split, n, reps, start in (("train", N_TRAIN, 3, 1), ("test", N_TEST, 10, N_TRAIN + 1)):
        betas = rng.standard_normal((n, reps, n_vert))
        betas[3, 1, :] = np.nan  # a missing trial, as in the real files
        ids = [f"vid{i:04d}" for i in range(start, start + n)]
        with open(p / f"sub-01_organized_betas_task-{split}_normalized.pkl", "wb") as f:
            pickle.dump((betas, ids), f, protocol=protocol)
        size += betas.nbytes
        del betas
        nr = 3 if split == "train" else 10
        with open(p / f"sub-01_noiseceiling_task-{split}_n-{nr}.pkl", "wb") as f:
            snr = rng.uniform(0, 0.6, n_vert)
            pickle.dump((snr, 100 * snr**2 / (snr**2 + 1 / nr)), f, protocol=protocol)
    atlas = root / "derivatives/versionB/fsLR32k/atlas"
    atlas.mkdir(parents=True)
    labels = np.zeros(n_vert, dtype=np.int32)
    sizes = np.linspace(300, 3000, 19).astype(int) * n_vert // N_GRAY + 10
    start = 0
    for k, s in enumerate(sizes):
        labels[start:start + s] = k + 1
        start += s + 500 * n_vert // N_GRAY
    np.save(atlas / "atlas-bench_space-fsLR32k_dseg.npy", labels)
    (atlas / "atlas-bench_space-fsLR32k_dseg.tsv").write_text(
        "index\tname\n" + "".join(f"{k + 1}\tR{k + 1}\n" for k in range(19)))
    return size / 1e9


CHILD = r"""
import json, pickle, resource, sys, time
from pathlib import Path
import numpy as np
from alignpatterns.data.bmd import BMDLayout
from alignpatterns.data.safe_pickle import load_pickle
import alignpatterns.measures.ceilings
mode, root = sys.argv[1], Path(sys.argv[2])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # peak, kB -> GB
def current():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1e6
base = current()
lay = BMDLayout(root, atlas="bench")
t = time.perf_counter()
if mode == "pickle":
    objs = []
    for s in ("train", "test"):
        with open(lay.betas("01", s), "rb") as f:
            objs.append(pickle.load(f))
elif mode == "safe_load":
    objs = [load_pickle(lay.betas("01", s)) for s in ("train", "test")]
elif mode == "open":
    src = lay.open_subject("01")
elif mode == "prepare":
    sd = lay.prepare_subject("01", [f"R{k}" for k in range(1, 20)], 0.2, 10,
                             json.loads(sys.argv[3]))
out_gb = 0.0
if mode == "prepare":  # what the prepared subject itself holds (kept ROI vertices only)
    out_gb = sum(a.nbytes for d in sd.rois.values() if d is not None
                 for a in vars(d).values() if isinstance(a, np.ndarray)) / 1e9
print(json.dumps({"mode": mode, "baseline_gb": base, "peak_gb": rss(), "output_gb": out_gb,
                  "seconds": time.perf_counter() - t}))
"""


def measure(mode: str, root: Path, src: Path) -> dict:
    env = {"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(root), json.dumps(EXCLUDE)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1/20 of the vertices")
    ap.add_argument("--protocol", type=int, default=pickle.HIGHEST_PROTOCOL)
    ap.add_argument("--tmp", default=None, help="folder for the temporary dataset")
    ap.add_argument("--modes", nargs="+", default=["pickle", "safe_load", "open", "prepare"])
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    ap.add_argument("--write-only", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    n_vert = N_GRAY // 20 if args.quick else N_GRAY
    if args.write_only:
        print(write_subject(Path(args.write_only), n_vert, args.protocol))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_", dir=args.tmp))
    try:
        t = time.perf_counter()
        # written by a child: Linux carries a process's peak RSS across fork + exec into
        # ru_maxrss of its children, so this process must stay small
        cmd = [sys.executable, __file__, "--write-only", str(tmp), "--protocol",
               str(args.protocol)] + (["--quick"] if args.quick else [])
        gb = float(subprocess.run(cmd, capture_output=True, text=True, check=True)
                   .stdout.strip().splitlines()[-1])
        print(f"wrote {gb:.3f} GB of betas ({n_vert} vertices, protocol {args.protocol}) in "
              f"{time.perf_counter() - t:.0f} s")
        print(f"{'mode':<10} {'baseline GB':>11} {'peak GB':>8} {'extra GB':>9} "
              f"{'output GB':>9} {'copies':>7} {'seconds':>8}")
        for mode in args.modes:
            r = measure(mode, tmp, Path(args.src))
            extra = r["peak_gb"] - r["baseline_gb"]
            copies = (extra - r["output_gb"]) / gb
            print(f"{mode:<10} {r['baseline_gb']:>11.3f} {r['peak_gb']:>8.3f} {extra:>9.3f} "
                  f"{r['output_gb']:>9.3f} {copies:>7.2f} {r['seconds']:>8.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
