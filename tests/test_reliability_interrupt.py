"""Interrupted writes and runs never leave a result that looks complete; reruns finish the job.

The workflow tests start from a copy of the session's completed tiny run (``tiny_run``) with a
stage of outputs removed, interrupt the run that recomputes them, rerun, and compare the tables
byte for byte with the uninterrupted run.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignpatterns import io
from tests.conftest import snakemake_cmd

GATHERED = ["model_brain", "model_brain_summary", "brain_brain"]
TARGETS = [f"results/tables/{t}.parquet" for t in GATHERED]
N_JOBS = 4  # model_brain jobs of one model: 4 subjects in tests/config/tiny.yaml


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0):
    """Poll ``predicate()`` until it returns something truthy; fail if ``proc`` ends first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended (rc {proc.returncode}) before the interruption point:\n"
                        f"{out[-2000:]}\n{err[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the interruption point")


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp")) if folder.exists() else []


def _copy_without(tiny_run: Path, dst: Path, *remove: str) -> Path:
    """Copy the completed run (mtimes and Snakemake metadata included) and delete ``remove``."""
    shutil.copytree(tiny_run, dst, symlinks=True)
    for rel in remove:
        p = dst / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return dst


def _incomplete(wd: Path) -> set[Path]:
    """Outputs that Snakemake marked incomplete (their job started but was not seen to finish)."""
    marks = wd / ".snakemake" / "incomplete"
    out = set()
    for f in marks.rglob("*") if marks.exists() else []:
        if f.is_file() and f.name != "migration_underway":
            rel = base64.urlsafe_b64decode("".join(
                p.removeprefix("@") for p in f.relative_to(marks).parts)).decode()
            out.add(wd / rel)
    return out


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _default_sigint() -> None:
    """In the child: take Ctrl-C as a terminal's foreground job does.

    A shell without job control starts background commands with SIGINT ignored, and an ignored
    signal stays ignored across exec, so a test suite launched as ``make test &`` (as CI scripts
    and ``nohup`` runs do) would hand Snakemake an ignored SIGINT: the interrupted run then just
    finishes and exits 0.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(wd: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    # own session: signals go to Snakemake and its jobs, as Ctrl-C in a terminal does
    return subprocess.Popen(snakemake_cmd(wd, *extra), cwd=wd, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, preexec_fn=_default_sigint)


def _run(wd: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(wd, *extra), cwd=wd, capture_output=True, text=True,
                          timeout=600)


def _job_count(log: str, rule: str) -> int:
    """Count of ``rule`` in Snakemake's "Job stats" table (0 if absent)."""
    m = re.search(rf"^{rule}\s+(\d+)\s*$", log, flags=re.MULTILINE)
    return int(m.group(1)) if m else 0


def _assert_tables_equal(wd: Path, reference: Path, names=GATHERED) -> None:
    for name in names:
        a = (wd / "results/tables" / f"{name}.parquet").read_bytes()
        b = (reference / "results/tables" / f"{name}.parquet").read_bytes()
        assert a == b, f"{name}.parquet differs from the uninterrupted run"


# --- library level: every writer ----------------------------------------------------------------

_WRITERS = {
    "table": ("check_data.parquet",
              "import pandas as pd\nfrom alignpatterns import io\n"
              "io.write_table(pd.DataFrame({'subject': ['01'], 'roi': ['V1'], 'n_vertices': [5],"
              " 'n_reliable': [3], 'median_ncsnr': [0.5], 'missing': [False], 'reason': ['']}),"
              " PATH, 'check_data')\n"),
    "arrays": ("a.npz",
               "import numpy as np\nfrom alignpatterns import io\n"
               "io.save_arrays(PATH, {'x': np.arange(1000.0)})\n"),
    "json": ("d.json", "from alignpatterns import io\nio.write_json(PATH, {'new': 1})\n"),
}


@pytest.mark.parametrize("kind", sorted(_WRITERS))
def test_sigkill_during_a_write_keeps_the_previous_file(kind, tmp_path):
    name, code = _WRITERS[kind]
    path = tmp_path / name
    path.write_bytes(b"previous complete version")
    proc = subprocess.Popen([sys.executable, "-c", code.replace("PATH", repr(str(path)))],
                            env={**os.environ, io.PAUSE_ENV: f"{name}:60"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    temps = _wait_for(lambda: [t for t in _temps(tmp_path) if t.stat().st_size > 0], proc, 60)
    # the writer has finished the temporary file and is about to move it into place
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == b"previous complete version"
    assert [t.name.split(".")[3] for t in temps] == [str(proc.pid)]  # pid in the temp name
    # the next writer removes the dead writer's temporary file and writes a complete file
    if kind == "table":
        io.write_table(io.read_table(temps[0]), path, "check_data")
        assert io.read_table(path, "check_data")["subject"].tolist() == ["01"]
    elif kind == "arrays":
        io.save_arrays(path, {"x": np.arange(3.0)})
        assert io.load_arrays(path)["x"].tolist() == [0.0, 1.0, 2.0]
    else:
        io.write_json(path, {"new": 2})
        assert path.read_text().strip().endswith("}")
    assert _temps(tmp_path) == []
    assert path.stat().st_mode & 0o777 == io.file_mode()


def test_only_temporaries_of_dead_writers_are_removed(tmp_path):
    """A killed synthesis leaves a temporary dataset folder; a live writer's temp is kept."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "bmd"
    stale = tmp_path / f".bmd.{dead.pid}.abc.tmp"
    (stale / "sub-01").mkdir(parents=True)
    (stale / "sub-01" / "x.pkl").write_bytes(b"partial")
    live = tmp_path / f".bmd.{os.getppid()}.def.tmp"  # pytest's parent: alive
    live.write_bytes(b"being written")
    other = tmp_path / f".bmd.extra.{dead.pid}.tmp"  # another output's temp name
    other.write_bytes(b"x")
    assert io.remove_stale_temps(out) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


def test_failed_write_leaves_nothing(tmp_path):
    """An exception inside the writer leaves neither the destination nor a temporary file."""
    with pytest.raises(ValueError, match="expected columns"):
        io.write_table(pd.DataFrame({"subject": ["01"]}), tmp_path / "t.parquet", "check_data")
    with pytest.raises(TypeError, match="dtype object"):
        io.save_arrays(tmp_path / "a.npz", {"x": np.array([None])})
    assert list(tmp_path.iterdir()) == []


# --- workflow level -----------------------------------------------------------------------------

@pytest.mark.workflow
@pytest.mark.slow
def test_sigkill_of_a_job_during_its_write_then_rerun(tiny_run, tmp_path):
    wd = _copy_without(tiny_run, tmp_path / "wd", *TARGETS)
    # gather_alignment writes model_brain, brain_brain, then the summary: pause before the last
    # rename and SIGKILL the job's Python process (not Snakemake)
    proc = _start(wd, *TARGETS, env={io.PAUSE_ENV: "model_brain_summary.parquet:120"})
    tables = wd / "results/tables"
    temps = _wait_for(lambda: [t for t in _temps(tables) if "summary" in t.name], proc)
    job_pid = int(temps[0].name.split(".")[3])
    os.kill(job_pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "gather_alignment" in out + err
    # nothing Snakemake could take as complete: the failed job's outputs are gone (the summary
    # never existed under its name)
    for t in TARGETS:
        assert not (wd / t).exists(), t
    res = _run(wd, *TARGETS)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_tables_equal(wd, tiny_run)
    assert _temps(tables) == [], "the rerun removes the killed writer's temporary file"


def _interrupted_model_brain_run(tiny_run: Path, wd: Path, sig: int) -> dict[Path, int]:
    """Recompute one model's four model x subject jobs and the tables gathered from them; send
    ``sig`` once the first job has written its outputs (on 2 cores: one finished, one running,
    two waiting); return the mtimes of the finished outputs left."""
    _copy_without(tiny_run, wd, "results/alignment/model_brain/oracle", *TARGETS,
                  "results/alignment/model_brain_null/oracle")
    logs = wd / ".snakemake" / "log"
    before = set(logs.glob("*.log"))
    # each job holds its score table 4 s before the rename: the run cannot finish between the
    # first job's completion and the signal, however fast the jobs are
    proc = _start(wd, *TARGETS, env={io.PAUSE_ENV: "sub-*.parquet:4"})
    scores = wd / "results/alignment/model_brain/oracle"

    def first_job_finished():  # as Snakemake records it, not merely its files written
        return any("(Rule: model_brain)" in f.read_text()
                   for f in set(logs.glob("*.log")) - before)

    _wait_for(first_job_finished, proc)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals the whole process group
    else:  # a crash: Snakemake and every process it started die at once
        for pid in _descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    incomplete = _incomplete(wd)
    left = {p: p.stat().st_mtime_ns for p in scores.glob("*.parquet") if p not in incomplete}
    assert 0 < len(left) < N_JOBS, "the run was interrupted halfway"
    return left


def _check_resumed(wd: Path, tiny_run: Path, left: dict[Path, int], res) -> None:
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = res.stdout + res.stderr
    # only the missing jobs ran: the interrupted run's finished outputs are untouched
    assert _job_count(log, "model_brain") == N_JOBS - len(left), log[-3000:]
    assert {p: p.stat().st_mtime_ns for p in left} == left
    _assert_tables_equal(wd, tiny_run)
    for p in (wd / "results/alignment/model_brain").rglob("*.parquet"):
        assert p.read_bytes() == (tiny_run / p.relative_to(wd)).read_bytes(), p
    assert _temps(wd / "results") == []


@pytest.mark.workflow
@pytest.mark.slow
def test_sigint_halfway_then_resume(tiny_run, tmp_path):
    wd = tmp_path / "wd"
    left = _interrupted_model_brain_run(tiny_run, wd, signal.SIGINT)
    _check_resumed(wd, tiny_run, left, _run(wd, *TARGETS))


@pytest.mark.workflow
@pytest.mark.slow
def test_sigkill_of_snakemake_then_unlock_and_resume(tiny_run, tmp_path):
    wd = tmp_path / "wd"
    # SIGKILL to Snakemake and its running jobs at once, as a crash or the OOM killer would
    left = _interrupted_model_brain_run(tiny_run, wd, signal.SIGKILL)
    res = _run(wd, *TARGETS)
    assert res.returncode != 0
    assert "--unlock" in res.stdout + res.stderr  # Snakemake explains what to do
    unlock = _run(wd, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    # jobs that were running when Snakemake died are rerun (rerun-incomplete, default profile)
    _check_resumed(wd, tiny_run, left, _run(wd, *TARGETS))
