"""``rtnst webcam``: live stylisation with a preview window, recording and a virtual camera."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

from .common import add_model_options, add_smoothing_options, make_stylizer
from .video import make_smoother_from

log = logging.getLogger("rtnst")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "webcam", help="stylise a camera live",
        description="Stylise a camera (or a stream URL or video file standing in for one) live. Keys in the "
                    "window: q quit, space pause, s snapshot, n/p next/previous model (several --model), "
                    "+/- strength. Live sources keep only the newest frame, so latency never builds up.")
    p.add_argument("--camera", default="0", help="camera index, device path (/dev/video0), URL, or video file (default: 0)")
    p.add_argument("--camera-size", metavar="WxH", help="ask the camera for this capture size")
    p.add_argument("--no-window", action="store_true", help="no preview window (headless; stop with Ctrl-C)")
    p.add_argument("--record", metavar="FILE",
                   help="also record the stylised frames to a video file (.mp4, .mkv, .webm, ... or an animated .gif)")
    p.add_argument("--overwrite", action="store_true", help="replace the --record file if it exists")
    p.add_argument("--vcam", action="store_true",
                   help="send frames to a virtual camera via pyvirtualcam (extra 'vcam'; on Linux needs v4l2loopback)")
    p.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    p.add_argument("--vcam-backend", metavar="NAME",
                   help="pyvirtualcam backend: v4l2loopback (Linux), obs or unitycapture (Windows), obs (macOS); "
                        "default: the platform's")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--snapshot-dir", default=".", help="where the s key saves PNG snapshots (default: .)")
    add_model_options(p, many=True)
    add_smoothing_options(p)
    p.set_defaults(handler=run)


class _TimedRecorder:
    """Records live frames with wall-clock timestamps, so the file plays at the real pace."""

    def __init__(self, sink) -> None:
        self.sink, self.t0, self.last_ms = sink, None, -1

    def write(self, frame) -> None:
        now = time.perf_counter()
        self.t0 = self.t0 if self.t0 is not None else now
        # Encoders reject repeated timestamps: two frames within one millisecond get consecutive ones.
        self.last_ms = max(round((now - self.t0) * 1000), self.last_ms + 1)
        self.sink.write(frame, self.last_ms)

    def close(self) -> None:
        self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


def _has_display() -> bool:
    """Whether a window can open: always on Windows and macOS; on Linux and other X11/Wayland
    systems only with DISPLAY or WAYLAND_DISPLAY set."""
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError, OutputError
    from ..files import check_output_path
    from ..frames import parse_size
    from ..runtime.background import BackgroundSink
    from ..runtime.live import run_live
    from ..runtime.containers import check_video_output
    from ..runtime.sinks import open_file_sink
    from ..runtime.session import plan_threads
    from ..runtime.camera import CameraSource
    from ..runtime.vcam import VirtualCameraSink
    from ..signals import stop_on_signals

    if not args.no_window and not _has_display():
        # OpenCV's Qt window would abort the process (exit 134) without a word of ours.
        raise OptionError("there is no display to open the preview window on (DISPLAY is not set): pass --no-window "
                          "and --record FILE or --vcam, or use rtnst serve to watch in a browser")
    if args.max_frames is not None and args.max_frames <= 0:
        raise OptionError(f"--max-frames must be positive, got {args.max_frames}")
    if args.record:
        check_output_path(Path(args.record), overwrite=args.overwrite, inputs=(Path(str(args.camera)),))
        check_video_output(args.record)
    snap_dir = Path(args.snapshot_dir)
    if not snap_dir.is_dir():
        raise OptionError(f"--snapshot-dir {snap_dir} is not a folder")
    size = parse_size(args.camera_size) if args.camera_size else (None, None)
    models = args.model or [None]
    plan = plan_threads(threads=args.threads)
    stylizers = [make_stylizer(args, m, threads=plan.threads) for m in models]
    workers = plan.workers_for(*stylizers)  # frames stylised ahead while one is shown
    smoother = make_smoother_from(args, stylizers[0])  # of the first model: the one shown first
    sinks = []
    broken = False  # a sink itself failed: its file is not worth keeping
    try:
        with CameraSource(args.camera, width=size[0], height=size[1]) as source:
            w, h = args.output_size or source.size
            if args.record:
                recorder = open_file_sink(args.record, width=w, height=h, fps=Fraction(round(source.fps)),
                                          time_base=Fraction(1, 1000), overwrite=args.overwrite, progress=not args.quiet)
                # encoded on a thread of its own: the live loop's thread hands the frame over and goes on
                sinks.append(_TimedRecorder(BackgroundSink(recorder)))
            if args.vcam:
                sinks.append(VirtualCameraSink(w, h, source.fps, device=args.vcam_device, backend=args.vcam_backend))
            stop = threading.Event()
            with stop_on_signals(stop):
                n = run_live(source, stylizers, window=not args.no_window, sinks=sinks, smoother=smoother,
                             snapshot_dir=snap_dir, max_frames=args.max_frames, stop=stop, workers=workers)
            dropped = source.frames_dropped
            log.info("rtnst: %d frame%s stylised, %d camera frame%s dropped to keep latency low",
                     n, "" if n == 1 else "s", dropped, "" if dropped == 1 else "s")
    except OutputError:
        broken = True
        raise
    finally:
        # A camera that disconnects still leaves a finished recording of what was seen.
        for sink in sinks:
            sink.abort() if broken else sink.close()
        for st in stylizers:
            st.close()
    return 0
