"""Tests for the procedural stimulus generator (alignpatterns.synth.stimuli)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from alignpatterns.synth import stimuli as S


@pytest.fixture(scope="module")
def params() -> list[dict]:
    return S.sample_stimulus_params(120, np.random.default_rng(7))


def test_params_json_serialisable_and_deterministic(params):
    again = S.sample_stimulus_params(120, np.random.default_rng(7))
    assert json.dumps(params, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert json.loads(json.dumps(params)) == params  # plain Python types only
    other = S.sample_stimulus_params(120, np.random.default_rng(8))
    assert json.dumps(other, sort_keys=True) != json.dumps(params, sort_keys=True)


def test_params_vary_meaningfully(params):
    kinds = {p["kind"] for p in params}
    assert kinds == set(S.KINDS)
    assert len({p["fg_colour"] for p in params}) >= 8
    assert len({p["bg_colour"] for p in params}) >= 6
    assert len({p["direction"] for p in params}) == 8
    shapes = [p for p in params if p["kind"] == "shapes"]
    assert len({p["shape"] for p in shapes}) >= 4
    assert len({p["n_objects"] for p in shapes}) >= 3
    assert len({p["size"] for p in shapes}) == 3
    sfs = [p["spatial_frequency"] for p in params if "spatial_frequency" in p]
    assert max(sfs) / min(sfs) > 4
    for p in params:
        assert S.caption(p) and p["fg_rgb"] != p["bg_rgb"]


def test_render_shape_dtype_motion_and_speed(params):
    t0 = time.process_time()  # CPU time: robust to other jobs sharing the machine
    videos = [S.render_video(p, 8, 112) for p in params]
    elapsed = time.process_time() - t0
    for p, v in zip(params, videos, strict=True):
        assert v.shape == (8, 112, 112, 3) and v.dtype == np.uint8
        # Content moves: first and last frames differ.
        diff = np.abs(v[0].astype(int) - v[-1].astype(int)).mean()
        assert diff > 0.5, (p["kind"], diff)
        # Not a blank frame.
        assert v[0].std() > 2.0, p["kind"]
    # 120 videos (about 0.5 s here); the budget for 200 is well under 5 s.
    assert elapsed < 3.0, elapsed
    # Distinct stimuli give distinct images.
    flat = np.stack([v[0].reshape(-1).astype(np.float32) for v in videos])
    dists = np.abs(flat[:, None, :10000] - flat[None, :, :10000]).mean(-1)
    assert dists[~np.eye(len(videos), dtype=bool)].min() > 1.0


def test_render_deterministic_and_frame_count_independent(params):
    p = next(q for q in params if q["kind"] == "shapes")
    a = S.render_video(p, 9, 64)
    assert np.array_equal(a, S.render_video(p, 9, 64))
    # Motion is defined per clip: frames 0, 4, 8 of 9 equal frames 0, 1, 2 of 3.
    b = S.render_video(p, 3, 64)
    assert np.abs(a[[0, 4, 8]].astype(int) - b.astype(int)).max() <= 1


def test_render_colours_match_params():
    p = S.sample_stimulus_params(1, np.random.default_rng(0))[0]
    p.update(kind="shapes", shape="square", n_objects=1, size="large", radius=0.2,
             positions=[[0.5, 0.5]], spin_deg=0.0, background="plain", contrast=1.0,
             brightness=1.0, fg_rgb=[220, 40, 40], bg_rgb=[20, 30, 90], speed=0.2)
    v = S.render_video(p, 2, 64)
    assert tuple(v[0, 32, 32]) == (220, 40, 40)  # object centre
    assert tuple(v[0, 1, 1]) == (20, 30, 90)  # background corner


def test_render_rejects_bad_input(params):
    with pytest.raises(ValueError, match="n_frames"):
        S.render_video(params[0], 0, 32)
    with pytest.raises(ValueError, match="kind"):
        S.render_video({**params[0], "kind": "nope"}, 2, 32)


def test_caption_reflects_params(params):
    for p in params:
        c = S.caption(p).lower()
        assert p["fg_colour"] in c
        if p["kind"] == "shapes":
            assert p["shape"] in c and p["bg_colour"] in c and p["size"] in c
        elif p["kind"] == "dots":
            assert "dots" in c and p["bg_colour"] in c
        else:
            assert p["kind"] in c
        word = {"right": "right", "left": "left", "up": "upward", "down": "downward"}
        assert word.get(p["direction"], p["direction"]) in c
    p = next(q for q in params if q["kind"] == "shapes")
    q = {**p, "fg_colour": "purple", "shape": "star", "n_objects": 3}
    assert S.caption(q).lower().startswith("three ")
    assert "purple" in S.caption(q) and "stars" in S.caption(q)


def test_annotation_shape(params):
    for i, p in enumerate(params[:30], start=1):
        a = S.annotation(p, "train" if i % 2 else "test", index=i)
        assert set(a) == set(S.ANNOTATION_KEYS)
        assert a["bmd_matrixfilename"] == f"{i:04d}.mp4"
        assert a["set"] in ("train", "test")
        assert len(a["text_descriptions"]) == 5 and len(set(a["text_descriptions"])) == 5
        assert a["text_descriptions"][0] == S.caption(p)
        assert 5 <= len(a["objects"]) <= 7 and all(len(g) == 3 for g in a["objects"])
        assert [len(g) for g in a["THINGS_uniqueID"]] == [len(g) for g in a["objects"]]
        assert len(a["scenes"]) == len(a["PLACES365_classID"]) >= 5
        assert len(a["actions"]) == len(a["MiT_classID"]) >= 5
        assert 0.0 < a["memorability_score"] < 1.0 and a["memorability_decay"] < 0
        if p["kind"] == "shapes":
            assert p["shape"] in a["objects"][0]
        json.dumps(a)
        assert a == S.annotation(p, a["set"], index=i)
    with pytest.raises(ValueError, match="set_name"):
        S.annotation(params[0], "val")
