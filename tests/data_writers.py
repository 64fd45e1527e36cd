"""Write miniature datasets in each real on-disk format (``reference/bmd_format.md``).

Every writer takes the same subject betas (:func:`mini_betas`) and lays them out exactly as the
real files (names, keys, tuple structure, dtypes, axis order; sizes shrunk), so tests can feed the
same numbers through two formats and compare.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST, N_VERT = 12, 6, 40
#: Bilateral ROIs: name → (left vertex indices, right vertex indices) of the vertex axis.
ROIS = {"A": (np.arange(0, 8), np.arange(20, 27)), "B": (np.arange(8, 15), np.arange(27, 35))}
#: fsaverage/fsLR hemisphere split of the miniature vertex axis (left = [0, 20)).
N_LEFT = 20
MASK_SHAPE = (4, 5, 3)


def dump(path: Path, obj, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def mini_betas(seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST,
               n_vert: int = N_VERT) -> tuple[np.ndarray, np.ndarray]:
    """Train (n_train, 3, V) and test (n_test, 10, V) betas, z-scored with train statistics.

    Vertices 0–34 carry a stimulus signal (reliable), 35–39 are noise.
    """
    rng = np.random.default_rng(seed)
    sig = rng.standard_normal((n_train + n_test, n_vert)) * np.where(np.arange(n_vert) < 35, 2, 0)
    tr = sig[:n_train, None] + rng.standard_normal((n_train, 3, n_vert))
    te = sig[n_train:, None] + rng.standard_normal((n_test, 10, n_vert))
    mu, sd = tr.reshape(-1, n_vert).mean(0), tr.reshape(-1, n_vert).std(0, ddof=1)
    return (tr - mu) / sd, (te - mu) / sd


def ids(n: int, start: int = 1) -> list[str]:
    return [f"vid{i:04d}" for i in range(start, start + n)]


def labels_tsv(path_npy: Path, labels: np.ndarray, names: dict[str, int]) -> None:
    path_npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(path_npy, labels)
    path_npy.with_suffix(".tsv").write_text(
        "index\tname\n" + "".join(f"{k}\t{n}\n" for n, k in names.items()))


def glasser_style_labels(n_vert: int = N_VERT) -> tuple[np.ndarray, dict[str, int]]:
    """Per-vertex keys with Glasser names L_A_ROI, R_A_ROI, ... (keys deliberately scrambled)."""
    labels = np.zeros(n_vert, dtype=np.int32)
    names = {}
    for k, (roi, (left, right)) in enumerate(ROIS.items()):
        labels[left], labels[right] = 100 + k, 200 + k
        names[f"L_{roi}_ROI"], names[f"R_{roi}_ROI"] = 100 + k, 200 + k
    return labels, names


def _prepared(root, space, sub):
    return root / "derivatives" / "versionB" / space / "GLM" / f"sub-{sub}" / "prepared_betas"


def write_fslr(root: Path, sub: str, tr, te, noiseceiling: bool = False) -> None:
    """versionB fsLR32k: ``(betas, stimorder)`` per split, labels as a named atlas."""
    p = _prepared(root, "fsLR32k", sub)
    dump(p / f"sub-{sub}_organized_betas_task-train_normalized.pkl", (tr, ids(len(tr))))
    dump(p / f"sub-{sub}_organized_betas_task-test_normalized.pkl",
         (te, ids(len(te), len(tr) + 1)))
    if noiseceiling:
        from alignpatterns.measures.ceilings import ncsnr

        for split, b, n in (("train", tr, 3), ("test", te, 10)):
            dump(p / f"sub-{sub}_noiseceiling_task-{split}_n-{n}.pkl", ncsnr(b, n=n))
    labels, names = glasser_style_labels(tr.shape[2])
    atlas = root / "derivatives" / "versionB" / "fsLR32k" / "atlas"
    labels_tsv(atlas / "atlas-mini_space-fsLR32k_dseg.npy", labels, names)


def mask_image(n_vox: int):
    """A nibabel mask with ``n_vox`` ones (C order) in a MASK_SHAPE volume."""
    import nibabel as nib

    m = np.zeros(int(np.prod(MASK_SHAPE)), dtype=np.float64)
    m[np.linspace(0, m.size - 1, n_vox).round().astype(int)] = 1
    return nib.Nifti1Image(m.reshape(MASK_SHAPE), np.diag([2.0, 2.0, 2.0, 1.0]))


def write_mni(root: Path, sub: str, tr, te) -> None:
    """versionB MNI152: ``(betas, stimorder, mask)`` and ``ROIs/ROI-<lr><roi>_indices.pkl``."""
    p = _prepared(root, "MNI152", sub)
    mask = mask_image(tr.shape[2])
    dump(p / f"sub-{sub}_organized_betas_task-train_normalized.pkl", (tr, ids(len(tr)), mask))
    dump(p / f"sub-{sub}_organized_betas_task-test_normalized.pkl",
         (te, ids(len(te), len(tr) + 1), mask))
    vox = np.argwhere(np.asarray(mask.dataobj) == 1)  # C order = the betas' voxel axis
    for roi, halves in ROIS.items():
        for h, idx in zip("lr", halves, strict=True):
            dump(p.parent / "ROIs" / f"ROI-{h}{roi}_indices.pkl", (vox[idx], idx, mask))


def write_fsaverage(root: Path, sub: str, tr, te) -> None:
    """versionB fsaverage: per-hemisphere ``(betas, stimorder)`` files; labels over left+right."""
    p = _prepared(root, "fsaverage", sub)
    for hemi, sl in (("left", slice(0, N_LEFT)), ("right", slice(N_LEFT, None))):
        dump(p / f"sub-{sub}_organized_betas_task-train_hemi-{hemi}_normalized.pkl",
             (tr[:, :, sl], ids(len(tr))))
        dump(p / f"sub-{sub}_organized_betas_task-test_hemi-{hemi}_normalized.pkl",
             (te[:, :, sl], ids(len(te), len(tr) + 1)))
    labels, names = glasser_style_labels(tr.shape[2])
    atlas = root / "derivatives" / "versionB" / "fsaverage" / "atlas"
    labels_tsv(atlas / "atlas-mini_space-fsaverage_dseg.npy", labels, names)


def write_allvoxel(root: Path, sub: str, tr, te) -> None:
    """versionB MNI152 ``prepared_allvoxel_pkl``: one dict per hemisphere ROI, and WB."""
    d = root / "derivatives" / "versionB" / "MNI152" / "prepared_allvoxel_pkl" / f"sub-{sub}"
    for roi, halves in ROIS.items():
        for h, idx in zip("lr", halves, strict=True):
            dump(d / f"sub-{sub}_roi-{h}{roi}_betas_normalized.pkl",
                 {"train_data_allvoxel": tr[:, :, idx], "test_data_allvoxel": te[:, :, idx],
                  "train_noiseceiling_allvoxel": np.zeros(idx.size)})
    dump(d / f"sub-{sub}_roi-WB_betas_normalized.pkl",
         {"train_data_allvoxel": tr, "test_data_allvoxel": te})


def write_version_a(root: Path, sub: str, tr, te, empty: tuple[str, ...] = ()) -> None:
    """versionA ``TRavg-56789`` bilateral per-ROI dicts; ROIs in ``empty`` have 0 voxels."""
    d = (root / "derivatives" / "versionA" / "MNI152" / "prepared_data" / "prepared_allvoxel_pkl"
         / "TRavg56789" / f"sub-{sub}")
    for roi, halves in ROIS.items():
        idx = np.array([], dtype=int) if roi in empty else np.concatenate(halves)
        dump(d / f"{roi}_TRavg-56789_allvoxel.pkl",
             {"train_data_allvoxel": tr[:, :, idx], "test_data_allvoxel": te[:, :, idx],
              "noiseceiling_train": np.zeros(idx.size), "noiseceiling_test": np.zeros(idx.size)})


def write_algonauts(root: Path, sub: str, train_all) -> None:
    """Algonauts 2021: ``{'train': (n, 3, n_vox)}`` per mini-track ROI (protocol 2, as released);
    ``WB.pkl`` in the full track with a ``voxel_mask``."""
    mini = root / "participants_data_v2021" / "mini_track" / f"sub{sub}"
    for roi, halves in ROIS.items():
        dump(mini / f"{roi}.pkl", {"train": train_all[:, :, np.concatenate(halves)]}, protocol=2)
    mask = np.asarray(mask_image(train_all.shape[2]).dataobj)
    dump(root / "participants_data_v2021" / "full_track" / f"sub{sub}" / "WB.pkl",
         {"train": train_all, "voxel_mask": mask}, protocol=2)


def write_videos(folder: Path, n: int, names=lambda i: f"{i:04d}.mp4") -> None:
    """Tiny valid mp4 files (2 frames of 16×16) for stimuli 1..n."""
    from alignpatterns.synth.stimuli import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    for i in range(1, n + 1):
        write_mp4(folder / names(i), video, fps=2)
