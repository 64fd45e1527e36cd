"""Resolve a validated workflow config into concrete subjects, ROIs, models and options.

Shared by the Snakefile and the ``alignpatterns`` command so both see the same run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from alignpatterns.features.registry import (
    ORACLE,
    generator_seed,
    load_registry,
    model_seed,
)

DEFAULT_REPO = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """The config is inconsistent with the dataset or the registry."""


def load_config(path: str | Path) -> dict:
    """Read a YAML config file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err})") from None


def roi_set(name: str, repo: Path = DEFAULT_REPO) -> dict:
    """Read ``resources/rois/<name>.yaml``."""
    path = repo / "resources" / "rois" / f"{name}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in (repo / "resources" / "rois").glob("*.yaml"))
        raise ConfigError(f"{path}: ROI set {name!r} not found (available: {available})")
    return yaml.safe_load(path.read_text())


def resolve_config(config: dict, repo: Path = DEFAULT_REPO) -> dict:
    """Return a copy of ``config`` with resolved ``subjects``, ``rois`` and ``models``.

    - ``subjects: all`` → ``01..K`` for a synthesized dataset, else the subjects on disk;
    - ``rois`` as a ROI-set name → its names (the first R for a synthesized dataset with R ROIs);
    - each model gets ``arch``, ``spec_name`` (its ``registry`` entry, by default its name) and
      ``seed`` (random init: hash(seed, name); the
      ``oracle``: the generator seed derived from the synthesis seed).
    """
    from alignpatterns.data.bmd import BMDLayout
    from alignpatterns.synth.dataset import GENERATOR

    cfg = copy.deepcopy(config)
    ds = cfg["dataset"]
    synth = ds.get("synthesize")
    ds.setdefault("atlas", "synthetic")
    if synth:
        synth = {"seed": 0, "subjects": 6, "rois": 10, "train": 200, "test": 60, **synth}
        ds["synthesize"] = synth
    if cfg["subjects"] == "all":
        if synth:
            cfg["subjects"] = [f"{i:02d}" for i in range(1, synth["subjects"] + 1)]
        else:
            cfg["subjects"] = BMDLayout(Path(ds["root"]), ds.get("space", "fsLR32k"),
                                        ds.get("version", "B")).subjects()
            if not cfg["subjects"]:
                raise ConfigError(f"{ds['root']}: no subjects found")
    if isinstance(cfg["rois"], str):
        rs = roi_set(cfg["rois"], repo)
        names = list(rs["rois"])
        if synth:
            names = names[: synth["rois"]]
        cfg["rois"] = names
        ds["atlas"] = rs.get("atlas", ds["atlas"])
    registry = load_registry(repo / "resources" / "models.yaml")
    models = []
    for m in cfg["models"]:
        m = dict(m)
        if m["weights"] == ORACLE or m["name"] == ORACLE:
            if not synth:
                raise ConfigError("model 'oracle' needs a synthesized dataset "
                                  "(dataset.synthesize)")
            if m["name"] != ORACLE or m["weights"] != ORACLE:
                raise ConfigError("the oracle is written {name: oracle, weights: oracle}")
            m.update(spec_name=GENERATOR, seed=generator_seed(synth["seed"]))
        else:
            spec_name = m.pop("registry", m["name"])
            if spec_name not in registry:
                raise ConfigError(f"model {spec_name!r} is not in resources/models.yaml "
                                  f"(available: {sorted(registry)})")
            m.update(spec_name=spec_name, seed=model_seed(cfg["seed"], m["name"]))
            if (synth and m["weights"] == "random"
                    and registry[spec_name].arch == registry[GENERATOR].arch
                    and m["seed"] == generator_seed(synth["seed"])):
                raise ConfigError(f"candidate {m['name']!r} would reuse the generator's seed")
        m["arch"] = registry[m["spec_name"]].arch
        models.append(m)
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique; found {names}")
    cfg["models"] = models
    feats = {"n_frames": 4, "size": 112, "pool_grid": 4, "batch_size": 32}
    feats.update(cfg.get("features") or {})
    cfg["features"] = feats
    lp = {"alphas": [10.0**k for k in range(-1, 6)], "inner_folds": 5, "outer_folds": 5,
          "n_components": 20, "x_scaling": "global"}
    lp.update(cfg.get("lp") or {})
    cfg["lp"] = lp
    apa = {"variants": ["full", "offdiag", "normalized", "normalized_offdiag"],
           "match": ["pearson"], "margin": 0.1, "min_ceiling": 0.1,
           "n_identification_permutations": 10000,
           "n_permutations": 1000, "n_bootstrap": 0, "missing": "listwise", "preset": None}
    apa.update(cfg.get("apa") or {})
    cfg["apa"] = apa
    return cfg


def model_entry(cfg: dict, name: str) -> dict:
    """The resolved model entry called ``name``."""
    for m in cfg["models"]:
        if m["name"] == name:
            return m
    raise ConfigError(f"model {name!r} not in the config")
