"""Feature extraction benchmark: full extraction against a bare ``model(x)`` loop, and peak memory.

**Speed.** For resnet50 and a ViT-B/16 (the registry's ``resnet50_untrained`` and
``clip_vit_b16_untrained``: random init, no download), frames/s of

* ``full``: :func:`alignpatterns.features.runner.extract_to_file` on a cold frame cache — every
  repetition decodes the mp4 files again with PyAV (background thread), normalises, runs the
  forward pass with the registry's layer hooks, pools (spatial grid, tokens, frames) and writes
  the feature file;
* ``bare``: ``model(x)`` over the same frames already decoded, normalised and batched as float32
  tensors on the device, same batch size, under ``torch.inference_mode``.

The ratio full / bare (of frames/s) is the overhead of everything but the network (target
≥ 0.85). Both are timed alternately (bare, full, bare, full, ...) so that outside load falls on
both; the ratio of process CPU times (all threads, the decoding thread included) is reported
too, since on a shared machine wall time inflates with outside load and CPU time mostly not.

**Memory.** Peak resident memory of a fresh child process per size while extracting the ViT-B
(``tokens: grid``, so each video has ~100k features) for 50, 100 and 200 videos with reduction
on (sparse random projection, n_components 1024): the whole-process peak (``ru_maxrss``,
includes building the model) and the peak sampled every 10 ms during the extraction alone
(psutil RSS). Flat in the number of videos when features stream to disk.

Run ``python benchmarks/bench_extraction.py`` (CPU, ~10 min on 2 shared cores) or ``--quick``.
Results: ``benchmarks/results/extraction.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_version, machine_info, write_result  # noqa: E402

MODELS = ["resnet50_untrained", "clip_vit_b16_untrained"]
FULL = {"n_videos": 8, "n_frames": 4, "size": 224, "batch_size": 16, "repeats": 3,
        "memory_sizes": [50, 100, 200], "memory_frames": 2, "memory_size": 112}
QUICK = {"n_videos": 2, "n_frames": 2, "size": 64, "batch_size": 4, "repeats": 1,
         "memory_sizes": [4, 8], "memory_frames": 1, "memory_size": 32}


def make_videos(directory: Path, n: int, size: int, n_frames_video: int = 24) -> list[Path]:
    """``n`` synthetic stimulus videos (the synthetic dataset's renderer), 24 frames at 8 fps."""
    from alignpatterns.synth import stimuli as S

    params = S.sample_stimulus_params(n, np.random.default_rng(0))
    directory.mkdir(parents=True, exist_ok=True)
    return [S.write_mp4(directory / f"{i:04d}.mp4", S.render_video(p, n_frames_video, size),
                        fps=8) for i, p in enumerate(params, 1)]


def _setup(name: str, threads: int):
    import torch

    from alignpatterns.features.models import build_model
    from alignpatterns.features.registry import load_registry

    torch.set_num_threads(threads)
    spec = load_registry()[name]
    return spec, build_model(spec, "random", seed=0)


def speed(name: str, videos: list[Path], p: dict, threads: int, device: str, tmp: Path) -> dict:
    """Alternating bare / full timings of one model."""
    import torch

    from alignpatterns.features.extract import ExtractOptions
    from alignpatterns.features.frames import read_frame_set
    from alignpatterns.features.models import normalization
    from alignpatterns.features.registry import FramePolicy
    from alignpatterns.features.runner import extract_to_file
    from alignpatterns.features.sources import DecodedFrames

    spec, net = _setup(name, threads)
    net = net.to(device)
    policy = FramePolicy(p["n_frames"], p["size"])
    ids = [f"vid{i:04d}" for i in range(1, len(videos) + 1)]
    n_frames_total = len(videos) * p["n_frames"]
    # bare: pre-decoded, normalised, batched tensors on the device
    frames = read_frame_set(videos, p["n_frames"], p["size"])
    mean, std = normalization(spec, net)
    x = torch.from_numpy(frames.reshape(-1, *frames.shape[2:])).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    # the same memory layout the extraction feeds the network (channels-last, from the NHWC
    # frames), so that the comparison is not about convolution kernels
    batches = [b.to(device).contiguous(memory_format=torch.channels_last)
               for b in torch.split(x, p["batch_size"])]

    def bare():
        with torch.inference_mode():
            for b in batches:
                net(b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    opts = ExtractOptions(pool_grid=4, batch_size=p["batch_size"], device=device)

    def full():
        extract_to_file(spec, "random", 0, DecodedFrames(videos, policy, workers=1), ids,
                        len(ids) // 2, tmp / f"{name}.npz", opts, policy=policy, model=net)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    bare()  # warm-up (thread pools, allocator, first-call costs) for both
    full()
    times = {"bare": [], "full": []}
    cpu = {"bare": [], "full": []}
    for _ in range(p["repeats"]):
        for kind, fn in (("bare", bare), ("full", full)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[kind].append(time.perf_counter() - t0)
            cpu[kind].append(time.process_time() - c0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    paired = [b / f for b, f in zip(times["bare"], times["full"], strict=True)]
    return {"model": name, "arch": spec.arch, "layers": list(spec.layers),
            "n_frames_total": n_frames_total, "batch_size": p["batch_size"],
            "times_s": times, "median_s": med, "cpu_times_s": cpu, "median_cpu_s": med_cpu,
            "frames_per_s": {k: n_frames_total / v for k, v in med.items()},
            "ratio_full_over_bare": med["bare"] / med["full"],
            "paired_ratios": paired,
            "ratio_full_over_bare_cpu_time": med_cpu["bare"] / med_cpu["full"]}


def memory_child(n_videos: int, p: dict, threads: int, workdir: Path) -> dict:
    """Extract the ViT-B for ``n_videos`` videos with reduction on; report peak RSS."""
    from alignpatterns.features.extract import ExtractOptions
    from alignpatterns.features.registry import FramePolicy
    from alignpatterns.features.runner import extract_to_file
    from alignpatterns.features.sources import DecodedFrames

    videos = sorted(workdir.glob("videos/*.mp4"))[:n_videos]
    spec, net = _setup("clip_vit_b16_untrained", threads)
    policy = FramePolicy(p["memory_frames"], p["memory_size"])
    ids = [f"vid{i:04d}" for i in range(1, n_videos + 1)]
    import threading

    import psutil

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = [rss0]
    done = threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    out = workdir / f"mem{n_videos}.npz"
    try:
        extract_to_file(spec, "random", 0, DecodedFrames(videos, policy), ids,
                        int(0.8 * n_videos), out,
                        ExtractOptions(pool_grid=4, batch_size=8, tokens="grid"), policy=policy,
                        model=net, reduction={"method": "srp", "n_components": 1024})
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    with np.load(out) as z:
        n_feat = sum(z[k].shape[1] for k in z.files if k.startswith("layer/"))
    out.unlink()
    return {"n_videos": n_videos,
            "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_extract_mib": rss0 / 2**20, "extract_peak_rss_mib": peak[0] / 2**20,
        "features_per_video": n_feat, "feature_mib_unreduced": n_videos * n_feat * 4 / 2**20,
        "wall_s": wall}


def memory(p: dict, threads: int, tmp: Path) -> list[dict]:
    make_videos(tmp / "videos", max(p["memory_sizes"]), max(64, p["memory_size"]))
    rows = []
    for n in p["memory_sizes"]:
        res = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--workdir",
                              str(tmp), "--threads", str(threads), "--params", json.dumps(p)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"memory: {rows[-1]}", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed runs")
    ap.add_argument("--out", default="extraction", help="result name (benchmarks/results/)")
    ap.add_argument("--repeats", type=int, help="speed repetitions (default 3, quick 1)")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, json.loads(args.params), args.threads,
                                      Path(args.workdir))))
        return
    p = dict(QUICK if args.quick else FULL)
    if args.repeats:
        p["repeats"] = args.repeats
    payload = {"params": p, "device": args.device, "threads": args.threads,
               "code": code_version(["alignpatterns.features.extract",
                                     "alignpatterns.features.runner"]),
               "machine": machine_info()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.no_speed:
            videos = make_videos(tmp / "speed", p["n_videos"], max(64, p["size"] // 2))
            payload["speed"] = []
            for name in MODELS:
                row = speed(name, videos, p, args.threads, args.device, tmp)
                print(f"speed: {name}: full {row['frames_per_s']['full']:.2f} frames/s, bare "
                      f"{row['frames_per_s']['bare']:.2f} frames/s, ratio "
                      f"{row['ratio_full_over_bare']:.3f} (CPU time "
                      f"{row['ratio_full_over_bare_cpu_time']:.3f})", flush=True)
                payload["speed"].append(row)
        if not args.no_memory:
            payload["memory"] = memory(p, args.threads, tmp)
    print(write_result(args.out, payload))


if __name__ == "__main__":
    main()
