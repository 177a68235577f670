"""Store the long side a model is made to run at (``rtnst.max_side_px``) in an exported model.

    python tools/set_native_size.py models/*-quality.onnx --max-side 640
    python tools/build_models.py models/*.onnx      # the manifest's sha256 changes

The runtime stylises at this size when the user gives no ``--max-side`` and scales the result back
to the frame's size. Models exported since the net declared ``NATIVE_MAX_SIDE_PX`` carry it already;
this stamps files exported before, without re-exporting them (graph and weights stay as they are).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime_nst.errors import RtnstError  # noqa: E402
from realtime_nst.modelfile import META_MAX_SIDE, update_metadata  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="exported .onnx models (rewritten in place)")
    ap.add_argument("--max-side", type=int, required=True, metavar="PX", help="native long side in pixels")
    args = ap.parse_args(argv)
    if args.max_side <= 0:
        print(f"set_native_size: error: --max-side must be positive, got {args.max_side}", file=sys.stderr)
        return 2
    for model in args.models:
        if not model.is_file():
            print(f"set_native_size: error: {model}: no such file", file=sys.stderr)
            return 2
    try:
        for model in args.models:
            update_metadata(model, {META_MAX_SIDE: str(args.max_side)})
            print(f"{model}: runs at a long side of {args.max_side} px unless --max-side says otherwise")
    except RtnstError as exc:
        print(f"set_native_size: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
