"""Store how the runtime runs an exported model in its metadata, without re-exporting it.

    python tools/stamp_model.py models/*-quality.onnx --max-side 640
    python tools/stamp_model.py models/*-realtime.onnx --margin 4
    python tools/build_models.py models/*.onnx      # the manifest's sha256 changes

--max-side (``rtnst.max_side_px``): the long side the model is made to run at; the runtime stylises
at this size when the user gives no ``--max-side`` and scales the result back to the frame's size.
--margin (``rtnst.margin_px``): the runtime reflect-pads every frame by this much and crops it off
the output, so what a net with zero padding paints along the image's edge falls outside the frame.
Models exported since their net declared these (``NATIVE_MAX_SIDE_PX``, ``INFERENCE_MARGIN_PX``)
carry them already; this stamps files exported before (graph and weights stay as they are).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime_nst.errors import RtnstError  # noqa: E402
from realtime_nst.modelfile import META_MARGIN, META_MAX_SIDE, update_metadata  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="exported .onnx models (rewritten in place)")
    ap.add_argument("--max-side", type=int, metavar="PX", help="native long side in pixels")
    ap.add_argument("--margin", type=int, metavar="PX", help="reflected margin around each frame, in pixels")
    args = ap.parse_args(argv)
    meta = {}
    if args.max_side is not None:
        if args.max_side <= 0:
            return _error(f"--max-side must be positive, got {args.max_side}")
        meta[META_MAX_SIDE] = str(args.max_side)
    if args.margin is not None:
        if args.margin < 0:
            return _error(f"--margin must be 0 or more, got {args.margin}")
        meta[META_MARGIN] = str(args.margin)
    if not meta:
        return _error("give --max-side, --margin or both")
    for model in args.models:
        if not model.is_file():
            return _error(f"{model}: no such file")
    try:
        for model in args.models:
            update_metadata(model, meta)
            said = []
            if args.max_side is not None:
                said.append(f"runs at a long side of {args.max_side} px unless --max-side says otherwise")
            if args.margin is not None:
                said.append(f"gets a {args.margin} px reflected margin")
            print(f"{model}: {'; '.join(said)}")
    except RtnstError as exc:
        return _error(str(exc))
    return 0


def _error(message: str) -> int:
    print(f"stamp_model: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
