"""One model's features for a stimulus set, written to one file with provenance; frame caches.

The workflow's ``frames`` and ``extract`` jobs call :func:`write_frame_cache` and
:func:`extract_to_file`; the benchmark calls :func:`extract_to_file` on a
:class:`~.sources.DecodedFrames` source (decode + forward + hooks + pooling + write).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from alignpatterns.features.extract import (
    ExtractOptions,
    auto_batch_size,
    options_dict,
    run,
)
from alignpatterns.features.layers import resolve_layers
from alignpatterns.features.models import build_model, n_parameters, normalization, weights_hash
from alignpatterns.features.reduce import fit_reduction
from alignpatterns.features.registry import FramePolicy, ModelSpec, stable_seed
from alignpatterns.features.sources import CachedFrames, DecodedFrames
from alignpatterns.features.store import FeatureWriter, layer_key

log = logging.getLogger("alignpatterns")


def write_frame_cache(paths: Sequence, ids: Sequence[str], n_train: int, policy: FramePolicy,
                      out: str | os.PathLike, workers: int = 1) -> None:
    """Decode every video once (background threads) into ``out`` (``.npy``, uint8, (stimuli,
    n_frames, size, size, 3)) and its sidecar ``out.with_suffix('.json')`` (ids, n_train,
    policy). Written atomically."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.part.npy")
    try:
        for _ in DecodedFrames(paths, policy, workers=workers, cache=tmp):
            pass
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    meta = {"ids": list(ids), "n_train": int(n_train), "policy": policy.as_dict()}
    side = out.with_suffix(".json")
    part = side.with_name(f".{side.name}.part")
    part.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    os.replace(part, side)


def load_frame_cache(path: str | os.PathLike) -> tuple[np.ndarray, list[str], int]:
    """(frames, ids, n_train) of a frame cache: an ``.npy`` (memory-mapped) with its ``.json``
    sidecar, or an ``.npz`` with ``frames``, ``ids`` and ``n_train``."""
    path = Path(path)
    if path.suffix == ".npz":
        from alignpatterns import io

        a = io.load_arrays(path)
        return a["frames"], a["ids"].tolist(), int(a["n_train"])
    try:
        frames = np.load(path, mmap_mode="r")
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable frame cache ({err})") from None
    if frames.ndim != 5 or frames.shape[0] != len(meta["ids"]):
        raise ValueError(f"{path}: expected frames shaped (stimuli={len(meta['ids'])}, frames, "
                         f"H, W, 3), found {frames.shape}")
    return frames, list(meta["ids"]), int(meta["n_train"])


def _versions() -> dict:
    import timm
    import torchvision

    return {"torch": torch.__version__, "timm": timm.__version__,
            "torchvision": torchvision.__version__}


def extract_to_file(spec: ModelSpec, weights: str, seed: int | None, source, ids: Sequence[str],
                    n_train: int, out: str | os.PathLike, options: ExtractOptions,
                    policy: FramePolicy | None = None, layers=None, model_name: str | None = None,
                    reduction: dict | None = None, batch_size: int | str | None = None,
                    model: torch.nn.Module | None = None) -> dict:
    """Extract one model's features for every stimulus of ``source`` into ``out``.

    Parameters
    ----------
    spec : ModelSpec
        Registry entry.
    weights : str
        ``random``, ``pretrained`` or a checkpoint path (recorded as given).
    seed : int or None
        Seed of random init.
    source : CachedFrames, DecodedFrames or ndarray (stimuli, n_frames, H, W, 3)
        Frames in stimulus order.
    ids, n_train
        Stimulus ids (train first) and the number of train stimuli.
    out : path
        Feature file (``.npz``, layout in :mod:`.store`).
    options : ExtractOptions
    policy : FramePolicy, optional
        Recorded in provenance.
    layers : layer spec, optional
        Overrides the registry's (see :mod:`.layers`).
    model_name : str, optional
        The candidate's name in tables (default: ``spec.name``).
    reduction : dict, optional
        ``{"method": "srp"|"pca", "n_components": int|"auto", "eps": 0.1}``: also store reduced
        features (``lp/...``) fitted on the train stimuli.
    batch_size : int or "auto", optional
        Overrides ``options.batch_size``.
    model : torch.nn.Module, optional
        An already built model (else built from ``spec``, ``weights`` and ``seed``).

    Returns
    -------
    dict
        The provenance written to the file.
    """
    name = model_name or spec.name
    if isinstance(source, np.ndarray):
        source = CachedFrames(source)
    if len(source) != len(ids):
        raise ValueError(f"{out}: {len(source)} stimuli of frames but {len(ids)} ids")
    net = model if model is not None else build_model(spec, weights, seed)
    layer_names = resolve_layers(net, spec.layers if layers is None else layers,
                                 f"model {name!r} ({spec.arch})")
    mean, std = normalization(spec, net)
    n_prefix = getattr(net, "num_prefix_tokens", None)
    tokens = options.tokens or spec.tokens
    bs = options.batch_size if batch_size is None else batch_size
    if bs == "auto":
        size = policy.size if policy is not None else spec.input_size
        shape = ((3, int(spec.frames["n_frames"]), size, size) if spec.is_clip
                 else (3, size, size))
        bs = auto_batch_size(spec, shape, options.device)
        log.info("%s: batch size %d (auto)", name, bs)
    opts = ExtractOptions(**{**options_dict(options), "batch_size": int(bs), "tokens": tokens,
                             "progress": options.progress})
    # hash the weights in a thread while the network runs (hashlib releases the GIL)
    hashed: dict[str, str] = {}
    state = net.state_dict()
    hasher = threading.Thread(target=lambda: hashed.update(h=weights_hash(state)),
                              name="weights-hash", daemon=True)
    hasher.start()
    prov = {"model": name, "registry_entry": spec.name, "source": spec.source,
            "arch": spec.arch, "kwargs": spec.kwargs, "weights": weights,
            "weights_hash": None, "seed": seed, "n_parameters": n_parameters(net),
            "layers": layer_names, "mean": list(mean), "std": list(std),
            "frame_policy": None if policy is None else policy.as_dict(),
            "frame_mode": spec.frames.get("mode", "image"),
            **{k: v for k, v in options_dict(opts).items() if k != "device"},
            "device_type": torch.device(opts.device).type, "reduction": reduction,
            "versions": _versions()}
    if spec.is_clip:
        prov["frame_pool"] = "clip"
    writer = FeatureWriter(out, layer_names, len(ids))
    try:
        run(net, source, layer_names, writer.write, opts, mean, std, clip=spec.is_clip,
            n_prefix=n_prefix, tokens=tokens, layout=spec.layout)
        if reduction:
            _reduce(writer, layer_names, n_train, reduction, seed_of=(name, spec.name))
        hasher.join()
        if "h" not in hashed:
            raise RuntimeError(f"model {name!r}: hashing the weights failed")
        prov["weights_hash"] = hashed["h"]
        writer.close({"ids": np.array(list(ids)), "n_train": np.array(int(n_train))}, prov)
    finally:
        writer.abort()
    return prov


def _reduce(writer: FeatureWriter, layers, n_train, reduction, seed_of, chunk: int = 64
            ) -> None:
    """Reduced copies (``lp/...``) of every layer, fitted on the train rows, applied in chunks
    read back from disk (memory: the train rows for PCA, a chunk for SRP)."""
    method = reduction.get("method", "srp")
    for i, lname in enumerate(layers):
        key = layer_key(i, lname)
        if method == "srp":  # depends on the data only through its shape: read nothing
            width = int(np.prod(writer.layout[key][1], dtype=np.int64))
            train = np.broadcast_to(np.float32(0), (n_train, width))
        else:
            train = writer.read_rows(key, 0, n_train)
        fn = fit_reduction(method, train,
                           reduction.get("n_components", "auto"),
                           eps=float(reduction.get("eps", 0.1)),
                           seed=stable_seed("reduction", *seed_of, lname))
        for start in range(0, writer.n, chunk):
            X = writer.read_rows(key, start, start + chunk)
            writer.add_rows(layer_key(i, lname, "lp"), start, fn(X) if fn is not None else X)
