"""Unpickling restricted to the types the BMD and Algonauts files contain.

The datasets ship pickles, and a pickle can run arbitrary code: every global it names is imported and
may be called. This loader resolves only

- numpy array and dtype reconstruction, under both the NumPy 1.x names the released files use
  (``numpy.core.multiarray._reconstruct``, ``numpy.core.numeric._frombuffer``) and the NumPy 2.x
  names (``numpy._core...``);
- builtin containers and scalars, ``collections.OrderedDict``, ``_codecs.encode`` (protocol-2 bytes)
  and ``copyreg._reconstructor`` (protocol 0/1 objects);
- nibabel image, header and file-holder *classes* (the MNI152 files carry a mask image).

Anything else (a function such as ``os.system``, any other module) is refused with a
:class:`DataFormatError` naming the file and the refused global. Python 2 pickles (Algonauts 2021) are
read with ``encoding="latin1"``.

Arrays written with protocol ≤ 4 (``_reconstruct`` + raw bytes) are rebuilt as a view of the bytes
read from the file instead of a copy, so loading never holds two copies of the betas.
"""

from __future__ import annotations

import _compat_pickle
import inspect
import io
import pickle
import struct
import sys
from pathlib import Path

import numpy as np

__all__ = ["DataFormatError", "load_pickle", "loads_pickle", "allowed_global"]


class DataFormatError(ValueError):
    """A data file is missing, unreadable or not in the expected format."""


_NUMPY2 = int(np.__version__.split(".")[0]) >= 2
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
}
_BUILTINS = {"list", "tuple", "dict", "set", "frozenset", "str", "int", "float", "complex", "bool",
             "bytes", "bytearray", "slice", "range", "object"}
_OTHER_GLOBALS = {("collections", "OrderedDict"), ("_codecs", "encode"),
                  ("copyreg", "_reconstructor")}
#: nibabel modules whose classes may appear in a pickled image (classes only, never functions).
_NIBABEL_MODULES = {"nibabel.nifti1", "nibabel.nifti2", "nibabel.analyze", "nibabel.spm99analyze",
                    "nibabel.spm2analyze", "nibabel.spatialimages", "nibabel.filebasedimages",
                    "nibabel.fileholders", "nibabel.arrayproxy", "nibabel.wrapstruct",
                    "nibabel.batteryrunners", "nibabel.volumeutils"}


def allowed_global(module: str, name: str) -> bool:
    """Whether a pickle may reference ``module.name``."""
    if module == "builtins":
        return name in _BUILTINS
    if (module, name) in _NUMPY_GLOBALS or (module, name) in _OTHER_GLOBALS:
        return True
    if module == "numpy.dtypes":  # NumPy 2 DType classes, e.g. Float64DType
        return name.endswith("DType")
    return module in _NIBABEL_MODULES


#: Payloads from this size on are treated as array data (read in place, never decoded as text).
LARGE = 1 << 24


class _RestrictedUnpickler(pickle._Unpickler):
    """Pure-Python unpickler (its ``load_build`` can be overridden) with an allow-list."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, **kw):
        super().__init__(file, **kw)
        self._file_readinto = getattr(file, "readinto", None)

    def find_class(self, module, name):
        if self.proto < 3:  # Python 2 names (copy_reg, __builtin__), as pickle's fix_imports
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if not allowed_global(module, name):
            raise _Refused(f"{module}.{name}")
        if _NUMPY2 and module.startswith("numpy.core."):
            module = "numpy._core." + module[len("numpy.core."):]
        obj = super().find_class(module, name)
        if module.startswith("nibabel.") and not inspect.isclass(obj):
            raise _Refused(f"{module}.{name}")
        return obj

    def load_build(self):
        state = self.stack[-1]
        inst = self.stack[-2]
        rebuilt = _array_view(inst, state)
        if rebuilt is None:
            return pickle._Unpickler.load_build(self)
        self.stack.pop()
        self.stack[-1] = rebuilt
        for k, v in self.memo.items():  # the empty placeholder was memoised before BUILD
            if v is inst:
                self.memo[k] = rebuilt

    dispatch[pickle.BUILD[0]] = load_build

    def _read_new_bytearray(self, n: int):
        """Read ``n`` bytes into a new buffer without an intermediate bytes copy.

        (``pickle._Unframer.readinto`` reads ``file.read(n)`` and copies it when the previous
        frame is exhausted, which doubles the peak memory of a 3 GB array.) Payloads ≥ LARGE go
        to an uninitialised uint8 array (no zero-fill of gigabytes before reading); the array
        reconstruction views it like a bytearray.
        """
        buf = np.empty(n, dtype=np.uint8) if n >= LARGE else bytearray(n)
        unframer = self._unframer
        if unframer.current_frame is not None:
            got = unframer.current_frame.readinto(buf)
            if got == n:
                return buf
            if got:
                raise pickle.UnpicklingError("pickle exhausted before end of frame")
            unframer.current_frame = None
        if self._file_readinto is None:
            buf[:] = np.frombuffer(unframer.file_read(n), np.uint8) if isinstance(
                buf, np.ndarray) else unframer.file_read(n)
            return buf
        view, pos = memoryview(buf), 0
        while pos < n:
            k = self._file_readinto(view[pos:])
            if not k:
                raise EOFError(f"expected {n} bytes of array data, found {pos}")
            pos += k
        return buf

    def load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        if n > sys.maxsize:
            raise pickle.UnpicklingError(f"BYTEARRAY8 exceeds system's maximum size of "
                                         f"{sys.maxsize} bytes")
        self.append(self._read_new_bytearray(n))

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def _load_large(self, n: int, small):
        """Payloads ≥ LARGE bytes (array data) are read in place into a bytearray; a plain
        ``file.read`` of more than 2 GiB is assembled from partial reads, i.e. copied."""
        if n >= LARGE:
            self.append(self._read_new_bytearray(n))
        else:
            small(n)

    def load_binbytes(self):
        (n,) = struct.unpack("<I", self.read(4))
        self._load_large(n, lambda k: self.append(self.read(k)))

    def load_binbytes8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        self._load_large(n, lambda k: self.append(self.read(k)))

    def load_binstring(self):  # Python 2 str: array data stays bytes instead of latin1 text
        (n,) = struct.unpack("<i", self.read(4))
        if n < 0:
            raise pickle.UnpicklingError("BINSTRING pickle has negative byte count")
        self._load_large(n, lambda k: self.append(self._decode_string(self.read(k))))

    dispatch[pickle.BINBYTES[0]] = load_binbytes
    dispatch[pickle.BINBYTES8[0]] = load_binbytes8
    dispatch[pickle.BINSTRING[0]] = load_binstring


def _array_view(inst, state):
    """An array viewing the raw bytes of an ``ndarray.__setstate__`` state, or None.

    ``state`` = (version, shape, dtype, is_fortran, rawdata) as written by ``ndarray.__reduce__``.
    Object arrays (rawdata a list) and subclasses take the normal path.
    """
    if type(inst) is not np.ndarray or inst.size != 0 or not isinstance(state, tuple):
        return None
    if len(state) == 5:
        _, shape, dtype, fortran, raw = state
    elif len(state) == 4:
        shape, dtype, fortran, raw = state
    else:
        return None
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        return None
    if isinstance(raw, str):  # Python 2 pickle read with encoding="latin1"
        raw = raw.encode("latin1")
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 1:
        raw = memoryview(raw)  # a large payload read in place (_read_new_bytearray)
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        return None
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape, dtype=np.int64))
    if count * dtype.itemsize != len(raw):
        raise ValueError(f"array of shape {shape} and dtype {dtype} needs "
                         f"{count * dtype.itemsize} bytes, found {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


class _Refused(pickle.UnpicklingError):
    pass


_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError,
           TypeError, ValueError, MemoryError, UnicodeDecodeError, struct.error)


def _load(f, where: str):
    try:
        return _RestrictedUnpickler(f, encoding="latin1").load()
    except _Refused as err:
        raise DataFormatError(
            f"{where}: expected a pickle of numpy arrays, builtins and nibabel images, found a "
            f"reference to {err} (refused: loading it could run code)") from None
    except _ERRORS as err:
        raise DataFormatError(
            f"{where}: expected a readable pickle, found a corrupt or unsupported file "
            f"({type(err).__name__}: {err})") from None


def load_pickle(path: str | Path):
    """Load a dataset pickle with the restricted unpickler.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    object
        The unpickled object; numpy arrays may be read-only views of the file's bytes.

    Raises
    ------
    DataFormatError
        If the file is missing, truncated/corrupt, or references a disallowed global.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: file not found")
    with open(path, "rb") as f:
        return _load(f, str(path))


def loads_pickle(data: bytes, where: str = "<bytes>"):
    """:func:`load_pickle` for an in-memory pickle; ``where`` names it in errors."""
    return _load(io.BytesIO(data), where)
