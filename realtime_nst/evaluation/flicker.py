"""Measuring flicker: the warping error of Lai et al. 2018 ("Learning Blind Video Temporal
Consistency", ECCV), and ``rtnst eval flicker``'s clip evaluation.

E_warp(t) = Σ_x M_t(x)·‖O_t(x) − W(O_{t−1})(x)‖² / Σ_x M_t(x), pixels in [0, 1], ‖·‖² summed over
the three colour channels (divide by 3 for a per-channel mean square). W warps the previous output
into frame t along the optical flow of the *input* video, and M_t is its non-occlusion mask from the
forward-backward check of Lai et al. (after Sundaram et al. 2010). The clip score is the mean over t.

The flow here is deliberately not the smoother's: an accurate DIS (Kroeger et al. 2016) at full
resolution, forward and backward, so a smoother cannot grade itself with its own flow. A low E_warp
alone can be bought by washing the style out (a grey video does not flicker), so the clip evaluation
also reports the mean style distance S (evaluate.QualityMeter) on a subsample of frames.

E_warp also grows with the output's contrast, steady or not: the flow is never exact, and a flow
error δ costs about |∇O·δ|², so sharp high-contrast brush strokes score high on a perfectly steady
video. Measured on the shared clips: an unsharp mask of the input (deterministic, no texture of its
own) with 2-6x the input's gradient energy scored 2.4-6x the floor, as the stylised outputs of the
same contrast did. So each result also holds its gradient energy, and ``contrast_floor`` scales the
floor by it: the E_warp to expect of an output that steady that is as contrasty as this one.
E_warp ÷ contrast floor near 1 means the flicker is what its contrast explains; above, the net
repaints its texture from frame to frame.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import frames as fr
from ..errors import InputError, OutputError
from ..files import atomic_write
from ..runtime.smoothing import Smoother
from .quality import EVAL_SIDE_PX

# Lai et al.'s occlusion test: |F + B_w|² > OCC_REL·(|F|² + |B_w|²) + OCC_ABS -> occluded.
OCC_REL, OCC_ABS = 0.01, 0.5
MOVING_PX = 1.0  # ghosting is measured where the input moves at least this much between frames
_DX = np.array([[0, -1, 1]], np.float32)
GRADIENT_EVERY = 5  # gradient energy on every 5th frame: its mean is steady, and a 720p frame costs ~17 ms
INPUT = "input"  # the result holding the input video's own E_warp: the floor no output can go below
# Lai et al. score single shots. Across a cut the forward-backward check still passes a few pixels by
# chance, whose errors are huge: bunny's one cut (0.5-1.6% of the frame passing) was 70-80% of the
# clip's own E_warp over 240 frames, and added the same to every output, smoothed or not. A pair with
# less of the frame visible than this is a cut (or a flash) and is left out; within the shared clips'
# shots the least visible pair shows 42%.
CUT_VISIBLE_FRACTION = 0.3
MIN_SIDE_PX = 16  # OpenCV's DIS flow needs 12 px; E_warp means little below this


def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], int]:
    """Frames of a video file (at most ``max_frames``) and how many to expect (0 if unknown)."""
    from ..runtime.sources import VideoFileSource

    source = VideoFileSource(path)
    count = source.frame_count or 0
    if max_frames is not None:
        count = min(count, max_frames) if count else max_frames

    def frames() -> Iterator[np.ndarray]:
        with source:
            n = 0
            while max_frames is None or n < max_frames:
                item = source.read()
                if item is None:
                    return
                n += 1
                yield item.frame

    return frames(), count


class MetricFlow:
    """Accurate flow for the metric: DIS "medium" (variational refinement on) at full resolution."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(backward flow cur->prev, non-occlusion mask) for two input frames of the same size."""
        if min(cur.shape[:2]) < MIN_SIDE_PX:
            raise InputError(f"flicker is measured on frames of {MIN_SIDE_PX} px or more a side, got "
                             f"{cur.shape[1]}x{cur.shape[0]}")
        g0 = cv2.cvtColor(prev, cv2.COLOR_BGR2GRAY)
        g1 = cv2.cvtColor(cur, cv2.COLOR_BGR2GRAY)
        back = self._dis.calc(g1, g0, None)   # cur(x) ~ prev(x + back(x))
        fwd = self._dis.calc(g0, g1, None)    # prev(y) ~ cur(y + fwd(y))
        return back, non_occlusion_mask(back, fwd)


def warp(image: np.ndarray, flow: np.ndarray, *, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """image sampled at x + flow(x) (bilinear): the previous frame seen from the current one."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=border)


def inside_mask(flow: np.ndarray) -> np.ndarray:
    """1 where x + flow(x) lands inside the frame: pixels that came from outside have no history."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    return ((mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)).astype(np.float32)


def non_occlusion_mask(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """M (HxW float32 0/1) for the backward flow ``back``: a pixel is visible in the previous frame
    when going back and then forward again returns to it (Lai et al. 2018, eq. for the occlusion
    mask), and the point it came from lies inside the frame."""
    fwd_w = warp(fwd, back)
    total = back + fwd_w
    err = (total**2).sum(axis=2)
    bound = OCC_REL * ((back**2).sum(axis=2) + (fwd_w**2).sum(axis=2)) + OCC_ABS
    return ((err <= bound).astype(np.float32)) * inside_mask(back)


def warping_error(prev_out: np.ndarray, cur_out: np.ndarray, flow: np.ndarray,
                  mask: np.ndarray | None = None) -> float:
    """E_warp between two output frames (uint8 BGR) given the backward flow of the *input* (cur->prev)
    and the non-occlusion mask (default: only the in-frame test). NaN when no pixel is visible."""
    if mask is None:
        mask = inside_mask(flow)
    warped = warp(prev_out, flow).astype(np.float32)
    diff = (cur_out.astype(np.float32) - warped) * (1.0 / 255.0)
    sq = (diff**2).sum(axis=2)
    n = float(mask.sum())
    return float((sq * mask).sum() / n) if n > 0 else float("nan")


def gradient_energy(frame: np.ndarray) -> float:
    """Mean over pixels of ‖∇frame‖² (differences of neighbours, colour channels summed, pixels in
    [0, 1]): the contrast that flow errors turn into warping error."""
    total = sum(cv2.norm(cv2.filter2D(frame, cv2.CV_16S, k, borderType=cv2.BORDER_REPLICATE), cv2.NORM_L2SQR)
                for k in (_DX, _DX.T))
    return total / (255.0**2 * frame.shape[0] * frame.shape[1])


def contrast_floor(result: "ClipResult", floor: "ClipResult") -> float:
    """The input's own E_warp scaled by ``result``'s gradient energy over the input's (see the module
    docstring): the warping error of a steady output of ``result``'s contrast. NaN for a flat input
    video, where no contrast explains anything."""
    if not floor.mean_gradient > 0:
        return float("nan")
    return floor.mean_e_warp * result.mean_gradient / floor.mean_gradient


@dataclass
class ClipResult:
    """Per-frame scores of one smoothing mode on one clip. e_warp[t] is for frames t-1 -> t (t >= 1);
    style holds (frame index, S) on the subsampled frames."""

    kind: str
    e_warp: list[float] = field(default_factory=list)
    style: list[tuple[int, float]] = field(default_factory=list)
    ghosting: list[float] = field(default_factory=list)  # mean |smoothed - per-frame output| on moving pixels
    gradient: list[float] = field(default_factory=list)  # gradient_energy of every GRADIENT_EVERY-th frame
    smooth_seconds: float = 0.0
    frames: int = 0

    @property
    def mean_e_warp(self) -> float:
        vals = [v for v in self.e_warp if v == v]  # NaN: a cut (CUT_VISIBLE_FRACTION), no information
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def cuts(self) -> int:
        return sum(1 for v in self.e_warp if v != v)

    @property
    def mean_gradient(self) -> float:
        return float(np.mean(self.gradient)) if self.gradient else float("nan")

    @property
    def mean_ghosting(self) -> float | None:
        vals = [v for v in self.ghosting if v == v]
        return float(np.mean(vals)) if vals else None

    @property
    def mean_style(self) -> float | None:
        return float(np.mean([s for _, s in self.style])) if self.style else None

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.smooth_seconds / max(1, self.frames)


def evaluate_flicker(stylize, frames: Iterable[np.ndarray], smoothers: dict[str, Smoother | None], *,
                     meter=None, style_every: int = 10, progress=None) -> dict[str, ClipResult]:
    """Runs the model once per frame and every smoother on its output, scoring each.

    ``stylize``: frame -> stylised frame; ``smoothers``: name -> fresh smoother (None = unsmoothed);
    ``meter``: an evaluate.QualityMeter for the style distance on every ``style_every``-th frame
    (frames style_every-1, 2·style_every-1, ...: never frame 0, where all modes agree), or None.
    The results also hold INPUT, the input video's own E_warp (what the flow cannot explain: noise,
    light changes, compression; no output is steadier than that). Pairs of frames across a cut (less
    than CUT_VISIBLE_FRACTION of the frame visible in the one before) score NaN, left out of
    every mean. And for each smoother its
    ghosting: how far it strays from the per-frame output where the input moves (a trail left
    behind by moving things), in pixels 0..1.
    """
    flow_fn = MetricFlow()
    results = {name: ClipResult(name) for name in smoothers}
    floor = results[INPUT] = ClipResult(INPUT)
    prev_in: np.ndarray | None = None
    prev_out: dict[str, np.ndarray] = {}
    for t, frame in enumerate(frames):
        styled = stylize(frame)
        # Score at the output size: the input is scaled to it for the flow.
        src = fr.resize(frame, (styled.shape[1], styled.shape[0]))
        flow = mask = moving = None
        cut = False
        if prev_in is not None:
            flow, mask = flow_fn(prev_in, src)
            cut = float(cv2.mean(mask)[0]) < CUT_VISIBLE_FRACTION
            floor.e_warp.append(float("nan") if cut else warping_error(prev_in, src, flow, mask))
            moving = (flow**2).sum(axis=2) >= MOVING_PX**2
        floor.frames += 1
        measure_gradient = t % GRADIENT_EVERY == 0
        if measure_gradient:
            floor.gradient.append(gradient_energy(src))
        sample = meter is not None and style_every > 0 and t % style_every == style_every - 1
        small = None
        if sample:
            size = fr.fit_max_side(src.shape[1], src.shape[0], EVAL_SIDE_PX)
            small = fr.resize(src, size)
        for name, smoother in smoothers.items():
            res = results[name]
            if smoother is None:
                out = styled
            else:
                t0 = time.perf_counter()
                out = smoother(src, styled)
                res.smooth_seconds += time.perf_counter() - t0
            res.frames += 1
            if measure_gradient:
                res.gradient.append(gradient_energy(out))
            if cut:
                res.e_warp.append(float("nan"))
            elif flow is not None:
                res.e_warp.append(warping_error(prev_out[name], out, flow, mask))
                if smoother is not None:
                    n_moving = int(moving.sum())
                    dev = np.abs(out.astype(np.int16) - styled).mean(axis=2)[moving].sum() / 255.0 if n_moving else 0.0
                    res.ghosting.append(float(dev) / n_moving if n_moving else float("nan"))
            if sample:
                s, _ = meter.measure(small, fr.resize(out, (small.shape[1], small.shape[0])))
                res.style.append((t, s))
            prev_out[name] = out
        prev_in = src
        if progress is not None:
            progress.update(1)
    return results


def write_csv(path: str | os.PathLike, results: dict[str, ClipResult]) -> None:
    """Long format: frame, smooth, e_warp (empty for frame 0 and after a cut), style_distance (empty if
    not sampled)."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "smooth", "e_warp", "style_distance"])
        for name, res in results.items():
            style = dict(res.style)
            for t in range(res.frames):
                e = f"{res.e_warp[t - 1]:.6g}" if t >= 1 and res.e_warp[t - 1] == res.e_warp[t - 1] else ""
                s = f"{style[t]:.6g}" if t in style else ""
                w.writerow([t, name, e, s])


def plot(path: str | os.PathLike, results: dict[str, ClipResult], *, title: str = "") -> None:
    from ..errors import require

    matplotlib = require("matplotlib", extra="train")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for name, res in results.items():
        ax.plot(range(1, len(res.e_warp) + 1), res.e_warp, label=f"{name} (mean {res.mean_e_warp:.4g})", lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("warping error E_warp")
    ax.set_title(title or "flicker (Lai et al. 2018 warping error)")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".").lower() or "png")
    except ValueError as exc:  # a suffix matplotlib cannot write
        raise OutputError(f"cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)
