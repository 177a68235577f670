"""``rtnst export NAME.pt NAME.onnx``: checkpoint to a checked ONNX model (see realtime_nst.export)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export a trained checkpoint to ONNX (checked against PyTorch)",
        description="Export a checkpoint from `rtnst train` (or a pytorch/examples fast_neural_style .pth) to an "
                    "ONNX model with dynamic N/H/W and rtnst metadata. The model is kept only if onnx.checker "
                    "passes and onnxruntime matches PyTorch (PSNR >= 45 dB) at several sizes, odd ones included.",
    )
    p.add_argument("checkpoint", help="NAME.pt from `rtnst train`, a pytorch/examples .pth (quality tier), or a model rtnst "
                   "exported (re-exported in the current, faster graph form; its training record kept)")
    p.add_argument("output", help="NAME.onnx (fp32); --fp16/--int8 add NAME.fp16.onnx / NAME.int8.onnx beside it")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset, at least 17 (default: 18)")
    p.add_argument("--fp16", action="store_true",
                   help="also write NAME.fp16.onnx for GPUs (fp32 input/output and instance norm, fp16 elsewhere)")
    p.add_argument("--int8", action="store_true",
                   help="also write NAME.int8.onnx (static QDQ quantisation, per-channel weights), "
                        "only if it is faster than fp32 on this CPU; its PSNR vs fp32 is reported")
    p.add_argument("--calib", metavar="DIR", help="photos for --int8 calibration (searched recursively; up to 16 used)")
    p.add_argument("--force-int8", action="store_true", help="write the int8 model even when it is not faster")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require

    require("torch", extra="train")
    require("onnx", extra="train")
    from ..training.export import export

    report = export(args.checkpoint, args.output, fp16=args.fp16, int8=args.int8 or args.force_int8,
                    calib=args.calib, opset=args.opset, overwrite=args.overwrite, force_int8=args.force_int8)
    parity = ", ".join(f"{size} {db:.1f} dB" for size, db in report.parity_db)
    print(f"wrote {report.path} ({report.tier}); onnxruntime vs PyTorch: {parity}", file=sys.stdout)
    for name, note in report.variants.items():
        print(f"{name}: {note}", file=sys.stdout)
    return 0
