"""BMD ``frames_middle`` stills standing in for absent videos (``dataset.video_fallback``)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from alignpatterns.cli import main  # noqa: I001
from alignpatterns.features.frames import read_still_frames, resize_center_crop
from alignpatterns.features.registry import FramePolicy
from alignpatterns.features.sources import DecodedFrames
from tests import data_writers as W
from tests.test_data_check import _fails, mini, videos  # noqa: F401 - fixtures


def _still(path, colour, shape=(24, 32)):
    img = np.zeros((*shape, 3), dtype=np.uint8)
    img[:] = colour
    img[:, : shape[1] // 4] = 255  # a bright left band: the centre crop must cut it away
    Image.fromarray(img).save(path, quality=95)
    return img


def test_still_is_every_frame_resized_like_a_video_frame(tmp_path):
    img = _still(tmp_path / "0001_middle.jpg", (40, 120, 200))
    frames = read_still_frames(tmp_path / "0001_middle.jpg", 3, 16)
    assert frames.shape == (3, 16, 16, 3) and frames.dtype == np.uint8
    assert (frames == frames[0]).all()
    want = resize_center_crop(img, 16).astype(int)
    diff = np.abs(frames[0].astype(int) - want)
    assert diff.mean() <= 2 and diff.max() <= 16  # JPEG rounding and ringing only


def test_unreadable_still_names_the_file(tmp_path):
    bad = tmp_path / "0002_middle.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="0002_middle.jpg.*expected a readable image"):
        read_still_frames(bad, 2, 8)


def test_mixed_videos_and_stills_decode_in_order(tmp_path):
    W.write_videos(tmp_path, 2)
    _still(tmp_path / "0003_x.jpg", (10, 200, 10))
    paths = [tmp_path / "0001.mp4", tmp_path / "0003_x.jpg", tmp_path / "0002.mp4"]
    got = dict(DecodedFrames(paths, FramePolicy(n_frames=2, size=8), workers=2))
    assert sorted(got) == [0, 1, 2]
    assert all(v.shape == (2, 8, 8, 3) for v in got.values())
    assert (got[1] == got[1][0]).all() and not (got[0] == got[0][0]).all()


@pytest.fixture
def partial_videos(tmp_path):
    """BMD layout: mp4_h264 with the first 5 videos, frames_middle with stills for the rest."""
    base = tmp_path / "stimuli_metadata"
    W.write_videos(base / "mp4_h264", 5)
    (base / "frames_middle").mkdir()
    for i in range(6, W.N_TRAIN + W.N_TEST + 1):
        _still(base / "frames_middle" / f"{i:04d}_middle.jpg", (i * 10, 50, 90))
    return base


def test_check_data_accepts_stills_only_with_the_fallback(mini, partial_videos, capsys):  # noqa: F811
    _, cfg_path, cfg = mini
    cfg["dataset"]["videos"] = str(partial_videos / "mp4_h264")
    cfg_path.write_text(yaml.safe_dump(cfg))
    last = _fails(cfg_path, capsys, "0006.mp4", "found none for vid0006",
                  "set dataset.video_fallback: frames_middle")
    assert "18" in last
    cfg["dataset"]["video_fallback"] = "frames_middle"
    cfg_path.write_text(yaml.safe_dump(cfg))
    rc = main(["check-data", "--config", str(cfg_path), "--out", str(cfg_path.parent / "out")])
    assert rc == 0, capsys.readouterr().err
    # a still that is missing too is still an error
    import shutil

    shutil.rmtree(cfg_path.parent / "out")
    (partial_videos / "frames_middle" / "0007_middle.jpg").unlink()
    _fails(cfg_path, capsys, "0007.mp4", "found none for vid0007", "and no frames_middle still")
