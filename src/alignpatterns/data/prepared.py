"""Store and reload prepared subject data (one ``.npz`` per subject)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alignpatterns.data.bmd import ROIData, SubjectData
from alignpatterns.io import load_arrays, save_arrays

_FIELDS = ("vertices", "train_reps", "test_reps", "train", "test", "ncsnr_train", "ncsnr_test")


def save_subject(sd: SubjectData, path: str | Path) -> None:
    """Write ``sd`` to ``path`` (``.npz``); missing ROI cells are recorded as such."""
    arrays = {"subject": np.array(sd.subject), "train_ids": np.array(sd.train_ids),
              "test_ids": np.array(sd.test_ids), "rois": np.array(list(sd.rois))}
    for roi, d in sd.rois.items():
        if d is None:
            continue
        for f in _FIELDS:
            arrays[f"roi/{roi}/{f}"] = getattr(d, f)
        arrays[f"roi/{roi}/n_reps_test"] = np.array(d.n_reps_test)
    save_arrays(path, arrays)


def load_subject(path: str | Path) -> SubjectData:
    """Read a subject written by :func:`save_subject`."""
    a = load_arrays(path)
    rois = {}
    for roi in a["rois"].tolist():
        if f"roi/{roi}/vertices" in a:
            kw = {f: a[f"roi/{roi}/{f}"] for f in _FIELDS}
            rois[roi] = ROIData(**kw, n_reps_test=float(a[f"roi/{roi}/n_reps_test"]))
        else:
            rois[roi] = None
    return SubjectData(subject=str(a["subject"]), train_ids=a["train_ids"].tolist(),
                       test_ids=a["test_ids"].tolist(), rois=rois)
