"""Pool one layer's output to a (batch, features) matrix, and frame features to stimuli.

Layer outputs (``layout: auto``):

- a tuple or list: its first element (MViT blocks return ``(tokens, (T, H, W))``; then the tokens
  after the prefix are laid out on that T × H × W grid);
- 2-D (B, D): as is;
- 3-D (B, N, D) token sequences whose first ``n_prefix`` entries are prefix (class/register)
  tokens (none when N is a square and N - n_prefix is not: patch tokens before the class token
  is added). Token policy ``grid``: patch tokens on a square grid, pooled like a feature map (a
  non-square count is averaged over all tokens); ``cls``: the first token; ``mean``: the mean of
  the patch tokens; ``both``: cls ‖ mean;
- 4-D: (B, C, H, W), or (B, H, W, C) for token models (``n_prefix`` not None) or ``layout: nhwc``;
  average-pooled to at most ``grid`` × ``grid``;
- 5-D (video models): (B, C, T, H, W), or (B, T, H, W, C) with ``layout: nthwc``; averaged over
  time and pooled to at most ``grid`` × ``grid``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FRAME_POOLS = ("mean", "max", "keep")


def _square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def _tokens(x: torch.Tensor, n_prefix: int, policy: str, grid_shape=None) -> torch.Tensor:
    """(B, N, D) tokens → (B, features) or a (B, D, *grid) map for ``policy == 'grid'``."""
    patch = x[:, n_prefix:, :]
    if policy == "cls":
        if n_prefix < 1:
            raise ValueError("token policy 'cls' needs a class token; this layer has none "
                             "(use 'mean' or 'grid')")
        return x[:, 0, :]
    if policy == "mean":
        return patch.mean(dim=1)
    if policy == "both":
        if n_prefix < 1:
            raise ValueError("token policy 'both' needs a class token; this layer has none")
        return torch.cat([x[:, 0, :], patch.mean(dim=1)], dim=1)
    if grid_shape is not None:
        return patch.transpose(1, 2).reshape(x.shape[0], x.shape[2], *grid_shape)
    side = math.isqrt(patch.shape[1])
    if side * side != patch.shape[1]:
        return x.mean(dim=1)
    return patch.transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)


def pool_output(out, grid: int, n_prefix: int | None = None, tokens: str = "grid",
                layout: str = "auto") -> torch.Tensor:
    """One layer output → (batch, features) (see the module docstring for the conventions).

    Parameters
    ----------
    out : torch.Tensor or tuple
        The module's output.
    grid : int
        Spatial maps are average-pooled to at most ``grid`` × ``grid``.
    n_prefix : int or None
        Prefix tokens of a token model (timm's ``num_prefix_tokens``); None for CNNs.
    tokens : str
        Token policy: grid, cls, mean or both.
    layout : str
        auto, nchw, nhwc, ncthw or nthwc.

    Returns
    -------
    torch.Tensor, shape (batch, features)
    """
    thw = None
    if isinstance(out, (tuple, list)):
        if (len(out) == 2 and isinstance(out[1], (tuple, list)) and len(out[1]) == 3
                and all(isinstance(d, int) for d in out[1])):
            thw = tuple(out[1])
        out = out[0]
    if out.ndim == 3:
        if thw is not None:
            prefix = out.shape[1] - math.prod(thw)
            out = _tokens(out, prefix, tokens, grid_shape=thw)
        else:
            prefix = n_prefix or 0
            n = out.shape[1]
            if prefix and not _square(n - prefix) and _square(n):
                prefix = 0  # a layer before the class token is prepended (patch_embed)
            out = _tokens(out, prefix, tokens)
        if out.ndim == 2:
            return out
    elif out.ndim == 4 and (layout == "nhwc" or (layout == "auto" and n_prefix is not None)):
        out = out.permute(0, 3, 1, 2)
    elif out.ndim == 5 and layout == "nthwc":
        out = out.permute(0, 4, 1, 2, 3)
    elif out.ndim == 2:
        return out
    if out.ndim == 5:
        h, w = out.shape[-2:]
        return F.adaptive_avg_pool3d(out, (1, min(h, grid), min(w, grid))).flatten(1)
    if out.ndim != 4:
        raise ValueError(f"cannot pool a layer output of shape {tuple(out.shape)}")
    h, w = out.shape[-2:]
    out = F.adaptive_avg_pool2d(out, (min(h, grid), min(w, grid)))
    return out.flatten(1)


def pool_frames(rows: torch.Tensor, how: str) -> torch.Tensor:
    """Pool the frames of one stimulus.

    Parameters
    ----------
    rows : torch.Tensor, shape (n_frames, features)
    how : str
        ``mean``, ``max`` or ``keep``.

    Returns
    -------
    torch.Tensor, shape (features,) for mean and max, (n_frames, features) for keep
    """
    if how == "mean":
        # (1, T, F).mean(dim=1): the same reduction the batch-of-videos version used
        return rows.unsqueeze(0).mean(dim=1)[0]
    if how == "max":
        return rows.max(dim=0).values
    if how == "keep":
        return rows
    raise ValueError(f"frame pooling {how!r}: expected one of {list(FRAME_POOLS)}")
