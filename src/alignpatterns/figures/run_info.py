"""The report's "run" page: the resolved config and the software versions, as one HTML file."""

from __future__ import annotations

import html
import importlib.metadata as md
import os
import platform
from collections.abc import Mapping
from pathlib import Path

import yaml

from alignpatterns.io import atomic_path, config_hash

__all__ = ["PACKAGES", "software_versions", "write_run_info"]

#: Packages whose versions the report lists (the workflow's core dependencies).
PACKAGES = ("alignpatterns", "snakemake", "numpy", "scipy", "scikit-learn", "pandas", "pyarrow",
            "torch", "torchvision", "timm", "av", "nibabel", "nilearn", "matplotlib")


def software_versions() -> dict[str, str]:
    """Python and package versions (``"absent"`` for a package that is not installed)."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def write_run_info(config: Mapping, path: str | os.PathLike) -> Path:
    """Write a self-contained HTML page with the resolved config (YAML) and software versions.

    Parameters
    ----------
    config : mapping
        The resolved config the workflow ran with.
    path : path-like
        Destination ``.html`` (written atomically).

    Returns
    -------
    Path
        ``path``.
    """
    versions = software_versions()
    rows = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                     for k, v in versions.items())
    cfg = yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>alignpatterns run</title>
<style>body{{font-family:sans-serif;font-size:14px;margin:1em}}
table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:2px 8px}}
pre{{background:#f6f6f6;padding:8px}}</style></head>
<body>
<h2>Configuration</h2>
<p>config hash <code>{config_hash(config)}</code> (also stored in every table's Parquet metadata)</p>
<pre>{html.escape(cfg)}</pre>
<h2>Software versions</h2>
<table>{rows}</table>
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, ".html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path


def _plain(obj):
    """Mappings/sequences → plain dicts/lists (Snakemake's config is a custom dict type)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
