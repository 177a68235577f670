"""Milliseconds per frame of the temporal smoothers (``--smooth ema|flow``), model excluded.

    python tools/bench_smoothing.py [--video V.mp4] [--size 640x360] [--frames 300] [--warmup 20]

Frames come from the video (default: the shared bunny clip if present, else a synthetic pan); the
"stylised" frame is a cheap stand-in (colour-mapped input), since the smoothers' cost does not depend
on the picture. Reports median and 90th percentile per kind, and the load average, because the
numbers only mean something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime_nst import frames as fr  # noqa: E402
from realtime_nst.runtime.choices import DEFAULT_STRENGTH  # noqa: E402
from realtime_nst.runtime.smoothing import make_smoother  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "assets" / "videos" / "bunny_640x360.mp4"


def load_frames(video: Path | None, size: tuple[int, int], n: int) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    if video is not None and video.is_file():
        cap = cv2.VideoCapture(str(video))
        while len(frames) < n:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(fr.resize(f, size))
        cap.release()
    if not frames:  # synthetic pan over a blobby texture
        rng = np.random.default_rng(0)
        tex = cv2.resize(rng.integers(0, 255, (size[1] // 8, size[0] // 4, 3), dtype=np.uint8),
                         (size[0] * 2, size[1]), interpolation=cv2.INTER_CUBIC)
        frames = [np.ascontiguousarray(tex[:, t % size[0]:t % size[0] + size[0]]) for t in range(min(n, 240))]
    return frames


def bench(kind: str, frames: list[np.ndarray], styled: list[np.ndarray], total: int, warmup: int,
          strength: float) -> np.ndarray:
    sm = make_smoother(kind, strength=strength)
    times = []
    for i in range(total + warmup):
        j = i % len(frames)
        if j == 0 and i:
            # The clip loops around: start a fresh history (untimed) rather than time a fake cut.
            sm.reset()
            sm(frames[0], styled[0])
            continue
        t0 = time.perf_counter()
        sm(frames[j], styled[j])
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return np.array(times) * 1000.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--size", type=fr.parse_size, default=(640, 360))
    p.add_argument("--frames", type=int, default=300, help="timed frames per kind")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH)
    p.add_argument("--kinds", nargs="+", default=["ema", "flow"])
    args = p.parse_args()
    frames = load_frames(args.video, args.size, args.frames + args.warmup)
    styled = [cv2.applyColorMap(f, cv2.COLORMAP_TWILIGHT) for f in frames]
    print(f"{args.size[0]}x{args.size[1]}, {len(frames)} distinct frames, cv2 threads {cv2.getNumThreads()}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for kind in args.kinds:
        ms = bench(kind, frames, styled, args.frames, args.warmup, args.strength)
        print(f"{kind:<5} median {np.median(ms):6.2f} ms  p90 {np.percentile(ms, 90):6.2f} ms  "
              f"mean {ms.mean():6.2f} ms  ({len(ms)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
