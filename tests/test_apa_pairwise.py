"""``apa.missing: pairwise``: ROIs missing in some subjects stay in APA (docs/apa.md
"Missing cells", SPEC.md §2 and §4)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alignpatterns.config import ConfigError, load_config, resolve_config, validate_config
from alignpatterns.patterns import apa
from tests.conftest import REPO
from tests.test_apa import ROIS, SUBJECTS, _bb, _ceilings, _mb, _noisy_tensor, _pattern

S, R, L = len(SUBJECTS), len(ROIS), 2
GAP_SUBJECT, GAP_ROI = 2, 2  # ROI "C" of subject "03" is a missing cell


def _data(seed: int, gap: bool):
    rng = np.random.default_rng(seed)
    A = _noisy_tensor(_pattern(rng), rng, 0.3)
    T = _noisy_tensor(_pattern(rng), rng, 0.3)
    train = np.zeros((L, S, R))
    train[0] = 1.0 + rng.uniform(0, 0.1, (S, R))  # layer 0 wins every selection
    test = rng.uniform(0, 1, (L, S, R)) + 0.5 * np.eye(R)[None, None, GAP_ROI]
    N = rng.uniform(0, 1, (40, L, S, R))
    C = rng.uniform(0.3, 0.9, (S, R))
    if gap:
        for X in (A, T):
            X[GAP_SUBJECT, :, GAP_ROI, :] = np.nan  # as source
            X[:, GAP_SUBJECT, :, GAP_ROI] = np.nan  # as target
        train[:, GAP_SUBJECT, GAP_ROI] = test[:, GAP_SUBJECT, GAP_ROI] = np.nan
        N[:, :, GAP_SUBJECT, GAP_ROI] = C[GAP_SUBJECT, GAP_ROI] = np.nan
    bb = pd.concat([_bb(A), _bb(T, split="train")], ignore_index=True)
    return A, bb, _mb(train, test), test, N, _ceilings(C)


def test_pairwise_equals_listwise_without_missing_cells():
    _, bb, mb, _, N, ceil = _data(0, gap=False)
    kw = dict(variants=["full", "offdiag", "normalized", "normalized_offdiag"],
              matches=["pearson", "spearman"], ceilings=ceil, nulls={"model": N},
              selections=["score", "aps"])
    rows_l, summ_l = apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", **kw)
    rows_p, summ_p = apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", missing="pairwise", **kw)
    pd.testing.assert_frame_equal(summ_p, summ_l, check_exact=True)
    pd.testing.assert_frame_equal(rows_p, rows_l, check_exact=True)
    kw = dict(variants=["full", "offdiag"], ceilings=ceil)
    pd.testing.assert_frame_equal(
        apa.generic_null_rows(bb, SUBJECTS, ROIS, "m", missing="pairwise", **kw),
        apa.generic_null_rows(bb, SUBJECTS, ROIS, "m", **kw), check_exact=True)
    pd.testing.assert_frame_equal(
        apa.roi_identification(bb, mb, SUBJECTS, ROIS, "m", n_draws=200, missing="pairwise",
                               **kw),
        apa.roi_identification(bb, mb, SUBJECTS, ROIS, "m", n_draws=200, **kw),
        check_exact=True)


# --- independent recomputation (numpy / scipy only) ---------------------------------------

def _present():
    P = np.ones((S, R), dtype=bool)
    P[GAP_SUBJECT, GAP_ROI] = False
    return P


def _reference(A, members, s, s2):
    """ā^{−{s,s*}}: per-entry nan-mean over ordered pairs (a, b), a ≠ b, outside {s, s*}."""
    rest = [m for m in members if m not in (s, s2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.array([A[a, b] for a in rest for b in rest if a != b]), axis=0)


def _rho(x, y, match):
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return np.nan
    f = stats.pearsonr if match == "pearson" else stats.spearmanr
    return float(f(x[ok], y[ok])[0])


def _direct(A, test, members, r, cols, match):
    """Per target s (ROI r a cell of s): mean over stand-ins s* (r a cell of s*) of the brain and
    model ρ; and the entries each row compared."""
    P = _present()
    brain, model, n_used = {}, {}, []
    for s in members:
        if not P[s, r]:
            continue
        b, m = [], []
        for s2 in members:
            if s2 == s or not P[s2, r]:
                continue
            ref = _reference(A, members, s, s2)[r, cols]
            b.append(_rho(A[s2, s, r, cols], ref, match))
            m.append(_rho(test[0, s, cols], ref, match))  # ℓ* = layer 0
            n_used.append(int((np.isfinite(A[s2, s, r, cols]) & np.isfinite(ref)).sum()))
        if b:
            brain[s], model[s] = np.mean(b), np.mean(m)
    return brain, model, n_used


def _jackknife_t(full, loo):
    loo = np.asarray(loo)
    n = loo.size
    se = np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    t = stats.t.ppf(0.975, n - 1)
    return full - t * se, full + t * se


def test_one_missing_cell_listwise_drops_pairwise_keeps_and_matches_a_direct_loop():
    A, bb, mb, test, N, ceil = _data(1, gap=True)
    kw = dict(variants=["full", "offdiag"], matches=["pearson", "spearman"], ceilings=ceil,
              nulls={"model": N})
    _, summ_l = apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", **kw)
    assert "C" not in set(summ_l["roi"])
    rows, summ = apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", missing="pairwise", **kw)
    assert set(summ["roi"]) == set(ROIS)
    # no row for ROI C with subject 03 as target or as stand-in; every other row exists
    c = rows[rows["roi"] == "C"]
    assert not (c["subject"] == "03").any() and not (c["stand_in_subject"] == "03").any()
    per_cell = len(kw["variants"]) * len(kw["matches"]) * 2  # × (brain, model)
    assert len(c) == 5 * 4 * per_cell
    assert len(rows[rows["roi"] == "A"]) == 6 * 5 * per_cell
    assert np.isfinite(summ["aps_mean"]).all() and np.isfinite(summ["delta_ci_low"][
        summ["candidate"] != "brain"]).all()
    members = list(range(S))
    for variant in kw["variants"]:
        for match in kw["matches"]:
            for roi in ("A", "C"):
                r = ROIS.index(roi)
                cols = [k for k in range(R) if variant == "full" or k != r]
                brain, model, n_used = _direct(A, test, members, r, cols, match)
                got = summ.set_index(["variant", "match", "roi", "candidate"]).loc[
                    (variant, match, roi)]
                b_mean, m_mean = np.mean(list(brain.values())), np.mean(list(model.values()))
                delta = np.mean([model[s] - brain[s] for s in brain])
                assert got.loc["brain", "aps_mean"] == pytest.approx(b_mean, abs=1e-12)
                assert got.loc["model", "aps_mean"] == pytest.approx(m_mean, abs=1e-12)
                assert got.loc["model", "delta"] == pytest.approx(delta, abs=1e-12)
                assert got.loc["brain", "n_entries"] == min(n_used)
                # the delete-one-subject jackknife recomputes the references without j
                d_loo = []
                for j in members:
                    b_j, m_j, _ = _direct(A, test, [m for m in members if m != j], r, cols,
                                          match)
                    d_loo.append(np.mean([m_j[s] - b_j[s] for s in b_j]))
                lo, hi = _jackknife_t(delta, d_loo)
                assert got.loc["model", "delta_ci_low"] == pytest.approx(lo, abs=1e-10)
                assert got.loc["model", "delta_ci_high"] == pytest.approx(hi, abs=1e-10)
    # ROI A of target 03: the full variant compares 4 entries (target cell C is missing)
    a03 = rows.query("roi == 'A' and subject == '03' and variant == 'full'")
    assert a03["n_entries"].eq(R - 1).all()
    assert rows.query("roi == 'A' and subject == '01' and variant == 'full'")[
        "n_entries"].eq(R).all()


def test_pairwise_identification_and_nulls_cover_the_incomplete_roi():
    _, bb, mb, _, _, ceil = _data(2, gap=True)
    conf = apa.roi_identification(bb, mb, SUBJECTS, ROIS, "m", variants=["offdiag"],
                                  n_draws=100, missing="pairwise")
    assert set(conf["roi"]) == set(ROIS)
    # fractions are shares of the rows that exist (ROI C: 5 targets × 4 stand-ins)
    sums = conf.groupby(["candidate", "roi"])["fraction"].sum()
    assert sums.le(1 + 1e-12).all() and sums.gt(0).all()
    nulls = apa.generic_null_rows(bb, SUBJECTS, ROIS, "m", variants=["full"], ceilings=ceil,
                                  missing="pairwise")
    c = nulls[nulls["roi"] == "C"]
    assert len(c) > 0 and np.isfinite(c["aps_mean"]).all()


def test_pairwise_normalized_keeps_a_column_missing_in_one_subject():
    _, bb, mb, _, _, ceil = _data(3, gap=True)
    _, summ = apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", variants=["normalized"], ceilings=ceil,
                          missing="pairwise")
    brain = summ[summ["candidate"] == "brain"].set_index("roi")
    # column C stays (only subject 03 lacks it): ROIs other than C compare all 5 entries for
    # targets with the cell and 4 for target 03 → fewest 4; ROI C has all 5 in its rows
    assert brain.loc["A", "n_entries"] == R - 1 and brain.loc["C", "n_entries"] == R
    assert np.isfinite(brain["aps_mean"]).all()


def test_pairwise_refuses_the_percentile_bootstrap():
    _, bb, mb, _, _, _ = _data(4, gap=True)
    with pytest.raises(ValueError, match="not supported with apa.missing: pairwise"):
        apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", ci_method="percentile-bootstrap",
                    n_bootstrap=10, missing="pairwise")
    with pytest.raises(ValueError, match="apa.missing must be one of"):
        apa.run_apa(bb, mb, SUBJECTS, ROIS, "m", missing="casewise")


# --- config and workflow ----------------------------------------------------------------

TINY = load_config(REPO / "tests" / "config" / "tiny.yaml")


def _tiny(**apa_keys) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["apa"].update(apa_keys)
    return cfg


def test_config_accepts_pairwise_and_rejects_others():
    assert validate_config(_tiny(missing="pairwise"))["apa"]["missing"] == "pairwise"
    assert validate_config(_tiny())["apa"]["missing"] == "listwise"
    with pytest.raises(ConfigError, match="apa.missing"):
        validate_config(_tiny(missing="casewise"))
    cfg = validate_config(_tiny(missing="pairwise", ci_method="percentile-bootstrap",
                                n_bootstrap=10))
    with pytest.raises(ConfigError, match="apa.missing: pairwise needs apa.ci_method"):
        resolve_config(cfg)


@pytest.mark.parametrize("missing", ["listwise", "pairwise"])
def test_pipeline_passes_apa_missing_to_every_apa_table(missing, monkeypatch):
    from alignpatterns import io, pipeline
    from alignpatterns.patterns import apa_boot

    seen = {}
    empty = pd.DataFrame({"measure": pd.Series([], dtype=str)})

    def record(name, result):
        def f(*args, **kwargs):
            seen[name] = kwargs.get("missing")
            return result(args) if callable(result) else result
        return f

    monkeypatch.setattr(io, "read_table", lambda *a, **k: empty)
    monkeypatch.setattr(io, "write_table", lambda *a, **k: None)
    monkeypatch.setattr(pipeline, "apa_pairs", lambda cfg, bb: bb)
    monkeypatch.setattr(pipeline, "load_nulls", lambda *a, **k: {})
    monkeypatch.setattr(pipeline, "roi_adjacency", lambda cfg: None)
    monkeypatch.setattr(apa, "run_apa", record("run_apa", (empty, empty)))
    monkeypatch.setattr(apa, "generic_null_rows", record("generic_null_rows", empty))
    monkeypatch.setattr(apa, "roi_identification", record("roi_identification", empty))
    monkeypatch.setattr(apa_boot, "bootstrap_columns", record("bootstrap_columns", empty))
    cfg = resolve_config(validate_config(_tiny(missing=missing)))
    pipeline.apa(cfg, "m", "mb", "bb", "ceil", [], "a", "s", "n", "c")
    assert seen == dict.fromkeys(["run_apa", "bootstrap_columns", "generic_null_rows",
                                  "roi_identification"], missing)


@pytest.mark.parametrize("partners", [None, 3])
def test_pipeline_skips_the_delta_bootstrap_with_partner_pairs(partners, monkeypatch, caplog):
    """With apa.partners the subject × stimulus bootstrap is not drawn (its stand-ins may be any
    other subject): bootstrap_columns gets no draws and the job says why; without, the
    bootstrap files are read."""
    from alignpatterns import io, pipeline
    from alignpatterns.patterns import apa_boot

    empty = pd.DataFrame({"measure": pd.Series([], dtype=str)})
    seen = {}
    monkeypatch.setattr(io, "read_table", lambda *a, **k: empty)
    monkeypatch.setattr(io, "write_table", lambda *a, **k: None)
    monkeypatch.setattr(pipeline, "apa_pairs", lambda cfg, bb: bb)
    monkeypatch.setattr(pipeline, "load_nulls", lambda *a, **k: {})
    monkeypatch.setattr(pipeline, "roi_adjacency", lambda cfg: None)
    monkeypatch.setattr(pipeline, "load_boots",
                        lambda *a, **k: (np.zeros((5, 1, 1, 1, 1)), {"m": None}, 12))
    monkeypatch.setattr(apa, "run_apa", lambda *a, **k: (empty, empty))
    monkeypatch.setattr(apa, "generic_null_rows", lambda *a, **k: empty)
    monkeypatch.setattr(apa, "roi_identification", lambda *a, **k: empty)

    def columns(summary, bb, mb, subjects, rois, measure, brain_boot, model_boot, n_test,
                seed, **kw):
        seen["n_test"], seen["draws"] = n_test, len(brain_boot)
        return summary

    monkeypatch.setattr(apa_boot, "bootstrap_columns", columns)
    cfg = resolve_config(validate_config(_tiny(n_bootstrap=5)))
    cfg["apa"]["partners"] = partners
    with caplog.at_level("WARNING"):
        pipeline.apa(cfg, "m", "mb", "bb", "ceil", [], "a", "s", "n", "c", boot_paths=["b"])
    if partners:
        assert seen == {"n_test": 0, "draws": 0}
        assert "subject × stimulus bootstrap of Δ is not drawn" in caplog.text
    else:
        assert seen == {"n_test": 12, "draws": 5}
        assert "not drawn" not in caplog.text
