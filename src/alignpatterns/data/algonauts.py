"""Reader for the Algonauts 2021 challenge fMRI data (a BMD subset; ``reference/bmd_format.md`` §9).

Layout::

    <root>/participants_data_v2021/mini_track/subXX/<ROI>.pkl   # {'train': (1000, 3, n_vox)}
    <root>/participants_data_v2021/full_track/subXX/WB.pkl      # + 'voxel_mask' (78, 93, 71) 0/1
    <root>/AlgonautsVideos268_All_30fpsmax/NNNN_*.mp4           # sorted: first 1000 = train

The pickles were written by Python 2 and are read with ``encoding="latin1"`` by the restricted
unpickler. Only the train videos have responses, so the config's held-out split
(``dataset.heldout``, default the last 100 of the 1000) serves as the test split, with the same 3
repetitions; ncsnr comes from those repetitions with the BMD formula (SPEC.md §1). Subject ids are
``subXX`` on disk (no hyphen) and ``XX`` in the config. ROIs are subject-specific voxel sets (no
vertex correspondence across subjects).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignpatterns.data.checks import check_betas, implied_ids
from alignpatterns.data.prepare import SPLITS, DatasetReader, SubjectSource
from alignpatterns.data.safe_pickle import DataFormatError, load_pickle

__all__ = ["Algonauts2021", "load_algonauts_roi", "MINI_TRACK_ROIS"]

MINI_TRACK_ROIS = ("LOC", "FFA", "STS", "EBA", "PPA", "V1", "V2", "V3", "V4")
VIDEO_DIR = "AlgonautsVideos268_All_30fpsmax"
REPS = 3


@dataclass(frozen=True)
class Algonauts2021(DatasetReader):
    """The Algonauts 2021 dataset.

    Parameters
    ----------
    root : Path
        Folder holding ``participants_data_v2021/`` (and, by default, the videos).
    heldout : int
        The last ``heldout`` of the released (train) videos form the test split.
    videos_dir : str, optional
        Folder of the 1102 mp4 files (default ``<root>/AlgonautsVideos268_All_30fpsmax``).
    """

    root: Path
    heldout: int = 100
    videos_dir: str | None = None

    @property
    def base(self) -> Path:
        return Path(self.root) / "participants_data_v2021"

    def roi_file(self, subject: str, roi: str) -> Path:
        track = "full_track" if roi == "WB" else "mini_track"
        return self.base / track / f"sub{subject}" / f"{roi}.pkl"

    @property
    def videos(self) -> Path:
        return Path(self.videos_dir) if self.videos_dir else Path(self.root) / VIDEO_DIR

    def video_path(self, stimulus: str) -> Path:
        """The video of ``vidNNNN``: the NNNN-th file of the sorted video folder."""
        k = int(stimulus.removeprefix("vid"))
        hits = sorted(self.videos.glob(f"{k:04d}_*.mp4")) or sorted(
            self.videos.glob(f"{k:04d}.mp4"))
        return hits[0] if hits else self.videos / f"{k:04d}_*.mp4"

    def subjects(self) -> list[str]:
        mini = self.base / "mini_track"
        if not mini.exists():
            raise DataFormatError(f"{mini}: dataset folder not found")
        return sorted(p.name[3:] for p in mini.glob("sub*") if p.is_dir())

    def files(self, subject: str, split: str) -> Path:
        return self.base / "mini_track" / f"sub{subject}"

    def open_subject(self, subject: str) -> _AlgonautsSubject:
        return _AlgonautsSubject(self, subject)



def load_algonauts_roi(path: Path, n_stimuli: int | None = None) -> tuple[np.ndarray,
                                                                           np.ndarray | None]:
    """Read one ROI pickle.

    Returns
    -------
    train : ndarray, float64, shape (n_videos, 3, n_vox)
    voxel_mask : ndarray, shape (X, Y, Z), or None
        Present in ``WB.pkl``; its nonzero count must equal n_vox.
    """
    obj = load_pickle(path)
    if not isinstance(obj, dict) or "train" not in obj:
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DataFormatError(f"{path}: expected a dict with key 'train', found {found}")
    train = check_betas(obj["train"], f"{path} ['train']", "train", REPS, n_stimuli)
    mask = obj.get("voxel_mask")
    if mask is not None:
        mask = np.asarray(mask)
        n = int(np.count_nonzero(mask == 1))
        if mask.ndim != 3 or n != train.shape[2]:
            raise DataFormatError(f"{path}: expected a 3-D 'voxel_mask' with one voxel equal to 1 "
                                  f"per column of 'train' ({train.shape[2]}), found shape "
                                  f"{mask.shape} with {n}")
    return train, mask


class _AlgonautsSubject(SubjectSource):
    def __init__(self, ds: Algonauts2021, subject: str):
        self.ds, self.subject = ds, subject
        self.files = {s: str(ds.files(subject, s)) for s in SPLITS}
        self.n_videos = None
        self.ids = None
        first = ds.roi_file(subject, "V1")
        if not first.exists():
            found = sorted(ds.files(subject, "train").glob("*.pkl"))
            if not found:
                raise DataFormatError(f"{ds.files(subject, 'train')}: expected ROI pickles, "
                                      "found none")
            first = found[0]
        self._set_ids(load_algonauts_roi(first)[0].shape[0], first)

    def _set_ids(self, n: int, path) -> None:
        h = self.ds.heldout
        if not 0 < h < n:
            raise DataFormatError(f"{path}: expected more than dataset.heldout = {h} videos, "
                                  f"found {n}")
        self.n_videos = n
        self.ids = {"train": implied_ids(n - h), "test": implied_ids(h, n - h + 1)}

    def roi_betas(self, roi):
        train, _mask = load_algonauts_roi(self.ds.roi_file(self.subject, roi), self.n_videos)
        n_tr = self.n_videos - self.ds.heldout
        return {"train": train[:n_tr], "test": train[n_tr:]}, np.arange(train.shape[2])
