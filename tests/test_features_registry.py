"""Model registry: every entry builds on torch's meta device with its declared layers and shapes;
registry validation and frame policies."""

from __future__ import annotations

import pytest

from alignpatterns.features import registry as R

REG = R.load_registry()


def _identity(s):
    """Entries that build the same network (e.g. a trained entry and its untrained control)."""
    return (s.source, s.arch.split(".")[0], repr(sorted(s.kwargs.items())), repr(s.layers),
            repr(s.frames), s.tokens, s.layout, s.input_size)


DISTINCT = sorted({_identity(s): s.name for s in REG.values()}.values())


def test_every_entry_declares_shapes_and_twins_agree():
    for s in REG.values():
        assert s.shapes, f"{s.name}: no declared shapes"
        twin = REG[next(n for n in DISTINCT if _identity(REG[n]) == _identity(s))]
        assert s.shapes == twin.shapes, s.name


@pytest.mark.parametrize("name", DISTINCT)
def test_entry_builds_on_meta_with_declared_shapes(name):
    from alignpatterns.features.shapes import layer_shapes

    spec = REG[name]
    shapes, pooled, n_params = layer_shapes(spec, pool_grid=2)
    assert shapes == spec.shapes
    assert n_params > 0
    # pooling works for every layer and never grows a layer beyond its raw size
    for layer, n in pooled.items():
        raw = 1
        for d in shapes[layer]:
            raw *= d
        assert 0 < n <= max(raw, 2 * shapes[layer][-1]), (layer, n, shapes[layer])


def test_registry_covers_the_paper_families_with_controls():
    archs = {s.arch.split(".")[0] for s in REG.values()}
    for arch in ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large", "resnet18",
                 "resnet50", "vit_base_patch16_clip_224", "vit_large_patch14_clip_224",
                 "vit_small_patch16_224", "vit_base_patch16_224", "vit_small_patch14_dinov2",
                 "r3d_18", "mvit_v2_s", "swin3d_t"):
        assert arch in archs, arch
    # every trained entry has an untrained control of the same architecture and layers
    trained = [s for s in REG.values() if s.weights == "pretrained"]
    assert len(trained) >= 15
    for s in trained:
        controls = [c for c in REG.values() if c.control_of == s.name]
        assert controls, s.name
        for c in controls:
            assert c.weights == "random"
            assert c.arch.split(".")[0] == s.arch.split(".")[0]
    assert {s.source for s in REG.values()} == {"timm", "torchvision", "custom"}


def test_clip_models_declare_clip_inputs():
    for name in ("r3d_18", "mvit_v2_s", "swin3d_t"):
        spec = REG[name]
        assert spec.is_clip
        pol = R.frame_policy(spec, {"n_frames": 4, "size": 112})
        assert (pol.n_frames, pol.size) == (16, spec.frames["size"])
    # image models share the config's policy
    p1 = R.frame_policy(REG["resnet50"], {"n_frames": 4, "size": 112})
    p2 = R.frame_policy(REG["clip_vit_b16"], {"n_frames": 4, "size": 112})
    assert p1 == p2 and p1.id == "4f112px"
    assert R.FramePolicy(12, 256, fps=4.0, max_seconds=3.0).id == "12f4fps3s256px"


def test_model_frame_policies_groups_models():
    cfg = {"features": {"n_frames": 2, "size": 64},
           "models": [{"name": "a", "spec_name": "resnet50"},
                      {"name": "b", "spec_name": "convnext_tiny"},
                      {"name": "c", "spec_name": "r3d_18"}]}
    pol = R.model_frame_policies(cfg, REG)
    assert pol["a"] == pol["b"] != pol["c"]
    assert pol["c"].id == "16f112px"


@pytest.mark.parametrize("body, match", [
    ("    arch: resnet18\n    layers: [act1]\n    source: onnx\n", "source 'onnx'"),
    ("    arch: resnet18\n    layers: [act1]\n    colour: red\n", r"unknown keys \['colour'\]"),
    ("    arch: resnet18\n    layers: some\n", "layers must be a list"),
    ("    arch: resnet18\n    layers: [act1]\n    tokens: first\n", "tokens 'first'"),
    ("    arch: resnet18\n    layers: [act1]\n    frames: {mode: clip}\n", "clip model needs"),
    ("    arch: resnet18\n    layers: [act1]\n    control_of: nothing\n", "control_of 'nothing'"),
    ("    arch: resnet18\n    layers: [act1]\n    mean: [0.5]\n", "mean must be a list of 3"),
    ("    layers: [act1]\n", "needs 'arch'"),
])
def test_bad_registry_entry_names_file_and_model(tmp_path, body, match):
    p = tmp_path / "models.yaml"
    p.write_text("models:\n  m1:\n" + body)
    with pytest.raises(ValueError, match=match) as err:
        R.load_registry(p)
    assert str(p) in str(err.value) and "m1" in str(err.value)
