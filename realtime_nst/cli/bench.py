"""``rtnst bench``: frames per second of models, alone and in the video pipeline."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure frames per second",
        description="Median time per frame after warm-up: the model alone (onnxruntime run), the model with "
                    "pre/post-processing, and end to end (decode + stylise + encode of an H.264 clip: synthetic, or "
                    "--clip; smoothed as `rtnst video` smooths unless --smooth says otherwise).")
    p.add_argument("--model", "-m", action="append", help="model file or shipped name; repeat for several (default: the shipped default)")
    p.add_argument("--sizes", default="640x360,1280x720", help="comma-separated WxH list (default: 640x360,1280x720)")
    p.add_argument("--device", action="append", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="provider(s) to measure; repeat for several (default: auto)")
    p.add_argument("--frames", type=int, default=30, help="timed frames per measurement (default: 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames first (default: 5)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure everything N times, models and sizes alternating, and print each row's median fps "
                        "with its range over the rounds: a shared or noisy machine drifts, and alternating keeps "
                        "a comparison of models fair (default: 1)")
    p.add_argument("--model-only", action="store_true", help="skip the end-to-end pipeline measurement")
    p.add_argument("--clip", metavar="VIDEO",
                   help="end to end on this video's first --frames frames, scaled to each size, instead of synthetic "
                        "texture (stylised, synthetic texture costs the H.264 encoder 2-3x what real footage does)")
    from ..runtime.choices import SMOOTH_KINDS, VIDEO_SMOOTH

    p.add_argument("--smooth", choices=SMOOTH_KINDS, default=VIDEO_SMOOTH,
                   help=f"temporal smoothing in the end-to-end run, at the strength measured for the model (default: "
                        f"{VIDEO_SMOOTH}, as `rtnst video` runs)")
    p.add_argument("--threads", type=int, help="onnxruntime threads per frame (default: one per core for the model "
                   "alone; end to end as `rtnst video` runs: one each, a frame per core at once)")
    p.add_argument("--graph", choices=["tuned", "stored", "both"], default="tuned",
                   help="on the CPU, run each model's graph as every rtnst command does (tuned: a small net's rewritten "
                        "for the kernels where the CPU has AVX-512), as the file stores it (stored), or both side by "
                        "side (default: tuned)")
    p.add_argument("--max-side", type=int, metavar="PX", dest="max_side_px",
                   help="run every model on a copy with this long side, output at the frame size (default: the "
                        "model's native size if it declares one, else the frame size)")
    f = p.add_argument_group("foreign models (ONNX files not exported by rtnst)",
                             "these apply to each foreign --model; rtnst's own models keep the conventions in their metadata, "
                             "so a shipped model and a foreign one compare in one run")
    f.add_argument("--input-range", choices=["0-255", "0-1"], help="pixel range the foreign models take and return")
    f.add_argument("--channel-order", choices=["rgb", "bgr"], help="channel order the foreign models take")
    f.add_argument("--pad-multiple", type=int, metavar="N", help="pad frames so sides are multiples of N")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import statistics
    from pathlib import Path

    from ..errors import OptionError
    from ..evaluation.bench import bench, clip_frames, cpu_model
    from ..runtime.cpu_layout import wide_blocks
    from ..frames import parse_size
    from ..registry import resolve_model
    from ..runtime.stylizer import is_foreign

    if args.frames <= 0 or args.warmup < 0 or args.rounds <= 0:
        raise OptionError("--frames and --rounds must be positive and --warmup not negative")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes:
        raise OptionError(f"--sizes needs at least one WxH, got {args.sizes!r}")
    if args.threads is not None and args.threads < 1:  # said now, not after the first model's pass
        raise OptionError(f"--threads must be at least 1, got {args.threads}")
    clip = None
    if args.clip and not args.model_only:
        clip = Path(args.clip)
        clip_frames(clip, (64, 36), 1)  # not a video, or no frame: said now, not after the first model's run
    foreign = dict(input_range=args.input_range, channel_order=args.channel_order, pad_multiple=args.pad_multiple)
    paths = [resolve_model(m) for m in args.model or [None]]
    opts = {path: {**(foreign if is_foreign(path) else {}), "max_side_px": args.max_side_px} for path in paths}
    log = logging.getLogger("rtnst")
    log.info("rtnst: CPU: %s, %d cores; onnxruntime's kernels: %s", cpu_model(), os.cpu_count() or 1,
             "AVX-512 (small nets' graphs rewritten for them, see --graph)" if wide_blocks() else "not AVX-512")
    print(f"{'model':36} {'provider':22} {'size':>10} {'runs at':>10} {'model fps':>10} {'+pre/post':>10} {'end-to-end':>11}"
          + ("  model fps range" if args.rounds > 1 else ""))
    if not args.model_only:
        log.info("rtnst: end-to-end: `rtnst video --smooth %s` of %s at each size", args.smooth,
                 args.clip or "a synthetic clip")
    forms = {"tuned": [True], "stored": [False], "both": [False, True]}[args.graph]
    rows: dict[tuple, list] = {}
    for i in range(args.rounds):
        for path in paths:
            for device in args.device or ["auto"]:
                for tuned in forms:
                    for r in bench(str(path), sizes, device=device, frames=args.frames, warmup=args.warmup,
                                   end_to_end=not args.model_only, threads=args.threads, clip=clip,
                                   smooth=args.smooth, cpu_form=tuned, **opts[path]):
                        if len(forms) > 1:
                            r.model = f"{r.model} ({'tuned' if tuned else 'stored'})"
                        if args.rounds == 1:
                            _print_row(r.model, r.provider, r.size, r.inference_size, 1000 / r.model_ms,
                                       1000 / r.frame_ms, r.end_to_end_fps)
                        rows.setdefault((str(path), device, tuned, r.size), []).append(r)
        if args.rounds > 1:
            print(f"rtnst: round {i + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    if args.rounds > 1:
        for runs in rows.values():
            fps = [1000 / r.model_ms for r in runs]
            e2e = [r.end_to_end_fps for r in runs if r.end_to_end_fps]
            _print_row(runs[0].model, runs[0].provider, runs[0].size, runs[0].inference_size, statistics.median(fps),
                       statistics.median([1000 / r.frame_ms for r in runs]), statistics.median(e2e) if e2e else None,
                       extra=f"  {min(fps):.1f}-{max(fps):.1f}")
    return 0


def _print_row(model: str, provider: str, size: tuple[int, int], inference: tuple[int, int], model_fps: float,
               frame_fps: float, e2e_fps: float | None, *, extra: str = "") -> None:
    e2e = f"{e2e_fps:8.1f} fps" if e2e_fps else "         -"
    runs_at = f"{inference[0]}x{inference[1]}"
    print(f"{model[:36]:36} {provider[:22]:22} {size[0]:>5}x{size[1]:<4} {runs_at:>10} {model_fps:10.1f} {frame_fps:10.1f} "
          f"{e2e:>11}{extra}", flush=True)
