"""Feature files written incrementally, so memory stays bounded whatever the layer sizes.

Each layer is streamed row by row into a ``.npy`` file (plain writes, no memory map) in a
private temporary folder next to the output; :meth:`FeatureWriter.close` packs them with the small arrays into one ``.npz``
archive (stored, fixed timestamps, sorted keys: equal features give equal bytes) and moves it into
place atomically. A failure leaves no output and no temporary files.

Layout of a feature file (what :func:`alignpatterns.pipeline.load_features` reads):

- ``layer/<ii>/<name>``: float32, (stimuli, features) — or (stimuli, frames, features) with frame
  pooling ``keep`` — for the ``ii``-th layer (shallow to deep);
- ``lp/<ii>/<name>``: optional reduced features for linear predictivity (see :mod:`.reduce`);
- ``ids`` (stimulus ids), ``n_train``, ``layer_names`` and ``provenance`` (a JSON string).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def layer_key(index: int, name: str, prefix: str = "layer") -> str:
    return f"{prefix}/{index:02d}/{name}"


class FeatureWriter:
    """Stream per-stimulus features of several layers to disk.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.npz``.
    layers : sequence of str
        Layer names in output order.
    n_stimuli : int
        Number of rows of every layer.
    """

    def __init__(self, path, layers, n_stimuli: int):
        self.path = Path(path)
        self.layers = list(layers)
        self.n = int(n_stimuli)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        # plain file writes, not memory maps: written rows do not stay in this process's RSS
        self.handles: dict[str, object] = {}
        self.files: dict[str, Path] = {}
        self.layout: dict[str, tuple[int, tuple[int, ...]]] = {}  # key -> (data offset, row)
        self.filled = np.zeros(self.n, dtype=bool)

    def _open(self, key: str, row_shape: tuple[int, ...]):
        if key not in self.handles:
            f = self.tmp / f"{len(self.files):04d}.npy"
            fh = open(f, "w+b")  # noqa: SIM115 - closed in close()/abort()
            header = {"descr": "<f4", "fortran_order": False, "shape": (self.n, *row_shape)}
            np.lib.format.write_array_header_1_0(fh, header)
            self.files[key], self.handles[key] = f, fh
            self.layout[key] = (fh.tell(), tuple(row_shape))
        elif self.layout[key][1] != tuple(row_shape):
            raise ValueError(f"{key}: row shape {tuple(row_shape)} differs from the first row's "
                             f"{self.layout[key][1]}")
        return self.handles[key]

    def _put(self, key: str, start: int, rows: np.ndarray) -> None:
        fh = self._open(key, rows.shape[1:])
        offset, row = self.layout[key]
        fh.seek(offset + start * 4 * int(np.prod(row, dtype=np.int64)))
        fh.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())

    def write(self, row: int, features: Mapping[str, np.ndarray]) -> None:
        """Write one stimulus: ``features[layer]`` shaped (features,) or (frames, features)."""
        for i, name in enumerate(self.layers):
            v = np.asarray(features[name], dtype=np.float32)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"layer {name!r} has non-finite activations for stimulus "
                                 f"{row}")
            self._put(layer_key(i, name), row, v[None])
        self.filled[row] = True

    def read_rows(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of a written array, flattened to (rows, features), read from
        disk (for reductions fitted after all rows are written)."""
        fh = self.handles[key]
        fh.flush()
        offset, row = self.layout[key]
        width = int(np.prod(row, dtype=np.int64))
        stop = min(stop, self.n)
        fh.seek(offset + start * 4 * width)
        buf = np.fromfile(fh, dtype="<f4", count=(stop - start) * width)
        return buf.reshape(stop - start, width)

    def add_rows(self, key: str, start: int, rows: np.ndarray) -> None:
        """Store rows ``start:start + len(rows)`` of an extra (stimuli, features) array, e.g. a
        reduced layer."""
        self._put(key, start, np.asarray(rows, dtype=np.float32))

    def close(self, extra: Mapping[str, np.ndarray], provenance: dict) -> None:
        """Pack everything into ``path`` atomically."""
        if not self.filled.all():
            raise RuntimeError(f"{self.path}: {int((~self.filled).sum())} stimuli were never "
                               "written")
        for fh in self.handles.values():
            fh.close()
        self.handles.clear()
        small = dict(extra)
        small["layer_names"] = np.array(self.layers)
        small["provenance"] = np.array(json.dumps(provenance, sort_keys=True))
        entries = {k: ("file", f) for k, f in self.files.items()}
        entries.update({k: ("array", v) for k, v in small.items()})
        part = self.tmp / "out.npz"
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key in sorted(entries):
                kind, val = entries[key]
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as dst:
                    if kind == "file":
                        with open(val, "rb") as src:
                            shutil.copyfileobj(src, dst, 1 << 22)
                    else:
                        arr = np.asarray(val)
                        if arr.dtype == object:
                            raise TypeError(f"array {key!r} has dtype object")
                        np.lib.format.write_array(dst, arr, allow_pickle=False)
        os.replace(part, self.path)
        self.abort()

    def abort(self) -> None:
        """Remove the temporary folder (after a failure, or after :meth:`close`)."""
        for fh in self.handles.values():
            fh.close()
        self.handles.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.abort()
        return False


def read_provenance(path) -> dict:
    """The provenance mapping of a feature file."""
    with np.load(path, allow_pickle=False) as npz:
        if "provenance" not in npz.files:
            raise ValueError(f"{path}: feature file has no provenance")
        return json.loads(str(npz["provenance"]))
