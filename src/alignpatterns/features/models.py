"""Build registry models (timm, torchvision, custom factories) with the requested weights.

Weights are ``random`` (seeded), ``pretrained`` (from the local timm / torch hub cache; never a
silent switch to random weights when they are missing) or a path to a checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

import numpy as np
import torch

from alignpatterns.features.registry import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsError(RuntimeError):
    """Requested weights cannot be had (e.g. pretrained weights offline)."""


def _factory(spec: ModelSpec):
    """The callable that builds ``spec`` (without weights)."""
    if spec.source == "timm":
        import timm

        if not timm.is_model(spec.arch):
            import difflib

            close = difflib.get_close_matches(spec.arch, timm.list_models(), n=3, cutoff=0.6)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"model {spec.name!r}: {spec.arch!r} is not a timm architecture "
                             f"(timm {timm.__version__}; `timm.list_models('*pattern*')` lists "
                             f"them){hint}")
        return lambda **kw: timm.create_model(spec.arch, pretrained=False, **kw)
    if spec.source == "torchvision":
        import torchvision

        path = spec.arch if "." in spec.arch else None
        if path is None:
            for module in (torchvision.models, torchvision.models.video):
                if hasattr(module, spec.arch):
                    return getattr(module, spec.arch)
            raise ValueError(f"model {spec.name!r}: torchvision has no model {spec.arch!r}")
        return _import(spec)
    return _import(spec)


def _import(spec: ModelSpec):
    module, _, attr = spec.arch.rpartition(".")
    if not module:
        raise ValueError(f"model {spec.name!r}: arch {spec.arch!r} must be a dotted path "
                         "package.module.factory")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model {spec.name!r}: cannot import {spec.arch!r} ({err})") from None
    if not callable(fn):
        raise ValueError(f"model {spec.name!r}: {spec.arch!r} is not callable")
    return fn


def _fetch_hint(spec: ModelSpec) -> str:
    if spec.source == "timm":
        return (f"fetch them once with network access: python -c \"import timm; "
                f"timm.create_model('{spec.arch}', pretrained=True)\" (they go to the Hugging Face "
                "cache, $HF_HOME, default ~/.cache/huggingface; copy that folder to offline "
                "machines), or set weights to a local checkpoint path")
    return (f"fetch them once with network access: python -c \"import torchvision; "
            f"torchvision.models.get_model('{spec.arch.rpartition('.')[2]}', weights='DEFAULT')\" "
            "(they go to the torch hub cache, $TORCH_HOME, default ~/.cache/torch), or set "
            "weights to a local checkpoint path")


def _pretrained(spec: ModelSpec) -> torch.nn.Module:
    try:
        if spec.source == "timm":
            import timm

            return timm.create_model(spec.arch, pretrained=True, **spec.kwargs)
        if spec.source == "torchvision":
            kw = {k: v for k, v in spec.kwargs.items() if k != "weights"}
            return _factory(spec)(weights="DEFAULT", **kw)
    except Exception as err:  # noqa: BLE001 - any hub/network failure means the same to a user
        raise WeightsError(
            f"model {spec.name!r} ({spec.arch}): pretrained weights are not in the local cache "
            f"and cannot be downloaded ({type(err).__name__}: {str(err)[:300]}). To use them, "
            + _fetch_hint(spec) + ".") from None
    raise WeightsError(f"model {spec.name!r}: a custom model has no 'pretrained' weights; "
                       "set weights to a checkpoint path or 'random'")


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A state dict from ``torch.save`` output (a bare state dict or ``{"state_dict": ...}``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found (expected a file saved with "
                           "torch.save(model.state_dict(), path))")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt files raise many kinds of errors
        raise WeightsError(f"{path}: not a readable torch checkpoint ({err})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def build_model(spec: ModelSpec, weights: str | None = None, seed: int | None = None
                ) -> torch.nn.Module:
    """Construct a registry model in eval mode.

    Parameters
    ----------
    spec : ModelSpec
        Registry entry.
    weights : str, optional
        ``random`` (seeded with ``seed``), ``pretrained`` (local cache only when offline), or a
        path to a checkpoint (a state dict saved with ``torch.save``). Defaults to the entry's.
    seed : int, optional
        Seed for random init (required for ``random``).

    Raises
    ------
    WeightsError
        Pretrained weights unavailable (the message says how to fetch them), a missing or
        unreadable checkpoint, or one that does not fit the architecture.
    """
    weights = weights or spec.weights
    if weights == "random":
        if seed is None:
            raise ValueError(f"model {spec.name!r}: random weights need a seed")
        torch.manual_seed(seed)
        model = _factory(spec)(**spec.kwargs)
    elif weights == "pretrained":
        model = _pretrained(spec)
    else:
        state = load_checkpoint(weights)
        model = _factory(spec)(**spec.kwargs)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise WeightsError(f"{weights}: checkpoint does not fit model {spec.name!r} "
                               f"({spec.arch}): {str(err)[:500]}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model {spec.name!r}: {spec.arch} returned {type(model).__name__}, "
                         "expected a torch.nn.Module")
    return model.eval()


def build_meta(spec: ModelSpec) -> torch.nn.Module:
    """The model on torch's meta device (no memory, no weights): for shapes and layer names."""
    with torch.device("meta"):
        return _factory(spec)(**spec.kwargs).eval()


def normalization(spec: ModelSpec, model: torch.nn.Module | None = None
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the model's input: the registry's, else timm's pretrained config, else
    ImageNet's."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = spec.mean or tuple(cfg.get("mean", IMAGENET_MEAN))
    std = spec.std or tuple(cfg.get("std", IMAGENET_STD))
    return tuple(float(x) for x in mean), tuple(float(x) for x in std)


def weights_hash(model: torch.nn.Module | dict) -> str:
    """SHA-256 of the parameters and buffers (names, dtypes, shapes, bytes), 16 hex digits.

    ``model`` may be a module or its ``state_dict()`` (a snapshot that stays valid when the module
    later moves to another device; hashing releases the GIL, so it can run in a thread).
    """
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        h.update(np.ascontiguousarray(t.numpy()).reshape(-1).view(np.uint8))
    return h.hexdigest()[:16]


def n_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())
