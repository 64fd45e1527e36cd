"""Restricted unpickling (issue 4 item 7): NumPy-1.x and Python-2 fixtures load, code is refused."""

from __future__ import annotations

import os
import pickle
import pickletools
import sys
from pathlib import Path

import numpy as np
import pytest

from alignpatterns.data.safe_pickle import (
    DataFormatError,
    allowed_global,
    load_pickle,
    loads_pickle,
)

FIX = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIX))
from make_fixtures import algonauts_py2, bmd_numpy1, fixture_arrays  # noqa: E402


def _globals(data: bytes) -> set[str]:
    """Globals a pickle names (GLOBAL and STACK_GLOBAL forms)."""
    out, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            out.add(arg.replace(" ", "."))
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            out.add(".".join(strings[-2:]))
    return out


@pytest.mark.parametrize("name, protocol", [("bmd_numpy1_protocol2.pkl", 2),
                                            ("bmd_numpy1_protocol5.pkl", 5)])
def test_numpy1_fixture_loads(name, protocol):
    data = (FIX / name).read_bytes()
    assert data == bmd_numpy1(protocol)  # the committed file is what the generator writes
    names = _globals(data)
    assert any(n.startswith("numpy.core.") for n in names), names
    assert not any(n.startswith("numpy._core") for n in names), names
    betas, order = load_pickle(FIX / name)
    np.testing.assert_array_equal(betas, fixture_arrays()["betas"])
    assert betas.dtype == np.float64 and order == ["vid0001", "vid0002", "vid0003", "vid0004"]


def test_python2_algonauts_fixture_loads_as_the_devkit_does():
    data = (FIX / "algonauts_py2_protocol2.pkl").read_bytes()
    assert data == algonauts_py2()
    assert data[:2] == b"\x80\x02" and "numpy.core.multiarray._reconstruct" in _globals(data)
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert "BINSTRING" in ops and "BINUNICODE" not in ops  # Python 2 str payloads
    ours = load_pickle(FIX / "algonauts_py2_protocol2.pkl")
    with open(FIX / "algonauts_py2_protocol2.pkl", "rb") as f:  # the devkit's load_dict
        u = pickle._Unpickler(f)
        u.encoding = "latin1"
        ref = u.load()
    for key, want in (("train", fixture_arrays()["train"]),
                      ("voxel_mask", fixture_arrays()["voxel_mask"])):
        np.testing.assert_array_equal(ours[key], ref[key])
        np.testing.assert_array_equal(ours[key], want)
        assert ours[key].dtype == want.dtype


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_current_numpy_pickles_round_trip(protocol):
    import nibabel as nib

    a = np.asfortranarray(np.arange(24.0).reshape(2, 3, 4))
    img = nib.Nifti1Image(np.eye(3)[:, :, None].astype(np.uint8), np.eye(4))
    obj = {"x": a, "ids": ["vid0001"], "mask": img, "f32": a.astype(np.float32)}
    got = loads_pickle(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(got["x"], a)
    assert got["f32"].dtype == np.float32
    np.testing.assert_array_equal(got["mask"].get_fdata(), img.get_fdata())


class _Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("fn, args", [(os.system, ("echo pwned",)), (eval, ("1",)),
                                      (np.load, ("/etc/passwd",)),
                                      (getattr, ("x", "upper"))])
def test_pickle_that_calls_a_function_is_refused(fn, args, tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps((np.zeros(2), _Call(fn, *args)), protocol=2))
    with pytest.raises(DataFormatError, match=rf"{path}: .*reference to .*refused"):
        load_pickle(path)


def test_nibabel_functions_are_refused():
    import nibabel as nib

    data = pickle.dumps(_Call(nib.nifti1.load, "/etc/passwd"))
    with pytest.raises(DataFormatError, match="nibabel.*refused"):
        loads_pickle(data)


def test_allow_list():
    assert allowed_global("numpy.core.multiarray", "_reconstruct")
    assert allowed_global("numpy._core.numeric", "_frombuffer")
    assert not allowed_global("numpy", "load")
    assert not allowed_global("numpy.testing", "assert_equal")
    assert not allowed_global("builtins", "eval") and not allowed_global("posix", "system")


def test_arrays_are_views_of_the_read_bytes():
    """Protocol ≤ 4 arrays are rebuilt without a second copy (read-only views)."""
    a = np.arange(1000.0)
    for protocol in (2, 4):
        got = loads_pickle(pickle.dumps(a, protocol=protocol))
        assert not got.flags.owndata
        np.testing.assert_array_equal(got, a)


def test_truncated_and_wrong_size_arrays():
    data = pickle.dumps(np.arange(100.0), protocol=2)
    with pytest.raises(DataFormatError, match="corrupt"):
        loads_pickle(data[:-30], "x.pkl")


@pytest.mark.parametrize("protocol", [4, 5])  # (Python 3 protocol 2 text-encodes the bytes)
def test_large_arrays_are_read_in_place(protocol, monkeypatch):
    """Payloads ≥ LARGE go to a bytearray the array views (no bytes → array copy)."""
    from alignpatterns.data import safe_pickle

    monkeypatch.setattr(safe_pickle, "LARGE", 1024)
    a = np.arange(5000.0).reshape(50, 100)
    got, name = loads_pickle(pickle.dumps((a, "vid0001"), protocol=protocol))
    np.testing.assert_array_equal(got, a)
    base = got
    while getattr(base, "base", None) is not None:  # the buffer the file was read into
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    assert isinstance(base, np.ndarray) and base.dtype == np.uint8 and base.nbytes == a.nbytes
    assert name == "vid0001"


def test_large_python2_string_array_is_not_decoded():
    from alignpatterns.data import safe_pickle

    a = fixture_arrays()["train"]
    old = safe_pickle.LARGE
    safe_pickle.LARGE = 64
    try:
        got = loads_pickle(algonauts_py2())
    finally:
        safe_pickle.LARGE = old
    np.testing.assert_array_equal(got["train"], a)
