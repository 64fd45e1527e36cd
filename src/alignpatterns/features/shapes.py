"""Layer output shapes on torch's meta device: no memory, no weights, no real compute.

Used to check registry declarations (``shapes``) and to size batches.
"""

from __future__ import annotations

import torch

from alignpatterns.features.layers import resolve_layers
from alignpatterns.features.models import build_meta, n_parameters
from alignpatterns.features.pooling import pool_output
from alignpatterns.features.registry import ModelSpec


def input_shape(spec: ModelSpec, size: int | None = None) -> tuple[int, ...]:
    """One sample's input: (3, H, W), or (3, T, H, W) for a clip model."""
    if spec.is_clip:
        s = size or int(spec.frames["size"])
        return (3, int(spec.frames["n_frames"]), s, s)
    s = size or spec.input_size
    return (3, s, s)


def layer_shapes(spec: ModelSpec, size: int | None = None, pool_grid: int = 4,
                 tokens: str | None = None
                 ) -> tuple[dict[str, tuple[int, ...]], dict[str, int], int]:
    """Output shape of every registry layer and its pooled feature count, from one forward pass
    on the meta device.

    Parameters
    ----------
    spec : ModelSpec
    size : int, optional
        Input size (default: the entry's ``input_size``, or its clip size).
    pool_grid : int
        Grid for the pooled feature counts.
    tokens : str, optional
        Token policy for the pooled counts (default: the entry's).

    Returns
    -------
    shapes : dict of str to tuple of int
        Raw output shape without the batch axis (first element of tuple outputs).
    n_features : dict of str to int
        Features per stimulus after :func:`.pooling.pool_output`.
    n_parameters : int
    """
    model = build_meta(spec)
    layers = resolve_layers(model, spec.layers, f"model {spec.name!r} ({spec.arch})")
    modules = dict(model.named_modules())
    n_prefix = getattr(model, "num_prefix_tokens", None)
    shapes: dict[str, tuple[int, ...]] = {}
    pooled: dict[str, int] = {}

    def make(name):
        def fn(_m, _i, out):
            t = out[0] if isinstance(out, (tuple, list)) else out
            shapes[name] = tuple(int(d) for d in t.shape[1:])
            p = pool_output(out, pool_grid, n_prefix, tokens or spec.tokens, spec.layout)
            pooled[name] = int(p.shape[1])
        return fn

    handles = [modules[n].register_forward_hook(make(n)) for n in layers]
    try:
        with torch.no_grad():
            model(torch.empty(2, *input_shape(spec, size), device="meta"))
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in layers if n not in shapes]
    if missing:
        raise ValueError(f"model {spec.name!r}: layers {missing} are never called in forward")
    return ({n: shapes[n] for n in layers}, {n: pooled[n] for n in layers},
            n_parameters(model))


def main(argv=None) -> None:
    """Print the ``shapes:`` block of registry entries (to paste after editing their layers)."""
    import argparse

    from alignpatterns.features.registry import load_registry

    ap = argparse.ArgumentParser(prog="python -m alignpatterns.features.shapes")
    ap.add_argument("names", nargs="+", help="registry entries")
    args = ap.parse_args(argv)
    reg = load_registry()
    for name in args.names:
        shapes, _, n = layer_shapes(reg[name])
        print(f"  {name}:  # {n / 1e6:.1f}M parameters\n    shapes:")
        for layer, shp in shapes.items():
            print(f"      {layer}: [{', '.join(map(str, shp))}]")


if __name__ == "__main__":
    main()
