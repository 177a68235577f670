"""Measure the flow-smoothing strength each model needs and store it in the model's metadata.

    python tools/tune_smoothing.py models/*.onnx --videos ../shared/assets/videos \\
        --styles ../shared/assets/styles --max-frames 240 [--write]

How much a net flickers differs a lot between nets, so one global ``--smooth-strength`` cannot give
every model the target: E_warp at most max(TARGET_FRACTION x unsmoothed, the input video's own
E_warp), the style distance at most MAX_STYLE_RISE higher, and no more ghosting (deviation from the
per-frame output where the input moves) than ``--smooth ema`` at REFERENCE_EMA_STRENGTH. For each
model and clip this runs `rtnst eval flicker`'s measurement with flow smoothing at every candidate
strength in one pass (the model runs once per frame), and picks the smallest strength that meets
all three on every clip. With ``--encoded`` the E_warp target must also hold on the file users get:
the clip stylised by `rtnst video` (default quality settings) unsmoothed and at the strength, scored
as `rtnst eval flicker --output` scores it; the encoder's own noise and its smoothing of fine
texture can leave a strength that meets the target on raw frames short of it there. ``--write``
stores the strength as ``rtnst.smooth_strength`` in the ONNX file (rewritten atomically); the
runtime uses it whenever ``--smooth-strength`` is not given. Run tools/build_models.py afterwards:
the sha256 in the manifest changes (the measured figures still apply).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime_nst.errors import RtnstError  # noqa: E402
from realtime_nst.evaluation.quality import QualityMeter  # noqa: E402
from realtime_nst.evaluation.flicker import INPUT, evaluate_flicker, read_video  # noqa: E402
from realtime_nst.imageio import list_images, read_image  # noqa: E402
from realtime_nst.runtime.smoothing import make_smoother  # noqa: E402
from realtime_nst.modelfile import META_SMOOTH_STRENGTH, update_metadata  # noqa: E402
from realtime_nst.runtime.stylizer import OnnxStylizer  # noqa: E402
from realtime_nst.runtime.video import stylize_video  # noqa: E402

TARGET_FRACTION = 0.50
MAX_STYLE_RISE = 0.10
REFERENCE_EMA_STRENGTH = 0.5
CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Outcome:
    """Flow smoothing at one strength on one clip, against the same clip unsmoothed."""

    e_warp: float  # smoothed
    e_none: float  # unsmoothed
    floor: float  # the input video's own E_warp
    style_rise: float | None  # relative change of the style distance (None: not measured)
    ghosting: float | None  # deviation from the per-frame output on moving pixels
    ghosting_ema: float | None  # the same for --smooth ema at REFERENCE_EMA_STRENGTH
    e_warp_encoded: float | None = None  # the same two on the encoded files (None: not measured)
    e_none_encoded: float | None = None

    @property
    def target(self) -> float:
        return max(TARGET_FRACTION * self.e_none, self.floor)

    @property
    def target_encoded(self) -> float | None:
        return None if self.e_none_encoded is None else max(TARGET_FRACTION * self.e_none_encoded, self.floor)

    def meets(self) -> bool:
        return (self.e_warp <= self.target
                and (self.e_warp_encoded is None or self.e_warp_encoded <= self.target_encoded)
                and (self.style_rise is None or self.style_rise <= MAX_STYLE_RISE)
                and (self.ghosting is None or self.ghosting_ema is None or self.ghosting <= self.ghosting_ema))


def measure(model: Path, video: Path, style_image: Path | None, *, strengths, max_frames: int | None,
            style_every: int, vgg_weights: str | None) -> dict[float, Outcome]:
    meter = QualityMeter(read_image(style_image), vgg_weights=vgg_weights) if style_image else None
    smoothers = {"none": None, "ema": make_smoother("ema", strength=REFERENCE_EMA_STRENGTH)} | {
        f"flow@{a:g}": make_smoother("flow", strength=a) for a in strengths}
    from tqdm import tqdm

    frames, count = read_video(video, max_frames=max_frames)
    with OnnxStylizer(model, device="cpu") as st, tqdm(total=count, desc=f"{model.name} / {video.name}", unit="frame",
                                                      file=sys.stderr, leave=False) as bar:
        res = evaluate_flicker(st.stylize, frames, smoothers, meter=meter, style_every=style_every, progress=bar)
    base = res["none"]
    out = {}
    for a in strengths:
        r = res[f"flow@{a:g}"]
        ds = r.mean_style / base.mean_style - 1 if meter and base.mean_style else None
        out[a] = Outcome(r.mean_e_warp, base.mean_e_warp, res[INPUT].mean_e_warp, ds, r.mean_ghosting,
                         res["ema"].mean_ghosting)
    return out


def encoded_e_warp(model: Path, video: Path, strength: float | None, *, max_frames: int | None) -> float:
    """E_warp of the file `rtnst video` writes with flow smoothing at ``strength`` (None: unsmoothed)."""
    smoother = None if strength is None else make_smoother("flow", strength=strength)
    with tempfile.TemporaryDirectory() as tmp, OnnxStylizer(model, device="cpu") as st:
        out = Path(tmp) / "styled.mp4"
        stylize_video(video, out, st, smoother=smoother, progress=False, max_frames=max_frames, workers=2)
        frames, _ = read_video(video, max_frames=max_frames)
        styled, _ = read_video(out, max_frames=max_frames)
        res = evaluate_flicker(lambda frame: next(styled, frame), frames, {"file": None})
    return res["file"].mean_e_warp


def check_encoded(model: Path, videos: list[Path], per_clip: list[dict[float, Outcome]], strengths, *,
                  max_frames: int | None) -> None:
    """Adds the encoded files' E_warp to the outcomes of the strengths that meet the limits on raw
    frames, smallest first, until one meets them on the encoded files too."""
    nones: dict[Path, float] = {}
    for a in sorted(strengths):
        if not all(c[a].meets() for c in per_clip):
            continue
        for video, clip in zip(videos, per_clip):
            if video not in nones:
                nones[video] = encoded_e_warp(model, video, None, max_frames=max_frames)
            clip[a] = replace(clip[a], e_warp_encoded=encoded_e_warp(model, video, a, max_frames=max_frames),
                              e_none_encoded=nones[video])
        if all(c[a].meets() for c in per_clip):
            return


def choose(per_clip: list[dict[float, Outcome]], strengths) -> float | None:
    """The smallest strength that meets the target on every clip (the least ghosting that does)."""
    return next((a for a in sorted(strengths) if all(c[a].meets() for c in per_clip)), None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="exported .onnx models")
    ap.add_argument("--videos", type=Path, required=True, help="a video file or a folder of them")
    ap.add_argument("--styles", type=Path, help="folder of style images (by the models' rtnst.style_image); "
                                                "without it the style distance is not checked")
    ap.add_argument("--strengths", default=",".join(map(str, CANDIDATES)), help="candidates (default: %(default)s)")
    ap.add_argument("--max-frames", type=int, default=240, help="frames per clip (default: %(default)s)")
    ap.add_argument("--style-every", type=int, default=10, help="style distance every Nth frame (default: 10)")
    ap.add_argument("--vgg-weights", default=os.environ.get("RTNST_VGG_WEIGHTS"))
    ap.add_argument("--encoded", action="store_true", help="the target must also hold on the encoded file "
                                                           "`rtnst video` writes (two encodes per strength and clip)")
    ap.add_argument("--write", action="store_true", help="store the chosen strength in each model")
    ap.add_argument("--json", type=Path, help="also write all measurements here")
    args = ap.parse_args(argv)
    strengths = [float(s) for s in args.strengths.split(",")]
    videos = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in (".mp4", ".mkv", ".mov", ".avi")) \
        if args.videos.is_dir() else [args.videos]
    report = {}
    try:
        for model in args.models:
            with OnnxStylizer(model, device="cpu") as st:
                style_name = st.info.metadata.get("rtnst.style_image", "")
            style = None
            if args.styles and style_name:
                style = next((p for p in list_images(args.styles) if p.name == style_name), None)
            per_clip = []
            for video in videos:
                m = measure(model, video, style, strengths=strengths, max_frames=args.max_frames,
                            style_every=args.style_every, vgg_weights=args.vgg_weights)
                per_clip.append(m)
            if args.encoded:
                check_encoded(model, videos, per_clip, strengths, max_frames=args.max_frames)
            for video, m in zip(videos, per_clip):
                for a, o in m.items():
                    dstxt = f"{100 * o.style_rise:+.1f}%" if o.style_rise is not None else "-"
                    ghost = f"{o.ghosting:.4f} (ema {o.ghosting_ema:.4f})" if o.ghosting is not None else "-"
                    print(f"{model.name} {video.name} flow@{a:g}: E_warp {o.e_warp:.6f}, target {o.target:.6f} "
                          f"({100 * (o.e_warp / o.e_none - 1):+.1f}% vs none); style {dstxt}; ghosting {ghost}"
                          + (f"; encoded E_warp {o.e_warp_encoded:.6f}, target {o.target_encoded:.6f} "
                             f"({100 * (o.e_warp_encoded / o.e_none_encoded - 1):+.1f}% vs none)"
                             if o.e_warp_encoded is not None else "")
                          + f"{'' if o.meets() else '  (misses)'}", flush=True)
            best = choose(per_clip, strengths)
            print(f"{model.name}: {'no candidate meets the limits' if best is None else f'strength {best:g}'}",
                  flush=True)
            report[model.name] = {"strength": best, "clips": {v.name: {str(a): asdict(o) for a, o in m.items()}
                                                              for v, m in zip(videos, per_clip)}}
            if args.write and best is not None:
                update_metadata(model, {META_SMOOTH_STRENGTH: f"{best:g}"})
    except RtnstError as exc:
        print(f"tune_smoothing: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
