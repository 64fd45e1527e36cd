"""Noise-free ground truth of a synthetic dataset: ROI × ROI patterns and the oracle's verdicts.

Both are computed from the noiseless vertex signals (vertices with true ncsnr ≥ 0.2, test split)
and, for the oracle, the generator's own layer activations on the test stimuli, with the
measures' noise-free forms: RSA = Spearman correlation of squared-Euclidean RDMs (crossnobis
estimates this distance without bias), CKA = debiased linear CKA. The patterns (not the oracle's
verdicts) also cover correlation RSA (Spearman of 1 − Pearson RDMs) and linear predictivity,
whose noise-free form is the ridge's limit without noise: least squares on the source's top
principal components of the train split (the common LP dimensionality), Pearson r of the test
prediction per target vertex, averaged over the target's reliable vertices
(:func:`expected_lp_pattern`).

:func:`candidate_layer_cka` gives, per candidate and ROI, the CKA and the RSA between the ROI's
driving layer and the candidate's best-matching layer (the workflow's ``synth_layer_cka`` table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from scipy.stats import t as student_t

from alignpatterns.measures import cka_from_grams, compare_rdms, gram, rank_rdm, rdm

#: Measures with a noise-free form, and how their representations are built and compared.
_MEASURES = {
    "rsa-crossnobis-spearman": (lambda X: rdm(X, "sqeuclidean"),
                                lambda a, b: compare_rdms(a, b, "spearman")),
    "cka-linear-debiased": (gram, lambda a, b: cka_from_grams(a, b, debiased=True)),
}


#: Measures with a noise-free pattern but no noise-free oracle verdict.
_PATTERN_ONLY = {
    "rsa-correlation-spearman": (lambda X: rdm(X, "correlation"),
                                 lambda a, b: compare_rdms(a, b, "spearman")),
}
#: Common source dimensionality of the noise-free LP pattern (the default ``lp.n_components``).
LP_N_COMPONENTS = 20


def roi_test_data(noiseless: dict, true_ncsnr: dict, roi_slices: dict, n_train: int,
                  min_ncsnr: float = 0.2) -> dict:
    """Noise-free test responses of every subject's ROI, reliable vertices only.

    Parameters
    ----------
    noiseless : dict of str to ndarray, each (n_stimuli, n_vertices)
    true_ncsnr : dict of str to ndarray, each (n_vertices,)
    roi_slices : dict of str to slice
    n_train : int
        The first ``n_train`` stimuli are train; the rest are test.

    Returns
    -------
    dict of (subject, roi) to ndarray, shape (n_test, n_kept)
    """
    data = {}
    for s in sorted(noiseless):
        for r, sl in roi_slices.items():
            keep = true_ncsnr[s][sl] >= min_ncsnr
            data[s, r] = noiseless[s][n_train:, sl][:, keep]
    return data


def _pair_patterns(reps: dict, subjects: list, rois: list, compare) -> np.ndarray:
    """A[p, i, j] = compare(source ROI i of pair p's source, target ROI j of its target).

    Returns ndarray of shape (n_ordered_pairs, n_rois, n_rois), pairs in (source, target) order.
    """
    pairs = [(a, b) for a in subjects for b in subjects if a != b]
    out = np.zeros((len(pairs), len(rois), len(rois)))
    for p, (s_src, s_tgt) in enumerate(pairs):
        for i, r in enumerate(rois):
            for j, r2 in enumerate(rois):
                out[p, i, j] = compare(reps[s_src, r], reps[s_tgt, r2])
    return out


def _measure_patterns(data: dict):
    """Per measure: (represent, compare, representations, ordered-pair patterns A[p, i, j])."""
    subjects = sorted({s for s, _ in data})
    rois = list(dict.fromkeys(r for _, r in data))
    for measure, (represent, compare) in _MEASURES.items():
        reps = {k: represent(v) for k, v in data.items()}
        yield measure, represent, compare, reps, _pair_patterns(reps, subjects, rois, compare)


def expected_lp_pattern(noiseless: dict, true_ncsnr: dict, roi_slices: dict, n_train: int,
                        n_components: int = LP_N_COMPONENTS, min_ncsnr: float = 0.2
                        ) -> tuple[list, int]:
    """Noise-free linear-predictivity pattern, averaged over ordered subject pairs.

    For source ROI r of subject a and target ROI r′ of subject b ≠ a: the source's reliable
    vertices, centred on train, are reduced to their top ``k`` principal components of the
    train split; least squares on train maps them to every reliable target vertex (centred on
    train); the score is the mean over target vertices of Pearson r between prediction and
    signal on the test split. With noise-free data the ridge's fitted penalty goes to 0, so
    this is the limit the workflow's ``lp-ridge-pearson`` estimates (up to the target
    vertices' reliability).

    Parameters
    ----------
    noiseless, true_ncsnr, roi_slices, n_train
        As in :func:`roi_test_data` (here the train split is used as well).
    n_components : int
        Common k, capped like the workflow's at the smallest reliable-vertex count of an ROI.

    Returns
    -------
    pattern : list of lists, shape (n_rois, n_rois)
        Rounded to 6 decimals.
    k : int
        The dimensionality used.
    """
    subjects = sorted(noiseless)
    rois = list(roi_slices)
    data = {(s, r): noiseless[s][:, sl][:, true_ncsnr[s][sl] >= min_ncsnr]
            for s in subjects for r, sl in roi_slices.items()}
    k = int(min([n_components] + [x.shape[1] for x in data.values()]))
    # per source: the train-fitted least-squares map from its components, as one matrix
    # acting on the centred train targets (pinv of the component scores)
    fits = {}
    for key, X in data.items():
        mu = X[:n_train].mean(axis=0)
        Vt = np.linalg.svd(X[:n_train] - mu, full_matrices=False)[2][:k]
        Ztr, Zte = (X[:n_train] - mu) @ Vt.T, (X[n_train:] - mu) @ Vt.T
        fits[key] = Zte @ np.linalg.pinv(Ztr)
    targets = {}
    for key, Y in data.items():
        targets[key] = (Y[:n_train] - Y[:n_train].mean(axis=0),
                        Y[n_train:] - Y[n_train:].mean(axis=0))
    pairs = []
    for a in subjects:
        for b in subjects:
            if a == b:
                continue
            A = np.zeros((len(rois), len(rois)))
            for i, r in enumerate(rois):
                for j, r2 in enumerate(rois):
                    Ytr, Yc = targets[b, r2]
                    P = fits[a, r] @ Ytr
                    P = P - P.mean(axis=0)
                    A[i, j] = np.mean((P * Yc).sum(0) / np.sqrt((P**2).sum(0) * (Yc**2).sum(0)))
            pairs.append(A)
    return np.mean(pairs, axis=0).round(6).tolist(), k


def expected_patterns(data: dict) -> dict:
    """Noise-free ROI × ROI cross-subject patterns averaged over ordered subject pairs.

    Parameters
    ----------
    data : dict of (subject, roi) to ndarray, shape (n_test, n_kept)
        From :func:`roi_test_data`.

    Returns
    -------
    dict of measure to list of lists, shape (n_rois, n_rois), rounded to 6 decimals.
    """
    out = {m: pairs.mean(axis=0).round(6).tolist()
           for m, _, _, _, pairs in _measure_patterns(data)}
    out.update(_pattern_only(data))
    return out


def _pattern_only(data: dict) -> dict:
    """Patterns of the measures without a noise-free oracle verdict (:data:`_PATTERN_ONLY`)."""
    subjects = sorted({s for s, _ in data})
    rois = list(dict.fromkeys(r for _, r in data))
    out = {}
    for measure, (represent, compare) in _PATTERN_ONLY.items():
        reps = {k: represent(v) for k, v in data.items()}
        out[measure] = _pair_patterns(reps, subjects, rois, compare).mean(axis=0).round(6).tolist()
    return out


def _offdiag_corr(a: np.ndarray, b: np.ndarray, drop: list[int]) -> float:
    keep = np.setdiff1d(np.arange(a.size), drop)
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def double_exclusion_references(pairs: np.ndarray, subjects: list) -> np.ndarray:
    """ā^{−{s*,s}} for every ordered pair: the mean pattern of the pairs that involve neither
    subject (SPEC.md §4).

    Parameters
    ----------
    pairs : ndarray, shape (n_ordered_pairs, n_rois, n_rois)
        Pair patterns in the order of :func:`_pair_patterns` ((source, target) over
        ``subjects``).
    subjects : list

    Returns
    -------
    ndarray, same shape
        All NaN for fewer than 4 subjects (no pair is left).
    """
    order = [(a, b) for a in subjects for b in subjects if a != b]
    out = np.full(pairs.shape, np.nan)
    for p, (a, b) in enumerate(order):
        rest = [q for q, (c, d) in enumerate(order) if not {c, d} & {a, b}]
        if rest:
            out[p] = pairs[rest].mean(axis=0)
    return out


def expected_oracle(data: dict, layer_test: list[np.ndarray], layer_names: list[str],
                    margin: float = 0.1) -> dict:
    """The oracle's noise-free verdict per measure and ROI on the `offdiag` variant.

    The oracle stands in for ROI r with the generator layer ℓ*(r) that best matches r (mean over
    subjects), O_s[r, r′] = f(layer ℓ*(r), X_{s,r′}) for target subject s. Every score uses the
    double-exclusion reference ā_p = ā^{−{s*,s}} of the ordered pair p = (stand-in s*, target s)
    (SPEC.md §4), averaged over the S(S−1) pairs, entries r′ ≠ r:

    - aps = mean_p ρ(O_s[r, :], ā_p[r, :]);
    - aps_brain = mean_p ρ(A_{s*→s}[r, :], ā_p[r, :]);
    - spec = mean_p [ρ(O_s[r, :], ā_p[r, :]) − mean_{r″≠r} ρ(O_s[r, :], ā_p[r″, :]) over
      r′ ∉ {r, r″}];
    - with ≥ 6 subjects (SPEC.md §4's minimum for a verdict), delete-one-subject jackknife-t
      95% intervals of delta = aps − aps_brain and of spec, each resample recomputing ℓ*, the
      pairs and their references on the remaining subjects (as the workflow's intervals do).
      Noise-free responses still differ between subjects (mixing weights, idiosyncratic
      signal), so the interval is the sampling error of the subjects, not of measurement;
    - passes = (delta_ci_low > −margin) ∧ (spec_ci_low > 0): the verdict of SPEC.md §4 without
      measurement noise (and without the stimulus-permutation test, which noise-free signal
      passes). Below 6 subjects there is no interval and ``passes`` is the point verdict
      ``passes_point`` = (delta > −margin) ∧ (spec > 0), which is always reported.

    With fewer than 4 subjects no pair is left for a reference: the scores are None and
    ``passes`` False.

    Parameters
    ----------
    data : dict of (subject, roi) to ndarray, shape (n_test, n_kept)
        From :func:`roi_test_data`.
    layer_test : list of ndarray, each (n_test, n_features_l)
        Generator activations on the test stimuli, one per read layer.
    layer_names : list of str
    margin : float
        δ of the verdict (SPEC.md default 0.1).

    Returns
    -------
    dict of measure to dict of roi to {layer, aps, aps_brain, delta, delta_ci_low,
    delta_ci_high, spec, spec_ci_low, passes_point, passes}.
    """
    return noise_free_truth(data, layer_test, layer_names, margin)[1]


def _round(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


#: Fewest subjects with a verdict (SPEC.md §4: verdicts NA below 6 subjects).
MIN_SUBJECTS_VERDICT = 6


def _oracle_means(score: np.ndarray, pairs: np.ndarray, subjects: list, keep: list
                  ) -> tuple[np.ndarray, ...]:
    """Oracle and brain scores of every ROI on the subjects ``keep``.

    Parameters
    ----------
    score : ndarray, shape (n_layers, n_subjects, n_rois)
        score[l, s, j] = f(layer l, subject s's ROI j), subjects in the order of ``subjects``.
    pairs : ndarray, shape (n_ordered_pairs, n_rois, n_rois)
        Pair patterns of all ``subjects`` in the order of :func:`_pair_patterns`.
    subjects : list
    keep : list
        A subset of ``subjects``, in their order.

    Returns
    -------
    best : ndarray of int, shape (n_rois,)
        ℓ* per ROI (argmax of the mean score over ``keep``).
    aps, brain, spec : ndarray, shape (n_rois,)
        Means over the ordered pairs of ``keep`` (NaN without a reference).
    """
    order = [(a, b) for a in subjects for b in subjects if a != b]
    idx = [p for p, (a, b) in enumerate(order) if a in keep and b in keep]
    sub_pairs = pairs[idx]
    refs = double_exclusion_references(sub_pairs, keep)
    cols = [subjects.index(s) for s in keep]
    n_rois = pairs.shape[1]
    best = np.argmax(score[:, cols, :].mean(axis=1), axis=0)
    out = np.full((3, n_rois), np.nan)
    for i in range(n_rois):
        aps, brain, spec = [], [], []
        for q, p in enumerate(idx):
            if np.isnan(refs[q]).all():
                continue
            own = score[best[i], subjects.index(order[p][1])]
            aps.append(_offdiag_corr(own, refs[q, i], [i]))
            brain.append(_offdiag_corr(sub_pairs[q, i], refs[q, i], [i]))
            others = [_offdiag_corr(own, refs[q, k], [i, k]) for k in range(n_rois) if k != i]
            spec.append(aps[-1] - float(np.mean(others)))
        if aps:
            out[:, i] = [np.mean(aps), np.mean(brain), np.mean(spec)]
    return best, out[0], out[1], out[2]


def _jackknife_t(full: float, loo: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Delete-one jackknife-t interval: full ± t_{n−1} · sqrt((n−1)/n · Σ (θ_(j) − θ̄)²).

    Written here rather than taken from :mod:`alignpatterns.patterns.apa`: the ground truth
    stays an independent computation of what the workflow reports."""
    n = loo.size
    if n < 2 or not (np.isfinite(full) and np.isfinite(loo).all()):
        return np.nan, np.nan
    se = np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    half = student_t.ppf(0.5 + level / 2, n - 1) * se
    return full - half, full + half


def noise_free_truth(data: dict, layer_test: list[np.ndarray], layer_names: list[str],
                     margin: float = 0.1) -> tuple[dict, dict]:
    """:func:`expected_patterns` and :func:`expected_oracle` from one pass over the data (the
    pair patterns are computed once for both).

    Returns
    -------
    patterns : dict
        As :func:`expected_patterns`.
    oracle : dict
        As :func:`expected_oracle`.
    """
    subjects = sorted({s for s, _ in data})
    rois = list(dict.fromkeys(r for _, r in data))
    with_interval = len(subjects) >= MIN_SUBJECTS_VERDICT
    patterns, out = {}, {}
    for measure, represent, compare, reps, pairs in _measure_patterns(data):
        patterns[measure] = pairs.mean(axis=0).round(6).tolist()
        layers = [represent(np.asarray(f, dtype=np.float64)) for f in layer_test]
        # score[l, s, j] = f(layer l, subject s's ROI j)
        score = np.array([[[compare(L, reps[s, r]) for r in rois] for s in subjects]
                          for L in layers])
        best, aps, brain, spec = _oracle_means(score, pairs, subjects, subjects)
        delta = aps - brain
        loo = [_oracle_means(score, pairs, subjects, [s for s in subjects if s != j])
               for j in subjects] if with_interval else []
        rows = {}
        for i, r in enumerate(rois):
            d_lo, d_hi = (_jackknife_t(delta[i], np.array([a[i] - b[i] for _, a, b, _ in loo]))
                          if loo else (np.nan, np.nan))
            s_lo = (_jackknife_t(spec[i], np.array([x[i] for *_, x in loo]))[0]
                    if loo else np.nan)
            point = bool(delta[i] > -margin and spec[i] > 0)
            passes = bool(d_lo > -margin and s_lo > 0) if loo else point
            rows[r] = {"layer": layer_names[best[i]], "aps": _round(aps[i]),
                       "aps_brain": _round(brain[i]), "delta": _round(delta[i]),
                       "delta_ci_low": _round(d_lo), "delta_ci_high": _round(d_hi),
                       "spec": _round(spec[i]), "spec_ci_low": _round(s_lo),
                       "passes_point": point, "passes": passes}
        out[measure] = rows
    patterns.update(_pattern_only(data))
    return patterns, out


def _eccentricity(X: np.ndarray) -> np.ndarray:
    """Each stimulus's Euclidean distance from the centroid; X (n_stimuli, n_features) →
    (n_stimuli,)."""
    return np.linalg.norm(X - X.mean(axis=0), axis=1)


def candidate_layer_cka(truth: dict, oracle: dict[str, np.ndarray],
                        candidates: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """How close each candidate's layers come to every ROI's driving layer (SPEC.md §5 ground
    truth), by linear CKA and by RSA.

    For ROI r with driving layer ℓ_r (``roi_true_layer_name``, the generator layer with the
    largest depth weight), a candidate's best layer is argmax_k CKA(G_{ℓ_r}, F_k) and its value
    the ceiling of how well the candidate's layers can reproduce what drove r. Linear CKA
    (biased, as ``layer_cka``) over every stimulus, train and test. The same for RSA in its
    noise-free form (the one ``expected_pattern`` uses for crossnobis RSA): the Spearman
    correlation of squared-Euclidean RDMs, with its own best layer; and, at that layer, the
    Spearman correlation over stimuli of each stimulus's distance from the centroid in ℓ_r and
    in the candidate's layer. A squared-Euclidean RDM entry is e_i² + e_j² − 2 x_i·x_j with
    e the distance from the centroid, so where ``eccentricity_r`` is high RSA cannot tell the
    candidate from the generator even when CKA can (``docs/synthetic.md``).

    Parameters
    ----------
    truth : dict
        ``ground_truth.json`` of the dataset (keys ``rois``, ``roi_true_layer_name``,
        ``generator_layers``).
    oracle : dict of str to ndarray, each (n_stimuli, n_features_l)
        The generator's activations per layer name (the ``oracle`` candidate's features); the
        driving layers at least.
    candidates : dict of str to dict of str to ndarray, each (n_stimuli, n_features_k)
        Every candidate's activations per layer name, layers in depth order, same stimuli in the
        same order as ``oracle``.

    Returns
    -------
    DataFrame
        One row per candidate × ROI: candidate, roi, driver_layer, best_layer,
        best_layer_index, cka, rsa_best_layer, rsa_best_layer_index, rsa, eccentricity_r.
    """
    drivers = sorted(set(truth["roi_true_layer_name"].values()))
    missing = [name for name in drivers if name not in oracle]
    if missing:
        raise ValueError(f"oracle features lack the driving layers {missing} of "
                         f"ground_truth.json (found {sorted(oracle)})")
    n = {a.shape[0] for a in oracle.values()}
    n |= {a.shape[0] for layers in candidates.values() for a in layers.values()}
    if len(n) != 1:
        raise ValueError(f"features cover different numbers of stimuli: {sorted(n)}")
    # each layer's Gram, ranked RDM and eccentricities once: every driver meets every layer
    driver_x = {d: np.asarray(oracle[d], dtype=np.float64) for d in drivers}
    driver_grams = {d: gram(x) for d, x in driver_x.items()}
    driver_ranks = {d: rank_rdm(rdm(x, "sqeuclidean")) for d, x in driver_x.items()}
    rows = []
    for cand, layers in candidates.items():
        names = list(layers)
        feats = [np.asarray(layers[k], dtype=np.float64) for k in names]
        grams = [gram(x) for x in feats]
        ranks = np.stack([rank_rdm(rdm(x, "sqeuclidean")) for x in feats])
        cka = {d: [float(cka_from_grams(driver_grams[d], L)) for L in grams] for d in drivers}
        rsa = {d: compare_rdms(driver_ranks[d], ranks, "spearman", ranked=True)
               for d in drivers}
        for roi in truth["rois"]:
            d = truth["roi_true_layer_name"][roi]
            best = int(np.argmax(cka[d]))
            best_rsa = int(np.argmax(rsa[d]))
            ecc = spearmanr(_eccentricity(driver_x[d]), _eccentricity(feats[best_rsa]))[0]
            rows.append({"candidate": cand, "roi": roi, "driver_layer": d,
                         "best_layer": names[best], "best_layer_index": best,
                         "cka": cka[d][best], "rsa_best_layer": names[best_rsa],
                         "rsa_best_layer_index": best_rsa, "rsa": float(rsa[d][best_rsa]),
                         "eccentricity_r": float(ecc)})
    return pd.DataFrame(rows)
