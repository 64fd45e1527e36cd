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

__all__ = ["FALLBACKS", "check_videos", "load_annotations", "middle_frame_path",
           "stimulus_file"]

#: ``dataset.video_fallback`` values: what stands in for a stimulus whose video is absent.
FALLBACKS = (None, "frames_middle")
STILL_SUFFIXES = (".jpg", ".jpeg", ".png")


def middle_frame_path(dataset, stimulus: str) -> Path | None:
    """The BMD ``frames_middle/{NNNN}_*.jpg`` (or ``{NNNN}.jpg``) still of ``vidNNNN``, next to
    the video folder (``derivatives/stimuli_metadata/frames_middle``); None if absent."""
    folder = Path(dataset.video_path(stimulus)).parent.parent / "frames_middle"
    nnnn = stimulus.removeprefix("vid")
    hits = sorted(folder.glob(f"{nnnn}_*.jpg")) + sorted(folder.glob(f"{nnnn}.jpg"))
    return hits[0] if hits else None


def stimulus_file(dataset, stimulus: str, fallback: str | None = None) -> Path:
    """The file that shows ``stimulus``: its video, or — only with ``fallback="frames_middle"``
    and the video absent — its middle-frame still (every sampled frame is then that image).
    Without a usable file the video path is returned, so that the error names it."""
    if fallback not in FALLBACKS:
        raise ValueError(f"dataset.video_fallback: expected one of {FALLBACKS}, found {fallback!r}")
    video = Path(dataset.video_path(stimulus))
    if video.is_file() or fallback is None:
        return video
    still = middle_frame_path(dataset, stimulus)
    return still if still is not None else video


def check_videos(dataset, ids: Sequence[str], fallback: str | None = None) -> None:
    """Every stimulus must have a video with a decodable first frame (PyAV), or with
    ``fallback="frames_middle"`` a readable middle-frame still where the video is absent.

    Parameters
    ----------
    dataset
        A reader with ``video_path(stimulus_id)`` (:func:`~alignpatterns.data.dataset.open_dataset`).
    ids : sequence of str
        Stimulus ids (``vidNNNN``).
    fallback : {None, "frames_middle"}
        ``dataset.video_fallback``.

    Raises
    ------
    DataFormatError
        Naming the missing or unreadable video (or still).
    """
    import av

    files = {sid: stimulus_file(dataset, sid, fallback) for sid in ids}
    missing = [(sid, path) for sid, path in files.items() if not path.is_file()]
    if missing:
        sid, path = missing[0]
        also = (" and no frames_middle still" if fallback == "frames_middle" else
                "; set dataset.video_fallback: frames_middle to use the BMD middle-frame stills")
        raise DataFormatError(
            f"{path}: expected a video for each of the {len(ids)} stimuli, found none for {sid}"
            f"{also} ({len(missing)} missing; set dataset.videos to the folder of the BMD mp4 "
            "files)")
    for sid in ids:
        path = files[sid]
        if path.suffix.lower() in STILL_SUFFIXES:
            _check_still(path, sid)
            continue
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise DataFormatError(f"{path}: expected a video stream ({sid}), found none")
                next(container.decode(video=0))
        except (av.FFmpegError, StopIteration, OSError) as err:
            raise DataFormatError(f"{path}: expected a decodable video ({sid}), found a corrupt "
                                  f"file ({type(err).__name__}: {err})") from None


def _check_still(path: Path, sid: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, UnidentifiedImageError) as err:
        raise DataFormatError(f"{path}: expected a readable middle-frame image ({sid}), found a "
                              f"corrupt file ({type(err).__name__}: {err})") from None


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
