"""``rtnst eval quality`` (style/content distances on images) and ``rtnst eval flicker`` (temporal
consistency of a model, with or without smoothing, on a video)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from ..errors import OptionError
from ..runtime.choices import DEFAULT_STRENGTH, SMOOTH_KINDS
from .common import add_model_options, make_stylizer


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure a model: style/content quality or flicker",
                       description="Measure a model: style and content distances on images (quality), "
                                   "or flicker on a video (flicker).")
    evsub = p.add_subparsers(dest="eval_command", metavar="WHAT", parser_class=type(p))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    q = evsub.add_parser("quality", help="style distance S and content distance C of a model's outputs",
                         description="Stylise images as rtnst image does (with the model's default options: "
                                     "at the model's native size if it has one, else the photo's own, the "
                                     "result at the photo's size) and print the style distance S (Gram matrices of "
                                     "VGG16 relu1_2..relu4_3 against the style image) and the content "
                                     "distance C (relu3_3 against the input), per image and mean; and the shift "
                                     "sensitivity: how much the output changes when the input moves by 1-3 px "
                                     "(high for nets that paint a grid tied to the pixels instead of the scene); and the edge "
                                     "line: how much the outer 3 px differ from the band inside them, less the "
                                     "input's own, at the worst edge (levels 0-255; high for a painted frame).")
    q.add_argument("--content", required=True, metavar="DIR_OR_FILE", help="an image or a folder of images")
    q.add_argument("--style", required=True, metavar="S.jpg", help="the style image the model imitates")
    q.add_argument("--input-side", type=int, metavar="PX", dest="input_max_side_px",
                   help="scale each photo to this long side first (default: as it is, as rtnst image takes it; "
                        "the metric is always taken at a long side of 512 of the output)")
    _add_vgg_option(q)
    add_model_options(q)
    q.set_defaults(handler=run_quality)

    f = evsub.add_parser("flicker", help="warping error (flicker) and style distance on a video",
                         description="Stylise a video and measure flicker as the warping error E_warp of "
                                     "Lai et al. 2018 (flow and occlusions from the input video; pairs of frames "
                                     "across a scene cut are left out), for each smoothing mode, plus the mean "
                                     "style distance on every Nth frame so that smoothing cannot win by washing "
                                     "the style out. 'x floor' is E_warp over the input video's own; 'x contrast "
                                     "floor' over the E_warp a steady output as "
                                     "contrasty as this one would have (flow errors cost more on sharp strokes): "
                                     "near 1, the flicker is what the style's contrast explains.")
    f.add_argument("video", metavar="VIDEO", help="input video file")
    f.add_argument("--output", metavar="STYLED", help="score this already stylised video of VIDEO (as a user has it, "
                                                       "encoded) instead of stylising VIDEO here")
    f.add_argument("--smooth", type=_kinds, default=list(SMOOTH_KINDS), metavar="KIND[,KIND...]",
                   help="smoothing modes to compare, comma-separated, from none, ema, flow (default: all "
                        "three); the model runs once per frame for all of them")
    f.add_argument("--smooth-strength", type=_strengths, metavar="S[,S...]",
                   help="weight(s) of the previous output for ema and flow; several compare them in one pass "
                        f"(default: the model's measured value, else {DEFAULT_STRENGTH})")
    f.add_argument("--style", metavar="S.jpg", help="style image: also report the mean style distance (needs VGG weights)")
    f.add_argument("--style-every", type=int, default=10, metavar="N", help="style distance on every Nth frame (default 10)")
    _add_vgg_option(f)
    f.add_argument("--max-frames", type=int, metavar="N", help="only the first N frames")
    f.add_argument("--csv", metavar="F.csv", help="write per-frame E_warp and style distance")
    f.add_argument("--plot", metavar="F.png", help="plot E_warp per frame (needs matplotlib)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing --csv or --plot file")
    add_model_options(f)
    f.set_defaults(handler=run_flicker)


def _strengths(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected numbers between 0 and 1, got {text!r}")
    return list(dict.fromkeys(values))


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in SMOOTH_KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(SMOOTH_KINDS)}, got {text!r}")
    return list(dict.fromkeys(kinds))


def _add_vgg_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vgg-weights", metavar="FILE",
                   help="VGG16 weights (safetensors or .pth; default: $RTNST_VGG_WEIGHTS, else a download)")


def _progress(args: argparse.Namespace, total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total or None, desc=desc, unit="frame" if desc != "quality" else "image",
                disable=getattr(args, "quiet", False), leave=False)


def run_quality(args: argparse.Namespace) -> int:
    from ..errors import InputError, require
    from ..evaluation.quality import MIN_METRIC_SIDE_PX, content_paths, evaluate_quality

    require("torch", extra="train")
    if args.input_max_side_px is not None and args.input_max_side_px < MIN_METRIC_SIDE_PX:
        raise OptionError(f"--input-side must be at least {MIN_METRIC_SIDE_PX} px, got {args.input_max_side_px}")

    paths = content_paths(args.content)
    if not paths:
        raise InputError(f"no images in {args.content}")
    with make_stylizer(args) as stylizer, _progress(args, len(paths), "quality") as bar:
        rows = evaluate_quality(stylizer, paths, args.style, vgg_weights=args.vgg_weights,
                                input_max_side_px=args.input_max_side_px, progress=bar)
    width = max(len(r.name) for r in rows)
    print(f"{'image':<{width}}  {'S':>10}  {'C':>10}  {'shift':>8}  {'edge':>6}")
    for r in rows:
        print(f"{r.name:<{width}}  {r.style_distance:10.4g}  {r.content_distance:10.4g}  {r.shift:8.4f}  {r.edge:6.1f}")
    s = sum(r.style_distance for r in rows) / len(rows)
    c = sum(r.content_distance for r in rows) / len(rows)
    sh = sum(r.shift for r in rows) / len(rows)
    edge = sum(r.edge for r in rows) / len(rows)
    print(f"{'mean':<{width}}  {s:10.4g}  {c:10.4g}  {sh:8.4f}  {edge:6.1f}")
    return 0


def run_flicker(args: argparse.Namespace) -> int:
    from ..evaluation.flicker import evaluate_flicker, plot, read_video, write_csv
    from ..files import check_output_path
    from ..imageio import read_image
    from ..runtime.smoothing import make_smoother, strength_for

    if args.max_frames is not None and args.max_frames < 2:
        raise OptionError(f"--max-frames must be at least 2 (flicker is between frames), got {args.max_frames}")
    if args.style_every < 1:
        raise OptionError(f"--style-every must be at least 1, got {args.style_every}")
    for path in filter(None, (args.csv, args.plot)):  # before minutes of work, not after
        check_output_path(Path(path), overwrite=args.overwrite, inputs=(Path(args.video),))
    meter = None
    if args.style:
        from ..evaluation.quality import QualityMeter

        meter = QualityMeter(read_image(args.style), vgg_weights=args.vgg_weights)
    else:
        print("rtnst: no --style given: skipping the style distance (E_warp alone can be lowered by "
              "washing the style out)")
    frames, count = read_video(args.video, max_frames=args.max_frames)
    if args.output:  # the frames of a finished output stand in for the model
        styled, _ = read_video(args.output, max_frames=args.max_frames)
        made: list = []
        longer: list[str] = []  # which of the two holds frames the other lacks

        def paired():  # frame t of the video with frame t of the output, as far as both go
            for out in styled:
                frame = next(frames, None)
                if frame is None:
                    longer.append("output")
                    return
                made.append(out)
                yield frame
            if next(frames, None) is not None:
                longer.append("video")

        with _progress(args, count, "flicker") as bar:
            results = evaluate_flicker(lambda frame: made.pop(), paired(), {"file": None}, meter=meter,
                                       style_every=args.style_every, progress=bar)
        if longer:
            print(f"rtnst: scored the first {results['file'].frames} frames only: the {longer[0]} holds more "
                  "(an output made with --max-frames, or from another clip?)")
        strengths = []
    else:
        with make_stylizer(args, spin=False) as stylizer, _progress(args, count, "flicker") as bar:
            strengths = [strength_for(a, stylizer.info.smooth_strength) for a in args.smooth_strength or [None]]
            smoothers = {}
            for kind in args.smooth:
                for a in ([None] if kind == "none" else strengths):
                    name = kind if a is None or len(strengths) == 1 else f"{kind}@{a:g}"
                    smoothers[name] = make_smoother(kind, strength=a if a is not None else 0.0)
            results = evaluate_flicker(stylizer.stylize, frames, smoothers, meter=meter,
                                       style_every=args.style_every, progress=bar)
        if set(args.smooth) == {"none"}:
            strengths = []  # nothing was smoothed: no strength to report
    _print_flicker(args, results, strengths)
    if args.csv:
        write_csv(args.csv, results)
    if args.plot:
        name = os.path.basename(args.output or args.model or "default model")
        plot(args.plot, results, title=f"{os.path.basename(args.video)} / {name}")
    return 0


def _print_flicker(args: argparse.Namespace, results: dict, strengths: list[float]) -> None:
    """The table: E_warp (and against no smoothing), style distance, ghosting, smoothing time, and
    whether each mode meets the target max(0.5 x E_warp unsmoothed, the input's own E_warp)."""
    from ..evaluation.flicker import INPUT, contrast_floor

    floor = results.pop(INPUT)
    n = floor.frames
    if n < 2:
        raise OptionError(f"{args.video}: {n} frame(s) decoded; flicker needs at least 2")
    base = results.get("none")
    target = max(0.5 * base.mean_e_warp, floor.mean_e_warp) if base is not None else None
    width = max(6, *(len(k) for k in results))
    rate = f", strength {', '.join(f'{a:g}' for a in strengths)}" if strengths else ""
    if floor.cuts:
        rate += f"; {floor.cuts} scene cut{'s' if floor.cuts > 1 else ''} left out"
    print(f"{os.path.basename(args.video)}: {n} frames{rate}; the input's own E_warp (floor) {floor.mean_e_warp:.4g}"
          + (f"; target max(0.5 x none, floor) {target:.4g}" if target is not None else ""))
    print(f"{'smooth':<{width}}  {'E_warp':>10}  {'vs none':>8}  {'x floor':>7}  {'x contrast floor':>16}  {'style S':>10}"
          f"  {'vs none':>8}  {'ghosting':>8}  {'ms/frame':>8}  target")
    for name, res in results.items():
        e, s, g = res.mean_e_warp, res.mean_style, res.mean_ghosting
        de = f"{100 * (e / base.mean_e_warp - 1):+7.1f}%" if base is not None and base.mean_e_warp > 0 else ""
        ds = (f"{100 * (s / base.mean_style - 1):+7.1f}%"
              if base is not None and s is not None and base.mean_style else "")
        xf = f"{e / floor.mean_e_warp:7.2f}" if floor.mean_e_warp > 0 else f"{'-':>7}"
        cf = contrast_floor(res, floor)
        xc = f"{e / cf:16.2f}" if cf > 0 else f"{'-':>16}"
        stxt = f"{s:10.4g}" if s is not None else f"{'-':>10}"
        gtxt = f"{g:8.4f}" if g is not None else f"{'-':>8}"
        ms = f"{res.ms_per_frame:8.2f}" if name not in ("none", "file") else f"{'-':>8}"
        meets = "" if target is None or name == "none" else ("met" if e <= target else "missed")
        print(f"{name:<{width}}  {e:10.4g}  {de:>8}  {xf}  {xc}  {stxt}  {ds:>8}  {gtxt}  {ms}  {meets}")
    results[INPUT] = floor
    if any(math.isnan(r.mean_e_warp) for r in results.values()):
        print("rtnst: no two frames in a row show the same scene: E_warp is undefined (nan)")
