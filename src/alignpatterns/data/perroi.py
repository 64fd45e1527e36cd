"""Reader for BMD per-ROI pickles: versionB MNI152 ``prepared_allvoxel_pkl`` and versionA.

Layout (``reference/bmd_format.md`` §5, §7)::

    versionB: derivatives/versionB/MNI152/prepared_allvoxel_pkl/sub-XX/
                  sub-XX_roi-<roi>_betas_normalized.pkl        (<roi> = lV1v, rEBA, ..., WB)
    versionA: derivatives/versionA/MNI152/prepared_data/prepared_allvoxel_pkl/TRavg56789/sub-XX/
                  <ROI>_TRavg-56789_allvoxel.pkl                (<ROI> = V1v, ..., WB; bilateral)

Each file is a dict with ``train_data_allvoxel`` (n_train, 3, N) and ``test_data_allvoxel``
(n_test, 10, N); only these two keys are relied on. The files store no stimulus order: ids are the
BMD numbering (``vid0001``… train, then test). versionB ROIs come per hemisphere: with
``hemispheres: merge`` the ROI ``V1v`` is ``lV1v`` and ``rV1v`` concatenated on the voxel axis.
An ROI with 0 voxels in a subject (versionA sub-06 TOS, sub-07 TOS and RSC) is a missing cell.
Noise ceilings are computed from the betas (SPEC.md §1). Voxels are subject-specific, so there is
no vertex correspondence across subjects (SPEC.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignpatterns.data.checks import check_betas, implied_ids
from alignpatterns.data.prepare import SPLITS, BMDVideos, DatasetReader, SubjectSource
from alignpatterns.data.safe_pickle import DataFormatError, load_pickle

__all__ = ["BMDPerROI", "load_roi_pickle", "KEYS"]

KEYS = {"train": "train_data_allvoxel", "test": "test_data_allvoxel"}
REPS = {"train": 3, "test": 10}


@dataclass(frozen=True)
class BMDPerROI(BMDVideos, DatasetReader):
    """A BMD dataset of per-ROI pickles.

    Parameters
    ----------
    root : Path
    version : str
        ``A`` (``TRavg-56789`` files, bilateral ROIs) or ``B`` (MNI152 ``prepared_allvoxel_pkl``).
    hemispheres : str
        versionB: ``merge`` (``V1v`` = ``lV1v`` + ``rV1v``) or ``separate`` (ROI names carry
        ``l``/``r``).
    videos_dir : str, optional
    """

    root: Path
    version: str = "B"
    hemispheres: str = "merge"
    videos_dir: str | None = None
    space: str = "MNI152"

    def __post_init__(self):
        if self.version not in ("A", "B") or self.space != "MNI152":
            raise ValueError(f"per-ROI BMD files exist for MNI152 versionA/B, not space "
                             f"{self.space!r} version {self.version!r}")

    @property
    def base(self) -> Path:
        if self.version == "A":
            return (Path(self.root) / "derivatives" / "versionA" / "MNI152" / "prepared_data"
                    / "prepared_allvoxel_pkl" / "TRavg56789")
        return Path(self.root) / "derivatives" / "versionB" / "MNI152" / "prepared_allvoxel_pkl"

    def roi_file(self, subject: str, name: str) -> Path:
        if self.version == "A":
            return self.base / f"sub-{subject}" / f"{name}_TRavg-56789_allvoxel.pkl"
        return self.base / f"sub-{subject}" / f"sub-{subject}_roi-{name}_betas_normalized.pkl"

    def roi_files(self, subject: str, roi: str) -> list[Path]:
        """The file(s) of ``roi``: itself, or (merged) its ``l``/``r`` halves in that order."""
        own = self.roi_file(subject, roi)
        if self.version == "A" or self.hemispheres == "separate" or own.exists():
            return [own]
        halves = [self.roi_file(subject, f"{h}{roi}") for h in "lr"]
        if all(p.exists() for p in halves):
            return halves
        raise DataFormatError(f"{own}: ROI file not found (nor both hemisphere files "
                              f"{halves[0].name} and {halves[1].name})")


    def subjects(self) -> list[str]:
        if not self.base.exists():
            raise DataFormatError(f"{self.base}: dataset folder not found")
        return sorted(p.name[4:] for p in self.base.glob("sub-*") if p.is_dir())

    def files(self, subject: str, split: str) -> Path:
        return self.base / f"sub-{subject}"

    def open_subject(self, subject: str) -> _PerROISubject:
        return _PerROISubject(self, subject)



def load_roi_pickle(path: Path, n_stimuli: dict | None = None) -> dict[str, np.ndarray]:
    """Read one per-ROI pickle → {split: betas (n_stimuli, reps, N)}, checked.

    Parameters
    ----------
    path : Path
    n_stimuli : dict of split to int, optional
        Stimulus counts the file must have (from the subject's other ROI files).
    """
    obj = load_pickle(path)
    if not isinstance(obj, dict) or not all(k in obj for k in KEYS.values()):
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DataFormatError(f"{path}: expected a dict with keys {sorted(KEYS.values())}, "
                              f"found {found}")
    out = {}
    for split, key in KEYS.items():
        want = None if n_stimuli is None else n_stimuli[split]
        out[split] = check_betas(obj[key], f"{path} [{key!r}]", split, REPS[split], want)
    if out["train"].shape[2] != out["test"].shape[2]:
        raise DataFormatError(f"{path}: expected the same voxels in train and test, found "
                              f"{out['train'].shape[2]} and {out['test'].shape[2]}")
    return out


class _PerROISubject(SubjectSource):
    def __init__(self, ds: BMDPerROI, subject: str):
        self.ds, self.subject = ds, subject
        folder = ds.base / f"sub-{subject}"
        if not folder.is_dir():
            raise DataFormatError(f"{folder}: subject folder not found")
        self.files = {s: str(folder) for s in SPLITS}
        first = sorted(folder.glob("*.pkl"))
        if not first:
            raise DataFormatError(f"{folder}: expected per-ROI pickles, found none")
        betas = load_roi_pickle(first[0])
        self.n = {s: betas[s].shape[0] for s in SPLITS}
        self.ids = {"train": implied_ids(self.n["train"]),
                    "test": implied_ids(self.n["test"], self.n["train"] + 1)}

    def roi_betas(self, roi):
        parts = [load_roi_pickle(p, self.n) for p in self.ds.roi_files(self.subject, roi)]
        betas = {s: parts[0][s] if len(parts) == 1 else np.concatenate(
            [p[s] for p in parts], axis=2) for s in SPLITS}
        return betas, np.arange(betas["train"].shape[2])
