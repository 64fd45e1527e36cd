"""One function per workflow step: read inputs, call the library, write outputs atomically.

The Snakemake scripts in ``workflow/scripts`` are thin adapters around these functions, which are
importable and testable without Snakemake. ``cfg`` is a config resolved by
:func:`alignpatterns.config.resolve_config`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alignpatterns import io

log = logging.getLogger("alignpatterns")


def setup(log_path: str | None = None, threads: int = 1) -> None:
    """Log to ``log_path`` and pin BLAS/torch threads (same locally and on SLURM)."""
    handlers = [logging.FileHandler(log_path, mode="w")] if log_path else []
    handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(levelname)s %(name)s: %(message)s")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


def deterministic_torch() -> None:
    """Make torch pick deterministic kernels (GPU convolutions and matmuls included).

    On the CPU, results are reproducible for a fixed thread count anyway; on CUDA this needs
    ``CUBLAS_WORKSPACE_CONFIG`` before the first cuBLAS call. Operations without a
    deterministic implementation warn instead of failing (``warn_only``).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None or "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        # The public setter also sets torch._inductor's flag, and importing inductor costs about
        # 3.5 s per job; nothing here is torch.compile'd, so only the eager flag matters.
        set_flag(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def _layout(cfg):
    from alignpatterns.data.dataset import open_dataset

    return open_dataset(cfg["dataset"])


def roi_adjacency(cfg: dict) -> np.ndarray | None:
    """The parcel adjacency of ``cfg['rois']`` for the anatomical null, where one is known.

    ``apa.adjacency``: ``atlas`` (default; the ``…_adjacency.tsv`` table beside a BMD atlas's
    label file, when the atlas ships one, as the synthetic atlas does), a path to a table of
    adjacent ROI pairs (:func:`alignpatterns.patterns.adjacency.read_adjacency`), or null (no
    anatomical null).
    """
    from alignpatterns.patterns.adjacency import atlas_adjacency_file, read_adjacency

    spec = cfg["apa"].get("adjacency", "atlas")
    if spec is None:
        return None
    if spec == "atlas":
        layout = _layout(cfg)
        if getattr(layout, "labels", None) or not hasattr(layout, "atlas_files"):
            return None  # labels from a user file or per-ROI data: no atlas folder to look in
        path = atlas_adjacency_file(layout.atlas_files(layout.atlas)[0])
        if not path.is_file():
            return None
    else:
        path = Path(spec)
    return read_adjacency(path, cfg["rois"])


def synthesize(cfg: dict, out: str) -> None:
    """Write the synthetic dataset of ``cfg['dataset']['synthesize']`` to ``out`` (on a fixed
    thread count, :data:`alignpatterns.synth.dataset.SYNTH_THREADS`)."""
    from alignpatterns.synth.dataset import synthesize as run

    deterministic_torch()
    s = cfg["dataset"]["synthesize"]
    f = cfg["features"]
    run(out, seed=s["seed"], subjects=s["subjects"], rois=s["rois"], train=s["train"],
        test=s["test"], n_frames=f["n_frames"], size=f["size"])


def synth_layer_cka(cfg: dict, data_root: str, feature_paths: Sequence[str], out: str
                    ) -> pd.DataFrame:
    """Table ``synth_layer_cka``: per candidate and ROI of a synthetic dataset, the linear CKA
    and the RSA between the ROI's driving generator layer and the candidate's best-matching
    layer (SPEC.md §5 ground truth; columns in :func:`alignpatterns.synth.truth.candidate_layer_cka`).

    Parameters
    ----------
    cfg : dict
        Resolved config; its ``models`` give each candidate's ``weights``.
    data_root : str
        Synthetic dataset root (holds ``ground_truth.json``).
    feature_paths : sequence of str
        ``results/features/<model>.npz`` of every candidate, the ``oracle`` (the generator's
        own weights) among them.
    out : str
        Destination ``.parquet``.
    """
    from alignpatterns.synth.truth import candidate_layer_cka

    truth_path = Path(data_root) / "ground_truth.json"
    if not truth_path.exists():
        raise FileNotFoundError(f"{truth_path}: ground truth not found (the dataset is not "
                                "synthetic)")
    truth = json.loads(truth_path.read_text())
    if "roi_true_layer_name" not in truth:
        raise ValueError(f"{truth_path}: no 'roi_true_layer_name' (written by an older "
                         "alignpatterns; synthesize the dataset again)")
    paths = {Path(p).stem: p for p in feature_paths}
    if "oracle" not in paths:
        raise ValueError(f"synth_layer_cka needs the oracle's features, got {sorted(paths)}")

    def all_stimuli(path):
        layers, ids = load_features(path)
        return {name: np.concatenate(parts) for name, parts in layers.items()}, ids

    oracle_layers, oracle_ids = all_stimuli(paths["oracle"])
    keep = set(truth["roi_true_layer_name"].values())
    oracle = {k: v for k, v in oracle_layers.items() if k in keep}
    # the oracle as a candidate first, then one other model's features at a time in memory
    frames = [candidate_layer_cka(truth, oracle, {"oracle": oracle_layers})]
    del oracle_layers
    for model, path in paths.items():
        if model == "oracle":
            continue
        layers, ids = all_stimuli(path)
        if ids != oracle_ids:
            raise ValueError(f"{path}: stimulus ids differ from those of {paths['oracle']}")
        frames.append(candidate_layer_cka(truth, oracle, {model: layers}))
    table = pd.concat(frames, ignore_index=True)
    weights = {m["name"]: m["weights"] for m in cfg["models"]}
    table["weights"] = table["candidate"].map(weights)
    return io.write_table(table, out, "synth_layer_cka", cfg)


def check_data(cfg: dict, table_path: str, info_path: str) -> pd.DataFrame:
    """Validate the dataset against the config; write the subject × ROI summary.

    Checks every subject's files (structure, axis order, ids, NaN pattern, ROI labels), that the
    stimulus ids agree across subjects and that every stimulus has a readable video. Raises a
    :class:`~alignpatterns.data.safe_pickle.DataFormatError` naming the file on bad input. Missing
    cells (too few reliable vertices) are reported, not errors; an ROI missing for every subject
    is an error.
    """
    from alignpatterns.data.bmd import check_stimulus_ids
    from alignpatterns.data.safe_pickle import DataFormatError
    from alignpatterns.data.stimuli import check_videos

    layout = _layout(cfg)
    if not Path(layout.root).exists():
        raise DataFormatError(f"{layout.root}: dataset root not found (dataset.root)")
    subjects = [_prepare(cfg, layout, s) for s in cfg["subjects"]]
    nan_stimuli = sorted({i for sd in subjects for i in sd.nan_stimuli})
    if nan_stimuli:  # SPEC.md §1: a stimulus missing in any subject is dropped for all
        for sd in subjects:
            if sd.nan_stimuli:
                log.warning("sub-%s: stimuli NaN in every repetition: %s (excluded for all "
                            "subjects)", sd.subject, sd.nan_stimuli)
        subjects = [_prepare(cfg, layout, s, nan_stimuli) for s in cfg["subjects"]]
    check_stimulus_ids(subjects, layout)
    check_videos(layout, subjects[0].train_ids + subjects[0].test_ids,
                 cfg["dataset"].get("video_fallback"))
    rows = [row for sd in subjects for row in sd.summary]
    table = pd.DataFrame(rows)
    for roi, g in table.groupby("roi"):
        if g["missing"].all():
            raise DataFormatError(f"{layout.files(cfg['subjects'][0], 'train')}: ROI {roi!r} has "
                                  f"fewer than {cfg['min_vertices']} reliable vertices in every "
                                  "subject")
    for row in rows:
        if row["missing"]:
            log.warning("missing cell: sub-%s %s: %s", row["subject"], row["roi"], row["reason"])
    kept = table.loc[~table["missing"], "n_reliable"]
    n_comp = cfg["lp"]["n_components"]
    k = None if n_comp is None else int(min(n_comp, kept.min()))
    info = {"subjects": cfg["subjects"], "rois": cfg["rois"],
            "missing_cells": [[r["subject"], r["roi"]] for r in rows if r["missing"]],
            "lp_n_components": k, "n_train": len(subjects[0].train_ids),
            "n_test": len(subjects[0].test_ids),
            "train_ids": subjects[0].train_ids, "test_ids": subjects[0].test_ids}
    if nan_stimuli:
        info["nan_stimuli"] = nan_stimuli
    from alignpatterns.config import check_folds

    check_folds(cfg["lp"], info["n_train"])  # a real dataset's count is known only now
    io.write_table(table, table_path, "check_data", cfg)
    io.write_json(info_path, info)
    return table


def _prepare(cfg, layout, subject, extra_exclusions=()):
    exclude = list(cfg["dataset"].get("exclude_stimuli", [])) + list(extra_exclusions)
    return layout.prepare_subject(subject, cfg["rois"],
                                  reliability_threshold=cfg["reliability_threshold"],
                                  min_vertices=cfg["min_vertices"], exclude_stimuli=exclude,
                                  nan_betas=cfg.get("nan_betas", "drop"))


def prepare_brain(cfg: dict, subject: str, out: str, info_path: str | None = None) -> None:
    """Prepare one subject (averaging, train-only selection) and store it.

    ``info_path``: the ``dataset.json`` of :func:`check_data`, whose ``nan_stimuli`` (stimuli
    missing in some subject) are excluded as well.
    """
    from alignpatterns.data.prepared import save_subject

    extra = json.loads(Path(info_path).read_text()).get("nan_stimuli", []) if info_path else []
    save_subject(_prepare(cfg, _layout(cfg), subject, extra), out)


def _load_subjects(paths: Sequence[str]):
    from alignpatterns.data.prepared import load_subject

    subs = [load_subject(p) for p in paths]
    return {sd.subject: sd for sd in subs}


def ceilings(cfg: dict, subject_paths: Sequence[str], out: str, info_path: str) -> None:
    """Noise ceilings of every measure, subject, ROI and split; in surface spaces also the
    paper's data-level ceiling against the vertex-wise mean of the other subjects
    (``ceiling_loo_data``, test split)."""
    from alignpatterns.patterns.brain_avg import check_vertex_correspondence, loo_data_ceiling_rows
    from alignpatterns.patterns.conventional import ceiling_rows

    subjects = _load_subjects(subject_paths)
    rows = ceiling_rows(subjects, cfg["rois"], cfg["measures"])
    try:
        check_vertex_correspondence(cfg["dataset"])
    except ValueError as err:
        log.info("ceiling_loo_data not computed: %s", err)
    else:
        rows += loo_data_ceiling_rows(subjects, cfg["rois"], cfg["measures"],
                                      _lp_options(cfg, info_path), int(cfg["min_vertices"]),
                                      cfg["apa"]["brain_avg_vertices"])
    io.write_table(pd.DataFrame(rows), out, "ceilings", cfg)


def frames(cfg: dict, info_path: str, out: str, policy: dict | None = None,
           threads: int = 1) -> None:
    """Decode every stimulus video once with one frame policy (shared by every model using it).

    ``policy`` is a :class:`~alignpatterns.features.registry.FramePolicy` as a dict (default:
    the image-model policy of ``cfg['features']``). Writes ``out`` (``.npy``) and its ``.json``
    sidecar."""
    from alignpatterns.features.registry import FramePolicy, frame_policy
    from alignpatterns.features.runner import write_frame_cache

    info = json.loads(Path(info_path).read_text())
    ids = info["train_ids"] + info["test_ids"]
    from alignpatterns.data.stimuli import stimulus_file

    layout = _layout(cfg)
    fallback = cfg["dataset"].get("video_fallback")
    paths = [stimulus_file(layout, sid, fallback) for sid in ids]
    stills = [sid for sid, p in zip(ids, paths, strict=True) if p.suffix.lower() != ".mp4"]
    if stills:
        log.warning("%d of %d stimuli have no video: their frames_middle still stands in for "
                    "every frame (%s%s)", len(stills), len(ids), ", ".join(stills[:5]),
                    ", …" if len(stills) > 5 else "")
    pol = FramePolicy(**policy) if policy else frame_policy(None, cfg["features"])
    write_frame_cache(paths, ids, info["n_train"], pol, out, workers=threads)


def extract(cfg: dict, model: str, frames_path: str, out: str, threads: int = 1) -> None:
    """Layer features of one model for every stimulus (computed once for all subjects).

    The model's config entry may override the registry's ``layers`` and ``tokens``; the
    ``features`` config sets pooling, frame pooling, precision, batch size and reduction."""
    import torch

    from alignpatterns.config import model_entry
    from alignpatterns.features.extract import ExtractOptions
    from alignpatterns.features.layers import LayerSpecError
    from alignpatterns.features.models import build_model
    from alignpatterns.features.registry import DEFAULT_REGISTRY, frame_policy, load_registry
    from alignpatterns.features.runner import extract_to_file, load_frame_cache

    torch.set_num_threads(threads)
    deterministic_torch()
    entry = model_entry(cfg, model)
    spec = load_registry()[entry["spec_name"]]
    # the oracle is the generator network with its own (seeded random) weights
    weights = "random" if entry["weights"] == "oracle" else entry["weights"]
    device = cfg.get("device", "cpu")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    frames, ids, n_train = load_frame_cache(frames_path)
    f = cfg["features"]
    opts = ExtractOptions(pool_grid=f["pool_grid"], batch_size=f["batch_size"],
                          frame_pool=f.get("frame_pool", "mean"), tokens=entry.get("tokens"),
                          precision=f.get("precision", "fp32"), device=device,
                          progress=bool(f.get("progress", False)))
    net = build_model(spec, weights, seed=entry["seed"])
    try:
        extract_to_file(spec, entry["weights"], entry["seed"], frames, ids, n_train, out, opts,
                        policy=frame_policy(spec, f), layers=entry.get("layers"),
                        model_name=model, reduction=f.get("reduction"), model=net)
    except LayerSpecError as err:  # e.g. a layer name that the architecture does not have
        raise ValueError(f"{DEFAULT_REGISTRY}: model {model!r} ({spec.arch}): {err}") from None


def load_features(path: str, kind: str = "layer"
                  ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Features per layer split into (train, test), in layer order, and the stimulus ids.

    ``kind="lp"`` reads the reduced copies written with ``features.reduction`` (fitted on the
    train stimuli; empty when the file has none).
    """
    a = io.load_arrays(path)
    n_train = int(a["n_train"])
    layers = sorted(k for k in a if k.startswith(f"{kind}/"))
    out = {}
    for k in layers:
        name = k.split("/", 2)[2]
        Z = a[k].astype(np.float64)
        Z = Z.reshape(Z.shape[0], -1)  # frame pooling 'keep': frames × features, frame-major
        if not np.all(np.isfinite(Z)):
            raise ValueError(f"{path}: layer {name} has non-finite activations")
        out[name] = (Z[:n_train], Z[n_train:])
    return out, a["ids"].tolist()


def _lp_options(cfg, info_path):
    from alignpatterns.patterns.alignment import LPOptions

    info = json.loads(Path(info_path).read_text())
    lp = cfg["lp"]
    return LPOptions(alphas=tuple(float(a) for a in lp["alphas"]), inner_cv=lp["inner_folds"],
                     outer_cv=lp["outer_folds"], n_components=info["lp_n_components"],
                     x_scaling=lp.get("x_scaling", "global"),
                     protocol=lp.get("protocol", "default"))


def decompose(cfg: dict, features_path: str, info_path: str, out: str) -> None:
    """Every layer's LP source side (scaling and PCA, for the test fit and each outer fold) of
    one model, once for all subjects (``patterns.lp_sources``). Reads the reduced copies when
    ``features.reduction`` wrote them, as linear predictivity does."""
    from alignpatterns.patterns.lp_sources import decompose_layers, save_decompositions

    lp = _lp_options(cfg, info_path)
    feats = load_features(features_path, "lp")[0] or load_features(features_path)[0]
    save_decompositions(out, decompose_layers(feats, lp), lp)


def model_brain(cfg: dict, model: str, features_path: str, subject_path: str, info_path: str,
                out: str, out_null: str, decomposed_path: str | None = None) -> None:
    """All measures × layers × ROIs for one model and one subject, and the test scores under
    ``apa.n_permutations`` stimulus permutations of the model (``out_null``, an npz with
    ``null__<measure>`` arrays shaped (n_draws, n_layers, n_rois)) and under the
    ``apa.n_bootstrap`` stimulus-bootstrap draws of each measure (``boot__<measure>``, same
    shape). ``decomposed_path``: the model's LP decompositions (:func:`decompose`), used
    instead of decomposing every layer again in this job."""
    from alignpatterns.config import model_entry
    from alignpatterns.data.prepared import load_subject
    from alignpatterns.patterns.alignment import is_lp, model_brain_scores
    from alignpatterns.patterns.stimboot import stimulus_bootstrap_draws
    from alignpatterns.patterns.streams import stimulus_permutations

    feats, ids = load_features(features_path)
    sd = load_subject(subject_path)
    if ids != sd.train_ids + sd.test_ids:
        raise ValueError(f"{features_path}: stimulus ids differ from {subject_path}")
    n_test = len(sd.test_ids)
    n_draws = int(cfg["apa"]["n_permutations"])
    perms = {m: stimulus_permutations(cfg["seed"], m, model, n_draws, n_test)
             for m in cfg["measures"]}
    n_boot = int(cfg["apa"].get("n_bootstrap", 0))
    boots = {m: stimulus_bootstrap_draws(cfg["seed"], m, n_boot, n_test) for m in cfg["measures"]}
    lp_opts = _lp_options(cfg, info_path)
    lp_measures = [m for m in cfg["measures"] if is_lp(m)]
    reduced = load_features(features_path, "lp")[0] if lp_measures else {}
    decs = {}
    if decomposed_path and lp_measures:
        from alignpatterns.patterns.lp_sources import load_decompositions

        decs = load_decompositions(decomposed_path)
        if list(decs) != list(feats):
            raise ValueError(f"{decomposed_path}: layers {list(decs)} differ from the layers "
                             f"{list(feats)} of {features_path}; run the decompose step again")
    dec_args = {"decompositions": decs, "decompositions_file": str(decomposed_path)}
    if reduced:
        # features.reduction: linear predictivity reads the reduced copies, RSA and CKA the
        # unreduced features (SPEC.md §1); layer order and names are the same
        if list(reduced) != list(feats):
            raise ValueError(f"{features_path}: reduced layers {list(reduced)} differ from the "
                             f"layers {list(feats)}")
        others = [m for m in cfg["measures"] if not is_lp(m)]
        rows, nulls, boot = model_brain_scores(feats, sd, cfg["rois"], others, lp_opts,
                                               {m: perms[m] for m in others},
                                               {m: boots[m] for m in others})
        lp_rows, lp_nulls, lp_boot = model_brain_scores(
            reduced, sd, cfg["rois"], lp_measures, lp_opts,
            {m: perms[m] for m in lp_measures}, {m: boots[m] for m in lp_measures}, **dec_args)
        rows, nulls, boot = rows + lp_rows, {**nulls, **lp_nulls}, {**boot, **lp_boot}
    else:
        rows, nulls, boot = model_brain_scores(feats, sd, cfg["rois"], cfg["measures"], lp_opts,
                                               perms, boots, **dec_args)
    df = pd.DataFrame(rows)
    df.insert(1, "model", model)
    df.insert(2, "weights", model_entry(cfg, model)["weights"])
    arrays = {f"null__{m}": a for m, a in nulls.items()}
    arrays.update({f"boot__{m}": a for m, a in boot.items()})
    arrays.update(layers=np.array(list(feats)), rois=np.array(cfg["rois"]),
                  n_draws=np.array(n_draws), n_bootstrap=np.array(n_boot))
    io.save_arrays(out_null, arrays)
    io.write_table(df, out, "model_brain", cfg)


def brain_brain(cfg: dict, measure: str, target: str, subject_paths: Sequence[str],
                info_path: str, out: str, out_boot: str | None = None) -> None:
    """A_{s′→s} for one measure and target subject, all source subjects and ROI pairs, and
    (``out_boot``, an npz) the test scores under the measure's ``apa.n_bootstrap``
    stimulus-bootstrap draws: ``boot`` shaped (n_draws, n_subjects, n_rois, n_rois), indexed
    [draw, source subject, source ROI, target ROI], with ``subjects`` and ``rois``."""
    from alignpatterns.patterns.alignment import brain_brain_rows
    from alignpatterns.patterns.stimboot import stimulus_bootstrap_draws

    subjects = _load_subjects(subject_paths)
    lp = _lp_options(cfg, info_path)
    if out_boot is None:
        rows = brain_brain_rows(subjects, target, cfg["rois"], measure, lp)
    else:
        n_test = len(subjects[target].test_ids)
        counts = stimulus_bootstrap_draws(cfg["seed"], measure,
                                          int(cfg.get("apa", {}).get("n_bootstrap", 0)), n_test)
        rows, boot = brain_brain_rows(subjects, target, cfg["rois"], measure, lp, counts)
        io.save_arrays(out_boot, {"boot": boot, "subjects": np.array(list(subjects)),
                                  "rois": np.array(cfg["rois"]),
                                  "n_bootstrap": np.array(len(counts)),
                                  "n_stimuli": np.array(n_test)})
    io.write_table(pd.DataFrame(rows), out, "brain_brain", cfg)


def brain_within(cfg: dict, measure: str, subject_paths: Sequence[str], info_path: str,
                 out: str) -> None:
    """A_{s→s} on disjoint (odd/even) test repetitions for one measure and every subject."""
    from alignpatterns.patterns.within import within_subject_rows

    lp = _lp_options(cfg, info_path)
    rows = [row for sd in _load_subjects(subject_paths).values()
            for row in within_subject_rows(sd, cfg["rois"], measure, lp)]
    io.write_table(pd.DataFrame(rows), out, "brain_within", cfg)


def gather_brain_within(cfg: dict, paths: Sequence[str], bb_path: str, out: str,
                        out_summary: str) -> None:
    """Concatenate the within-subject tables and compare them with the between-subject
    patterns (``brain_within_summary``)."""
    from alignpatterns.patterns.within import within_summary

    within = io.write_table(io.concat_tables(paths, "brain_within"), out, "brain_within", cfg)
    bb = io.read_table(bb_path, "brain_brain")
    variants = [v for v in cfg["apa"]["variants"] if v in ("full", "offdiag")] or ["full"]
    summary = within_summary(within, bb, cfg["subjects"], cfg["rois"], variants)
    io.write_table(summary, out_summary, "brain_within_summary", cfg)


def gather_alignment(cfg: dict, mb_paths, bb_paths, ceilings_path, out_mb, out_summary,
                     out_bb) -> None:
    """Concatenate per-job tables and summarise the conventional scores."""
    from alignpatterns.patterns.conventional import summarize_model_brain

    mb = io.write_table(io.concat_tables(mb_paths, "model_brain"), out_mb, "model_brain", cfg)
    io.write_table(io.concat_tables(bb_paths, "brain_brain"), out_bb, "brain_brain", cfg)
    a = cfg.get("apa", {})
    paper = a.get("ci_method") == "percentile-bootstrap"  # the paper preset's intervals
    summary = summarize_model_brain(mb, io.read_table(ceilings_path, "ceilings"),
                                    ci="percentile-bootstrap" if paper else "t",
                                    n_bootstrap=int(a.get("n_bootstrap", 1000)),
                                    seed=int(cfg.get("seed", 0)))
    io.write_table(summary, out_summary, "model_brain_summary", cfg)


def load_nulls(paths: Sequence[str], measure: str, subjects: Sequence[str]
               ) -> dict[str, np.ndarray]:
    """Stimulus-permutation test scores per candidate, (n_draws, n_layers, n_subjects, n_rois).

    ``paths`` are ``.../model_brain_null/<model>/sub-<subject>.npz`` files from ``model_brain``.
    """
    per_model: dict[str, dict[str, np.ndarray]] = {}
    for p in paths:
        p = Path(p)
        arrs = io.load_arrays(p)
        key = f"null__{measure}"
        if key not in arrs:
            raise ValueError(f"{p}: no stimulus-permutation scores for measure {measure!r}")
        per_model.setdefault(p.parent.name, {})[p.stem.removeprefix("sub-")] = arrs[key]
    out = {}
    for model, by_sub in per_model.items():
        missing = [s for s in subjects if s not in by_sub]
        if missing:
            raise ValueError(f"stimulus-permutation scores of {model!r} lack subjects {missing}")
        out[model] = np.stack([by_sub[s] for s in subjects], axis=2)
    return out


def apa_pairs(cfg: dict, bb: pd.DataFrame) -> pd.DataFrame:
    """The brain–brain rows APA uses: all ordered pairs, or with ``apa.partners: k`` the pairs
    of :func:`alignpatterns.patterns.pairs.partner_pairs` drawn from the stream
    (seed, "apa-partners") — the same pairs for every measure."""
    from alignpatterns.patterns.pairs import partner_pairs, select_pairs
    from alignpatterns.patterns.streams import stream

    k = cfg["apa"].get("partners")
    if k is None:
        return bb
    P = partner_pairs(len(cfg["subjects"]), int(k), stream(cfg["seed"], "apa-partners"))
    return select_pairs(bb, cfg["subjects"], P)


def load_boots(null_paths: Sequence[str], bb_boot_paths: Sequence[str], measure: str,
               subjects: Sequence[str], rois: Sequence[str]
               ) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Test scores under the measure's stimulus-bootstrap draws.

    Returns
    -------
    brain : ndarray, shape (n_draws, n_subjects, n_subjects, n_rois, n_rois)
        [draw, source subject, target subject, source ROI, target ROI] from the
        ``brain_brain_boot/<measure>/sub-<subject>.npz`` files.
    models : dict of candidate → ndarray, shape (n_draws, n_layers, n_subjects, n_rois)
        From the ``boot__<measure>`` arrays of the ``model_brain_null`` files.
    n_stimuli : int
        Test stimuli resampled by the draws.
    """
    subjects = list(subjects)
    brain = None
    n_stimuli = 0
    for p in bb_boot_paths:
        p = Path(p)
        arrs = io.load_arrays(p)
        if "boot" not in arrs or list(arrs["subjects"]) != subjects \
                or list(arrs["rois"]) != list(rois):
            raise ValueError(f"{p}: expected stimulus-bootstrap brain scores of subjects "
                             f"{subjects} and ROIs {list(rois)}")
        target = p.stem.removeprefix("sub-")
        if target not in subjects:
            raise ValueError(f"{p}: subject {target!r} is not in the config's subjects")
        if brain is None:
            brain = np.full((arrs["boot"].shape[0], len(subjects), len(subjects), len(rois),
                             len(rois)), np.nan)
        if arrs["boot"].shape[0] != brain.shape[0]:
            raise ValueError(f"{p}: {arrs['boot'].shape[0]} bootstrap draws, expected "
                             f"{brain.shape[0]} as the other subjects")
        brain[:, :, subjects.index(target)] = arrs["boot"]
        n_stimuli = int(arrs["n_stimuli"])
    if brain is None:
        brain = np.empty((0, len(subjects), len(subjects), len(rois), len(rois)))
    per_model: dict[str, dict[str, np.ndarray]] = {}
    for p in null_paths:
        p = Path(p)
        arrs = io.load_arrays(p)
        key = f"boot__{measure}"
        if key not in arrs:
            raise ValueError(f"{p}: no stimulus-bootstrap scores for measure {measure!r} "
                             f"(rerun model_brain with apa.n_bootstrap set)")
        if arrs[key].shape[0] != brain.shape[0]:
            raise ValueError(f"{p}: {arrs[key].shape[0]} stimulus-bootstrap draws, the "
                             f"brain–brain files have {brain.shape[0]}")
        per_model.setdefault(p.parent.name, {})[p.stem.removeprefix("sub-")] = arrs[key]
    models = {}
    for model, by_sub in per_model.items():
        missing = [s for s in subjects if s not in by_sub]
        if missing:
            raise ValueError(f"stimulus-bootstrap scores of {model!r} lack subjects {missing}")
        models[model] = np.stack([by_sub[s] for s in subjects], axis=2)
    return brain, models, n_stimuli


def apa(cfg: dict, measure: str, mb_path: str, bb_path: str, ceilings_path: str,
        null_paths: Sequence[str], out_apa: str, out_summary: str, out_nulls: str,
        out_confusion: str, boot_paths: Sequence[str] | None = None) -> None:
    """APA for one measure (all variants and candidates), the generic null profiles and ROI
    identification; with ``apa.n_bootstrap`` > 0 and the brain–brain bootstrap files
    ``boot_paths``, the subject × stimulus bootstrap of Δ beside the jackknife-t interval."""
    from alignpatterns.patterns.apa import generic_null_rows, roi_identification, run_apa
    from alignpatterns.patterns.apa_boot import bootstrap_columns

    mb = io.read_table(mb_path, "model_brain")
    bb = io.read_table(bb_path, "brain_brain")
    a = cfg["apa"]
    ceilings = io.read_table(ceilings_path, "ceilings")
    bb = apa_pairs(cfg, bb[bb["measure"] == measure])
    selections = list(a.get("selection", ["score"]))
    if "aps" in selections and len(cfg["subjects"]) < 6:
        log.warning("apa.selection 'aps' needs ≥ 6 subjects (jackknife resamples select from "
                    "S − 2 ≥ 4); found %d: layers are selected by score only",
                    len(cfg["subjects"]))
        selections = [x for x in selections if x != "aps"] or ["score"]
    missing = a.get("missing", "listwise")  # apa.missing: listwise | pairwise (docs/apa.md)
    n_perm, floor = int(a["n_permutations"]), (200 if measure.startswith("lp-") else 1000)
    if 0 < n_perm < floor:
        log.warning("apa.n_permutations = %d is below the %d stimulus permutations SPEC.md §4 "
                    "asks of %s: p_stimulus cannot go below %.4f and verdicts are coarse",
                    n_perm, floor, measure, 1 / (n_perm + 1))
    if "residual" in a["variants"] and len(cfg["rois"]) < 7:
        log.warning("apa variant 'residual' needs ≥ 7 ROIs (3 residual degrees of freedom after "
                    "an intercept and 2 covariates on R − 1 entries); found %d: its APS is NaN",
                    len(cfg["rois"]))
    rows, summary = run_apa(bb, mb[mb["measure"] == measure],
                            cfg["subjects"], cfg["rois"], measure, variants=a["variants"],
                            matches=a["match"], margin=a["margin"], ceilings=ceilings,
                            min_ceiling=a["min_ceiling"],
                            nulls=load_nulls(null_paths, measure, cfg["subjects"]),
                            selections=selections, ci_method=a.get("ci_method", "jackknife-t"),
                            n_bootstrap=int(a.get("n_bootstrap", 0)), seed=cfg["seed"],
                            missing=missing)
    if boot_paths is not None and a.get("partners") and int(a.get("n_bootstrap", 0)) > 0:
        log.warning("apa.partners: the subject × stimulus bootstrap of Δ is not drawn (a "
                    "resampled stand-in may be any other subject, so it needs every ordered "
                    "pair); delta_boot_* stay NaN")
        boot_paths = None
    if boot_paths is None:  # no bootstrap: NaN columns
        brain_boot, model_boot, n_test = np.empty((0,)), {}, 0
    else:
        brain_boot, model_boot, n_test = load_boots(null_paths, boot_paths, measure,
                                                    cfg["subjects"], cfg["rois"])
    summary = bootstrap_columns(summary, bb, mb[mb["measure"] == measure], cfg["subjects"],
                                cfg["rois"], measure, brain_boot, model_boot, n_test,
                                cfg["seed"], ceilings=ceilings,
                                min_ceiling=a["min_ceiling"], missing=missing)
    generic = generic_null_rows(bb, cfg["subjects"], cfg["rois"], measure,
                                variants=a["variants"], matches=a["match"], ceilings=ceilings,
                                min_ceiling=a["min_ceiling"], adjacency=roi_adjacency(cfg),
                                missing=missing)
    io.write_table(rows, out_apa, "apa", cfg)
    io.write_table(summary, out_summary, "apa_summary", cfg)
    confusion = roi_identification(bb, mb[mb["measure"] == measure], cfg["subjects"],
                                   cfg["rois"], measure, variants=a["variants"],
                                   matches=a["match"], ceilings=ceilings,
                                   min_ceiling=a["min_ceiling"],
                                   n_draws=a["n_identification_permutations"],
                                   seed=cfg["seed"], missing=missing)
    io.write_table(generic, out_nulls, "apa_nulls", cfg)
    io.write_table(confusion, out_confusion, "apa_confusion", cfg)


def whole_model(cfg: dict, measures: Sequence[str], model: str, features_path: str,
                mb_path: str, bb_path: str, info_path: str, outs: Sequence[str]) -> None:
    """The whole-model APA variant of one candidate under each measure (Mantel test).

    One job per model: the rows of each measure go to their own table (``outs``, in the order
    of ``measures``); every measure × model draws from its own permutation stream (SPEC.md §4).
    """
    from alignpatterns.patterns.apa import model_scores
    from alignpatterns.patterns.whole_model import whole_model_rows

    if len(measures) != len(outs):
        raise ValueError(f"whole_model: {len(measures)} measures but {len(outs)} outputs")
    mb_all = io.read_table(mb_path, "model_brain")
    mb_all = mb_all[mb_all["model"] == model]
    bb_all = io.read_table(bb_path, "brain_brain")
    feats, _ = load_features(features_path)
    a = cfg["apa"]
    lp = _lp_options(cfg, info_path)
    for measure, out in zip(measures, outs, strict=True):
        mb = mb_all[mb_all["measure"] == measure]
        if mb.empty:
            raise ValueError(f"{mb_path}: no {measure!r} scores for model {model!r}")
        (ms,) = model_scores(mb, cfg["subjects"], cfg["rois"])
        rows = whole_model_rows(feats, ms, bb_all[bb_all["measure"] == measure],
                                cfg["subjects"], cfg["rois"], measure, lp, a["match"],
                                a["n_mantel_permutations"], cfg["seed"])
        io.write_table(rows, out, "apa_whole_model", cfg)


def gather_tables(paths: Sequence[str], kind: str, out: str, cfg: dict) -> None:
    """Concatenate tables of one kind."""
    io.write_table(io.concat_tables(paths, kind), out, kind, cfg)


# --- brain_avg baseline (SPEC.md §4): the vertex-wise mean of k held-out subjects stands in -----

def brain_avg_scores(cfg: dict, measures: Sequence[str], target: str,
                     subject_paths: Sequence[str], info_path: str, outs: Sequence[str]) -> None:
    """A_{K→s} on test for one target subject under each measure, every k ≥ 2 of
    ``apa.brain_avg_k`` and every stand-in set K (table ``brain_avg``, one file per measure in
    ``outs``, in the order of ``measures``; k = 1 is in ``brain_brain`` already).

    A dataset without vertex correspondence (SPEC.md §1) gets an empty table and a logged
    reason; :func:`apa_brain_avg` reports it in every row.
    """
    from alignpatterns.patterns.brain_avg import (
        SCORE_COLUMNS,
        brain_avg_score_rows,
        check_vertex_correspondence,
    )

    a = cfg["apa"]
    ks = [int(k) for k in a["brain_avg_k"] if int(k) >= 2]
    try:
        check_vertex_correspondence(cfg["dataset"])
    except ValueError as err:
        log.warning("%s; skipped", err)
        ks = []
    subs = _load_subjects(subject_paths) if ks else {}
    subs = {s: subs[s] for s in cfg["subjects"] if s in subs}
    if len(measures) != len(outs):
        raise ValueError(f"brain_avg: {len(measures)} measures but {len(outs)} outputs")
    lp = _lp_options(cfg, info_path) if ks else None
    for measure, out in zip(measures, outs, strict=True):
        rows = (brain_avg_score_rows(subs, target, cfg["rois"], measure, ks,
                                     int(a["brain_avg_max_sets"]), cfg["seed"], lp,
                                     int(cfg["min_vertices"]), a["brain_avg_vertices"])
                if ks else [])
        io.write_table(pd.DataFrame(rows, columns=list(SCORE_COLUMNS)), out, "brain_avg", cfg)


def apa_brain_avg(cfg: dict, bb_path: str, score_paths: Sequence[str], ceilings_path: str,
                  out: str) -> None:
    """APS_brain_avg for every measure, variant, match, ROI and k (table ``apa_brain_avg``)."""
    from alignpatterns.patterns.brain_avg import (
        brain_avg_aps,
        check_vertex_correspondence,
        skipped_rows,
    )

    a = cfg["apa"]
    ks = [int(k) for k in a["brain_avg_k"]]
    if a.get("missing", "listwise") == "pairwise":
        log.info("apa_brain_avg stays listwise under apa.missing: pairwise (an ROI missing in "
                 "any subject is left out; docs/apa.md \"Missing cells\")")
    tables = []
    try:
        check_vertex_correspondence(cfg["dataset"])
        reason = None
    except ValueError as err:
        log.warning("%s; every row is NaN", err)
        reason = str(err)
    if reason is not None:
        tables = [skipped_rows(m, cfg["rois"], ks, a["variants"], a["match"],
                               len(cfg["subjects"]), reason) for m in cfg["measures"]]
    else:
        bb = io.read_table(bb_path, "brain_brain")
        scores = io.concat_tables(score_paths, "brain_avg")
        ceilings = io.read_table(ceilings_path, "ceilings")
        for m in cfg["measures"]:
            tables.append(brain_avg_aps(bb[bb["measure"] == m], scores[scores["measure"] == m],
                                        cfg["subjects"], cfg["rois"], m, ks, a["variants"],
                                        a["match"], ceilings, a["min_ceiling"]))
    df = (pd.concat(tables, ignore_index=True) if tables
          else pd.DataFrame(columns=list(io.TABLE_SCHEMAS["apa_brain_avg"])))
    io.write_table(df, out, "apa_brain_avg", cfg)
