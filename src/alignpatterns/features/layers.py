"""Layer specs: which modules of a model are read.

A spec is an explicit list of module names (``model.named_modules()``), ``"top_level"`` (the
model's direct children), ``"all"`` (every sub-module, in definition order) or
``{"regex": PATTERN}`` (every sub-module whose full name matches PATTERN).
"""

from __future__ import annotations

import re

import torch

MAX_LISTED = 400


class LayerSpecError(ValueError):
    """A layer spec names modules the model does not have, or selects none."""


def module_names(model: torch.nn.Module) -> list[str]:
    """Every sub-module's name in definition order (the root, named ``""``, excluded)."""
    return [name for name, _ in model.named_modules() if name]


def _listing(names: list[str]) -> str:
    shown = names[:MAX_LISTED]
    more = f" … and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(shown) + more


def resolve_layers(model: torch.nn.Module, spec, what: str = "model") -> list[str]:
    """Module names selected by ``spec``, validated against ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The network (any device, including meta).
    spec : sequence of str, ``"top_level"``, ``"all"`` or ``{"regex": str}``
        Layer spec (see module docstring).
    what : str
        How to name the model in errors.

    Returns
    -------
    list of str
        Module names, in the list's order for an explicit list, else in definition order.

    Raises
    ------
    LayerSpecError
        Unknown names (the message lists the valid ones), a bad regex, or an empty selection.
    """
    names = module_names(model)
    if spec == "top_level":
        out = [name for name, _ in model.named_children()]
    elif spec == "all":
        out = names
    elif isinstance(spec, dict):
        if set(spec) != {"regex"}:
            raise LayerSpecError(f"{what}: a layer spec mapping must be {{regex: PATTERN}}, "
                                 f"found keys {sorted(spec)}")
        try:
            pattern = re.compile(spec["regex"])
        except re.error as err:
            raise LayerSpecError(f"{what}: bad layer regex {spec['regex']!r} ({err})") from None
        out = [n for n in names if pattern.fullmatch(n)]
        if not out:
            raise LayerSpecError(f"{what}: layer regex {spec['regex']!r} matches no module; "
                                 f"valid names: {_listing(names)}")
    elif isinstance(spec, str):
        raise LayerSpecError(f"{what}: layer spec {spec!r} is not 'top_level', 'all', a list "
                             "or {regex: PATTERN}")
    else:
        out = [str(x) for x in spec]
        known = set(names)
        unknown = [n for n in out if n not in known]
        if unknown:
            raise LayerSpecError(f"{what}: layers {unknown} not found in "
                                 f"{type(model).__name__}; valid names: {_listing(names)}")
        dup = sorted({n for n in out if out.count(n) > 1})
        if dup:
            raise LayerSpecError(f"{what}: layers listed twice: {dup}")
    if not out:
        raise LayerSpecError(f"{what}: the layer spec selects no module")
    return out
