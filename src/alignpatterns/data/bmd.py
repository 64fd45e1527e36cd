"""Reader for BOLD Moments (BMD) versionB prepared betas (fsLR32k), and the synthetic twin.

The same code reads the real dataset and the synthetic one written by
:mod:`alignpatterns.synth.dataset`. Preparation follows SPEC.md §1:

- repetitions are averaged with ``nanmean``; a vertex that is NaN in all repetitions of any kept
  stimulus is dropped (never zero-imputed);
- vertices are selected on the **train** split only (ncsnr from ``*_noiseceiling_task-train_n-3.pkl``
  or computed from the train betas) with ncsnr ≥ ``reliability_threshold``;
- an ROI with fewer than ``min_vertices`` kept vertices is a *missing cell* (reported, NaN
  downstream), not an error;
- stimulus ids are checked against the expected order and across subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alignpatterns.data.safe_pickle import DataFormatError, load_pickle
from alignpatterns.measures.ceilings import ncsnr as compute_ncsnr

REPS = {"train": 3, "test": 10}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class BMDLayout:
    """Paths of a BMD (or synthetic BMD-format) dataset.

    Parameters
    ----------
    root : Path
        Dataset root (the OpenNeuro ds005165 folder).
    space : str
        Only ``fsLR32k`` so far.
    version : str
        Only ``B`` (versionB GLMsingle betas) so far.
    """

    root: Path
    space: str = "fsLR32k"
    version: str = "B"

    def __post_init__(self):
        if self.space != "fsLR32k" or self.version != "B":
            raise ValueError(f"dataset space {self.space!r} / version {self.version!r}: only "
                             "fsLR32k versionB is supported so far")

    @property
    def glm(self) -> Path:
        return Path(self.root) / "derivatives" / f"version{self.version}" / self.space / "GLM"

    def prepared(self, subject: str) -> Path:
        return self.glm / f"sub-{subject}" / "prepared_betas"

    def betas(self, subject: str, split: str) -> Path:
        return self.prepared(subject) / f"sub-{subject}_organized_betas_task-{split}_normalized.pkl"

    def noiseceiling(self, subject: str, split: str, n: int) -> Path:
        return self.prepared(subject) / f"sub-{subject}_noiseceiling_task-{split}_n-{n}.pkl"

    def atlas(self, name: str) -> tuple[Path, Path]:
        base = Path(self.root) / "derivatives" / f"version{self.version}" / self.space / "atlas"
        stem = f"atlas-{name}_space-{self.space}_dseg"
        return base / f"{stem}.npy", base / f"{stem}.tsv"

    @property
    def videos(self) -> Path:
        return Path(self.root) / "derivatives" / "stimuli_metadata" / "mp4_h264"

    @property
    def annotations(self) -> Path:
        return Path(self.root) / "derivatives" / "stimuli_metadata" / "annotations.json"

    def subjects(self) -> list[str]:
        """Subjects with a prepared-betas folder, sorted (``"01"``, ``"02"``, ...)."""
        if not self.glm.exists():
            raise DataFormatError(f"{self.glm}: dataset folder not found")
        return sorted(p.name[4:] for p in self.glm.glob("sub-*") if (p / "prepared_betas").is_dir())


def load_atlas(layout: BMDLayout, name: str) -> tuple[np.ndarray, dict[str, int]]:
    """Per-vertex integer labels and the name → label lookup of an atlas.

    Returns
    -------
    labels : ndarray of int, shape (n_vertices,)
    lookup : dict of str to int
    """
    npy, tsv = layout.atlas(name)
    for p in (npy, tsv):
        if not p.exists():
            raise DataFormatError(f"{p}: ROI label file not found (atlas {name!r})")
    try:
        labels = np.load(npy, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataFormatError(f"{npy}: expected a 1-D integer .npy label array ({err})") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f"{npy}: expected a 1-D integer label array, found "
                              f"{labels.dtype} shape {labels.shape}")
    lookup = {}
    lines = tsv.read_text().strip().splitlines()
    if not lines or lines[0].split("\t")[:2] != ["index", "name"]:
        raise DataFormatError(f"{tsv}: expected a header 'index<TAB>name'")
    for line in lines[1:]:
        idx, roi = line.split("\t")[:2]
        lookup[roi] = int(idx)
    return labels, lookup


def load_betas(path: Path, split: str, n_vertices: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Load one prepared-betas pickle and check its structure.

    Returns
    -------
    betas : ndarray, float64, shape (n_stimuli, n_repetitions, n_vertices)
    stimorder : list of str, length n_stimuli

    Raises
    ------
    DataFormatError
        Naming the file, what was expected and what was found.
    """
    obj = load_pickle(path)
    if not isinstance(obj, (tuple, list)) or len(obj) < 2:
        raise DataFormatError(f"{path}: expected a tuple (betas, stimorder[, mask]), found "
                              f"{type(obj).__name__}")
    betas, order = obj[0], obj[1]
    if not isinstance(betas, np.ndarray) or betas.ndim != 3:
        raise DataFormatError(f"{path}: expected betas as a 3-D array (stimuli, repetitions, "
                              f"vertices), found {type(betas).__name__} "
                              f"{getattr(betas, 'shape', '')}")
    order = [str(s) for s in order]
    reps = REPS[split]
    expected = (len(order), reps, n_vertices if n_vertices is not None else "V")
    if betas.shape[0] != len(order) or betas.shape[1] != reps or (
            n_vertices is not None and betas.shape[2] != n_vertices):
        hint = ""
        if reps in betas.shape and betas.shape[1] != reps:
            hint = " — the axes look swapped; BMD betas are (stimuli, repetitions, vertices)"
        raise DataFormatError(f"{path}: expected betas of shape (stimuli, repetitions, vertices) "
                              f"= {expected}, found {betas.shape}{hint}")
    if not np.issubdtype(betas.dtype, np.floating):
        raise DataFormatError(f"{path}: expected floating-point betas, found {betas.dtype}")
    if np.isinf(betas).any():
        raise DataFormatError(f"{path}: betas contain infinite values")
    return betas.astype(np.float64, copy=False), order


def load_noiseceiling(path: Path, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Load a ``(ncsnr, noiseceiling %)`` pickle; arrays of shape (n_vertices,)."""
    obj = load_pickle(path)
    if not isinstance(obj, (tuple, list)) or len(obj) < 2:
        raise DataFormatError(f"{path}: expected a tuple (ncsnr, noiseceiling), found "
                              f"{type(obj).__name__}")
    nc_snr, nc = (np.asarray(a, dtype=np.float64).ravel() for a in obj[:2])
    if nc_snr.shape != (n_vertices,) or nc.shape != (n_vertices,):
        raise DataFormatError(f"{path}: expected two arrays of {n_vertices} vertices, found "
                              f"{nc_snr.shape} and {nc.shape}")
    return nc_snr, nc


@dataclass
class ROIData:
    """Prepared data of one subject's ROI (kept vertices only).

    Attributes
    ----------
    vertices : ndarray of int, shape (v,)
        Indices of the kept vertices in the subject's vertex axis.
    train_reps, test_reps : ndarray, shape (n_stimuli, n_reps, v)
        Repetition-wise betas (NaN where a repetition is missing).
    train, test : ndarray, shape (n_stimuli, v)
        Repetition averages (nanmean).
    ncsnr_train : ndarray, shape (v,)
        Train-split ncsnr used for selection.
    ncsnr_test : ndarray, shape (v,)
        Test-split ncsnr (for ceilings).
    n_reps_test : float
        Effective number of test repetitions (harmonic mean of per-stimulus counts).
    """

    vertices: np.ndarray
    train_reps: np.ndarray
    test_reps: np.ndarray
    train: np.ndarray
    test: np.ndarray
    ncsnr_train: np.ndarray
    ncsnr_test: np.ndarray
    n_reps_test: float


@dataclass
class SubjectData:
    """One subject's prepared ROIs; ``rois[name]`` is None for a missing cell."""

    subject: str
    train_ids: list[str]
    test_ids: list[str]
    rois: dict[str, ROIData | None]
    summary: list[dict] = field(default_factory=list)


def _harmonic_reps(reps: np.ndarray) -> float:
    counts = np.sum(np.isfinite(reps[:, :, 0]), axis=1) if reps.shape[2] else np.array([1.0])
    counts = counts[counts > 0]
    return float(len(counts) / np.sum(1.0 / counts)) if len(counts) else float("nan")


def prepare_subject(layout: BMDLayout, subject: str, rois: Sequence[str], atlas: str,
                    reliability_threshold: float = 0.2, min_vertices: int = 10,
                    exclude_stimuli: Sequence[str] = ()) -> SubjectData:
    """Load, check and prepare one subject (SPEC.md §1).

    Parameters
    ----------
    layout : BMDLayout
    subject : str
        Zero-padded subject id, e.g. ``"01"``.
    rois : sequence of str
        ROI names of the atlas to prepare, in display order.
    atlas : str
        Atlas name (``atlas-<name>_space-fsLR32k_dseg``).
    reliability_threshold : float
        Keep vertices with train ncsnr ≥ this.
    min_vertices : int
        Fewer kept vertices than this make a missing cell.
    exclude_stimuli : sequence of str
        Stimulus ids (``vidNNNN``) removed from both splits.
    """
    labels, lookup = load_atlas(layout, atlas)
    unknown = [r for r in rois if r not in lookup]
    if unknown:
        raise DataFormatError(f"{layout.atlas(atlas)[1]}: ROIs {unknown} not in the atlas "
                              f"(available: {sorted(lookup)})")
    n_vert = labels.shape[0]
    data = {}
    for split in SPLITS:
        path = layout.betas(subject, split)
        betas, order = load_betas(path, split, n_vert)
        keep = np.array([s not in set(exclude_stimuli) for s in order])
        data[split] = (betas[keep], [s for s, k in zip(order, keep, strict=True) if k], path)
    if set(data["train"][1]) & set(data["test"][1]):
        raise DataFormatError(f"{data['test'][2]}: test stimulus ids overlap the train ids")

    ncsnr_tr = _ncsnr_from_file_or_betas(layout.noiseceiling(subject, "train", 3),
                                         data["train"][0], n_vert)
    ncsnr_te = _ncsnr_from_file_or_betas(layout.noiseceiling(subject, "test", 10),
                                         data["test"][0], n_vert)
    out, summary = {}, []
    for roi in rois:
        in_roi = np.flatnonzero(labels == lookup[roi])
        rel = ncsnr_tr[in_roi]
        ok = np.isfinite(rel) & (rel >= reliability_threshold)
        for split in SPLITS:  # drop vertices NaN in all repetitions of any stimulus
            betas = data[split][0][:, :, in_roi]
            ok &= ~np.any(np.all(np.isnan(betas), axis=1), axis=0)
        idx = in_roi[ok]
        row = {"subject": subject, "roi": roi, "n_vertices": int(in_roi.size),
               "n_reliable": int(idx.size),
               "median_ncsnr": float(np.nanmedian(rel)) if rel.size else float("nan"),
               "missing": idx.size < min_vertices, "reason": ""}
        if idx.size < min_vertices:
            row["reason"] = (f"{idx.size} of {in_roi.size} vertices have train ncsnr ≥ "
                             f"{reliability_threshold} (need {min_vertices})")
            out[roi] = None
        else:
            tr = data["train"][0][:, :, idx]
            te = data["test"][0][:, :, idx]
            out[roi] = ROIData(vertices=idx, train_reps=tr, test_reps=te,
                               train=np.nanmean(tr, axis=1), test=np.nanmean(te, axis=1),
                               ncsnr_train=ncsnr_tr[idx], ncsnr_test=ncsnr_te[idx],
                               n_reps_test=_harmonic_reps(te))
        summary.append(row)
    return SubjectData(subject=subject, train_ids=data["train"][1], test_ids=data["test"][1],
                       rois=out, summary=summary)


def _ncsnr_from_file_or_betas(path: Path, betas: np.ndarray, n_vert: int) -> np.ndarray:
    if path.exists():
        return load_noiseceiling(path, n_vert)[0]
    return compute_ncsnr(betas)[0]


def check_stimulus_ids(subjects: Sequence[SubjectData], layout: BMDLayout) -> None:
    """Stimulus ids must be identical (same order) in every subject.

    Raises
    ------
    DataFormatError
        Naming the first subject's file that differs from the first subject.
    """
    if not subjects:
        return
    ref = subjects[0]
    for sd in subjects[1:]:
        for split in SPLITS:
            a = getattr(ref, f"{split}_ids")
            b = getattr(sd, f"{split}_ids")
            if a != b:
                diff = sorted(set(a) ^ set(b))[:5]
                what = (f"different ids (e.g. {diff})" if diff
                        else "the same ids in a different order")
                raise DataFormatError(
                    f"{layout.betas(sd.subject, split)}: expected the {len(a)} {split} stimulus "
                    f"ids of sub-{ref.subject}, found {len(b)} with {what}")
