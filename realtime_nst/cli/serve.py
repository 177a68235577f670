"""``rtnst serve``: the live stylised camera on a local web page and as an MJPEG stream (OBS)."""

from __future__ import annotations

import argparse
import logging
import threading

from .common import add_model_options, add_smoothing_options, make_stylizer
from .video import make_smoother_from

log = logging.getLogger("rtnst")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="stylise a camera live and serve it to a browser or OBS",
        description="Stylise a camera (or a stream URL or video file standing in for one) live and serve it over "
                    "HTTP: a page with the image, fps, latency and controls (style, strength, smoothing), a clean "
                    "page with the image alone for an OBS Browser Source (/clean), and the bare MJPEG stream "
                    "(/stream.mjpg). One camera and one model run however many viewers watch; a slow viewer skips "
                    "frames. Stop with Ctrl-C.")
    p.add_argument("--camera", default="0", help="camera index, device path (/dev/video0), URL, or video file (default: 0)")
    p.add_argument("--camera-size", metavar="WxH", help="ask the camera for this capture size")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only); 0.0.0.0 opens it to the "
                        "network, and then every URL needs the token printed at start-up")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one, printed)")
    p.add_argument("--jpeg-quality", type=int, default=80, metavar="1..100", help="JPEG quality of the stream (default: 80)")
    add_model_options(p, many=True)
    add_smoothing_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from ..frames import parse_size
    from ..runtime.hub import serve_live
    from ..runtime.smoothing import smoother_for
    from ..runtime.session import plan_threads
    from ..runtime.camera import CameraSource
    from ..signals import stop_on_signals

    if not 0 <= args.port <= 65535:
        raise OptionError(f"--port must be 0..65535, got {args.port}")
    if not 1 <= args.jpeg_quality <= 100:
        raise OptionError(f"--jpeg-quality must be 1..100, got {args.jpeg_quality}")
    size = parse_size(args.camera_size) if args.camera_size else (None, None)
    # No spinning: onnxruntime's busy-waiting threads would take the cores the viewers' JPEG encoding needs.
    plan = plan_threads(threads=args.threads)
    stylizers = [make_stylizer(args, m, spin=False, threads=plan.threads) for m in (args.model or [None])]
    try:
        smoother = make_smoother_from(args, stylizers[0])
        smooth = smoother is not None
        if smoother is None:  # the page's switch turns on flow smoothing, the one without ghosts
            smoother = smoother_for("flow", stylizers[0], strength=args.smooth_strength)
        with CameraSource(args.camera, width=size[0], height=size[1]) as source:
            w, h = args.output_size or source.size

            def ready(server) -> None:
                print(f"rtnst: serving {w}x{h} on {server.url('/')}\n"
                      f"       OBS Browser Source ({w}x{h}, 30 fps): {server.url('/clean')}\n"
                      f"       MJPEG stream: {server.url('/stream.mjpg')}\n"
                      f"       Ctrl-C stops", flush=True)
                if server.token:
                    log.warning("rtnst: listening on %s: from another machine put this one's address in these URLs; "
                                "every request needs their token", args.host)

            stop = threading.Event()
            with stop_on_signals(stop):
                n = serve_live(source, stylizers, smoother=smoother, smooth=smooth, host=args.host, port=args.port,
                               jpeg_quality=args.jpeg_quality, stop=stop, on_ready=ready,
                               workers=plan.workers_for(*stylizers))
            dropped = source.frames_dropped
            log.info("rtnst: %d frame%s stylised, %d camera frame%s dropped to keep latency low",
                     n, "" if n == 1 else "s", dropped, "" if dropped == 1 else "s")
    finally:
        for st in stylizers:
            st.close()
    return 0
