"""Measure models as users get them and keep the figures for the shipped-models table.

    python tools/measure_models.py great_wave-realtime udnie-realtime ... \\
        --content ../shared/assets/photos/content --styles ../shared/assets/styles \\
        --clips ../shared/assets/videos/bunny_640x360.mp4,../shared/assets/videos/people_walking.mp4 \\
        --vgg-weights ../shared/assets/vgg/vgg16_imagenet_caffe_rgb_fp32.safetensors

For each model (a shipped name or an .onnx file; NAME=FILE names a foreign one, e.g. a reference):
S, C and shift as `rtnst eval quality` gives them (photos at their own size, metric at 512), the
unsmoothed E_warp on each clip over the clip's own E_warp (its floor, as `rtnst eval flicker`), and
fps as `rtnst bench` gives them (model alone at 640x360, end to end for a 1280x720 output, smoothed
as `rtnst video` smooths). The figures go to MODELS_DIR/measurements.json, keyed by model name with
the sha256 of the model (its smoothing strength left out: no figure depends on it); what was
measured before is skipped unless the model changed or --again is given, so --parts can measure
quality and flicker at one time and the speeds of all models later, in one run on a quiet machine
(speeds vary between machines and runs; the CPU model is recorded). tools/build_models.py puts the
figures into models/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_models import MEASUREMENTS, measured_sha256  # noqa: E402  (this folder is on sys.path)
from realtime_nst.errors import RtnstError  # noqa: E402
from realtime_nst.files import atomic_write  # noqa: E402



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

    meta = open_session(path, device="cpu", cpu_form=False).get_modelmeta().custom_metadata_map
    found = given or meta.get(META_STYLE_IMAGE)
    if not found:
        raise RtnstError(f"{path.name} does not name its style image; give it as NAME=FILE:STYLE.jpg")
    return styles / found


PARTS = ("quality", "flicker", "fps")
PART_KEYS = {"quality": "S", "flicker": "e_warp", "fps": "fps"}


def measure(path: Path, part: str, args, *, style: Path | None = None) -> dict:
    """One part of a model's figures: quality (S, C, shift), flicker (E_warp per clip) or fps."""
    from realtime_nst.evaluation.bench import bench, cpu_model
    from realtime_nst.evaluation.flicker import INPUT, contrast_floor, evaluate_flicker, read_video
    from realtime_nst.evaluation.quality import content_paths, evaluate_quality
    from realtime_nst.runtime.choices import VIDEO_SMOOTH
    from realtime_nst.runtime.stylizer import OnnxStylizer

    opts = {"pad_multiple": args.pad_multiple} if args.pad_multiple else {}
    if part == "fps":  # a stylizer of its own per size, as `rtnst bench` times them
        (row,) = bench(str(path), [(640, 360)], device="cpu", frames=args.bench_frames, end_to_end=False, **opts)
        (big,) = bench(str(path), [(1280, 720)], device="cpu", frames=args.bench_frames, smooth=VIDEO_SMOOTH, **opts)
        return {"fps": {"model_640x360": 1000 / row.model_ms, "end_to_end_1280x720": big.end_to_end_fps,
                        "runs_at_1280x720": "x".join(map(str, big.inference_size)), "end_to_end_smooth": VIDEO_SMOOTH},
                "cpu": cpu_model()}
    with OnnxStylizer(path, device="cpu", **opts) as st:
        if part == "quality":
            rows = evaluate_quality(st, content_paths(args.content), style, vgg_weights=args.vgg_weights)
            return {"style_image": style.name, "S": sum(r.style_distance for r in rows) / len(rows),
                    "C": sum(r.content_distance for r in rows) / len(rows),
                    "shift": sum(r.shift for r in rows) / len(rows), "edge": sum(r.edge for r in rows) / len(rows)}
        e_warp = {}
        for clip in args.clips:
            frames, _ = read_video(clip, max_frames=args.flicker_frames)
            res = evaluate_flicker(st.stylize, frames, {"none": None})
            none, floor = res["none"].mean_e_warp, res[INPUT].mean_e_warp
            e_warp[Path(clip).name] = {"none": none, "floor": floor, "x_floor": none / floor,
                                       "x_contrast_floor": none / contrast_floor(res["none"], res[INPUT])}
        return {"e_warp": e_warp}


def summary(figures: dict) -> str:
    out = []
    if "S" in figures:
        edge = f" edge {figures['edge']:.1f}" if "edge" in figures else ""
        out.append(f"S {figures['S']:.4f} C {figures['C']:.3f} shift {figures['shift']:.3f}{edge}")
    if "e_warp" in figures:
        out.append("E_warp/floor " + ", ".join(f"{k} {v['x_floor']:.1f}x" for k, v in figures["e_warp"].items()))
        if all("x_contrast_floor" in v for v in figures["e_warp"].values()):
            out.append("E_warp/contrast floor " + ", ".join(f"{v['x_contrast_floor']:.2f}x" for v in figures["e_warp"].values()))
    if "fps" in figures:
        fps = figures["fps"]
        out.append(f"{fps['model_640x360']:.1f} fps model at 640x360, {fps['end_to_end_1280x720']:.1f} fps end to "
                   f"end at 1280x720 ({figures['cpu']})")
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="shipped model names, .onnx files, or NAME=FILE[:STYLE.jpg]")
    ap.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    ap.add_argument("--parts", type=lambda s: [p for p in s.split(",") if p], default=list(PARTS),
                    help="what to measure, comma-separated, from quality,flicker,fps (default: all; speeds are best "
                         "measured for all models in one run on a quiet machine)")
    ap.add_argument("--content", help="folder of photos for S, C and shift (quality)")
    ap.add_argument("--styles", type=Path, help="folder holding the style images (quality)")
    ap.add_argument("--vgg-weights", help="VGG16 weights (default: $RTNST_VGG_WEIGHTS)")
    ap.add_argument("--clips", type=lambda s: [c for c in s.split(",") if c], help="videos, comma-separated (flicker)")
    ap.add_argument("--flicker-frames", type=int, default=240, help="frames of each clip for E_warp (default: 240)")
    ap.add_argument("--bench-frames", type=int, default=60, help="frames timed for fps (default: 60)")
    ap.add_argument("--pad-multiple", type=int, help="for foreign models (e.g. 4 for lengstrom's)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="fps: measure every model N times, models alternating, and keep each one's median (these "
                         "VMs drift up to 2x within a run; default: 1)")
    ap.add_argument("--again", action="store_true", help="measure again what is already there")
    args = ap.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    missing = [flag for part, flag, value in (("quality", "--content", args.content), ("quality", "--styles", args.styles),
                                              ("flicker", "--clips", args.clips))
               if part in args.parts and not value]
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if unknown or missing:
        ap.error(f"unknown --parts {unknown}" if unknown else f"{', '.join(missing)} needed for --parts {args.parts}")
    out = args.models_dir / MEASUREMENTS
    data = json.loads(out.read_text()) if out.is_file() else {"models": {}}
    def save(name: str, figures: dict, seconds: float) -> None:
        figures["date"] = time.strftime("%Y-%m-%d")
        data["models"][name] = figures
        with atomic_write(out) as tmp:  # after each model: a long run keeps what it measured
            Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"{name}: {summary(figures)} ({seconds:.0f} s)", flush=True)

    timed: dict[str, tuple[Path, dict]] = {}  # fps last, in rounds that alternate the models
    try:
        for spec in args.models:
            name, path, given_style = parse(spec)
            digest = measured_sha256(path)
            figures = data["models"].get(name, {})
            if figures.get("model_sha256") != digest:
                figures = {"model_sha256": digest}  # the model changed: nothing measured before holds
            todo = [p for p in args.parts if args.again or PART_KEYS[p] not in figures]
            if not todo:
                print(f"{name}: measured before, skipped")
                continue
            if "fps" in todo:
                timed[name] = (path, figures)
                todo.remove("fps")
                data["models"][name] = figures
            if not todo:
                continue
            t0 = time.perf_counter()
            style = style_image(path, args.styles, given_style) if "quality" in todo else None
            for part in todo:
                figures.update(measure(path, part, args, style=style))
            save(name, figures, time.perf_counter() - t0)
        runs: dict[str, list[dict]] = {name: [] for name in timed}
        t0 = time.perf_counter()
        for _ in range(args.rounds):
            for name, (path, _) in timed.items():
                runs[name].append(measure(path, "fps", args))
        for name, (path, figures) in timed.items():
            fps = [r["fps"] for r in runs[name]]
            figures.update(runs[name][0])
            figures["fps"] = dict(fps[0])
            for key in ("model_640x360", "end_to_end_1280x720"):
                figures["fps"][key] = statistics.median(f[key] for f in fps)
            figures["fps"]["rounds"] = len(fps)
            save(name, figures, (time.perf_counter() - t0) / max(1, len(timed)))
    except RtnstError as exc:
        print(f"measure_models: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
