"""Generative model of synthetic vertex responses with a known ground truth (SPEC.md §5).

A hidden generator network's layers drive ROIs along a hierarchy. For ROI r at hierarchy position
p_r (0 = shallowest generator layer, L−1 = deepest), the generator-driven latent is a depth-weighted
mix of the 2–3 generator layers nearest p_r, each represented by its top principal components with a
power-law spectrum. Optionally (``specific_fraction``, off by default) a share of each layer's
variance comes from the layer's *specific* components instead: its top principal components after
the ``n_common`` stimulus dimensions shared by all layers are projected out. They were needed
while the generator was a plain ReLU network (vgg11), whose deep layers carry their
predecessors' dominant variance: without them every ROI's latent was dominated by the same few
dimensions and linear-predictivity patterns were flat. The default generator's GroupNorm layers
do not nest that way (``docs/synthetic.md``). Every vertex of subject s in ROI r mixes, with
subject-specific spatially smooth weights:

- the generator-driven latent (shared across subjects);
- an ROI-private latent shared across subjects that no network explains;
- a global stimulus factor shared by all ROIs;
- a subject-idiosyncratic reliable latent.

Each vertex's signal is scaled to its true ncsnr (log-normal per ROI, median falling along the
hierarchy) and per-trial noise is added (independent + within-subject global + spatially smooth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtri

#: Default variance fractions of the reliable signal (sum to 1).
DEFAULT_FRACTIONS = {"generator": 0.6, "private": 0.17, "global": 0.08, "idiosyncratic": 0.15}

#: Fractions of per-trial noise variance.
NOISE_FRACTIONS = {"independent": 0.6, "global": 0.1, "smooth": 0.3}

#: ROI names (HCP-MMP-like, ordered early → late) used for synthetic ROIs.
ROI_NAMES = ("V1", "V2", "V3", "V4", "V8", "PIT", "FFC", "LO1", "LO2", "LO3", "V3A", "V3B",
             "V6", "V6A", "V7", "IPS1", "MT", "MST", "FST")


@dataclass
class ResponseDesign:
    """Parameters of the generative model.

    Attributes
    ----------
    n_components : int
        Principal components kept per generator layer.
    spectrum_exponent : float or None
        Variance of component j is proportional to j ** -spectrum_exponent (None: the
        layer's own spectrum).
    mix_width : float
        Width (in layers) of the Gaussian depth weighting. With the embedded default's 10 ROIs
        over 4 driving layers, 0.35 gives an ROI a third of the way between two drivers the
        shares 0.80 / 0.20 and an ROI at a driver 0.966, with 0.017 from each neighbour. At
        0.45 (0.69 / 0.31) the oracle's one selected layer lay so far from the two-layer latent
        that a re-seeded network of the architecture tied it on crossnobis RSA (oracle top in
        50% of seed 2's ROIs; ``docs/synthetic.md``).
    n_private, n_idiosyncratic : int
        Dimensionality of the ROI-private and subject-idiosyncratic latents.
    ncsnr_median : tuple of float
        Median ncsnr of the first and last ROI of the hierarchy (log-linear in between). With
        ``ncsnr_sigma`` 1.6, 0.68 puts 22.2% of the first ROI's vertices below 0.2 (≥ 20% for
        every ROI of ≥ 60 vertices under the stratified draws) and 0.45 puts 30.6% of the
        last one's.
    ncsnr_sigma : float
        Log-normal sigma of per-vertex ncsnr.
    ncsnr_max : float
        Soft maximum of per-vertex ncsnr.
    size_range : tuple of int
        Smallest and largest ROI size in vertices (≥ 5× apart).
    n_common : int
        Number of stimulus dimensions shared by all generator layers (the top principal
        components of their pooled, variance-normalised activations) removed from every layer
        before its *specific* components are taken.
    specific_fraction : tuple of float
        Share of a layer's latent variance carried by its specific components at the shallowest
        and at the deepest driving layer (linear in between). Default (0, 0): every layer's own
        top components only, so each ROI's RDM, Gram and linear map are those of its driving
        layers. Specific components are low-variance, weight-specific directions: they lower
        every candidate's APS on the ROIs that carry them, the oracle's included
        (``docs/status.md`` has the history of the shares used with the vgg11 generator).
    smooth_sigma : float
        Spatial smoothing (in vertices) of mixing weights and smooth noise.
    fractions : dict
        Variance fractions of the reliable signal.
    """

    n_components: int = 30
    spectrum_exponent: float | None = 2.0
    mix_width: float = 0.35
    n_private: int = 12
    n_idiosyncratic: int = 12
    ncsnr_median: tuple[float, float] = (0.68, 0.45)
    ncsnr_sigma: float = 1.6
    ncsnr_max: float = 1.4
    size_range: tuple[int, int] = (60, 360)
    n_common: int = 14
    specific_fraction: tuple[float, float] = (0.0, 0.0)
    smooth_sigma: float = 3.0
    fractions: dict = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))


def layer_components(features: np.ndarray, n_components: int, exponent: float | None
                     ) -> np.ndarray:
    """Top principal components of one layer with a power-law spectrum.

    Parameters
    ----------
    features : ndarray, shape (n_stimuli, n_features)
    n_components : int
    exponent : float or None
        Column j gets variance ∝ (j+1) ** -exponent; None keeps the layer's own spectrum (for
        random CNN layers itself close to a power law with exponent ≈ 1.6–2.4).

    Returns
    -------
    ndarray, shape (n_stimuli, k)
        Orthogonal columns, total variance 1 per stimulus.
    """
    X = features.astype(np.float64) - features.mean(axis=0)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    # directions beyond the numerical rank (few stimuli, common dimensions removed) are arbitrary
    rank = int(np.sum(s > 1e-8 * s[0])) if s.size and s[0] > 0 else 0
    k = max(1, min(n_components, U.shape[1] - 1, rank))
    if exponent is None:
        scale = s[:k]
    else:
        scale = np.arange(1, k + 1, dtype=np.float64) ** (-exponent / 2)
    Z = U[:, :k] * scale
    return Z / np.sqrt((Z**2).sum(axis=1).mean())


def remove_common(layer_feats: list[np.ndarray], n_common: int) -> list[np.ndarray]:
    """Project the stimulus dimensions shared by all layers out of every layer.

    Parameters
    ----------
    layer_feats : list of ndarray, each (n_stimuli, n_features_l)
    n_common : int

    Returns
    -------
    list of ndarray, same shapes, centred, orthogonal (over stimuli) to the common subspace.
    """
    centred = [f.astype(np.float64) - f.mean(axis=0) for f in layer_feats]
    pooled = np.concatenate([c / np.linalg.norm(c) for c in centred], axis=1)
    U = np.linalg.svd(pooled, full_matrices=False)[0][:, :n_common]
    return [c - U @ (U.T @ c) for c in centred]


def depth_weights(position: float, n_layers: int, width: float, n_keep: int = 3,
                  min_share: float = 0.01) -> np.ndarray:
    """Weights over generator layers for an ROI at hierarchy ``position``.

    Gaussian in layer index, keeping the ``n_keep`` largest (adjacent) layers whose weight is at
    least ``min_share`` of the largest, normalised to sum 1.

    Returns
    -------
    ndarray, shape (n_layers,)
    """
    idx = np.arange(n_layers)
    w = np.exp(-0.5 * ((idx - position) / width) ** 2)
    keep = np.argsort(-w, kind="stable")[:n_keep]
    out = np.zeros(n_layers)
    out[keep] = w[keep]
    out[out < min_share * out.max()] = 0.0
    return out / out.sum()


def _unit_variance(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.mean(axis=0)
    return Z / np.sqrt((Z**2).sum(axis=1).mean())


def _smooth_weights(rng: np.random.Generator, k: int, n_vertices: int, sigma: float) -> np.ndarray:
    W = rng.standard_normal((k, n_vertices))
    if sigma > 0:
        W = gaussian_filter1d(W, sigma, axis=1, mode="reflect")
    return W / np.linalg.norm(W, axis=0, keepdims=True)


def _project(latent: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Vertex signals (n_stimuli, n_vertices) with unit variance per vertex."""
    S = latent @ weights
    S = S - S.mean(axis=0)
    return S / S.std(axis=0)


@dataclass
class SharedLatents:
    """Latents shared across subjects (stimuli × dims)."""

    generator: dict[str, np.ndarray]      # roi -> (n_stimuli, k)
    private: dict[str, np.ndarray]        # roi -> (n_stimuli, n_private)
    global_factor: np.ndarray             # (n_stimuli, 1)
    weights: dict[str, np.ndarray]        # roi -> layer weights (n_layers,)


def shared_latents(layer_feats: list[np.ndarray], rois: list[str], positions: np.ndarray,
                   design: ResponseDesign, rng: np.random.Generator) -> SharedLatents:
    """Build the subject-independent latents for every ROI.

    Parameters
    ----------
    layer_feats : list of ndarray, each (n_stimuli, n_features_l)
        Generator layer activations, shallow to deep.
    rois : list of str
    positions : ndarray, shape (n_rois,)
        Hierarchy position of each ROI in layer units.
    """
    lo, hi = design.specific_fraction
    if not (0.0 <= lo < 1.0 and 0.0 <= hi < 1.0):
        raise ValueError(f"specific_fraction must be two shares in [0, 1), got {(lo, hi)}")
    comps = [layer_components(f, design.n_components, design.spectrum_exponent)
             for f in layer_feats]
    if max(lo, hi) > 0 and design.n_common > 0:
        specific = [layer_components(f, design.n_components, design.spectrum_exponent)
                    for f in remove_common(layer_feats, design.n_common)]
        shares = np.linspace(lo, hi, len(comps))
        # a layer with share 0 gets no specific columns: zero-weight columns would still draw
        # vertex mixing weights and carry nothing
        comps = [np.concatenate([np.sqrt(1 - b) * c, np.sqrt(b) * q], axis=1) if b > 0 else c
                 for b, c, q in zip(shares, comps, specific, strict=True)]
    n = comps[0].shape[0]
    gen, priv, wts = {}, {}, {}
    for roi, pos in zip(rois, positions, strict=True):
        w = depth_weights(float(pos), len(comps), design.mix_width)
        parts = [np.sqrt(wl) * c for wl, c in zip(w, comps, strict=True) if wl > 0]
        gen[roi] = _unit_variance(np.concatenate(parts, axis=1))
        spec = np.arange(1, design.n_private + 1) ** (-(design.spectrum_exponent or 2.0) / 2)
        priv[roi] = _unit_variance(rng.standard_normal((n, design.n_private)) * spec)
        wts[roi] = w
    g = _unit_variance(rng.standard_normal((n, 1)))
    return SharedLatents(generator=gen, private=priv, global_factor=g, weights=wts)


def subject_signal(shared: SharedLatents, roi: str, n_vertices: int, design: ResponseDesign,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reliable (noise-free) signal of one subject's ROI.

    Returns
    -------
    signal : ndarray, shape (n_stimuli, n_vertices)
        Unit variance per vertex.
    parts : dict of str to ndarray
        Each component's contribution (same shape), for ground-truth bookkeeping.
    """
    f = design.fractions
    n = shared.global_factor.shape[0]
    idio = _unit_variance(rng.standard_normal((n, design.n_idiosyncratic))
                          * np.arange(1, design.n_idiosyncratic + 1) ** (-0.5))
    latents = {"generator": shared.generator[roi], "private": shared.private[roi],
               "global": shared.global_factor, "idiosyncratic": idio}
    parts = {}
    for key, Z in latents.items():
        W = _smooth_weights(rng, Z.shape[1], n_vertices, design.smooth_sigma)
        parts[key] = np.sqrt(f[key]) * _project(Z, W)
    signal = sum(parts.values())
    scale = signal.std(axis=0)
    signal = (signal - signal.mean(axis=0)) / scale
    return signal, {k: v / scale for k, v in parts.items()}


def vertex_ncsnr(n_vertices: int, median: float, design: ResponseDesign,
                 rng: np.random.Generator) -> np.ndarray:
    """True per-vertex ncsnr: log-normal around ``median``, softly capped at ``ncsnr_max``.

    The draws are stratified (one uniform draw in each of the ``n_vertices`` equal-probability
    strata, in random vertex order), so that every ROI's empirical distribution follows the
    log-normal up to one vertex: its median and its share below 0.2 are those of the design
    (SPEC.md §5: 20–50% of each ROI's vertices below 0.2), not a small sample's.
    """
    u = (rng.permutation(n_vertices) + rng.uniform(size=n_vertices)) / max(n_vertices, 1)
    raw = median * np.exp(design.ncsnr_sigma * ndtri(u))
    cap = design.ncsnr_max
    return cap * np.tanh(raw / cap)


def trial_noise(rng: np.random.Generator, n_stimuli: int, n_reps: int, n_vertices: int,
                sigma: float) -> np.ndarray:
    """Unit-variance per-trial noise (n_stimuli, n_reps, n_vertices).

    Independent, within-subject global (one value per trial shared by all vertices) and spatially
    smooth components, mixed by :data:`NOISE_FRACTIONS`.
    """
    f = NOISE_FRACTIONS
    indep = rng.standard_normal((n_stimuli, n_reps, n_vertices))
    glob = rng.standard_normal((n_stimuli, n_reps, 1))
    smooth = gaussian_filter1d(rng.standard_normal((n_stimuli, n_reps, n_vertices)), sigma,
                               axis=2, mode="reflect")
    smooth /= smooth.std()
    return (np.sqrt(f["independent"]) * indep + np.sqrt(f["global"]) * glob
            + np.sqrt(f["smooth"]) * smooth)
