"""Decode videos into fixed-size frame stacks for feature extraction.

Only numpy, Pillow and PyAV are used here (no torch), so decoding can run and be tested
without a deep-learning stack.

Conventions (the same for every model and every video):

- **Temporal sampling**: all frames are decoded, then ``n_frames`` of them are taken at the
  indices ``np.linspace(0, total - 1, n_frames).round().astype(int)`` (see
  :func:`sample_indices`): the first and last frames are always included and the rest are spread
  uniformly in between. numpy rounds halves to even. If the video has fewer than ``n_frames``
  frames, some frames are repeated.
- **Spatial resizing**: the frame is resized so that its short side is ``size`` pixels and the
  long side is centre-cropped to ``size`` (done in one step by resizing the central square of the
  frame), with Pillow's bilinear filter, which low-pass filters when it downsamples.
- **Colour**: frames are converted to 8-bit RGB by FFmpeg (``rgb24``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = [
    "VideoDecodeError",
    "read_frame_set",
    "read_video_frames",
    "resize_center_crop",
    "sample_indices",
    "sample_indices_fps",
]


class VideoDecodeError(ValueError):
    """A video file is missing, unreadable, or has no usable frames.

    The message names the file, what was expected and what was found.
    """


def sample_indices(total: int, n_frames: int) -> np.ndarray:
    """Indices of ``n_frames`` frames spread uniformly over ``total`` frames.

    Parameters
    ----------
    total : int
        Number of available frames (>= 1).
    n_frames : int
        Number of frames to take (>= 1).

    Returns
    -------
    numpy.ndarray, shape (n_frames,), dtype int64
        ``np.linspace(0, total - 1, n_frames).round()``; non-decreasing, starting at 0 and
        (for ``n_frames > 1``) ending at ``total - 1``.
    """
    total, n_frames = int(total), int(n_frames)
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    return np.linspace(0, total - 1, n_frames).round().astype(np.int64)


def sample_indices_fps(times: Sequence[float], n_frames: int, fps: float) -> np.ndarray:
    """Indices of the frames shown at times 0, 1/fps, …, (n_frames - 1)/fps.

    Parameters
    ----------
    times : sequence of float, shape (total,)
        Presentation time of each decoded frame in seconds from the first frame (increasing).
    n_frames : int
        Number of frames to take (>= 1).
    fps : float
        Sampling rate in frames per second (> 0).

    Returns
    -------
    numpy.ndarray, shape (n_frames,), dtype int64
        For each target time the last frame shown at or before it (a frame is on screen from its
        timestamp until the next one); past the end of the video the last frame repeats.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    t = np.asarray(times, dtype=np.float64)
    if t.size < 1:
        raise ValueError("need at least one frame time")
    targets = np.arange(int(n_frames)) / float(fps)
    # tolerance of a microsecond: 1/fps is rarely exact in a stream's time base
    idx = np.searchsorted(t, targets + 1e-6, side="right") - 1
    return np.clip(idx, 0, t.size - 1).astype(np.int64)


def resize_center_crop(frame: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and centre-crop the long side to ``size``.

    Parameters
    ----------
    frame : numpy.ndarray, shape (H, W, 3), dtype uint8
        RGB frame.
    size : int
        Output height and width in pixels.

    Returns
    -------
    numpy.ndarray, shape (size, size, 3), dtype uint8
        The frame is returned unchanged (as a copy) when it is already ``size`` x ``size``.
    """
    h, w = frame.shape[:2]
    if h == size and w == size:
        return np.array(frame, dtype=np.uint8, copy=True)
    side = min(h, w)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    resized = image.resize((size, size), Image.Resampling.BILINEAR,
                           box=(left, top, left + side, top + side))
    return np.asarray(resized, dtype=np.uint8)


def _decode_all(path: Path, max_seconds: float | None) -> list[av.VideoFrame]:
    """Decode the frames of the first video stream (only those before ``max_seconds``)."""
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"cannot open video file {str(path)!r}: expected a readable video container, "
            f"but FFmpeg reported: {exc}") from exc
    frames: list[av.VideoFrame] = []
    try:
        with container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["no streams"]
                raise VideoDecodeError(
                    f"video file {str(path)!r} has no video stream: expected at least one, "
                    f"found {', '.join(kinds)}")
            stream = container.streams.video[0]
            start: float | None = None
            for i, frame in enumerate(container.decode(stream)):
                if max_seconds is not None:
                    if frame.time is not None:
                        start = frame.time if start is None else start
                        t = frame.time - start
                    else:  # no timestamps: fall back on the nominal frame rate
                        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
                        if rate is None:
                            raise VideoDecodeError(
                                f"video file {str(path)!r} has neither frame timestamps nor a "
                                "frame rate: expected one of them to apply max_seconds")
                        t = i / rate
                    if t >= max_seconds:
                        break
                frames.append(frame)
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"cannot decode video file {str(path)!r}: expected a decodable video stream, but "
            f"FFmpeg failed after {len(frames)} frame(s): {exc}") from exc
    return frames


def _frame_times(path: Path, frames: list[av.VideoFrame]) -> np.ndarray:
    """Seconds from the first frame; the nominal rate where timestamps are missing."""
    if all(f.time is not None for f in frames):
        t = np.array([f.time for f in frames], dtype=np.float64)
        return t - t[0]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
    if rate is None:
        raise VideoDecodeError(f"video file {str(path)!r} has neither frame timestamps nor a "
                               "frame rate: expected one of them to sample at a given fps")
    return np.arange(len(frames)) / rate


def read_still_frames(path: str | os.PathLike[str], n_frames: int, size: int) -> np.ndarray:
    """A still image (e.g. BMD ``frames_middle`` JPEG) as ``n_frames`` identical frames.

    Returns
    -------
    numpy.ndarray, shape (n_frames, size, size, 3), dtype uint8
        The RGB image, short side resized to ``size`` and centre-cropped as a video frame.

    Raises
    ------
    VideoDecodeError
        If the file is missing or not a readable image.
    """
    from PIL import UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise VideoDecodeError(f"still image {str(path)!r}: expected a readable image, found "
                               f"{type(err).__name__}: {err}") from None
    frame = resize_center_crop(rgb, int(size))
    return np.repeat(frame[None], int(n_frames), axis=0)


def read_video_frames(
    path: str | os.PathLike[str], n_frames: int, size: int, max_seconds: float | None = None,
    fps: float | None = None,
) -> np.ndarray:
    """Decode a video and return ``n_frames`` uniformly sampled, square RGB frames.

    Parameters
    ----------
    path : str or os.PathLike
        Video file (any container/codec FFmpeg reads; the first video stream is used).
    n_frames : int
        Number of frames to return (>= 1), taken at
        ``np.linspace(0, total - 1, n_frames).round()`` among the ``total`` decoded frames.
    size : int
        Output height and width (>= 1): short side resized to ``size``, then centre crop
        (Pillow bilinear).
    max_seconds : float, optional
        If given, only frames whose presentation time, measured from the first frame, is
        ``< max_seconds`` are used.
    fps : float, optional
        If given, the frames shown at times 0, 1/fps, … (see :func:`sample_indices_fps`) are
        taken instead of frames spread over the whole clip.

    Returns
    -------
    numpy.ndarray, shape (n_frames, size, size, 3), dtype uint8
        RGB frames in temporal order.

    Raises
    ------
    VideoDecodeError
        (a :class:`ValueError`) if the file is missing, cannot be opened or decoded, has no
        video stream, or yields no frames (before ``max_seconds``).
    """
    n_frames, size = int(n_frames), int(size)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if size < 1:
        raise ValueError(f"size must be >= 1 pixel, got {size}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    path = Path(path)
    if not path.is_file():
        found = "a directory" if path.is_dir() else "nothing"
        raise VideoDecodeError(f"video file {str(path)!r} not found: expected an existing video "
                               f"file, found {found} at that path")
    frames = _decode_all(path, max_seconds)
    if not frames:
        within = f" with timestamp < {max_seconds} s" if max_seconds is not None else ""
        raise VideoDecodeError(f"video file {str(path)!r} has no frames{within}: expected at "
                               f"least 1 decodable frame, found 0")
    out = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    cache: dict[int, np.ndarray] = {}
    if fps is None:
        indices = sample_indices(len(frames), n_frames)
    else:
        indices = sample_indices_fps(_frame_times(path, frames), n_frames, fps)
    for j, idx in enumerate(indices):
        idx = int(idx)
        if idx not in cache:
            cache[idx] = resize_center_crop(frames[idx].to_ndarray(format="rgb24"), size)
        out[j] = cache[idx]
    return out


def read_frame_set(
    paths: Sequence[str | os.PathLike[str]], n_frames: int, size: int, progress: bool = False,
    max_seconds: float | None = None, fps: float | None = None,
) -> np.ndarray:
    """Decode several videos with :func:`read_video_frames`.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Video files, in the order of the output.
    n_frames, size, max_seconds, fps
        As in :func:`read_video_frames`.
    progress : bool, default False
        Print ``[i/n] path`` lines to standard error.

    Returns
    -------
    numpy.ndarray, shape (n_videos, n_frames, size, size, 3), dtype uint8
    """
    paths = list(paths)
    out = np.empty((len(paths), int(n_frames), int(size), int(size), 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        if progress:
            print(f"[{i + 1}/{len(paths)}] {p}", file=sys.stderr, flush=True)
        out[i] = read_video_frames(p, n_frames, size, max_seconds=max_seconds, fps=fps)
    return out
