"""Procedurally generated short videos for the synthetic BOLD Moments (BMD) dataset.

Each stimulus is described by a small, JSON-serialisable parameter dict drawn by
:func:`sample_stimulus_params`. The parameters span the factors that separate early and late
layers of (even randomly initialised) convolutional networks: colour, luminance, contrast,
spatial frequency, orientation, shape, texture, motion direction and speed, number and size of
objects, and background. From the parameters alone:

- :func:`render_video` draws the frames (vectorised numpy, a few milliseconds per video);
- :func:`caption` writes an English sentence describing the video;
- :func:`annotation` builds an entry shaped like one value of BMD's ``annotations.json``;
- :func:`write_mp4` encodes frames to a deterministic H.264 mp4 file.

Motion is defined per clip, not per frame: a position at normalised clip time
``tau = t / (n_frames - 1)`` (``tau = 0`` for a single frame), so rendering a clip with 24 frames
and sub-sampling 8 of them follows the same trajectory as rendering 8 frames directly.

Image coordinates are normalised to ``[0, 1)`` on both axes (``x`` to the right, ``y`` down);
directions are in degrees, counter-clockwise from "right" (90 = up on screen).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ANNOTATION_KEYS",
    "BACKGROUND_COLOURS",
    "COLOURS",
    "KINDS",
    "equalize_luminance",
    "SHAPES",
    "annotation",
    "caption",
    "render_video",
    "rgb_to_yuv420p",
    "sample_stimulus_params",
    "text_descriptions",
    "write_mp4",
]

#: Stimulus families. ``shapes`` and ``dots`` are objects on a background; the others are
#: full-field patterns made of two colours.
KINDS: tuple[str, ...] = ("shapes", "grating", "plaid", "texture", "checkerboard", "dots")

#: Object shapes drawn in ``shapes`` stimuli.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "ring", "cross", "star")

#: Foreground colour names and their sRGB values.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 50),
    "green": (50, 170, 60),
    "cyan": (60, 205, 225),
    "blue": (40, 80, 225),
    "purple": (135, 60, 195),
    "magenta": (225, 60, 205),
    "pink": (250, 155, 185),
    "brown": (135, 85, 40),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}

#: Background colour names and their sRGB values.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (10, 10, 10),
    "dark blue": (20, 30, 90),
    "dark green": (20, 65, 30),
    "dark red": (90, 20, 20),
    "gray": (128, 128, 128),
    "light gray": (205, 205, 205),
    "white": (250, 250, 250),
    "beige": (225, 210, 170),
    "sky blue": (140, 190, 235),
    "olive": (110, 110, 40),
}

# Named directions: (name, degrees counter-clockwise from "right", phrase used in captions).
_DIRECTIONS: tuple[tuple[str, float, str], ...] = (
    ("right", 0.0, "to the right"),
    ("upper right", 45.0, "toward the upper right"),
    ("up", 90.0, "upward"),
    ("upper left", 135.0, "toward the upper left"),
    ("left", 180.0, "to the left"),
    ("lower left", 225.0, "toward the lower left"),
    ("down", 270.0, "downward"),
    ("lower right", 315.0, "toward the lower right"),
)
_DIRECTION_PHRASE = {name: phrase for name, _, phrase in _DIRECTIONS}

_SIZES: dict[str, tuple[float, float]] = {
    "small": (0.06, 0.09),
    "medium": (0.10, 0.14),
    "large": (0.15, 0.20),
}
_BACKGROUND_STYLES = ("plain", "gradient", "noise")
_WAVEFORMS = ("sine", "square")
_TEXTURE_STYLES = ("cloudy", "spotted", "streaky")
_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
_PLURALS = {"cross": "crosses"}

# Vocabulary for annotations (synonyms an annotator might use).
_OBJECT_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "ball", "dot", "coin"),
    "square": ("square", "box", "tile", "block", "cube"),
    "triangle": ("triangle", "arrowhead", "pyramid", "wedge", "sign"),
    "diamond": ("diamond", "rhombus", "kite", "gem", "tile"),
    "ring": ("ring", "donut", "hoop", "bagel", "wheel"),
    "cross": ("cross", "plus sign", "intersection", "bandage", "button"),
    "star": ("star", "starfish", "sparkle", "asterisk", "badge"),
    "grating": ("stripes", "lines", "bars", "grating", "zebra pattern"),
    "plaid": ("plaid", "tartan", "mesh", "grid", "fabric"),
    "texture": ("clouds", "smoke", "fabric", "marble", "paint"),
    "checkerboard": ("checkerboard", "chessboard", "tiles", "grid", "board"),
    "dots": ("dots", "particles", "snowflakes", "stars", "confetti"),
}
_SCENE_WORDS: dict[str, tuple[str, ...]] = {
    "shapes": ("computer screen", "abstract background", "animation studio", "playroom", "sky"),
    "dots": ("night sky", "outer space", "computer screen", "snowfield", "abstract background"),
    "grating": ("computer screen", "laboratory", "abstract background", "fabric store", "wall"),
    "plaid": ("fabric store", "bedroom", "abstract background", "clothing store", "computer screen"),
    "texture": ("sky", "abstract background", "art studio", "underwater", "computer screen"),
    "checkerboard": ("game room", "bathroom", "computer screen", "abstract background", "floor"),
}
_ACTION_WORDS: dict[str, tuple[str, ...]] = {
    "shapes": ("drifting", "moving", "floating", "sliding", "gliding", "traveling"),
    "dots": ("moving", "drifting", "flowing", "floating", "swarming", "traveling"),
    "grating": ("drifting", "moving", "sliding", "scrolling", "flowing", "shifting"),
    "plaid": ("drifting", "moving", "sliding", "scrolling", "shifting", "flowing"),
    "texture": ("panning", "flowing", "drifting", "moving", "swirling", "shifting"),
    "checkerboard": ("sliding", "moving", "scrolling", "drifting", "shifting", "flickering"),
}
_MOTION_VERB = {
    "shapes": "drifting",
    "dots": "moving",
    "grating": "drifting",
    "plaid": "drifting",
    "texture": "panning",
    "checkerboard": "sliding",
}

_AV_CODEC_FLAG_BITEXACT = 1 << 23  # FFmpeg's AV_CODEC_FLAG_BITEXACT

#: Keys of one BMD ``annotations.json`` entry, as produced by :func:`annotation`.
ANNOTATION_KEYS: tuple[str, ...] = (
    "MiT_url", "MiT_filename", "set", "bmd_matrixfilename", "objects", "THINGS_uniqueID",
    "scenes", "PLACES365_classID", "actions", "MiT_classID", "text_descriptions",
    "spoken_transcription", "memorability_score", "memorability_decay",
)


# ----------------------------------------------------------------------------------------------
# Parameter sampling
# ----------------------------------------------------------------------------------------------


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def _colour_distance(a: Sequence[int], b: Sequence[int]) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))


def _pick_colour(
    rng: np.random.Generator, avoid: Sequence[Sequence[int]], min_distance: float = 120.0
) -> str:
    """Pick a foreground colour name at least ``min_distance`` (RGB units) from ``avoid``."""
    names = [n for n, rgb in COLOURS.items()
             if all(_colour_distance(rgb, a) >= min_distance for a in avoid)]
    if not names:  # pragma: no cover - palette always has distant colours
        names = list(COLOURS)
    return names[int(rng.integers(len(names)))]


def _jitter_rgb(rng: np.random.Generator, rgb: Sequence[int], amount: int = 12) -> list[int]:
    noise = rng.integers(-amount, amount + 1, size=3)
    return [int(v) for v in np.clip(np.asarray(rgb) + noise, 0, 255)]


def sample_stimulus_params(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Draw parameters for ``n`` stimuli.

    Parameters
    ----------
    n : int
        Number of stimuli (>= 0).
    rng : numpy.random.Generator
        The only source of randomness; the same generator state gives the same parameters.

    Returns
    -------
    list of dict
        ``n`` dicts of plain Python types (``json.dumps`` works on them). Keys common to every
        kind: ``kind``, ``fg_colour``/``fg_rgb``, ``fg2_colour``/``fg2_rgb`` (second pattern
        colour), ``bg_colour``/``bg_rgb``, ``background`` (``plain``/``gradient``/``noise``),
        ``contrast`` (0.5-1), ``brightness`` (luminance gain 0.75-1.25), ``direction`` (name),
        ``direction_deg``, ``speed`` (image widths travelled per clip), ``seed`` (for texture
        and dot layouts). Kind-specific keys: ``shape``, ``n_objects``, ``size``, ``radius``,
        ``positions`` (list of ``[x, y]``), ``spin_deg`` (rotation per clip) for ``shapes`` and
        ``dots``; ``spatial_frequency`` (cycles per image), ``orientation_deg`` (of the stripe
        normal), ``waveform`` for ``grating``; ``spatial_frequency2``, ``orientation2_deg`` for
        ``plaid``; ``texture_scale`` (cycles per image), ``texture_style`` for ``texture``.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [_sample_one(rng) for _ in range(int(n))]


def _sample_one(rng: np.random.Generator) -> dict[str, Any]:
    kind = KINDS[int(rng.integers(len(KINDS)))]
    bg_name = list(BACKGROUND_COLOURS)[int(rng.integers(len(BACKGROUND_COLOURS)))]
    bg_rgb = _jitter_rgb(rng, BACKGROUND_COLOURS[bg_name], 8)
    fg_name = _pick_colour(rng, [BACKGROUND_COLOURS[bg_name]])
    fg_rgb = _jitter_rgb(rng, COLOURS[fg_name])
    fg2_name = _pick_colour(rng, [COLOURS[fg_name]], 150.0)
    fg2_rgb = _jitter_rgb(rng, COLOURS[fg2_name])
    d_index = int(rng.integers(len(_DIRECTIONS)))
    d_name, d_deg, _ = _DIRECTIONS[d_index]
    p: dict[str, Any] = {
        "kind": kind,
        "fg_colour": fg_name,
        "fg_rgb": fg_rgb,
        "fg2_colour": fg2_name,
        "fg2_rgb": fg2_rgb,
        "bg_colour": bg_name,
        "bg_rgb": bg_rgb,
        "background": _BACKGROUND_STYLES[int(rng.integers(len(_BACKGROUND_STYLES)))],
        "contrast": _r(rng.uniform(0.5, 1.0)),
        "brightness": _r(rng.uniform(0.75, 1.25)),
        "direction": d_name,
        "direction_deg": _r(d_deg + rng.uniform(-12.0, 12.0), 2),
        "speed": _r(rng.uniform(0.15, 0.6)),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }
    if kind in ("shapes", "dots"):
        if kind == "shapes":
            n_obj = int(rng.integers(1, 6))
            size = ("small", "medium", "large")[int(rng.integers(3))]
            lo, hi = _SIZES[size]
            p["shape"] = SHAPES[int(rng.integers(len(SHAPES)))]
            p["spin_deg"] = _r(rng.choice([0.0, 1.0]) * rng.uniform(-270.0, 270.0), 2)
        else:
            n_obj = int(rng.integers(12, 41))
            size = "small"
            lo, hi = 0.012, 0.028
            p["shape"] = "circle"
            p["spin_deg"] = 0.0
        p["n_objects"] = n_obj
        p["size"] = size
        p["radius"] = _r(rng.uniform(lo, hi))
        p["positions"] = [[_r(x), _r(y)] for x, y in rng.uniform(0.0, 1.0, size=(n_obj, 2))]
    elif kind in ("grating", "plaid", "checkerboard"):
        p["spatial_frequency"] = _r(np.exp(rng.uniform(np.log(1.5), np.log(12.0))), 3)
        # Gratings drift along their normal, so the stripe normal is the motion direction.
        p["orientation_deg"] = _r(p["direction_deg"] % 180.0, 2) if kind == "grating" else _r(
            rng.uniform(0.0, 180.0), 2)
        p["waveform"] = _WAVEFORMS[int(rng.integers(2))] if kind != "checkerboard" else "square"
        if kind == "plaid":
            p["orientation2_deg"] = _r((p["orientation_deg"] + rng.uniform(45.0, 135.0)) % 180, 2)
            p["spatial_frequency2"] = _r(p["spatial_frequency"] * rng.uniform(0.6, 1.6), 3)
    elif kind == "texture":
        p["texture_scale"] = _r(np.exp(rng.uniform(np.log(2.0), np.log(14.0))), 3)
        p["texture_style"] = _TEXTURE_STYLES[int(rng.integers(len(_TEXTURE_STYLES)))]
        p["orientation_deg"] = _r(rng.uniform(0.0, 180.0), 2)
    return p


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _unit(deg: float) -> tuple[float, float]:
    """Image-coordinate unit vector (y down) for an angle counter-clockwise from right."""
    a = math.radians(deg)
    return math.cos(a), -math.sin(a)


def _square_wave(phase: np.ndarray, cycles_per_pixel: float) -> np.ndarray:
    """Antialiased square wave in [-1, 1] from a phase in radians (about one-pixel edges)."""
    gain = phase.dtype.type(1.0 / max(2.0 * math.pi * cycles_per_pixel, 1e-6))
    out = np.sin(phase)
    out *= gain
    return np.clip(out, -1.0, 1.0, out=out)


def _wave(phase: np.ndarray, waveform: str, sf: float, size: int) -> np.ndarray:
    if waveform == "square":
        return _square_wave(phase, sf / size)
    return np.sin(phase)


def _texture_field(
    seed: int, scale: float, u: np.ndarray, v: np.ndarray, shift: np.ndarray,
    orientation_deg: float | None = None, n_components: int = 48,
) -> np.ndarray:
    """Band-limited random field (sum of sinusoids), computed separably with matrix products.

    Parameters
    ----------
    seed : int
        Seed of the component frequencies, orientations and phases.
    scale : float
        Centre spatial frequency in cycles per image.
    u, v : numpy.ndarray, shape (W,) and (H,)
        Normalised pixel-centre coordinates.
    shift : numpy.ndarray, shape (F, 2)
        Translation of the field in each frame (image units, ``[dx, dy]``).
    orientation_deg : float, optional
        If given, components concentrate around this orientation (streaky texture).

    Returns
    -------
    numpy.ndarray, shape (F, H, W)
        Zero-mean field with unit variance (approximately).
    """
    g = np.random.default_rng(seed)
    freq = scale * np.exp(g.normal(0.0, 0.35, n_components))
    if orientation_deg is None:
        theta = g.uniform(0.0, 2.0 * np.pi, n_components)
    else:
        theta = np.deg2rad(orientation_deg) + g.normal(0.0, 0.15, n_components)
    phase = g.uniform(0.0, 2.0 * np.pi, n_components)
    kx = 2.0 * np.pi * freq * np.cos(theta)  # (K,)
    ky = 2.0 * np.pi * freq * np.sin(theta)
    # field(t, y, x) = sum_k cos(kx (x - sx_t) + ky (y - sy_t) + phi_k)
    c = phase[None, :] - kx[None, :] * shift[:, :1] - ky[None, :] * shift[:, 1:]  # (F, K)
    ay = ky[None, None, :] * v[None, :, None] + c[:, None, :]  # (F, H, K)
    ax = kx[None, :] * u[:, None]  # (W, K)
    left = np.concatenate([np.cos(ay), -np.sin(ay)], axis=2)  # (F, H, 2K)
    right = np.concatenate([np.cos(ax), np.sin(ax)], axis=1).T  # (2K, W)
    # einsum (not BLAS matmul): single-threaded, no dependence on the BLAS build.
    return np.einsum("fhk,kw->fhw", left, right) * math.sqrt(2.0 / n_components)


def _background(p: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Background image, shape (H, W, 3), floats in [0, 1]."""
    bg = np.asarray(p["bg_rgb"], dtype=np.float64) / 255.0
    h, w = v.size, u.size
    style = p.get("background", "plain")
    if style == "plain":
        return np.broadcast_to(bg, (h, w, 3)).copy()
    g = np.random.default_rng(int(p["seed"]) + 1)
    if style == "gradient":
        ang = g.uniform(0.0, 2.0 * np.pi)
        ramp = (np.cos(ang) * (u[None, :] - 0.5) + np.sin(ang) * (v[:, None] - 0.5))  # +-0.7
        gain = 1.0 + 0.9 * ramp
        return np.clip(bg[None, None, :] * gain[..., None] + 0.25 * ramp[..., None], 0.0, 1.0)
    if style == "noise":
        field = _texture_field(int(p["seed"]) + 2, g.uniform(3.0, 10.0), u, v, np.zeros((1, 2)))[0]
        return np.clip(bg[None, None, :] + 0.12 * field[..., None], 0.0, 1.0)
    raise ValueError(f"unknown background style {style!r}; expected one of {_BACKGROUND_STYLES}")


def _shape_sdf(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Approximate signed distance (image units) to a shape of circumradius ``r``; y is up."""
    ax, ay = np.abs(x), np.abs(y)
    if shape == "circle":
        return np.hypot(x, y) - r
    if shape == "square":
        return np.maximum(ax, ay) - 0.75 * r
    if shape == "diamond":  # rhombus, 0.7 r wide and r tall (distinct from a rotated square)
        return (ax + 0.7 * ay - 0.7 * r) * (1.0 / math.hypot(1.0, 0.7))
    if shape == "triangle":
        return np.maximum(-y, ax * (math.sqrt(3.0) / 2.0) + 0.5 * y) - 0.5 * r
    if shape == "ring":
        return np.abs(np.hypot(x, y) - 0.72 * r) - 0.28 * r
    if shape == "cross":
        arm = 0.3 * r
        return np.minimum(np.maximum(ax - arm, ay - r), np.maximum(ax - r, ay - arm))
    if shape == "star":
        rad = np.hypot(x, y)
        ang = np.arctan2(y, x) - math.pi / 2.0
        return rad - r * (0.7 + 0.3 * np.cos(5.0 * ang))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _object_alpha(
    p: Mapping[str, Any], tau: np.ndarray, shift: np.ndarray, size: int
) -> np.ndarray:
    """Coverage of all objects, shape (F, H, W) in [0, 1].

    Each object is evaluated only on a square pixel patch around it (wrapping around the image
    edges, so objects leaving one side re-enter on the other), for all objects and frames at once;
    overlapping objects combine with a maximum.
    """
    n_frames = tau.size
    pos = np.asarray(p["positions"], dtype=np.float64).reshape(-1, 2)  # (N, 2)
    r = float(p["radius"])
    spin = math.radians(float(p.get("spin_deg", 0.0)))
    g = np.random.default_rng(int(p["seed"]) + 3)
    angles0 = g.uniform(0.0, 2.0 * np.pi, len(pos))
    patch = min(size, int(math.ceil(2.0 * (1.1 * r * size + 1.5))) + 1)
    cx = pos[None, :, 0] + shift[:, None, 0]  # (F, N)
    cy = pos[None, :, 1] + shift[:, None, 1]
    steps = np.arange(patch)
    ix = (np.floor(cx * size - patch / 2.0).astype(np.int64)[..., None] + steps) % size  # (F,N,P)
    iy = (np.floor(cy * size - patch / 2.0).astype(np.int64)[..., None] + steps) % size
    # Periodic offsets from the object centre (image units), x to the right and y up.
    ox = ((ix + 0.5) / size - cx[..., None] + 0.5) % 1.0 - 0.5  # (F, N, P)
    oy = -(((iy + 0.5) / size - cy[..., None] + 0.5) % 1.0 - 0.5)
    ang = angles0[None, :] + spin * tau[:, None]  # (F, N)
    ca, sa = np.cos(ang)[..., None, None], np.sin(ang)[..., None, None]
    x, y = ox[:, :, None, :], oy[:, :, :, None]  # (F, N, 1, P), (F, N, P, 1)
    lx = ca * x + sa * y
    ly = -sa * x + ca * y
    a = np.clip(0.5 - _shape_sdf(str(p["shape"]), lx, ly, r) * size, 0.0, 1.0)  # (F, N, P, P)
    flat = (np.arange(n_frames)[:, None, None, None] * (size * size)
            + iy[:, :, :, None] * size + ix[:, :, None, :])
    alpha = np.zeros(n_frames * size * size)
    np.maximum.at(alpha, flat.ravel(), a.ravel())
    return alpha.reshape(n_frames, size, size)


def equalize_luminance(frames: np.ndarray, mean: float = 128.0, std: float = 48.0) -> np.ndarray:
    """Give a video a fixed mean luminance and luminance contrast (as SHINE-style equalisation).

    One affine map ``a * x + b`` is applied to all channels of all frames so that the video's
    luminance (BT.601 weights) has the given mean and standard deviation; hue is kept. Without
    it, global brightness and colour dominate every layer of a random network, and its layers
    become nearly indistinguishable (linear CKA ≥ 0.94 between adjacent vgg11 layers).

    Parameters
    ----------
    frames : ndarray, uint8, shape (T, H, W, 3)
    mean, std : float
        Target luminance mean and standard deviation (0–255 scale).

    Returns
    -------
    ndarray, uint8, shape (T, H, W, 3)
    """
    x = np.asarray(frames, dtype=np.float64)
    lum = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    sd = float(lum.std())
    gain = std / sd if sd > 1e-6 else 1.0
    out = (x - float(lum.mean())) * gain + mean
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_video(params: Mapping[str, Any], n_frames: int, size: int) -> np.ndarray:
    """Render the frames of one stimulus.

    Parameters
    ----------
    params : mapping
        One dict from :func:`sample_stimulus_params`.
    n_frames : int
        Number of frames (>= 1); the motion covers the whole clip whatever the frame count.
    size : int
        Frame height and width in pixels (>= 8).

    Returns
    -------
    numpy.ndarray, shape (n_frames, size, size, 3), dtype uint8
        RGB frames.
    """
    n_frames, size = int(n_frames), int(size)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    kind = params.get("kind")
    if kind not in KINDS:
        raise ValueError(f"params['kind'] must be one of {KINDS}, got {kind!r}")

    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    u, v = coords, coords  # x (W,), y (H,)
    tau = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    dx, dy = _unit(float(params["direction_deg"]))
    travel = float(params["speed"]) * tau  # (F,)
    shift = np.stack([dx * travel, dy * travel], axis=1)  # (F, 2)
    contrast = float(params["contrast"])
    fg = np.asarray(params["fg_rgb"], dtype=np.float64) / 255.0
    bg = np.asarray(params["bg_rgb"], dtype=np.float64) / 255.0
    fg2 = np.asarray(params["fg2_rgb"], dtype=np.float64) / 255.0

    gain = 255.0 * float(params["brightness"])  # luminance gain, folded into the colours
    f32 = np.float32
    if kind in ("shapes", "dots"):
        back = _background(params, u, v)  # (H, W, 3)
        colour = back.mean(axis=(0, 1)) + contrast * (fg - back.mean(axis=(0, 1)))
        alpha = _object_alpha(params, tau, shift, size).astype(f32)[..., None]  # (F, H, W, 1)
        back32 = (back * gain).astype(f32)
        img = back32 + alpha * ((colour * gain).astype(f32) - back32)
    else:
        if kind == "texture":
            streaky = params["texture_style"] == "streaky"
            orient = float(params["orientation_deg"]) if streaky else None
            field = _texture_field(int(params["seed"]), float(params["texture_scale"]), u, v,
                                   shift, orient).astype(f32)
            if params["texture_style"] == "spotted":
                mix = 1.0 / (1.0 + np.exp(f32(-6.0) * (field - f32(0.9))))
            else:
                mix = f32(0.5) + f32(0.5) * np.tanh(f32(1.2) * field)
            a, b = fg, fg2
        else:
            sf = float(params["spatial_frequency"])
            nx, ny = _unit(float(params["orientation_deg"]))
            x = (u[None, None, :] - shift[:, 0, None, None]).astype(f32)  # (F, 1, W)
            y = (v[None, :, None] - shift[:, 1, None, None]).astype(f32)  # (F, H, 1)
            k = 2.0 * np.pi * sf
            w1 = _wave(f32(k * nx) * x + f32(k * ny) * y, str(params["waveform"]), sf, size)
            if kind == "grating":
                wave = w1
                a, b = fg, bg
            elif kind == "plaid":
                sf2 = float(params["spatial_frequency2"])
                mx, my = _unit(float(params["orientation2_deg"]))
                k2 = 2.0 * np.pi * sf2
                w2 = _wave(f32(k2 * mx) * x + f32(k2 * my) * y, str(params["waveform"]), sf2, size)
                wave = f32(0.5) * (w1 + w2)
                a, b = fg, fg2
            else:  # checkerboard
                w2 = _square_wave(f32(-k * ny) * x + f32(k * nx) * y, sf / size)
                wave = w1 * w2
                a, b = fg, bg
            mix = f32(0.5) + f32(0.5) * wave
        mean = 0.5 * (a + b)
        a = (mean + contrast * (a - mean)) * gain
        b = (mean + contrast * (b - mean)) * gain
        img = b.astype(f32) + mix[..., None] * (a - b).astype(f32)
    np.clip(img, 0.0, 255.0, out=img)
    return np.rint(img, out=img).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Language
# ----------------------------------------------------------------------------------------------


def _count_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _plural(word: str, n: int) -> str:
    return word if n == 1 else _PLURALS.get(word, word + "s")


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _freq_word(sf: float) -> str:
    return "coarse" if sf < 3.0 else ("fine" if sf > 7.0 else "medium-width")


def _speed_word(speed: float) -> str:
    return "slowly" if speed < 0.3 else ("quickly" if speed > 0.45 else "steadily")


def _parts(p: Mapping[str, Any]) -> dict[str, str]:
    """Subject, background and motion phrases shared by the caption templates."""
    kind = p["kind"]
    bg_word = {"plain": "", "gradient": "shaded ", "noise": "mottled "}[p.get("background", "plain")]
    background = f"{bg_word}{p['bg_colour']}"
    if kind == "shapes":
        n = int(p["n_objects"])
        noun = _plural(str(p["shape"]), n)
        count = "a" if n == 1 else _count_word(n)
        if n == 1:
            subject = f"{_article(p['size'] + ' ' + p['fg_colour'])} {noun}"
        else:
            subject = f"{count} {p['size']} {p['fg_colour']} {noun}"
        if abs(float(p.get("spin_deg", 0.0))) >= 90.0:
            subject += " that spin" if n > 1 else " that spins"
    elif kind == "dots":
        subject = f"a field of {_count_word(int(p['n_objects']))} small {p['fg_colour']} dots"
    elif kind == "grating":
        style = "sine-wave" if p["waveform"] == "sine" else "striped"
        subject = (f"{_article(_freq_word(float(p['spatial_frequency'])))} {p['fg_colour']} and "
                   f"{p['bg_colour']} {style} grating")
    elif kind == "plaid":
        subject = (f"{_article(_freq_word(float(p['spatial_frequency'])))} plaid of "
                   f"{p['fg_colour']} and {p['fg2_colour']} stripes")
    elif kind == "texture":
        subject = f"{_article(str(p['texture_style']))} {p['fg_colour']} and {p['fg2_colour']} texture"
    elif kind == "checkerboard":
        subject = (f"{_article(_freq_word(float(p['spatial_frequency'])))} {p['fg_colour']} and "
                   f"{p['bg_colour']} checkerboard")
    else:
        raise ValueError(f"params['kind'] must be one of {KINDS}, got {kind!r}")
    has_bg = kind in ("shapes", "dots")
    return {
        "subject": subject,
        "background": background,
        "bg_phrase": f" on {_article(background)} background" if has_bg else "",
        "direction": _DIRECTION_PHRASE[p["direction"]],
        "verb": _MOTION_VERB[kind],
        "speed": _speed_word(float(p["speed"])),
        "has_bg": "1" if has_bg else "",
    }


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + "."


def caption(params: Mapping[str, Any]) -> str:
    """Describe a stimulus in one English sentence.

    Parameters
    ----------
    params : mapping
        One dict from :func:`sample_stimulus_params`.

    Returns
    -------
    str
        E.g. ``"Three small red circles drifting to the left on a dark blue background."``; the
        sentence names the colour(s), the shape or pattern, the motion direction and (for
        object stimuli) the background colour.
    """
    q = _parts(params)
    return _sentence(f"{q['subject']} {q['verb']} {q['direction']}{q['bg_phrase']}")


def text_descriptions(params: Mapping[str, Any]) -> list[str]:
    """Five paraphrased descriptions of a stimulus (the first is :func:`caption`).

    Parameters
    ----------
    params : mapping
        One dict from :func:`sample_stimulus_params`.

    Returns
    -------
    list of str, length 5
    """
    q = _parts(params)
    s, d = q["subject"], q["direction"]
    bg_tail = f" over {_article(q['background'])} backdrop" if q["has_bg"] else ""
    with_bg = f"{_article(q['background'])} background with " if q["has_bg"] else ""
    return [
        caption(params),
        _sentence(f"{with_bg}{s} moving {d}"),
        _sentence(f"{s} {q['speed']} sliding {d}{bg_tail}"),
        _sentence(f"an animation of {s} that moves {d}{q['bg_phrase']}"),
        _sentence(f"we see {s} travelling {d}{q['bg_phrase']}"),
    ]


def _digest(params: Mapping[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _label_id(label: str, modulus: int) -> int:
    return int(hashlib.sha256(label.encode()).hexdigest()[:8], 16) % modulus


def annotation(
    params: Mapping[str, Any], set_name: str, index: int | None = None
) -> dict[str, Any]:
    """Build an entry shaped like one value of BMD's ``annotations.json``.

    All values are derived deterministically from ``params`` (no randomness). Nested fields
    follow BMD: ``objects`` is a list of 5-7 annotator groups of three labels (``"--"`` marks an
    absent additional object) with ``THINGS_uniqueID`` paired element-wise; ``scenes`` (5-8
    labels) pairs with ``PLACES365_classID``; ``actions`` (5-7 labels) pairs with
    ``MiT_classID``. Ontology IDs are synthetic (stable hashes of the label).

    Parameters
    ----------
    params : mapping
        One dict from :func:`sample_stimulus_params`.
    set_name : {"train", "test"}
        The BMD split the stimulus belongs to.
    index : int, optional
        1-based stimulus number; sets ``bmd_matrixfilename`` to ``f"{index:04d}.mp4"``. Without
        it ``bmd_matrixfilename`` is the empty string and the caller should fill it in.

    Returns
    -------
    dict
        Keys: ``MiT_url``, ``MiT_filename``, ``set``, ``bmd_matrixfilename``, ``objects``,
        ``THINGS_uniqueID``, ``scenes``, ``PLACES365_classID``, ``actions``, ``MiT_classID``,
        ``text_descriptions`` (5 sentences), ``spoken_transcription``, ``memorability_score``
        (0-1), ``memorability_decay`` (negative, per 100 s).
    """
    if set_name not in ("train", "test"):
        raise ValueError(f"set_name must be 'train' or 'test', got {set_name!r}")
    if index is not None and int(index) < 1:
        raise ValueError(f"index must be a positive stimulus number, got {index}")
    kind = params["kind"]
    digest = _digest(params)
    h = [int(digest[i:i + 2], 16) / 255.0 for i in range(0, 16, 2)]  # 8 stable numbers in [0, 1]
    key = str(params["shape"]) if kind == "shapes" else kind
    words = _OBJECT_WORDS[key]
    n_groups = 5 + int(h[0] * 2.999)
    extra = "background" if kind in ("shapes", "dots") else "--"
    objects = []
    for i in range(n_groups):
        group = [words[i % len(words)], extra if i % 2 == 0 else "--", "--"]
        objects.append(group)
    things = [[w.replace(" ", "_") if w != "--" else "--" for w in g] for g in objects]
    scene_words = list(_SCENE_WORDS[kind])
    n_scenes = 5 + int(h[1] * 3.999)
    scenes = [scene_words[i % len(scene_words)] for i in range(n_scenes)]
    action_words = list(_ACTION_WORDS[kind])
    if abs(float(params.get("spin_deg", 0.0))) >= 90.0:
        action_words.insert(1, "spinning")
    n_actions = 5 + int(h[2] * 2.999)
    actions = [action_words[i % len(action_words)] for i in range(n_actions)]
    q = _parts(params)
    spoken = f"so there's {q['subject']} {q['verb']} {q['direction']}{q['bg_phrase']}"
    n_obj = int(params.get("n_objects", 1))
    memorability = 0.62 + 0.12 * float(params["contrast"]) + 0.04 * min(n_obj, 5) / 5 + 0.1 * h[3]
    decay = -(0.005 + 0.08 * h[4])
    slug = f"{_MOTION_VERB[kind]}/synthetic_{kind}_{digest[:12]}.mp4"
    return {
        "MiT_url": f"https://synthetic.invalid/moments/{slug}",
        "MiT_filename": slug,
        "set": set_name,
        "bmd_matrixfilename": f"{int(index):04d}.mp4" if index is not None else "",
        "objects": objects,
        "THINGS_uniqueID": things,
        "scenes": scenes,
        "PLACES365_classID": [_label_id(s, 365) for s in scenes],
        "actions": actions,
        "MiT_classID": [_label_id(a, 339) for a in actions],
        "text_descriptions": text_descriptions(params),
        "spoken_transcription": spoken,
        "memorability_score": _r(min(memorability, 0.99)),
        "memorability_decay": _r(decay),
    }


# ----------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------


def rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """Convert RGB frames to planar YUV 4:2:0 (BT.601, limited range), as PyAV lays it out.

    Chroma is the 2x2 box average of the RGB values, converted with the same matrix.

    Parameters
    ----------
    frames : numpy.ndarray, shape (T, H, W, 3), dtype uint8
        RGB frames with even ``H`` and ``W``.

    Returns
    -------
    numpy.ndarray, shape (T, H * 3 // 2, W), dtype uint8
        Per frame: the ``H`` rows of Y, then U and V (each ``H/2 x W/2``, flattened into
        ``H/4`` rows of width ``W``).
    """
    t, h, w, _ = frames.shape
    rgb = frames.astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Elementwise arithmetic only (no BLAS), so results do not depend on the machine's kernels.
    y = 16.0 + 0.256788 * r + 0.504129 * g + 0.097906 * b  # (T, H, W)
    sub = 0.25 * ((rgb[:, 0::2, 0::2] + rgb[:, 1::2, 0::2]) + (rgb[:, 0::2, 1::2] + rgb[:, 1::2, 1::2]))
    sr, sg, sb = sub[..., 0], sub[..., 1], sub[..., 2]  # (T, H/2, W/2)
    u = 128.0 - 0.148223 * sr - 0.290993 * sg + 0.439216 * sb
    v = 128.0 + 0.439216 * sr - 0.367788 * sg - 0.071427 * sb
    out = np.empty((t, h * 3 // 2, w), dtype=np.uint8)
    flat = out.reshape(t, -1)
    n_y, n_c = h * w, (h // 2) * (w // 2)

    def _u8(a: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(a), 0, 255).astype(np.uint8).reshape(t, -1)

    flat[:, :n_y] = _u8(y)
    flat[:, n_y:n_y + n_c] = _u8(u)
    flat[:, n_y + n_c:] = _u8(v)
    return out


def write_mp4(path: str | os.PathLike[str], frames: np.ndarray, fps: int = 8) -> Path:
    """Encode RGB frames to an H.264 mp4, deterministically and atomically.

    The same frames give byte-identical files on the same PyAV/FFmpeg/x264 build:

    - the RGB to YUV 4:2:0 conversion is done here in numpy (:func:`rgb_to_yuv420p`) rather than by
      FFmpeg's swscale inside the encoder, whose output was observed to vary between calls;
    - x264 runs single-threaded (``threads=1``, no sliced or lookahead threads);
    - the coding is lossless (``qp=0``, preset ``ultrafast``): decoding returns exactly the YUV
      frames given, whatever choices the encoder makes. Lossy ``crf`` coding with preset ``medium``
      was observed to give different bytes for the same frames in about 1 of 3 calls;
    - frame timestamps use a fixed ``1/fps`` time base (the muxer may rewrite the stream's);
    - muxer and encoder use FFmpeg's ``bitexact`` flags (no version strings or creation times in
      the container) and timestamps are simply ``0, 1, 2, ...`` in units of ``1/fps``.

    Colour: BT.601 limited-range ``yuv420p``. The file is written to a temporary name in the
    target directory and moved into place with :func:`os.replace`, so a failure never leaves a
    partial file.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.mp4`` path; its parent directory is created if needed.
    frames : numpy.ndarray, shape (T, H, W, 3), dtype uint8
        RGB frames; ``H`` and ``W`` must be even (4:2:0 chroma subsampling), ``T >= 1``.
    fps : int, default 8
        Frame rate.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    import av  # local import: keeps ``import alignpatterns.synth.stimuli`` light

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must have shape (T, H, W, 3) with T >= 1, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"frame height and width must be even for yuv420p, got {height}x{width}")
    if int(fps) < 1:
        raise ValueError(f"fps must be a positive integer, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.mp4", dir=path.parent)
    os.close(fd)
    try:
        rate = Fraction(int(fps), 1)
        with av.open(tmp, mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream(
                "libx264", rate=rate,
                options={"qp": "0", "preset": "ultrafast", "threads": "1",
                         "x264-params": "threads=1:sliced-threads=0:lookahead-threads=1"},
            )
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            rate_tb = Fraction(1, int(fps))
            stream.time_base = rate_tb
            stream.codec_context.thread_count = 1
            stream.codec_context.flags = int(stream.codec_context.flags) | _AV_CODEC_FLAG_BITEXACT
            for i, yuv in enumerate(rgb_to_yuv420p(frames)):
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts = i
                frame.time_base = rate_tb  # fixed: the muxer may change stream.time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path

