"""``rtnst bench``: frames per second of models, alone and in the video pipeline."""

from __future__ import annotations

import argparse

from ..frames import parse_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure frames per second",
        description="Median time per frame after warm-up: the model alone (onnxruntime run), the model with "
                    "pre/post-processing, and end to end (decode + stylise + encode of a synthetic H.264 clip).")
    p.add_argument("--model", "-m", action="append", help="model file or shipped name; repeat for several (default: the shipped default)")
    p.add_argument("--sizes", default="640x360,1280x720", help="comma-separated WxH list (default: 640x360,1280x720)")
    p.add_argument("--device", action="append", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="provider(s) to measure; repeat for several (default: auto)")
    p.add_argument("--frames", type=int, default=30, help="timed frames per measurement (default: 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames first (default: 5)")
    p.add_argument("--model-only", action="store_true", help="skip the end-to-end pipeline measurement")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: one per core)")
    p.add_argument("--input-range", choices=["0-255", "0-1"], help="for foreign models (see rtnst video --help)")
    p.add_argument("--channel-order", choices=["rgb", "bgr"])
    p.add_argument("--pad-multiple", type=int)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import bench
    from ..errors import OptionError
    from ..registry import resolve_model

    if args.frames <= 0 or args.warmup < 0:
        raise OptionError("--frames must be positive and --warmup not negative")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    opts = dict(input_range=args.input_range, channel_order=args.channel_order, pad_multiple=args.pad_multiple)
    print(f"{'model':28} {'provider':22} {'size':>10} {'model fps':>10} {'+pre/post':>10} {'end-to-end':>11}")
    for model in args.model or [None]:
        path = resolve_model(model)
        for device in args.device or ["auto"]:
            for r in bench(str(path), sizes, device=device, frames=args.frames, warmup=args.warmup,
                           end_to_end=not args.model_only, threads=args.threads, **opts):
                e2e = f"{r.end_to_end_fps:8.1f} fps" if r.end_to_end_fps else "         -"
                print(f"{r.model[:28]:28} {r.provider[:22]:22} {r.size[0]:>5}x{r.size[1]:<4} "
                      f"{1000 / r.model_ms:10.1f} {1000 / r.frame_ms:10.1f} {e2e:>11}", flush=True)
    return 0
