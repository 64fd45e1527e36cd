"""Tests for alignpatterns.figures: small synthetic tables in, labelled figures and PNG/PDF out.

Figures are checked through their matplotlib objects (axes, labels, gids, data of the artists),
and the plotted numbers against independent pandas computations on the input tables.
"""

from __future__ import annotations

import subprocess
import sys

import matplotlib as mpl
import numpy as np
import pytest
from scipy import stats

pytest.importorskip("matplotlib")

from alignpatterns import figures  # noqa: E402
from alignpatterns.figures import (  # noqa: E402
    plot_apa_overview,
    plot_aps_per_roi,
    plot_brain_pattern_matrix,
    plot_brain_patterns,
    plot_confusion,
    plot_conventional_benchmark,
    plot_conventional_overview,
    plot_conventional_scores,
    plot_layer_curves,
    plot_pattern_profiles,
    plot_profile_panels,
    plot_roi_map,
    plot_score_vs_aps,
    plot_trained_vs_untrained,
    save_figure,
)

from . import figure_tables as T  # noqa: E402

ROIS, STREAMS, MEASURES = T.ROIS, T.STREAMS, T.MEASURES
MODELS = [m for m, _ in T.MODELS]
NAN_MODEL, NAN_ROI = T.NAN_MODEL, T.NAN_ROI
STREAM_ORDER = ["V1", "V2", "V3", "hV4", "FFA", "LOC"]  # ROIS regrouped by STREAMS


@pytest.fixture(scope="module")
def tables():
    t = T.all_tables()
    t["summary"] = t.pop("model_brain_summary")
    return t


def _data_lines(ax, labels):
    return {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid() in labels}


def _xticklabels(ax):
    return [t.get_text() for t in ax.get_xticklabels()]


def _title(ax):
    """The axes title whichever side it sits on (the project style puts titles left)."""
    return ax.get_title("left") or ax.get_title("center") or ax.get_title("right")


def _legend_texts(fig):
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def _check_written(fig, tmp_path, name):
    """Saved once: both files exist, are non-empty PNG / PDF."""
    png, pdf = save_figure(fig, tmp_path / name)
    assert png.stat().st_size > 5000 and pdf.stat().st_size > 3000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"


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


def test_style_applies_inside_and_leaves_rcparams_alone(tables):
    before = dict(mpl.rcParams)
    fig = plot_conventional_scores(tables["summary"], ROIS, "lp-ridge-pearson")
    assert dict(mpl.rcParams) == before
    ax = fig.axes[0]
    assert ax.xaxis.label.get_fontsize() == 8  # from alignpatterns.mplstyle, not the default 10
    assert not ax.spines["top"].get_visible()
    assert figures.STYLE.exists()
    assert mpl.rc_params_from_file(str(figures.STYLE), use_default_template=False)["font.size"] == 8


def test_palette_is_shared_across_figures(tables):
    pal = figures.palette_from_models([{"name": n, "weights": "pretrained"} for n in
                                       ["vit_b16", "alexnet", "resnet18"]])
    assert pal["vit_b16"][0] == figures.OKABE_ITO[0]
    assert len({c for c, _ in pal.values()}) == 3
    conv = plot_conventional_scores(tables["summary"], ROIS, "lp-ridge-pearson",
                                    models=["resnet18", "alexnet"], palette=pal)
    aps = plot_apa_overview(tables["apa"], tables["apa_summary"], ROIS, "lp-ridge-pearson",
                            palette=pal)
    for m in ("resnet18", "alexnet"):
        c1 = _data_lines(conv.axes[0], {m})[m].get_color()
        c2 = _data_lines(aps.axes[0], {m})[m].get_color()
        assert c1 == c2 == pal[m][0]
    # same name with two weights: two labels, two colours
    two = figures.palette_from_models([{"name": "a", "weights": "random"},
                                       {"name": "a", "weights": "pretrained"}])
    assert two["a (random)"] != two["a (pretrained)"]


def test_conventional_scores(tables, tmp_path):
    fig = plot_conventional_scores(tables["summary"], ROIS, "rsa-crossnobis-spearman")
    (ax,) = fig.axes
    assert _xticklabels(ax) == ROIS
    assert ax.get_ylabel().startswith("Spearman ρ")
    assert ax.get_xlabel()
    lines = _data_lines(ax, set(MODELS))
    assert set(lines) == set(MODELS)  # one series per model
    assert sum(lab in MODELS for lab in _legend_texts(fig)) == len(MODELS)
    # The NaN cell draws nothing at that ROI's group.
    j = ROIS.index(NAN_ROI)
    xs = np.concatenate([ln.get_xdata() for ln in ax.get_lines()
                         if str(ln.get_gid()).startswith(NAN_MODEL)])
    assert not np.any(np.abs(xs - j) < 0.45)
    assert len(xs) == len(ROIS) - 1
    # Ceiling drawn where finite only (the last ROI has none).
    (ceil,) = [c for c in ax.collections if c.get_gid() == "noise ceiling"]
    assert len(ceil.get_segments()) == len(ROIS) - 1
    # Hollow markers for models distinguishable from best.
    assert any(str(ln.get_gid()).endswith(":hollow") for ln in ax.get_lines())
    _check_saved(fig, tmp_path, "conventional")


def test_conventional_benchmark_raw_normalized_flags(tables, tmp_path):
    summary = tables["summary"].copy()
    # resnet18 in V2 above its ceiling: the one normalised value > 1.
    hit = ((summary.measure == "lp-ridge-pearson") & (summary.model == "resnet18")
           & (summary.roi == "V2"))
    summary.loc[hit, "score_mean"] = 0.9
    summary.loc[hit, ["ci_low", "ci_high"]] = [0.85, 0.95]
    fig = plot_conventional_benchmark(summary, ROIS, "lp-ridge-pearson", streams=STREAMS,
                                      best_label="not distinguishable from best (paper rule)")
    raw, norm = fig.axes[:2]
    assert _title(raw).startswith("raw score") and _title(norm).startswith("score ÷")
    assert norm.get_ylabel() == "score ÷ noise ceiling" and raw.get_ylabel().startswith("Pearson")
    # Normalised values are score / ceiling (independent computation).
    rows = summary[(summary.measure == "lp-ridge-pearson") & (summary.model == "alexnet")]
    expect = (rows.set_index("roi").score_mean / rows.set_index("roi").ceiling_mean)
    y = _data_lines(norm, {"alexnet"})["alexnet"].get_ydata()
    hollow = [ln for ln in norm.get_lines() if ln.get_gid() == "alexnet:hollow"]
    got = np.sort(np.concatenate([y] + [h.get_ydata() for h in hollow]))
    assert np.allclose(got, np.sort(expect.reindex(ROIS).dropna().to_numpy()))
    (ring,) = [ln for ln in norm.get_lines() if ln.get_gid() == "score > noise ceiling"]
    ceil_v2 = float(summary.loc[hit, "ceiling_mean"].iloc[0])
    assert np.allclose(ring.get_ydata(), [0.9 / ceil_v2])
    assert [ln for ln in norm.get_lines() if ln.get_gid() == "noise ceiling"]
    legend = _legend_texts(fig)
    assert "score > noise ceiling" in legend
    assert any("paper rule" in t for t in legend)
    streams = {t.get_text() for t in raw.texts if str(t.get_gid()).startswith("stream:")}
    assert streams == {"early", "ventral", "lateral"}
    _check_written(fig, tmp_path, "benchmark")


def test_conventional_cka_without_ceiling_and_normalized(tables):
    fig = plot_conventional_scores(tables["summary"], ROIS, "cka-linear-debiased")
    (ax,) = fig.axes
    assert not [c for c in ax.collections if c.get_gid() == "noise ceiling"]
    assert "CKA" in ax.get_ylabel()
    fig = plot_conventional_scores(tables["summary"], ROIS, "lp-ridge-pearson", normalized=True)
    (ax,) = fig.axes
    assert "ceiling" in ax.get_ylabel()
    j = len(ROIS) - 1  # no ceiling → no normalized points there
    for ln in _data_lines(ax, set(MODELS)).values():
        assert not np.any(np.abs(np.asarray(ln.get_xdata()) - j) < 0.45)
    fig = plot_conventional_benchmark(tables["summary"], ROIS, "cka-linear-debiased")
    assert [t for t in fig.axes[1].texts if t.get_gid() == "no ceiling"]


def test_conventional_overview_and_order(tables):
    order = ["FFA", "V1", "LOC"]
    fig = plot_conventional_overview(tables["summary"], order, MEASURES,
                                     models=["alexnet", "resnet18"])
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(axes) == len(MEASURES)
    assert _xticklabels(axes[-1]) == order  # shared ROI axis, labelled at the bottom
    assert [_title(ax) for ax in axes] == MEASURES
    for ax in axes:
        assert set(_data_lines(ax, set(MODELS))) == {"alexnet", "resnet18"}


def test_conventional_errors(tables):
    with pytest.raises(ValueError, match="values present"):
        plot_conventional_scores(tables["summary"], ROIS, "no-such-measure")
    with pytest.raises(ValueError, match="duplicate"):
        plot_conventional_scores(tables["summary"], ["V1", "V1"], "lp-ridge-pearson")
    with pytest.raises(ValueError, match="unknown"):
        plot_conventional_scores(tables["summary"], ROIS, "lp-ridge-pearson", models=["nope"])


def test_layer_curves(tables, tmp_path):
    mb, summ = tables["model_brain"], tables["summary"]
    fig = plot_layer_curves(mb, ROIS, "lp-ridge-pearson", summary=summ)
    axes = [ax for ax in fig.axes if ax.axison]
    assert [_title(ax) for ax in axes] == ROIS
    ax = axes[ROIS.index("V3")]
    lines = _data_lines(ax, set(MODELS))
    assert set(lines) == set(MODELS)
    sel = mb[(mb.measure == "lp-ridge-pearson") & (mb.split == "test") & (mb.model == "alexnet")
             & (mb.roi == "V3")]
    expect = sel.groupby("layer_index").score.mean().to_numpy()
    assert np.allclose(lines["alexnet"].get_ydata(), expect)
    assert np.allclose(lines["alexnet"].get_xdata(), np.linspace(0, 1, T.N_LAYERS))
    # the train-selected layer is marked at its depth
    (sel_marker,) = [ln for ln in ax.get_lines() if ln.get_gid() == "alexnet:selected"]
    li = int(summ[(summ.measure == "lp-ridge-pearson") & (summ.model == "alexnet")
                  & (summ.roi == "V3")].layer_index.iloc[0])
    assert np.allclose(sel_marker.get_xdata(), [li / (T.N_LAYERS - 1)])
    assert any(ax.get_xlabel() == "relative layer depth" for ax in axes)
    assert axes[0].get_ylabel().startswith("Pearson r")


def test_brain_pattern_matrix(tables, tmp_path):
    bb = tables["brain_brain"]
    mean, sd, count = figures.brain_pattern_matrix(bb, ROIS, "lp-ridge-pearson", "test")
    assert list(mean.index) == ROIS and list(mean.columns) == ROIS
    sel = bb[(bb.measure == "lp-ridge-pearson") & (bb.split == "test")
             & (bb.source_roi == "V2") & (bb.target_roi == "LOC")]
    assert mean.loc["V2", "LOC"] == pytest.approx(sel.score.mean())
    n = len(T.SUBJECTS)
    assert count.loc["V2", "LOC"] == n * (n - 1)
    assert np.isnan(mean.loc["FFA", "V1"]) and count.loc["FFA", "V1"] == 0

    fig = plot_brain_pattern_matrix(bb, ROIS, "lp-ridge-pearson", show_spread=True)
    ax = fig.axes[0]
    assert _xticklabels(ax) == ROIS
    (im,) = [i for i in ax.get_images() if i.get_gid() == "matrix"]
    arr = im.get_array()
    i, j = ROIS.index("FFA"), ROIS.index("V1")
    assert np.ma.is_masked(arr[i, j]) and np.ma.count_masked(arr) == 1
    assert im.colorbar is not None and "Pearson r" in im.colorbar.ax.get_ylabel()


def test_brain_patterns_variants_streams_stability(tables, tmp_path):
    bb, ceil = tables["brain_brain"], tables["ceilings"]
    variants = ["full", "offdiag", "normalized", "residual"]
    fig = plot_brain_patterns(bb, ROIS, "lp-ridge-pearson", variants, ceilings=ceil,
                              streams=STREAMS)
    mats = [ax for ax in fig.axes if ax.get_images() and _title(ax)]
    assert [_title(ax) for ax in mats] == ["full", "offdiag", "normalized"]  # residual skipped
    for ax in mats:
        assert _xticklabels(ax) == STREAM_ORDER
        assert [t.get_text() for t in ax.get_yticklabels()] == STREAM_ORDER
        assert ax.get_xlabel() == "target ROI r′" and ax.get_ylabel() == "source ROI r"
        assert len([ln for ln in ax.get_lines() if ln.get_gid() == "stream"]) == 2 * 2
    full, off, norm = (ax.get_images()[0].get_array() for ax in mats)
    assert np.ma.count_masked(np.diag(off)) == len(ROIS)
    # one cell against an independent computation: per target subject mean over sources,
    # divided by that subject's ceiling of the target ROI, then averaged over subjects.
    a, b = STREAM_ORDER.index("V2"), STREAM_ORDER.index("LOC")
    sel = bb[(bb.measure == "lp-ridge-pearson") & (bb.split == "test") & (bb.source_roi == "V2")
             & (bb.target_roi == "LOC")]
    per_t = sel.groupby("target_subject").score.mean()
    c = ceil[(ceil.measure == "lp-ridge-pearson") & (ceil.split == "test")
             & (ceil.kind == "lp_ceiling") & (ceil.roi == "LOC")].set_index("subject").value
    assert norm[a, b] == pytest.approx((per_t / c.reindex(per_t.index)).mean())
    assert full[a, b] == pytest.approx(per_t.mean())
    (sax,) = [ax for ax in fig.axes if _title(ax).startswith("cross-subject stability")]
    dots = [ln for ln in sax.get_lines() if str(ln.get_gid()).startswith("stability:")]
    assert len(dots) == 3 and all(len(d.get_xdata()) == len(T.SUBJECTS) for d in dots)


def _pairs_from(mats_by_pair):
    """(S, S, R, R) [source, target] with NaN on the diagonal pairs."""
    S = len(mats_by_pair)
    R = next(m for row in mats_by_pair for m in row if m is not None).shape[0]
    out = np.full((S, S, R, R), np.nan)
    for a in range(S):
        for b in range(S):
            if a != b:
                out[a, b] = mats_by_pair[a][b]
    return out


def test_matrix_stability_closed_form():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 5))
    same = _pairs_from([[base] * 5 for _ in range(5)])
    assert np.allclose(figures.matrix_stability(same), 1.0)
    # target subjects 0-2 see base, 3-4 see −base (from every source): each double-exclusion
    # reference mixes the rest, so its sign is that of the majority left
    sign = [1, 1, 1, -1, -1]
    flipped = _pairs_from([[sign[b] * base for b in range(5)] for _ in range(5)])
    st = figures.matrix_stability(flipped)
    # s = 0: refs without {0, s*} hold targets {1,2,3,4} − s*: 2 vs 1 or 1 vs 2 ... computed
    want = []
    for s in range(5):
        rs = []
        for t in range(5):
            if t == s:
                continue
            rest = [b for b in range(5) if b not in (s, t)]
            ref = np.mean([sign[b] * base for a in rest for b in rest if a != b], axis=0)
            rs.append(np.corrcoef(sign[s] * base.ravel(), ref.ravel())[0, 1])
        want.append(np.mean(rs))
    np.testing.assert_allclose(st, want, atol=1e-12)


def test_matrix_stability_is_double_exclusion_brute_force():
    # random pairs with a source-subject quirk: a reference that kept the stand-in's other
    # pairs would share it; the double-exclusion one must not
    rng = np.random.default_rng(4)
    S, R = 6, 4
    shared = rng.normal(size=(R, R))
    quirk = rng.normal(size=(S, R, R))
    P = np.full((S, S, R, R), np.nan)
    for a in range(S):
        for b in range(S):
            if a != b:
                P[a, b] = shared + quirk[a] + 0.5 * rng.normal(size=(R, R))
    P[2, 5, 1, 3] = np.nan  # a missing entry
    st = figures.matrix_stability(P)
    for s in range(S):
        rs = []
        for t in range(S):
            if t == s:
                continue
            others = [P[a, b] for a in range(S) for b in range(S)
                      if a != b and {a, b}.isdisjoint({s, t})]
            ref = np.nanmean(np.stack(others), axis=0).ravel()
            x = P[t, s].ravel()
            ok = np.isfinite(x) & np.isfinite(ref)
            rs.append(np.corrcoef(x[ok], ref[ok])[0, 1])
        assert st[s] == pytest.approx(np.mean(rs), abs=1e-12)
    # the former form (a target's mean matrix vs the other targets' mean) reads higher: it
    # shares the stand-ins' quirks (and averages over sources)
    M = np.nanmean(P, axis=0)
    shared_ref = [np.corrcoef(M[s].ravel(), np.delete(M, s, axis=0).mean(0).ravel())[0, 1]
                  for s in range(S)]
    assert np.mean(shared_ref) > np.mean(st) + 0.05


def test_aps_per_roi(tables, tmp_path):
    fig = plot_aps_per_roi(tables["apa_summary"], ROIS, "lp-ridge-pearson", "offdiag")
    (ax,) = fig.axes
    assert _xticklabels(ax) == ROIS
    assert ax.get_ylabel() == "Alignment pattern similarity (Pearson r)"
    lines = _data_lines(ax, set(MODELS) | {figures.apa.BRAIN_LABEL})
    assert set(lines) == set(MODELS) | {figures.apa.BRAIN_LABEL}
    assert lines[figures.apa.BRAIN_LABEL].get_color() == "black"
    assert len(lines[NAN_MODEL].get_xdata()) == len(ROIS) - 1
    (stars,) = [c for c in ax.collections if c.get_gid() == "passes"]
    assert len(stars.get_offsets()) == 2  # resnet18 passes in V1, V2


def test_aps_without_verdict_or_brain_rows():
    df = T.apa_summary(with_verdict=False)
    df = df[df.candidate != "brain"]
    fig = plot_aps_per_roi(df, ROIS[::-1], "lp-ridge-pearson", "full", show_delta=True)
    ax, dax = fig.axes[:2]
    assert not [c for c in ax.collections if c.get_gid() == "passes"]
    assert _xticklabels(dax) == ROIS[::-1]
    brain = _data_lines(ax, {figures.apa.BRAIN_LABEL})[figures.apa.BRAIN_LABEL]
    assert np.allclose(brain.get_ydata(), 0.6)  # falls back on brain_aps_mean
    assert [ln for ln in dax.get_lines() if ln.get_gid() == "margin"]


def test_apa_overview(tables, tmp_path):
    apa, summ = tables["apa"], tables["apa_summary"]
    fig = plot_apa_overview(apa, summ, ROIS, "lp-ridge-pearson", "offdiag", streams=STREAMS)
    ax, vax = fig.axes[:2]
    assert ax.get_ylabel() == "Alignment pattern similarity (Pearson r)"
    assert _title(vax).startswith("verdict")
    assert _xticklabels(vax) == ROIS
    boxes = [p for p in ax.patches if p.get_gid() == "brain:box"]
    assert len(boxes) == len(ROIS)
    (dots,) = [ln for ln in ax.get_lines() if ln.get_gid() == "brain:subjects"]
    assert len(dots.get_ydata()) == len(ROIS) * len(T.SUBJECTS)
    # brain dots are the per-target-subject means over stand-ins (independent computation)
    b = apa[(apa.measure == "lp-ridge-pearson") & (apa.variant == "offdiag")
            & (apa.candidate == "brain") & (apa.roi == "V1")]
    v1 = np.sort(b.groupby("subject").aps.mean().to_numpy())
    xs, ys = np.asarray(dots.get_xdata()), np.asarray(dots.get_ydata())
    assert np.allclose(np.sort(ys[np.abs(xs - 0) < 0.5]), v1)
    verdicts = {t.get_gid(): t.get_text() for t in vax.texts}
    assert verdicts["verdict:resnet18:V1"] == "pass"
    assert verdicts["verdict:alexnet:V1"] == "fail"
    assert len(verdicts) == len(ROIS) * len(MODELS)
    assert [t.get_text() for t in vax.get_yticklabels()] == sorted(MODELS)
    assert set(MODELS) <= set(_legend_texts(fig))


def test_apa_overview_draws_the_generic_nulls(tables):
    nulls = tables["apa_nulls"]
    fig = plot_apa_overview(tables["apa"], tables["apa_summary"], ROIS, "cka-linear-debiased",
                            "offdiag", nulls=nulls)
    ax = fig.axes[0]
    drawn = {c.get_gid(): c for c in ax.collections if str(c.get_gid()).startswith("null:")}
    # target reliability is NaN on offdiag: nothing drawn for it
    assert set(drawn) == {"null:grand-mean", "null:adjacency"}
    for name in ("grand-mean", "adjacency"):
        want = (nulls[(nulls.measure == "cka-linear-debiased") & (nulls.variant == "offdiag")
                      & (nulls.null == name)].set_index("roi").loc[ROIS, "aps_mean"])
        segs = drawn[f"null:{name}"].get_segments()
        assert len(segs) == len(ROIS)
        for k, seg in enumerate(segs):  # one bar across ROI k's slot at the null's APS
            assert np.allclose(seg[:, 1], want.iloc[k])
            assert seg[0, 0] < k < seg[1, 0]
    legend = _legend_texts(fig)
    assert "null: grand-mean profile" in legend and "null: anatomical adjacency" in legend
    # on full, target reliability has values and gets its bar too
    full = plot_apa_overview(tables["apa"], tables["apa_summary"], ROIS, "cka-linear-debiased",
                             "full", nulls=nulls)
    assert "null:target-reliability" in {c.get_gid() for c in full.axes[0].collections}


def test_pattern_profiles(tables):
    fig = plot_pattern_profiles(tables["brain_brain"], tables["model_brain"], tables["summary"],
                                "V2", ROIS, "lp-ridge-pearson", standardize=True)
    (ax,) = fig.axes
    lines = _data_lines(ax, set(MODELS))
    for ln in lines.values():
        assert np.isnan(np.asarray(ln.get_ydata(), float)[ROIS.index("V2")])


def test_profile_panels(tables, tmp_path):
    bb, mb, summ = tables["brain_brain"], tables["model_brain"], tables["summary"]
    fig = plot_profile_panels(bb, mb, summ, ROIS, "lp-ridge-pearson", variant="offdiag",
                              standardize=False)
    axes = [ax for ax in fig.axes if ax.axison]
    assert [_title(ax) for ax in axes] == [f"profile of {r}" for r in ROIS]
    ax = axes[ROIS.index("V3")]
    (brain,) = [ln for ln in ax.get_lines() if ln.get_gid() == "brain"]
    sel = bb[(bb.measure == "lp-ridge-pearson") & (bb.split == "test") & (bb.source_roi == "V3")]
    per = sel.groupby(["target_subject", "target_roi"]).score.mean().unstack()[ROIS]
    expect = per.mean().to_numpy(copy=True)
    expect[ROIS.index("V3")] = np.nan
    assert np.allclose(brain.get_ydata(), expect, equal_nan=True)
    # model profile: the selected layer's scores, mean over subjects
    layer = summ[(summ.measure == "lp-ridge-pearson") & (summ.model == "alexnet")
                 & (summ.roi == "V3")].layer.iloc[0]
    m = mb[(mb.measure == "lp-ridge-pearson") & (mb.split == "test") & (mb.model == "alexnet")
           & (mb.layer == layer)].groupby("roi").score.mean().reindex(ROIS).to_numpy(copy=True)
    m[ROIS.index("V3")] = np.nan
    assert np.allclose(_data_lines(ax, {"alexnet"})["alexnet"].get_ydata(), m, equal_nan=True)
    assert [c for c in ax.collections if c.get_gid() == "brain:sd"]


def test_score_vs_aps(tables, tmp_path):
    summ, aps = tables["summary"], tables["apa_summary"]
    fig = plot_score_vs_aps(summ, aps, "rsa-crossnobis-spearman", "offdiag")
    ax = fig.axes[0]
    lines = _data_lines(ax, set(MODELS))
    assert set(lines) == set(MODELS)
    assert len(lines[NAN_MODEL].get_xdata()) == len(ROIS) - 1
    x = np.concatenate([ln.get_xdata() for ln in lines.values()])
    y = np.concatenate([ln.get_ydata() for ln in lines.values()])
    rho = stats.spearmanr(x, y).statistic
    assert f"ρ = {rho:.2f}" in _title(ax)
    assert ax.get_xlabel().startswith("conventional score") and "APS" not in ax.get_xlabel()
    assert ax.get_ylabel().startswith("Alignment pattern similarity")


def test_trained_vs_untrained(tables):
    models = [("resnet18", "pretrained"), ("resnet18", "random"), ("alexnet", "random")]
    aps = T.apa_summary(models=models)
    fig = plot_trained_vs_untrained(aps, ["lp-ridge-pearson", "cka-linear-debiased"], "offdiag")
    axes = [ax for ax in fig.axes if ax.axison]
    assert [_title(ax) for ax in axes] == ["lp-ridge-pearson", "cka-linear-debiased"]
    (ln,) = _data_lines(axes[0], {"resnet18"}).values()  # alexnet has no trained pair
    sel = aps[(aps.measure == "lp-ridge-pearson") & (aps.variant == "offdiag")
              & (aps.candidate == "resnet18")]
    u = sel[sel.weights == "random"].set_index("roi").aps_mean
    t = sel[sel.weights == "pretrained"].set_index("roi").aps_mean
    assert np.allclose(np.sort(ln.get_xdata()), np.sort(u.to_numpy()))
    assert np.allclose(np.sort(ln.get_ydata()), np.sort(t.to_numpy()))
    assert axes[0].get_xlabel().startswith("APS, untrained")
    fig = plot_trained_vs_untrained(tables["apa_summary"], MEASURES, "offdiag")
    assert [t for ax in fig.axes for t in ax.texts if t.get_gid() == "no pairs"]


def test_trained_vs_untrained_pairs_controls_with_their_own_names():
    """Candidate names are unique in a run, so a control has its own name: ``controls`` pairs
    it with the trained model (and the figure says so when the mapping is missing)."""
    from alignpatterns.features.registry import load_registry, untrained_controls

    models = [("vgg11", "pretrained"), ("vgg11_untrained", "random"), ("resnet18", "pretrained"),
              ("alexnet", "random")]
    aps = T.apa_summary(models=models)
    cfg_models = [{"name": "vgg11", "weights": "pretrained", "spec_name": "vgg11"},
                  {"name": "vgg11_untrained", "weights": "random", "spec_name": "vgg11"},
                  {"name": "resnet18", "weights": "pretrained", "spec_name": "resnet18"},
                  {"name": "oracle", "weights": "oracle", "spec_name": "vgg11"}]
    controls = untrained_controls(cfg_models, load_registry())
    assert controls == {"vgg11": "vgg11_untrained"}  # resnet18 has no control; oracle is no model
    fig = plot_trained_vs_untrained(aps, ["cka-linear-debiased"], "offdiag", controls=controls)
    ax = next(ax for ax in fig.axes if ax.axison)
    (ln,) = _data_lines(ax, {"vgg11"}).values()
    sel = aps[(aps.measure == "cka-linear-debiased") & (aps.variant == "offdiag")]
    u = sel[sel.candidate == "vgg11_untrained"].set_index("roi").aps_mean
    t = sel[sel.candidate == "vgg11"].set_index("roi").aps_mean
    rois = sorted(set(u.index) & set(t.index))
    np.testing.assert_allclose(ln.get_xdata(), u.loc[rois].to_numpy())
    np.testing.assert_allclose(ln.get_ydata(), t.loc[rois].to_numpy())
    assert ln.get_label() == "vgg11 vs vgg11_untrained"
    fig = plot_trained_vs_untrained(aps, ["cka-linear-debiased"], "offdiag")
    assert [x for ax in fig.axes for x in ax.texts if x.get_gid() == "no pairs"]


def test_untrained_controls_follow_the_registry_family():
    """``resnet18`` (random init) is the registry's control of ``resnet18_in1k``: it controls
    a trained model built from either entry; the first control in config order wins."""
    from alignpatterns.features.registry import load_registry, untrained_controls

    reg = load_registry()
    assert reg["resnet18"].control_of == "resnet18_in1k"
    models = [{"name": "r18", "weights": "pretrained", "spec_name": "resnet18_in1k"},
              {"name": "r18_rand", "weights": "random", "spec_name": "resnet18"},
              {"name": "r18_rand2", "weights": "random", "spec_name": "resnet18_in1k"},
              {"name": "r18_ckpt", "weights": "/x/ckpt.pt", "spec_name": "resnet18"}]
    assert untrained_controls(models, reg) == {"r18": "r18_rand", "r18_ckpt": "r18_rand"}


def test_confusion(tables, tmp_path):
    conf = tables["apa_confusion"]
    fig = plot_confusion(conf, ROIS, "lp-ridge-pearson", "offdiag", streams=STREAMS)
    axes = [ax for ax in fig.axes if ax.get_images() and _title(ax)]
    assert len(axes) == 1 + len(MODELS)
    assert _title(axes[0]).startswith("brain")
    im = axes[1].get_images()[0]
    assert im.get_gid() == "confusion"
    sel = conf[(conf.measure == "lp-ridge-pearson") & (conf.variant == "offdiag")
               & (conf.candidate == sorted(MODELS)[0])]
    expect = sel.pivot(index="roi", columns="identified_roi", values="fraction").reindex(
        index=ROIS, columns=ROIS).to_numpy()
    assert np.allclose(im.get_array(), expect)
    assert np.allclose(np.asarray(im.get_array()).sum(axis=1), 1.0)
    assert f"top-1 {sel.top1_accuracy.iloc[0]:.2f}" in _title(axes[1])
    assert axes[0].get_ylabel() == "true ROI"


def test_roi_map(tables, tmp_path):
    values = figures.roi_values(tables["apa_summary"], "lp-ridge-pearson", "offdiag")
    assert list(values.index) == ["brain", *sorted(MODELS)]
    fig = plot_roi_map(values, ROIS, streams=STREAMS, title="APS per ROI")
    ax = fig.axes[0]
    (im,) = ax.get_images()
    assert im.get_gid() == "roi map" and im.get_array().shape == (1 + len(MODELS), len(ROIS))
    assert _xticklabels(ax) == STREAM_ORDER
    s = tables["apa_summary"]
    v = s[(s.measure == "lp-ridge-pearson") & (s.variant == "offdiag") & (s.candidate == "brain")
          & (s.roi == "LOC")].aps_mean.iloc[0]
    assert im.get_array()[0, STREAM_ORDER.index("LOC")] == pytest.approx(v)
    assert im.colorbar.ax.get_ylabel() == "APS (Pearson r)"
    _check_written(fig, tmp_path, "roi_map")


@pytest.mark.slow
def test_surface_map_on_bundled_fsaverage5(tmp_path):
    from alignpatterns.figures.surface import FSAVERAGE5_VERTICES, fsaverage5_mesh

    mesh = fsaverage5_mesh()
    assert mesh["left"][0].shape == (FSAVERAGE5_VERTICES, 3)
    # three ROIs by the y coordinate (posterior → anterior); fsaverage-sized labels accepted
    labels = {}
    for hemi, (coords, _) in mesh.items():
        y = coords[:, 1]
        lab = np.where(y < -60, "V1", np.where(y < -30, "V2", ""))
        labels[hemi] = np.concatenate([lab, np.full(163842 - FSAVERAGE5_VERTICES, "")])
    fig = figures.plot_surface_map({"V1": 0.8, "V2": 0.2}, labels, label="APS", title="test",
                                   views=("lateral",))
    axes3d = [ax for ax in fig.axes if ax.name == "3d"]
    assert [_title(ax) for ax in axes3d] == ["left lateral", "right lateral"]
    # the painted values: V1 vertices carry 0.8, unlabelled ones nothing
    polys = axes3d[0].collections[0]
    assert polys.get_facecolors().shape[0] == mesh["left"][1].shape[0]
    assert any(ax.get_xlabel() == "APS" for ax in fig.axes if ax.name != "3d")
    with pytest.raises(ValueError, match="10242"):
        figures.plot_surface_map({"V1": 1.0}, {"left": np.array(["V1"] * 5),
                                               "right": np.array(["V1"] * 5)})
    png, pdf = save_figure(fig, tmp_path / "surface")
    assert png.stat().st_size > 5000 and pdf.read_bytes()[:5] == b"%PDF-"
