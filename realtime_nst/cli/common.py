"""Options every stylising command shares, and turning them into a stylizer."""

from __future__ import annotations

import argparse

from ..errors import OptionError


def size_arg(text: str) -> tuple[int, int]:
    """parse_size as an argparse type: a bad WxH becomes argparse's one-line error, not a traceback."""
    from ..frames import parse_size  # imports OpenCV: only when a size is given

    try:
        return parse_size(text)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def time_arg(text: str) -> float:
    """A time in a video as an argparse type: seconds (90, 90.5) or [H:]M:S (1:30, 1:02:03.5)."""
    try:
        parts = [float(p) for p in text.split(":")]
        if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts) or any(p >= 60 for p in parts[1:]):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a time as seconds (90.5) or [H:]M:S (1:30.5), got {text!r}") from None
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def add_model_options(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    """Model choice and how to run it (``many``: --model may be repeated)."""
    g = p.add_argument_group("model")
    if many:
        g.add_argument("--model", "-m", action="append", metavar="MODEL",
                       help="ONNX model file or shipped style name (see `rtnst models`); repeat for several, switched "
                            "with n/p in the window (webcam) or on the page (serve)")
    else:
        g.add_argument("--model", "-m", metavar="MODEL", help="ONNX model file or shipped style name (see `rtnst models`); default: the shipped default")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="execution provider; auto tries TensorRT, then CUDA, then CPU (default: auto)")
    g.add_argument("--max-side", type=int, metavar="PX", dest="max_side_px",
                   help="resize so the long side is at most PX for inference; output is at source size "
                        "(default: the size the model is made for, `rtnst models` column RUNS AT, else the "
                        "frame's own; a PX above the frame's long side runs at the frame's size)")
    g.add_argument("--output-size", type=size_arg, metavar="WxH", help="output frame size (default: source size)")
    g.add_argument("--preserve-color", action="store_true", help="keep the source colours (transfer luminance only)")
    g.add_argument("--strength", type=float, default=1.0, metavar="0..1", help="blend with the source: 1 = full style (default), 0 = source")
    g.add_argument("--threads", type=int, metavar="N",
                   help="onnxruntime threads per frame (default: `rtnst video`, `webcam` and `serve` on the CPU: one, with a "
                        "frame per core stylised at once; otherwise one per core)")
    f = p.add_argument_group("foreign models (ONNX files not exported by rtnst)")
    f.add_argument("--input-range", choices=["0-255", "0-1"], help="pixel range the model takes and returns (default: from metadata, else 0-255)")
    f.add_argument("--channel-order", choices=["rgb", "bgr"], help="channel order the model takes (default: from metadata, else rgb)")
    f.add_argument("--pad-multiple", type=int, metavar="N", help="pad frames so sides are multiples of N (default: from metadata, else 8)")


def make_stylizer(args: argparse.Namespace, model: str | None = None, *, spin: bool = True,
                  threads: int | None = None):
    """The stylizer the model options ask for; ``threads`` (onnxruntime's, per frame) overrides
    ``--threads``."""
    from ..registry import resolve_model
    from ..runtime.stylizer import OnnxStylizer

    path = resolve_model(model if model is not None else args.model)
    return OnnxStylizer(
        path,
        device=args.device,
        input_range=args.input_range,
        channel_order=args.channel_order,
        pad_multiple=args.pad_multiple,
        max_side_px=args.max_side_px,
        output_size=args.output_size,
        preserve_color=args.preserve_color,
        strength=args.strength,
        threads=threads or args.threads,
        spin=spin,
    )


def note_native_size(stylizer, width: int, height: int, args: argparse.Namespace, *, what: str = "stylised") -> bool:
    """Say once when the model's own size, not the input's, sets how large it paints (its strokes)."""
    import logging

    size = stylizer.inference_size(width, height) if hasattr(stylizer, "inference_size") else (width, height)
    if args.max_side_px is not None or size == (width, height):
        return False
    logging.getLogger("rtnst").info("rtnst: %s at %dx%d, the size the model is made for (--max-side PX for another)",
                                    what, *size)
    return True


def add_smoothing_options(parser: argparse.ArgumentParser, *, default: str = "none") -> None:
    from ..runtime.choices import DEFAULT_STRENGTH, SMOOTH_KINDS

    g = parser.add_argument_group("temporal smoothing (against flicker)")
    said = {kind: f"{kind}{' (default)' if kind == default else ''}" for kind in SMOOTH_KINDS}
    g.add_argument("--smooth", choices=SMOOTH_KINDS, default=default,
                   help=f"{said['none']}: each frame as the model paints it; {said['ema']}: blend with the previous "
                        f"output, nearly free but moving things leave ghosts; {said['flow']}: warp the previous output "
                        "along the optical flow of the input and blend where the flow is reliable (a few ms per frame "
                        "at 640x360, no ghosts, restarts at scene cuts)")
    g.add_argument("--smooth-strength", type=float, metavar="0..1",
                   help="weight of the previous output; higher is steadier but softer, 1 freezes the picture "
                        f"(default: the value measured for the model, in its metadata, else {DEFAULT_STRENGTH})")
