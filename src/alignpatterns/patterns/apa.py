"""Alignment Pattern Analysis: APS of models and of the brain baseline (SPEC.md §4).

Notation: A_{s′→s}[r, r′] is the test-split alignment of source subject s′'s ROI r with target
subject s's ROI r′. For target s and stand-in subject s* ≠ s the reference is the double-exclusion
mean ā^{−{s,s*}}[r] over ordered pairs with neither subject in {s, s*}, and

- APS_brain(r, s) = mean_{s*} ρ(A_{s*→s}[r, :], ā^{−{s,s*}}[r]);
- APS_model(m, r, s) = mean_{s*} ρ(M_{m,r,s}, ā^{−{s,s*}}[r]) with M_{m,r,s}[r′] the test score of
  model m's layer ℓ*(m, r, s) against ROI r′ of subject s, and ℓ* selected on the train split by the
  mean score over the *other* subjects (leave-subject-out);
- Δ_s = APS_model − APS_brain, paired per subject.

Model and brain use exactly the same references. Intervals: mean ± t_{S−1}·SE with a
delete-one-subject jackknife that recomputes references and layer selection.

Variants: ``full`` (every target ROI r′), ``offdiag`` (drop r′ = r), ``normalized`` and
``normalized_offdiag`` (column r′ divided by the *target* subject's ceiling of ROI r′ in the
measure's units — LP: mean √NC; RSA/CKA: Spearman–Brown split-half reliability; columns whose
ceiling is below ``min_ceiling`` in any subject are dropped), and ``residual`` (offdiag entries
after regressing the reference's grand-mean profile and the target's reliability profile out of
both vectors). ``relerr`` = ‖M − ā‖/‖ā‖ is reported on the normalized variants.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from alignpatterns.measures.stats import fdr_bh, permutation_p_value
from alignpatterns.patterns.adjacency import adjacency_profiles

VARIANTS = ("full", "offdiag", "normalized", "normalized_offdiag", "residual")
OFFDIAG_VARIANTS = ("offdiag", "normalized_offdiag", "residual")
NORMALIZED_VARIANTS = ("normalized", "normalized_offdiag")
CEILING_KIND = {"lp-ridge-pearson": "lp_ceiling", "lp-ridge-r2": "lp_ceiling"}  # others: split_half
MATCHES = ("pearson", "spearman")
SELECTIONS = ("score", "aps")
BRAIN = "brain"
MIN_SUBJECTS_BASELINE = 4
MIN_SUBJECTS_VERDICT = 6
# verdict recomputed at other margins δ (SPEC.md §4: sensitivity for 0.05, 0.1, 0.2)
SENSITIVITY_COLUMNS = {0.05: "passes_margin_0_05", 0.1: "passes_margin_0_1",
                       0.2: "passes_margin_0_2"}


@dataclass
class BrainTensor:
    """A[s′, s, r, r′] on one split; NaN where s′ = s or a cell is missing.

    Attributes
    ----------
    values : ndarray, shape (n_subjects, n_subjects, n_rois, n_rois)
    subjects : list of str
    rois : list of str
    """

    values: np.ndarray
    subjects: list[str]
    rois: list[str]


def brain_tensor(bb: pd.DataFrame, subjects: Sequence[str], rois: Sequence[str],
                 split: str = "test") -> BrainTensor:
    """Arrange brain–brain rows (one measure) into A[s′, s, r, r′]."""
    sidx = {s: i for i, s in enumerate(subjects)}
    ridx = {r: i for i, r in enumerate(rois)}
    A = np.full((len(subjects),) * 2 + (len(rois),) * 2, np.nan)
    d = bb[bb["split"] == split]
    d = d[d["source_subject"].isin(sidx) & d["target_subject"].isin(sidx)
          & d["source_roi"].isin(ridx) & d["target_roi"].isin(ridx)]
    A[d["source_subject"].map(sidx).to_numpy(), d["target_subject"].map(sidx).to_numpy(),
      d["source_roi"].map(ridx).to_numpy(), d["target_roi"].map(ridx).to_numpy()] = \
        d["score"].to_numpy(dtype=float)
    for i in range(len(subjects)):
        A[i, i] = np.nan
    return BrainTensor(A, list(subjects), list(rois))


def complete_rois(tensor: BrainTensor) -> list[str]:
    """ROIs present for every subject (listwise deletion of missing cells)."""
    A = tensor.values
    keep = []
    for k, roi in enumerate(tensor.rois):
        ok = True
        for s in range(len(tensor.subjects)):
            others = [o for o in range(len(tensor.subjects)) if o != s]
            if np.all(np.isnan(A[others, s][:, :, k])) or np.all(np.isnan(A[s, others][:, k, :])):
                ok = False
        if ok:
            keep.append(roi)
    return keep


MISSING = ("listwise", "pairwise")


def present_cells(A: np.ndarray) -> np.ndarray:
    """P[s, k]: ROI k of subject s is a cell (``apa.missing: pairwise``), shape (S, R) bool.

    The rule of :func:`complete_rois`, per subject: some partner scores the cell as a target
    (A[s′, s, :, k]) and as a source (A[s, s′, k, :]); ``complete_rois`` keeps the ROIs with
    P[:, k] all true.
    """
    fin = np.isfinite(A)
    return fin.any(axis=(0, 2)) & fin.any(axis=(1, 3))


def _corr(x: np.ndarray, y: np.ndarray, match: str) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan  # zero-variance profile: APS undefined (counts as fail)
    if match == "spearman":
        x, y = stats.rankdata(x), stats.rankdata(y)
    return float(np.corrcoef(x, y)[0, 1])


def _residual_corr(x: np.ndarray, y: np.ndarray, covariates: np.ndarray, match: str) -> float:
    """ρ of x and y after regressing an intercept and ``covariates`` (k, n) out of both."""
    ok = np.isfinite(x) & np.isfinite(y) & np.all(np.isfinite(covariates), axis=0)
    Z = np.column_stack([np.ones(ok.sum()), covariates[:, ok].T])
    if ok.sum() - np.linalg.matrix_rank(Z) < 3:
        return np.nan
    proj = Z @ np.linalg.pinv(Z)
    rx = x[ok] - proj @ x[ok]
    ry = y[ok] - proj @ y[ok]
    return _corr(rx, ry, match)


def _entries(variant: str, n_rois: int, r: int, columns: np.ndarray | None = None) -> np.ndarray:
    """Target-ROI entries of row r compared in ``variant`` (``columns``: usable columns)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown APA variant {variant!r}; expected one of {VARIANTS}")
    keep = np.ones(n_rois, dtype=bool) if columns is None else columns.copy()
    if variant in OFFDIAG_VARIANTS:
        keep[r] = False
    return np.flatnonzero(keep)


def target_ceilings(ceilings: pd.DataFrame, measure: str, subjects: Sequence[str],
                    rois: Sequence[str]) -> np.ndarray:
    """C[s, r′]: the target subject's ceiling of ROI r′ in the measure's units (test split).

    LP: ``lp_ceiling`` (mean √NC); RSA and CKA: ``split_half`` (Spearman–Brown). NaN where
    missing.
    """
    kind = CEILING_KIND.get(measure, "split_half")
    d = ceilings[(ceilings["measure"] == measure) & (ceilings["split"] == "test")
                 & (ceilings["kind"] == kind)]
    v = d.set_index(["subject", "roi"])["value"]
    return np.array([[float(v.get((s, r), np.nan)) for r in rois] for s in subjects])


@dataclass
class ModelScores:
    """One candidate's scores: arrays (n_layers, n_subjects, n_rois) for train and test."""

    name: str
    weights: str
    layers: list[str]
    train: np.ndarray
    test: np.ndarray


def model_scores(mb: pd.DataFrame, subjects: Sequence[str], rois: Sequence[str]
                 ) -> list[ModelScores]:
    """Arrange model–brain rows (one measure) per candidate."""
    sidx = {s: i for i, s in enumerate(subjects)}
    ridx = {r: i for i, r in enumerate(rois)}
    out = []
    for (model, weights), d in mb.groupby(["model", "weights"], sort=True):
        layers = (d[["layer_index", "layer"]].drop_duplicates().sort_values("layer_index")
                  ["layer"].tolist())
        lidx = {name: i for i, name in enumerate(layers)}
        arrs = {}
        for split in ("train", "test"):
            arr = np.full((len(layers), len(subjects), len(rois)), np.nan)
            e = d[(d["split"] == split) & d["subject"].isin(sidx) & d["roi"].isin(ridx)]
            arr[e["layer"].map(lidx).to_numpy(), e["subject"].map(sidx).to_numpy(),
                e["roi"].map(ridx).to_numpy()] = e["score"].to_numpy(dtype=float)
            arrs[split] = arr
        out.append(ModelScores(str(model), str(weights), layers, arrs["train"], arrs["test"]))
    return out


def double_exclusion_references(A: np.ndarray, members: Sequence[int]
                                ) -> dict[tuple[int, int], np.ndarray]:
    """ā^{−{s,s*}} (n_rois, n_rois) for every ordered (s, s*) of ``members``: the nan-mean of
    A[a, b] (A shaped (S, S, R, R), [source, target]) over the ordered pairs of members a ≠ b
    with a, b ∉ {s, s*}."""
    refs = {}
    for s in members:
        for s2 in members:
            if s == s2:
                continue
            rest = [m for m in members if m not in (s, s2)]
            pairs = [A[a, b] for a in rest for b in rest if a != b]
            with warnings.catch_warnings():  # missing cells are NaN in every pair
                warnings.simplefilter("ignore", RuntimeWarning)
                refs[s, s2] = (np.nanmean(pairs, axis=0) if pairs
                               else np.full(A.shape[2:], np.nan))
    return refs


_references = double_exclusion_references


def _select_layer(ms: ModelScores, members: Sequence[int], s: int, r: int,
                  selection: str = "score", vd: _VariantData | None = None,
                  match: str = "pearson") -> int:
    """ℓ*(m, r, s) of one ROI (see :func:`_select_layers`)."""
    return int(_select_layers(ms, members, s, selection, vd, match)[r])


@dataclass
class _Cell:
    """Per-subject values of one candidate × ROI on a member set."""

    aps: dict[int, float]            # target subject -> mean over stand-ins
    per_pair: dict[tuple[int, int], float]
    spec: dict[int, float]
    layer: dict[int, int]
    relerr: dict[int, float]
    # pairwise only: entries finite in both vectors per (target, stand-in) row
    n_used: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass
class _VariantData:
    """What a variant compares: (possibly normalised) tensors, usable columns, covariates."""

    variant: str
    A: np.ndarray                    # (S, S, R, R)
    columns: np.ndarray              # (R,) bool
    ceil: np.ndarray                 # (S, R) target ceilings (NaN if unknown)
    scale: np.ndarray                # (S, R) divisor of column r′ for target s (1 if raw)
    train: np.ndarray | None = None  # (S, S, R, R) train tensor, scaled as A (selection 'aps')
    present: np.ndarray | None = None  # (S, R) cells (apa.missing pairwise); None: listwise
    cache: dict = field(default_factory=dict, repr=False)

    def rows(self, s: int, s2: int) -> np.ndarray:
        """(R,) bool: whether the row (target s, stand-in s*, ROI r) exists — always under
        listwise; under pairwise iff ROI r is a cell of both s and s* (:func:`present_cells`)."""
        if self.present is None:
            return np.ones(self.A.shape[2], dtype=bool)
        return self.present[s] & self.present[s2]

    def paired(self, s2: int, s: int) -> bool:
        """Whether the tensor holds the pair s2 → s (stand-ins of s are its source partners;
        every s2 ≠ s unless ``apa.partners`` selected fewer, :func:`partner_pairs`)."""
        if "paired" not in self.cache:
            self.cache["paired"] = np.any(np.isfinite(self.A), axis=(2, 3))
        return bool(self.cache["paired"][s2, s])

    def entries(self, r: int) -> np.ndarray:
        return _entries(self.variant, self.A.shape[2], r, self.columns)

    @property
    def mask(self) -> np.ndarray:
        """E (R, R) bool: E[r, c] = column c is compared for ROI r."""
        if "mask" not in self.cache:
            R = self.A.shape[2]
            E = np.zeros((R, R), dtype=bool)
            for r in range(R):
                E[r, self.entries(r)] = True
            self.cache["mask"] = E
        return self.cache["mask"]

    def match(self, prof, ref, s, r, cols, match) -> float:
        if self.variant == "residual":
            cov = np.vstack([np.nanmean(ref[:, cols], axis=0), self.ceil[s, cols]])
            return _residual_corr(prof[cols], ref[r, cols], cov, match)
        return _corr(prof[cols], ref[r, cols], match)

    def match_rows(self, prof, ref, s, match) -> np.ndarray:
        """ρ(prof, ref[r″]) on the entries of r″, for every r″ at once, shape (n_rois,).

        Element r″ equals ``match(prof, ref, s, r″, entries(r″), match)``.
        """
        return self.match_matrix(prof[None, :], ref, s, match)[0]

    def match_matrix(self, P, ref, s, match) -> np.ndarray:
        """C[r, r″] = ρ(P[r], ref[r″]) on the entries of r″, shape (n_profiles, n_rois).

        Pearson on the non-residual variants is one masked pass over all pairs (the APA loops
        need S²·R² correlations per candidate; one Python call each dominated the stage).
        """
        R = self.A.shape[2]
        if self.variant == "residual" or match != "pearson":
            return np.array([[self.match(p, ref, s, r2, self.entries(r2), match)
                              for r2 in range(R)] for p in P])
        W = self.mask[None] & np.isfinite(P)[:, None, :] & np.isfinite(ref)[None]
        return _masked_pearson(P[:, None, :], ref[None], W)


def _masked_ptp(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Range of X along the last axis over the entries W (0 where there is no entry)."""
    hi = np.where(W, X, -np.inf).max(axis=-1)
    lo = np.where(W, X, np.inf).min(axis=-1)
    return np.where(W.any(axis=-1), hi - lo, 0.0)


def _masked_pearson(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis of X and Y (broadcast to W's shape) over the entries W.

    NaN with fewer than 3 entries or a constant vector, as :func:`_corr` (a constant vector is
    detected exactly, max = min: centring leaves rounding residue in it).
    """
    n = W.sum(axis=-1)
    Xw = np.where(W, X, 0.0)
    Yw = np.where(W, Y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        Xc = np.where(W, Xw - (Xw.sum(axis=-1) / n)[..., None], 0.0)
        Yc = np.where(W, Yw - (Yw.sum(axis=-1) / n)[..., None], 0.0)
        out = (Xc * Yc).sum(axis=-1) / np.sqrt((Xc * Xc).sum(axis=-1) * (Yc * Yc).sum(axis=-1))
    bad = (n < 3) | (_masked_ptp(Xw, W) == 0) | (_masked_ptp(Yw, W) == 0)
    return np.where(bad, np.nan, out)


def _relerr_rows(P: np.ndarray, ref: np.ndarray, E: np.ndarray) -> np.ndarray:
    """‖P[r] − ref[r]‖ / ‖ref[r]‖ over the entries E[r] where both are finite, per r."""
    ok = E & np.isfinite(P) & np.isfinite(ref)
    num = np.sqrt(np.where(ok, (P - ref) ** 2, 0.0).sum(axis=1))
    den = np.sqrt(np.where(ok, ref ** 2, 0.0).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _select_layers(ms: ModelScores, members: Sequence[int], s: int, selection: str = "score",
                   vd: _VariantData | None = None, match: str = "pearson") -> np.ndarray:
    """ℓ*(m, r, s) for every ROI r at once (-1 where no layer has a train score).

    Only the subjects ``members`` other than ``s`` choose (leave-subject-out; a jackknife
    resample passes its reduced member set, so selection is redone inside it).
    ``selection="score"``: argmax_ℓ of the mean train score over those subjects.
    ``selection="aps"``: argmax_ℓ of the train-split APS over those subjects
    (:func:`_train_aps`; needs ``vd`` with its ``train`` tensor; depends on the variant and
    ``match``).
    """
    others = [m for m in members if m != s]
    if selection == "aps":
        if vd is None or vd.train is None:
            raise ValueError("selection 'aps' needs the train-split brain tensor")
        key = ("aps-select", ms.name, ms.weights, match, tuple(others))
        if key not in vd.cache:
            vd.cache[key] = _train_aps(vd, ms, others, match)
        mean = vd.cache[key]
    elif selection == "score":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(ms.train[:, others, :], axis=1)  # (n_layers, n_rois)
    else:
        raise ValueError(f"unknown layer selection {selection!r}; expected one of {SELECTIONS}")
    missing = np.all(np.isnan(mean), axis=0)
    return np.where(missing, -1, best_layer(mean))


#: Layers whose selection criterion is within this of the best tie (rounding, not data).
SELECTION_TIE = 1e-12


def best_layer(mean: np.ndarray, axis: int = 0) -> np.ndarray:
    """Index along ``axis`` (the layers) of the best value: the shallowest layer within
    :data:`SELECTION_TIE` (relative) of the maximum; NaN and -inf never win unless nothing
    else is there (index 0 then; callers mark those -1). Spearman train APS over a few
    entries ties exactly, and which tied layer a plain argmax picks would depend on
    floating-point summation order, which differs between the selection paths.

    Parameters
    ----------
    mean : ndarray, e.g. shape (n_layers, n_rois)
    axis : int

    Returns
    -------
    ndarray of int, ``mean``'s shape without ``axis``
    """
    m = np.where(np.isnan(mean), -np.inf, mean)
    best = m.max(axis=axis, keepdims=True)
    tol = SELECTION_TIE * np.maximum(1.0, np.abs(np.where(np.isfinite(best), best, 0.0)))
    return np.argmax(m >= best - tol, axis=axis)


def _exclusion_references(A: np.ndarray) -> np.ndarray:
    """ā^{−{t,u}} for every ordered (t, u), t ≠ u, of the subjects of ``A``: (n, n, R, R).

    Pairs (a, b), a ≠ b, with a, b ∉ {t, u}, averaged over their finite cells; computed by
    inclusion–exclusion of the pair sums (NaN on the diagonal t = u and where no pair has a
    finite cell).
    """
    n = A.shape[0]
    off = ~np.eye(n, dtype=bool)[:, :, None, None]
    fin = np.isfinite(A) & off
    X = np.where(fin, A, 0.0)
    C = fin.astype(float)
    out = []
    for M in (X, C):
        row, col, tot = M.sum(axis=1), M.sum(axis=0), M.sum(axis=(0, 1))
        out.append(tot[None, None] - row[:, None] - col[:, None] - row[None, :] - col[None, :]
                   + M + M.transpose(1, 0, 2, 3))
    total, count = out
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(count > 0.5, total / np.maximum(count, 1.0), np.nan)
    ref[~off[:, :, 0, 0]] = np.nan
    return ref


def _standardise(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Centre X over the entries W of the last axis and scale to unit norm (0 off W; NaN
    for fewer than 3 entries or a constant vector, as :func:`_corr`)."""
    n = W.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        Xc = np.where(W, X - np.where(W, X, 0.0).sum(axis=-1, keepdims=True) / n, 0.0)
        norm = np.sqrt((Xc * Xc).sum(axis=-1, keepdims=True))
        bad = (n < 3) | (_masked_ptp(X, W)[..., None] == 0)
        return np.where(bad, np.nan, Xc / norm)


def _train_aps(vd: _VariantData, ms: ModelScores, others: Sequence[int], match: str
               ) -> np.ndarray:
    """Train-split APS of every layer for every ROI, from the subjects ``others`` only.

    APS^T(ℓ, r) = mean over targets t and stand-ins u ≠ t in ``others`` of
    ρ(M^T_{ℓ,t}, ā^{T,−{t,u}}[r]) on the entries of r, where M^T_{ℓ,t}[r′] is layer ℓ's train
    score against ROI r′ of subject t (out-of-fold for LP) and the reference averages the train
    tensor over ordered pairs of ``others`` without t and u. Model profiles and tensor are
    scaled as the variant's test ones. Means skip undefined (NaN) pairs.

    Returns
    -------
    ndarray, shape (n_layers, n_rois)
        NaN where no pair is defined (that layer is never selected).
    """
    if vd.variant == "residual":
        raise ValueError("selection 'aps' is not available for the residual variant")
    o = list(others)
    if len(o) < 4:
        raise ValueError(f"selection 'aps' needs ≥ 4 selecting subjects; found {len(o)}")
    refs = _exclusion_references(vd.train[np.ix_(o, o)])           # (T, U, R, R)
    T = len(o)
    refs[np.arange(T), np.arange(T)] = 0.0  # t = u is no pair (dropped below)
    X = ms.train[:, o, :].transpose(1, 0, 2) / vd.scale[o][:, None, :]  # (T, L, R)
    E = vd.mask                                                      # (R, R)
    L, R = X.shape[1:]
    # W: entries of ROI r (E[r]) where both profile and reference are finite
    Xb = np.broadcast_to(X[:, None, :, None, :], (T, 1, L, R, R))
    Yb = refs[:, :, None, :, :]                                      # (T, U, 1, R, R)
    if match == "spearman":
        shared = np.isfinite(Xb) & np.isfinite(Yb) & E
        if not shared.all(axis=(0, 1, 2))[E].all():
            # a missing cell (pairwise): rank over the entries both vectors have, as the
            # test-split path does; ranking each vector over its own would not be Spearman
            shape = shared.shape
            Xb = np.where(shared, np.broadcast_to(Xb, shape), np.nan)
            Yb = np.where(shared, np.broadcast_to(Yb, shape), np.nan)
        Xb = _masked_ranks(np.where(E, Xb, np.nan))
        Yb = _masked_ranks(np.where(E, Yb, np.nan))
    fx, fy = np.isfinite(Xb) & E, np.isfinite(Yb) & E
    if fx.all(axis=(0, 1, 2))[E].all() and fy.all(axis=(0, 1, 2))[E].all():
        # no missing cell: standardise once per factor, ρ is a dot product
        rho = np.einsum("tzlrk,turk->tulr", _standardise(Xb, fx),
                        _standardise(Yb, fy)[:, :, 0])
    else:
        rho = _masked_pearson(Xb, Yb, fx & fy)
    rho[np.arange(T), np.arange(T)] = np.nan                          # t = u is no pair
    if vd.present is not None:  # pairwise: only rows whose ROI is a cell of both t and u
        pres = vd.present[o]
        rho = np.where((pres[:, None, :] & pres[None, :, :])[:, :, None, :], rho, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(rho, axis=(0, 1))


def _masked_ranks(X: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis of the finite entries (NaN elsewhere)."""
    return stats.rankdata(X, axis=-1, nan_policy="omit")


def _pair_matrices(vd: _VariantData, refs, members, match, profiles, key):
    """For every ordered (s, s*) of ``members``: (C, P, layers), where P (R, R) holds the
    candidate's profile for every ROI, C[r, r″] = ρ(P[r], ā^{−{s,s*}}[r″]) on the entries of
    r″ and ``layers`` (R,) the selected layer per ROI (-1: none). Cached per variant."""
    ck = ("pairs", id(refs), tuple(members), match, key)
    if ck not in vd.cache:
        out = {}
        for s in members:
            for s2 in members:
                if s2 != s and vd.paired(s2, s):
                    P, lay = profiles(s, s2)
                    out[s, s2] = (vd.match_matrix(P, refs[s, s2], s, match), P, lay)
        vd.cache[ck] = out
    return vd.cache[ck]


def _candidate_cells(vd: _VariantData, refs, members, match, profiles, key) -> list[_Cell]:
    """One :class:`_Cell` per ROI for the candidate whose profiles ``profiles`` gives."""
    ck = ("cells", id(refs), tuple(members), match, key)
    if ck in vd.cache:
        return vd.cache[ck]
    pairs = _pair_matrices(vd, refs, members, match, profiles, key)
    R = vd.A.shape[2]
    norm = vd.variant in NORMALIZED_VARIANTS
    cells = [_Cell({}, {}, {}, {}, {}) for _ in range(R)]
    diag = np.eye(R, dtype=bool)
    for s in members:
        if vd.present is not None:
            _pairwise_target(vd, pairs, refs, members, s, cells, norm)
            continue
        vals, specs, errs = [], [], []
        for s2 in members:
            if s2 == s or not vd.paired(s2, s):
                continue
            C, P, lay = pairs[s, s2]
            v = np.diag(C)
            with warnings.catch_warnings():  # all-NaN profiles give NaN, by design
                warnings.simplefilter("ignore", RuntimeWarning)
                # specificity: each other ROI r″ compared on its own entries (offdiag variants
                # drop entry r″ from both vectors, and keep r)
                other = np.nanmean(np.where(diag, np.nan, C), axis=1)
            vals.append(v)
            specs.append(v - other)
            if norm:
                errs.append(_relerr_rows(P, refs[s, s2], vd.mask))
            for r in range(R):
                cells[r].per_pair[s, s2] = float(v[r])
                cells[r].layer[s] = int(lay[r])
        if not vals:  # no stand-in paired with s among members (apa.partners, a resample)
            vals, specs, errs = [np.full(R, np.nan)], [np.full(R, np.nan)], [np.full(R, np.nan)]
        aps, spec = np.mean(vals, axis=0), np.mean(specs, axis=0)
        err = np.mean(errs, axis=0) if norm else np.full(R, np.nan)
        for r in range(R):
            cells[r].aps[s] = float(aps[r])
            cells[r].spec[s] = float(spec[r])
            cells[r].relerr[s] = float(err[r])
    vd.cache[ck] = cells
    return cells


def _pairwise_target(vd: _VariantData, pairs, refs, members, s: int, cells: list[_Cell],
                     norm: bool) -> None:
    """Fill ``cells`` for target ``s`` under ``apa.missing: pairwise``.

    Only the rows that exist (ROI r a cell of both s and the stand-in s*, :meth:`_VariantData.
    rows`) enter: per_pair, n_used (entries finite in both vectors) and the target's APS,
    specificity and relerr, the means over its existing rows (NaN if one of them is undefined,
    as listwise). A target without any row for r gets no value for r (it is left out of the
    ROI's means over targets, not counted as NaN)."""
    R = vd.A.shape[2]
    diag = np.eye(R, dtype=bool)
    got: list[list[tuple[float, float, float]]] = [[] for _ in range(R)]
    for s2 in members:
        if s2 == s or not vd.paired(s2, s):
            continue
        ok = vd.rows(s, s2)
        if not ok.any():
            continue
        C, P, lay = pairs[s, s2]
        ref = refs[s, s2]
        v = np.diag(C)
        with warnings.catch_warnings():  # all-NaN profiles give NaN, by design
            warnings.simplefilter("ignore", RuntimeWarning)
            other = np.nanmean(np.where(diag, np.nan, C), axis=1)
        err = _relerr_rows(P, ref, vd.mask) if norm else np.full(R, np.nan)
        used = (vd.mask & np.isfinite(P) & np.isfinite(ref)).sum(axis=1)
        for r in np.flatnonzero(ok):
            cells[r].per_pair[s, s2] = float(v[r])
            cells[r].n_used[s, s2] = int(used[r])
            cells[r].layer[s] = int(lay[r])
            got[r].append((float(v[r]), float(v[r] - other[r]), float(err[r])))
    for r in range(R):
        if got[r]:
            a, sp, e = np.mean(got[r], axis=0)
            cells[r].aps[s], cells[r].spec[s], cells[r].relerr[s] = float(a), float(sp), float(e)


def _brain_profiles(vd: _VariantData):
    """(s, s*) → the stand-in subject's rows A_{s*→s}[r, :] for every r."""
    none = np.full(vd.A.shape[2], -1)
    return lambda s, s2: (vd.A[s2, s], none)


def _model_profiles(vd: _VariantData, ms: ModelScores, members, selection: str = "score",
                    match: str = "pearson"):
    """(s, s*) → the model's test profiles at its leave-subject-out layers ℓ*(m, r, s)."""
    layers = {s: _select_layers(ms, members, s, selection, vd, match) for s in members}

    def profiles(s, _s2):
        lay = layers[s]
        P = ms.test[np.maximum(lay, 0), s] / vd.scale[s][None, :]
        return np.where((lay >= 0)[:, None], P, np.nan), lay

    return profiles


def _brain_cell(vd: _VariantData, refs, members, r, match) -> _Cell:
    return _candidate_cells(vd, refs, members, match, _brain_profiles(vd), ("brain",))[r]


def _model_cell(vd: _VariantData, refs, members, r, match, ms: ModelScores,
                selection: str = "score") -> _Cell:
    return _candidate_cells(vd, refs, members, match,
                            _model_profiles(vd, ms, members, selection, match),
                            ("model", ms.name, ms.weights, selection))[r]


def _variant_data(variant: str, A: np.ndarray, ceil: np.ndarray, min_ceiling: float,
                  train: np.ndarray | None = None, missing: str = "listwise") -> _VariantData:
    """What ``variant`` compares, from the raw test tensor A (and train tensor).

    ``missing="pairwise"`` records the cells (:func:`present_cells` of A) and judges a
    normalized column only by the subjects that have that ROI: column r′ is dropped if a
    subject with the cell has a ceiling below ``min_ceiling`` (or none); a subject without the
    cell has a NaN scale there."""
    if missing not in MISSING:
        raise ValueError(f"apa.missing must be one of {MISSING}, got {missing!r}")
    S, _, R, _ = A.shape
    present = present_cells(A) if missing == "pairwise" else None
    if variant in NORMALIZED_VARIANTS:
        with np.errstate(invalid="ignore"):
            high = ceil >= min_ceiling
            columns = np.all(high if present is None else high | ~present, axis=0)
        scale = np.where(columns[None, :], ceil, np.nan)
        An = A / scale[None, :, None, :]
        Tn = None if train is None else train / scale[None, :, None, :]
        return _VariantData(variant, An, columns, ceil, scale, Tn, present)
    return _VariantData(variant, A, np.ones(R, dtype=bool), ceil, np.ones((S, R)), train,
                        present)


def _rowwise_corr(P: np.ndarray, y: np.ndarray, match: str) -> np.ndarray:
    """ρ of every row of P (D, k) with y (k,); NaN for constant rows."""
    if match == "spearman":
        P = stats.rankdata(P, axis=1)
        y = stats.rankdata(y)
    Pc = P - P.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    den = np.sqrt(np.einsum("ij,ij->i", Pc, Pc) * (yc @ yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (Pc @ yc) / den
    out[~(den > 0)] = np.nan
    return out


def _null_aps(vd: _VariantData, refs, members, r, match, ms: ModelScores, N: np.ndarray,
              selection: str = "score") -> np.ndarray:
    """APS_model(m, r) averaged over target subjects for every permutation draw.

    ``N`` (n_draws, n_layers, n_subjects, n_rois) holds the candidate's test scores with its
    stimuli permuted; layers are selected on train exactly as for the observed APS.
    """
    if vd.present is not None:
        return _null_aps_pairwise(vd, refs, members, r, match, ms, N, selection)
    cols = vd.entries(r)
    per_target = []
    for s in members:
        lay = _select_layer(ms, members, s, r, selection, vd, match)
        if lay < 0:
            return np.full(N.shape[0], np.nan)
        prof = N[:, lay, s, :] / vd.scale[s]
        vals = []
        for s2 in members:
            if s2 == s or not vd.paired(s2, s):
                continue
            ref = refs[s, s2]
            x, y = prof[:, cols], ref[r, cols]
            if vd.variant == "residual":
                cov = np.vstack([np.nanmean(ref[:, cols], axis=0), vd.ceil[s, cols]])
                Z = np.column_stack([np.ones(len(cols)), cov.T])
                proj = Z @ np.linalg.pinv(Z)
                x, y = x - x @ proj.T, y - proj @ y
            vals.append(_rowwise_corr(x, y, match))
        per_target.append(np.mean(vals, axis=0))
    return np.mean(per_target, axis=0)


def _null_aps_pairwise(vd: _VariantData, refs, members, r, match, ms: ModelScores,
                       N: np.ndarray, selection: str = "score") -> np.ndarray:
    """:func:`_null_aps` under ``apa.missing: pairwise``: the rows and targets of the observed
    APS (:func:`_pairwise_target`), each ρ on the entries finite in the reference and in every
    draw's profile (NaN below 3 entries)."""
    cols = vd.entries(r)
    per_target = []
    for s in members:
        vals = []
        for s2 in members:
            if s2 == s or not vd.paired(s2, s) or not vd.rows(s, s2)[r]:
                continue
            lay = _select_layer(ms, members, s, r, selection, vd, match)
            if lay < 0:
                return np.full(N.shape[0], np.nan)
            prof = N[:, lay, s, :] / vd.scale[s]
            ref = refs[s, s2]
            x, y = prof[:, cols], ref[r, cols]
            ok = np.isfinite(y) & np.all(np.isfinite(x), axis=0)
            if vd.variant == "residual":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cov = np.vstack([np.nanmean(ref[:, cols], axis=0), vd.ceil[s, cols]])
                ok &= np.all(np.isfinite(cov), axis=0)
                Z = np.column_stack([np.ones(ok.sum()), cov[:, ok].T])
                if ok.sum() - np.linalg.matrix_rank(Z) < 3:
                    vals.append(np.full(N.shape[0], np.nan))
                    continue
                proj = Z @ np.linalg.pinv(Z)
                x, y = x[:, ok] - x[:, ok] @ proj.T, y[ok] - proj @ y[ok]
            else:
                x, y = x[:, ok], y[ok]
            vals.append(_rowwise_corr(x, y, match) if y.size >= 3
                        else np.full(N.shape[0], np.nan))
        if vals:
            per_target.append(np.mean(vals, axis=0))
    return np.mean(per_target, axis=0) if per_target else np.full(N.shape[0], np.nan)


def _mean_of(values) -> float:
    """Mean of a cell's per-subject values (a dict) or of a list; NaN when there is none
    (pairwise: an ROI without any row)."""
    values = list(values.values()) if isinstance(values, dict) else list(values)
    return float(np.mean(values)) if values else np.nan


def _n_entries(base: dict, vd: _VariantData, cell: _Cell) -> int:
    """``n_entries`` of a summary row: the variant's entry count (listwise), or the fewest
    entries any of the cell's (target, stand-in) rows compared (pairwise; 0 without rows)."""
    if vd.present is None:
        return base["n_entries"]
    return min(cell.n_used.values(), default=0)


def _check_baseline_subjects(subjects: Sequence[str], what: str) -> None:
    """Refuse fewer than ``MIN_SUBJECTS_BASELINE`` subjects: no double-exclusion reference."""
    if len(subjects) < MIN_SUBJECTS_BASELINE:
        raise ValueError(f"{what} ≥ {MIN_SUBJECTS_BASELINE} subjects for a "
                         f"double-exclusion brain baseline; found {len(subjects)}")


def _p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p = (1 + #{null ≥ observed}) / (1 + n_valid_draws).

    Draws equal to the observed value up to rounding (1e-12) count as ≥ (conservative).
    """
    if null.size == 0 or not np.isfinite(observed):
        return np.nan
    return permutation_p_value(observed - 1e-12, null)


def _jackknife_ci(full: float, loo: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    loo = np.asarray(loo, dtype=float)
    n = loo.size
    if n < 2 or not np.all(np.isfinite(loo)) or not np.isfinite(full):
        return np.nan, np.nan
    se = np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    return full - t * se, full + t * se


CI_METHODS = ("jackknife-t", "percentile-bootstrap")


def _per_subject(values: dict[int, float], n_subjects: int) -> np.ndarray:
    """Per-subject values of a cell as an array (S,) in subject order."""
    return np.array([values[s] for s in range(n_subjects)], dtype=float)


def _subject_resamples(seed: int, measure: str, roi: str, n_subjects: int, n_draws: int
                       ) -> np.ndarray:
    """Subject resamples (n_draws, S) of the percentile bootstrap.

    One stream per (measure, ROI): every candidate, variant and match of a ROI uses the same
    resamples (model and brain paired), and adding a candidate changes no other row.
    """
    from alignpatterns.measures.stats import bootstrap_subjects
    from alignpatterns.patterns.streams import stream

    return bootstrap_subjects(n_subjects, n_draws,
                              stream(seed, measure, roi, "subject-bootstrap"))


def _bootstrap_ci(per_subject: np.ndarray, idx: np.ndarray, level: float = 0.95
                  ) -> tuple[float, float]:
    """Percentile interval of the mean over resampled subjects (the paper's intervals).

    Resamples draw the *per-subject values*, whose references and layers were computed once on
    all subjects, so no resample ever pairs a subject with itself. NaN if any value is NaN.

    Parameters
    ----------
    per_subject : ndarray, shape (S,)
    idx : ndarray of int, shape (n_draws, S)
    """
    from alignpatterns.measures.stats import percentile_interval

    if not np.all(np.isfinite(per_subject)):
        return np.nan, np.nan
    lo, hi = percentile_interval(per_subject[idx].mean(axis=1), level)
    return float(lo), float(hi)


def _prepared(bb: pd.DataFrame, subjects: list[str], rois: Sequence[str], measure: str,
              ceilings: pd.DataFrame | None, missing: str = "listwise"
              ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The ROIs kept, the test tensor A[s′, s, r, r′] on them, and the target ceilings C[s, r′]
    (NaN without a ceilings table).

    ``missing="listwise"`` keeps the ROIs complete in every subject; ``"pairwise"`` every ROI
    that is a cell of at least one subject (missing cells stay NaN in A)."""
    if missing not in MISSING:
        raise ValueError(f"apa.missing must be one of {MISSING}, got {missing!r}")
    full = brain_tensor(bb, subjects, rois)
    if missing == "pairwise":
        cells = present_cells(full.values)
        kept = [roi for k, roi in enumerate(full.rois) if cells[:, k].any()]
    else:
        kept = complete_rois(full)
    A = brain_tensor(bb, subjects, kept).values
    ceil = (target_ceilings(ceilings, measure, subjects, kept) if ceilings is not None
            else np.full((len(subjects), len(kept)), np.nan))
    return kept, A, ceil


def _model_rows(base, vd, refs, loo_refs, members, loo_members, r, match, ms, selection,
                subjects) -> list[dict]:
    """Per (target, stand-in) ``apa`` rows of one candidate × ROI."""
    full = _model_cell(vd, refs, members, r, match, ms, selection)
    rows = []
    for (s, s2), v in full.per_pair.items():
        lay = full.layer[s]
        row = {**base, "candidate": ms.name, "weights": ms.weights,
               "layer": ms.layers[lay] if lay >= 0 else pd.NA, "subject": subjects[s],
               "stand_in_subject": subjects[s2], "aps": v}
        if vd.present is not None:  # pairwise: the entries this row compared
            row["n_entries"] = full.n_used[s, s2]
        rows.append(row)
    return rows


def _model_summary(base, vd, refs, loo_refs, members, loo_members, r, match, ms, selection,
                   brain_full, brain_loo, b_mean, N, margin, S, boot=None) -> dict:
    """The ``apa_summary`` row of one candidate × ROI under one layer selection.

    ``boot`` (subject resamples, :func:`_subject_resamples`) switches the intervals from the
    delete-one-subject jackknife-t to the paper preset's percentile bootstrap."""
    full = _model_cell(vd, refs, members, r, match, ms, selection)
    m_mean = _mean_of(full.aps)
    # targets with a value (all members listwise; pairwise those with rows, as the brain's)
    d_full = _mean_of([full.aps[s] - brain_full.aps[s] for s in brain_full.aps
                       if s in full.aps])
    sp = _mean_of(full.spec)
    if boot is None:
        loo = {j: _model_cell(vd, loo_refs[j], loo_members[j], r, match, ms, selection)
               for j in members}
        m_loo = [_mean_of(loo[j].aps) for j in members]
        d_loo = [_mean_of([loo[j].aps[s] - brain_loo[j].aps[s] for s in brain_loo[j].aps
                           if s in loo[j].aps])
                 for j in members]
        sp_loo = [_mean_of(loo[j].spec) for j in members]
        lo, hi = _jackknife_ci(m_mean, m_loo)
        dlo, dhi = _jackknife_ci(d_full, d_loo)
        sp_lo = _jackknife_ci(sp, sp_loo)[0]
        ci_method = "jackknife-t"
    else:
        m_s = _per_subject(full.aps, S)
        lo, hi = _bootstrap_ci(m_s, boot)
        dlo, dhi = _bootstrap_ci(m_s - _per_subject(brain_full.aps, S), boot)
        sp_lo = _bootstrap_ci(_per_subject(full.spec, S), boot)[0]
        ci_method = "percentile-bootstrap"
    p_stim = (np.nan if N is None or N.shape[0] == 0 else
              _p_value(m_mean, _null_aps(vd, refs, members, r, match, ms, N, selection)))
    # most common selected layer across target subjects (display)
    lays = [lay for lay in full.layer.values() if lay >= 0]
    layer = ms.layers[max(set(lays), key=lays.count)] if lays else pd.NA
    return {"measure": base["measure"], "variant": base["variant"], "match": match,
            "selection": selection, "candidate": ms.name, "weights": ms.weights,
            "roi": base["roi"], "layer": layer, "n_subjects": S,
            "n_entries": _n_entries(base, vd, full), "ci_method": ci_method, "aps_mean": m_mean,
            "aps_ci_low": lo, "aps_ci_high": hi, "brain_aps_mean": b_mean, "delta": d_full,
            "delta_ci_low": dlo, "delta_ci_high": dhi, "margin": margin, "spec_margin": sp,
            "spec_ci_low": sp_lo,
            "relerr": _mean_of(full.relerr), "p_stimulus": p_stim,
            "q_stimulus": np.nan, "passes": pd.NA,
            _NULL_RUN: N is not None and N.shape[0] > 0}


def run_apa(bb: pd.DataFrame, mb: pd.DataFrame, subjects: Sequence[str], rois: Sequence[str],
            measure: str, variants: Sequence[str] = ("full", "offdiag"),
            matches: Sequence[str] = ("pearson",), margin: float = 0.1,
            ceilings: pd.DataFrame | None = None, min_ceiling: float = 0.1,
            nulls: dict[str, np.ndarray] | None = None,
            selections: Sequence[str] = ("score",),
            ci_method: str = "jackknife-t", n_bootstrap: int = 1000, seed: int = 0,
            missing: str = "listwise") -> tuple[pd.DataFrame, pd.DataFrame]:
    """APA for one measure.

    Parameters
    ----------
    bb : DataFrame
        brain_brain rows of this measure.
    mb : DataFrame
        model_brain rows of this measure (all candidates).
    subjects, rois : sequences of str
        Subjects and ROIs (display order). ROIs missing in any subject are dropped (listwise)
        or kept (pairwise, ``missing``).
    measure : str
    variants, matches : sequences of str
    margin : float
        δ of the verdict (stored; the verdict also needs the stimulus-permutation null).
    ceilings : DataFrame or None
        The ``ceilings`` table; needed by the normalized and residual variants.
    min_ceiling : float
        Target-ROI columns with a ceiling below this in any subject are dropped from the
        normalized variants.
    nulls : dict of candidate → ndarray, shape (n_draws, n_layers, n_subjects, n_rois), optional
        Test scores of each candidate with its stimuli permuted (one permutation per draw for
        all subjects and ROIs; layers in ``layer_index`` order, subjects and ROIs in the order
        of ``subjects`` and ``rois``). They give ``p_stimulus`` (one-sided, APS_model against
        its permutation distribution), ``q_stimulus`` (Benjamini–Hochberg over the candidate's
        ROIs within each variant × match × selection) and the verdict
        ``passes = (Δ_ci_low > −margin) ∧ (spec_ci_low > 0) ∧ (q_stimulus < 0.05)``; without
        them (or with fewer than 6 subjects) the verdict is NA.
    selections : sequence of str
        Layer selections (column ``selection``): ``score`` (argmax of the mean train score
        over the other subjects, the primary) and/or ``aps`` (argmax of the train-split APS
        over the other subjects, from the ``train`` rows of ``bb``; needs ≥ 6 subjects; no
        ``aps`` rows for the ``residual`` variant). Each selection is redone inside every
        jackknife resample; the brain baseline's rows repeat under every selection.
    ci_method : {"jackknife-t", "percentile-bootstrap"}
        Intervals of APS, Δ and specificity: delete-one-subject jackknife-t recomputing
        references and layer selection (default), or the paper's percentile bootstrap of the
        per-subject values (:func:`_bootstrap_ci`).
    n_bootstrap : int
        Subject resamples of the percentile bootstrap.
    seed : int
        The config's seed (streams of the percentile bootstrap).
    missing : {"listwise", "pairwise"}
        ``apa.missing``. Pairwise keeps an ROI missing in some subjects: references are
        nan-means per entry, a (target, stand-in, ROI) row exists only where the ROI is a cell
        of both subjects, each ρ uses the entries finite in both vectors (≥ 3), means run over
        the rows and targets that exist, and ``n_entries`` counts the entries compared (per
        row; the fewest over the rows in the summary). Needs ``ci_method="jackknife-t"``
        (docs/apa.md "Missing cells").

    Returns
    -------
    apa : DataFrame
        Per-subject rows (table ``apa``).
    summary : DataFrame
        Per candidate × ROI rows (table ``apa_summary``).
    """
    subjects = list(subjects)
    _check_baseline_subjects(subjects, "APA needs")
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    if missing not in MISSING:
        raise ValueError(f"apa.missing must be one of {MISSING}, got {missing!r}")
    if missing == "pairwise" and ci_method != "jackknife-t":
        raise ValueError("ci_method 'percentile-bootstrap' is not supported with apa.missing: "
                         "pairwise (the paper's resamples assume every subject has every ROI); "
                         "use jackknife-t or apa.missing: listwise")
    jackknife = ci_method == "jackknife-t"
    for v in variants:
        _entries(v, 1, 0)
    needs_ceil = [v for v in variants if v in NORMALIZED_VARIANTS or v == "residual"]
    if needs_ceil and ceilings is None:
        raise ValueError(f"APA variants {needs_ceil} need the ceilings table")
    bad = [x for x in selections if x not in SELECTIONS]
    if bad or not selections:
        raise ValueError(f"unknown layer selections {bad}; expected some of {SELECTIONS}")
    if "aps" in selections:
        if len(subjects) < MIN_SUBJECTS_VERDICT:
            raise ValueError(f"selection 'aps' needs ≥ {MIN_SUBJECTS_VERDICT} subjects (a "
                             f"jackknife resample selects from S − 2 ≥ 4); found {len(subjects)}")
        if not (bb["split"] == "train").any():
            raise ValueError("selection 'aps' needs the train-split brain_brain rows; none found")
    kept, A, ceil = _prepared(bb, subjects, rois, measure, ceilings, missing)
    cands = model_scores(mb, subjects, kept)
    kept_idx = [list(rois).index(r) for r in kept]
    cand_nulls = {}
    for ms in cands:
        N = None if nulls is None else nulls.get(ms.name)
        if N is not None:
            if N.shape[1:] != (len(ms.layers), len(subjects), len(rois)):
                raise ValueError(f"null scores of {ms.name!r}: expected shape (draws, "
                                 f"{len(ms.layers)}, {len(subjects)}, {len(rois)}), got {N.shape}")
            N = N[..., kept_idx]
            if not np.isfinite(ms.test).all():
                # a draw compares the entries the observed profile has, never more
                N = np.where(np.isfinite(ms.test)[None], N, np.nan)
        cand_nulls[ms.name] = N
    S = len(subjects)
    members = list(range(S))
    loo_members = {j: [m for m in members if m != j] for j in members}
    apa_rows, summary_rows = [], []
    ref_cache: dict[bool, tuple] = {}
    train = (brain_tensor(bb, subjects, kept, split="train").values if "aps" in selections
             else None)
    for variant in variants:
        vd = _variant_data(variant, A, ceil, min_ceiling, train, missing)
        # no train-APS selection for residual (its covariates are per reference)
        model_selections = [x for x in selections if not (x == "aps" and variant == "residual")]
        norm = variant in NORMALIZED_VARIANTS
        if norm not in ref_cache:
            ref_cache[norm] = (_references(vd.A, members),
                               {j: _references(vd.A, loo_members[j]) for j in members}
                               if jackknife else {})
        refs, loo_refs = ref_cache[norm]
        for match in matches:
            for r, roi in enumerate(kept):
                n_entries = len(vd.entries(r))
                brain_full = _brain_cell(vd, refs, members, r, match)
                brain_loo = {j: _brain_cell(vd, loo_refs[j], loo_members[j], r, match)
                             for j in members} if jackknife else {}
                boot = (None if jackknife else
                        _subject_resamples(seed, measure, roi, S, n_bootstrap))
                b_mean = _mean_of(brain_full.aps)
                bs_mean = _mean_of(brain_full.spec)
                if jackknife:
                    b_loo = [_mean_of(brain_loo[j].aps) for j in members]
                    bs_loo = [_mean_of(brain_loo[j].spec) for j in members]
                    lo, hi = _jackknife_ci(b_mean, b_loo)
                    bs_lo = _jackknife_ci(bs_mean, bs_loo)[0]
                else:
                    lo, hi = _bootstrap_ci(_per_subject(brain_full.aps, S), boot)
                    bs_lo = _bootstrap_ci(_per_subject(brain_full.spec, S), boot)[0]
                # the brain baseline selects no layer: its rows repeat under every selection,
                # so that each selection's slice of the tables is complete
                for selection in model_selections:
                    base = {"measure": measure, "variant": variant, "match": match,
                            "selection": selection, "roi": roi,
                            "reference": "double-exclusion", "n_entries": n_entries}
                    for (s, s2), v in brain_full.per_pair.items():
                        apa_rows.append({**base, "candidate": BRAIN, "weights": pd.NA,
                                         "layer": pd.NA, "subject": subjects[s],
                                         "stand_in_subject": subjects[s2], "aps": v,
                                         **({"n_entries": brain_full.n_used[s, s2]}
                                            if vd.present is not None else {})})
                    summary_rows.append({
                        "measure": measure, "variant": variant, "match": match,
                        "selection": selection, "candidate": BRAIN,
                        "weights": pd.NA, "roi": roi, "layer": pd.NA, "n_subjects": S,
                        "n_entries": _n_entries(base, vd, brain_full), "ci_method": ci_method,
                        "aps_mean": b_mean,
                        "aps_ci_low": lo, "aps_ci_high": hi, "brain_aps_mean": b_mean,
                        "delta": 0.0, "delta_ci_low": np.nan, "delta_ci_high": np.nan,
                        "margin": margin, "spec_margin": bs_mean, "spec_ci_low": bs_lo,
                        "relerr": _mean_of(brain_full.relerr),
                        "p_stimulus": np.nan, "q_stimulus": np.nan, "passes": pd.NA})
                for selection in model_selections:
                    base = {"measure": measure, "variant": variant, "match": match,
                            "selection": selection, "roi": roi,
                            "reference": "double-exclusion", "n_entries": n_entries}
                    for ms in cands:
                        apa_rows.extend(_model_rows(base, vd, refs, loo_refs, members,
                                                    loo_members, r, match, ms, selection,
                                                    subjects))
                        summary_rows.append(_model_summary(
                            base, vd, refs, loo_refs, members, loo_members, r, match, ms,
                            selection, brain_full, brain_loo, b_mean, cand_nulls[ms.name],
                            margin, S, boot))
    summary = pd.DataFrame(summary_rows)
    return pd.DataFrame(apa_rows), _verdicts(summary, S)


#: Transient summary column: whether the candidate's stimulus-permutation null was run.
_NULL_RUN = "_null_run"


def _verdicts(summary: pd.DataFrame, n_subjects: int) -> pd.DataFrame:
    """q_stimulus and passes.

    Benjamini–Hochberg runs over one candidate's ROIs within measure × variant × match ×
    selection: each candidate's set of claims ("m is a model of r" for every ROI r) is one
    family. Pooling candidates would make every verdict depend on which other models a study
    happens to include (SPEC.md §4: adding a model changes no other row)."""
    if summary.empty:
        return summary
    summary["passes"] = pd.array([pd.NA] * len(summary), dtype="boolean")
    for col in SENSITIVITY_COLUMNS.values():
        summary[col] = pd.array([pd.NA] * len(summary), dtype="boolean")
    models = summary["candidate"] != BRAIN
    family = (["measure", "variant", "match"] + (["selection"] if "selection" in summary else [])
              + ["candidate"])
    null_run = (summary.pop(_NULL_RUN).fillna(False).astype(bool) if _NULL_RUN in summary
                else pd.Series(True, index=summary.index))
    for _, g in summary[models].groupby(family, sort=False):
        p = g["p_stimulus"].to_numpy(dtype=float)
        tested = null_run[g.index].to_numpy()
        # a claim whose APS is undefined (NaN p with the null run) still counts in the
        # family's m, as p = 1: leaving it out would lower the other ROIs' q
        q = fdr_bh(np.where(np.isnan(p) & tested, 1.0, p))
        q[np.isnan(p)] = np.nan
        summary.loc[g.index, "q_stimulus"] = q
        if n_subjects < MIN_SUBJECTS_VERDICT or not tested.any():
            continue  # verdicts are NA below 6 subjects or without the permutation null
        # with the null run, a NaN p or q (an undefined APS) makes the verdict a fail
        dlo = g["delta_ci_low"].to_numpy(float)
        with np.errstate(invalid="ignore"):
            rest = (g["spec_ci_low"].to_numpy(float) > 0) & (q < 0.05)
            ok = (dlo > -g["margin"].to_numpy(float)) & rest
            summary.loc[g.index, "passes"] = ok  # a NaN part (undefined APS) counts as fail
            for delta, col in SENSITIVITY_COLUMNS.items():
                summary.loc[g.index, col] = (dlo > -delta) & rest
    return summary


GENERIC_NULLS = ("target-reliability", "grand-mean")
#: The anatomical null, scored where a parcel adjacency is known.
ADJACENCY_NULL = "adjacency"


def _null_profiles(name: str, vd: _VariantData, refs, adjacency: np.ndarray | None = None):
    """(s, s*) → (profiles (R, R), layers) of a generic null (N2): one profile for all ROIs,
    except ``adjacency`` (row r: 0.9 ** path length from ROI r, given as ``adjacency``)."""
    R = vd.A.shape[2]
    none = np.full(R, -1)
    if name == ADJACENCY_NULL:
        if adjacency is None or adjacency.shape != (R, R):
            raise ValueError(f"the adjacency null needs ({R}, {R}) profiles, got "
                             f"{None if adjacency is None else adjacency.shape}")
        return lambda s, s2: (adjacency, none)
    if name == "target-reliability":
        return lambda s, s2: (np.tile(vd.ceil[s] / vd.scale[s], (R, 1)), none)
    if name == "grand-mean":
        def grand_mean(s, s2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.tile(np.nanmean(refs[s, s2], axis=0), (R, 1)), none
        return grand_mean
    raise ValueError(f"unknown generic null {name!r}; expected one of "
                     f"{GENERIC_NULLS + (ADJACENCY_NULL,)}")


def generic_null_rows(bb: pd.DataFrame, subjects: Sequence[str], rois: Sequence[str],
                      measure: str, variants: Sequence[str] = ("full", "offdiag"),
                      matches: Sequence[str] = ("pearson",), ceilings: pd.DataFrame | None = None,
                      min_ceiling: float = 0.1, adjacency: np.ndarray | None = None,
                      missing: str = "listwise") -> pd.DataFrame:
    """APS of generic profiles standing in for every ROI (SPEC.md §4, nulls N2).

    ``target-reliability``: the target subject's ceiling profile C_s (constant after
    normalisation, hence NaN on the normalized variants); ``grand-mean``: the reference's mean
    over source ROIs, mean_r ā^{−{s,s*}}[r, :]; with ``adjacency``, ``adjacency``: for ROI r,
    0.9 ** (path length from r to r′) on the parcel graph (:mod:`.adjacency`), the same
    profile on every variant. All are scored against exactly the references of
    :func:`run_apa`, with the same jackknife-t intervals and Δ against the brain baseline. A
    candidate whose APS does not exceed these is not telling ROIs apart.

    ``adjacency`` is a boolean (len(rois), len(rois)) matrix in the order of ``rois``.

    Returns
    -------
    DataFrame
        Table ``apa_nulls``: measure, variant, match, null, roi, n_subjects, n_entries,
        aps_mean, aps_ci_low, aps_ci_high, brain_aps_mean, delta, delta_ci_low, delta_ci_high,
        spec_margin.
    """
    subjects = list(subjects)
    _check_baseline_subjects(subjects, "the generic nulls need")
    kept, A, ceil = _prepared(bb, subjects, rois, measure, ceilings, missing)
    members = list(range(len(subjects)))
    loo_members = {j: [m for m in members if m != j] for j in members}
    names, anat = GENERIC_NULLS, None
    if adjacency is not None:
        adjacency = np.asarray(adjacency, dtype=bool)
        if adjacency.shape != (len(rois), len(rois)):
            raise ValueError(f"adjacency must be ({len(rois)}, {len(rois)}) in the order of "
                             f"rois, got {adjacency.shape}")
        at = [list(rois).index(r) for r in kept]
        # path lengths on the whole graph: a dropped ROI still connects its neighbours
        anat = adjacency_profiles(adjacency)[np.ix_(at, at)]
        names = GENERIC_NULLS + (ADJACENCY_NULL,)
    rows = []
    for variant in variants:
        vd = _variant_data(variant, A, ceil, min_ceiling, missing=missing)
        refs = _references(vd.A, members)
        loo_refs = {j: _references(vd.A, loo_members[j]) for j in members}
        for match in matches:
            for r, roi in enumerate(kept):
                brain = _brain_cell(vd, refs, members, r, match)
                brain_loo = {j: _brain_cell(vd, loo_refs[j], loo_members[j], r, match)
                             for j in members}
                b_mean = float(np.mean(list(brain.aps.values())))
                for name in names:
                    full = _candidate_cells(vd, refs, members, match,
                                            _null_profiles(name, vd, refs, anat), ("null", name))[r]
                    loo = {j: _candidate_cells(vd, loo_refs[j], loo_members[j], match,
                                               _null_profiles(name, vd, loo_refs[j], anat),
                                               ("null", name))[r]
                           for j in members}
                    m_mean = float(np.mean(list(full.aps.values())))
                    lo, hi = _jackknife_ci(m_mean, [float(np.mean(list(loo[j].aps.values())))
                                                    for j in members])
                    d_full = float(np.mean([full.aps[s] - brain.aps[s] for s in brain.aps
                                            if s in full.aps]))  # pairwise: targets with rows
                    dlo, dhi = _jackknife_ci(d_full, [
                        float(np.mean([loo[j].aps[s] - brain_loo[j].aps[s]
                                       for s in brain_loo[j].aps if s in loo[j].aps]))
                        for j in members])
                    rows.append({"measure": measure, "variant": variant, "match": match,
                                 "null": name, "roi": roi, "n_subjects": len(subjects),
                                 "n_entries": len(vd.entries(r)), "aps_mean": m_mean,
                                 "aps_ci_low": lo, "aps_ci_high": hi, "brain_aps_mean": b_mean,
                                 "delta": d_full, "delta_ci_low": dlo, "delta_ci_high": dhi,
                                 "spec_margin": float(np.mean(list(full.spec.values())))})
    return pd.DataFrame(rows)


def _identified(vd: _VariantData, refs, members, match, profiles, key) -> np.ndarray:
    """For every ROI r and (target s, stand-in s*): the ROI r″ whose reference
    ā^{−{s,s*}}[r″] the candidate's profile for r matches best (compared on the entries of r″,
    as specificity); -1 where no comparison is defined. Shape (R, n_pairs)."""
    pairs = _pair_matrices(vd, refs, members, match, profiles, key)
    cols = []
    for s in members:
        for s2 in members:
            if s2 == s or not vd.paired(s2, s):
                continue
            C = pairs[s, s2][0]
            ok = np.isfinite(C).any(axis=1)
            ident = np.where(ok, np.where(np.isfinite(C), C, -np.inf).argmax(axis=1), -1)
            # pairwise: -2 marks a row that does not exist (ROI r not a cell of s or s*)
            cols.append(np.where(vd.rows(s, s2), ident, -2))
    return np.stack(cols, axis=1)


def roi_identification(bb: pd.DataFrame, mb: pd.DataFrame, subjects: Sequence[str],
                       rois: Sequence[str], measure: str,
                       variants: Sequence[str] = ("full", "offdiag"),
                       matches: Sequence[str] = ("pearson",),
                       ceilings: pd.DataFrame | None = None, min_ceiling: float = 0.1,
                       n_draws: int = 10_000, seed: int = 0, missing: str = "listwise"
                       ) -> pd.DataFrame:
    """ROI identification per candidate: confusion matrix, top-1 accuracy and its null.

    For every candidate (``brain`` = another subject's ROI standing in), ROI r, target s and
    stand-in s*, the identified ROI is argmax_{r″} ρ(profile_r, ā^{−{s,s*}}[r″]). The
    confusion matrix counts (r, identified) over targets and stand-ins; top-1 accuracy is the
    share on the diagonal. Its null permutes the ROI labels of the references with one
    permutation applied jointly to all subjects (``n_draws`` draws from the stream
    (seed, measure, variant, match, candidate, "roi-label-permutation")); p = (1 + #{null ≥
    observed}) / (1 + n_draws). Chance is 1/R. No per-ROI p-value is given (SPEC.md §4).
    ``missing="pairwise"``: only the rows that exist (ROI r a cell of both s and s*) are
    identified, counted and permuted; every kept ROI r″ stays a candidate label.

    Returns
    -------
    DataFrame
        Table ``apa_confusion``: measure, variant, match, candidate, weights, roi,
        identified_roi, fraction (of the ROI's target × stand-in pairs), top1_accuracy,
        top1_p, chance, n_draws.
    """
    from alignpatterns.patterns.streams import stream

    subjects = list(subjects)
    _check_baseline_subjects(subjects, "ROI identification needs")
    kept, A, ceil = _prepared(bb, subjects, rois, measure, ceilings, missing)
    cands = model_scores(mb, subjects, kept)
    members = list(range(len(subjects)))
    R = len(kept)
    rows = []
    for variant in variants:
        vd = _variant_data(variant, A, ceil, min_ceiling, missing=missing)
        refs = _references(vd.A, members)
        for match in matches:
            profiles = [(BRAIN, None, None), *((ms.name, ms.weights, ms) for ms in cands)]
            for name, weights, ms in profiles:
                prof_fn = (_brain_profiles(vd) if ms is None
                           else _model_profiles(vd, ms, members))
                key = ("brain",) if ms is None else ("model", ms.name, ms.weights)
                ident = _identified(vd, refs, members, match, prof_fn, key)  # (R, pairs)
                truth = np.arange(R)[:, None]
                rng = stream(seed, measure, variant, match, name, "roi-label-permutation")
                perms = np.array([rng.permutation(R) for _ in range(n_draws)])
                exists = ident > -2  # all true listwise
                if exists.all():
                    acc = float(np.mean(ident == truth))
                    # permuting reference labels by π identifies π⁻¹(r̂): correct iff r̂ = π(r)
                    null = (ident[None, :, :] == perms[:, :, None]).mean(axis=(1, 2))
                else:  # pairwise: shares of the existing rows
                    n_rows = max(int(exists.sum()), 1)
                    acc = float((ident == truth).sum() / n_rows) if exists.any() else np.nan
                    null = (ident[None, :, :] == perms[:, :, None]).sum(axis=(1, 2)) / n_rows
                p = _p_value(acc, null)
                for r in range(R):
                    n_r = max(int(exists[r].sum()), 1)
                    counts = np.bincount(ident[r][ident[r] >= 0], minlength=R) / (
                        ident.shape[1] if exists.all() else n_r)
                    for r2 in range(R):
                        rows.append({"measure": measure, "variant": variant, "match": match,
                                     "candidate": name, "weights": weights, "roi": kept[r],
                                     "identified_roi": kept[r2], "fraction": float(counts[r2]),
                                     "top1_accuracy": acc, "top1_p": p, "chance": 1.0 / R,
                                     "n_draws": int(n_draws)})
    return pd.DataFrame(rows)


def selected_layers(mb: pd.DataFrame, subjects: Sequence[str], rois: Sequence[str]
                    ) -> pd.DataFrame:
    """ℓ*(m, r, s) for every candidate, ROI and target subject (leave-subject-out, train)."""
    rows = []
    members = list(range(len(subjects)))
    for ms in model_scores(mb, subjects, rois):
        for r, roi in enumerate(rois):
            for s in members:
                lay = _select_layer(ms, members, s, r)
                rows.append({"model": ms.name, "weights": ms.weights, "roi": roi,
                             "subject": subjects[s], "layer_index": lay,
                             "layer": ms.layers[lay] if lay >= 0 else None})
    return pd.DataFrame(rows)
