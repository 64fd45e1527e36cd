"""The tiny workflow through a real SLURM (``tests/slurm/start_slurm.sh``) with the shipped
workflow profile: the tables must be byte-identical to a local run's.

Skipped when SLURM does not answer ``srun -N1 true`` and ``CI`` is unset; under CI that fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_tiny

TABLES = ["model_brain", "model_brain_summary", "brain_brain", "ceilings", "apa", "apa_summary",
          "apa_nulls", "apa_confusion"]

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]


def _srun_works() -> tuple[bool, str]:
    if shutil.which("srun") is None or shutil.which("sbatch") is None:
        return False, "sbatch/srun not on PATH"
    try:
        res = subprocess.run(["timeout", "30", "srun", "-N1", "true"], capture_output=True,
                             text=True, timeout=40)
    except subprocess.TimeoutExpired:
        return False, "srun -N1 true timed out"
    return res.returncode == 0, (res.stderr or res.stdout).strip()[-500:]


@pytest.fixture(scope="module")
def node() -> dict[str, int]:
    """CPUs and memory (MB) of the local SLURM node; skip (fail under CI) without SLURM."""
    ok, why = _srun_works()
    if not ok:
        msg = (f"no working local SLURM ({why}); start one with tests/slurm/start_slurm.sh "
               "(run as root)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%c %m"], capture_output=True, text=True,
                         check=True).stdout.split()
    return {"cpus": int(out[0]), "mem_mb": int(out[1])}


def _cluster_profile(path: Path) -> Path:
    """What a user's own --profile holds on a cluster without accounting (docs/hpc.md)."""
    path.mkdir()
    (path / "profile.yaml").write_text(yaml.safe_dump({
        "slurm-status-command": "squeue",
        "slurm-no-account": True,
        "slurm-init-seconds-before-status-checks": 1,
        "seconds-between-status-checks": 2,  # a one-node test cluster: poll often
        "default-resources": {"slurm_partition": "debug"},
    }))
    return path


def test_tiny_workflow_on_slurm_matches_local(tiny_run, node, tmp_path):
    wd = tmp_path / "slurm"
    wd.mkdir()
    profile = _cluster_profile(tmp_path / "cluster")
    # The node's size caps every job, so nothing waits for resources the node does not have:
    # --max-threads, mem_mb per job, and `group_slots` (figures side by side in the figures
    # group job) at the node's CPUs. More jobs are queued than the node runs at once, so SLURM
    # starts the next one as soon as a CPU frees instead of after Snakemake's next status poll.
    res = run_tiny(wd, "--workflow-profile", str(REPO / "profiles" / "slurm"),
                   "--profile", str(profile), "--max-threads", str(node["cpus"]),
                   "--resources", f"mem_mb={node['mem_mb']}", f"group_slots={node['cpus']}",
                   "--jobs", "16", "--verbose", timeout=1800)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-6000:]
    assert "sbatch" in log and "slurm" in log.lower(), "jobs were not submitted to SLURM"
    for name in TABLES:
        a = (tiny_run / "results/tables" / f"{name}.parquet").read_bytes()
        b = (wd / "results/tables" / f"{name}.parquet").read_bytes()
        assert a == b, f"{name}.parquet differs between the SLURM and the local run"
    # every sbatch asked for at most the node's CPUs and memory, and no GPU
    calls = [line for line in log.splitlines() if line.lstrip().startswith("sbatch call")]
    assert calls, "no sbatch call in the verbose log"
    for call in calls:
        args = call.split()
        mem = [int(a.split("=")[1] if "=" in a else args[i + 1])
               for i, a in enumerate(args) if a.startswith("--mem")]
        cpus = [int(a.split("=")[1]) for a in args if a.startswith("--cpus-per-task=")]
        assert mem and max(mem) <= node["mem_mb"], call
        assert cpus and max(cpus) <= node["cpus"], call
        assert "--gpus" not in call and "--gres" not in call, call
