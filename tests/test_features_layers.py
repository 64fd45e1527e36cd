"""Layer specs, token policies and pooling against closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from alignpatterns.features.layers import LayerSpecError, resolve_layers
from alignpatterns.features.pooling import pool_frames, pool_output


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 1)),
                         nn.Flatten())


def test_layer_specs_select_modules():
    net = _net()
    assert resolve_layers(net, ["1.1", "0"]) == ["1.1", "0"]
    assert resolve_layers(net, "top_level") == ["0", "1", "2"]
    assert resolve_layers(net, "all") == ["0", "1", "1.0", "1.1", "2"]
    assert resolve_layers(net, {"regex": r"1\.\d"}) == ["1.0", "1.1"]
    # full match, not search
    assert resolve_layers(net, {"regex": r"1"}) == ["1"]


@pytest.mark.parametrize("spec, match", [
    (["0", "nope"], r"\['nope'\] not found in Sequential; valid names: 0, 1, 1.0, 1.1, 2"),
    ({"regex": "x.*"}, r"matches no module; valid names: 0, 1, 1.0, 1.1, 2"),
    ({"regex": "("}, "bad layer regex"),
    ({"pattern": "0"}, r"must be \{regex: PATTERN\}"),
    ("everything", "is not 'top_level', 'all'"),
    (["0", "0"], "listed twice"),
    ([], "selects no module"),
])
def test_layer_spec_errors_list_valid_names(spec, match):
    with pytest.raises(LayerSpecError, match=match):
        resolve_layers(_net(), spec, "model 'toy'")


def test_token_policies_closed_form():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(2, 1 + 16, 3)).astype(np.float32))
    cls, patches = x[:, 0], x[:, 1:]
    assert torch.equal(pool_output(x, 4, 1, "cls"), cls)
    assert torch.allclose(pool_output(x, 4, 1, "mean"), patches.mean(1))
    both = pool_output(x, 4, 1, "both")
    assert torch.allclose(both, torch.cat([cls, patches.mean(1)], 1))
    # grid: 16 patch tokens on a 4 × 4 grid, pooled to 2 × 2 = mean of each 2 × 2 block
    g = pool_output(x, 2, 1, "grid").reshape(2, 3, 2, 2)
    grid = patches.reshape(2, 4, 4, 3)
    assert torch.allclose(g[:, :, 0, 1], grid[:, 0:2, 2:4, :].mean((1, 2)))
    # a layer before the class token is added (16 tokens, a square) has no prefix
    y = x[:, 1:]
    assert torch.allclose(pool_output(y, 4, 1, "mean"), patches.mean(1))
    with pytest.raises(ValueError, match="needs a class token"):
        pool_output(y, 4, 1, "cls")


def test_layouts_and_video_outputs():
    rng = np.random.default_rng(1)
    nchw = torch.from_numpy(rng.normal(size=(2, 3, 4, 4)).astype(np.float32))
    ref = pool_output(nchw, 2)
    assert ref.shape == (2, 12)
    assert torch.allclose(pool_output(nchw.permute(0, 2, 3, 1), 2, layout="nhwc"), ref)
    # 5-D (B, C, T, H, W): mean over time, then the spatial grid
    v = torch.from_numpy(rng.normal(size=(2, 3, 5, 4, 4)).astype(np.float32))
    want = pool_output(v.mean(2), 2)
    assert torch.allclose(pool_output(v, 2), want, atol=1e-6)
    assert torch.allclose(pool_output(v.permute(0, 2, 3, 4, 1), 2, layout="nthwc"), want,
                          atol=1e-6)
    # MViT-style (tokens, (T, H, W)) with a class token
    tok = v.flatten(2).transpose(1, 2)  # (B, T*H*W, C)
    tok = torch.cat([torch.zeros(2, 1, 3), tok], 1)
    assert torch.allclose(pool_output((tok, [5, 4, 4]), 2), want, atol=1e-6)
    assert torch.allclose(pool_output((tok, [5, 4, 4]), 2, tokens="mean"), v.mean((2, 3, 4)),
                          atol=1e-6)


def test_frame_pooling():
    rows = torch.tensor([[1.0, 5.0], [3.0, -1.0], [2.0, 2.0]])
    assert torch.allclose(pool_frames(rows, "mean"), torch.tensor([2.0, 2.0]))
    assert torch.equal(pool_frames(rows, "max"), torch.tensor([3.0, 5.0]))
    assert torch.equal(pool_frames(rows, "keep"), rows)
    with pytest.raises(ValueError, match="frame pooling 'median'"):
        pool_frames(rows, "median")
