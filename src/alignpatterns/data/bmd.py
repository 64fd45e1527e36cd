"""Reader for BOLD Moments (BMD) versionB prepared betas: fsLR32k, MNI152 and fsaverage.

The same code reads the real dataset and the synthetic one written by
:mod:`alignpatterns.synth.dataset`. File layout (``reference/bmd_format.md`` §4, §6)::

    derivatives/versionB/<space>/GLM/sub-XX/prepared_betas/
        fsLR32k:   sub-XX_organized_betas_task-{train,test}_normalized.pkl     (betas, stimorder)
        MNI152:    sub-XX_organized_betas_task-{train,test}_normalized.pkl     (betas, stimorder, mask)
        fsaverage: sub-XX_organized_betas_task-{train,test}_hemi-{left,right}_normalized.pkl
        sub-XX_noiseceiling_task-{train_n-3,test_n-10}.pkl                      (ncsnr, nc %[, mask])
        (fsaverage: sub-XX_noiseceiling_space-fsaverage_task-{task}_hemi-{hemi}_n-{n}.pkl)

ROIs come from a label file over the vertex axis (fsLR32k, fsaverage; :mod:`.rois`) or from the
subject's ``ROIs/ROI-<roi>_indices.pkl`` files (MNI152). Betas are loaded once per split and ROIs are
gathered from them, so at most one copy of the whole-brain betas is in memory. Preparation follows
SPEC.md §1 (:mod:`.prepare`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignpatterns.data.checks import check_betas, check_ids
from alignpatterns.data.prepare import (
    SPLITS,
    BMDVideos,
    DatasetReader,
    ROIData,
    SubjectData,
    SubjectSource,
    first_difference,
)
from alignpatterns.data.prepare import check_stimulus_ids as _check_ids_across
from alignpatterns.data.rois import LabelMap, load_labels, load_npy_labels, mni_roi_indices
from alignpatterns.data.safe_pickle import DataFormatError, load_pickle

__all__ = ["BMDLayout", "ROIData", "SubjectData", "load_betas", "load_noiseceiling",
           "load_atlas", "prepare_subject", "check_stimulus_ids", "REPS", "SPACES"]

log = logging.getLogger("alignpatterns")

REPS = {"train": 3, "test": 10}
SPACES = ("fsLR32k", "MNI152", "fsaverage")
HEMIS = ("left", "right")
#: Elements of the prepared-betas tuple per space.
ARITY = {"fsLR32k": 2, "fsaverage": 2, "MNI152": 3}


@dataclass(frozen=True)
class BMDLayout(BMDVideos, DatasetReader):
    """A BMD (or synthetic BMD-format) versionB dataset with whole-brain prepared betas.

    Parameters
    ----------
    root : Path
        Dataset root (the OpenNeuro ds005165 folder).
    space : str
        ``fsLR32k``, ``MNI152`` or ``fsaverage``.
    version : str
        ``B`` (versionA ships per-ROI files only: :mod:`.perroi`).
    atlas : str
        Name of a label file in ``derivatives/versionB/<space>/atlas/`` (used when ``labels`` is
        None; the synthetic dataset writes one).
    labels : str, optional
        A label file (:func:`~alignpatterns.data.rois.load_labels`) for fsLR32k / fsaverage.
    grayordinates : str, optional
        A 91k CIFTI file fixing the grayordinate order a dlabel is placed on.
    hemispheres : str
        ``merge`` (ROI ``V1`` = left + right parcels) or ``separate``.
    videos : str, optional
        Folder of ``NNNN.mp4`` (default: ``derivatives/stimuli_metadata/mp4_h264``).
    """

    root: Path
    space: str = "fsLR32k"
    version: str = "B"
    atlas: str = "synthetic"
    labels: str | None = None
    grayordinates: str | None = None
    hemispheres: str = "merge"
    videos_dir: str | None = None

    def __post_init__(self):
        if self.space not in SPACES or self.version != "B":
            raise ValueError(f"dataset space {self.space!r} / version {self.version!r}: "
                             f"prepared betas exist for versionB in {SPACES}")

    @property
    def glm(self) -> Path:
        return Path(self.root) / "derivatives" / f"version{self.version}" / self.space / "GLM"

    def prepared(self, subject: str) -> Path:
        return self.glm / f"sub-{subject}" / "prepared_betas"

    def betas(self, subject: str, split: str, hemi: str | None = None) -> Path:
        h = f"_hemi-{hemi}" if self.space == "fsaverage" else ""
        if self.space == "fsaverage" and hemi is None:
            h = "_hemi-{left,right}"
        return self.prepared(subject) / f"sub-{subject}_organized_betas_task-{split}{h}_normalized.pkl"

    def noiseceiling(self, subject: str, split: str, n: int, hemi: str | None = None) -> Path:
        if self.space == "fsaverage":
            return self.prepared(subject) / (f"sub-{subject}_noiseceiling_space-fsaverage_task-"
                                             f"{split}_hemi-{hemi}_n-{n}.pkl")
        return self.prepared(subject) / f"sub-{subject}_noiseceiling_task-{split}_n-{n}.pkl"

    def roi_dir(self, subject: str) -> Path:
        return self.glm / f"sub-{subject}" / "ROIs"

    def atlas_files(self, name: str) -> tuple[Path, Path]:
        base = Path(self.root) / "derivatives" / f"version{self.version}" / self.space / "atlas"
        stem = f"atlas-{name}_space-{self.space}_dseg"
        return base / f"{stem}.npy", base / f"{stem}.tsv"



    @property
    def annotations(self) -> Path:
        return Path(self.root) / "derivatives" / "stimuli_metadata" / "annotations.json"

    def subjects(self) -> list[str]:
        """Subjects with a prepared-betas folder, sorted (``"01"``, ``"02"``, ...)."""
        if not self.glm.exists():
            raise DataFormatError(f"{self.glm}: dataset folder not found")
        return sorted(p.name[4:] for p in self.glm.glob("sub-*") if (p / "prepared_betas").is_dir())

    def files(self, subject: str, split: str) -> Path:
        return self.betas(subject, split)

    def label_map(self) -> LabelMap:
        """The vertex labels (fsLR32k, fsaverage)."""
        if self.labels:
            return load_labels(self.labels, self.grayordinates)
        npy, tsv = self.atlas_files(self.atlas)
        if not npy.exists() and self.atlas != "synthetic":
            raise DataFormatError(
                f"{npy}: ROI label file not found; set dataset.labels to the {self.atlas!r} "
                f"label file (e.g. the HCP-MMP1.0 .dlabel.nii for {self.space}; docs/data.md)")
        return load_npy_labels(npy, tsv)

    def open_subject(self, subject: str) -> _WholeBrainSubject:
        return _WholeBrainSubject(self, subject)



def load_atlas(layout: BMDLayout, name: str) -> tuple[np.ndarray, dict[str, int]]:
    """Per-vertex integer labels and the name → label lookup of a named atlas."""
    lm = load_npy_labels(*layout.atlas_files(name))
    return lm.labels, lm.lookup


def _unpack(obj, path: Path, space: str):
    n = ARITY[space]
    want = "(betas, stimorder, mask)" if n == 3 else "(betas, stimorder)"
    if not isinstance(obj, (tuple, list)) or len(obj) != n:
        found = (f"a {len(obj)}-tuple" if isinstance(obj, (tuple, list))
                 else type(obj).__name__)
        raise DataFormatError(f"{path}: expected a {n}-tuple {want} ({space} prepared betas), "
                              f"found {found}")
    return obj


def load_betas(path: Path, split: str, n_vertices: int | None = None, space: str = "fsLR32k",
               start: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Load one prepared-betas pickle and check its structure.

    Returns
    -------
    betas : ndarray, float64, shape (n_stimuli, n_repetitions, n_vertices)
        Not copied when stored as float64.
    stimorder : list of str, length n_stimuli

    Raises
    ------
    DataFormatError
        Naming the file, what was expected and what was found.
    """
    obj = _unpack(load_pickle(path), path, space)
    order = obj[1]
    if isinstance(order, np.ndarray):
        order = order.tolist()
    if not isinstance(order, (list, tuple)):
        raise DataFormatError(f"{path}: expected the stimulus order as a list of ids at [1], "
                              f"found {type(order).__name__}")
    betas = check_betas(obj[0], path, split, REPS[split], len(order), n_vertices)
    order = check_ids(order, path, split, start)
    if space == "MNI152":
        _check_mask(obj[2], path, betas.shape[2])
    return betas, order


def _check_mask(mask, path, n_vox) -> None:
    if getattr(mask, "dataobj", None) is None:
        raise DataFormatError(f"{path}: expected a nibabel mask image at [2], found "
                              f"{type(mask).__name__}")
    try:
        values = np.asarray(mask.dataobj)
    except (OSError, ValueError) as err:
        # an image pickled after nib.load() refers to the authors' file; the voxel axis is then
        # checked against the ROI index files only
        log.warning("%s: mask image at [2] cannot be read (%s); not checked", path, err)
        return
    n = int(np.count_nonzero(values == 1))
    if n != n_vox:
        raise DataFormatError(f"{path}: expected the mask at [2] to have one voxel per beta "
                              f"column ({n_vox}), found {n} voxels equal to 1")


def load_noiseceiling(path: Path, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Load a ``(ncsnr, noiseceiling %[, mask])`` pickle; arrays of shape (n_vertices,)."""
    obj = load_pickle(path)
    if not isinstance(obj, (tuple, list)) or len(obj) < 2:
        raise DataFormatError(f"{path}: expected a tuple (ncsnr, noiseceiling), found "
                              f"{type(obj).__name__}")
    nc_snr, nc = (np.asarray(a, dtype=np.float64).ravel() for a in obj[:2])
    if nc_snr.shape != (n_vertices,) or nc.shape != (n_vertices,):
        raise DataFormatError(f"{path}: expected two arrays of {n_vertices} vertices, found "
                              f"{nc_snr.shape} and {nc.shape}")
    return nc_snr, nc


class _WholeBrainSubject(SubjectSource):
    """One subject's whole-brain betas (hemisphere blocks for fsaverage), gathered per ROI."""

    def __init__(self, layout: BMDLayout, subject: str):
        self.layout, self.subject = layout, subject
        self.ids, self.files, self.blocks = {}, {}, {}
        hemis = HEMIS if layout.space == "fsaverage" else (None,)
        for split in SPLITS:
            start = None
            if split == "test" and self.ids.get("train"):
                start = int(self.ids["train"][-1][3:]) + 1
            blocks, order = [], None
            for hemi in hemis:
                path = layout.betas(subject, split, hemi)
                b, o = load_betas(path, split, None, layout.space, start)
                if order is not None and o != order:
                    raise DataFormatError(
                        f"{path}: expected the stimulus order of "
                        f"{layout.betas(subject, split, hemis[0])}, found "
                        f"{first_difference(order, o)}")
                blocks.append(b)
                order = o
            self.ids[split], self.files[split], self.blocks[split] = order, str(
                layout.betas(subject, split)), blocks
        self.sizes = [b.shape[2] for b in self.blocks["train"]]
        for split in SPLITS:
            for hemi, b, n in zip(hemis, self.blocks[split], self.sizes, strict=True):
                if b.shape[2] != n:
                    raise DataFormatError(
                        f"{layout.betas(subject, split, hemi)}: expected {n} vertices as in "
                        f"{layout.betas(subject, 'train', hemi)}, found {b.shape[2]}")
        self.n_vertices = int(sum(self.sizes))
        self._labels = None
        self._nc = {}

    def roi_indices(self, roi: str) -> np.ndarray:
        lay = self.layout
        if lay.space == "MNI152":
            return mni_roi_indices(lay.roi_dir(self.subject), roi, lay.hemispheres,
                                   self.n_vertices)
        if self._labels is None:
            self._labels = lay.label_map()
            self._labels.check_length(self.n_vertices, self.files["train"])
        return self._labels.indices(roi, lay.hemispheres)

    def gather(self, split: str, idx: np.ndarray) -> np.ndarray:
        """Columns ``idx`` (into the concatenated vertex axis) of a split's betas."""
        blocks = self.blocks[split]
        if len(blocks) == 1:
            return blocks[0][:, :, idx]
        parts, offset = [], 0
        for b in blocks:
            sel = idx[(idx >= offset) & (idx < offset + b.shape[2])] - offset
            parts.append(b[:, :, sel])
            offset += b.shape[2]
        return np.concatenate(parts, axis=2)

    def roi_betas(self, roi):
        idx = self.roi_indices(roi)
        return {s: self.gather(s, idx) for s in SPLITS}, idx

    def roi_ncsnr(self, roi, split, vertices):
        if split not in self._nc:
            self._nc[split] = self._shipped_ncsnr(split)
        nc = self._nc[split]
        return None if nc is None else nc[vertices]

    def _shipped_ncsnr(self, split):
        lay, n = self.layout, REPS[split]
        if lay.space == "fsaverage":
            paths = [lay.noiseceiling(self.subject, split, n, h) for h in HEMIS]
            if not all(p.exists() for p in paths):
                return None
            return np.concatenate([load_noiseceiling(p, s)[0]
                                   for p, s in zip(paths, self.sizes, strict=True)])
        path = lay.noiseceiling(self.subject, split, n)
        return load_noiseceiling(path, self.n_vertices)[0] if path.exists() else None


def prepare_subject(layout: BMDLayout, subject: str, rois: Sequence[str], atlas: str | None = None,
                    reliability_threshold: float = 0.2, min_vertices: int = 10,
                    exclude_stimuli: Sequence[str] = ()) -> SubjectData:
    """Load, check and prepare one subject of a versionB whole-brain dataset (SPEC.md §1).

    Parameters
    ----------
    layout : BMDLayout
    subject : str
        Zero-padded subject id, e.g. ``"01"``.
    rois : sequence of str
        ROI names, in display order.
    atlas : str, optional
        Atlas name overriding ``layout.atlas`` (ignored when ``layout.labels`` is set).
    reliability_threshold, min_vertices, exclude_stimuli
        See :func:`alignpatterns.data.prepare.prepare`.
    """
    if atlas is not None and atlas != layout.atlas:
        layout = BMDLayout(**{**layout.__dict__, "atlas": atlas})
    return layout.prepare_subject(subject, rois, reliability_threshold, min_vertices,
                                  exclude_stimuli)


def check_stimulus_ids(subjects: Sequence[SubjectData], layout) -> None:
    """Stimulus ids must be identical (same order) in every subject (error names the file)."""
    _check_ids_across(subjects, layout.files)
