"""Frame sources for extraction: a decoded frame cache, or videos decoded in the background.

A source is an iterable of ``(stimulus_index, frames)`` with frames uint8 shaped
(n_frames, size, size, 3), in stimulus order, plus ``len()``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from alignpatterns.features.frames import read_still_frames, read_video_frames
from alignpatterns.features.registry import FramePolicy


class CachedFrames:
    """Frames already decoded: an array (stimuli, n_frames, H, W, 3)."""

    def __init__(self, frames: np.ndarray):
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (videos, frames, H, W, 3); found {frames.shape}")
        self.frames = frames

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(len(self)):
            yield i, self.frames[i]


class DecodedFrames:
    """Videos decoded with PyAV by background threads, ``prefetch`` stimuli ahead of the model.

    Decoding (PyAV, Pillow) runs outside the GIL for most of its time, so the model's forward
    pass overlaps it. With ``cache`` the decoded frames are also written to that ``.npy`` path
    (uint8, (stimuli, n_frames, size, size, 3)) for the next model.

    Parameters
    ----------
    paths : sequence of path-like
        Video files in stimulus order.
    policy : FramePolicy
        Frame sampling and size.
    workers : int
        Decoding threads.
    prefetch : int
        Stimuli decoded ahead (bounds memory).
    cache : path-like, optional
        Where to write the frame cache.
    """

    def __init__(self, paths: Sequence, policy: FramePolicy, workers: int = 1,
                 prefetch: int = 8, cache=None):
        self.paths = [Path(p) for p in paths]
        self.policy = policy
        self.workers = max(1, int(workers))
        self.prefetch = max(1, int(prefetch))
        self.cache = None if cache is None else Path(cache)

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, path: Path) -> np.ndarray:
        p = self.policy
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):  # a frames_middle still
            return read_still_frames(path, p.n_frames, p.size)
        return read_video_frames(path, p.n_frames, p.size, max_seconds=p.max_seconds, fps=p.fps)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce():
            try:
                with ThreadPoolExecutor(self.workers) as pool:
                    futures = []
                    for i, path in enumerate(self.paths):
                        futures.append((i, pool.submit(self._decode, path)))
                        # keep at most `workers` decodes in flight beyond the queue
                        while len(futures) > self.workers:
                            j, fut = futures.pop(0)
                            q.put((j, fut.result()))
                            if stop.is_set():
                                return
                    for j, fut in futures:
                        q.put((j, fut.result()))
                q.put(None)
            except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
                q.put(err)

        thread = threading.Thread(target=produce, name="decode", daemon=True)
        thread.start()
        cache = None
        try:
            while True:
                item = q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                i, frames = item
                if self.cache is not None:
                    if cache is None:
                        self.cache.parent.mkdir(parents=True, exist_ok=True)
                        cache = np.lib.format.open_memmap(
                            self.cache, mode="w+", dtype=np.uint8,
                            shape=(len(self), *frames.shape))
                    cache[i] = frames
                yield i, frames
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(0.05)
            if cache is not None:
                cache.flush()
                del cache
