"""Benchmarks: model-only and end-to-end frames per second (``rtnst bench``)."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..runtime.session import plan_threads
from ..runtime.stylizer import OnnxStylizer


@dataclass
class BenchRow:
    model: str
    provider: str
    size: tuple[int, int]  # of the frames (and the output)
    inference_size: tuple[int, int]  # what the model runs at (smaller with a native size or max_side_px)
    model_ms: float  # onnxruntime run only (median)
    frame_ms: float  # + pad, colour conversion, crop (median)
    end_to_end_fps: float | None  # decode + stylise + encode a clip, through the threaded pipeline


def cpu_model() -> str:
    """The CPU's model name as `lscpu` gives it (else what ``platform`` knows): speeds mean little
    without it, and these VMs change CPU from one day to the next."""
    import platform
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def synthetic_frames(size: tuple[int, int], count: int, *, seed: int = 0) -> list[np.ndarray]:
    """Moving textured frames: real-looking content for codecs (not flat, not pure noise)."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), np.uint8), (w * 2, h * 2), interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(base[i % h : i % h + h, (2 * i) % w : (2 * i) % w + w]) for i in range(count)]


def time_model(stylizer: OnnxStylizer, size: tuple[int, int], *, frames: int, warmup: int) -> tuple[float, float]:
    """Median ms of the model alone and with its pad/convert/crop, at the size it runs at for
    ``size`` frames (a model with a native size, or max_side_px, runs on a smaller copy)."""
    frame = synthetic_frames(stylizer.inference_size(*size), 1)[0]
    for _ in range(max(1, warmup)):  # at least one: run_model binds the input and output buffers timed below
        stylizer.run_model(frame)
    run, full = [], []
    for _ in range(frames):
        t0 = time.perf_counter()
        stylizer.run_again()
        t1 = time.perf_counter()
        stylizer.run_model(frame)
        t2 = time.perf_counter()
        run.append(t1 - t0)
        full.append(t2 - t1)
    return statistics.median(run) * 1000, statistics.median(full) * 1000


def clip_frames(clip: Path, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a video, scaled to ``size`` (a short clip is looped)."""
    from .. import frames as fr
    from ..errors import InputError
    from ..runtime.sources import VideoFileSource

    with VideoFileSource(clip) as source:
        out = []
        while len(out) < count and (item := source.read()) is not None:
            out.append(fr.resize(item.frame, size))
    if not out:
        raise InputError(f"{clip} has no frames to benchmark with")
    return [out[i % len(out)] for i in range(count)]


def write_clip(path: Path, size: tuple[int, int], count: int, fps: int = 30, *, source: Path | None = None) -> None:
    """A ``size`` clip of ``count`` frames: synthetic texture (an encoder's hardest case: stylised, it
    costs x264 2-3x the time real footage does), or ``source``'s frames scaled to ``size``."""
    from ..runtime.sinks import VideoFileSink

    frames = clip_frames(source, size, count) if source else synthetic_frames(size, count)
    with VideoFileSink(path, width=size[0], height=size[1], fps=Fraction(fps), overwrite=True) as sink:
        for f in frames:
            sink.write(f)


def time_end_to_end(stylizer: OnnxStylizer, size: tuple[int, int], *, frames: int, source: Path | None = None,
                    workers: int = 1, smooth: str = "none") -> float:
    """fps of `rtnst video` on a ``size`` clip of ``frames`` frames (see write_clip), smoothed as
    ``smooth`` says at the strength measured for the model."""
    from ..runtime.smoothing import smoother_for
    from ..runtime.video import stylize_video

    smoother = smoother_for(smooth, stylizer)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "in.mp4"
        write_clip(clip, size, frames, source=source)
        t0 = time.perf_counter()
        report = stylize_video(clip, Path(tmp) / "out.mp4", stylizer, progress=False, workers=workers,
                               smoother=smoother)
        return report.frames_written / (time.perf_counter() - t0)


def bench(model: str, sizes: list[tuple[int, int]], *, device: str = "auto", frames: int = 30, warmup: int = 5,
          end_to_end: bool = True, threads: int | None = None, clip: Path | None = None, smooth: str = "none",
          **stylizer_opts) -> list[BenchRow]:
    """One row per size. ``clip``: end to end on that video's frames scaled to the size, instead of
    synthetic texture; ``smooth``: the smoothing of the end-to-end run (see time_end_to_end)."""
    rows = []
    for size in sizes:
        with OnnxStylizer(model, device=device, threads=threads, **stylizer_opts) as st:
            model_ms, frame_ms = time_model(st, size, frames=frames, warmup=warmup)
            inference = st.inference_size(*size)
        e2e = None
        if end_to_end:
            # As `rtnst video` runs it: frames in parallel on the CPU, and no spinning (the pipeline
            # shares the cores with decode/encode threads).
            plan = plan_threads(threads=threads)
            with OnnxStylizer(model, device=device, threads=plan.threads, spin=False, **stylizer_opts) as st:
                workers = plan.workers_for(st)
                run = dict(source=clip, workers=workers, smooth=smooth)
                time_end_to_end(st, size, frames=min(frames, 5), **run)  # warm-up run
                e2e = time_end_to_end(st, size, frames=frames, **run)
        rows.append(BenchRow(Path(model).name, st.provider, size, inference, model_ms, frame_ms, e2e))
    return rows
