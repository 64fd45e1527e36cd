"""Feature extraction end to end: real forwards on a 2-video set, pooling on videos with known
frames, weights (random, checkpoint, pretrained offline), provenance, determinism, reduction,
background decoding and the feature-file layout the pipeline reads."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from alignpatterns import pipeline
from alignpatterns.features import registry as R
from alignpatterns.features.extract import ExtractOptions, auto_batch_size
from alignpatterns.features.frames import VideoDecodeError, read_frame_set, read_video_frames
from alignpatterns.features.models import WeightsError, build_model, weights_hash
from alignpatterns.features.runner import extract_to_file, load_frame_cache, write_frame_cache
from alignpatterns.features.shapes import layer_shapes
from alignpatterns.features.sources import DecodedFrames
from alignpatterns.features.store import read_provenance
from alignpatterns.synth import stimuli as S

REG = R.load_registry()
IDS = ["vid0001", "vid0002"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two 8-frame synthetic videos at 48 px."""
    d = tmp_path_factory.mktemp("videos")
    params = S.sample_stimulus_params(2, np.random.default_rng(0))
    return [S.write_mp4(d / f"{i:04d}.mp4", S.render_video(p, 8, 48), fps=8)
            for i, p in enumerate(params, 1)]


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    """A video whose frame k is a flat colour (30k + 20, 200 - 20k, 100), 8 fps, 8 frames."""
    d = tmp_path_factory.mktemp("known")
    video = np.zeros((8, 32, 32, 3), np.uint8)
    for k in range(8):
        video[k] = (30 * k + 20, 200 - 20 * k, 100)
    return S.write_mp4(d / "0001.mp4", video, fps=8), video


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


# --- real forwards -------------------------------------------------------------------------------

SMALL = ["resnet18_in1k", "resnet50", "convnext_tiny", "dino_vits16", "dinov2_vits14", "r3d_18",
         "swin3d_t"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_real_forward_on_two_videos(name, videos, tmp_path):
    spec = REG[name]
    if spec.is_clip:  # small clips: 4 frames at 32 px
        spec = dataclasses.replace(spec, frames={"mode": "clip", "n_frames": 4, "size": 32})
    policy = R.frame_policy(spec, {"n_frames": 2, "size": 32})
    _, n_feat, n_params = layer_shapes(spec, size=32, pool_grid=2)
    assert n_params < 50e6
    out = tmp_path / "f.npz"
    torch.set_num_threads(1)
    prov = extract_to_file(spec, "random", 7, DecodedFrames(videos, policy), IDS, 1, out,
                           ExtractOptions(pool_grid=2, batch_size=3), policy=policy)
    z = _load(out)
    assert z["layer_names"].tolist() == list(spec.layers) == prov["layers"]
    for i, layer in enumerate(spec.layers):
        X = z[f"layer/{i:02d}/{layer}"]
        assert X.dtype == np.float32 and X.shape == (2, n_feat[layer]), layer
        assert np.all(np.isfinite(X)) and not np.array_equal(X[0], X[1]), layer
    assert prov["frame_policy"]["n_frames"] == (4 if spec.is_clip else 2)


# --- pooling on known frames -----------------------------------------------------------------------

def _identity_spec():
    return R.ModelSpec(name="identity", arch="torch.nn.Identity", layers=("0",), source="custom",
                       mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("how", ["mean", "max", "keep"])
def test_frame_pooling_on_a_video_with_known_frames(known, tmp_path, how):
    path, video = known
    frames = read_video_frames(path, 4, 16)  # frames 0, 2, 5, 7
    # the codec keeps flat colours to within a few levels
    want_levels = video[[0, 2, 5, 7], 0, 0].astype(float)
    assert np.abs(frames.mean((1, 2)) - want_levels).max() < 4
    per_frame = frames.astype(np.float64).mean((1, 2)) / 255.0  # (4, 3): grid-1 pooled input
    net = nn.Sequential(nn.Identity()).eval()
    out = tmp_path / "f.npz"
    extract_to_file(_identity_spec(), "random", 0, frames[None], ["vid0001"], 1, out,
                    ExtractOptions(pool_grid=1, batch_size=3, frame_pool=how), model=net)
    X = _load(out)["layer/00/0"][0]
    want = {"mean": per_frame.mean(0), "max": per_frame.max(0), "keep": per_frame}[how]
    np.testing.assert_allclose(X, want, atol=1e-5)
    if how == "keep":  # the pipeline reads kept frames frame-major
        feats, _ = pipeline.load_features(out)
        np.testing.assert_allclose(feats["0"][0][0], per_frame.ravel(), atol=1e-5)


def test_fps_sampling_takes_the_frames_shown_at_each_time(known):
    path, video = known
    got = read_video_frames(path, 3, 16, fps=4.0)  # t = 0, 0.25, 0.5 s at 8 fps: frames 0, 2, 4
    want = video[[0, 2, 4], 0, 0].astype(float)
    assert np.abs(got.mean((1, 2)) - want).max() < 4
    # past the end of the clip the last frame repeats
    tail = read_video_frames(path, 6, 16, fps=2.0)  # t = 0 … 2.5 s: frames 0, 4, 7, 7, 7, 7
    assert np.array_equal(tail[3], tail[5]) and np.array_equal(tail[2], tail[5])


# --- determinism, provenance, weights ---------------------------------------------------------------

def _extract(spec, weights, seed, frames, out, **kw):
    return extract_to_file(spec, weights, seed, frames, IDS, 1, out,
                           ExtractOptions(pool_grid=2, batch_size=2, **kw),
                           policy=R.FramePolicy(2, 32))


@pytest.fixture(scope="module")
def frames(videos):
    return read_frame_set(videos, 2, 32)


def test_same_config_gives_identical_files_and_provenance(frames, tmp_path):
    spec = REG["mobilenetv3_small_100"]
    p1 = _extract(spec, "random", 3, frames, tmp_path / "a.npz")
    _extract(spec, "random", 3, frames, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    p3 = _extract(spec, "random", 4, frames, tmp_path / "c.npz")
    assert p3["weights_hash"] != p1["weights_hash"]
    assert not np.array_equal(_load(tmp_path / "a.npz")["layer/07/conv_head"],
                              _load(tmp_path / "c.npz")["layer/07/conv_head"])
    prov = read_provenance(tmp_path / "a.npz")
    import timm

    assert prov["model"] == "mobilenetv3_small_100" and prov["weights"] == "random"
    assert prov["seed"] == 3 and prov["versions"]["timm"] == timm.__version__
    assert prov["frame_policy"] == {"n_frames": 2, "size": 32, "fps": None, "max_seconds": None}
    assert prov["precision"] == "fp32" and prov["frame_pool"] == "mean"
    assert len(prov["weights_hash"]) == 16
    # no leftovers next to the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "c.npz"]


def test_checkpoint_round_trip(frames, tmp_path):
    spec = REG["convnext_atto"]
    net = build_model(spec, "random", seed=11)
    ckpt = tmp_path / "atto.pt"
    torch.save({"state_dict": net.state_dict()}, ckpt)
    p_rand = _extract(spec, "random", 11, frames, tmp_path / "r.npz")
    p_ckpt = _extract(spec, str(ckpt), None, frames, tmp_path / "c.npz")
    assert p_ckpt["weights"] == str(ckpt) and p_ckpt["weights_hash"] == p_rand["weights_hash"]
    a, b = _load(tmp_path / "r.npz"), _load(tmp_path / "c.npz")
    for k in a:
        if k.startswith("layer/"):
            assert np.array_equal(a[k], b[k]), k
    other = tmp_path / "other.pt"
    torch.save(build_model(REG["mobilenetv3_small_100"], "random", 1).state_dict(), other)
    with pytest.raises(WeightsError, match=rf"{other}: checkpoint does not fit model "
                                           "'convnext_atto'"):
        build_model(spec, str(other))
    with pytest.raises(WeightsError, match="checkpoint not found"):
        build_model(spec, str(tmp_path / "missing.pt"))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        build_model(spec, str(tmp_path / "bad.pt"))


def test_pretrained_offline_and_not_cached_says_how_to_fetch(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as err:
        build_model(REG["resnet18_in1k"], "pretrained")
    msg = str(err.value)
    assert "not in the local cache" in msg
    assert "timm.create_model('resnet18.a1_in1k', pretrained=True)" in msg
    assert "checkpoint path" in msg


def test_unknown_timm_architecture_names_the_model_and_suggests():
    spec = dataclasses.replace(REG["resnet18"], name="typo", arch="resnet81")
    with pytest.raises(ValueError, match=r"model 'typo': 'resnet81' is not a timm architecture"
                       r".*did you mean .*resnet18"):
        build_model(spec, "random", 1)


def test_out_of_memory_names_the_layer_and_the_batch():
    from alignpatterns.features import extract as E

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3)
            self.b = nn.Conv2d(4, 4, 3)

        def forward(self, x):
            h = self.a(x)
            if h.shape[0] > 1:  # a batch that does not fit
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
            return self.b(h)

    frames = [(i, np.zeros((2, 8, 8, 3), dtype=np.uint8)) for i in range(2)]
    with pytest.raises(MemoryError) as err:
        E.run(Net().eval(), frames, ["a", "b"], lambda *_: None,
              ExtractOptions(pool_grid=1, batch_size=4), (0.5,) * 3, (0.5,) * 3)
    msg = str(err.value)
    assert "while computing layer 'b' (after 1 of 2 read layers)" in msg
    assert "input batch (4, 3, 8, 8)" in msg and "features.batch_size" in msg
    assert "Tried to allocate 9.00 GiB" in msg


class _Counted(nn.Module):
    """a → b → head; counts how often ``head`` runs; ``reuse`` runs ``a`` twice per pass."""

    def __init__(self, reuse: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3)
        self.head = nn.Conv2d(4, 4, 1)
        self.reuse, self.head_calls = reuse, 0

    def forward(self, x):
        h = self.a(x)
        if self.reuse:
            h = self.a(h)
        h = self.b(h)
        self.head_calls += 1
        return self.head(h)


def _run_counted(net, layers, n_stimuli=6):
    from alignpatterns.features import extract as E

    rng = np.random.default_rng(3)
    frames = [(i, rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)) for i in range(n_stimuli)]
    out = {}
    E.run(net.eval(), frames, layers, lambda i, f: out.__setitem__(i, f),
          ExtractOptions(pool_grid=1, batch_size=4), (0.5,) * 3, (0.5,) * 3)
    return out


def test_forward_stops_after_the_last_read_layer_with_identical_features():
    net = _Counted()
    got = _run_counted(net, ["a", "b"])
    assert net.head_calls == 1  # 3 batches of 4 frames: only the first (probing) one ran the head
    full = _run_counted(_Counted(), ["a", "b", "head"])  # reads the head: never stopped early
    assert sorted(got) == sorted(full) == list(range(6))
    for i in got:
        for name in ("a", "b"):
            np.testing.assert_array_equal(got[i][name], full[i][name])


def test_a_module_called_twice_per_pass_keeps_the_full_forward():
    net = _Counted(reuse=True)
    got = _run_counted(net, ["a"])
    assert net.head_calls == 3  # every batch ran to the end: 'a' is read at its second call
    with torch.no_grad():
        x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (2, 8, 8, 3),
                                                               dtype=np.uint8))
        x = (x.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
        second = net.a(net.a(x)).mean(dim=(2, 3)).mean(0)
    np.testing.assert_allclose(got[0]["a"].ravel(), second.numpy(), rtol=1e-5, atol=1e-6)


def test_deterministic_torch_sets_the_eager_flag_without_importing_inductor():
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from alignpatterns.pipeline import deterministic_torch\n"
            "deterministic_torch()\n"
            "print(torch.are_deterministic_algorithms_enabled(),"
            " torch.is_deterministic_algorithms_warn_only_enabled(),"
            " 'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def test_random_weights_are_seeded():
    spec = REG["mobilenetv3_small_100"]
    h = [weights_hash(build_model(spec, "random", s)) for s in (1, 1, 2)]
    assert h[0] == h[1] != h[2]
    with pytest.raises(ValueError, match="need a seed"):
        build_model(spec, "random")


# --- options -------------------------------------------------------------------------------------

def test_bf16_is_close_and_recorded(frames, tmp_path):
    spec = REG["convnext_atto"]
    _extract(spec, "random", 5, frames, tmp_path / "a.npz")
    prov = _extract(spec, "random", 5, frames, tmp_path / "b.npz", precision="bf16")
    assert prov["precision"] == "bf16"
    a, b = _load(tmp_path / "a.npz"), _load(tmp_path / "b.npz")
    X, Y = a["layer/05/stages.3"].ravel(), b["layer/05/stages.3"].ravel()
    assert np.corrcoef(X, Y)[0, 1] > 0.99 and not np.array_equal(X, Y)


def test_reduction_is_fitted_on_train_only(videos, tmp_path):
    from sklearn.decomposition import PCA

    spec = REG["mobilenetv3_small_100"]
    fr = read_frame_set(videos * 3, 1, 32)  # 6 stimuli: 4 train, 2 test
    fr[5] = 255 - fr[5]
    ids = [f"vid{i:04d}" for i in range(1, 7)]
    out = tmp_path / "p.npz"
    extract_to_file(spec, "random", 1, fr, ids, 4, out, ExtractOptions(pool_grid=2),
                    reduction={"method": "pca", "n_components": 3})
    z = _load(out)
    X = z["layer/07/conv_head"].astype(np.float64)
    want = PCA(3, svd_solver="full").fit(X[:4]).transform(X)
    np.testing.assert_allclose(z["lp/07/conv_head"], want, rtol=1e-4, atol=1e-4)
    # changing a test stimulus leaves the train projection unchanged
    fr[4] = 0
    extract_to_file(spec, "random", 1, fr, ids, 4, tmp_path / "q.npz",
                    ExtractOptions(pool_grid=2), reduction={"method": "pca", "n_components": 3})
    np.testing.assert_array_equal(_load(tmp_path / "q.npz")["lp/07/conv_head"][:4],
                                  z["lp/07/conv_head"][:4])
    # sparse random projection keeps distances
    extract_to_file(spec, "random", 1, fr, ids, 4, tmp_path / "s.npz",
                    ExtractOptions(pool_grid=2), reduction={"method": "srp", "n_components": 400})
    s = _load(tmp_path / "s.npz")
    X, Z = s["layer/07/conv_head"], s["lp/07/conv_head"]
    assert Z.shape[1] < X.shape[1]
    d = np.linalg.norm(X[:, None] - X[None], axis=2)
    dz = np.linalg.norm(Z[:, None] - Z[None], axis=2)
    far = d > 1e-3 * d.max()  # stimuli 0 and 2 (1 and 3) are the same video
    assert far.sum() >= 20 and np.all(np.abs(dz[far] / d[far] - 1) < 0.3)
    # RSA/CKA read the unreduced layers only
    feats, _ = pipeline.load_features(tmp_path / "s.npz")
    assert feats["conv_head"][0].shape[1] == X.shape[1]


def test_auto_batch_size_shrinks_with_input():
    spec = REG["resnet50"]
    small = auto_batch_size(spec, (3, 64, 64), "cpu")
    big = auto_batch_size(spec, (3, 512, 512), "cpu")
    assert 1 <= big < small <= 64


def test_progress_bar_reports_stimuli_per_second(frames, tmp_path, capsys):
    _extract(REG["convnext_atto"], "random", 1, frames, tmp_path / "a.npz", progress=True)
    assert "stim/s" in capsys.readouterr().err


# --- frame caches and background decoding -------------------------------------------------------

def test_background_decoding_equals_sequential_and_caches(videos, tmp_path):
    pol = R.FramePolicy(3, 24)
    want = read_frame_set(videos, 3, 24)
    got = dict(DecodedFrames(videos * 2, pol, workers=2, prefetch=1))
    assert sorted(got) == [0, 1, 2, 3]
    for i in range(4):
        assert np.array_equal(got[i], want[i % 2])
    out = tmp_path / "frames" / f"{pol.id}.npy"
    out.parent.mkdir()
    write_frame_cache(videos, IDS, 1, pol, out, workers=2)
    fr, ids, n_train = load_frame_cache(out)
    assert np.array_equal(fr, want) and ids == IDS and n_train == 1
    assert json.loads(out.with_suffix(".json").read_text())["policy"]["size"] == 24


def test_decoding_error_in_the_worker_reaches_the_caller(videos, tmp_path):
    bad = tmp_path / "0003.mp4"
    bad.write_bytes(b"garbage")
    out = tmp_path / "f.npy"
    with pytest.raises(VideoDecodeError, match="0003.mp4"):
        write_frame_cache([*videos, bad], [*IDS, "vid0003"], 1, R.FramePolicy(2, 24), out)
    assert list(tmp_path.iterdir()) == [bad]


def test_pipeline_extract_reads_a_frame_cache_and_config_overrides(videos, tmp_path):
    pol = R.FramePolicy(2, 32)
    cache = tmp_path / f"{pol.id}.npy"
    write_frame_cache(videos, IDS, 1, pol, cache)
    cfg = {"device": "cpu", "features": {"n_frames": 2, "size": 32, "pool_grid": 2,
                                         "batch_size": "auto", "frame_pool": "max"},
           "models": [{"name": "convnext_atto", "spec_name": "convnext_atto", "weights": "random",
                       "seed": 4, "layers": {"regex": r"stages\.\d"}}]}
    out = tmp_path / "convnext_atto.npz"
    pipeline.extract(cfg, "convnext_atto", str(cache), str(out))
    prov = read_provenance(out)
    assert prov["layers"] == ["stages.0", "stages.1", "stages.2", "stages.3"]
    assert prov["frame_pool"] == "max" and 1 <= prov["batch_size"] <= 64
    feats, ids = pipeline.load_features(out)
    assert ids == IDS and list(feats) == prov["layers"]
    # 32 px → a 1 × 1 map of 320 channels after stage 3; one train and one test stimulus
    assert feats["stages.3"][0].shape == (1, 320) and feats["stages.3"][1].shape == (1, 320)
