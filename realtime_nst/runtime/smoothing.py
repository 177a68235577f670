"""Temporal smoothing of stylised video against flicker (``--smooth none|ema|flow``).

A feed-forward style network sees each frame on its own, so small changes in the input (noise,
compression, a one-pixel shift) become large changes in the painted texture: flicker. Both smoothers
here blend the model's output with the previous *output*:

- ``ema`` blends in place. Nearly free, but anything that moves leaves a ghost behind it.
- ``flow`` first moves the previous output along the optical flow of the *input* frames (DIS,
  Kroeger et al. 2016, "Fast Optical Flow using Dense Inverse Search"), computed at a reduced
  resolution and upsampled, so the blend follows the motion. Where the flow cannot be trusted
  (occlusions, objects entering, lighting changes; found by a photometric check of the warped input)
  and after scene cuts the current stylised frame is used alone. Averaging two differently painted
  textures lowers their contrast, so the fine band of the blend is scaled back to the energy of the
  current stylised frame. This is a post-hoc way to the short-term temporal consistency measured by
  Lai et al. 2018 ("Learning Blind Video Temporal Consistency"); flicker.py has the metric.

The smoothers are stateful: one per stream, ``reset()`` after a seek or a model switch.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import OptionError
from .choices import DEFAULT_STRENGTH, SMOOTH_KINDS


# DIS flow on the grey input scaled so the long side is FLOW_SIDE_PX (640x360 -> 256x144), computed
# down to that finest scale (DIS normally stops two octaves above it) with a patch stride of 5: a
# dense flow at a reduced size costs less than a coarser preset at a larger one and tracks fine
# motion better. The finer the flow, the better the history lines up with small moving things:
# against 128 px, 256 px removed 6-29 points more of the flicker at strengths 0.5-0.9 on both shared
# clips, with less ghosting and a smaller rise of the style distance, for ~2 ms more per 640x360
# frame (models/README.md has the figures).
FLOW_SIDE_PX = 256
DIS_FINEST_SCALE, DIS_PATCH_STRIDE = 0, 5
# Photometric check on the grey, reduced frames (0..255): a warped pixel differing by less than
# PHOTO_LOW is fully trusted, by more than PHOTO_HIGH not at all, linear in between (a soft mask
# avoids visible seams between smoothed and unsmoothed regions).
PHOTO_LOW, PHOTO_HIGH = 6.0, 20.0
# A frame whose trusted fraction falls below this is a scene cut (or a flash): start afresh.
CUT_TRUSTED_FRACTION = 0.3
# Texture restoration: the band is the image minus its RESTORE_BOX box blur; the gain is capped.
RESTORE_BOX = (5, 5)
RESTORE_MAX_GAIN = 2.0
# EMA has no flow; it detects cuts by the mean absolute difference of tiny thumbnails (0..255).
THUMB_SIZE = (32, 18)
CUT_MEAN_ABS_DIFF = 35.0


@runtime_checkable
class Smoother(Protocol):
    """Turns the model's output for a frame into the output to write, given the input frame."""

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def check_smooth_strength(strength: float) -> float:
    if not 0.0 <= strength <= 1.0:
        raise OptionError(f"smooth_strength must be between 0 and 1, got {strength}", param="smooth_strength")
    return float(strength)


def _gray(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey frame scaled to ``size`` (w, h); area filter so fine texture does not alias."""
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return g if (g.shape[1], g.shape[0]) == size else cv2.resize(g, size, interpolation=cv2.INTER_AREA)


# OpenCV's DIS flow refuses images under 12 px a side: tiny frames are enlarged for the flow alone.
_MIN_FLOW_PX = 16


class EmaSmoother:
    """out_t = (1 - a)·stylized_t + a·out_{t-1}: cheap, but ghosts on motion; resets on cuts."""

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        self.strength = check_smooth_strength(strength)
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None
        self._thumb: np.ndarray | None = None

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        thumb = _gray(source, THUMB_SIZE).astype(np.float32)
        fresh = (self._prev is None or self._prev.shape != stylized.shape
                 or float(np.mean(np.abs(thumb - self._thumb))) > CUT_MEAN_ABS_DIFF)
        self._thumb = thumb
        if fresh or self.strength == 0.0:
            out = stylized
        else:
            out = cv2.addWeighted(stylized, 1.0 - self.strength, self._prev, self.strength, 0.0)
        self._prev = out
        return out


class FlowSmoother:
    """Blends the stylised frame with the previous output warped along the input's optical flow.

    Per frame: grey input at ``flow_side_px`` -> DIS flow current->previous (every current pixel
    learns where it came from) -> photometric check of the warped previous input gives a soft trust
    mask M -> flow and mask upsampled to the output size -> previous output remapped (W) ->
    out = (1 - a·M)·stylized + a·M·W -> texture contrast restored (see ``_restore``). With few
    trusted pixels (a scene cut) the frame passes unchanged and the history restarts from it.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH, *, flow_side_px: int = FLOW_SIDE_PX,
                 restore: bool = True) -> None:
        self.strength = check_smooth_strength(strength)
        if flow_side_px < 16:
            raise OptionError(f"flow_side_px must be at least 16, got {flow_side_px}")
        self.flow_side_px = flow_side_px
        self.restore = restore
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._dis.setFinestScale(DIS_FINEST_SCALE)
        self._dis.setPatchStride(DIS_PATCH_STRIDE)
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.trusted_fraction = 0.0  # of the last frame, for diagnostics and tests
        self.gain = 1.0  # the last texture gain, likewise
        self._lut: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._prev_gray: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None

    def _grid(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (xs, ys) as float32 HxW planes: coordinate + flow is a cv2.remap map."""
        if (w, h) not in self._grids:
            if len(self._grids) > 4:  # sizes change rarely; do not grow without bound
                self._grids.clear()
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grids[(w, h)] = (xs, ys)
        return self._grids[(w, h)]

    def _mask_lut(self) -> np.ndarray:
        """M·a for each absolute grey error 0..255: a up to PHOTO_LOW, 0 from PHOTO_HIGH, linear between
        (a soft mask: no visible seams between smoothed and unsmoothed regions)."""
        if self._lut is None:
            err = np.arange(256, dtype=np.float32)
            a = self.strength
            self._lut = np.clip((PHOTO_HIGH - err) * (a / (PHOTO_HIGH - PHOTO_LOW)), 0.0, a).astype(np.float32)
        return self._lut

    def _work_size(self, source: np.ndarray) -> tuple[int, int]:
        h, w = source.shape[:2]
        scale = min(1.0, self.flow_side_px / max(w, h))
        return max(_MIN_FLOW_PX, round(w * scale)), max(_MIN_FLOW_PX, round(h * scale))

    def _start(self, gray: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        self._prev_gray, self._prev_out = gray, stylized
        self.gain = 1.0
        return stylized

    def __call__(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        lw, lh = self._work_size(source)
        gray = _gray(source, (lw, lh))
        prev_gray, prev_out = self._prev_gray, self._prev_out
        if (prev_gray is None or prev_gray.shape != gray.shape or prev_out is None
                or prev_out.shape != stylized.shape or self.strength == 0.0):
            self.trusted_fraction = 0.0
            return self._start(gray, stylized)
        # Backward flow: gray(x) ~ prev_gray(x + flow(x)).
        flow = self._dis.calc(gray, prev_gray, None)
        fx, fy = cv2.split(flow)
        gx, gy = self._grid(lw, lh)
        lx, ly = cv2.add(fx, gx), cv2.add(fy, gy)
        # Photometric check of the warp on the input; pixels that came from outside the frame have no
        # history (their error is forced to 255). The lookup table maps the error to the mask M·a.
        warped = cv2.remap(prev_gray, lx, ly, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = cv2.absdiff(gray, warped)
        inside = cv2.bitwise_and(cv2.inRange(lx, 0.0, lw - 1.0), cv2.inRange(ly, 0.0, lh - 1.0))
        err = cv2.max(err, cv2.bitwise_not(inside))
        mask = self._mask_lut()[err]
        self.trusted_fraction = float(cv2.mean(mask)[0]) / self.strength
        if self.trusted_fraction < CUT_TRUSTED_FRACTION:
            return self._start(gray, stylized)
        # Full-resolution sampling maps: at low resolution turn the flow into coordinates of the output
        # (scale, plus where each low-res pixel centre lies), then one bilinear resize per plane (cv2
        # resizes single planes much faster than 2-channel images). Bilinear upsampling of a linear
        # ramp is exact, so a zero flow gives exactly the identity map.
        oh, ow = stylized.shape[:2]
        sx, sy = ow / lw, oh / lh
        mx = cv2.resize(cv2.scaleAdd(fx, sx, (gx + 0.5) * sx - 0.5), (ow, oh), interpolation=cv2.INTER_LINEAR)
        my = cv2.resize(cv2.scaleAdd(fy, sy, (gy + 0.5) * sy - 0.5), (ow, oh), interpolation=cv2.INTER_LINEAR)
        history = cv2.remap(prev_out, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        w_prev = cv2.resize(mask, (ow, oh), interpolation=cv2.INTER_LINEAR)
        out = cv2.blendLinear(stylized, history, 1.0 - w_prev, w_prev)
        if self.restore:
            out = self._restore(stylized, out)
        self._prev_gray, self._prev_out = gray, out
        return out

    def _restore(self, stylized: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Give the blend back the fine-texture contrast of the stylised frame.

        The model paints a slightly different texture every frame; averaging two of them (and the
        bilinear warp) lowers the contrast of the brush strokes, which is exactly what the Gram-matrix
        style distance punishes. We measure the energy of the finest band (image minus its 5x5 box
        blur) in the stylised frame and in the blend and scale the blend's band by the square root of
        the ratio (an unsharp mask with a measured amount). Only the band energy comes back: the
        blend's temporal stability stays, the lost stroke contrast returns.
        """
        blur_out = cv2.blur(out, RESTORE_BOX)
        e_out = cv2.norm(out, blur_out, cv2.NORM_L2SQR)
        e_sty = cv2.norm(stylized, cv2.blur(stylized, RESTORE_BOX), cv2.NORM_L2SQR)
        self.gain = float(np.clip(np.sqrt(e_sty / max(e_out, 1e-6)), 1.0, RESTORE_MAX_GAIN))
        if self.gain <= 1.001:
            return out
        return cv2.addWeighted(out, self.gain, blur_out, 1.0 - self.gain, 0.0)


def strength_for(given: float | None, model_strength: float | None) -> float:
    """The strength asked for, else the one measured for the model (``rtnst.smooth_strength``
    metadata: how much flicker a net has differs, so one default cannot suit every model), else
    DEFAULT_STRENGTH."""
    if given is not None:
        return check_smooth_strength(given)
    return DEFAULT_STRENGTH if model_strength is None else model_strength


def make_smoother(kind: str, *, strength: float = DEFAULT_STRENGTH) -> Smoother | None:
    """A fresh smoother for one stream: None for "none", else an EmaSmoother or FlowSmoother."""
    check_smooth_strength(strength)
    if kind == "none":
        return None
    if kind == "ema":
        return EmaSmoother(strength)
    if kind == "flow":
        return FlowSmoother(strength)
    raise OptionError(f"smooth must be one of {', '.join(SMOOTH_KINDS)}, got {kind!r}", param="smooth")


def smoother_for(kind: str, stylizer, *, strength: float | None = None) -> Smoother | None:
    """make_smoother for ``stylizer``'s stream, at ``strength`` or else the strength measured for its
    model (strength_for)."""
    measured = getattr(getattr(stylizer, "info", None), "smooth_strength", None)
    return make_smoother(kind, strength=strength_for(strength, measured))
