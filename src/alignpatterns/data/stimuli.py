"""Stimulus files: one readable video per stimulus id, and the BMD annotations.

``reference/bmd_format.md`` §8: BMD videos are ``derivatives/stimuli_metadata/mp4_h264/NNNN.mp4``
(a separate download from the BMD site; ``dataset.videos`` may point elsewhere); captions and
fields are in ``derivatives/stimuli_metadata/annotations.json`` keyed ``"0001"``…``"1102"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from alignpatterns.data.safe_pickle import DataFormatError

__all__ = ["check_videos", "load_annotations"]


def check_videos(dataset, ids: Sequence[str]) -> None:
    """Every stimulus must have a video with a decodable first frame (PyAV).

    Parameters
    ----------
    dataset
        A reader with ``video_path(stimulus_id)`` (:func:`~alignpatterns.data.dataset.open_dataset`).
    ids : sequence of str
        Stimulus ids (``vidNNNN``).

    Raises
    ------
    DataFormatError
        Naming the missing or unreadable video.
    """
    import av

    missing = [(sid, dataset.video_path(sid)) for sid in ids
               if not Path(dataset.video_path(sid)).is_file()]
    if missing:
        sid, path = missing[0]
        raise DataFormatError(
            f"{path}: expected a video for each of the {len(ids)} stimuli, found none for {sid} "
            f"({len(missing)} missing; set dataset.videos to the folder of the BMD mp4 files)")
    for sid in ids:
        path = dataset.video_path(sid)
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise DataFormatError(f"{path}: expected a video stream ({sid}), found none")
                next(container.decode(video=0))
        except (av.FFmpegError, StopIteration, OSError) as err:
            raise DataFormatError(f"{path}: expected a decodable video ({sid}), found a corrupt "
                                  f"file ({type(err).__name__}: {err})") from None


def load_annotations(path: str | Path, ids: Sequence[str] | None = None) -> dict:
    """``annotations.json`` → {stimulus id ``vidNNNN``: fields}.

    Parameters
    ----------
    path : path-like
    ids : sequence of str, optional
        Ids that must all have an entry.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataFormatError(f"{path}: expected a JSON object keyed by '0001'… ({err})") from None
    if not isinstance(raw, dict):
        raise DataFormatError(f"{path}: expected a JSON object keyed by '0001'…, found "
                              f"{type(raw).__name__}")
    out = {f"vid{k}": v for k, v in raw.items()}
    for sid in ids or ():
        if sid not in out:
            raise DataFormatError(f"{path}: expected an entry {sid.removeprefix('vid')!r} for "
                                  f"stimulus {sid}, found none")
    return out
