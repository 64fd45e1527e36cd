"""Model layers' LP source side, decomposed once per model (the ``decompose`` rule).

Linear predictivity scales a source with its training statistics and reduces it to the common
dimensionality ``lp.n_components`` (PCA) — on the training split for the test predictions and
on each outer fold's training part for the out-of-fold train scores. None of that depends on the
subject, so the ``decompose`` rule does it once per model × layer × fold and every
``model_brain`` job reads the result (DESIGN.md, "Compute once"). The file holds, per layer
index ``i`` (``L{i:03d}``): ``train`` (n_train, k) and ``test`` (n_test, k), and per outer fold
``j``: ``fold{j}_index`` (the fold's held-out training rows), ``fold{j}_train`` and
``fold{j}_test``; plus ``layers``, ``n_components``, ``x_scaling`` and ``outer_folds``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from alignpatterns import io
from alignpatterns.measures.encoding import LPDecomposition, lp_decompose
from alignpatterns.patterns.alignment import LPOptions

__all__ = ["decompose_layers", "save_decompositions", "load_decompositions"]


def decompose_layers(features: Mapping[str, tuple[np.ndarray, np.ndarray]], lp: LPOptions
                     ) -> dict[str, LPDecomposition]:
    """Every layer's LP decomposition.

    Parameters
    ----------
    features : mapping layer → (Z_train (n_train, p), Z_test (n_test, p)), in layer order
    lp : LPOptions
        ``n_components`` must be set (unreduced sources are not worth storing).

    Returns
    -------
    dict of layer → LPDecomposition
    """
    if lp.n_components is None:
        raise ValueError("decompose: lp.n_components is None; without a common reduction the "
                         "model_brain jobs scale the layers themselves")
    return {layer: lp_decompose(Ztr, Zte, lp.outer_cv, int(min(lp.n_components, Ztr.shape[1])),
                                lp.x_scaling)
            for layer, (Ztr, Zte) in features.items()}


def save_decompositions(path: str | os.PathLike, decs: Mapping[str, LPDecomposition],
                        lp: LPOptions) -> None:
    """Write :func:`decompose_layers`' result (deterministic, atomic)."""
    arrays = {"layers": np.array(list(decs)), "x_scaling": np.array(lp.x_scaling),
              "n_components": np.array([d.n_components for d in decs.values()]),
              "outer_folds": np.array(lp.outer_cv)}
    for i, dec in enumerate(decs.values()):
        arrays[f"L{i:03d}/train"] = dec.train
        arrays[f"L{i:03d}/test"] = dec.test
        for j, (_, te, ftr, fte) in enumerate(dec.folds):
            arrays[f"L{i:03d}/fold{j}_index"] = te
            arrays[f"L{i:03d}/fold{j}_train"] = ftr
            arrays[f"L{i:03d}/fold{j}_test"] = fte
    io.save_arrays(path, arrays)


def load_decompositions(path: str | os.PathLike) -> dict[str, LPDecomposition]:
    """Read a file of :func:`save_decompositions`.

    Raises
    ------
    ValueError
        Naming the file, when an array is missing or the shapes do not fit together.
    """
    a = io.load_arrays(path)
    try:
        layers = [str(x) for x in a["layers"]]
        ks = a["n_components"]
        x_scaling = str(a["x_scaling"])
        out = {}
        for i, layer in enumerate(layers):
            p = f"L{i:03d}/"
            n_train = len(a[p + "train"])
            folds = []
            j = 0
            while f"{p}fold{j}_index" in a:
                te = a[f"{p}fold{j}_index"].astype(np.intp)
                tr = np.setdiff1d(np.arange(n_train), te)
                folds.append((tr, te, a[f"{p}fold{j}_train"], a[f"{p}fold{j}_test"]))
                j += 1
            out[layer] = LPDecomposition(a[p + "train"], a[p + "test"], tuple(folds),
                                         int(ks[i]), x_scaling)
    except KeyError as err:
        raise ValueError(f"{path}: not an LP decomposition file (missing {err}); run the "
                         "decompose step again") from None
    return out
