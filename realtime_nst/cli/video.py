"""``rtnst video IN... OUT``: one video to a file, or several videos / folders into a folder."""

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
                    "file with the frames done so far. Several videos and/or folders go into a folder (rtnst video "
                    "a.mp4 clips/ out_dir/); one that cannot be read is reported and skipped, and the run ends with "
                    "exit code 2 and the count.")
    p.add_argument("inputs", nargs="+", metavar="IN", help="input video file(s) or folder(s) of videos")
    p.add_argument("output", metavar="OUT",
                   help="output video file (.mp4, .mkv, .mov, .webm, .avi, .ts, .mpg), or an animated .gif (no "
                        "sound; one 256-colour palette for the clip, made after the last frame; large: a 10 s "
                        "640x360 clip makes ~40 MB, so try --max-frames or --output-size first); with several "
                        "inputs or a folder, a folder: each video under its own name (.mp4 where its own format "
                        "cannot be written)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--suffix", default="", help="added to output file names in folder mode, e.g. _mosaic")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also the videos in subfolders of a folder input (written to the same subfolders of OUT)")
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
    from ..files import check_outputs
    from ..runtime.containers import check_video_output
    from ..runtime.session import plan_threads
    from ..runtime.smoothing import strength_for
    from ..runtime.sources import VideoFileSource, is_stream_url
    from .batch import make_folders, plan_pairs

    for given in args.inputs:
        if is_stream_url(given):
            raise InputError(f"IN must be a video file; {given} is a stream URL: stylise and record it with "
                             f"rtnst webcam --camera {given} --no-window --record {args.output}")
    pairs = plan_pairs(args.inputs, args.output, find=lambda folder: _videos_in(folder, recursive=args.recursive),
                       recursive=args.recursive, suffix=args.suffix, written_as=_written_as)
    make_folders(pairs, args.output)
    check_outputs([dst for _, dst in pairs], overwrite=args.overwrite, inputs=[src for src, _ in pairs])
    for _, dst in pairs:
        check_video_output(dst)  # a suffix FFmpeg cannot write fails before the model loads
    if args.smooth_strength is not None:
        strength_for(args.smooth_strength, None)  # a bad value fails before the model loads
    if args.end is not None and args.end <= args.start:
        raise OptionError(f"--end ({args.end:g} s) must come after --start ({args.start:g} s)")
    if len(pairs) == 1:  # a bad input or --start fails before the model loads
        with VideoFileSource(pairs[0][0], start_s=args.start) as source:
            size = source.size  # upright: known from its first frame
    plan = plan_threads(threads=args.threads)
    failed: list[tuple[Path, InputError]] = []
    with make_stylizer(args, spin=False, threads=plan.threads) as stylizer:
        workers = plan.workers_for(stylizer)
        for n, (src, dst) in enumerate(pairs):
            smoother = make_smoother_from(args, stylizer)  # each clip's own history
            if not args.quiet and n == 0:
                if len(pairs) == 1:
                    note_native_size(stylizer, *(args.output_size or size), args, what="stylising")
                if smoother is not None:
                    log.info("rtnst: smoothing against flicker: %s at strength %g (--smooth none: off)", args.smooth,
                             smoother.strength)
            try:
                report = _stylise(args, src, dst, stylizer, smoother, workers)
            except InputError as exc:
                if len(pairs) == 1:
                    raise
                failed.append((src, exc))
                log.error("rtnst: skipped: %s", exc)  # the message names the file
                continue
            if report.interrupted:
                left = len(pairs) - n - 1
                rest = f"; {left} video{'' if left == 1 else 's'} not started" if left else ""
                log.warning("rtnst: interrupted: %s holds the first %d frames (playable, incomplete)%s",
                            report.output, report.frames_written, rest)
                return 130
            log.info("rtnst: wrote %s (%d frames)", report.output, report.frames_written)
    if failed:
        raise InputError(f"{len(failed)} of {len(pairs)} videos could not be stylised in full (listed above; first: "
                         f"{failed[0][0]}); the other {len(pairs) - len(failed)} were written to {args.output}")
    return 0


def _stylise(args: argparse.Namespace, src, dst, stylizer, smoother, workers: int):
    from ..runtime.video import stylize_video

    return stylize_video(src, dst, stylizer, smoother=smoother, overwrite=args.overwrite, progress=not args.quiet,
                         crf=args.crf, preset=args.preset, max_frames=args.max_frames, start_s=args.start,
                         end_s=args.end, workers=workers)


def _videos_in(folder, *, recursive: bool) -> list:
    from ..errors import InputError
    from ..runtime.containers import VIDEO_SUFFIXES

    videos = sorted(p for p in folder.glob("**/*" if recursive else "*") if p.is_file()
                    and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"folder {folder} holds no videos ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


def _written_as(suffix: str) -> str:
    """An output's suffix in a folder: the input's where rtnst can write that format, else .mp4."""
    from ..errors import OutputError
    from ..runtime.containers import check_video_output

    try:
        check_video_output(f"x{suffix}")
    except OutputError:
        return ".mp4"
    return suffix
