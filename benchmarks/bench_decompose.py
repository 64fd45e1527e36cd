"""LP decomposition once per model (the ``decompose`` rule) against once per model × subject.

Linear predictivity scales each model layer and reduces it to ``lp.n_components`` by PCA, for
the test fit and for each of the 5 outer folds of the out-of-fold train scores. Before the
``decompose`` rule every ``model_brain`` job (one per model × subject) did that itself; now one
job per model does it and the subjects' jobs only fit the ridge.

BMD-shaped layer: 1000 train / 102 test stimuli, ``--units`` features (default 8192: a 4 × 4
pooled grid of 512 channels), 20 components, one subject's targets (19 ROIs, ``--targets``
vertices in all), the default 13 alphas, inner and outer 5-fold CV. Timed per layer:

* ``direct``: ``lp_predict`` + ``lp_oof_predict`` on the raw layer (what a job did);
* ``decompose``: ``lp_decompose`` (once per layer for all subjects);
* ``ridge_only``: ``lp_predict_decomposed`` + ``lp_oof_predict_decomposed`` (what a job does).

Summary for ``--subjects`` subjects: per layer ``subjects × direct`` against ``decompose +
subjects × ridge_only``, and whether both give identical predictions (they must: the same
operations in the same order).

Run ``python benchmarks/bench_decompose.py`` (~2 minutes on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_version, machine_info, timeit, write_result  # noqa: E402

from alignpatterns.measures import lp_oof_predict, lp_predict  # noqa: E402
from alignpatterns.measures.encoding import (  # noqa: E402
    lp_decompose,
    lp_oof_predict_decomposed,
    lp_predict_decomposed,
)

ALPHAS = tuple(np.logspace(-1, 5, 13))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=8192)
    ap.add_argument("--targets", type=int, default=5700)
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n_train, n_test, k = (1000, 102, 20) if not args.quick else (200, 40, 10)
    units, targets = (args.units, args.targets) if not args.quick else (1024, 300)
    rng = np.random.default_rng(0)
    # a ReLU-like layer with a decaying spectrum; targets read its top directions plus noise
    X = np.maximum(rng.standard_normal((n_train + n_test, 64)) @ rng.standard_normal(
        (64, units)) * np.linspace(1, 0.1, units), 0)
    Y = X[:, :40] @ rng.standard_normal((40, targets)) + 3 * rng.standard_normal(
        (n_train + n_test, targets))
    Xtr, Xte, Ytr = X[:n_train], X[n_train:], Y[:n_train]

    def direct():
        return (lp_predict(Xtr, Ytr, Xte, ALPHAS, 5, k, "global"),
                lp_oof_predict(Xtr, Ytr, ALPHAS, 5, 5, k, "global"))

    def decompose():
        return lp_decompose(Xtr, Xte, 5, k, "global")

    t_direct, (p_direct, o_direct) = timeit(direct, args.repeats)
    t_dec, dec = timeit(decompose, args.repeats)

    def ridge_only():
        return (lp_predict_decomposed(dec, Ytr, ALPHAS, 5),
                lp_oof_predict_decomposed(dec, Ytr, ALPHAS, 5))

    t_ridge, (p_dec, o_dec) = timeit(ridge_only, args.repeats)
    s = args.subjects
    before = s * t_direct["median_s"]
    after = t_dec["median_s"] + s * t_ridge["median_s"]
    payload = {
        "machine": machine_info(),
        "code": code_version(["alignpatterns.measures.encoding"]),
        "shape": {"n_train": n_train, "n_test": n_test, "units": units, "targets": targets,
                  "n_components": k, "outer_folds": 5, "inner_folds": 5,
                  "n_alphas": len(ALPHAS), "subjects": s},
        "direct": t_direct, "decompose": t_dec, "ridge_only": t_ridge,
        "identical_predictions": bool(np.array_equal(p_direct, p_dec)
                                      and np.array_equal(o_direct, o_dec)),
        "per_layer_all_subjects_s": {"before": before, "after": after},
        "speedup": before / after,
    }
    name = "decompose" + ("_quick" if args.quick else "" if units == 8192 else f"_u{units}")
    path = write_result(name, payload)
    print(f"per layer, {s} subjects: {before:.1f} s before, {after:.1f} s after "
          f"(x{before / after:.2f}); decomposition {t_dec['median_s']:.2f} s, ridge "
          f"{t_ridge['median_s']:.2f} s per subject; identical: "
          f"{payload['identical_predictions']} -> {path}")


if __name__ == "__main__":
    main()
