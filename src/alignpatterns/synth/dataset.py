"""Write a complete synthetic dataset in the BOLD Moments versionB fsLR32k on-disk format.

Layout (``reference/bmd_format.md`` §4, §6, §8, §11; sizes shrunk)::

    <root>/participants.tsv
    <root>/derivatives/stimuli_metadata/annotations.json
    <root>/derivatives/stimuli_metadata/mp4_h264/0001.mp4 ...
    <root>/derivatives/versionB/fsLR32k/GLM/sub-01/prepared_betas/
        sub-01_organized_betas_task-{train,test}_normalized.pkl   # (betas, stimorder)
        sub-01_noiseceiling_task-{train_n-1,train_n-3,test_n-1,test_n-10}.pkl  # (ncsnr, nc%)
    <root>/derivatives/versionB/fsLR32k/atlas/atlas-synthetic_space-fsLR32k_dseg.{npy,tsv}
    <root>/ground_truth.json                                       # read by tests only

The generator network reads the videos through the same decoder and frame policy as feature
extraction, so the ``oracle`` candidate sees exactly what drove the responses.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from alignpatterns.io import dir_mode, remove_stale_temps, write_json
from alignpatterns.measures.ceilings import ncsnr as compute_ncsnr
from alignpatterns.patterns.adjacency import write_adjacency
from alignpatterns.synth import responses as R
from alignpatterns.synth import truth as T

#: Generator architecture (a ``resources/models.yaml`` name).
GENERATOR = "resnetv2_18_gn"
N_TRAIN_REPS, N_TEST_REPS = 3, 10
ATLAS_NAME = "synthetic"
#: Frames written per mp4, frames per second.
VIDEO_FRAMES, VIDEO_FPS = 8, 8
#: Threads (torch and BLAS) the synthesis always computes with, whatever the caller was given: the
#: generator's float32 features and the SVDs differ in their last bits between thread counts, and
#: the principal components the latents are built from amplify that into a different dataset.
SYNTH_THREADS = 2
#: Verdict margin δ of the oracle's noise-free ``expected_pass`` (SPEC.md §4 default).
EXPECTED_PASS_MARGIN = 0.1
#: SPEC.md §5 constraints on the generator's layer CKA.
MAX_FIRST_LAST_CKA, MAX_DISTINCT_DRIVER_CKA = 0.7, 0.95


class SynthesisError(RuntimeError):
    """The generator does not satisfy the ground-truth constraints."""


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def _linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    from alignpatterns.measures import linear_cka

    return float(linear_cka(X.astype(np.float64), Y.astype(np.float64)))


def driver_layers(layer_cka: np.ndarray, max_cka: float = MAX_DISTINCT_DRIVER_CKA) -> list[int]:
    """Generator layers that drive ROIs: the first layer, then greedily each next layer whose
    CKA with the previously chosen one is ≤ ``max_cka``.

    Parameters
    ----------
    layer_cka : ndarray, shape (n_layers, n_layers)

    Returns
    -------
    list of int
        Layer indices, shallow to deep.
    """
    n = layer_cka.shape[0]
    chosen = [0]
    for j in range(1, n):
        if layer_cka[chosen[-1], j] <= max_cka:
            chosen.append(j)
    return chosen


def roi_positions(n_rois: int, n_layers: int) -> np.ndarray:
    """Hierarchy positions (in layer units) of ``n_rois`` ROIs spread over ``n_layers`` layers."""
    return np.linspace(0.0, n_layers - 1.0, n_rois)


def synthesize(out: str | os.PathLike, seed: int = 0, subjects: int = 6, rois: int = 10,
               train: int = 200, test: int = 60, n_frames: int = 4, size: int = 112,
               design: R.ResponseDesign | None = None) -> dict:
    """Generate the dataset into ``out`` (replaced atomically) and return the ground truth.

    Parameters
    ----------
    out : path-like
        Dataset root. Written to a temporary sibling directory first, then moved into place.
    seed : int
        Master seed; every random stream derives from it.
    subjects, rois, train, test : int
        Number of subjects, ROIs, train and test videos.
    n_frames, size : int
        Frame policy the generator reads the videos with (must match the features config).
    design : ResponseDesign, optional
        Generative-model parameters.

    Notes
    -----
    Computes on :data:`SYNTH_THREADS` torch and BLAS threads whatever the process was given
    (restored afterwards), so the same arguments give byte-identical files on one machine type
    under any ``--cores``.
    """
    from alignpatterns.features.extract import build_model, extract_layers
    from alignpatterns.features.frames import read_frame_set
    from alignpatterns.features.registry import generator_seed, load_registry
    from alignpatterns.synth import stimuli

    design = design or R.ResponseDesign()
    if rois > len(R.ROI_NAMES):
        raise ValueError(f"at most {len(R.ROI_NAMES)} synthetic ROIs are supported, asked {rois}")
    if subjects < 2 or train < 10 or test < 10:
        raise ValueError("need ≥ 2 subjects and ≥ 10 train and test videos")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)  # left by a synthesis that was killed
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp",
                                dir=out.parent))
    try:
        with _fixed_threads(SYNTH_THREADS):
            truth = _write(tmp, seed, subjects, rois, train, test, n_frames, size, design,
                           build_model, extract_layers, read_frame_set, generator_seed,
                           load_registry, stimuli)
        os.chmod(tmp, dir_mode())  # mkdtemp creates 0700
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return truth


@contextmanager
def _fixed_threads(n: int):
    """Run the block on ``n`` torch intra-op and BLAS/OpenMP threads, then restore both."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _write(root, seed, n_subjects, n_rois, n_train, n_test, n_frames, size, design,
           build_model, extract_layers, read_frame_set, generator_seed, load_registry, stimuli):
    ss = np.random.SeedSequence(seed)
    stim_ss, latent_ss, subj_ss = ss.spawn(3)
    n_stim = n_train + n_test
    ids = [f"{i:04d}" for i in range(1, n_stim + 1)]

    # --- stimuli: videos and annotations -------------------------------------------------------
    meta = root / "derivatives" / "stimuli_metadata"
    vid_dir = meta / "mp4_h264"
    vid_dir.mkdir(parents=True)
    params = stimuli.sample_stimulus_params(n_stim, np.random.default_rng(stim_ss))
    annotations = {}
    for i, (vid, p) in enumerate(zip(ids, params, strict=True)):
        video = stimuli.equalize_luminance(stimuli.render_video(p, VIDEO_FRAMES, size))
        stimuli.write_mp4(vid_dir / f"{vid}.mp4", video, fps=VIDEO_FPS)
        annotations[vid] = stimuli.annotation(p, "train" if i < n_train else "test", index=i + 1)
        annotations[vid]["bmd_matrixfilename"] = f"vid_idx{vid}"
    (meta / "annotations.json").write_text(json.dumps(annotations, indent=1, sort_keys=True))

    # --- generator -----------------------------------------------------------------------------
    spec = load_registry()[GENERATOR]
    gseed = generator_seed(seed)
    frames = read_frame_set([vid_dir / f"{v}.mp4" for v in ids], n_frames, size)
    feats = extract_layers(build_model(spec, "random", gseed), frames, spec.layers)
    layer_feats = [feats[name] for name in spec.layers]
    layer_cka = np.array([[_linear_cka(a, b) for b in layer_feats] for a in layer_feats])

    roi_names = list(R.ROI_NAMES[:n_rois])
    driver_idx = driver_layers(layer_cka)
    positions = roi_positions(n_rois, len(driver_idx))
    shared = R.shared_latents([layer_feats[i] for i in driver_idx], roi_names, positions, design,
                              np.random.default_rng(latent_ss))
    true_layer = {r: int(driver_idx[int(np.argmax(shared.weights[r]))]) for r in roi_names}
    drivers = {r: [spec.layers[driver_idx[i]] for i in np.flatnonzero(shared.weights[r])]
               for r in roi_names}
    _check_generator(layer_cka, true_layer, spec.layers)
    _check_depth_mix(shared.weights, design.mix_width)

    # --- ROI sizes and atlas -------------------------------------------------------------------
    size_rng = np.random.default_rng(latent_ss.spawn(1)[0])
    lo, hi = design.size_range
    sizes = np.round(np.geomspace(lo, hi, n_rois)).astype(int)
    size_rng.shuffle(sizes)
    n_unlabeled = int(0.15 * sizes.sum())
    n_vert = int(sizes.sum() + n_unlabeled)
    labels = np.zeros(n_vert, dtype=np.int16)
    start = n_unlabeled // 2
    roi_slices = {}
    for k, (roi, sz) in enumerate(zip(roi_names, sizes, strict=True)):
        roi_slices[roi] = slice(start, start + sz)
        labels[start:start + sz] = k + 1
        start += sz
    atlas_dir = root / "derivatives" / "versionB" / "fsLR32k" / "atlas"
    atlas_dir.mkdir(parents=True)
    np.save(atlas_dir / f"atlas-{ATLAS_NAME}_space-fsLR32k_dseg.npy", labels)
    (atlas_dir / f"atlas-{ATLAS_NAME}_space-fsLR32k_dseg.tsv").write_text(
        "index\tname\n" + "".join(f"{k + 1}\t{r}\n" for k, r in enumerate(roi_names)))
    # the ROIs lie one after another along the vertex axis (the axis of spatial smoothing)
    chain = np.eye(n_rois, k=1, dtype=bool) | np.eye(n_rois, k=-1, dtype=bool)
    write_adjacency(atlas_dir / f"atlas-{ATLAS_NAME}_space-fsLR32k_adjacency.tsv", chain,
                    roi_names)

    # --- subjects ------------------------------------------------------------------------------
    medians = np.geomspace(*design.ncsnr_median, n_rois)
    subjects = [f"{s:02d}" for s in range(1, n_subjects + 1)]
    true_ncsnr, noiseless = {}, {}
    train_ids = [f"vid{v}" for v in ids[:n_train]]
    test_ids = [f"vid{v}" for v in ids[n_train:]]
    for sub, sub_ss in zip(subjects, subj_ss.spawn(n_subjects), strict=True):
        rng = np.random.default_rng(sub_ss)
        signal = np.zeros((n_stim, n_vert))
        snr = np.zeros(n_vert)
        # unlabeled vertices: weak generic signal
        un = labels == 0
        signal[:, un] = R._project(shared.global_factor,
                                   R._smooth_weights(rng, 1, int(un.sum()), 0.0))
        snr[un] = R.vertex_ncsnr(int(un.sum()), 0.15, design, rng)
        for k, roi in enumerate(roi_names):
            sl = roi_slices[roi]
            sig, _parts = R.subject_signal(shared, roi, sl.stop - sl.start, design, rng)
            signal[:, sl] = sig
            snr[sl] = R.vertex_ncsnr(sl.stop - sl.start, medians[k], design, rng)
        noiseless[sub] = signal * snr
        true_ncsnr[sub] = snr
        betas_tr = (noiseless[sub][:n_train, None, :]
                    + R.trial_noise(rng, n_train, N_TRAIN_REPS, n_vert, design.smooth_sigma))
        betas_te = (noiseless[sub][n_train:, None, :]
                    + R.trial_noise(rng, n_test, N_TEST_REPS, n_vert, design.smooth_sigma))
        # z-score per vertex with train statistics (one session here), as the BMD scripts do
        mu = betas_tr.reshape(-1, n_vert).mean(axis=0)
        sd = betas_tr.reshape(-1, n_vert).std(axis=0, ddof=1)
        betas_tr = (betas_tr - mu) / sd
        betas_te = (betas_te - mu) / sd
        pdir = (root / "derivatives" / "versionB" / "fsLR32k" / "GLM" / f"sub-{sub}"
                / "prepared_betas")
        pdir.mkdir(parents=True)
        _pickle(pdir / f"sub-{sub}_organized_betas_task-train_normalized.pkl",
                (betas_tr, list(train_ids)))
        _pickle(pdir / f"sub-{sub}_organized_betas_task-test_normalized.pkl",
                (betas_te, list(test_ids)))
        for task, betas, n in (("train", betas_tr, 1), ("train", betas_tr, 3),
                               ("test", betas_te, 1), ("test", betas_te, 10)):
            _pickle(pdir / f"sub-{sub}_noiseceiling_task-{task}_n-{n}.pkl",
                    compute_ncsnr(betas, n=n))
    (root / "participants.tsv").write_text(
        "participant_id\tage\tsex\n" + "".join(f"sub-{s}\tn/a\tn/a\n" for s in subjects))

    truth = {
        "seed": int(seed),
        "generator": GENERATOR,
        "generator_seed": int(gseed),
        "generator_layers": list(spec.layers),
        "layer_cka": layer_cka.round(6).tolist(),
        "roi_layers": drivers,
        "roi_layer_weights": {r: shared.weights[r].round(6).tolist() for r in roi_names},
        "roi_true_layer": true_layer,
        "roi_true_layer_name": {r: spec.layers[true_layer[r]] for r in roi_names},
        "roi_positions": dict(zip(roi_names, positions.round(6).tolist(), strict=True)),
        "rois": roi_names,
        "subjects": subjects,
        "roi_sizes": dict(zip(roi_names, sizes.tolist(), strict=True)),
        "snr": {"median_ncsnr": dict(zip(roi_names, medians.round(6).tolist(), strict=True))},
        "true_ncsnr": {s: true_ncsnr[s].round(6).tolist() for s in subjects},
        "variance_fractions": dict(design.fractions),
        "noise_fractions": dict(R.NOISE_FRACTIONS),
        "design": {k: v for k, v in asdict(design).items() if k != "fractions"},
        "indistinguishable_groups": _groups_by_true_layer(true_layer),
        "n_train": n_train, "n_test": n_test,
        "frames": {"n_frames": n_frames, "size": size},
    }
    test_data = T.roi_test_data(noiseless, true_ncsnr, roi_slices, n_train)
    truth["expected_pattern"], oracle = T.noise_free_truth(
        test_data, [f[n_train:] for f in layer_feats], list(spec.layers),
        margin=EXPECTED_PASS_MARGIN)
    truth["expected_pattern"]["lp-ridge-pearson"], truth["expected_pattern_lp_n_components"] = (
        T.expected_lp_pattern(noiseless, true_ncsnr, roi_slices, n_train))
    truth["expected_oracle"] = oracle
    truth["expected_pass"] = {m: {r: v["passes"] for r, v in rows.items()}
                              for m, rows in oracle.items()}
    truth["expected_pass_margin"] = EXPECTED_PASS_MARGIN
    write_json(root / "ground_truth.json", truth)
    return truth


def _check_generator(layer_cka: np.ndarray, true_layer: dict, layers) -> None:
    used = sorted(set(true_layer.values()))
    first_last = layer_cka[used[0], used[-1]]
    if first_last > MAX_FIRST_LAST_CKA:
        raise SynthesisError(
            f"generator layer CKA({layers[used[0]]}, {layers[used[-1]]}) = {first_last:.3f} > "
            f"{MAX_FIRST_LAST_CKA}: the hierarchy is not graded (SPEC.md §5)")
    for i in used:
        for j in used:
            if i < j and layer_cka[i, j] > MAX_DISTINCT_DRIVER_CKA:
                raise SynthesisError(
                    f"generator layers {layers[i]} and {layers[j]} drive different ROIs but have "
                    f"CKA {layer_cka[i, j]:.3f} > {MAX_DISTINCT_DRIVER_CKA} (SPEC.md §5)")


def _check_depth_mix(weights: dict[str, np.ndarray], mix_width: float) -> None:
    """SPEC.md §5: every ROI's generator latent mixes 2–3 adjacent driving layers.

    Parameters
    ----------
    weights : dict of str to ndarray, each (n_drivers,)
        Depth weights per ROI (``SharedLatents.weights``).
    """
    for roi, w in weights.items():
        used = np.flatnonzero(w)
        if not (2 <= len(used) <= 3 and np.all(np.diff(used) == 1)):
            raise SynthesisError(
                f"ROI {roi} mixes driving layers {used.tolist()} "
                f"(weights {np.round(w, 3).tolist()}) at mix_width {mix_width}; SPEC.md §5 asks "
                f"for 2–3 adjacent layers: widen ResponseDesign.mix_width")


def _groups_by_true_layer(true_layer: dict) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for roi, layer in true_layer.items():
        groups.setdefault(layer, []).append(roi)
    return [g for g in groups.values() if len(g) > 1]
