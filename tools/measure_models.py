"""Measure models as users get them and keep the figures for the shipped-models table.

    python tools/measure_models.py great_wave-realtime udnie-realtime ... \\
        --content ../shared/assets/photos/content --styles ../shared/assets/styles \\
        --clips ../shared/assets/videos/bunny_640x360.mp4,../shared/assets/videos/people_walking.mp4 \\
        --vgg-weights ../shared/assets/vgg/vgg16_imagenet_caffe_rgb_fp32.safetensors

For each model (a shipped name or an .onnx file; NAME=FILE names a foreign one, e.g. a reference):
S, C and shift as `rtnst eval quality` gives them (photos at their own size, metric at 512), the
unsmoothed E_warp on each clip over the clip's own E_warp (its floor, as `rtnst eval flicker`), and
fps as `rtnst bench` gives them (model alone at 640x360, end to end for a 1280x720 output). The
figures go to MODELS_DIR/measurements.json, keyed by model name with the file's sha256: a model
measured before is skipped unless its file changed or --again is given. tools/build_models.py puts
them into models/README.md. Speeds vary between machines and runs: the CPU model is recorded, and
models compared for speed should be measured in one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_models import MEASUREMENTS, sha256  # noqa: E402  (this folder is on sys.path)
from realtime_nst.errors import RtnstError  # noqa: E402
from realtime_nst.files import atomic_write  # noqa: E402



def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def parse(spec: str) -> tuple[str, Path, str | None]:
    """(name, file, style image name or None) of a shipped name, an .onnx path or NAME=FILE[:STYLE.jpg]."""
    from realtime_nst.registry import resolve_model

    name, style = "", None
    if "=" in spec:
        name, spec = spec.split("=", 1)
        spec, _, style = spec.partition(":")
    path = Path(resolve_model(spec))
    return name or path.name.removesuffix(".onnx"), path, style or None


def style_image(path: Path, styles: Path, given: str | None) -> Path:
    from realtime_nst.modelfile import META_STYLE_IMAGE
    from realtime_nst.runtime.session import open_session

    found = given or open_session(path, device="cpu").get_modelmeta().custom_metadata_map.get(META_STYLE_IMAGE)
    if not found:
        raise RtnstError(f"{path.name} does not name its style image; give it as NAME=FILE:STYLE.jpg")
    return styles / found


def measure(path: Path, style: Path, args) -> dict:
    from realtime_nst.evaluation.bench import bench
    from realtime_nst.evaluation.flicker import INPUT, evaluate_flicker, read_video
    from realtime_nst.evaluation.quality import content_paths, evaluate_quality
    from realtime_nst.runtime.stylizer import OnnxStylizer

    opts = {"pad_multiple": args.pad_multiple} if args.pad_multiple else {}
    result: dict = {}
    with OnnxStylizer(path, device="cpu", **opts) as st:
        rows = evaluate_quality(st, content_paths(args.content), style, vgg_weights=args.vgg_weights)
        result["S"] = sum(r.style_distance for r in rows) / len(rows)
        result["C"] = sum(r.content_distance for r in rows) / len(rows)
        result["shift"] = sum(r.shift for r in rows) / len(rows)
        result["e_warp"] = {}
        for clip in args.clips:
            frames, _ = read_video(clip, max_frames=args.flicker_frames)
            res = evaluate_flicker(st.stylize, frames, {"none": None})
            none, floor = res["none"].mean_e_warp, res[INPUT].mean_e_warp
            result["e_warp"][Path(clip).name] = {"none": none, "floor": floor, "x_floor": none / floor}
    (row,) = bench(str(path), [(640, 360)], device="cpu", frames=args.bench_frames, end_to_end=False, **opts)
    (big,) = bench(str(path), [(1280, 720)], device="cpu", frames=args.bench_frames, **opts)
    result["fps"] = {"model_640x360": 1000 / row.model_ms, "end_to_end_1280x720": big.end_to_end_fps,
                     "runs_at_1280x720": "x".join(map(str, big.inference_size))}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="shipped model names, .onnx files, or NAME=FILE[:STYLE.jpg]")
    ap.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    ap.add_argument("--content", required=True, help="folder of photos for S, C and shift")
    ap.add_argument("--styles", required=True, type=Path, help="folder holding the style images")
    ap.add_argument("--clips", required=True, type=lambda s: [c for c in s.split(",") if c], help="videos, comma-separated")
    ap.add_argument("--vgg-weights", help="VGG16 weights (default: $RTNST_VGG_WEIGHTS)")
    ap.add_argument("--pad-multiple", type=int, help="for foreign models (e.g. 4 for lengstrom's)")
    ap.add_argument("--flicker-frames", type=int, default=240, help="frames of each clip for E_warp (default: 240)")
    ap.add_argument("--bench-frames", type=int, default=60, help="frames timed for fps (default: 60)")
    ap.add_argument("--again", action="store_true", help="measure models whose figures are already there")
    args = ap.parse_args(argv)
    out = args.models_dir / MEASUREMENTS
    data = json.loads(out.read_text()) if out.is_file() else {"models": {}}
    try:
        for spec in args.models:
            name, path, given_style = parse(spec)
            digest = sha256(path)
            if not args.again and data["models"].get(name, {}).get("sha256") == digest:
                print(f"{name}: measured before, skipped")
                continue
            t0 = time.perf_counter()
            figures = measure(path, style_image(path, args.styles, given_style), args)
            figures.update(sha256=digest, cpu=cpu_model(), date=time.strftime("%Y-%m-%d"))
            data["models"][name] = figures
            with atomic_write(out) as tmp:  # after each model: a long run keeps what it measured
                Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            ew = ", ".join(f"{k} {v['x_floor']:.1f}x" for k, v in figures["e_warp"].items())
            print(f"{name}: S {figures['S']:.4f} C {figures['C']:.3f} shift {figures['shift']:.3f}; E_warp/floor {ew}; "
                  f"{figures['fps']['model_640x360']:.1f} fps model at 640x360, "
                  f"{figures['fps']['end_to_end_1280x720']:.1f} fps end to end at 720p "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    except RtnstError as exc:
        print(f"measure_models: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
