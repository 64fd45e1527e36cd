"""Unpickling restricted to the types BMD files contain.

BMD ships pickles; a pickle can run arbitrary code. This loader only resolves numpy array
reconstruction, builtins containers and (for MNI152 files) nibabel image classes, and turns every
failure into an error that names the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path

_ALLOWED_PREFIXES = ("numpy", "nibabel", "collections")
_ALLOWED_BUILTINS = {"list", "tuple", "dict", "set", "frozenset", "str", "int", "float",
                     "complex", "bool", "bytes", "bytearray", "slice", "range", "object"}


class DataFormatError(ValueError):
    """A data file is missing, unreadable or not in the expected format."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module.split(".")[0] in _ALLOWED_PREFIXES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: str | Path):
    """Load a BMD pickle safely.

    Raises
    ------
    DataFormatError
        If the file is missing, truncated/corrupt, or references a disallowed type.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError, ValueError, MemoryError) as err:
        raise DataFormatError(
            f"{path}: expected a readable pickle, found a corrupt or unsupported file "
            f"({type(err).__name__}: {err})") from None
