"""Layer activations of registry models on video frames.

Frames are normalised with the model's own input config, passed through the network in batches
(image models: ``batch_size`` frames, flat over stimuli; clip models: ``batch_size`` clips shaped
(3, T, H, W)); each read layer's output is pooled with :func:`.pooling.pool_output` in a forward
hook, and the frames of each stimulus are pooled (mean, max or keep) as soon as its last frame has
been through the network. Results go to a sink as they complete, so memory is bounded by a batch
and the layers' rows of the stimuli in flight. The same code builds the synthetic dataset's
generator responses, so the ``oracle`` candidate sees exactly what the generator saw.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from alignpatterns.features.layers import resolve_layers
from alignpatterns.features.models import (  # noqa: F401 - re-exported
    WeightsError,
    build_meta,
    build_model,
    normalization,
)
from alignpatterns.features.pooling import FRAME_POOLS, pool_frames, pool_output
from alignpatterns.features.registry import ModelSpec
from alignpatterns.features.sources import CachedFrames

log = logging.getLogger("alignpatterns")

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ExtractOptions:
    """How activations are read and pooled.

    Attributes
    ----------
    pool_grid : int
        Spatial maps are average-pooled to at most ``pool_grid`` × ``pool_grid``.
    batch_size : int
        Frames (image models) or clips (clip models) per forward pass; see
        :func:`auto_batch_size` for ``"auto"``.
    frame_pool : str
        ``mean``, ``max`` or ``keep`` over the frames of a stimulus (image models).
    tokens : str or None
        Token policy override (``grid``, ``cls``, ``mean``, ``both``); None: the registry's.
    precision : str
        ``fp32`` or ``bf16`` (autocast; meant for GPUs).
    device : str
        ``cpu`` or ``cuda``.
    progress : bool
        Show a tqdm bar in stimuli/s.
    """

    pool_grid: int = 4
    batch_size: int = 32
    frame_pool: str = "mean"
    tokens: str | None = None
    precision: str = "fp32"
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self):
        if self.frame_pool not in FRAME_POOLS:
            raise ValueError(f"frame_pool {self.frame_pool!r}: expected one of "
                             f"{list(FRAME_POOLS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: expected one of {list(PRECISIONS)}")


def _leaf_bytes(spec: ModelSpec, input_shape: tuple[int, ...]) -> int:
    """Largest activation of one sample (bytes, float32), from a forward on the meta device."""
    model = build_meta(spec)
    sizes = []

    def hook(_m, _i, out):
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(1, *input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return 4 * max(sizes + [int(np.prod(input_shape))])


def auto_batch_size(spec: ModelSpec, input_shape: tuple[int, ...], device: str,
                    cap: int | None = None) -> int:
    """A batch size that fits memory: about a quarter of the free memory (CUDA:
    ``torch.cuda.mem_get_info``; CPU: available RAM, at most 2 GiB) over 4× the largest
    activation of one sample. Capped at 64 on CPU (larger batches do not run faster there) and
    512 on CUDA.

    Parameters
    ----------
    input_shape : tuple of int
        One sample: (3, H, W) or (3, T, H, W).
    """
    per_sample = 4 * _leaf_bytes(spec, input_shape)
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info()
        budget, cap = free // 4, cap or 512
    else:
        import psutil

        budget, cap = min(psutil.virtual_memory().available // 4, 2 << 30), cap or 64
    return int(max(1, min(cap, budget // max(per_sample, 1))))


class _StopForward(Exception):
    """Raised by a hook once every read layer of the batch is captured (see :class:`_Reader`)."""


class _Reader:
    """Forward hooks that pool each read layer into ``captured``.

    Layers after the last read one (a VGG's 4096-wide classifier head, say) cost up to a third
    of a forward pass and are never read, so the pass stops as soon as every read layer has
    been captured. That is only safe when each read module runs once per pass (a module reused
    inside the network overwrites its capture on a later call), so the first batch runs the
    whole network and counts the calls; later batches stop early only if every count was 1.
    """

    def __init__(self, model, layers, grid, n_prefix, tokens, layout):
        modules = dict(model.named_modules())
        self.captured: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {n: 0 for n in layers}
        self.stop_early = False
        self._probed = False
        n_layers = len(layers)

        def make(name):
            def fn(_module, _inp, out):
                pooled = pool_output(out, grid, n_prefix, tokens, layout)
                self.captured[name] = pooled.float().cpu()
                self.calls[name] += 1
                if self.stop_early and len(self.captured) == n_layers:
                    raise _StopForward
            return fn

        self.handles = [modules[n].register_forward_hook(make(n)) for n in layers]

    def forward(self, model, x) -> None:
        """Run ``model(x)`` until every read layer is captured (into ``captured``)."""
        self.captured.clear()
        try:
            model(x)
        except _StopForward:
            pass
        if not self._probed:
            self._probed = True
            self.stop_early = all(c == 1 for c in self.calls.values())

    def remove(self):
        for h in self.handles:
            h.remove()


def _oom_message(model, layers, x, captured, err) -> str:
    """Which layer the forward pass ran out of memory at, and how big the batch's tensors are."""
    done = [n for n in layers if n in captured]
    at = next((n for n in layers if n not in captured), None)
    mb = x.element_size() * x.nelement() / 2**20
    where = (f"while computing layer {at!r} (after {len(done)} of {len(layers)} read layers)"
             if at is not None else "after the last read layer")
    sizes = ", ".join(f"{n}: {tuple(captured[n].shape)}" for n in done[-3:])
    return (f"{type(model).__name__}: out of memory {where}; input batch {tuple(x.shape)} "
            f"({mb:.0f} MiB){'; pooled so far ' + sizes if sizes else ''}. Lower "
            f"features.batch_size (or use 'auto'), features.size or the layers read ({err})")


def _batches(source: Iterable[tuple[int, np.ndarray]], batch_size: int, clip: bool):
    """Yield (uint8 batch, owners): owners[k] is the stimulus of batch row k; the last item of a
    stimulus is marked by yielding ``done`` stimulus indices with the batch."""
    buf: list[np.ndarray] = []
    owners: list[int] = []
    n_rows = 0
    for i, frames in source:
        items = [frames] if clip else list(frames)
        for k, item in enumerate(items):
            buf.append(item)
            owners.append(i if k < len(items) - 1 else -1 - i)  # negative: last of stimulus
            n_rows += 1
            if n_rows == batch_size:
                yield np.stack(buf), owners
                buf, owners, n_rows = [], [], 0
    if buf:
        yield np.stack(buf), owners


@torch.inference_mode()
def run(model: torch.nn.Module, source, layers: Sequence[str], sink: Callable[[int, dict], None],
        options: ExtractOptions, mean: Sequence[float], std: Sequence[float],
        clip: bool = False, n_prefix: int | None = None, tokens: str = "grid",
        layout: str = "auto") -> None:
    """Stream a frame source through ``model`` and hand pooled features to ``sink``.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    source : iterable of (int, ndarray uint8 (n_frames, H, W, 3))
        Stimuli in order (:mod:`.sources`).
    layers : sequence of str
        Validated module names.
    sink : callable(stimulus_index, {layer: ndarray})
        Receives each stimulus's features, float32 (features,) or (n_frames, features) (keep).
    options : ExtractOptions
    mean, std : sequence of 3 floats
        Input normalisation.
    clip : bool
        Clip model: one (3, T, H, W) input per stimulus.
    n_prefix, tokens, layout
        See :func:`.pooling.pool_output`.
    """
    device = torch.device(options.device)
    model = model.to(device)
    shape = (1, 3, 1, 1, 1) if clip else (1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
    reader = _Reader(model, layers, options.pool_grid, n_prefix, tokens, layout)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if options.precision == "bf16" else contextlib.nullcontext())
    bar = None
    if options.progress:
        from tqdm import tqdm

        total = len(source) if hasattr(source, "__len__") else None
        bar = tqdm(total=total, unit="stim", desc="extract", mininterval=2.0)
    pending: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    try:
        for batch, owners in _batches(source, options.batch_size, clip):
            x = torch.from_numpy(batch).to(device)
            if clip:  # (B, T, H, W, 3) → (B, 3, T, H, W)
                x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)
            else:
                x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - mean_t) / std_t
            try:
                with autocast:
                    reader.forward(model, x)
            except (MemoryError, torch.OutOfMemoryError) as err:
                raise MemoryError(_oom_message(model, layers, x, reader.captured, err)) from None
            start = 0
            for k, owner in enumerate(owners):
                if owner >= 0:
                    continue
                for name in layers:
                    pending[name].append(reader.captured[name][start:k + 1])
                rows = {name: torch.cat(pending[name]) for name in layers}
                for name in layers:
                    pending[name].clear()
                feats = {name: (r[0] if clip else pool_frames(r, options.frame_pool))
                         .numpy().astype(np.float32) for name, r in rows.items()}
                sink(-1 - owner, feats)
                if bar is not None:
                    bar.update(1)
                start = k + 1
            if start < len(owners):
                for name in layers:
                    pending[name].append(reader.captured[name][start:])
    finally:
        reader.remove()
        if bar is not None:
            bar.close()


def extract_layers(model: torch.nn.Module, frames: np.ndarray, layers: Sequence[str],
                   pool_grid: int = 4, batch_size: int = 32, device: str = "cpu",
                   progress: bool = False, frame_pool: str = "mean",
                   tokens: str = "grid") -> dict[str, np.ndarray]:
    """Frame-pooled, spatially pooled activations of ``layers`` of an image model, in memory.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model in eval mode (normalisation from its ``pretrained_cfg``).
    frames : ndarray, uint8, shape (n_videos, n_frames, height, width, 3)
        RGB frames.
    layers : sequence of str
        Module names to read.
    pool_grid, batch_size, device, progress, frame_pool, tokens
        As in :class:`ExtractOptions`.

    Returns
    -------
    dict of str to ndarray, float32, shape (n_videos, n_features_layer)
        (n_videos, n_frames, n_features_layer) with ``frame_pool='keep'``.
    """
    source = CachedFrames(frames)
    layers = resolve_layers(model, list(layers), type(model).__name__)
    spec = ModelSpec(name=type(model).__name__, arch="", layers=tuple(layers))
    out: dict[str, list] = {name: [None] * len(source) for name in layers}

    def sink(i, feats):
        for name in layers:
            out[name][i] = feats[name]

    opts = ExtractOptions(pool_grid=pool_grid, batch_size=batch_size, device=device,
                          progress=progress, frame_pool=frame_pool)
    mean, std = normalization(spec, model)
    run(model, source, layers, sink, opts, mean, std,
        n_prefix=getattr(model, "num_prefix_tokens", None), tokens=tokens)
    return {name: np.stack(rows).astype(np.float32) for name, rows in out.items()}


def options_dict(options: ExtractOptions) -> dict:
    """The options that change features (for provenance)."""
    d = asdict(options)
    d.pop("progress")
    return d
