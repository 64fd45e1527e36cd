"""Subject × stimulus bootstrap of the headline Δ (SPEC.md §4, Schütt et al. 2023 correction).

For a candidate × ROI r × variant × match cell, draw d combines

- a subject resample (with replacement) from the stream ``(seed, measure, variant, roi,
  candidate, "subject-bootstrap")``, stored as copy counts w (n_subjects,), and
- stimulus-bootstrap draw d of the measure (:mod:`alignpatterns.patterns.stimboot`), the same
  for the model's test scores and the brain tensor.

Inside a draw everything downstream of the test scores is recomputed: layer selection on train
with the resampled subjects (weighted by their copies), the double-exclusion references, APS of
model and brain and Δ. A resample never pairs a subject with itself: pairs and references use
distinct subjects only, so copies of one subject never meet; a pair (a, c) of distinct subjects
enters with weight w_a·w_c, a target s with weight w_s and a stand-in s* with w_{s*}.

As in rsatoolbox's ``eval_dual_bootstrap``, three bootstraps use the same draws — subjects and
stimuli, subjects only, stimuli only — and the corrected variance (rsatoolbox
``_dual_bootstrap`` with n_rdm = S, n_pattern = n_test) is

    v = S/(S−1)·v_subj + n/(n−1)·v_stim − S·n/((S−1)(n−1))·(v_both − v_subj − v_stim),

clipped to [max(S/(S−1)·v_subj, n/(n−1)·v_stim), v_both]: the plain two-factor bootstrap
counts measurement noise twice and is conservative. The interval is Δ ± t_{min(S, n)−1}·√v.
Target ceilings (normalized variants) are held at their full-sample values. The ``residual``
variant is not bootstrapped (NaN columns). Draws in which a target has no reference (fewer
than 4 distinct subjects) are dropped; ``n_bootstrap`` counts the draws used. Below 6 subjects
(where verdicts are NA) no bootstrap is reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from alignpatterns.patterns.apa import (
    BRAIN,
    MIN_SUBJECTS_VERDICT,
    _masked_pearson,
    _prepared,
    _variant_data,
    _VariantData,
    best_layer,
    model_scores,
    present_cells,
)
from alignpatterns.patterns.streams import stream

__all__ = ["subject_bootstrap_draws", "dual_bootstrap_delta", "bootstrap_columns",
           "BOOT_COLUMNS"]

BOOT_COLUMNS = ("delta_boot_se", "delta_boot_ci_low", "delta_boot_ci_high", "n_bootstrap")
_CHUNK = 192  # batch elements (draw × kind) per pass: bounds memory at BMD size


def subject_bootstrap_draws(seed: int, measure: str, variant: str, roi: str, candidate: str,
                            n_draws: int, n_subjects: int) -> np.ndarray:
    """Copy counts (n_draws, n_subjects) of the subject resamples of one cell."""
    rng = stream(seed, measure, variant, roi, candidate, "subject-bootstrap")
    out = np.zeros((max(int(n_draws), 0), n_subjects), dtype=np.int64)
    for d in range(out.shape[0]):
        out[d] = np.bincount(rng.integers(0, n_subjects, n_subjects), minlength=n_subjects)
    return out


def _select(train_r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ℓ*(s) per batch element: argmax over layers of the w-weighted mean train score over the
    other subjects (train_r (L, S); w (B, S)) → (B, S), -1 where no layer has a score."""
    F = np.isfinite(train_r)
    T = np.where(F, train_r, 0.0)
    num = np.einsum("bs,ls->bl", w, T)[:, None, :] - (w[:, :, None] * T.T[None])
    den = np.einsum("bs,ls->bl", w, F.astype(float))[:, None, :] - (w[:, :, None] * F.T[None])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(den > 0, num / np.where(den > 0, den, 1.0), -np.inf)  # (B, S, L)
    lay = best_layer(mean, axis=2)
    return np.where(np.isfinite(mean).any(axis=2), lay, -1)


def _masked_ranks(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis among the entries W (NaN elsewhere)."""
    R = stats.rankdata(np.where(W, X, np.inf), axis=-1)
    return np.where(W, R, np.nan)


def _batch_delta(At: np.ndarray, Mt: np.ndarray, w: np.ndarray, train_r: np.ndarray,
                 scale: np.ndarray, entries: np.ndarray, r: int, match: str) -> np.ndarray:
    """Δ of each batch element.

    At : (B, S, S, R) brain row r, A[b, s′, s, r, :] (normalised as the variant)
    Mt : (B, L, S, R) candidate test scores (raw); scale : (S, R) divisor of column r′
    w : (B, S) subject copy counts; entries : (R,) bool compared target ROIs.
    """
    B, S = w.shape
    lay = _select(train_r, w)  # (B, S)
    bi, si = np.arange(B)[:, None], np.arange(S)[None, :]
    Pm = Mt[bi, np.maximum(lay, 0), si, :] / scale[None]  # (B, S, R)
    Pm = np.where((lay >= 0)[..., None], Pm, np.nan)
    cols = np.flatnonzero(entries)
    X = At[..., cols]
    Pm = Pm[..., cols]
    off = ~np.eye(S, dtype=bool)
    wp = w[:, :, None] * w[:, None, :] * off[None]
    if np.isfinite(X[:, off]).all() and np.isfinite(Pm).all():
        rho = _rho_complete(X, Pm, wp, match)
    else:
        rho = _rho_masked(X, Pm, wp, match)
    valid = (w[:, :, None] > 0) & (w[:, None, :] > 0) & off[None]
    ws = np.where(valid, w[:, None, :], 0.0)  # stand-in weights
    n_in = ws.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(valid, rho[0] - rho[1], 0.0)
        per_target = (ws * diff).sum(axis=2) / n_in  # (B, S)
        wt = np.where(n_in > 0, w, 0.0)
        return np.where(wt > 0, wt * per_target, 0.0).sum(axis=1) / wt.sum(axis=1)


def _exclusion_sums(Q: np.ndarray) -> np.ndarray:
    """Σ of Q[b, a, c, ...] over pairs (a, c) with neither a nor c in {s, s*}, as [b, s, s*, ...]
    (inclusion–exclusion; Q is zero on a = c)."""
    tot = Q.sum(axis=(1, 2))[:, None, None]
    row, col = Q.sum(axis=2), Q.sum(axis=1)  # by source, by target
    return (tot - row[:, :, None] - col[:, :, None] - row[:, None, :] - col[:, None, :]
            + Q + np.swapaxes(Q, 1, 2))


def _rho_complete(X, Pm, wp, match):
    """(ρ_model, ρ_brain), each [b, s, s*], when every off-diagonal score and profile entry is
    finite: the references are one weighted mean and ρ an unmasked Pearson."""
    S = X.shape[1]
    X0 = np.where(np.eye(S, dtype=bool)[None, :, :, None], 0.0, X)
    den = _exclusion_sums(wp)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = _exclusion_sums(wp[..., None] * X0) / np.where(den > 0.5, den, np.nan)[..., None]
    Pb = np.swapaxes(X, 1, 2)  # brain profile A[s* → s] at [b, s, s*]
    if match == "spearman":
        Pm, Pb = stats.rankdata(Pm, axis=-1), stats.rankdata(Pb, axis=-1)
        ref = np.where(np.isfinite(ref), stats.rankdata(ref, axis=-1), np.nan)
    if X.shape[-1] < 3:
        nan = np.full(Pb.shape[:-1], np.nan)
        return nan, nan
    Rc, rr = _centred(ref)
    Mc, mm = _centred(Pm)
    Bc, bb = _centred(Pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho_m = np.einsum("bsk,bstk->bst", Mc, Rc) / np.sqrt(mm[:, :, None] * rr)
        rho_b = np.einsum("bstk,bstk->bst", Bc, Rc) / np.sqrt(bb * rr)
    return rho_m, rho_b


def _centred(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P centred along the last axis and its sum of squares, NaN (not a tiny positive number)
    for a vector constant up to rounding: its correlation is undefined."""
    Pc = P - P.mean(axis=-1, keepdims=True)
    ss = np.einsum("...k,...k->...", Pc, Pc)
    scale = np.abs(P).max(axis=-1)
    return Pc, np.where(ss > (1e-12 * scale) ** 2 * P.shape[-1], ss, np.nan)


def _rho_masked(X, Pm, wp, match):
    """:func:`_rho_complete` with missing scores: references average the finite pairs, ρ uses
    the entries finite in both vectors."""
    F = np.isfinite(X)
    num = _exclusion_sums(wp[..., None] * np.where(F, X, 0.0))
    den = _exclusion_sums(wp[..., None] * F)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(den > 0.5, num / np.where(den > 0.5, den, 1.0), np.nan)
    Pb = np.swapaxes(X, 1, 2)
    Pm = np.broadcast_to(Pm[:, :, None, :], Pb.shape)
    rho = []
    for P in (Pm, Pb):
        M = np.isfinite(P) & np.isfinite(ref)
        if match == "spearman":
            rho.append(_masked_pearson(_masked_ranks(P, M), _masked_ranks(ref, M), M))
        else:
            rho.append(_masked_pearson(P, ref, M))
    return rho


def dual_bootstrap_delta(vd: _VariantData, r: int, match: str, train_r: np.ndarray,
                         test: np.ndarray, brain_boot: np.ndarray, model_boot: np.ndarray,
                         subject_counts: np.ndarray, n_stimuli: int, delta: float,
                         level: float = 0.95) -> dict[str, float]:
    """Corrected subject × stimulus bootstrap of one cell's Δ.

    Parameters
    ----------
    vd : _VariantData
        The variant's tensor A (S, S, R, R), normalised, with its column scale and entries.
    r : int
        ROI index (among the kept ROIs).
    match : {"pearson", "spearman"}
    train_r : ndarray, shape (n_layers, S)
        The candidate's train scores against ROI r (layer selection).
    test : ndarray, shape (n_layers, S, R)
        The candidate's test scores (raw).
    brain_boot : ndarray, shape (D, S, S, R, R)
        Raw brain tensor under the stimulus-bootstrap draws, [draw, s′, s, r, r′].
    model_boot : ndarray, shape (D, n_layers, S, R)
        Raw candidate test scores under the same draws.
    subject_counts : ndarray of int, shape (D, S)
    n_stimuli : int
        Test stimuli (n_pattern of the correction).
    delta : float
        The observed Δ (interval centre).

    Returns
    -------
    dict with the :data:`BOOT_COLUMNS`.
    """
    S = vd.A.shape[0]
    D = len(subject_counts)
    out = dict.fromkeys(BOOT_COLUMNS, np.nan)
    out["n_bootstrap"] = 0
    if D < 2 or vd.variant == "residual" or not np.isfinite(delta):
        return out
    entries = vd.mask[r]
    scale = vd.scale
    Ar = vd.A[:, :, r, :]
    kinds = np.empty((3, D))
    ones = np.ones((1, S))
    for lo in range(0, D, max(1, _CHUNK // 3)):
        hi = min(D, lo + max(1, _CHUNK // 3))
        n = hi - lo
        Ab = brain_boot[lo:hi, :, :, r, :] / scale[None, None, :, :]
        Mb = model_boot[lo:hi]
        w = subject_counts[lo:hi].astype(float)
        At = np.concatenate([Ab, np.broadcast_to(Ar, Ab.shape), Ab])
        Mt = np.concatenate([Mb, np.broadcast_to(test, Mb.shape), Mb])
        W = np.concatenate([w, w, np.broadcast_to(ones, w.shape)])
        kinds[:, lo:hi] = _batch_delta(At, Mt, W, train_r, scale, entries, r,
                                       match).reshape(3, n)
    ok = np.all(np.isfinite(kinds), axis=0)
    if ok.sum() < 2:
        return out
    v_both, v_subj, v_stim = kinds[:, ok].var(axis=1, ddof=1)
    fs, fn = S / (S - 1), n_stimuli / (n_stimuli - 1)
    v = fs * v_subj + fn * v_stim - fs * fn * (v_both - v_subj - v_stim)
    v = min(max(v, fs * v_subj, fn * v_stim), v_both)
    se = float(np.sqrt(max(v, 0.0)))
    t = stats.t.ppf(0.5 + level / 2, min(S, n_stimuli) - 1)
    out.update(delta_boot_se=se, delta_boot_ci_low=delta - t * se,
               delta_boot_ci_high=delta + t * se, n_bootstrap=int(ok.sum()))
    return out


def bootstrap_columns(summary: pd.DataFrame, bb: pd.DataFrame, mb: pd.DataFrame,
                      subjects: Sequence[str], rois: Sequence[str], measure: str,
                      brain_boot: np.ndarray, model_boot: Mapping[str, np.ndarray],
                      n_stimuli: int, seed: int, ceilings: pd.DataFrame | None = None,
                      min_ceiling: float = 0.1, missing: str = "listwise") -> pd.DataFrame:
    """``summary`` (from :func:`alignpatterns.patterns.apa.run_apa`) with the corrected
    subject × stimulus bootstrap of Δ beside the jackknife-t interval.

    Parameters
    ----------
    summary : DataFrame
        One measure's ``apa_summary`` rows.
    bb, mb : DataFrame
        The measure's brain_brain and model_brain rows (as given to ``run_apa``).
    subjects, rois : sequences of str
        As given to ``run_apa`` (ROIs incomplete in a subject are dropped the same way).
    missing : {"listwise", "pairwise"}
        As given to ``run_apa``; under pairwise, rows of an ROI missing in some subject are
        left NaN.
    brain_boot : ndarray, shape (D, S, S, n_rois, n_rois)
        Brain tensor under the measure's stimulus-bootstrap draws (order of ``subjects`` and
        ``rois``).
    model_boot : mapping of candidate → ndarray, shape (D, n_layers, S, n_rois)
        Candidate test scores under the same draws.
    n_stimuli : int
    seed : int

    Returns
    -------
    DataFrame
        ``summary`` with columns ``delta_boot_se``, ``delta_boot_ci_low``,
        ``delta_boot_ci_high``, ``n_bootstrap`` (NaN / 0 on brain rows, the residual variant,
        without draws and below 6 subjects, where a resample rarely holds the 4 distinct
        subjects a double-exclusion reference needs). Rows selected otherwise than by score (a ``selection`` column other
        than "score") are left NaN.
    """
    summary = summary.copy()
    for col in BOOT_COLUMNS:
        summary[col] = np.nan if col != "n_bootstrap" else 0
    D = int(brain_boot.shape[0])
    if summary.empty or D == 0 or len(subjects) < MIN_SUBJECTS_VERDICT:
        return summary
    subjects = list(subjects)
    kept, A, ceil = _prepared(bb, subjects, rois, measure, ceilings, missing)
    # apa.missing pairwise: only ROIs that are cells of every subject get the bootstrap (its
    # weighted target × stand-in means assume every row exists); the others stay NaN
    complete = set(kept if missing == "listwise" else
                   [k for k, ok in zip(kept, present_cells(A).all(axis=0), strict=True) if ok])
    kidx = [list(rois).index(k) for k in kept]
    Bb = brain_boot[:, :, :, kidx][:, :, :, :, kidx]
    cands = {(ms.name, ms.weights): ms for ms in model_scores(mb, subjects, kept)}
    S = len(subjects)
    vds: dict[str, _VariantData] = {}
    is_model = summary["candidate"] != BRAIN
    if "selection" in summary.columns:
        is_model &= summary["selection"].fillna("score").eq("score")
    for i in summary.index[is_model]:
        row = summary.loc[i]
        ms = cands.get((row["candidate"], row["weights"]))
        if ms is None or row["roi"] not in complete:
            continue
        Mb = model_boot.get(ms.name)
        if Mb is None:
            raise ValueError(f"no stimulus-bootstrap scores of candidate {ms.name!r}")
        if Mb.shape != (D, len(ms.layers), S, len(rois)):
            raise ValueError(f"stimulus-bootstrap scores of {ms.name!r}: expected shape "
                             f"({D}, {len(ms.layers)}, {S}, {len(rois)}), got {Mb.shape}")
        variant = row["variant"]
        if variant not in vds:
            vds[variant] = _variant_data(variant, A, ceil, min_ceiling, missing=missing)
        vd = vds[variant]
        r = kept.index(row["roi"])
        counts = subject_bootstrap_draws(seed, measure, variant, row["roi"], ms.name, D, S)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = dual_bootstrap_delta(vd, r, row["match"], ms.train[:, :, r], ms.test,
                                       Bb, Mb[..., kidx], counts, n_stimuli,
                                       float(row["delta"]))
        for col, val in res.items():
            summary.loc[i, col] = val
    summary["n_bootstrap"] = summary["n_bootstrap"].astype("int64")
    return summary
