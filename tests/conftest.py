"""Shared fixtures: a tiny synthetic BMD-format dataset and a completed tiny workflow run, each made
once per test session."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "config" / "tiny.yaml"
TINY = {"seed": 3, "subjects": 4, "rois": 4, "train": 30, "test": 16, "n_frames": 2, "size": 64}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, dict]:
    """(root, ground_truth) of a tiny synthetic dataset; treat as read-only."""
    from alignpatterns.synth.dataset import synthesize

    root = tmp_path_factory.mktemp("tiny") / "bmd"
    truth = synthesize(root, **TINY)
    return root, truth


@pytest.fixture
def tiny_copy(tiny_dataset, tmp_path) -> tuple[Path, dict]:
    """A private copy of the tiny dataset that a test may corrupt."""
    root, truth = tiny_dataset
    dst = tmp_path / "bmd"
    shutil.copytree(root, dst)
    return dst, truth


@pytest.fixture
def tiny_cfg():
    """Resolved config matching the tiny dataset (root filled in by the test)."""
    from alignpatterns.config import load_config

    return load_config(REPO / "tests" / "config" / "tiny.yaml")


def snakemake_cmd(workdir: Path, *extra: str) -> list[str]:
    """The command line of a workflow run on ``tests/config/tiny.yaml`` in ``workdir``."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(TINY_CONFIG), "--cores", "2",
            *extra]


def run_tiny(workdir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow on the tiny config in ``workdir`` (extra Snakemake arguments last)."""
    return subprocess.run(snakemake_cmd(workdir, *extra), capture_output=True, text=True,
                          cwd=workdir, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Working directory of one complete local run of the tiny config; treat as read-only
    (copy it with ``shutil.copytree(..., symlinks=True)`` to change anything)."""
    wd = tmp_path_factory.mktemp("wf")
    res = run_tiny(wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return wd
