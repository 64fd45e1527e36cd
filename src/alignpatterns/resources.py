"""Job resources of the workflow's rules (``mem_mb``, ``runtime``) sized from the data.

Snakemake evaluates a rule's resource functions when it plans the job (a dry run, before the
inputs exist: sizes from the config, see :func:`alignpatterns.preflight.plan_shapes`) and again
just before it runs it (inputs present: sizes from the files, read from array headers). The same
numbers serve a laptop and SLURM (``--mem``, ``-t``).

Memory-bound rules ask for ``attempt`` times their estimate, so ``retries`` in a profile retry an
out-of-memory job with more memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from alignpatterns import preflight

#: Rules whose peak memory grows with the data; they get more memory on every retry.
MEMORY_BOUND = frozenset({"synthesize", "check_data", "prepare_brain", "ceilings", "extract",
                          "decompose", "model_brain", "brain_brain", "apa", "brain_avg"})
#: Head room over the estimate.
MARGIN = 1.25
#: Smallest memory request (MB): interpreter start-up spikes above the steady state.
MIN_MB = 1024
#: Smallest runtime request (minutes).
MIN_RUNTIME = 10


def _round_up(x: float, step: int) -> int:
    return int(math.ceil(x / step) * step)


def _inputs(input) -> dict[str, list[str]] | None:
    """A Snakemake ``input`` (Namedlist) or mapping as name → list of paths."""
    if input is None:
        return None
    items = input.items() if hasattr(input, "items") else []
    out = {k: [v] if isinstance(v, str) else [str(p) for p in v] for k, v in items}
    return out or {"_": [str(p) for p in input]}


def mem_mb(rule: str, cfg: Mapping, input=None, attempt: int = 1) -> int:
    """Memory request (MB) of one job of ``rule``.

    Parameters
    ----------
    rule : str
        Rule name.
    cfg : mapping
        Resolved config (the whole of it, not a rule's ``params.cfg``).
    input : snakemake InputFiles or mapping of str to list of str, optional
        The job's inputs; used when they all exist.
    attempt : int
        Snakemake's attempt counter (1 on the first try).

    Returns
    -------
    int
        ``MARGIN`` × the peak estimate, rounded up to 256 MB, at least ``MIN_MB``, times
        ``attempt`` for :data:`MEMORY_BOUND` rules.
    """
    est = preflight.estimate(rule, _inputs(input), cfg)
    mb = max(MIN_MB, _round_up(MARGIN * est.mb, 256))
    return mb * (attempt if rule in MEMORY_BOUND else 1)


def runtime(rule: str, cfg: Mapping, input=None, attempt: int = 1) -> int:
    """Wall-time request (minutes) of one job of ``rule``, times ``attempt``.

    Upper bounds from the planned sizes (stimuli, subjects, ROIs, layers, permutations), scaled
    from the per-job times measured on the embedded default (``docs/hpc.md``).
    """
    s = preflight.plan_shapes(cfg)
    n_stim = s["n_train"] + s["n_test"]
    k = (n_stim / 1000) ** 2  # Gram/RDM/kernel-ridge cost relative to 1000 stimuli
    cells = s["n_subjects"] * s["n_rois"]
    n_layers = preflight._n_layers(cfg)
    perms = int((cfg.get("apa") or {}).get("n_permutations", 1000))
    # stimulus bootstrap (per 1000 draws; benchmarks/bench_stimboot.py at BMD size, ~3x margin)
    boots = int((cfg.get("apa") or {}).get("n_bootstrap", 0) or 0) / 1000
    kt = (s["n_test"] / 100) ** 2
    n_variants = len((cfg.get("apa") or {}).get("variants", [])) or 4
    f = cfg["features"]
    minutes = {
        "synthesize": 10 + s["n_subjects"] * 3 * k,
        "check_data": 5 + 2 * s["n_subjects"],
        "prepare_brain": 10,
        "frames": 5 + n_stim * f["n_frames"] / 500,
        "extract": 10 + (0 if cfg.get("device") == "cuda"
                         else n_stim * f["n_frames"] * (f["size"] / 112) ** 2 / 50),
        # six decompositions (test fit, five outer folds) of every layer
        "decompose": 10 + n_layers * 0.5 * k,
        "model_brain": 10 + n_layers * s["n_rois"] * 0.5 * k + perms / 1000 * 5
        + boots * n_layers * s["n_rois"] * 0.005 * kt,
        "brain_brain": 10 + cells * s["n_rois"] * 0.05 * k
        + boots * cells * s["n_rois"] * 0.004 * kt,
        # brain_avg: test-split scores of (k ≥ 2) × brain_avg_max_sets averaged stand-ins, for
        # every measure
        "brain_avg": 10 + len(cfg.get("measures", [])) * _brain_avg_sets(cfg) * s["n_rois"] ** 2
        * 0.05 * k,
        # the ceilings of every cell, and ceiling_loo_data: per cell the mean of the other
        # subjects scored like one brain–brain ROI pair
        "ceilings": 10 + cells * (0.05 + 0.05 * len(cfg.get("measures", []))) * k,
        # one model, every measure: ROI-assigned layers' patterns (LP: ridge among them), Mantel
        "whole_model": 5 + len(cfg.get("measures", [])) * (2 + 10 * k),
        "apa": 15 + len(cfg["models"]) * s["n_subjects"] * perms / 1000 * 0.2
        + boots * len(cfg["models"]) * s["n_rois"] * n_variants * (s["n_subjects"] / 10) ** 2
        * 0.025,
    }.get(rule, MIN_RUNTIME)
    return max(MIN_RUNTIME, int(math.ceil(minutes))) * attempt


def _brain_avg_sets(cfg: Mapping) -> int:
    """Averaged stand-ins one ``brain_avg`` job scores (an upper bound)."""
    a = cfg.get("apa") or {}
    ks = [k for k in a.get("brain_avg_k", [1, 2, 4]) if k >= 2]
    return len(ks) * int(a.get("brain_avg_max_sets", 5))


def declared(rule: str, cfg: Mapping, input=None, attempt: int = 1) -> dict[str, int]:
    """``{"mem_mb": ..., "runtime": ...}`` of one job (for docs and tests)."""
    return {"mem_mb": mem_mb(rule, cfg, input, attempt),
            "runtime": runtime(rule, cfg, input, attempt)}
