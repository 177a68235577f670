"""``rtnst models``: the shipped style models (models/manifest.json)."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the shipped style models",
                       description="List the style models shipped in the models folder ($RTNST_MODELS_DIR "
                                   "overrides it). Pass a NAME or style to --model of image, video and webcam.")
    p.add_argument("--json", action="store_true", help="print the manifest entries as JSON")
    p.set_defaults(handler=run)


def _macs(entry: dict) -> str:
    macs = entry.get("macs_per_pixel")
    if not isinstance(macs, (int, float)):
        return "?"
    return f"{macs / 1000:.1f}k" if macs >= 1000 else f"{macs:.0f}"


def _runs_at(entry: dict) -> str:
    side = entry.get("max_side_px")
    return f"{side} px" if isinstance(side, int) and side > 0 else "any size"


def run(args: argparse.Namespace) -> int:
    from ..registry import models_dir, shipped_models

    folder = models_dir()
    models = shipped_models(folder)
    if args.json:
        print(json.dumps([m.entry for m in models], indent=2))
        return 0
    if not models:
        print(f"no shipped models in {folder} yet: train one with `rtnst train`, export it with `rtnst export`, "
              "and pass it with --model FILE.onnx")
        return 0
    rows = [("NAME", "STYLE", "TIER", "MACs/px", "RUNS AT", "DEFAULT")]
    for m in models:
        mark = "*" if m.default else ""
        missing = "" if m.path.is_file() else "  (file missing)"
        rows.append((m.name, m.style, m.tier, _macs(m.entry), _runs_at(m.entry), mark + missing))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    print(f"\n{len(models)} models in {folder}; * = used when --model is not given; RUNS AT: the long side "
          "a model stylises at unless --max-side says otherwise (the result is scaled back to the input's size)")
    return 0
