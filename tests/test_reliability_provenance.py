"""Every table records the config hash, the package version and the software versions;
``alignpatterns info`` prints them."""

from __future__ import annotations

import json
import platform

import pandas as pd
import pyarrow.parquet as pq
import pytest

import alignpatterns
from alignpatterns import io
from alignpatterns.cli import main

ROW = {"subject": ["01"], "roi": ["V1"], "n_vertices": [5], "n_reliable": [3],
       "median_ncsnr": [0.5], "missing": [False], "reason": [""]}


def test_write_table_records_provenance(tmp_path):
    cfg = {"lp": {"alphas": [1.0, 10.0]}, "seed": 3}
    path = tmp_path / "t.parquet"
    io.write_table(pd.DataFrame(ROW), path, "check_data", cfg)
    prov = io.read_provenance(path)
    assert prov["table"] == "check_data"
    assert prov["alignpatterns"] == alignpatterns.__version__
    assert prov["python"] == platform.python_version()
    for pkg in io.PROVENANCE_PACKAGES:
        assert prov[pkg] not in ("", None), pkg
    assert prov["numpy"] == __import__("numpy").__version__
    assert prov["config_hash"] == io.config_hash(cfg) == io.config_hash(
        {"seed": 3, "lp": {"alphas": [1.0, 10.0]}})  # key order does not matter
    assert prov["config_keys"] == "lp,seed"
    assert io.config_hash({**cfg, "seed": 4}) != prov["config_hash"]


def test_read_provenance_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="table not found"):
        io.read_provenance(tmp_path / "nope.parquet")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="x.parquet: not a readable Parquet table"):
        io.read_provenance(tmp_path / "x.parquet")
    pd.DataFrame(ROW).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ValueError, match="plain.parquet: no alignpatterns provenance"):
        io.read_provenance(tmp_path / "plain.parquet")


def test_info_prints_versions_and_a_tables_provenance(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    io.write_table(pd.DataFrame(ROW), path, "check_data", {"seed": 1})
    # pretend the table was written with another numpy
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    prov = json.loads(meta[b"alignpatterns"])
    prov["numpy"] = "0.0.1"
    meta[b"alignpatterns"] = json.dumps(prov).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    assert main(["info", "--table", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"alignpatterns: {alignpatterns.__version__}\n" in out
    assert f"python: {platform.python_version()}\n" in out
    assert f"config_hash: {io.config_hash({'seed': 1})}" in out
    assert f"numpy: 0.0.1  (installed now: {__import__('numpy').__version__})" in out
    assert "  pandas: " in out and "(installed now" not in out.split("  pandas: ")[1].split("\n")[0]


@pytest.mark.workflow
@pytest.mark.slow
def test_every_workflow_table_records_provenance(tiny_run):
    now = io.provenance()
    tables = sorted((tiny_run / "results").rglob("*.parquet"))
    assert len(tables) > 20  # gathered tables and per-job tables
    for path in tables:
        prov = io.read_provenance(path)
        assert {k: prov[k] for k in now} == now, path
        assert len(prov["config_hash"]) == 16 and prov["config_keys"], path
