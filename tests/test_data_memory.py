"""Loading keeps one copy of the betas (shrunken version of benchmarks/bench_load_memory.py)."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest

from alignpatterns.data.bmd import BMDLayout
from alignpatterns.data.safe_pickle import load_pickle
from tests import data_writers as W

N_TR, N_TE, V = 200, 20, 6000


def _write(root, protocol):
    rng = np.random.default_rng(0)
    p = root / "derivatives/versionB/fsLR32k/GLM/sub-01/prepared_betas"
    nbytes = 0
    for split, n, reps, start in (("train", N_TR, 3, 1), ("test", N_TE, 10, N_TR + 1)):
        b = rng.standard_normal((n, reps, V))
        nbytes += b.nbytes
        W.dump(p / f"sub-01_organized_betas_task-{split}_normalized.pkl",
               (b, W.ids(n, start)), protocol=protocol)
    return nbytes


@pytest.mark.parametrize("protocol", [4, 5])
def test_loading_a_subject_holds_one_copy(protocol, tmp_path, monkeypatch):
    from alignpatterns.data import safe_pickle

    monkeypatch.setattr(safe_pickle, "LARGE", 1 << 20)  # this file's arrays count as large
    nbytes = _write(tmp_path, protocol)
    tracemalloc.start()
    try:
        src = BMDLayout(tmp_path).open_subject("01")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(b.nbytes for bl in src.blocks.values() for b in bl) == nbytes
    assert peak < 1.1 * nbytes, f"peak {peak / nbytes:.2f} copies of the betas"


def test_the_check_can_fail(tmp_path, monkeypatch):
    """With the standard library's BYTEARRAY8 reader (which reads a bytes object and copies it into
    the bytearray) the same measurement shows about two copies of the largest array."""
    from alignpatterns.data import safe_pickle

    cls = safe_pickle._RestrictedUnpickler
    monkeypatch.setitem(cls.dispatch, pickle.BYTEARRAY8[0],
                        pickle._Unpickler.dispatch[pickle.BYTEARRAY8[0]])
    W.dump(tmp_path / "a.pkl", (np.ones((200, 3, 6000)), ["vid0001"]), protocol=5)
    tracemalloc.start()
    try:
        arr = load_pickle(tmp_path / "a.pkl")[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak > 1.9 * arr.nbytes
