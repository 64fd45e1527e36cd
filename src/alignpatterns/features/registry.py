"""Model registry (``resources/models.yaml``), frame policies and seeding of random-init models.

This module imports neither torch nor timm, so the workflow can read the registry cheaply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: Shipped registry, relative to the repository root.
DEFAULT_REGISTRY = Path(__file__).resolve().parents[3] / "resources" / "models.yaml"

#: Candidate name of the synthetic dataset's generator network (its own weights).
ORACLE = "oracle"

SOURCES = ("timm", "torchvision", "custom")
TOKEN_POLICIES = ("grid", "cls", "mean", "both")
FRAME_MODES = ("image", "clip")
LAYOUTS = ("auto", "nchw", "nhwc", "ncthw", "nthwc")
WEIGHTS = ("random", "pretrained")
_KEYS = {"source", "arch", "layers", "kwargs", "family", "weights", "input_size", "mean", "std",
         "tokens", "frames", "layout", "shapes", "control_of", "notes"}


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry key (the ``model`` column of every table).
    arch : str
        timm model name (``resnet50.a1_in1k``), torchvision model builder
        (``torchvision.models.video.r3d_18`` or just ``r3d_18``), or for ``custom`` a dotted
        path ``package.module.factory`` to any callable returning a ``torch.nn.Module``.
    layers : tuple of str, or str, or dict
        Module names read, shallow to deep; or ``"top_level"`` (the model's direct children),
        ``"all"`` (every sub-module) or ``{"regex": PATTERN}`` (names that fully match).
    kwargs : dict
        Constructor kwargs (part of the model's identity).
    family : str
        Architecture family, for reports.
    source : str
        ``timm``, ``torchvision`` or ``custom``.
    weights : str
        Default weights (``pretrained`` or ``random``); the config's ``weights`` wins.
    input_size : int
        Native input resolution in pixels (the declared ``shapes`` are at this size).
    mean, std : tuple of float or None
        Input normalisation; ``None`` takes timm's pretrained config (ImageNet for the rest).
    tokens : str
        Token policy for (batch, tokens, dim) outputs: ``grid`` (patch tokens pooled to a grid),
        ``cls`` (first prefix token), ``mean`` (mean of patch tokens) or ``both`` (cls ‖ mean).
    frames : dict
        Frame policy: ``{"mode": "image"}`` (each frame separately, then pooled over frames) or
        ``{"mode": "clip", "n_frames": T, "size": S}`` (video models: one clip per stimulus).
    layout : str
        Axis order of spatial outputs; ``auto`` infers it as documented in :mod:`.pooling`.
    shapes : dict of str to tuple of int
        Declared output shape (without batch) of each layer at ``input_size`` (tested).
    control_of : str
        For an untrained control: the registry entry it controls.
    """

    name: str
    arch: str
    layers: tuple[str, ...] | str | dict
    kwargs: dict = field(default_factory=dict)
    family: str = ""
    source: str = "timm"
    weights: str = "random"
    input_size: int = 224
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    tokens: str = "grid"
    frames: dict = field(default_factory=lambda: {"mode": "image"})
    layout: str = "auto"
    shapes: dict = field(default_factory=dict)
    control_of: str = ""

    @property
    def is_clip(self) -> bool:
        """True for video models that take one (batch, 3, T, H, W) clip per stimulus."""
        return self.frames.get("mode") == "clip"


def _parse(path: Path, name: str, entry) -> ModelSpec:
    def bad(msg):
        return ValueError(f"{path}: model {name!r}: {msg}")

    if not isinstance(entry, dict) or "arch" not in entry or not entry.get("layers"):
        raise bad("needs 'arch' and a non-empty 'layers' list")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise bad(f"unknown keys {unknown} (allowed: {sorted(_KEYS)})")
    source = entry.get("source", "timm")
    if source not in SOURCES:
        raise bad(f"source {source!r} is not supported (expected one of {list(SOURCES)})")
    layers = entry["layers"]
    if isinstance(layers, list):
        layers = tuple(str(x) for x in layers)
    elif isinstance(layers, dict):
        if set(layers) != {"regex"} or not isinstance(layers["regex"], str):
            raise bad(f"layers must be a list, 'top_level', 'all' or {{regex: PATTERN}}; "
                      f"found {layers!r}")
    elif layers not in ("top_level", "all"):
        raise bad(f"layers must be a list, 'top_level', 'all' or {{regex: PATTERN}}; "
                  f"found {layers!r}")
    tokens = entry.get("tokens", "grid")
    if tokens not in TOKEN_POLICIES:
        raise bad(f"tokens {tokens!r}: expected one of {list(TOKEN_POLICIES)}")
    layout = entry.get("layout", "auto")
    if layout not in LAYOUTS:
        raise bad(f"layout {layout!r}: expected one of {list(LAYOUTS)}")
    weights = entry.get("weights", "random")
    if weights not in WEIGHTS:
        raise bad(f"default weights {weights!r}: expected one of {list(WEIGHTS)}")
    frames = dict(entry.get("frames") or {"mode": "image"})
    if frames.get("mode", "image") not in FRAME_MODES:
        raise bad(f"frames.mode {frames.get('mode')!r}: expected one of {list(FRAME_MODES)}")
    frames.setdefault("mode", "image")
    if frames["mode"] == "clip" and not (isinstance(frames.get("n_frames"), int)
                                         and isinstance(frames.get("size"), int)):
        raise bad("a clip model needs integer frames.n_frames and frames.size")
    shapes = {str(k): tuple(int(d) for d in v) for k, v in (entry.get("shapes") or {}).items()}
    norm = {}
    for key in ("mean", "std"):
        val = entry.get(key)
        if val is not None and (not isinstance(val, list) or len(val) != 3):
            raise bad(f"{key} must be a list of 3 numbers, found {val!r}")
        norm[key] = None if val is None else tuple(float(x) for x in val)
    return ModelSpec(name=name, arch=str(entry["arch"]), layers=layers,
                     kwargs=dict(entry.get("kwargs") or {}), family=entry.get("family", ""),
                     source=source, weights=weights,
                     input_size=int(entry.get("input_size", 224)), tokens=tokens,
                     frames=frames, layout=layout, shapes=shapes,
                     control_of=entry.get("control_of", ""), **norm)


def load_registry(path: str | Path | None = None) -> dict[str, ModelSpec]:
    """Read the model registry.

    Raises
    ------
    ValueError
        If the file is not a mapping ``models: {name: {arch, layers, ...}}`` or an entry is
        malformed; the message names the file and the entry.
    """
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the model registry ({err})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ValueError(f"{path}: expected a mapping with key 'models', found {type(raw).__name__}")
    out = {name: _parse(path, name, entry) for name, entry in raw["models"].items()}
    for spec in out.values():
        if spec.control_of and spec.control_of not in out:
            raise ValueError(f"{path}: model {spec.name!r}: control_of {spec.control_of!r} is "
                             "not a registry entry")
    return out


def untrained_controls(models, registry: dict[str, ModelSpec]) -> dict[str, str]:
    """Trained candidate → its untrained control among a run's models.

    A candidate with ``weights: random`` controls a trained candidate (any other weights but
    the oracle's) when both are built from the same registry entry or from entries of one
    family (an entry and its ``control_of``). The first control in config order wins.

    Parameters
    ----------
    models : sequence of dict
        The resolved config's ``models`` (keys ``name``, ``weights``, ``spec_name``).
    registry : dict of str to ModelSpec

    Returns
    -------
    dict of str to str
    """
    def family(m) -> str:
        spec = m.get("spec_name", m["name"])
        return (registry[spec].control_of or spec) if spec in registry else spec

    trained: dict[str, list[str]] = {}
    for m in models:
        if m["weights"] not in ("random", "oracle"):
            trained.setdefault(family(m), []).append(m["name"])
    out: dict[str, str] = {}
    for m in models:
        if m["weights"] == "random":
            for name in trained.get(family(m), []):
                out.setdefault(name, m["name"])
    return out


@dataclass(frozen=True)
class FramePolicy:
    """How frames are sampled from a video: ``n_frames`` uniformly over the clip (over the first
    ``max_seconds`` when set), or, with ``fps``, ``n_frames`` frames at times 0, 1/fps, 2/fps, …;
    each resized to ``size`` × ``size``."""

    n_frames: int
    size: int
    fps: float | None = None
    max_seconds: float | None = None

    @property
    def id(self) -> str:
        """A file-name-safe identifier, e.g. ``4f112px`` or ``12f4fps3s256px``."""
        rate = "" if self.fps is None else f"{self.fps:g}fps"
        sec = "" if self.max_seconds is None else f"{self.max_seconds:g}s"
        return f"{self.n_frames}f{rate}{sec}{self.size}px"

    def as_dict(self) -> dict:
        return {"n_frames": self.n_frames, "size": self.size, "fps": self.fps,
                "max_seconds": self.max_seconds}


def frame_policy(spec: ModelSpec | None, features: dict) -> FramePolicy:
    """The frame policy of one model under the ``features`` config.

    Image models share the config's policy (``n_frames`` or ``fps``, ``max_seconds``, ``size``),
    so every image model reads the same frame cache. Clip models (``frames.mode: clip``) take
    their own ``n_frames`` and ``size`` from the registry (their architecture fixes them).
    """
    fps = features.get("fps")
    max_seconds = features.get("max_seconds")
    if spec is not None and spec.is_clip:
        return FramePolicy(int(spec.frames["n_frames"]), int(spec.frames["size"]), None,
                           max_seconds)
    return FramePolicy(int(features.get("n_frames", 4)), int(features.get("size", 112)),
                       None if fps is None else float(fps),
                       None if max_seconds is None else float(max_seconds))


def stable_seed(*parts) -> int:
    """A 31-bit seed from a stable hash of ``parts`` (independent of PYTHONHASHSEED)."""
    blob = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


def model_seed(seed: int, name: str) -> int:
    """Seed of a random-init candidate: hash(config seed, model name)."""
    return stable_seed("model", seed, name)


def generator_seed(synth_seed: int) -> int:
    """Seed of the synthetic dataset's generator network, derived from the ``synth`` seed."""
    return stable_seed("generator", synth_seed)


def model_frame_policies(cfg: dict, registry: dict[str, ModelSpec] | None = None
                         ) -> dict[str, FramePolicy]:
    """Frame policy of every model of a resolved config (models sharing one share its cache)."""
    reg = registry if registry is not None else load_registry()
    return {m["name"]: frame_policy(reg[m["spec_name"]], cfg.get("features") or {})
            for m in cfg["models"]}
