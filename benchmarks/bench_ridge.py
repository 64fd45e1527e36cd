"""Ridge benchmark: ``alignpatterns.measures.RidgeCV`` against himalaya and scikit-learn.

BMD-shaped problem (defaults): 1000 train / 102 test stimuli, 2048 features, 20,000 targets,
20 alphas, 5 unshuffled folds, one alpha per target, float64, no intercept (X is
standardised with train statistics outside the estimators, as in the pipeline).

Rows, all timed in this process on the same data (fit on train + predict on test, median of
``--repeats`` runs):

* ``ours_kfold``                    our RidgeCV(alphas, cv=5)                    (reference)
* ``himalaya_ridgecv_numpy``        himalaya.ridge.RidgeCV(alphas, cv=KFold(5)), numpy backend
* ``himalaya_kernelridgecv_numpy``  himalaya.kernel_ridge.KernelRidgeCV(kernel="linear", ...)
* ``*_torch_cpu`` (skip with ``--no-torch-cpu``): the two himalaya estimators with the
  ``torch`` backend on CPU and ours with ``backend="torch_cpu"``; the acceptance ratio uses
  the numpy rows as the issue specifies, a second ratio covers every himalaya CPU row.
* GPU only (``torch.cuda.is_available()``): the two himalaya estimators with the
  ``torch_cuda`` backend and ours with ``backend="torch_cuda"`` (recorded "not available"
  when our RidgeCV rejects that backend).
* ``ours_loo`` and ``sklearn_ridgecv_gcv``: scikit-learn's ``RidgeCV(alpha_per_target=True)``
  only has per-target alphas with its efficient leave-one-out (GCV) mode, not with K-fold,
  so it is compared with ours at ``cv=None`` (exact efficient LOO) in separate rows.

For every non-reference row: fraction of targets whose chosen alpha equals ours, max
relative prediction difference ``max|P - P_ours| / max|P_ours|``, and, for targets whose
alphas differ, how close our own CV scores of the two alphas are (a disagreement is only
benign when it is a near-tie). himalaya breaks exact ties towards the larger alpha, ours
towards the first (see ridge.py); on continuous data that only matters at near-ties.

FLOP count of our K-fold algorithm (``ridge_flops``; it follows ridge.py as benchmarked,
whose hash is stored in the JSON, and must be updated if the algorithm changes). n train
rows, n_te validation rows and n_tr = n − n_te train rows per fold, p features, t targets,
A alphas, k = min(n_tr, p):

* kernel regime (p > n): ``K = X Xᵀ`` once, 2 n² p; per fold ``eigh(K[tr, tr])`` 9 n_tr³
  (conventional count with vectors); primal regime: per fold thin SVD of X_tr,
  6 n_tr p² + 20 p³ (R-SVD count);
* per fold test operator ``K[te, tr] Q`` 2 n_te n_tr k (primal: ``X_te Vᵀ`` 2 n_te p k) and
  the alpha-weighted operator AW (A n_te, k), A n_te k;
* per fold predictions for all alphas at once: if A n_te n_tr <= A n_te k + k n_tr
  ("direct"), ``M = AW Qᵀ`` 2 A n_te k n_tr then ``M Y_tr`` 2 A n_te n_tr t; otherwise
  ``Qᵀ Y_tr`` 2 k n_tr t then ``AW (Qᵀ Y_tr)`` 2 A n_te k t;
* per fold scoring ``P − Y_te`` and the squared sum, 3 A n_te t;
* refit: decomposition of all n rows (as above), ``W ∘ (Qᵀ Y)`` 2 n k t + k t (primal also
  ``coef = Vᵀ (W ∘ Uᵀ Y)`` 2 p k t; in the kernel regime coef_ is only formed on access,
  which the benchmark does not do);
* predict: kernel ``(X_test Xᵀ) Q (W ∘ Qᵀ Y)`` 2 n_test p n + 2 n_test n k + 2 n_test k t;
  primal ``X_test coef`` 2 n_test p t.

With the BMD sizes about 90 % of the flops are the per-fold prediction products. Achieved
GFLOP/s = total / median time, reported against the measured GEMM peak of this machine
(:func:`_common.gemm_peak_gflops`), with and without the factorisations (whose flop count
is a convention).

Run ``python benchmarks/bench_ridge.py`` (full size, several minutes), ``--quick`` for a
smoke test, ``--profile`` to add a stage-by-stage breakdown of our fit.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    code_version,
    gemm_peak_gflops,
    machine_info,
    summarise_times,
    time_once,
    write_result,
)

from alignpatterns.measures import RidgeCV  # noqa: E402

ALPHAS = np.logspace(-2, 7, 20)
FULL = {"n_train": 1000, "n_test": 102, "n_features": 2048, "n_targets": 20_000, "n_folds": 5}
QUICK = {"n_train": 120, "n_test": 24, "n_features": 300, "n_targets": 400, "n_folds": 5}


class NotAvailable(Exception):
    """An estimator/backend combination that cannot run here (recorded, not an error)."""


# ------------------------------------------------------------------------------ data
def make_data(n_train, n_test, n_features, n_targets, seed=0):
    """Standardised features with a decaying spectrum; targets with varied SNR.

    X = Z diag(s) Rᵀ with s_j ∝ j^-0.6 and a random rotation R (correlated features, as
    DNN activations), standardised with the train mean/std. Y = X W + noise, where each
    target's signal is carried by the leading latent directions (weights ∝ s_j^0.5) and its
    SNR is log-uniform over 4 decades, plus 5 % pure-noise targets, so the chosen alphas
    spread over the grid.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    p = n_features
    s = (1.0 + np.arange(p)) ** -0.6
    R, _ = np.linalg.qr(rng.standard_normal((p, p)))
    X = (rng.standard_normal((n, p)) * s) @ R.T
    mu, sd = X[:n_train].mean(axis=0), X[:n_train].std(axis=0)
    X = (X - mu) / sd
    # signal weights in latent coordinates, mapped to feature coordinates
    G = rng.standard_normal((p, n_targets)) * (s**0.5)[:, None]
    W = R @ G
    signal = X @ W
    snr = 10.0 ** rng.uniform(-2.5, 1.5, n_targets)
    snr[rng.random(n_targets) < 0.05] = 0.0
    scale = np.sqrt(snr / signal[:n_train].var(axis=0))
    Y = signal * scale + rng.standard_normal((n, n_targets))
    del signal, W, G
    return (
        np.ascontiguousarray(X[:n_train]),
        np.ascontiguousarray(Y[:n_train]),
        np.ascontiguousarray(X[n_train:]),
    )


# ------------------------------------------------------------------------------ flops
def ridge_flops(n_train, n_test, n_features, n_targets, n_alphas, n_folds) -> dict[str, float]:
    """FLOPs of our K-fold RidgeCV fit + predict, by stage (see the module docstring)."""
    p, t, A = n_features, n_targets, n_alphas
    sizes = np.full(n_folds, n_train // n_folds)
    sizes[: n_train % n_folds] += 1
    kernel = p > n_train
    out = dict.fromkeys(
        ["kernel_gram", "factorisations", "test_operators", "fold_predictions", "scoring",
         "refit", "predict"],
        0.0,
    )

    def factorisation(m):
        return 9.0 * m**3 if kernel else 6.0 * m * p**2 + 20.0 * p**3

    if kernel:
        out["kernel_gram"] = 2.0 * n_train**2 * p
    for n_va in sizes:
        n_va = int(n_va)
        n_tr = n_train - n_va
        k = min(n_tr, p)
        out["factorisations"] += factorisation(n_tr)
        out["test_operators"] += 2.0 * n_va * n_tr * k if kernel else 2.0 * n_va * p * k
        out["test_operators"] += A * n_va * k
        if A * n_va * n_tr <= A * n_va * k + k * n_tr:  # "direct": fold Qᵀ into the operator
            out["fold_predictions"] += 2.0 * A * n_va * k * n_tr + 2.0 * A * n_va * n_tr * t
        else:
            out["fold_predictions"] += 2.0 * k * n_tr * t + 2.0 * A * n_va * k * t
        out["scoring"] += 3.0 * A * n_va * t
    n = n_train
    k = min(n, p)
    out["factorisations"] += factorisation(n)
    out["refit"] = 2.0 * n * k * t + k * t + (0.0 if kernel else 2.0 * p * k * t)
    if kernel:
        out["predict"] = 2.0 * n_test * p * n + 2.0 * n_test * n * k + 2.0 * n_test * k * t
    else:
        out["predict"] = 2.0 * n_test * p * t
    out["total"] = sum(out.values())
    out["total_excluding_factorisations"] = out["total"] - out["factorisations"]
    return out


# ------------------------------------------------------------------------------ estimators
def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor (any device)
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _ours(alphas, cv, backend="numpy"):
    def run(Xtr, Ytr, Xte):
        try:
            model = RidgeCV(alphas, cv=cv, backend=backend).fit(Xtr, Ytr)
        except (NotImplementedError, TypeError, ValueError, RuntimeError) as exc:
            if backend == "numpy":
                raise
            raise NotAvailable(f"RidgeCV(backend={backend!r}): {exc}") from exc
        return _to_numpy(model.best_alphas_), _to_numpy(model.predict(Xte))

    return run


def _himalaya(kind, alphas, n_folds, backend_name):
    def run(Xtr, Ytr, Xte):
        try:
            from himalaya.backend import set_backend
            from himalaya.kernel_ridge import KernelRidgeCV
            from himalaya.ridge import RidgeCV as HRidgeCV
            from sklearn.model_selection import KFold
        except ImportError as exc:
            raise NotAvailable(f"himalaya not installed: {exc}") from exc
        backend = set_backend(backend_name, on_error="raise")
        cv = KFold(n_folds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "kernel ridge would be faster"
            if kind == "ridge":
                model = HRidgeCV(alphas=alphas, cv=cv)
            else:
                model = KernelRidgeCV(kernel="linear", alphas=alphas, cv=cv)
            model.fit(Xtr, Ytr)
            pred = model.predict(Xte)
        return backend.to_numpy(model.best_alphas_), backend.to_numpy(pred)

    return run


def _sklearn_gcv(alphas):
    def run(Xtr, Ytr, Xte):
        from sklearn.linear_model import RidgeCV as SkRidgeCV

        model = SkRidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=False)
        model.fit(Xtr, Ytr)
        return np.asarray(model.alpha_), model.predict(Xte)

    return run


def estimator_table(alphas, n_folds, gpu: bool, torch_cpu: bool = True) -> list[dict[str, Any]]:
    """Rows: name, callable(Xtr, Ytr, Xte) -> (alphas, predictions), reference row, group."""
    rows = [
        {"name": "ours_kfold", "fn": _ours(alphas, n_folds), "ref": None, "device": "cpu"},
        {"name": "himalaya_ridgecv_numpy", "fn": _himalaya("ridge", alphas, n_folds, "numpy"),
         "ref": "ours_kfold", "device": "cpu"},
        {"name": "himalaya_kernelridgecv_numpy",
         "fn": _himalaya("kernel", alphas, n_folds, "numpy"), "ref": "ours_kfold",
         "device": "cpu"},
    ]
    if torch_cpu:
        rows += [
            {"name": "ours_kfold_torch_cpu", "fn": _ours(alphas, n_folds, backend="torch_cpu"),
             "ref": "ours_kfold", "device": "cpu"},
            {"name": "himalaya_ridgecv_torch_cpu",
             "fn": _himalaya("ridge", alphas, n_folds, "torch"), "ref": "ours_kfold",
             "device": "cpu"},
            {"name": "himalaya_kernelridgecv_torch_cpu",
             "fn": _himalaya("kernel", alphas, n_folds, "torch"), "ref": "ours_kfold",
             "device": "cpu"},
        ]
    if gpu:
        rows += [
            {"name": "ours_kfold_torch_cuda", "fn": _ours(alphas, n_folds, backend="torch_cuda"),
             "ref": "ours_kfold", "device": "cuda"},
            {"name": "himalaya_ridgecv_torch_cuda",
             "fn": _himalaya("ridge", alphas, n_folds, "torch_cuda"), "ref": "ours_kfold",
             "device": "cuda"},
            {"name": "himalaya_kernelridgecv_torch_cuda",
             "fn": _himalaya("kernel", alphas, n_folds, "torch_cuda"), "ref": "ours_kfold",
             "device": "cuda"},
        ]
    rows += [
        {"name": "ours_loo", "fn": _ours(alphas, None), "ref": None, "device": "cpu"},
        {"name": "sklearn_ridgecv_gcv", "fn": _sklearn_gcv(alphas), "ref": "ours_loo",
         "device": "cpu"},
    ]
    return rows


# ------------------------------------------------------------------------------ comparison
def compare(ref_alphas, ref_pred, alphas, pred, ref_scores=None, alpha_grid=None) -> dict:
    """Agreement of one estimator with the reference (ours)."""
    same = np.isclose(alphas, ref_alphas, rtol=1e-9, atol=0)
    out = {
        "alphas_agree_fraction": float(same.mean()),
        "alphas_disagree_count": int((~same).sum()),
        "max_rel_pred_diff": float(np.max(np.abs(pred - ref_pred)) / np.max(np.abs(ref_pred))),
    }
    agree = same
    if agree.any():
        out["max_rel_pred_diff_agreeing_targets"] = float(
            np.max(np.abs(pred[:, agree] - ref_pred[:, agree]))
            / np.max(np.abs(ref_pred[:, agree]))
        )
    if (~same).any() and ref_scores is not None and alpha_grid is not None:
        # our own fold-mean scores at our alpha and at theirs: a near-tie is benign
        log_grid = np.log(np.asarray(alpha_grid, dtype=np.float64))
        idx_ref = np.argmin(np.abs(np.log(ref_alphas[~same])[:, None] - log_grid), axis=1)
        idx_oth = np.argmin(np.abs(np.log(alphas[~same])[:, None] - log_grid), axis=1)
        cols = np.flatnonzero(~same)
        s_ref = ref_scores[idx_ref, cols]
        s_oth = ref_scores[idx_oth, cols]
        gap = (s_ref - s_oth) / np.abs(s_ref)
        out["disagreeing_targets_max_rel_score_gap"] = float(np.max(np.abs(gap)))
    return out


# ------------------------------------------------------------------------------ profiling
def line_profile(fn: Callable[[], Any], files: tuple[str, ...]) -> dict[str, Any]:
    """Wall time per source line of ``files`` during ``fn()`` (a tiny line profiler).

    Uses ``sys.settrace`` on the calling thread only; time spent in untraced code (numpy,
    BLAS, including its worker threads) is charged to the traced line that called it, so
    every heavy numpy line of ``ridge.py`` gets its own figure. This profiles the real,
    current code, whatever its structure; the tracer adds a few microseconds per line.
    """
    import linecache

    files = tuple(str(Path(f).resolve()) for f in files)
    totals: dict[tuple[str, int], float] = {}
    hits: dict[tuple[str, int], int] = {}
    funcs: dict[tuple[str, int], str] = {}
    state: dict[str, Any] = {"key": None, "t": time.perf_counter()}

    def traced(frame) -> bool:
        return frame is not None and frame.f_code.co_filename in files

    def charge():
        now = time.perf_counter()
        if state["key"] is not None:
            totals[state["key"]] = totals.get(state["key"], 0.0) + now - state["t"]

    def set_key(frame):
        key = (frame.f_code.co_filename, frame.f_lineno)
        state["key"] = key
        hits[key] = hits.get(key, 0) + 1
        funcs[key] = frame.f_code.co_qualname

    def local(frame, event, arg):
        charge()
        if event == "line":
            set_key(frame)
        elif event == "return":
            back = frame.f_back
            state["key"] = (back.f_code.co_filename, back.f_lineno) if traced(back) else None
        state["t"] = time.perf_counter()
        return local

    def global_(frame, event, arg):
        if event == "call" and traced(frame):
            charge()
            set_key(frame)
            state["t"] = time.perf_counter()
            return local
        return None

    t0 = time.perf_counter()
    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(None)
    total = time.perf_counter() - t0
    lines = []
    for key, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        fname, lineno = key
        lines.append({
            "file": Path(fname).name,
            "line": lineno,
            "function": funcs.get(key, "?"),
            "seconds": sec,
            "fraction": sec / total,
            "hits": hits.get(key, 0),
            "source": linecache.getline(fname, lineno).strip(),
        })
    by_function: dict[str, float] = {}
    for row in lines:
        by_function[row["function"]] = by_function.get(row["function"], 0.0) + row["seconds"]
    return {
        "total_s": total,
        "traced_s": sum(totals.values()),
        "by_function_s": dict(sorted(by_function.items(), key=lambda kv: -kv[1])),
        "lines": lines,
    }


def profile_ours(Xtr, Ytr, Xte, alphas, n_folds) -> dict[str, Any]:
    """Line profile of one real ``RidgeCV(alphas, cv=n_folds).fit(...).predict(...)``."""
    import alignpatterns.measures.ridge as ridge_mod

    mod_dir = Path(ridge_mod.__file__).resolve().parent
    files = tuple(str(f) for f in mod_dir.glob("_*.py")) + (ridge_mod.__file__,)
    t0 = time.perf_counter()
    RidgeCV(alphas, cv=n_folds).fit(Xtr, Ytr).predict(Xte)
    untraced = time.perf_counter() - t0
    prof = line_profile(lambda: RidgeCV(alphas, cv=n_folds).fit(Xtr, Ytr).predict(Xte), files)
    prof["untraced_run_s"] = untraced
    return prof


def cprofile_ours(Xtr, Ytr, Xte, alphas, n_folds, top=15) -> list[str]:
    """cProfile of one real fit + predict: the top functions by own time (``@`` and
    elementwise ops are not separate entries; they count in the calling function)."""
    prof = cProfile.Profile()
    prof.enable()
    RidgeCV(alphas, cv=n_folds).fit(Xtr, Ytr).predict(Xte)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


# ------------------------------------------------------------------------------ driver
def run_benchmark(
    sizes: dict[str, int],
    repeats: int = 3,
    alphas: np.ndarray = ALPHAS,
    only: list[str] | None = None,
    reduced_targets: dict[str, int] | None = None,
    profile: bool = False,
    gpu: bool | None = None,
    torch_cpu: bool = True,
    peak: dict | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every estimator on one data set; return the JSON payload (no file written).

    ``reduced_targets`` maps an estimator name to a smaller number of targets (the first
    ones) on which it is timed; its time is then extrapolated linearly to all targets and
    flagged as such in the output.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    if gpu is None:
        try:
            import torch

            gpu = bool(torch.cuda.is_available())
        except ImportError:
            gpu = False
    reduced_targets = reduced_targets or {}
    t0 = time.perf_counter()
    Xtr, Ytr, Xte = make_data(sizes["n_train"], sizes["n_test"], sizes["n_features"],
                              sizes["n_targets"])
    log(f"data {Xtr.shape} -> {Ytr.shape}, test {Xte.shape} ({time.perf_counter() - t0:.1f} s)")
    n_folds = sizes["n_folds"]

    # Runs are interleaved (repeat 1 of every estimator, then repeat 2, ...) so that on a
    # shared machine a burst of outside load does not fall on one estimator only.
    results: dict[str, dict[str, Any]] = {}
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    for row in estimator_table(alphas, n_folds, gpu, torch_cpu):
        if only is not None and row["name"] not in only and row["ref"] is not None:
            continue
        nt = min(reduced_targets.get(row["name"], sizes["n_targets"]), sizes["n_targets"])
        Y = Ytr if nt == sizes["n_targets"] else np.ascontiguousarray(Ytr[:, :nt])
        rows.append({**row, "nt": nt, "Y": Y, "times": [], "cpu": []})
    peak_samples = []

    def sample_peak():
        if peak is None:
            peak_samples.append(gemm_peak_gflops())
            log(f"GEMM peak sample: {peak_samples[-1]['gflops']:.1f} GFLOP/s")

    sample_peak()
    for rep in range(repeats):
        for row in rows:
            name = row["name"]
            if results.get(name, {}).get("status", "ok") != "ok":
                continue
            outputs.pop(name, None)
            try:
                wall, cpu, out = time_once(lambda r=row: r["fn"](Xtr, r["Y"], Xte))
            except NotAvailable as exc:
                results[name] = {"device": row["device"], "status": f"not available: {exc}"}
                log(f"{name:36s} not available ({exc})")
                continue
            outputs[name] = out
            row["times"].append(wall)
            row["cpu"].append(cpu)
            log(f"[{rep + 1}/{repeats}] {name:36s} {wall:8.2f} s wall {cpu:8.2f} s cpu")
        if rep < repeats - 1:
            sample_peak()
    sample_peak()
    for row in rows:
        name, nt = row["name"], row["nt"]
        if name in results:  # not available
            continue
        stats = summarise_times(row["times"], row["cpu"])
        res = {"device": row["device"], "status": "ok", **stats, "n_targets_timed": nt}
        if nt != sizes["n_targets"]:
            factor = sizes["n_targets"] / nt
            res.update(extrapolated=True, median_s_measured=stats["median_s"],
                       median_s=stats["median_s"] * factor,
                       median_cpu_s=stats["median_cpu_s"] * factor,
                       note=f"timed on the first {nt} targets, extrapolated linearly")
        results[name] = res
        log(f"{name:36s} median {res['median_s']:8.2f} s wall, {res['median_cpu_s']:8.2f} s cpu")
    del rows

    # agreement with the references; our own per-alpha scores tell near-ties apart
    score_cache: dict[tuple[str, int], np.ndarray] = {}
    for row in estimator_table(alphas, n_folds, gpu, torch_cpu):
        name, ref = row["name"], row["ref"]
        if ref is None or name not in outputs or ref not in outputs:
            continue
        rb, rp = outputs[ref]
        b, pr = outputs[name]
        nt = pr.shape[1]
        key = (ref, nt)
        if key not in score_cache:
            cv = n_folds if ref == "ours_kfold" else None
            score_cache[key] = RidgeCV(alphas, cv=cv).fit(Xtr, Ytr[:, :nt]).alpha_scores_
        cmp = compare(rb[:nt], rp[:, :nt], b, pr, score_cache[key], alphas)
        cmp["reference"] = ref
        results[name].update(cmp)
        log(f"{name:36s} vs {ref}: alphas agree {cmp['alphas_agree_fraction']:.5f}, "
            f"max rel pred diff {cmp['max_rel_pred_diff']:.2e}")

    # timing ratios
    cpu_himalaya = [n for n in ("himalaya_ridgecv_numpy", "himalaya_kernelridgecv_numpy")
                    if results.get(n, {}).get("status") == "ok"]
    summary: dict[str, Any] = {}
    ours = results.get("ours_kfold", {})
    if cpu_himalaya and ours.get("status") == "ok":
        fastest = min(cpu_himalaya, key=lambda n: results[n]["median_s"])
        ratio = ours["median_s"] / results[fastest]["median_s"]
        fastest_cpu_time = min(cpu_himalaya, key=lambda n: results[n]["median_cpu_s"])
        summary.update(
            fastest_himalaya_cpu=fastest,
            ratio_ours_to_fastest_himalaya_cpu=ratio,
            ratio_ours_to_fastest_himalaya_cpu_by_cpu_time=(
                ours["median_cpu_s"] / results[fastest_cpu_time]["median_cpu_s"]
            ),
            acceptance_ratio_le_0_7=bool(ratio <= 0.7),
            alphas_equal_to_fastest_himalaya_cpu=results[fastest]["alphas_agree_fraction"] == 1.0,
        )
    any_cpu = [n for n in ("himalaya_ridgecv_numpy", "himalaya_kernelridgecv_numpy",
                           "himalaya_ridgecv_torch_cpu", "himalaya_kernelridgecv_torch_cpu")
               if results.get(n, {}).get("status") == "ok"]
    if any_cpu and ours.get("status") == "ok":
        fastest = min(any_cpu, key=lambda n: results[n]["median_s"])
        summary["fastest_himalaya_cpu_any_backend"] = fastest
        summary["ratio_ours_to_fastest_himalaya_cpu_any_backend"] = (
            ours["median_s"] / results[fastest]["median_s"]
        )
        if results.get("ours_kfold_torch_cpu", {}).get("status") == "ok":
            summary["ratio_ours_torch_cpu_to_fastest_himalaya_cpu_any_backend"] = (
                results["ours_kfold_torch_cpu"]["median_s"] / results[fastest]["median_s"]
            )
    gpu_himalaya = [n for n in ("himalaya_ridgecv_torch_cuda",
                                "himalaya_kernelridgecv_torch_cuda")
                    if results.get(n, {}).get("status") == "ok"]
    if gpu_himalaya and results.get("ours_kfold_torch_cuda", {}).get("status") == "ok":
        fastest = min(gpu_himalaya, key=lambda n: results[n]["median_s"])
        summary["fastest_himalaya_torch_cuda"] = fastest
        summary["ratio_ours_torch_cuda_to_fastest_himalaya_torch_cuda"] = (
            results["ours_kfold_torch_cuda"]["median_s"] / results[fastest]["median_s"]
        )
    if results.get("sklearn_ridgecv_gcv", {}).get("status") == "ok":
        summary["ratio_ours_loo_to_sklearn_gcv"] = (
            results["ours_loo"]["median_s"] / results["sklearn_ridgecv_gcv"]["median_s"]
        )

    flops = ridge_flops(sizes["n_train"], sizes["n_test"], sizes["n_features"],
                        sizes["n_targets"], len(alphas), n_folds)
    # the machine's peak is the best of the samples taken before, between and after the
    # rounds (on a shared machine a single sample can be depressed by outside load)
    if peak is None:
        peak = dict(max(peak_samples, key=lambda d: d["gflops"]))
        peak["samples_gflops"] = [d["gflops"] for d in peak_samples]
    if ours.get("status") == "ok":
        gflops = flops["total"] / ours["median_s"] / 1e9
        summary["ours_kfold_gflops"] = gflops
        summary["gemm_peak_gflops"] = peak["gflops"]
        summary["ours_kfold_fraction_of_peak"] = gflops / peak["gflops"]
        summary["ours_kfold_time_at_peak_s"] = flops["total"] / (peak["gflops"] * 1e9)
        summary["ours_kfold_gflops_excluding_factorisations"] = (
            flops["total_excluding_factorisations"] / ours["median_s"] / 1e9
        )
    log(f"summary: {summary}")

    payload: dict[str, Any] = {
        "benchmark": "ridge",
        "code_version": code_version(["alignpatterns.measures.ridge"]),
        "sizes": sizes,
        "alphas": alphas,
        "repeats": repeats,
        "dtype": "float64",
        "fit_intercept": False,
        "timed": "fit on train + predict on test (GPU rows include host<->device copies)",
        "notes": [
            "sklearn RidgeCV(alpha_per_target=True) supports per-target alphas only with "
            "efficient LOO (GCV), so it is compared with ours at cv=None (exact LOO).",
            "himalaya breaks exact score ties towards the larger alpha (1e-10*log(alpha) "
            "added), ours towards the first; this only matters at near-ties.",
            "Alphas agree if equal to rtol 1e-9 (himalaya returns exp(-(-log alpha))).",
        ],
        "results": results,
        "summary": summary,
        "flops_ours_kfold": flops,
        "gemm_peak": peak,
        "gpu": gpu,
    }
    if profile:
        log("profiling our fit ...")
        prof = profile_ours(Xtr, Ytr, Xte, alphas, n_folds)
        prof["flops_by_stage"] = flops
        prof["cprofile_top_tottime"] = cprofile_ours(Xtr, Ytr, Xte, alphas, n_folds)
        payload["profile_ours_kfold"] = prof
        log(f"  line profile: traced run {prof['total_s']:.2f} s "
            f"(untraced {prof['untraced_run_s']:.2f} s)")
        for row in prof["lines"][:15]:
            log(f"  {row['seconds']:7.2f} s {row['fraction']:6.1%}  {row['file']}:{row['line']:<4d}"
                f" {row['function']:28s} {row['source'][:70]}")
    return payload


def _parse_reduced(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        out[name] = int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--targets", type=int, default=None, help="number of targets")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per estimator (>= 3)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="estimator names to run besides the references")
    ap.add_argument("--reduced", nargs="*", default=[], metavar="NAME=N_TARGETS",
                    help="time NAME on fewer targets and extrapolate linearly")
    ap.add_argument("--profile", action="store_true", help="line profile of our fit")
    ap.add_argument("--no-gpu", action="store_true", help="skip GPU rows even if CUDA is present")
    ap.add_argument("--no-torch-cpu", action="store_true", help="skip the torch-on-CPU rows")
    ap.add_argument("--output", default=None, help="result name (default ridge / ridge_quick)")
    args = ap.parse_args(argv)

    sizes = dict(QUICK if args.quick else FULL)
    if args.targets is not None:
        sizes["n_targets"] = args.targets
    info = machine_info()
    print(f"{info['cpu_model']} x{info['logical_cores']}, BLAS "
          f"{[b.get('internal_api') for b in info['blas']] if isinstance(info['blas'], list) else info['blas']}")
    payload = run_benchmark(
        sizes, repeats=args.repeats, only=args.only,
        reduced_targets=_parse_reduced(args.reduced), profile=args.profile,
        gpu=False if args.no_gpu else None, torch_cpu=not args.no_torch_cpu,
    )
    payload["machine"] = info
    payload["load_average_at_end"] = list(os.getloadavg())
    payload["command"] = " ".join(["python", "benchmarks/bench_ridge.py", *(argv or sys.argv[1:])])
    name = args.output or ("ridge_quick" if args.quick else "ridge")
    path = write_result(name, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
