"""Format-independent preparation of one subject (SPEC.md §1).

Every dataset format opens a subject as a :class:`SubjectSource`: the stimulus ids per split and,
per ROI, the repetition-wise betas (ROI-sized, gathered from the loaded files without copying the
whole brain) and, where the dataset ships them, the ncsnr values. :func:`prepare` then applies the
rules that do not depend on the format:

- stimuli in ``exclude_stimuli`` are removed from both splits;
- a vertex NaN in all repetitions of any kept stimulus is dropped (never zero-imputed), unless
  ``nan_betas="trial_mean"`` (the paper's code): then the repetition average (the mean over
  the finite repetitions, the released code's "trial mean") keeps the vertex, and what is
  still NaN becomes 0 (:func:`impute_trial_mean`);
- vertices are selected on the **train** split only (ncsnr ≥ ``reliability_threshold``);
- an ROI with fewer than ``min_vertices`` kept vertices (including an ROI with 0 voxels in this
  subject) is a *missing cell*: reported in the summary, None in ``rois``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alignpatterns.data.safe_pickle import DataFormatError
from alignpatterns.measures.ceilings import effective_repetitions
from alignpatterns.measures.ceilings import ncsnr as compute_ncsnr

__all__ = ["ROIData", "SubjectData", "SubjectSource", "DatasetReader", "BMDVideos", "prepare",
           "SPLITS"]

SPLITS = ("train", "test")
NAN_BETAS = ("drop", "trial_mean")
log = logging.getLogger("alignpatterns")


@dataclass
class ROIData:
    """Prepared data of one subject's ROI (kept vertices only).

    Attributes
    ----------
    vertices : ndarray of int, shape (v,)
        Indices of the kept vertices in the subject's vertex axis (whole-brain formats) or in the
        ROI file's voxel axis (per-ROI formats).
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
    #: Kept stimuli that are NaN in every repetition at every vertex of some ROI (missing in this
    #: subject); ``check-data`` excludes them for all subjects (SPEC.md §1).
    nan_stimuli: list[str] = field(default_factory=list)


class SubjectSource:
    """One subject of a dataset, as the formats expose it to :func:`prepare`.

    Subclasses set ``subject``, ``ids`` ({split: list of str}) and ``files`` ({split: str}, named
    in messages) and implement :meth:`roi_betas` (and :meth:`roi_ncsnr` where the dataset ships
    noise ceilings).
    """

    subject: str
    ids: dict[str, list[str]]
    files: dict[str, str]

    def roi_betas(self, roi: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Betas of one ROI.

        Returns
        -------
        betas : dict of split to ndarray, shape (n_stimuli, n_reps, n)
            Over all stimuli of the split (before exclusions).
        vertices : ndarray of int, shape (n,)
        """
        raise NotImplementedError

    def roi_ncsnr(self, roi: str, split: str, vertices: np.ndarray) -> np.ndarray | None:
        """Shipped ncsnr of ``vertices`` (train: ``n-3`` file), or None to compute it."""
        return None


class DatasetReader:
    """What every format's reader offers beyond :meth:`open_subject` (see ``data/dataset.py``)."""

    def open_subject(self, subject: str) -> SubjectSource:
        raise NotImplementedError

    def prepare_subject(self, subject: str, rois: Sequence[str],
                        reliability_threshold: float = 0.2, min_vertices: int = 10,
                        exclude_stimuli: Sequence[str] = (), nan_betas: str = "drop"
                        ) -> SubjectData:
        """Open, check and prepare one subject (:func:`prepare`)."""
        return prepare(self.open_subject(subject), rois, reliability_threshold, min_vertices,
                       exclude_stimuli, nan_betas=nan_betas)


class BMDVideos:
    """Videos of a BMD layout: ``derivatives/stimuli_metadata/mp4_h264/NNNN.mp4`` under ``root``,
    or the folder ``videos_dir``."""

    root: Path
    videos_dir: str | None

    @property
    def videos(self) -> Path:
        if self.videos_dir:
            return Path(self.videos_dir)
        return Path(self.root) / "derivatives" / "stimuli_metadata" / "mp4_h264"

    def video_path(self, stimulus: str) -> Path:
        """``NNNN.mp4`` of stimulus ``vidNNNN``."""
        return self.videos / f"{stimulus.removeprefix('vid')}.mp4"


def _harmonic_reps(reps: np.ndarray) -> float:
    """Mean over vertices of :func:`~alignpatterns.measures.ceilings.effective_repetitions`."""
    n = effective_repetitions(reps) if reps.shape[2] else np.array([float(reps.shape[1])])
    return float(np.nanmean(n)) if np.isfinite(n).any() else float("nan")


def _computed_ncsnr(betas: np.ndarray) -> np.ndarray:
    """ncsnr per vertex; NaN for vertices whose noise variance cannot be estimated."""
    out = np.full(betas.shape[2], np.nan)
    ok = np.sum(np.isfinite(betas), axis=1).max(axis=0) >= 2 if betas.shape[2] else []
    if np.any(ok):
        out[ok] = compute_ncsnr(betas[:, :, ok])[0]
    return out


def impute_trial_mean(avg: np.ndarray) -> np.ndarray:
    """The paper's NaN handling of repetition averages: NaN → trial mean → 0.

    The released code (``impute_nans``) fills a NaN beta with the mean over the *trials*
    (repetitions) of the same stimulus and voxel, then what is still NaN with 0. It runs after
    the nanmean over repetitions, so the trial mean is the average itself: a cell that is NaN
    after averaging had no finite repetition and becomes 0 (its docstring: "the trial-mean
    first step is unnecessary for our data because we take a trial-nanmean beforehand").

    Parameters
    ----------
    avg : ndarray, shape (n_stimuli, n_vertices)
        nanmean over repetitions.

    Returns
    -------
    ndarray, shape (n_stimuli, n_vertices)
        A copy with NaN → 0.
    """
    return np.nan_to_num(np.array(avg, dtype=float), nan=0.0, posinf=np.inf, neginf=-np.inf)


def prepare(source: SubjectSource, rois: Sequence[str], reliability_threshold: float = 0.2,
            min_vertices: int = 10, exclude_stimuli: Sequence[str] = (),
            nan_betas: str = "drop") -> SubjectData:
    """Apply SPEC.md §1 to one subject of any format.

    Parameters
    ----------
    source : SubjectSource
    rois : sequence of str
        ROI names in display order.
    reliability_threshold : float
        Keep vertices with train ncsnr ≥ this.
    min_vertices : int
        Fewer kept vertices than this make a missing cell.
    exclude_stimuli : sequence of str
        Stimulus ids (``vidNNNN``) removed from both splits.
    nan_betas : {"drop", "trial_mean"}
        ``drop``: a vertex NaN in all repetitions of a kept stimulus is not kept. ``trial_mean``
        (the paper): such vertices stay eligible and the averages are filled by
        :func:`impute_trial_mean` (repetition-wise betas keep their NaNs).

    Returns
    -------
    SubjectData
    """
    if nan_betas not in NAN_BETAS:
        raise ValueError(f"nan_betas must be one of {NAN_BETAS}, got {nan_betas!r}")
    excl = set(exclude_stimuli)
    unknown = sorted(excl - set(source.ids["train"]) - set(source.ids["test"]))
    if unknown:
        raise DataFormatError(
            f"{source.files['train']}, {source.files['test']}: expected every stimulus to "
            f"exclude (dataset.exclude_stimuli, and stimuli NaN in another subject) among the "
            f"{len(source.ids['train'])} train and {len(source.ids['test'])} test ids of "
            f"sub-{source.subject} ({_id_range(source.ids)}), found {len(unknown)} that are "
            f"not: {unknown[:10]}")
    keep = {s: np.array([i not in excl for i in source.ids[s]], dtype=bool) for s in SPLITS}
    ids = {s: [i for i, k in zip(source.ids[s], keep[s], strict=True) if k] for s in SPLITS}
    if set(ids["train"]) & set(ids["test"]):
        raise DataFormatError(f"{source.files['test']}: expected test stimulus ids disjoint from "
                              f"the train ids, found {sorted(set(ids['train']) & set(ids['test']))[:5]}")
    out, summary, nan_stimuli = {}, [], set()
    for roi in rois:
        betas, verts = source.roi_betas(roi)
        n_all = int(verts.size)
        data = {s: betas[s][keep[s]] if not keep[s].all() else betas[s] for s in SPLITS}
        ok = np.ones(n_all, dtype=bool)
        for s in SPLITS:  # drop vertices NaN in all repetitions of any kept stimulus
            all_nan = np.all(np.isnan(data[s]), axis=1)  # (stimuli, vertices)
            lost = np.all(all_nan, axis=1) if n_all else np.zeros(len(ids[s]), dtype=bool)
            nan_stimuli.update(i for i, x in zip(ids[s], lost, strict=True) if x)
            ok &= ~np.any(all_nan[~lost], axis=0)  # a stimulus lost everywhere is excluded instead
        if (~ok).any():
            log.info("sub-%s %s: %d of %d vertices dropped (NaN in every repetition of a kept "
                     "stimulus)", source.subject, roi, int((~ok).sum()), n_all)
        # ncsnr is computed where the vertex can stay: the kept ones, or (paper) all
        eligible = ok if nan_betas == "drop" else np.ones(n_all, dtype=bool)
        rel = {}
        for s in SPLITS:
            # a shipped test ncsnr covers every test stimulus; with stimuli excluded it is
            # computed from the kept betas, so exclusions reach the ceilings (SPEC.md §1). The
            # train file is read as shipped: selection as the paper's, on BMD's own file.
            shipped = (source.roi_ncsnr(roi, s, verts) if s == "train" or keep[s].all()
                       else None)
            if shipped is None:
                shipped = np.full(n_all, np.nan)
                shipped[eligible] = _computed_ncsnr(data[s][:, :, eligible])
            rel[s] = shipped
        tr_ok = data["train"][:, :, ok]
        const = np.zeros(n_all, dtype=bool)
        if tr_ok.size:  # constant train vertices have no defined ncsnr: never kept
            const[ok] = np.nanmax(tr_ok, axis=(0, 1)) == np.nanmin(tr_ok, axis=(0, 1))
        if const.any():
            log.warning("sub-%s %s: %d constant vertices (ncsnr undefined, not kept)",
                        source.subject, roi, int(const.sum()))
        sel = (np.isfinite(rel["train"]) & (rel["train"] >= reliability_threshold) & eligible
               & ~const)
        idx = np.flatnonzero(sel)
        row = {"subject": source.subject, "roi": roi, "n_vertices": n_all,
               "n_reliable": int(idx.size),
               "median_ncsnr": float(np.nanmedian(rel["train"])) if np.isfinite(
                   rel["train"]).any() else float("nan"),
               "missing": idx.size < min_vertices, "reason": ""}
        if idx.size < min_vertices:
            row["reason"] = (f"ROI has 0 voxels in sub-{source.subject}" if n_all == 0 else
                             f"{idx.size} of {n_all} vertices have train ncsnr ≥ "
                             f"{reliability_threshold} (need {min_vertices})")
            out[roi] = None
        else:
            tr = data["train"][:, :, idx]
            te = data["test"][:, :, idx]
            with warnings.catch_warnings():  # rows of nan_stimuli stay NaN until excluded
                warnings.simplefilter("ignore", RuntimeWarning)
                avg = {"train": np.nanmean(tr, axis=1), "test": np.nanmean(te, axis=1)}
            if nan_betas == "trial_mean":
                avg = {s: impute_trial_mean(a) for s, a in avg.items()}
            out[roi] = ROIData(vertices=verts[idx], train_reps=tr, test_reps=te,
                               train=avg["train"], test=avg["test"],
                               ncsnr_train=rel["train"][idx], ncsnr_test=rel["test"][idx],
                               n_reps_test=_harmonic_reps(te))
        summary.append(row)
    return SubjectData(subject=source.subject, train_ids=ids["train"], test_ids=ids["test"],
                       rois=out, summary=summary, nan_stimuli=sorted(nan_stimuli))


def _id_range(ids: dict[str, list[str]]) -> str:
    every = [i for s in SPLITS for i in ids[s]]
    return f"{min(every)} … {max(every)}" if every else "none"


def first_difference(expected: Sequence[str], found: Sequence[str]) -> str:
    """Where two stimulus orders first differ, for an error message."""
    if len(expected) != len(found):
        return f"{len(found)} stimuli instead of {len(expected)}"
    i = next(i for i, (a, b) in enumerate(zip(expected, found, strict=True)) if a != b)
    return f"{found[i]!r} instead of {expected[i]!r} at position {i}"


def check_stimulus_ids(subjects: Sequence[SubjectData], files) -> None:
    """Stimulus ids must be identical (same order) in every subject.

    Parameters
    ----------
    subjects : sequence of SubjectData
    files : callable
        ``files(subject, split)`` → the file named in the error.

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
                        else f"the same ids in a different order ({first_difference(a, b)})")
                raise DataFormatError(
                    f"{files(sd.subject, split)}: expected the {len(a)} {split} stimulus ids of "
                    f"sub-{ref.subject}, found {len(b)} with {what}")
