"""Deterministic, atomic writers for tables and array stores.

Every result file goes through this module so that the same config and seed give byte-identical
outputs and a failed job never leaves a partial file:

- tables: rows sorted by key columns, index reset, fixed column order and dtypes, provenance in the
  Parquet key-value metadata (package versions and config hash; never times, hosts or paths);
- array stores: ``.npz`` archives with sorted keys and fixed zip timestamps, loadable with
  :func:`numpy.load`;
- everything is written to a temporary file in the target directory and moved into place with
  :func:`os.replace`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Column order and dtypes of every table the workflow writes (DESIGN.md, Contracts → Tables).
TABLE_SCHEMAS: dict[str, dict[str, str]] = {
    "model_brain": {
        "measure": "string", "model": "string", "weights": "string", "layer": "string",
        "layer_index": "int64", "subject": "string", "roi": "string", "split": "string",
        "score": "float64", "n_source_dims": "int64", "n_vertices": "int64",
    },
    "model_brain_summary": {
        "measure": "string", "model": "string", "weights": "string", "roi": "string",
        "layer": "string", "layer_index": "int64", "score_mean": "float64", "ci_low": "float64",
        "ci_high": "float64", "ceiling_mean": "float64", "normalized": "float64",
        "distinguishable_from_best": "boolean",
    },
    "brain_brain": {
        "measure": "string", "source_subject": "string", "source_roi": "string",
        "target_subject": "string", "target_roi": "string", "split": "string",
        "score": "float64", "n_source_dims": "int64", "n_vertices": "int64",
    },
    "brain_within": {
        "measure": "string", "subject": "string", "source_roi": "string",
        "target_roi": "string", "score": "float64", "score_odd_to_even": "float64",
        "score_even_to_odd": "float64", "n_reps_odd": "int64", "n_reps_even": "int64",
        "n_vertices": "int64",
    },
    "brain_within_summary": {
        "measure": "string", "variant": "string", "roi": "string", "n_subjects": "int64",
        "n_entries": "int64", "r_within_between": "float64",
        "r_within_between_ci_low": "float64", "r_within_between_ci_high": "float64",
        "aps_within": "float64", "aps_between": "float64", "mean_within": "float64",
        "mean_between": "float64",
    },
    "ceilings": {
        "measure": "string", "subject": "string", "roi": "string", "split": "string",
        "kind": "string", "value": "float64", "n_reps": "float64",
    },
    "apa": {
        "measure": "string", "variant": "string", "match": "string", "selection": "string",
        "candidate": "string", "weights": "string", "roi": "string", "layer": "string",
        "subject": "string", "stand_in_subject": "string", "reference": "string",
        "n_entries": "int64", "aps": "float64",
    },
    "apa_summary": {
        "measure": "string", "variant": "string", "match": "string", "selection": "string",
        "candidate": "string",
        "weights": "string", "roi": "string", "layer": "string", "n_subjects": "int64",
        "n_entries": "int64", "ci_method": "string", "aps_mean": "float64", "aps_ci_low": "float64",
        "aps_ci_high": "float64", "brain_aps_mean": "float64", "delta": "float64",
        "delta_ci_low": "float64", "delta_ci_high": "float64", "margin": "float64",
        "spec_margin": "float64", "spec_ci_low": "float64", "relerr": "float64",
        "p_stimulus": "float64",
        "q_stimulus": "float64", "passes": "boolean", "passes_margin_0_05": "boolean",
        "passes_margin_0_1": "boolean", "passes_margin_0_2": "boolean",
        # subject × stimulus bootstrap of Δ (patterns/apa_boot.py)
        "delta_boot_se": "float64", "delta_boot_ci_low": "float64",
        "delta_boot_ci_high": "float64", "n_bootstrap": "int64",
    },
    "apa_nulls": {
        "measure": "string", "variant": "string", "match": "string", "null": "string",
        "roi": "string", "n_subjects": "int64", "n_entries": "int64", "aps_mean": "float64",
        "aps_ci_low": "float64", "aps_ci_high": "float64", "brain_aps_mean": "float64",
        "delta": "float64", "delta_ci_low": "float64", "delta_ci_high": "float64",
        "spec_margin": "float64",
    },
    "apa_confusion": {
        "measure": "string", "variant": "string", "match": "string", "candidate": "string",
        "weights": "string", "roi": "string", "identified_roi": "string", "fraction": "float64",
        "top1_accuracy": "float64", "top1_p": "float64", "chance": "float64",
        "n_draws": "int64",
    },
    "apa_whole_model": {
        "measure": "string", "candidate": "string", "weights": "string", "match": "string",
        "layers": "string", "n_pairs": "int64", "n_pairs_excluded": "int64", "r": "float64",
        "p_mantel": "float64", "n_draws": "int64", "model_r_loo": "float64",
        "brain_r": "float64", "delta": "float64",
    },
    "check_data": {
        "subject": "string", "roi": "string", "n_vertices": "int64", "n_reliable": "int64",
        "median_ncsnr": "float64", "missing": "boolean", "reason": "string",
    },
    # brain_avg baseline (patterns/brain_avg.py): stand-in scores (test split), APS by k
    "brain_avg": {
        "measure": "string", "k": "int64", "stand_in": "string", "target_subject": "string",
        "source_roi": "string", "target_roi": "string", "score": "float64",
        "n_source_dims": "int64", "n_source_vertices": "int64", "n_vertices": "int64",
    },
    "apa_brain_avg": {
        "measure": "string", "variant": "string", "match": "string", "roi": "string",
        "k": "int64", "n_subjects": "int64", "n_targets": "int64", "n_sets": "int64",
        "n_entries": "int64", "ci_method": "string", "aps_brain_avg": "float64",
        "ci_low": "float64", "ci_high": "float64", "reason": "string",
    },
    # synthetic datasets only: CKA and RSA(ROI's driving generator layer, candidate's best layer)
    "synth_layer_cka": {
        "candidate": "string", "weights": "string", "roi": "string", "driver_layer": "string",
        "best_layer": "string", "best_layer_index": "int64", "cka": "float64",
        "rsa_best_layer": "string", "rsa_best_layer_index": "int64", "rsa": "float64",
        "eccentricity_r": "float64",
    },
}

#: Key columns (sort order) of each table.
TABLE_KEYS: dict[str, list[str]] = {
    "model_brain": ["measure", "model", "weights", "subject", "roi", "split", "layer_index"],
    "model_brain_summary": ["measure", "model", "weights", "roi"],
    "brain_brain": ["measure", "split", "target_subject", "source_subject", "source_roi",
                    "target_roi"],
    "brain_within": ["measure", "subject", "source_roi", "target_roi"],
    "brain_within_summary": ["measure", "variant", "roi"],
    "ceilings": ["measure", "split", "kind", "subject", "roi"],
    "apa": ["measure", "variant", "match", "selection", "candidate", "weights", "roi", "subject",
            "stand_in_subject"],
    "apa_summary": ["measure", "variant", "match", "selection", "candidate", "weights", "roi"],
    "apa_nulls": ["measure", "variant", "match", "null", "roi"],
    "apa_confusion": ["measure", "variant", "match", "candidate", "weights", "roi",
                      "identified_roi"],
    "apa_whole_model": ["measure", "match", "candidate", "weights"],
    "check_data": ["subject", "roi"],
    "brain_avg": ["measure", "k", "target_subject", "stand_in", "source_roi", "target_roi"],
    "apa_brain_avg": ["measure", "variant", "match", "k", "roi"],
    "synth_layer_cka": ["candidate", "weights", "roi"],
}


#: Test hook: ``"<glob>:<seconds>"`` pauses every write whose file name matches ``<glob>`` after
#: the temporary file is complete and before it is moved into place, so that a test can kill the
#: writing process at the worst moment (tests/test_reliability_interrupt.py).
PAUSE_ENV = "ALIGNPATTERNS_TEST_PAUSE_WRITE"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """Permissions of a normally created file: 0o666 minus the umask (temp files are 0o600)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Permissions of a normally created directory: 0o777 minus the umask."""
    return 0o777 & ~_umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by writers that were killed mid-write.

    Temporary names are ``.<name>.<pid>.<random><suffix>.tmp``; a file whose writer process is
    gone is stale. Returns the removed paths.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        parts = tmp.name[len(path.name) + 2:].split(".", 1)
        if not parts[0].isdigit() or int(parts[0]) == os.getpid():
            continue
        if not _pid_alive(int(parts[0])):
            with contextlib.suppress(FileNotFoundError):
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink()
            removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _maybe_pause(path: Path) -> None:
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    pattern, _, seconds = spec.rpartition(":")
    if fnmatch.fnmatch(path.name, pattern):
        time.sleep(float(seconds))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    The temporary file lives in the destination directory (so :func:`os.replace` is an atomic
    rename on the same file system), is named ``.<name>.<pid>.<random><suffix>.tmp`` (hidden, and
    never a name a workflow rule declares), and gets normal file permissions before the rename.
    Temporary files of earlier writers that were killed are removed first. A process killed at
    any moment leaves either the previous ``path`` or the complete new one, never a partial file.

    Parameters
    ----------
    path : path-like
        Final destination. Its parent directory is created if needed.
    suffix : str
        Suffix for the temporary file (some writers infer the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix + ".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        _maybe_pause(path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def config_hash(config: Mapping) -> str:
    """Stable short hash of a (JSON-serialisable) config mapping."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


#: Software whose versions every table records (besides alignpatterns and Python).
PROVENANCE_PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "torch", "timm",
                       "av", "matplotlib", "snakemake")


def provenance(config: Mapping | None = None) -> dict[str, str]:
    """Package versions and the config hash; never times, hosts, paths or job ids.

    Parameters
    ----------
    config : mapping, optional
        The settings the output depends on (a rule's ``params.cfg``); their hash is stored as
        ``config_hash`` and their top-level keys as ``config_keys``.

    Returns
    -------
    dict of str → str
        ``alignpatterns``, ``python``, one entry per :data:`PROVENANCE_PACKAGES` (``absent`` if
        not installed) and, with ``config``, ``config_hash`` and ``config_keys``.
    """
    import importlib.metadata as md
    import platform

    import alignpatterns

    info = {"alignpatterns": alignpatterns.__version__, "python": platform.python_version()}
    for pkg in PROVENANCE_PACKAGES:
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = "absent"
    if config is not None:
        info["config_hash"] = config_hash(config)
        info["config_keys"] = ",".join(sorted(str(k) for k in config))
    return info


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The provenance stored in a table written by :func:`write_table`.

    Raises
    ------
    ValueError
        If ``path`` is not a Parquet file or carries no alignpatterns provenance.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: table not found")
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as err:  # pyarrow raises ArrowInvalid and OSError subclasses
        raise ValueError(f"{path}: not a readable Parquet table ({err})") from None
    if b"alignpatterns" not in meta:
        raise ValueError(f"{path}: no alignpatterns provenance in the Parquet metadata")
    return json.loads(meta[b"alignpatterns"])


def coerce_table(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Return ``df`` with the columns, order, dtypes and row order of table ``kind``.

    Raises
    ------
    ValueError
        If columns are missing or unexpected.
    """
    schema = TABLE_SCHEMAS[kind]
    missing = [c for c in schema if c not in df.columns]
    extra = [c for c in df.columns if c not in schema]
    if missing or extra:
        raise ValueError(
            f"table {kind!r}: expected columns {list(schema)}, missing {missing}, unexpected {extra}"
        )
    out = df.loc[:, list(schema)].copy()
    for col, dtype in schema.items():
        if dtype == "boolean":
            out[col] = out[col].astype("boolean")
        else:
            out[col] = out[col].astype(dtype)
    keys = [k for k in TABLE_KEYS[kind] if k in out.columns]
    out = out.sort_values(keys, kind="mergesort", na_position="last").reset_index(drop=True)
    return out


def write_table(df: pd.DataFrame, path: str | os.PathLike, kind: str,
                config: Mapping | None = None) -> pd.DataFrame:
    """Write table ``kind`` to ``path`` (Parquet) deterministically and atomically.

    Parameters
    ----------
    df : DataFrame
        Table with exactly the columns of ``TABLE_SCHEMAS[kind]`` (any order).
    path : path-like
        Destination ``.parquet`` file.
    kind : str
        Table name, a key of :data:`TABLE_SCHEMAS`.
    config : mapping, optional
        Config whose hash is stored in the provenance metadata.

    Returns
    -------
    DataFrame
        The table as written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = coerce_table(df, kind)
    table = pa.Table.from_pandas(out, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"alignpatterns"] = json.dumps(
        {"table": kind, **provenance(config)}, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return out


def read_table(path: str | os.PathLike, kind: str | None = None) -> pd.DataFrame:
    """Read a Parquet table; with ``kind``, check and coerce its schema."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: table not found")
    df = pd.read_parquet(path)
    if kind is not None:
        try:
            df = coerce_table(df, kind)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return df


def concat_tables(paths: Sequence[str | os.PathLike], kind: str) -> pd.DataFrame:
    """Concatenate several tables of the same kind."""
    frames = [read_table(p, kind) for p in paths]
    if not frames:
        return coerce_table(pd.DataFrame({c: [] for c in TABLE_SCHEMAS[kind]}), kind)
    return coerce_table(pd.concat(frames, ignore_index=True), kind)


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays to an ``.npz`` archive deterministically and atomically.

    Keys are written in sorted order with a fixed zip timestamp, so equal inputs give equal bytes.
    The result loads with ``numpy.load(path)``; string arrays are stored as unicode (not object).
    """
    with atomic_path(path, ".npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for key in sorted(arrays):
                arr = np.asarray(arrays[key])
                if arr.dtype == object:
                    raise TypeError(f"save_arrays: array {key!r} has dtype object; "
                                    "store strings as a unicode array")
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` archive written by :func:`save_arrays`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: array store not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable array store ({err})") from None


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as pretty, key-sorted JSON, atomically."""
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
