"""Tests for alignpatterns.figures: synthetic tables in, deterministic PNG/PDF out."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from alignpatterns import figures  # noqa: E402
from alignpatterns.figures import (  # noqa: E402
    plot_aps_per_roi,
    plot_brain_pattern_matrix,
    plot_conventional_overview,
    plot_conventional_scores,
    plot_pattern_profiles,
    save_figure,
)

ROIS = ["V1", "V2", "V3", "hV4", "LOC", "FFA"]  # stream/hierarchy order, not alphabetical
MODELS = ["resnet18", "vit_b16", "alexnet"]
MEASURES = ["rsa-crossnobis-spearman", "cka-linear-debiased", "lp-ridge-pearson"]
SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04"]
NAN_MODEL, NAN_ROI = "vit_b16", "hV4"  # a missing cell


def _summary() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for measure in MEASURES:
        for model in MODELS:
            for j, roi in enumerate(ROIS):
                s = float(rng.uniform(0.05, 0.4))
                ceil = np.nan if measure.startswith("cka") or roi == "FFA" else 0.6 + 0.02 * j
                if model == NAN_MODEL and roi == NAN_ROI:
                    s = np.nan
                rows.append(dict(
                    measure=measure, model=model, weights="pretrained", roi=roi,
                    layer=f"layer{j % 3}", layer_index=j % 3, score_mean=s, ci_low=s - 0.05,
                    ci_high=s + 0.05, ceiling_mean=ceil, normalized=s / ceil,
                    distinguishable_from_best=pd.NA if np.isnan(s) else bool(model != "alexnet")))
    df = pd.DataFrame(rows)
    df["distinguishable_from_best"] = df["distinguishable_from_best"].astype("boolean")
    return df


def _brain_brain() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for measure in MEASURES:
        for split in ("train", "test"):
            for s in SUBJECTS:
                for t in SUBJECTS:
                    if s == t:
                        continue
                    for a in ROIS:
                        for b in ROIS:
                            score = 0.5 - 0.08 * abs(ROIS.index(a) - ROIS.index(b))
                            score += float(rng.normal(0, 0.02))
                            if NAN_ROI in (a, b) and t == "sub-02":
                                score = np.nan  # ragged: ROI missing in one subject
                            rows.append(dict(measure=measure, source_subject=s, source_roi=a,
                                             target_subject=t, target_roi=b, split=split,
                                             score=score, n_source_dims=50, n_vertices=100))
    df = pd.DataFrame(rows)
    # FFA → V1 never measured: a fully missing cell.
    miss = (df["source_roi"] == "FFA") & (df["target_roi"] == "V1")
    df.loc[miss, "score"] = np.nan
    return df


def _model_brain() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for measure in MEASURES:
        for model in MODELS:
            for li in range(3):
                for s in SUBJECTS:
                    for roi in ROIS:
                        rows.append(dict(measure=measure, model=model, weights="pretrained",
                                         layer=f"layer{li}", layer_index=li, subject=s, roi=roi,
                                         split="test", score=float(rng.uniform(0, 0.5)),
                                         n_source_dims=64, n_vertices=100))
    return pd.DataFrame(rows)


def _apa_summary(with_verdict: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for variant in ("full", "offdiag"):
        for cand in ["brain", *MODELS]:
            for roi in ROIS:
                aps = float(rng.uniform(-0.2, 0.9))
                if cand == NAN_MODEL and roi == NAN_ROI:
                    aps = np.nan
                brain = 0.6
                passes = (pd.NA if not with_verdict or cand == "brain"
                          else bool(cand == "resnet18" and roi in ("V1", "V2")))
                rows.append(dict(
                    measure="lp-ridge-pearson", variant=variant, match="pearson", candidate=cand,
                    weights="" if cand == "brain" else "pretrained", roi=roi,
                    layer="" if cand == "brain" else "layer1", n_subjects=4,
                    ci_method="jackknife-t", aps_mean=aps, aps_ci_low=aps - 0.1,
                    aps_ci_high=aps + 0.1, brain_aps_mean=brain, delta=aps - brain,
                    delta_ci_low=aps - brain - 0.15, delta_ci_high=aps - brain + 0.15,
                    margin=0.1, spec_margin=np.nan, spec_ci_low=np.nan, p_stimulus=np.nan,
                    q_stimulus=np.nan, passes=passes))
    df = pd.DataFrame(rows)
    df["passes"] = df["passes"].astype("boolean")
    return df


@pytest.fixture(scope="module")
def tables():
    return dict(summary=_summary(), brain_brain=_brain_brain(), model_brain=_model_brain(),
                apa_summary=_apa_summary())


def _data_lines(ax, labels):
    return {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid() in labels}


def _xticklabels(ax):
    return [t.get_text() for t in ax.get_xticklabels()]


def _check_saved(fig, tmp_path, name):
    png, pdf = save_figure(fig, tmp_path / "sub" / name)
    assert png.exists() and pdf.exists()
    assert png.stat().st_size > 5000 and pdf.stat().st_size > 3000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    first = (png.read_bytes(), pdf.read_bytes())
    save_figure(fig, tmp_path / "again" / name)
    again = ((tmp_path / "again" / f"{name}.png").read_bytes(),
             (tmp_path / "again" / f"{name}.pdf").read_bytes())
    assert first == again, "saving the same figure twice must give identical bytes"
    assert b"CreationDate" not in first[1]
    assert not [p for p in png.parent.iterdir() if p.name.startswith(".")], "temp file left"


def test_import_does_not_import_torch():
    code = "import sys, alignpatterns.figures; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_measure_label_units():
    assert figures.measure_label("rsa-crossnobis-spearman").startswith("Spearman ρ")
    assert figures.measure_label("lp-ridge-pearson").startswith("Pearson r")
    assert "debiased" in figures.measure_label("cka-linear-debiased")
    assert "CKA" in figures.measure_label("cka-linear-debiased")


def test_conventional_scores(tables, tmp_path):
    fig = plot_conventional_scores(tables["summary"], ROIS, "rsa-crossnobis-spearman")
    (ax,) = fig.axes
    assert _xticklabels(ax) == ROIS
    assert ax.get_ylabel().startswith("Spearman ρ")
    assert ax.get_xlabel()
    lines = _data_lines(ax, set(MODELS))
    assert set(lines) == set(MODELS)  # one series per model
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum(lab in MODELS for lab in legend) == len(MODELS)
    # The NaN cell draws nothing at that ROI's group.
    j = ROIS.index(NAN_ROI)
    xs = np.concatenate([ln.get_xdata() for ln in ax.get_lines()
                         if str(ln.get_gid()).startswith(NAN_MODEL)])
    assert not np.any(np.abs(xs - j) < 0.45)
    assert len(xs) == len(ROIS) - 1
    # Ceiling drawn where finite only (FFA has none).
    (ceil,) = [c for c in ax.collections if c.get_gid() == "noise ceiling"]
    assert len(ceil.get_segments()) == len(ROIS) - 1
    # Hollow markers for models distinguishable from best.
    assert any(str(ln.get_gid()).endswith(":hollow") for ln in ax.get_lines())
    _check_saved(fig, tmp_path, "conventional")


def test_conventional_cka_without_ceiling_and_normalized(tables, tmp_path):
    fig = plot_conventional_scores(tables["summary"], ROIS, "cka-linear-debiased")
    (ax,) = fig.axes
    assert not [c for c in ax.collections if c.get_gid() == "noise ceiling"]
    assert "CKA" in ax.get_ylabel()
    fig = plot_conventional_scores(tables["summary"], ROIS, "lp-ridge-pearson", normalized=True)
    (ax,) = fig.axes
    assert "ceiling" in ax.get_ylabel()
    # FFA has no ceiling → no normalized points there.
    j = ROIS.index("FFA")
    for ln in _data_lines(ax, set(MODELS)).values():
        assert not np.any(np.abs(np.asarray(ln.get_xdata()) - j) < 0.45)


def test_conventional_overview_and_order(tables, tmp_path):
    order = ["FFA", "V1", "LOC"]
    fig = plot_conventional_overview(tables["summary"], order, MEASURES,
                                     models=["alexnet", "resnet18"])
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(axes) == len(MEASURES)
    for ax in axes:
        assert _xticklabels(ax) == order
        assert set(_data_lines(ax, {"alexnet", "resnet18", "vit_b16"})) == {"alexnet",
                                                                            "resnet18"}
    _check_saved(fig, tmp_path, "overview")


def test_conventional_errors(tables):
    with pytest.raises(ValueError, match="values present"):
        plot_conventional_scores(tables["summary"], ROIS, "no-such-measure")
    with pytest.raises(ValueError, match="duplicate"):
        plot_conventional_scores(tables["summary"], ["V1", "V1"], "lp-ridge-pearson")
    with pytest.raises(ValueError, match="unknown"):
        plot_conventional_scores(tables["summary"], ROIS, "lp-ridge-pearson", models=["nope"])


def test_brain_pattern_matrix(tables, tmp_path):
    bb = tables["brain_brain"]
    mean, sd, count = figures.brain_pattern_matrix(bb, ROIS, "lp-ridge-pearson", "test")
    assert list(mean.index) == ROIS and list(mean.columns) == ROIS
    sel = bb[(bb.measure == "lp-ridge-pearson") & (bb.split == "test")
             & (bb.source_roi == "V2") & (bb.target_roi == "LOC")]
    assert mean.loc["V2", "LOC"] == pytest.approx(sel.score.mean())
    assert count.loc["V2", "LOC"] == len(SUBJECTS) * (len(SUBJECTS) - 1)
    assert np.isnan(mean.loc["FFA", "V1"]) and count.loc["FFA", "V1"] == 0

    fig = plot_brain_pattern_matrix(bb, ROIS, "lp-ridge-pearson", show_spread=True)
    ax = fig.axes[0]
    assert _xticklabels(ax) == ROIS
    assert [t.get_text() for t in ax.get_yticklabels()] == ROIS
    (im,) = [i for i in ax.get_images() if i.get_gid() == "matrix"]
    arr = im.get_array()
    i, j = ROIS.index("FFA"), ROIS.index("V1")
    assert np.ma.is_masked(arr[i, j])
    assert np.ma.count_masked(arr) == 1
    assert not [t for t in ax.texts if t.get_gid() == f"cell:{i},{j}"]
    assert len([t for t in ax.texts if str(t.get_gid()).startswith("cell:")]) == len(ROIS) ** 2 - 1
    assert im.colorbar is not None and "Pearson r" in im.colorbar.ax.get_ylabel()
    _check_saved(fig, tmp_path, "brain_matrix")


def test_brain_pattern_matrix_negative_values(tables):
    bb = tables["brain_brain"].copy()
    bb["score"] = bb["score"] - 0.5
    fig = plot_brain_pattern_matrix(bb, ROIS, "rsa-crossnobis-spearman", split="train")
    (im,) = fig.axes[0].get_images()
    assert im.norm.vmin == pytest.approx(-im.norm.vmax)


def test_aps_per_roi(tables, tmp_path):
    fig = plot_aps_per_roi(tables["apa_summary"], ROIS, "lp-ridge-pearson", "offdiag")
    (ax,) = fig.axes
    assert _xticklabels(ax) == ROIS
    assert ax.get_ylabel() == "Alignment pattern similarity (Pearson r)"
    lines = _data_lines(ax, set(MODELS) | {figures.apa.BRAIN_LABEL})
    assert set(lines) == set(MODELS) | {figures.apa.BRAIN_LABEL}
    assert lines[figures.apa.BRAIN_LABEL].get_color() == "black"
    assert len(lines[figures.apa.BRAIN_LABEL].get_xdata()) == len(ROIS)
    assert len(lines[NAN_MODEL].get_xdata()) == len(ROIS) - 1
    j = ROIS.index(NAN_ROI)
    assert not np.any(np.abs(np.asarray(lines[NAN_MODEL].get_xdata()) - j) < 0.45)
    # Dashed zero line.
    assert any(ln.get_linestyle() == "--" and tuple(ln.get_ydata()) == (0, 0)
               for ln in ax.get_lines())
    # resnet18 passes in V1, V2: two stars.
    (stars,) = [c for c in ax.collections if c.get_gid() == "passes"]
    assert len(stars.get_offsets()) == 2
    legend = ax.get_legend()
    assert legend is not None
    _check_saved(fig, tmp_path, "aps")


def test_aps_without_verdict_or_brain_rows(tmp_path):
    df = _apa_summary(with_verdict=False)
    df = df[df.candidate != "brain"]
    fig = plot_aps_per_roi(df, ROIS[::-1], "lp-ridge-pearson", "full", show_delta=True)
    ax, dax = fig.axes[:2]
    assert not [c for c in ax.collections if c.get_gid() == "passes"]
    assert _xticklabels(dax) == ROIS[::-1]
    brain = _data_lines(ax, {figures.apa.BRAIN_LABEL})[figures.apa.BRAIN_LABEL]
    assert np.allclose(brain.get_ydata(), 0.6)  # falls back on brain_aps_mean
    assert set(_data_lines(dax, set(MODELS))) == set(MODELS)
    assert [ln for ln in dax.get_lines() if ln.get_gid() == "margin"]
    _check_saved(fig, tmp_path, "aps_delta")


def test_pattern_profiles(tables, tmp_path):
    fig = plot_pattern_profiles(tables["brain_brain"], tables["model_brain"], tables["summary"],
                                "V2", ROIS, "lp-ridge-pearson", standardize=True)
    (ax,) = fig.axes
    assert _xticklabels(ax) == ROIS
    lines = _data_lines(ax, set(MODELS))
    assert set(lines) == set(MODELS)
    # offdiag: the entry r′ = V2 is left out.
    for ln in lines.values():
        assert np.isnan(np.asarray(ln.get_ydata(), float)[ROIS.index("V2")])
    _check_saved(fig, tmp_path, "profiles")
