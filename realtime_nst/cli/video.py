"""``rtnst video IN OUT``."""

from __future__ import annotations

import argparse
import logging

from .common import add_model_options, add_smoothing_options, make_stylizer, note_native_size, time_arg

log = logging.getLogger("rtnst")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "video", help="stylise a video file",
        description="Stylise every frame of a video file. The output has the same frame count and frame rate "
                    "(phone clips stored rotated come out upright, HDR ones in the colours of their SDR version), "
                    "smoothed along the optical flow against flicker (--smooth none: each frame as the model paints "
                    "it); audio is copied unchanged when the container allows it (else re-encoded, and said), "
                    "subtitle tracks where it can hold them (.mkv). Ctrl-C stops early and still leaves a playable "
                    "file with the frames done so far.")
    p.add_argument("input", metavar="IN", help="input video file")
    p.add_argument("output", metavar="OUT",
                   help="output video file (.mp4, .mkv, .mov, .webm, .avi, .ts, .mpg), or an animated .gif (no "
                        "sound; one 256-colour palette for the clip, made after the last frame; large: a 10 s "
                        "640x360 clip makes ~40 MB, so try --max-frames or --output-size first)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--max-frames", type=int, metavar="N",
                   help="only the first N frames, audio cut to match: a quick preview of settings on a long clip")
    p.add_argument("--start", type=time_arg, default=0.0, metavar="TIME",
                   help="stylise from this time on (seconds, or [H:]M:S as players show it: 1:30.5); the output "
                        "starts there, its sound too (.ts and .mpg files, which have no index, are read from "
                        "their start up to it)")
    p.add_argument("--end", type=time_arg, metavar="TIME", help="stylise up to this time (as --start)")
    from ..runtime.choices import DEFAULT_PRESET, VIDEO_SMOOTH, X264_PRESETS

    p.add_argument("--crf", type=int, default=18,
                   help="quality, lower is better: H.264 CRF 1-51 (default: 18); for .webm scaled to VP9's 0-63, "
                        "for .mpg to a like MPEG-1 quantiser; not used for .gif")
    p.add_argument("--preset", choices=X264_PRESETS, default=DEFAULT_PRESET,
                   help=f"H.264 encoding speed: slower presets make smaller files at the same --crf and take more "
                        f"CPU time from stylising (default: {DEFAULT_PRESET})")
    add_model_options(p)
    add_smoothing_options(p, default=VIDEO_SMOOTH)
    p.set_defaults(handler=run)


def make_smoother_from(args: argparse.Namespace, stylizer):
    """The smoother asked for, at --smooth-strength or else the strength measured for the model."""
    from ..runtime.smoothing import smoother_for

    return smoother_for(args.smooth, stylizer, strength=args.smooth_strength)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError, OptionError
    from ..files import check_output_path
    from ..runtime.session import plan_threads
    from ..runtime.containers import check_video_output
    from ..runtime.smoothing import strength_for
    from ..runtime.sources import VideoFileSource, is_stream_url
    from ..runtime.video import stylize_video

    if is_stream_url(args.input):
        raise InputError(f"IN must be a video file; {args.input} is a stream URL: stylise and record it with "
                         f"rtnst webcam --camera {args.input} --no-window --record {args.output}")
    check_output_path(Path(args.output), overwrite=args.overwrite, inputs=(Path(args.input),))
    check_video_output(args.output)  # a suffix FFmpeg cannot write fails before the model loads
    if args.smooth_strength is not None:
        strength_for(args.smooth_strength, None)  # a bad value fails before the model loads
    if args.end is not None and args.end <= args.start:
        raise OptionError(f"--end ({args.end:g} s) must come after --start ({args.start:g} s)")
    with VideoFileSource(args.input, start_s=args.start) as source:  # a bad input or --start fails before the model loads
        size = source.size  # upright: known from its first frame
    plan = plan_threads(threads=args.threads)
    with make_stylizer(args, spin=False, threads=plan.threads) as stylizer:
        smoother = make_smoother_from(args, stylizer)
        workers = plan.workers_for(stylizer)
        if not args.quiet:
            note_native_size(stylizer, *(args.output_size or size), args, what="stylising")
            if smoother is not None:
                log.info("rtnst: smoothing against flicker: %s at strength %g (--smooth none: off)", args.smooth,
                         smoother.strength)
        report = stylize_video(args.input, args.output, stylizer, smoother=smoother, overwrite=args.overwrite,
                               progress=not args.quiet, crf=args.crf, preset=args.preset,
                               max_frames=args.max_frames, start_s=args.start, end_s=args.end, workers=workers)
    if report.interrupted:
        log.warning("rtnst: interrupted: %s holds the first %d frames (playable, incomplete)",
                    report.output, report.frames_written)
        return 130
    log.info("rtnst: wrote %s (%d frames)", report.output, report.frames_written)
    return 0
