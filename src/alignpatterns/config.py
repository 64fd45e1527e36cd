"""Resolve a validated workflow config into concrete subjects, ROIs, models and options.

Shared by the Snakefile and the ``alignpatterns`` command so both see the same run.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from alignpatterns.features.registry import (
    ORACLE,
    generator_seed,
    load_registry,
    model_seed,
)

DEFAULT_REPO = Path(__file__).resolve().parents[2]
SCHEMA = DEFAULT_REPO / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is invalid, or inconsistent with the dataset or the registry."""


def key_path(parts: Sequence) -> str:
    """``("lp", "alphas", 2)`` → ``"lp.alphas[2]"`` (``"(top level)"`` when empty)."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _did_you_mean(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def explain_validation_error(err) -> str:
    """One line naming the config key and what is wrong, for a ``jsonschema.ValidationError``.

    Unknown keys and enum values come with the allowed ones and the closest match; for ``oneOf``
    alternatives the most specific failure is reported.
    """
    while err.validator in ("oneOf", "anyOf") and err.context:
        err = _closest_alternative(err)
    where = list(err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        return (f"config key {key_path([*where, extra[0]])}: unknown key (allowed here: "
                f"{', '.join(allowed)}){_did_you_mean(extra[0], allowed)}")
    if err.validator == "enum":
        return (f"config key {key_path(where)}: {err.instance!r} is not one of "
                f"{err.validator_value}{_did_you_mean(err.instance, err.validator_value)}")
    return f"config key {key_path(where)}: {err.message}"


def _closest_alternative(err):
    """The error of the ``oneOf`` branch the value was meant for: a branch whose type matches
    (the value fails deeper inside it), else jsonschema's best match."""
    import jsonschema

    by_branch: dict[int, list] = {}
    for e in err.context:
        by_branch.setdefault(e.schema_path[0], []).append(e)
    shallow = ("type", "const")
    meant = [errs for errs in by_branch.values()
             if not any(e.validator in shallow and not e.relative_path for e in errs)]
    if len(meant) == 1:
        return max(meant[0], key=lambda e: len(e.relative_path))
    return jsonschema.exceptions.best_match(err.context)


def schema_error(err: Exception) -> Exception:
    """The :class:`ConfigError` for a failed Snakemake ``validate`` (``err`` itself otherwise).

    Snakemake wraps the ``jsonschema.ValidationError`` in a ``WorkflowError`` whose text is the
    whole schema; this gives the user the key path instead.
    """
    import jsonschema

    cause = err.__cause__ or err.__context__
    if isinstance(cause, jsonschema.ValidationError):
        return ConfigError(f"invalid config: {explain_validation_error(cause)}")
    return err


def validate_config(cfg: dict, source: str | Path = "config") -> dict:
    """Validate ``cfg`` against the workflow schema (filling its defaults) as Snakemake does.

    Raises
    ------
    ConfigError
        Naming ``source`` and the offending key path.
    """
    from snakemake.utils import validate

    try:
        validate(cfg, str(SCHEMA))
    except Exception as err:  # snakemake's WorkflowError wraps the ValidationError
        new = schema_error(err)
        if new is err:
            raise
        raise ConfigError(f"{source}: {new}") from None
    return cfg


def load_config(path: str | Path) -> dict:
    """Read a YAML config file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err})") from None


def merge_config(base: dict, over: dict) -> dict:
    """Merge ``over`` into ``base`` in place as Snakemake merges a later ``--configfile``:
    nested dicts key by key, anything else replaced. Returns ``base``."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge_config(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def roi_set(name: str, repo: Path = DEFAULT_REPO) -> dict:
    """Read ``resources/rois/<name>.yaml``."""
    path = repo / "resources" / "rois" / f"{name}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in (repo / "resources" / "rois").glob("*.yaml"))
        raise ConfigError(f"{path}: ROI set {name!r} not found (available: {available})")
    return yaml.safe_load(path.read_text())


def resolve_config(config: dict, repo: Path = DEFAULT_REPO, counts: bool = True) -> dict:
    """Return a copy of ``config`` with resolved ``subjects``, ``rois`` and ``models``.

    With ``counts`` (the workflow) the subject, ROI and fold counts APA needs are checked too
    (:func:`check_counts`); ``alignpatterns check-data`` checks the data alone and leaves them
    out, so that it can inspect any subset of a dataset.

    - ``subjects: all`` → ``01..K`` for a synthesized dataset, else the subjects on disk;
    - ``rois`` as a ROI-set name → its names (the first R for a synthesized dataset with R ROIs);
    - each model gets ``arch``, ``spec_name`` (its ``registry`` entry, by default its name) and
      ``seed`` (random init: hash(seed, name); the
      ``oracle``: the generator seed derived from the synthesis seed).
    """
    from alignpatterns.data.dataset import open_dataset
    from alignpatterns.synth.dataset import GENERATOR

    cfg = copy.deepcopy(config)
    ds = cfg["dataset"]
    synth = ds.get("synthesize")
    ds.setdefault("atlas", "synthetic")
    if synth:
        synth = {"seed": 0, "subjects": 6, "rois": 10, "train": 200, "test": 60, **synth}
        ds["synthesize"] = synth
    if not synth and not Path(ds["root"]).exists():
        raise ConfigError(f"{ds['root']}: dataset root not found (dataset.root, relative to the "
                          "working directory); see config/README.md for how to obtain the data")
    if cfg["subjects"] == "all":
        if synth:
            cfg["subjects"] = [f"{i:02d}" for i in range(1, synth["subjects"] + 1)]
        else:
            cfg["subjects"] = open_dataset(ds).subjects()
            if not cfg["subjects"]:
                raise ConfigError(f"{ds['root']}: no subjects found")
    elif synth:
        known = [f"{i:02d}" for i in range(1, synth["subjects"] + 1)]
        for i, sub in enumerate(cfg["subjects"]):
            if sub not in known:
                raise ConfigError(f"config key subjects[{i}]: subject {sub!r} is not in the "
                                  f"synthesized dataset (its subjects: {known})")
    if isinstance(cfg["rois"], str):
        try:
            rs = roi_set(cfg["rois"], repo)
        except ConfigError as err:
            raise ConfigError(f"config key rois: {err}") from None
        names = list(rs["rois"])
        if synth:
            names = names[: synth["rois"]]
        cfg["rois"] = names
        ds["atlas"] = rs.get("atlas", ds["atlas"])
    elif synth:  # a real atlas's ROI names are checked against its label table (check_data)
        known = list(roi_set("synthetic", repo)["rois"])[: synth["rois"]]
        for i, roi in enumerate(cfg["rois"]):
            if roi not in known:
                raise ConfigError(f"config key rois[{i}]: ROI {roi!r} is not in the synthesized "
                                  f"dataset (its ROIs: {known}){_did_you_mean(roi, known)}")
    if len(set(cfg["rois"])) != len(cfg["rois"]):
        raise ConfigError(f"config key rois: ROI names must be unique; found {cfg['rois']}")
    if counts:
        check_counts(cfg)
    registry = load_registry(repo / "resources" / "models.yaml")
    models = []
    for i, m in enumerate(cfg["models"]):
        m = dict(m)
        if m["weights"] == ORACLE or m["name"] == ORACLE:
            if not synth:
                raise ConfigError(f"config key models[{i}]: model 'oracle' needs a synthesized "
                                  "dataset (dataset.synthesize)")
            if m["name"] != ORACLE or m["weights"] != ORACLE:
                raise ConfigError(f"config key models[{i}]: the oracle is written "
                                  "{name: oracle, weights: oracle}")
            m.update(spec_name=GENERATOR, seed=generator_seed(synth["seed"]))
        else:
            spec_name = m.pop("registry", m["name"])
            if spec_name not in registry:
                raise ConfigError(f"config key models[{i}].name: model {spec_name!r} is not in "
                                  f"resources/models.yaml (available: {sorted(registry)})"
                                  f"{_did_you_mean(spec_name, registry)}")
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
    cfg.setdefault("nan_betas", "drop")
    lp = {"alphas": [10.0**k for k in range(-1, 6)], "inner_folds": 5, "outer_folds": 5,
          "n_components": 20, "x_scaling": "global", "protocol": "default"}
    lp.update(cfg.get("lp") or {})
    cfg["lp"] = lp
    apa = {"variants": ["full", "offdiag", "normalized", "normalized_offdiag"],
           "match": ["pearson"], "margin": 0.1, "min_ceiling": 0.1,
           "n_identification_permutations": 10000, "n_mantel_permutations": 10000,
           "n_permutations": 1000, "n_bootstrap": 0, "missing": "listwise", "preset": None,
           "ci_method": "jackknife-t", "partners": None,
           "brain_avg_k": [1, 2, 4], "brain_avg_max_sets": 5, "brain_avg_vertices": "union"}
    apa.update(cfg.get("apa") or {})
    cfg["apa"] = apa
    if apa["missing"] == "pairwise" and apa["ci_method"] == "percentile-bootstrap":
        raise ConfigError("config key apa.missing: pairwise needs apa.ci_method jackknife-t (the "
                          "percentile bootstrap resamples assume every subject has every ROI)")
    if apa["ci_method"] == "percentile-bootstrap" and apa["n_bootstrap"] < 1:
        raise ConfigError("config key apa.n_bootstrap: apa.ci_method percentile-bootstrap needs "
                          f"≥ 1 subject resample; found {apa['n_bootstrap']}")
    if apa["preset"] is not None:
        check_preset(cfg, apa["preset"], repo)
    return cfg


def preset_path(name: str, repo: Path = DEFAULT_REPO) -> Path:
    """``config/presets/<name>.yaml``.

    Raises
    ------
    ConfigError
        When there is no such preset (naming the available ones).
    """
    path = repo / "config" / "presets" / f"{name}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in (repo / "config" / "presets").glob("*.yaml"))
        raise ConfigError(f"config key apa.preset: preset {name!r} not found: expected {path} "
                          f"(available: {available}){_did_you_mean(name, available)}")
    return path


def _leaves(d: dict, prefix: tuple = ()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, (*prefix, k))
        else:
            yield (*prefix, k), v


def check_preset(cfg: dict, name: str, repo: Path = DEFAULT_REPO) -> None:
    """A config that says ``apa.preset: <name>`` must hold every key of the preset file
    unchanged (config/README.md "Presets": the preset is an overlay given after the dataset
    config; a later ``--configfile`` or ``--config`` that changes one of its keys makes the run
    something else, so it is an error rather than silently a different analysis).

    Raises
    ------
    ConfigError
        Naming the first key whose value differs, both values and the preset file.
    """
    path = preset_path(name, repo)
    preset = load_config(path)
    for keys, want in _leaves(preset):
        node, found = cfg, True
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                found = False
                break
            node = node[k]
        if not found or not _same(node, want):
            got = repr(node) if found else "nothing"
            raise ConfigError(
                f"config key {key_path(keys)}: the {name!r} preset ({path}) sets {want!r}, the "
                f"config has {got}; give the preset last (--configfile <dataset config> {path}) "
                "and change none of its keys, or remove apa.preset to run a variation")


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0))
    return a == b


def min_rois(variants: Sequence[str]) -> int:
    """ROIs that APA needs: a profile correlation needs ≥ 3 entries, and the off-diagonal
    variants leave out the ROI itself."""
    from alignpatterns.patterns.apa import OFFDIAG_VARIANTS

    return 4 if any(v in OFFDIAG_VARIANTS for v in variants) else 3


def check_counts(cfg: dict) -> None:
    """Subject, ROI and stimulus counts that APA and the LP folds need (resolved ``cfg``).

    Raises
    ------
    ConfigError
        Naming the config key, what is needed and what was found.
    """
    from alignpatterns.patterns.apa import MIN_SUBJECTS_BASELINE

    subjects, rois = cfg["subjects"], cfg["rois"]
    if len(subjects) < MIN_SUBJECTS_BASELINE:
        raise ConfigError(
            f"config key subjects: APA needs ≥ {MIN_SUBJECTS_BASELINE} subjects (a stand-in and "
            f"references that exclude both the target and the stand-in); found {len(subjects)} "
            f"({subjects})")
    variants = (cfg.get("apa") or {}).get("variants") or ["full", "offdiag", "normalized",
                                                          "normalized_offdiag"]
    need = min_rois(variants)
    if len(rois) < need:
        raise ConfigError(
            f"config key rois: APA variants {list(variants)} need ≥ {need} ROIs (a profile "
            f"correlation over ≥ 3 target ROIs); found {len(rois)} ({rois})")
    synth = cfg["dataset"].get("synthesize")
    if synth:
        n_train = synth.get("train", 200) - sum(
            1 for s in cfg["dataset"].get("exclude_stimuli", [])
            if int(s.removeprefix("vid")) <= synth.get("train", 200))
        check_folds(cfg.get("lp") or {}, n_train)


def check_folds(lp: dict, n_train: int) -> None:
    """The LP folds fit ``n_train`` training stimuli: ``lp.outer_folds`` ≤ n_train, and
    ``lp.inner_folds`` ≤ the stimuli left for fitting inside an outer fold.

    Raises
    ------
    ConfigError
        Naming the config key, the folds and the number of stimuli.
    """
    outer, inner = int(lp.get("outer_folds", 5)), int(lp.get("inner_folds", 5))
    if outer > n_train:
        raise ConfigError(f"config key lp.outer_folds: {outer} folds need ≥ {outer} training "
                          f"stimuli; the dataset has {n_train}")
    fit = n_train - -(-n_train // outer)  # stimuli outside the largest outer fold
    if inner > fit:
        raise ConfigError(f"config key lp.inner_folds: {inner} folds need ≥ {inner} stimuli "
                          f"inside an outer fold; {n_train} training stimuli in {outer} outer "
                          f"folds leave {fit}")


def model_entry(cfg: dict, name: str) -> dict:
    """The resolved model entry called ``name``."""
    for m in cfg["models"]:
        if m["name"] == name:
            return m
    raise ConfigError(f"model {name!r} not in the config")
