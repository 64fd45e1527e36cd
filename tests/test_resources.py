"""Every rule declares its resources; they are sized from the data; the BMD-scale DAG is sane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from alignpatterns import preflight, resources
from alignpatterns.config import load_config, resolve_config
from tests.conftest import REPO, TINY_CONFIG

STRESS_CONFIG = REPO / "config" / "stress.yaml"


def _load_rules(tmp_path: Path, config: dict | None = None):
    """The workflow's rules (snakemake.rules.Rule) for the tiny config, via the API."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet=None)) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                          config_settings=ConfigSettings(configfiles=[TINY_CONFIG],
                                                         config=config or {}),
                          snakefile=REPO / "Snakefile", workdir=tmp_path)
        return list(wf._workflow.rules)


def _rule_blocks() -> dict[str, str]:
    """Source text of every rule, from workflow/Snakefile and workflow/rules/*.smk."""
    blocks = {}
    files = [REPO / "workflow" / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    head = re.compile(r"^(\s*)(?:rule|checkpoint)\s+(\w+)\s*:")
    for f in files:
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            m = head.match(line)
            if not m:
                continue
            indent = len(m.group(1))
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                body.append(nxt)
            blocks[m.group(2)] = "\n".join(body)
    return blocks


def test_every_rule_declares_threads_resources_log_and_benchmark(tmp_path):
    rules = [r for r in _load_rules(tmp_path) if r.output]  # `all` is only a target
    assert {"model_brain", "extract", "synthesize", "check_data"} <= {r.name for r in rules}
    blocks = _rule_blocks()
    problems = []
    for r in rules:
        if not list(r.log):
            problems.append(f"{r.name}: no log:")
        if r.benchmark is None:
            problems.append(f"{r.name}: no benchmark:")
        if not re.search(r"^\s*threads\s*:", blocks.get(r.name, ""), re.M):
            problems.append(f"{r.name}: no threads:")
        for key in ("mem_mb", "runtime"):
            res = r.resources.get(key)
            # sized from the data: an input function, not a constant
            if res is None or not callable(getattr(res, "_value", None)):
                problems.append(f"{r.name}: {key} is not an input function ({res})")
        if "gpu" in r.resources and r.name != "extract":
            problems.append(f"{r.name}: asks for a GPU")
    assert not problems, "\n".join(problems)


def test_gpu_only_for_extraction_with_cuda(tmp_path):
    def gpus(rules):
        return {r.name: r.resources["gpu"].value for r in rules if "gpu" in r.resources}

    assert gpus(_load_rules(tmp_path)) == {"extract": 0}
    assert gpus(_load_rules(tmp_path, {"device": "cuda"})) == {"extract": 1}


def _cfg(path):
    return resolve_config(load_config(path), repo=REPO)


def test_requests_grow_with_the_data_and_with_attempts():
    tiny, stress = _cfg(TINY_CONFIG), _cfg(STRESS_CONFIG)
    for rule in ("model_brain", "brain_brain", "ceilings", "check_data", "extract", "apa"):
        assert resources.mem_mb(rule, stress) > resources.mem_mb(rule, tiny), rule
    for rule in ("model_brain", "brain_brain", "apa"):
        assert resources.runtime(rule, stress) > resources.runtime(rule, tiny), rule
    for rule in resources.MEMORY_BOUND:
        assert resources.mem_mb(rule, stress, attempt=3) == 3 * resources.mem_mb(rule, stress)
    assert resources.mem_mb("gather_apa", stress, attempt=3) == resources.mem_mb("gather_apa",
                                                                                 stress)
    assert resources.runtime("model_brain", tiny, attempt=2) == 2 * resources.runtime(
        "model_brain", tiny)
    # every request has head room over its estimate and is whole 256 MB blocks
    for rule in ("model_brain", "extract", "synthesize", "figure_aps"):
        mb = resources.mem_mb(rule, stress)
        assert mb >= resources.MARGIN * preflight.estimate_from_config(rule, stress).mb
        assert mb % 256 == 0


@pytest.mark.workflow
@pytest.mark.slow
def test_requests_cover_the_measured_peaks_of_the_tiny_run(tiny_run):
    """Every job of the tiny run asked for more memory than its benchmark's max RSS, and the
    file-based estimate of each file-estimated job is above its measured peak."""
    cfg = _cfg(TINY_CONFIG)
    bench = tiny_run / "results" / "benchmarks"
    checked = 0
    for tsv in sorted(bench.rglob("*.tsv")):
        parts = tsv.relative_to(bench).with_suffix("").parts
        rule = parts[0] if parts[0] != "figures" else (
            "run_info" if parts[1] == "run_info" else "figure_" + parts[1])
        rss = float(pd.read_csv(tsv, sep="\t")["max_rss"].iloc[-1])
        inputs = None
        if rule == "model_brain":
            inputs = {"features": [str(tiny_run / f"results/features/{parts[1]}.npz")],
                      "subject": [str(tiny_run / f"results/brain/{parts[2]}.npz")]}
        elif rule in ("brain_brain", "ceilings"):
            inputs = {"subjects": sorted(str(p) for p in (tiny_run / "results/brain").glob(
                "*.npz"))}
        if inputs:
            est = preflight.estimate_from_files(rule, inputs, cfg)
            assert est.mb > rss, (tsv, est.describe(), rss)
        assert resources.mem_mb(rule, cfg, inputs) > rss, (tsv, rss)
        checked += 1
    assert checked >= 40


@pytest.mark.workflow
def test_bmd_scale_dry_run_is_a_sane_dag(tmp_path):
    """10 subjects x 19 ROIs x 47 models x 3 measures through the SLURM profile, no data."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(STRESS_CONFIG),
         "--workflow-profile", str(REPO / "profiles" / "slurm")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = {}
    for line in res.stdout.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    assert counts["model_brain"] == 47 * 10
    assert counts["brain_brain"] == 3 * 10
    assert counts["extract"] == 47
    assert counts["prepare_brain"] == 10
    assert counts["total"] <= 5000
    # the planned requests are printed per job: every job has mem_mb and runtime; the GPU
    # goes to extraction only (device: cuda)
    jobs = re.findall(r"rule (\w+):.*?resources: ([^\n]*)", res.stdout, re.S)
    assert len(jobs) == counts["total"]
    for rule, res_line in jobs:
        if rule == "all":
            continue
        assert "mem_mb=" in res_line and "runtime=" in res_line, (rule, res_line)
        assert ("gpu=1" in res_line) == (rule == "extract"), (rule, res_line)
