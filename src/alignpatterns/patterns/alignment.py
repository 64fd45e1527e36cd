"""Model–brain and brain–brain alignment scores for every measure (SPEC.md §2).

Measures (names as in the tables):

========================== ============================== =================================
measure                    brain representation           model representation
========================== ============================== =================================
rsa-crossnobis-spearman    crossnobis RDM over repetitions squared Euclidean RDM / n_units
rsa-correlation-spearman   1 − Pearson RDM of averages     1 − Pearson RDM
cka-linear-debiased        Gram of averaged betas          Gram of features
lp-ridge-pearson           averaged betas (target/source)  features (source)
rsa-correlation-pearson    1 − Pearson RDM (float32)       1 − Pearson RDM (float32)
lp-ridge-r2                averaged betas (target/source)  features (source)
========================== ============================== =================================

RSA compares RDMs with Spearman (``rsa-correlation-pearson``: Pearson, the paper's choice); CKA is the debiased linear CKA; LP standardises with train
statistics, optionally reduces the source to a common number of PCA components, fits ridge with a
per-vertex alpha by inner K-fold CV on train and scores the mean over target vertices of the Pearson
r between prediction and data — on test after fitting on all train stimuli, and on train from
out-of-fold predictions. Each representation is computed once and reused for every pairing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from alignpatterns.data.bmd import SubjectData
from alignpatterns.measures import (
    cka_from_grams,
    compare_rdms,
    correlation_score,
    gram,
    r2_score,
    rank_rdm,
    rdm,
)
from alignpatterns.measures.cka import hsic_unbiased
from alignpatterns.measures.encoding import (
    LPDecomposition,
    Standardizer,
    lp_decompose,
    lp_oof_predict_decomposed,
    lp_predict_decomposed,
)
from alignpatterns.measures.rdm import n_stimuli_from_pairs

MEASURES = ("rsa-crossnobis-spearman", "rsa-correlation-spearman", "cka-linear-debiased",
            "lp-ridge-pearson", "rsa-correlation-pearson", "lp-ridge-r2")
LP_PROTOCOLS = ("default", "paper")


def is_lp(measure: str) -> bool:
    """Whether ``measure`` is a linear-predictivity measure (``lp-ridge-*``)."""
    return measure.startswith("lp-")


def rdm_comparison(measure: str) -> str:
    """How an RSA measure compares RDMs: ``pearson`` or ``spearman`` (the name's suffix)."""
    return "pearson" if measure.endswith("-pearson") else "spearman"


def lp_score(measure: str) -> str:
    """How an LP measure scores predictions per vertex: ``r2`` (``lp-ridge-r2``) or
    ``pearson``."""
    return "r2" if measure == "lp-ridge-r2" else "pearson"


SPLITS = ("train", "test")


@dataclass(frozen=True)
class LPOptions:
    """Options of the linear-predictivity pipeline.

    Attributes
    ----------
    alphas : tuple of float
        Ridge penalties searched per target vertex.
    inner_cv : int
        Folds of the inner (alpha) cross-validation on train.
    outer_cv : int
        Folds of the out-of-fold train scores.
    n_components : int or None
        Common PCA dimensionality of every source (None: no reduction).
    x_scaling : str
        Source scaling before reduction: ``unit`` (z-score each column) or ``global`` (one
        scale for all columns, keeping the source's geometry).
    protocol : str
        ``default`` (ours) or ``paper``: the released code's recipe
        (:mod:`alignpatterns.measures.lp_paper`; float32, z-scoring on the full train split,
        ``KFold(outer_cv, shuffle=True, random_state=1)``, scikit-learn ``RidgeCV`` with one
        shared alpha by efficient LOO, test score = mean over the fold models). ``inner_cv``,
        ``n_components`` and ``x_scaling`` do not apply to it.
    """

    alphas: tuple[float, ...] = tuple(np.logspace(-1, 5, 13))
    inner_cv: int = 5
    outer_cv: int = 5
    n_components: int | None = None
    x_scaling: str = "global"
    protocol: str = "default"

    def __post_init__(self):
        if self.protocol not in LP_PROTOCOLS:
            raise ValueError(f"LP protocol must be one of {LP_PROTOCOLS}, got {self.protocol!r}")


@dataclass
class Representations:
    """A source or target's per-split representation for one measure."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    n_dims: int = 0
    cache: dict = field(default_factory=dict, repr=False)


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")


def brain_representation(sd: SubjectData, roi: str, measure: str,
                         splits: Sequence[str] = SPLITS) -> Representations | None:
    """Representation of one subject's ROI for ``measure`` on ``splits`` (default both; None
    if missing)."""
    _check_measure(measure)
    d = sd.rois.get(roi)
    if d is None:
        return None
    rep = Representations(n_dims=int(d.vertices.size))
    for split in splits:
        avg = getattr(d, split)
        if measure == "rsa-crossnobis-spearman":
            rep.values[split] = rank_rdm(rdm(getattr(d, f"{split}_reps"), "crossnobis"))
        elif measure == "rsa-correlation-spearman":
            rep.values[split] = rank_rdm(rdm(avg, "correlation"))
        elif measure == "rsa-correlation-pearson":
            rep.values[split] = _rdm32(avg)
        elif measure == "cka-linear-debiased":
            rep.values[split] = gram(avg)
        else:
            rep.values[split] = avg
    return rep


def _rdm32(X: np.ndarray) -> np.ndarray:
    """1 − Pearson RDM as the paper's code: patterns and RDM rounded to float32 (the products
    accumulate in float64)."""
    d = rdm(np.asarray(X, dtype=np.float32), "correlation")
    return d.astype(np.float32).astype(np.float64)


def _named(what: str, measure: str, fn, *args):
    """``fn(*args)``; a ValueError (e.g. a correlation distance undefined for a stimulus
    pattern that is constant across units) names the layer or subject × ROI and the measure."""
    try:
        return fn(*args)
    except ValueError as err:
        raise ValueError(f"{what}, measure {measure}: {err}") from None


def model_representation(Z_train: np.ndarray, Z_test: np.ndarray, measure: str) -> Representations:
    """Representation of one model layer (features shaped (n_stimuli, n_units)) per split."""
    _check_measure(measure)
    rep = Representations(n_dims=int(Z_train.shape[1]))
    for split, Z in (("train", Z_train), ("test", Z_test)):
        Z = np.asarray(Z, dtype=np.float64)
        if measure == "rsa-crossnobis-spearman":
            rep.values[split] = rank_rdm(rdm(Z, "sqeuclidean") / Z.shape[1])
        elif measure == "rsa-correlation-spearman":
            rep.values[split] = rank_rdm(rdm(Z, "correlation"))
        elif measure == "rsa-correlation-pearson":
            rep.values[split] = _rdm32(Z)
        elif measure == "cka-linear-debiased":
            rep.values[split] = gram(Z)
        else:
            rep.values[split] = Z
    return rep


def score_sources_to_targets(sources: Mapping[str, Representations],
                             targets: Mapping[str, Representations | None], measure: str,
                             lp: LPOptions, perms: np.ndarray | None = None,
                             boots: np.ndarray | None = None):
    """Score every source against every target on both splits.

    Parameters
    ----------
    sources : mapping of source name to Representations
    targets : mapping of target ROI to Representations (None = missing cell → NaN rows)
    measure : str
    lp : LPOptions
    perms : ndarray of int, shape (n_draws, n_test), optional
        Stimulus permutations of the test split applied to each source.
    boots : ndarray of int, shape (n_draws, n_test), optional
        Stimulus-bootstrap copy counts of the test split
        (:func:`alignpatterns.patterns.stimboot.stimulus_bootstrap_draws`), applied to source
        and target alike.

    Returns
    -------
    rows : list of dict
        Keys source, target, split, score, n_source_dims, n_vertices.
    nulls : dict of source name → ndarray, shape (n_draws, n_targets)
        Only with ``perms``: test scores of the permuted source against every target (NaN for
        missing targets), in the order of ``targets``.
    boot : dict of source name → ndarray, shape (n_draws, n_targets)
        Only with ``boots`` (then the return value is ``(rows, nulls, boot)``): test scores
        under each stimulus-bootstrap draw (NaN for missing targets).
    """
    rows = []
    nulls = {}
    boot = {}
    present = [t for t, rep in targets.items() if rep is not None]
    for src_name, src in sources.items():
        for split in SPLITS:
            p = perms if split == "test" else None
            c = boots if split == "test" else None
            scores, null, bt = _scores_null_boot(src, [targets[t] for t in present], measure,
                                                 split, lp, p, c)
            cols = [i for i, t in enumerate(targets) if t in present]
            if p is not None:
                full = np.full((len(p), len(targets)), np.nan)
                full[:, cols] = null
                nulls[src_name] = full
            if c is not None and bt is not None:
                full = np.full((len(c), len(targets)), np.nan)
                full[:, cols] = bt
                boot[src_name] = full
            n_dims = src.n_dims
            if is_lp(measure) and lp.n_components is not None and lp.protocol == "default":
                n_dims = min(lp.n_components, src.n_dims)
            by_target = dict(zip(present, scores, strict=True))
            for tgt, tgt_rep in targets.items():
                rows.append({"source": src_name, "target": tgt, "split": split,
                             "score": float(by_target.get(tgt, np.nan)),
                             "n_source_dims": n_dims,
                             "n_vertices": 0 if tgt_rep is None else tgt_rep.n_dims})
    if boots is not None:
        if not is_lp(measure):  # LP: per source above, from its stored test predictions
            boot = _boot_rsa_cka(sources, targets, measure, boots)
        return rows, nulls, boot
    return rows if perms is None else (rows, nulls)


def _boot_rsa_cka(sources: Mapping[str, Representations],
                  targets: Mapping[str, Representations | None], measure: str,
                  boots: np.ndarray) -> dict[str, np.ndarray]:
    """Test scores of every source against every target under the stimulus-bootstrap draws
    (RSA with the measure's RDM comparison, CKA), all sources at once: source name →
    (n_draws, n_targets), NaN for missing targets."""
    from alignpatterns.patterns import stimboot

    present = [i for i, rep in enumerate(targets.values()) if rep is not None]
    names = list(sources)
    out = np.full((len(boots), len(names), len(targets)), np.nan)
    if present and names:
        A = np.stack([sources[s].values["test"] for s in names])
        B = np.stack([rep.values["test"] for rep in targets.values() if rep is not None])
        if measure.startswith("rsa-"):
            out[:, :, present] = stimboot.boot_rsa(A, B, boots, rdm_comparison(measure))
        else:
            out[:, :, present] = stimboot.boot_cka(A, B, boots)
    return {name: out[:, i] for i, name in enumerate(names)}


def _scores_and_null(src: Representations, tgts: Sequence[Representations], measure: str,
                     split: str, lp: LPOptions, perms: np.ndarray | None):
    """Scores of ``src`` against each target and, with ``perms`` (n_draws, n_test), the scores
    with the source's stimuli permuted, shaped (n_draws, n_targets) (else None)."""
    scores, null, _ = _scores_null_boot(src, tgts, measure, split, lp, perms)
    return scores, null


def _scores_null_boot(src: Representations, tgts: Sequence[Representations], measure: str,
                      split: str, lp: LPOptions, perms: np.ndarray | None,
                      boots: np.ndarray | None = None):
    """:func:`_scores_and_null` and, with ``boots`` (n_draws, n_test), the LP test scores under
    the stimulus-bootstrap draws with the measure's score (:func:`lp_score`), shaped
    (n_draws, n_targets) (else None)."""
    from alignpatterns.patterns import stimboot

    # RSA and CKA bootstrap scores are computed for all sources at once (_boot_rsa_cka)
    if not tgts:
        return ([], None if perms is None else np.empty((len(perms), 0)),
                None if boots is None else np.empty((len(boots), 0)))
    a = src.values[split]
    if measure.startswith("rsa-"):
        B = np.stack([t.values[split] for t in tgts])
        method = rdm_comparison(measure)
        scores = list(np.atleast_1d(compare_rdms(a, B, method, ranked=method == "spearman")))
        return scores, None if perms is None else permuted_rsa(a, B, perms), None
    if measure == "cka-linear-debiased":
        scores = [cka_from_grams(a, t.values[split], debiased=True) for t in tgts]
        Ls = [t.values[split] for t in tgts]
        return scores, None if perms is None else permuted_cka(a, Ls, perms), None
    if lp.protocol == "paper":
        return _paper_lp_scores(src, tgts, measure, split, lp, perms, boots)
    # LP: all targets in one ridge problem, scored per target ROI
    widths = [t.n_dims for t in tgts]
    edges = np.cumsum([0, *widths])
    Y_train = np.concatenate([t.values["train"] for t in tgts], axis=1)
    dec = lp_decomposition(src, lp, folds=split == "train")
    if split == "test":
        Y_true = np.concatenate([t.values["test"] for t in tgts], axis=1)
        Y_pred = lp_predict_decomposed(dec, Y_train, lp.alphas, inner_cv=lp.inner_cv)
    else:
        Y_true = Y_train
        Y_pred = lp_oof_predict_decomposed(dec, Y_train, lp.alphas, inner_cv=lp.inner_cv)
    # R² needs data and predictions in one unit. Pearson r does not, and out of fold it stays in
    # z-units on purpose: mapping each fold back adds its training mean, and pooled fold means
    # correlate negatively with the data (a zero layer would score ≈ −0.3 instead of NaN)
    if lp_score(measure) == "r2":
        Y_pred = lp_data_units(Y_pred, Y_train, dec, split)
    with warnings.catch_warnings():  # constant target vertices score NaN, averaged out below
        warnings.simplefilter("ignore", RuntimeWarning)
        r = (r2_score(Y_true, Y_pred) if lp_score(measure) == "r2"
             else correlation_score(Y_true, Y_pred))
    # NaN (without numpy's "mean of empty slice") for a target whose vertices are all constant
    scores = [float(np.nanmean(r[lo:hi])) if np.isfinite(r[lo:hi]).any() else np.nan
              for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    bt = (None if boots is None
          else stimboot.boot_lp(Y_true, Y_pred, boots, edges, lp_score(measure)))
    if perms is None:
        return scores, None, bt
    if measure == "lp-ridge-r2":
        from alignpatterns.measures.lp_paper import PaperFit, permuted_scores

        one = PaperFit(Y_true, Y_true, Y_pred, Y_pred[None], np.empty(0))
        return scores, permuted_scores(one, perms, "r2", edges), bt
    null = np.column_stack([permuted_lp(Y_true[:, lo:hi], Y_pred[:, lo:hi], perms)
                            for lo, hi in zip(edges[:-1], edges[1:], strict=True)])
    return scores, null, bt


def lp_data_units(Y_pred: np.ndarray, Y_train: np.ndarray, dec: LPDecomposition,
                  split: str) -> np.ndarray:
    """Map LP predictions from z-scored target units back to the units of the data.

    The default LP ridge is fitted on targets z-scored with the statistics of its training
    rows (:class:`~alignpatterns.measures.encoding.Standardizer`), so its predictions are in
    those units; they are mapped back with the same statistics (never test statistics), so that
    R² = 1 − SS_res/SS_tot compares them with the data in one unit. On the test split this is
    R² of the test data z-scored with the train statistics; out of fold, each fold's
    predictions are mapped with the statistics of that fold's training part.

    Parameters
    ----------
    Y_pred : ndarray, shape (n_rows, n_targets)
        Test predictions (``split="test"``) or out-of-fold train predictions (``"train"``).
    Y_train : ndarray, shape (n_train, n_targets)
        The training targets the ridge was fitted on (data units).
    dec : LPDecomposition
        The source decomposition that made ``Y_pred`` (its outer folds for ``"train"``).
    split : {"train", "test"}

    Returns
    -------
    ndarray, shape (n_rows, n_targets)
        ``Y_pred * sd_train + mean_train`` (ddof 0; constant training targets map to their
        mean).
    """
    Y_train = np.asarray(Y_train, dtype=np.float64)
    if split == "test":
        parts = [(slice(None), slice(None))]
    else:
        parts = [(tr, te) for tr, te, *_ in dec.folds]
    out = np.empty(Y_pred.shape)
    for fit_rows, pred_rows in parts:
        ys = Standardizer().fit(Y_train[fit_rows])
        out[pred_rows] = Y_pred[pred_rows] * ys.scale_ + ys.mean_
    return out


def _paper_lp_scores(src: Representations, tgts: Sequence[Representations], measure: str,
                     split: str, lp: LPOptions, perms: np.ndarray | None,
                     boots: np.ndarray | None = None):
    """``lp.protocol: paper``: one fit of the released recipe per target ROI (its alpha shared
    by the ROI's vertices), reused for both splits; scores, with ``perms`` the test null and
    with ``boots`` the test scores under the stimulus-bootstrap draws (mean over the fold
    models, as the score), each shaped (n_draws, n_targets) (else None)."""
    from alignpatterns.measures.lp_paper import fit_paper_lp, fold_scores, permuted_scores
    from alignpatterns.patterns.stimboot import boot_lp_folds

    score = lp_score(measure)
    scores, nulls, boot = [], [], []
    for t in tgts:
        key = ("paper-lp", id(t), lp)
        if key not in src.cache:  # the fold models serve the train and the test score
            src.cache[key] = fit_paper_lp(src.values["train"], t.values["train"],
                                          src.values["test"], t.values["test"],
                                          alphas=lp.alphas, n_splits=lp.outer_cv)
        fit = src.cache[key]
        scores.append(fold_scores(fit, split, score)[0])
        if perms is not None:
            nulls.append(permuted_scores(fit, perms, score)[:, 0])
        if boots is not None:
            boot.append(boot_lp_folds(fit.Y_test, fit.test, boots, score=score)[:, 0])
    return (scores, None if perms is None else np.column_stack(nulls),
            None if boots is None else np.column_stack(boot))


def permuted_rsa(a: np.ndarray, B: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Spearman of the stimulus-permuted source RDM with each target RDM.

    Parameters
    ----------
    a : ndarray, shape (n_pairs,)
        Average ranks of the source RDM (ranks permute with the entries, so they are reused).
    B : ndarray, shape (n_targets, n_pairs)
        Average ranks of the target RDMs.
    perms : ndarray of int, shape (n_draws, n_stimuli)

    Returns
    -------
    null : ndarray, shape (n_draws, n_targets)
    """
    _check_perms(perms, n_stimuli_from_pairs(a.size))
    idx = _perm_pair_index(perms)
    A = a[idx]  # (n_draws, n_pairs)
    Ac = A - A.mean(axis=1, keepdims=True)
    Bc = B - B.mean(axis=1, keepdims=True)
    den = np.sqrt(np.einsum("ij,ij->i", Ac, Ac))[:, None] * np.sqrt(np.einsum("ij,ij->i", Bc, Bc))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (Ac @ Bc.T) / den


def _check_perms(perms: np.ndarray, n: int) -> None:
    perms = np.asarray(perms)
    if perms.ndim != 2 or perms.shape[1] != n or not np.all(
            np.sort(perms, axis=1) == np.arange(n)):
        raise ValueError(f"perms must be permutations of range({n}) shaped (n_draws, {n}); "
                         f"got shape {perms.shape}")


def _perm_pair_index(perms: np.ndarray) -> np.ndarray:
    """Condensed-RDM index maps (n_draws, n_pairs) of stimulus permutations."""
    n = perms.shape[1]
    i, j = np.triu_indices(n, k=1)
    a, b = perms[:, i], perms[:, j]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)


def permuted_cka(K: np.ndarray, Ls: Sequence[np.ndarray], perms: np.ndarray) -> np.ndarray:
    """Debiased linear CKA of the stimulus-permuted source Gram ``K[π][:, π]`` with each ``L``.

    Parameters
    ----------
    K : ndarray, shape (n, n)
    Ls : sequence of ndarray, shape (n, n)
    perms : ndarray of int, shape (n_draws, n)

    Returns
    -------
    null : ndarray, shape (n_draws, n_targets)
        HSIC_u(K, K) is permutation invariant; only the cross terms are recomputed.
    """
    n = K.shape[0]
    _check_perms(perms, n)
    Kt = K - np.diag(np.diag(K))
    k1 = Kt.sum(axis=1)
    kk = hsic_unbiased(K, K)
    Lt = np.stack([L - np.diag(np.diag(L)) for L in Ls])  # (T, n, n)
    l1 = Lt.sum(axis=2)  # (T, n)
    ll = np.array([hsic_unbiased(L, L) for L in Ls])
    out = np.empty((len(perms), len(Ls)))
    for start in range(0, len(perms), 256):  # (draws, n, n) blocks of bounded size
        p = perms[start:start + 256]
        Kp = Kt[p[:, :, None], p[:, None, :]]
        tr = np.einsum("dij,tij->dt", Kp, Lt)
        cross = k1[p] @ l1.T  # (draws, T)
        out[start:start + 256] = (tr + k1.sum() * l1.sum(axis=1) / ((n - 1) * (n - 2))
                                  - 2.0 / (n - 2) * cross) / (n * (n - 3))
    den = kk * ll
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, out / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)


def permuted_lp(Y: np.ndarray, P: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Mean over target vertices of Pearson r(Y[:, v], P[π, v]) for every permutation π.

    With unit-norm centred columns, r_v(π) = Σ_i Y_iv P_π(i)v, so the mean over vertices is
    Σ_i G[i, π(i)] / V with G = Y Pᵀ: permuting predictions needs no refit. Constant vertices
    are left out, as in the observed score.

    Parameters
    ----------
    Y, P : ndarray, shape (n_test, n_vertices)
        Data and predictions.
    perms : ndarray of int, shape (n_draws, n_test)

    Returns
    -------
    null : ndarray, shape (n_draws,)
    """
    Yc = Y - Y.mean(axis=0)
    Pc = P - P.mean(axis=0)
    ny, npr = np.linalg.norm(Yc, axis=0), np.linalg.norm(Pc, axis=0)
    ok = (ny > 0) & (npr > 0)
    if not ok.any():
        return np.full(len(perms), np.nan)
    G = (Yc[:, ok] / ny[ok]) @ (Pc[:, ok] / npr[ok]).T
    rows = np.arange(G.shape[0])
    return G[rows[None, :], perms].sum(axis=1) / ok.sum()


def _decomposition_key(lp: LPOptions, src: Representations) -> tuple:
    return ("lp-decomposition", _k(lp, src), lp.x_scaling, lp.outer_cv)


def lp_decomposition(src: Representations, lp: LPOptions, folds: bool = True
                     ) -> LPDecomposition:
    """The LP source side of ``src`` (scaling, PCA; with ``folds`` also every outer fold's),
    computed once per source and reused for every target and both splits.

    Kept in ``src.cache`` only when the source is reduced (``lp.n_components``): unreduced,
    the decomposition is six scaled copies of the source, which are cheap to redo and costly
    to hold."""
    key = _decomposition_key(lp, src)
    dec = src.cache.get(key)
    if dec is None or (folds and dec.folds is None):
        dec = lp_decompose(src.values["train"], src.values["test"], lp.outer_cv, _k(lp, src),
                           lp.x_scaling, folds=folds)
        if key[1] is not None:
            src.cache[key] = dec
    return dec


def use_decomposition(src: Representations, lp: LPOptions, dec: LPDecomposition,
                      where: str) -> None:
    """Give ``src`` a precomputed LP decomposition (the ``decompose`` rule's), after checking
    that it was made with ``lp``'s settings for a source of this size.

    Raises
    ------
    ValueError
        Naming ``where`` (the file), when the stored decomposition does not fit.
    """
    from alignpatterns.measures.ridge import _resolve_cv

    want = (_k(lp, src), lp.x_scaling)
    if (dec.n_components, dec.x_scaling) != want:
        raise ValueError(f"{where}: decomposed with n_components={dec.n_components}, "
                         f"x_scaling={dec.x_scaling!r}, but the LP settings ask for "
                         f"n_components={want[0]}, x_scaling={want[1]!r}; run the decompose "
                         "step again")
    n_train, n_test = len(src.values["train"]), len(src.values["test"])
    if (len(dec.train), len(dec.test)) != (n_train, n_test):
        raise ValueError(f"{where}: decomposed {len(dec.train)} train and {len(dec.test)} test "
                         f"stimuli, the features have {n_train} and {n_test}")
    splits = _resolve_cv(lp.outer_cv, np.empty((n_train, 0)))
    if dec.folds is None or len(dec.folds) != len(splits) or any(
            not (np.array_equal(tr, f[0]) and np.array_equal(te, f[1]))
            for (tr, te), f in zip(splits, dec.folds, strict=False)):
        raise ValueError(f"{where}: its outer folds are not lp.outer_folds={lp.outer_cv} of "
                         f"{n_train} train stimuli; run the decompose step again")
    src.cache[_decomposition_key(lp, src)] = dec


def _k(lp: LPOptions, src: Representations) -> int | None:
    if lp.n_components is None:
        return None
    return int(min(lp.n_components, src.n_dims))


def model_brain_rows(features: Mapping[str, tuple[np.ndarray, np.ndarray]], sd: SubjectData,
                     rois: Sequence[str], measures: Sequence[str], lp: LPOptions) -> list[dict]:
    """Alignment of every layer of one model with every ROI of one subject.

    Parameters
    ----------
    features : mapping layer → (Z_train (n_train, p), Z_test (n_test, p)), in layer order
    sd : SubjectData
    rois : sequence of str
    measures : sequence of str
    lp : LPOptions

    Returns
    -------
    list of dict with keys measure, layer, layer_index, subject, roi, split, score,
    n_source_dims, n_vertices.
    """
    return model_brain_scores(features, sd, rois, measures, lp)[0]


def model_brain_scores(features: Mapping[str, tuple[np.ndarray, np.ndarray]], sd: SubjectData,
                       rois: Sequence[str], measures: Sequence[str], lp: LPOptions,
                       perms: Mapping[str, np.ndarray] | None = None,
                       boots: Mapping[str, np.ndarray] | None = None,
                       decompositions: Mapping[str, LPDecomposition] | None = None,
                       decompositions_file: str = "the LP decompositions"):
    """:func:`model_brain_rows` plus stimulus-permutation nulls of the test scores.

    Parameters
    ----------
    perms : mapping of measure → ndarray of int, shape (n_draws, n_test), optional
        One set of permutations per measure, applied to every layer (the same sets must be
        used for every subject so that a draw permutes the candidate jointly).
    boots : mapping of measure → ndarray of int, shape (n_draws, n_test), optional
        Stimulus-bootstrap copy counts per measure (the same for every model, subject and the
        brain–brain tensor).
    decompositions : mapping of layer → LPDecomposition, optional
        Every layer's LP source side, computed once for all subjects (the ``decompose`` rule;
        checked against ``lp``); without it each job decomposes the layers itself, with the
        same result.
    decompositions_file : str
        Named in the error when a decomposition does not fit.

    Returns
    -------
    rows : list of dict
        As :func:`model_brain_rows`.
    nulls : dict of measure → ndarray, shape (n_draws, n_layers, n_rois)
        Test scores with the model's stimuli permuted (NaN for missing ROIs).
    boot : dict of measure → ndarray, shape (n_draws, n_layers, n_rois)
        Only with ``boots`` (returned as a third element): test scores under each
        stimulus-bootstrap draw.
    """
    rows, nulls, boot = [], {}, {}
    layer_index = {name: i for i, name in enumerate(features)}
    for measure in measures:
        targets = {roi: _named(f"sub-{sd.subject} ROI {roi!r}", measure, brain_representation,
                               sd, roi, measure) for roi in rois}
        sources = {layer: _named(f"layer {layer!r}", measure, model_representation,
                                 Ztr, Zte, measure)
                   for layer, (Ztr, Zte) in features.items()}
        if decompositions and is_lp(measure) and lp.protocol == "default":
            for layer, src in sources.items():
                use_decomposition(src, lp, decompositions[layer],
                                  f"{decompositions_file} (layer {layer!r})")
        p = None if perms is None else perms.get(measure)
        c = None if boots is None else boots.get(measure)
        out = score_sources_to_targets(sources, targets, measure, lp, p, c)
        if c is not None:
            out, null, bt = out
            boot[measure] = np.stack([bt[layer] for layer in features], axis=1)
        elif p is not None:
            out, null = out
        if p is not None:
            nulls[measure] = np.stack([null[layer] for layer in features], axis=1)
        for row in out:
            rows.append({"measure": measure, "layer": row["source"],
                         "layer_index": layer_index[row["source"]], "subject": sd.subject,
                         "roi": row["target"], "split": row["split"], "score": row["score"],
                         "n_source_dims": row["n_source_dims"], "n_vertices": row["n_vertices"]})
    return (rows, nulls) if boots is None else (rows, nulls, boot)


def brain_brain_rows(subjects: Mapping[str, SubjectData], target: str, rois: Sequence[str],
                     measure: str, lp: LPOptions, boots: np.ndarray | None = None):
    """A_{s′→s}[r, r′] for target subject ``target`` and every source subject s′ ≠ s.

    Parameters
    ----------
    boots : ndarray of int, shape (n_draws, n_test), optional
        Stimulus-bootstrap copy counts of this measure (the same as the model–brain jobs').

    Returns
    -------
    rows : list of dict
        Keys measure, source_subject, source_roi, target_subject, target_roi, split, score,
        n_source_dims, n_vertices.
    boot : ndarray, shape (n_draws, n_subjects, n_rois, n_rois)
        Only with ``boots`` (returned as ``(rows, boot)``): test scores A_{s′→s}[r, r′] under
        each draw, indexed [draw, source subject (order of ``subjects``), r, r′]; NaN for
        s′ = s and missing cells.
    """
    tgt_sd = subjects[target]
    targets = {roi: _named(f"sub-{target} ROI {roi!r}", measure, brain_representation, tgt_sd,
                           roi, measure) for roi in rois}
    rows = []
    boot = None if boots is None else np.full((len(boots), len(subjects), len(rois),
                                               len(rois)), np.nan)
    all_sources: dict[tuple[int, int], Representations] = {}
    for si, (src_sub, sd) in enumerate(subjects.items()):
        if src_sub == target:
            continue
        sources = {roi: rep for roi in rois
                   if (rep := _named(f"sub-{src_sub} ROI {roi!r}", measure,
                                     brain_representation, sd, roi, measure)) is not None}
        missing = [roi for roi in rois if roi not in sources]
        # LP rescores each source's stored predictions; RSA and CKA all sources at once below
        lp_boots = boots if is_lp(measure) else None
        out = score_sources_to_targets(sources, targets, measure, lp, None, lp_boots)
        if lp_boots is not None:
            out, _, bt = out
            for ri, roi in enumerate(rois):
                if roi in bt:
                    boot[:, si, ri, :] = bt[roi]
        elif boots is not None:
            all_sources.update({(si, ri): sources[roi] for ri, roi in enumerate(rois)
                                if roi in sources})
        for row in out:
            rows.append({"measure": measure, "source_subject": src_sub,
                         "source_roi": row["source"], "target_subject": target,
                         "target_roi": row["target"], "split": row["split"],
                         "score": row["score"], "n_source_dims": row["n_source_dims"],
                         "n_vertices": row["n_vertices"]})
        for roi in missing:  # missing source cells: NaN rows keep the table rectangular
            for tgt, tgt_rep in targets.items():
                for split in SPLITS:
                    rows.append({"measure": measure, "source_subject": src_sub,
                                 "source_roi": roi, "target_subject": target,
                                 "target_roi": tgt, "split": split, "score": np.nan,
                                 "n_source_dims": 0,
                                 "n_vertices": 0 if tgt_rep is None else tgt_rep.n_dims})
    if all_sources:
        for (si, ri), b in _boot_rsa_cka(all_sources, targets, measure, boots).items():
            boot[:, si, ri, :] = b
    return rows if boots is None else (rows, boot)
