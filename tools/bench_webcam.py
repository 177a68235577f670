"""What `rtnst webcam` keeps up with: a clip at a camera's size and rate stands in for the camera.

    python tools/bench_webcam.py [--video people_walking.mp4] [--sizes 1280x720,640x480] [--fps 30]
                                 [--seconds 20] [--smooth none,flow] [--rounds 2] [--model MODEL]

For each size a clip of ``--seconds`` at ``--fps`` is made from ``--video``'s frames (looped and
scaled; synthetic texture without one), then `rtnst webcam --camera CLIP --no-window --record
OUT.mp4 --smooth S` runs it. A video file standing in for a camera is delivered at its own rate, and
the loop keeps only the newest frame, as with a camera: the frames it stylised out of those the
camera gave say whether it keeps up (decision 1 of issue 16: 30 fps for a 1280x720 output). Also the
CPU the run took (user + system, over its wall time; 2.0 = both cores of a 2-core machine). The
sizes and smoothing modes alternate in each round; the numbers mean something only on an otherwise
idle machine.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime_nst.evaluation.bench import cpu_model, write_clip  # noqa: E402
from realtime_nst.frames import parse_size  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "assets" / "videos" / "people_walking.mp4"
_COUNTS = re.compile(r"(\d+) frames? stylised, (\d+) camera frames? dropped")


def run_webcam(clip: Path, out: Path, smooth: str, model: str | None) -> tuple[int, int, float, float]:
    """(frames stylised, frames dropped, wall s, CPU s) of one `rtnst webcam` run on ``clip``."""
    cmd = [sys.executable, "-m", "realtime_nst", "webcam", "--camera", str(clip), "--no-window", "--record", str(out),
           "--overwrite", "--smooth", smooth] + (["--model", model] if model else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = _COUNTS.search(proc.stderr)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"bench_webcam: `{' '.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return int(found.group(1)), int(found.group(2)), wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO if DEFAULT_VIDEO.is_file() else None,
                    help="frames for the stand-in camera (default: ../shared's people_walking, else synthetic)")
    ap.add_argument("--sizes", default="1280x720", help="camera sizes, comma-separated (default: 1280x720)")
    ap.add_argument("--fps", type=int, default=30, help="the camera's frame rate (default: 30)")
    ap.add_argument("--seconds", type=float, default=20.0, help="how long the camera runs (default: 20)")
    ap.add_argument("--smooth", default="none,flow", help="smoothing modes, comma-separated (default: none,flow)")
    ap.add_argument("--rounds", type=int, default=1, help="measure everything N times, alternating (default: 1)")
    ap.add_argument("--model", help="model name or file (default: the shipped default)")
    args = ap.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in args.smooth.split(",") if m.strip()]
    count = round(args.fps * args.seconds)
    print(f"CPU: {cpu_model()}; camera: {args.fps} fps for {args.seconds:g} s ({count} frames), "
          f"{args.video.name if args.video else 'synthetic texture'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for size in sizes:
            clips[size] = Path(tmp) / f"camera_{size[0]}x{size[1]}.mp4"
            write_clip(clips[size], size, count, args.fps, source=args.video)
        for r in range(args.rounds):
            for size in sizes:
                for mode in modes:
                    done, dropped, wall, cpu = run_webcam(clips[size], Path(tmp) / "rec.mp4", mode, args.model)
                    print(f"round {r + 1}  {size[0]}x{size[1]}  --smooth {mode:5}  {done}/{done + dropped} frames "
                          f"stylised ({100 * dropped / max(1, done + dropped):.1f}% dropped, "
                          f"{done / args.seconds:.1f} fps)  CPU {cpu / wall:.2f} cores", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
