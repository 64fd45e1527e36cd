"""Feature files written incrementally, so memory stays bounded whatever the layer sizes.

Each layer is streamed row by row into a ``.npy`` memory map in a private temporary folder next
to the output; :meth:`FeatureWriter.close` packs them with the small arrays into one ``.npz``
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
        self.maps: dict[str, np.memmap] = {}
        self.files: dict[str, Path] = {}
        self.filled = np.zeros(self.n, dtype=bool)

    def _map(self, key: str, row_shape: tuple[int, ...]) -> np.memmap:
        if key not in self.maps:
            f = self.tmp / f"{len(self.files):04d}.npy"
            self.files[key] = f
            self.maps[key] = np.lib.format.open_memmap(f, mode="w+", dtype=np.float32,
                                                       shape=(self.n, *row_shape))
        return self.maps[key]

    def write(self, row: int, features: Mapping[str, np.ndarray]) -> None:
        """Write one stimulus: ``features[layer]`` shaped (features,) or (frames, features)."""
        for i, name in enumerate(self.layers):
            v = np.asarray(features[name], dtype=np.float32)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"layer {name!r} has non-finite activations for stimulus "
                                 f"{row}")
            self._map(layer_key(i, name), v.shape)[row] = v
        self.filled[row] = True

    def array(self, key: str) -> np.memmap:
        """The memory map behind ``key`` (for reductions fitted after all rows are written)."""
        return self.maps[key]

    def add_array(self, key: str, arr: np.ndarray) -> None:
        """Store a whole array (e.g. a reduced layer), also through a memory map."""
        arr = np.asarray(arr, dtype=np.float32)
        self._map(key, arr.shape[1:])[:] = arr

    def close(self, extra: Mapping[str, np.ndarray], provenance: dict) -> None:
        """Pack everything into ``path`` atomically."""
        if not self.filled.all():
            raise RuntimeError(f"{self.path}: {int((~self.filled).sum())} stimuli were never "
                               "written")
        for m in self.maps.values():
            m.flush()
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
        self.maps.clear()
        os.replace(part, self.path)
        self.abort()

    def abort(self) -> None:
        """Remove the temporary folder (after a failure, or after :meth:`close`)."""
        self.maps.clear()
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
