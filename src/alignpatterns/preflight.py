"""Peak-memory estimates of the workflow's jobs from array shapes, and an early check.

Every estimate is a sum of named terms (MB) so a failing check can say what dominates. Shapes come
from the job's input files when they exist (``.npz`` headers only, no data is read; ``.npz``
stores written by :func:`alignpatterns.io.save_arrays` are uncompressed, so member sizes are
array sizes) and otherwise from the config (planning, e.g. a dry run before any data exists).

The constants were calibrated on the embedded default and the tiny test config (benchmark
``max_rss`` of every job, see ``docs/hpc.md``); every estimate stays above the measured peak.
"""

from __future__ import annotations

import functools
import logging
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("alignpatterns")

MB = 1024**2
#: Resident memory of a job's interpreter after its imports (numpy/scipy/pandas/sklearn), MB.
BASE_MB = 400.0
#: The same with torch and timm imported (extraction, synthesis), MB.
TORCH_BASE_MB = 1800.0
#: Real BOLD Moments sizes used to plan before the dataset exists (reference/bmd_format.md).
BMD_PLAN = {"n_train": 1000, "n_test": 102, "train_reps": 3, "test_reps": 10,
            "n_grayordinates": 91282, "roi_vertices": 2000}
#: Planned feature width of one layer when its feature file does not exist yet.
PLAN_LAYER_UNITS = 768


class PreflightError(MemoryError):
    """A job would not fit the memory it declared."""


@dataclass
class Estimate:
    """Peak resident memory of one job, as named terms in MB.

    Attributes
    ----------
    rule : str
        Workflow rule.
    terms : dict of str to float
        Contributions (MB); their sum is the estimate.
    source : str
        ``files`` when computed from the job's inputs, ``config`` when planned from the config.
    """

    rule: str
    terms: dict[str, float] = field(default_factory=dict)
    source: str = "files"

    @property
    def mb(self) -> float:
        return float(sum(self.terms.values()))

    def describe(self) -> str:
        parts = sorted(self.terms.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {v:,.0f} MB" for k, v in parts)


# --- shapes from files -----------------------------------------------------------------------------

def npz_members(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array of an ``.npz`` archive, read from the headers only.

    Parameters
    ----------
    path : path-like
        An ``.npz`` archive.

    Returns
    -------
    dict of str to (shape, dtype)
        Keyed by array name (member name without ``.npy``).
    """
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                out[info.filename[:-4]] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable array store ({err})") from None
    return out


def _nbytes(shape: Sequence[int], dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _size_mb(paths: Iterable[str | os.PathLike]) -> float:
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p)) / MB


def feature_shapes(path: str | os.PathLike) -> list[tuple[int, ...]]:
    """Shapes (n_stimuli, n_units) of every layer of a feature file from ``pipeline.extract``."""
    return [shape for key, (shape, _) in npz_members(path).items() if key.startswith("layer/")]


def subject_mb(path: str | os.PathLike) -> float:
    """In-memory size (MB) of a prepared subject (``results/brain/sub-XX.npz``)."""
    return sum(_nbytes(s, d) for s, d in npz_members(path).values()) / MB


def _roi_widths(path: str | os.PathLike) -> list[int]:
    return [shape[0] for key, (shape, _) in npz_members(path).items()
            if key.startswith("roi/") and key.endswith("/vertices")]


# --- estimates -------------------------------------------------------------------------------------

def _model_brain_terms(layers: Sequence[tuple[int, int]], subj_mb: float, n_test: int,
                       n_draws: int, n_measures: int) -> dict[str, float]:
    """Terms of one model × subject job: the float32 features and their float64 copy, the
    working copies of the widest layer (centring, PCA, Gram), the subject, RDMs and nulls."""
    n_stim = max((s[0] for s in layers), default=0)
    units = [s[1] for s in layers]
    widest = n_stim * max(units, default=0) * 8 / MB
    pairs = n_test * (n_test - 1) / 2
    return {
        "interpreter": BASE_MB,
        "features float32 + float64": n_stim * sum(units) * 12 / MB,
        "widest layer working copies": 4 * widest,
        "subject": 2 * subj_mb,
        "stimulus Gram/RDM": 6 * n_stim**2 * 8 / MB,
        "permutation nulls": n_measures * n_draws * (pairs + len(units)) * 8 / MB,
    }


def _bootstrap_terms(n_boot: int, n_test: int, n_vertices: int) -> dict[str, float]:
    """Working arrays of the stimulus-bootstrap rescoring (patterns/stimboot.py): the CKA
    count products (draws × n_test²) and the LP per-vertex sums (draws × vertices, six)."""
    if n_boot <= 0:
        return {}
    return {"stimulus bootstrap": n_boot * (2 * n_test**2 + 6 * n_vertices) * 8 / MB}


def _n_boot(cfg: Mapping) -> int:
    return int((cfg.get("apa") or {}).get("n_bootstrap", 0) or 0)


#: Rules whose peak memory is estimated from their input files (checked before they run).
FILE_ESTIMATED = ("model_brain", "brain_brain", "ceilings", "extract", "apa", "brain_avg",
                  "decompose")


def _decompose_terms(layers: Sequence[tuple[int, int]]) -> dict[str, float]:
    """One model's LP decomposition: its features (float32 + float64) and the working copies
    of the widest layer (scaling, the n × n Gram's projection)."""
    n_stim = max((s[0] for s in layers), default=0)
    units = [s[1] for s in layers]
    return {"interpreter": BASE_MB,
            "features float32 + float64": n_stim * sum(units) * 12 / MB,
            "widest layer working copies": 4 * n_stim * max(units, default=0) * 8 / MB}


def estimate_from_files(rule: str, inputs: Mapping[str, Sequence[str]], cfg: Mapping
                        ) -> Estimate | None:
    """Estimate a job's peak memory from its existing input files.

    Parameters
    ----------
    rule : str
        Rule name.
    inputs : mapping of str to list of str
        The job's named inputs (as ``snakemake.input``), each a list of paths.
    cfg : mapping
        Resolved config.

    Returns
    -------
    Estimate or None
        None for rules not in :data:`FILE_ESTIMATED`.
    """
    def paths(name):
        v = inputs.get(name, [])
        return [v] if isinstance(v, str | os.PathLike) else list(v)

    if rule == "decompose":
        return Estimate(rule, _decompose_terms(feature_shapes(paths("features")[0])))
    if rule == "model_brain":
        layers = feature_shapes(paths("features")[0])
        subj = paths("subject")[0]
        sm = subject_mb(subj)
        n_test = _n_test_of_subject(subj)
        terms = _model_brain_terms(layers, sm, n_test, int(cfg["apa"]["n_permutations"]),
                                   len(cfg["measures"]))
        terms.update(_bootstrap_terms(_n_boot(cfg), n_test, sum(_roi_widths(subj))))
        return Estimate(rule, terms)
    if rule in ("brain_brain", "ceilings", "brain_avg"):
        subs = paths("subjects")
        sizes = [subject_mb(p) for p in subs]
        widths = [w for p in subs[:1] for w in _roi_widths(p)]
        n_stim = _n_stim_of_subject(subs[0]) if subs else 0
        # LP: every target vertex of all ROIs at once; the source's copies
        y_all = n_stim * sum(widths) * 8 / MB
        terms = {"interpreter": BASE_MB, "all subjects": sum(sizes),
                 "LP targets and predictions": 4 * y_all,
                 "stimulus Gram/RDM": 6 * n_stim**2 * 8 / MB}
        if rule == "ceilings" and subs:
            # ceiling_loo_data stacks the other subjects' ROIs before their vertex-wise mean
            terms["mean of the other subjects"] = max(sizes) * len(subs)
        if rule == "brain_brain" and subs:
            terms.update(_bootstrap_terms(_n_boot(cfg), _n_test_of_subject(subs[0]),
                                          sum(widths)))
        return Estimate(rule, terms)
    if rule == "extract":
        frames = paths("frames")[0]
        if str(frames).endswith(".npy"):  # the frame cache (read memory-mapped: an upper bound)
            arr = np.load(frames, mmap_mode="r")
            shape, dtype = arr.shape, arr.dtype
        else:
            shape, dtype = npz_members(frames)["frames"]
        f = cfg["features"]
        batch = min(_batch_size(f), shape[0] * shape[1])
        size = shape[2] if len(shape) > 2 else f["size"]
        n_layers = _n_layers(cfg, inputs)
        terms = {"torch": TORCH_BASE_MB,
                 "frames": _nbytes(shape, dtype) / MB,
                 # float32 activations of one batch at every layer: ~64 channels at full res
                 "batch activations": batch * size * size * 64 * 4 * 4 / MB,
                 "pooled features": shape[0] * n_layers * f["pool_grid"] ** 2
                 * PLAN_LAYER_UNITS * 4 * 2 / MB}
        return Estimate(rule, terms)
    if rule == "apa":
        terms = {"interpreter": BASE_MB,
                 "tables": 10 * _size_mb(paths("model_brain") + paths("brain_brain")),
                 "nulls": 2 * sum(sum(_nbytes(s, d) for s, d in npz_members(p).values())
                                  for p in paths("nulls")) / MB}
        boots = sum(sum(_nbytes(s, d) for s, d in npz_members(p).values())
                    for p in paths("boots")) / MB
        if boots > 0:  # the brain tensor under the draws, a normalised copy, batch arrays
            terms["stimulus bootstrap"] = 3 * boots + 64
        return Estimate(rule, terms)
    return None


def _n_stim_of_subject(path) -> int:
    m = npz_members(path)
    return m["train_ids"][0][0] + m["test_ids"][0][0]


def _n_test_of_subject(path) -> int:
    return npz_members(path)["test_ids"][0][0]


def _n_layers(cfg: Mapping, inputs: Mapping | None = None) -> int:
    """Layers of the deepest model of the config (registry entries)."""
    path = inputs["registry"][0] if inputs and "registry" in inputs else None
    counts = _layer_counts(str(path) if path else None)
    return max((counts.get(m.get("spec_name", m["name"]), 12) for m in cfg["models"]),
               default=12)


@functools.lru_cache(maxsize=8)
def _layer_counts(path: str | None) -> dict[str, int]:
    from alignpatterns.features.registry import load_registry

    try:
        return {name: len(spec.layers) for name, spec in load_registry(path).items()}
    except (ValueError, OSError):
        return {}


def plan_shapes(cfg: Mapping) -> dict[str, int]:
    """Dataset sizes the config implies before any data exists.

    A synthesized dataset's sizes come from ``dataset.synthesize``; a real dataset is planned at
    BOLD Moments sizes (:data:`BMD_PLAN`).
    """
    synth = (cfg.get("dataset") or {}).get("synthesize")
    out = dict(BMD_PLAN)
    if synth:
        out.update(n_train=synth["train"], n_test=synth["test"], roi_vertices=360,
                   n_grayordinates=int(1.15 * 360 * synth["rois"]))
    out["n_subjects"] = len(cfg["subjects"])
    out["n_rois"] = len(cfg["rois"])
    return out


def _batch_size(features: Mapping) -> int:
    """The configured batch size; ``auto`` is planned at 64 frames (it adapts to free memory)."""
    b = features.get("batch_size", 32)
    return 64 if b == "auto" else int(b)


def estimate_from_config(rule: str, cfg: Mapping) -> Estimate:
    """Plan a job's peak memory from the config alone (no input file needs to exist)."""
    s = plan_shapes(cfg)
    f = cfg["features"]
    n_stim = s["n_train"] + s["n_test"]
    reps = s["n_train"] * s["train_reps"] + s["n_test"] * s["test_reps"]
    roi_mb = (reps + 2 * n_stim) * s["roi_vertices"] * 8 / MB
    subj_mb = s["n_rois"] * roi_mb
    raw_subject_mb = reps * s["n_grayordinates"] * 8 / MB
    frames_mb = n_stim * f["n_frames"] * f["size"] ** 2 * 3 / MB
    n_layers = _n_layers(cfg)
    layer_units = f["pool_grid"] ** 2 * PLAN_LAYER_UNITS
    if rule == "model_brain":
        layers = [(n_stim, layer_units)] * n_layers
        terms = _model_brain_terms(layers, subj_mb, s["n_test"],
                                   int(cfg["apa"]["n_permutations"]), len(cfg["measures"]))
    elif rule in ("brain_brain", "ceilings", "brain_avg"):
        terms = {"interpreter": BASE_MB, "all subjects": s["n_subjects"] * subj_mb,
                 "LP targets and predictions": 4 * n_stim * s["n_rois"] * s["roi_vertices"]
                 * 8 / MB,
                 "stimulus Gram/RDM": 6 * n_stim**2 * 8 / MB}
    elif rule in ("check_data", "prepare_brain"):
        # one raw subject at a time (loaded, then cut to the ROIs), prepared subjects kept
        kept = s["n_subjects"] * subj_mb if rule == "check_data" else subj_mb
        terms = {"interpreter": BASE_MB, "raw subject betas": 2 * raw_subject_mb,
                 "prepared subjects": kept}
    elif rule == "synthesize":
        terms = {"torch": TORCH_BASE_MB, "generator model and extraction": 400.0,
                 "frames and videos": 4 * frames_mb,
                 "one subject's betas": 3 * raw_subject_mb,
                 "generator features": n_stim * n_layers * layer_units * 4 * 2 / MB}
    elif rule == "frames":
        # the job imports torch (thread settings, frame policy from the model registry)
        terms = {"torch": TORCH_BASE_MB, "frames": 2 * frames_mb}
    elif rule == "extract":
        batch = min(_batch_size(f), n_stim * f["n_frames"])
        terms = {"torch": TORCH_BASE_MB, "frames": frames_mb,
                 "batch activations": batch * f["size"] ** 2 * 64 * 4 * 4 / MB,
                 "pooled features": n_stim * n_layers * layer_units * 4 * 2 / MB}
    elif rule == "apa":
        n_models = len(cfg["models"])
        pairs = s["n_test"] * (s["n_test"] - 1) / 2
        rows = s["n_subjects"] * s["n_rois"] * (n_models * n_layers + s["n_subjects"]
                                                 * s["n_rois"])
        terms = {"interpreter": BASE_MB, "tables": rows * 2 * 200 / MB,
                 "nulls": 2 * n_models * s["n_subjects"] * int(cfg["apa"]["n_permutations"])
                 * (n_layers * s["n_rois"] + pairs / 100) * 8 / MB}
    elif rule == "whole_model":
        # one model's features in float64, ridge between its ROI-assigned layers (LP)
        n_assigned = min(n_layers, s["n_rois"])
        rows = s["n_subjects"] ** 2 * s["n_rois"] ** 2 * 2 + s["n_subjects"] * s["n_rois"] * (
            len(cfg["models"]) * n_layers * 2)
        terms = {"interpreter": BASE_MB,
                 "features (float64)": 2 * n_stim * n_layers * layer_units * 8 / MB,
                 "LP targets and predictions": 4 * n_stim * n_assigned * layer_units * 8 / MB,
                 "tables": rows * 200 / MB}
    elif rule == "decompose":
        terms = _decompose_terms([(n_stim, layer_units)] * n_layers)
    elif rule == "synth_layer_cka":
        # the oracle's layers and one candidate's at a time, all stimuli, float64; the ranked
        # condensed RDM of every candidate layer and driving layer
        terms = {"interpreter": BASE_MB,
                 "two models' features (float64)": 2 * n_stim * n_layers * layer_units * 8 / MB,
                 "ranked RDMs": 2 * n_layers * n_stim * (n_stim - 1) / 2 * 8 / MB}
    else:  # gathers, figures and reports: tables only
        terms = {"interpreter": BASE_MB}
    return Estimate(rule, terms, source="config")


def estimate(rule: str, inputs: Mapping[str, Sequence[str]] | None, cfg: Mapping) -> Estimate:
    """From the input files when they all exist, else from the config."""
    files = [p for v in (inputs or {}).values()
             for p in ([v] if isinstance(v, str | os.PathLike) else v)]
    if rule in FILE_ESTIMATED and files and all(os.path.exists(p) for p in files):
        return estimate_from_files(rule, inputs, cfg)
    return estimate_from_config(rule, cfg)


# --- the check -------------------------------------------------------------------------------------

def allocated_mb(declared_mb: float | None) -> float | None:
    """The memory a job may use: its declared ``mem_mb``, or less when SLURM granted less."""
    limits = [float(declared_mb)] if declared_mb else []
    slurm = os.environ.get("SLURM_MEM_PER_NODE")
    if slurm and slurm.isdigit():
        limits.append(float(slurm))
    return min(limits) if limits else None


def check(rule: str, inputs: Mapping[str, Sequence[str]], cfg: Mapping,
          mem_mb: float | None, wildcards: Mapping | None = None) -> Estimate | None:
    """Fail before any work when the job's estimated peak memory exceeds its allocation.

    Runs inside a job, when its inputs exist; rules without a file-based estimate
    (:data:`FILE_ESTIMATED`) are not checked.

    Parameters
    ----------
    rule : str
    inputs : mapping of str to list of str
        The job's named inputs.
    cfg : mapping
        Resolved config.
    mem_mb : float or None
        The job's declared ``mem_mb`` (``snakemake.resources.mem_mb``); None skips the check.
    wildcards : mapping, optional
        For the message.

    Returns
    -------
    Estimate or None

    Raises
    ------
    PreflightError
        With the estimate's terms, the allocation and how to raise it.
    """
    est = estimate_from_files(rule, inputs, cfg)
    limit = allocated_mb(mem_mb)
    if est is not None and limit is not None and est.mb > limit:
        where = ", ".join(f"{k}={v}" for k, v in (wildcards or {}).items())
        job = f"{rule}[{where}]" if where else rule
        raise PreflightError(
            f"{job}: estimated peak memory {est.mb:,.0f} MB exceeds the job's {limit:,.0f} MB "
            f"({est.describe()}; shapes from {est.source}). Nothing was computed. Give the job "
            f"more memory, e.g. --set-resources {rule}:mem_mb={_round_up(est.mb * 1.25)}, or "
            f"remove a smaller mem_mb override for {rule} from your profile.")
    return est


def _round_up(mb: float, step: int = 256) -> int:
    return int(-(-mb // step) * step)


def check_job(smk) -> Estimate | None:
    """:func:`check` for a Snakemake script's ``snakemake`` object; logs the estimate."""
    inputs = {k: [v] if isinstance(v, str) else list(v) for k, v in smk.input.items()}
    try:
        est = check(smk.rule, inputs, smk.params.cfg, smk.resources.get("mem_mb"),
                    dict(smk.wildcards.items()))
    except PreflightError as err:
        log.error("%s", err)  # into the job's log file too
        raise
    if est is not None:
        log.info("preflight: estimated peak %.0f MB of %s MB (%s)", est.mb,
                 smk.resources.get("mem_mb"), est.describe())
    return est
