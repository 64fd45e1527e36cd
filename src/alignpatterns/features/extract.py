"""Layer activations of timm models on video frames.

Frames are normalised with the model's own data config, passed through the network in batches,
each read layer's output is average-pooled to a small spatial grid (``pool_grid`` × ``pool_grid``)
and flattened, and the result is averaged over the frames of each video. The same function builds
the synthetic dataset's generator responses, so the ``oracle`` candidate sees exactly what the
generator saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from alignpatterns.features.registry import ModelSpec


class WeightsError(RuntimeError):
    """Requested weights cannot be had (e.g. pretrained weights offline)."""


def build_model(spec: ModelSpec, weights: str, seed: int | None = None) -> torch.nn.Module:
    """Construct a timm model in eval mode.

    Parameters
    ----------
    spec : ModelSpec
        Registry entry.
    weights : str
        ``random`` (seeded with ``seed``), ``pretrained`` (timm's pretrained weights, from the
        local cache only), or a path to a checkpoint (a state dict saved with ``torch.save``).
    seed : int, optional
        Seed for random init (required for ``random``).
    """
    import timm

    if weights == "random":
        if seed is None:
            raise ValueError(f"model {spec.name!r}: random weights need a seed")
        torch.manual_seed(seed)
        model = timm.create_model(spec.arch, pretrained=False, **spec.kwargs)
    elif weights == "pretrained":
        try:
            model = timm.create_model(spec.arch, pretrained=True, **spec.kwargs)
        except Exception as err:  # noqa: BLE001 - any hub/network failure means the same
            raise WeightsError(
                f"model {spec.name!r} ({spec.arch}): pretrained weights are not available "
                f"locally and cannot be downloaded ({type(err).__name__}: {err}). Put them in "
                "the Hugging Face / torch hub cache, or set weights to a checkpoint path."
            ) from None
    else:
        from pathlib import Path

        path = Path(weights)
        if not path.exists():
            raise WeightsError(f"{path}: checkpoint for model {spec.name!r} not found")
        model = timm.create_model(spec.arch, pretrained=False, **spec.kwargs)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise WeightsError(f"{path}: checkpoint does not fit {spec.arch}: {err}") from None
    return model.eval()


def _pool_output(out: torch.Tensor, grid: int, tokens: int | None) -> torch.Tensor:
    """Pool one layer output to (batch, features).

    4-D outputs are (B, C, H, W), or (B, H, W, C) for token models (``tokens`` not None);
    3-D outputs are (B, N, D) token sequences whose first ``tokens`` entries are prefix tokens.
    """
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim == 3:
        n_prefix = tokens or 0
        patch = out[:, n_prefix:, :]
        side = math.isqrt(patch.shape[1])
        if side * side != patch.shape[1]:
            return out.mean(dim=1)
        out = patch.transpose(1, 2).reshape(out.shape[0], out.shape[2], side, side)
    elif out.ndim == 4 and tokens is not None:
        out = out.permute(0, 3, 1, 2)
    elif out.ndim == 2:
        return out
    if out.ndim != 4:
        raise ValueError(f"cannot pool a layer output of shape {tuple(out.shape)}")
    h, w = out.shape[-2:]
    out = F.adaptive_avg_pool2d(out, (min(h, grid), min(w, grid)))
    return out.flatten(1)


@torch.inference_mode()
def extract_layers(model: torch.nn.Module, frames: np.ndarray, layers: Sequence[str],
                   pool_grid: int = 4, batch_size: int = 32, device: str = "cpu",
                   progress: bool = False) -> dict[str, np.ndarray]:
    """Frame-averaged, spatially pooled activations of ``layers``.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model in eval mode.
    frames : ndarray, uint8, shape (n_videos, n_frames, height, width, 3)
        RGB frames.
    layers : sequence of str
        Module names to read.
    pool_grid : int
        Spatial outputs are average-pooled to at most ``pool_grid`` × ``pool_grid``.
    batch_size : int
        Frames per forward pass.
    device : str
        ``cpu`` or ``cuda``.

    Returns
    -------
    dict of str to ndarray, float32, shape (n_videos, n_features_layer)
    """
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (videos, frames, H, W, 3); found {frames.shape}")
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ValueError(f"layers {unknown} not found in {type(model).__name__}")
    tokens = getattr(model, "num_prefix_tokens", None)
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), dtype=torch.float32)
    std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32)
    model = model.to(device)
    mean, std = mean.to(device).view(1, 3, 1, 1), std.to(device).view(1, 3, 1, 1)

    captured: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_module, _inp, out):
            captured[name] = _pool_output(out, pool_grid, tokens).float().cpu()
        return fn

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    n_videos, n_frames = frames.shape[:2]
    flat = frames.reshape(n_videos * n_frames, *frames.shape[2:])
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    starts = range(0, flat.shape[0], batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="batches", leave=False)
    try:
        for start in starts:
            x = torch.from_numpy(flat[start:start + batch_size]).to(device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - mean) / std
            captured.clear()
            model(x)
            for name in layers:
                chunks[name].append(captured[name])
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in layers:
        acts = torch.cat(chunks[name]).reshape(n_videos, n_frames, -1).mean(dim=1)
        out[name] = acts.numpy().astype(np.float32)
    return out
