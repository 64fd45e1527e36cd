"""Model registry (``resources/models.yaml``) and seeding of random-init models.

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


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry key (the ``model`` column of every table).
    arch : str
        timm architecture name.
    layers : tuple of str
        Module names read, shallow to deep.
    kwargs : dict
        Constructor kwargs (part of the model's identity).
    family : str
        Architecture family.
    source : str
        Where the model comes from (``timm``).
    """

    name: str
    arch: str
    layers: tuple[str, ...]
    kwargs: dict = field(default_factory=dict)
    family: str = ""
    source: str = "timm"


def load_registry(path: str | Path | None = None) -> dict[str, ModelSpec]:
    """Read the model registry.

    Raises
    ------
    ValueError
        If the file is not a mapping ``models: {name: {arch, layers, ...}}``.
    """
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the model registry ({err})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ValueError(f"{path}: expected a mapping with key 'models', found {type(raw).__name__}")
    out = {}
    for name, entry in raw["models"].items():
        if not isinstance(entry, dict) or "arch" not in entry or not entry.get("layers"):
            raise ValueError(f"{path}: model {name!r} needs 'arch' and a non-empty 'layers' list")
        source = entry.get("source", "timm")
        if source != "timm":
            raise ValueError(f"{path}: model {name!r}: source {source!r} is not supported (timm)")
        out[name] = ModelSpec(name=name, arch=entry["arch"], layers=tuple(entry["layers"]),
                              kwargs=dict(entry.get("kwargs") or {}),
                              family=entry.get("family", ""), source=source)
    return out


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
