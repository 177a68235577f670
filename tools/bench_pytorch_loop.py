"""Our pipeline against a plain per-frame PyTorch eager loop, same weights, same clip, one run.

The plain loop is what pytorch/examples' fast_neural_style does per image, applied to video:
decode with OpenCV, to tensor, net(x) in fp32 eager mode, clamp, back to uint8, cv2.VideoWriter.
Ours is `rtnst video`'s path: PyAV decode, onnxruntime (exported from the same weights), PyAV/x264
encode, the three stages overlapping in threads.

    python tools/bench_pytorch_loop.py --tier quality --size 640x360 --frames 60
    python tools/bench_pytorch_loop.py --checkpoint runs/starry_night.pt --clip ../shared/assets/videos/bunny_640x360.mp4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime_nst.training import nets
from realtime_nst.evaluation.bench import write_clip
from realtime_nst.training.export import export, load_checkpoint
from realtime_nst.frames import parse_size
from realtime_nst.runtime.stylizer import OnnxStylizer
from realtime_nst.runtime.video import stylize_video


def plain_loop(net: torch.nn.Module, clip: Path, out: Path, *, max_frames: int) -> tuple[float, float]:
    """(end-to-end fps, model-only fps) of the naive loop."""
    scale = 255.0 if net.INPUT_RANGE == "0-255" else 1.0
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30
    writer = None
    model_s, n = [], 0
    t0 = time.perf_counter()
    with torch.no_grad():
        while n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            m = net.PAD_MULTIPLE
            padded = cv2.copyMakeBorder(frame, 0, (-h) % m, 0, (-w) % m, cv2.BORDER_REFLECT_101)
            x = torch.from_numpy(cv2.cvtColor(padded, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).float().unsqueeze(0)
            x = x / 255.0 * scale
            t1 = time.perf_counter()
            y = net(x)
            model_s.append(time.perf_counter() - t1)
            y = (y[0] / scale * 255.0).clamp(0, 255).permute(1, 2, 0).byte().numpy()[:h, :w]
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(cv2.cvtColor(np.ascontiguousarray(y), cv2.COLOR_RGB2BGR))
            n += 1
    total = time.perf_counter() - t0
    cap.release()
    if writer is not None:
        writer.release()
    return n / total, 1.0 / statistics.median(model_s[2:] or model_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="NAME.pt from rtnst train (default: random weights of --tier)")
    ap.add_argument("--tier", default="quality", choices=sorted(nets.NETWORKS))
    ap.add_argument("--clip", help="video file (default: a synthetic clip of --size)")
    ap.add_argument("--size", default="640x360", help="synthetic clip size (default 640x360)")
    ap.add_argument("--frames", type=int, default=60, help="frames to process (default 60)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = Path(args.checkpoint) if args.checkpoint else tmp / "random.pt"
        if not args.checkpoint:
            torch.manual_seed(0)
            torch.save({"model": nets.build(args.tier).state_dict(), "tier": args.tier, "style": "random"}, ckpt)
        net, info = load_checkpoint(ckpt)
        onnx_path = tmp / "model.onnx"
        export(ckpt, onnx_path)
        clip = Path(args.clip) if args.clip else tmp / "clip.mp4"
        if not args.clip:
            write_clip(clip, parse_size(args.size), args.frames)
        # A copy holding exactly --frames frames keeps both sides on the same work.
        plain_fps, plain_model_fps = plain_loop(net, clip, tmp / "plain.mp4", max_frames=args.frames)
        with OnnxStylizer(onnx_path, spin=False) as st:
            t0 = time.perf_counter()
            n = 0
            report = stylize_video(clip, tmp / "ours.mp4", st, progress=False)
            ours_fps = report.frames_written / (time.perf_counter() - t0)
            n = report.frames_written
        with OnnxStylizer(onnx_path) as st:
            frame = cv2.VideoCapture(str(clip)).read()[1]
            for _ in range(3):
                st.run_model(frame)
            times = []
            for _ in range(15):
                t1 = time.perf_counter()
                st._session.run_with_iobinding(st._binding)
                times.append(time.perf_counter() - t1)
            ours_model_fps = 1.0 / statistics.median(times)
    h, w = frame.shape[:2]
    print(f"{info['tier']} net, {w}x{h}, plain loop {args.frames} frames, ours {n} frames (whole clip)")
    print(f"{'':24}{'end-to-end fps':>16}{'model-only fps':>16}")
    print(f"{'plain PyTorch loop':24}{plain_fps:16.2f}{plain_model_fps:16.2f}")
    print(f"{'rtnst pipeline':24}{ours_fps:16.2f}{ours_model_fps:16.2f}")
    print(f"{'ratio (ours / plain)':24}{ours_fps / plain_fps:16.2f}{ours_model_fps / plain_model_fps:16.2f}")


if __name__ == "__main__":
    main()
