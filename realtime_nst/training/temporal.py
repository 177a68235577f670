"""Temporal consistency at training time, from still photos (``rtnst train --temporal-weight``).

A feed-forward style net flickers on video because a small change of its input (a motion of a
pixel or two, sensor noise, compression) changes the texture it paints. ReCoNet (Gao et al. 2018,
"ReCoNet: Real-time Coherent Video Style Transfer Network") trains with an output-level temporal loss
on video with optical flow; Gupta et al. 2017 ("Characterizing and Improving Stability in Neural
Style Transfer") showed that synthetic perturbations of still images already teach most of it.
Here every training crop gets a second view: a small random affine motion (shift, rotation, zoom)
plus a little noise. The loss asks the net's output of the moved view to equal its output of the
original moved the same way:

    temporal = mean over valid pixels of |f(W(x) + n) − W(f(x))|      (or its square: ``norm="l2"``)

with W the motion, n the noise, and the pixels W brought in from outside the crop left out. The
motion is known exactly, so no flow estimate adds its own errors. It needs one more pass of the
style net per step and no VGG pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_SHIFT_PX = 3.0
MAX_ROTATION_DEG = 1.5
MAX_ZOOM = 0.03
NOISE_STD = 2.0 / 255  # sensor noise of a webcam-grade frame, in 0..1 units


def random_motion(n: int, height: int, width: int, *, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """n affine grids (N x 2 x 3, in F.affine_grid's normalised units) of a small camera motion."""
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * math.radians(MAX_ROTATION_DEG)
    scale = 1 + u[:, 1] * MAX_ZOOM
    tx, ty = u[:, 2] * MAX_SHIFT_PX * 2 / width, u[:, 3] * MAX_SHIFT_PX * 2 / height
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid works in [-1, 1] units on both axes: rotating a non-square image needs the aspect ratio
    aspect = width / height
    theta = torch.stack([torch.stack([cos, -sin / aspect, tx], 1), torch.stack([sin * aspect, cos, ty], 1)], 1)
    return theta.to(device)


def warp(batch: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` (NCHW) moved by ``theta``, and the mask (N1HW) of pixels that came from inside it."""
    grid = F.affine_grid(theta.to(batch.dtype), list(batch.shape), align_corners=False)
    moved = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = (grid.abs() <= 1 - 2 / min(batch.shape[-2:])).all(dim=-1, keepdim=True).permute(0, 3, 1, 2)
    return moved, inside.to(batch.dtype)


def moved_view(x01: torch.Tensor, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The second view of a batch of 0..1 images: (moved + noise, theta, valid mask)."""
    theta = random_motion(x01.shape[0], x01.shape[-2], x01.shape[-1], generator=generator, device=x01.device)
    moved, mask = warp(x01, theta)
    noise = torch.randn(moved.shape, generator=generator).to(moved.device) * NOISE_STD
    return (moved + noise).clamp(0, 1), theta, mask


_DIFFERENCE = {"l1": torch.abs, "l2": torch.square}
NORMS = tuple(_DIFFERENCE)


def temporal_loss(y: torch.Tensor, y_moved: torch.Tensor, theta: torch.Tensor, mask: torch.Tensor, *,
                  norm: str = "l1") -> torch.Tensor:
    """Mean absolute (``l1``) or squared (``l2``) difference between the output of the moved view and
    the moved output (0..1 units). The video metric, E_warp, is a mean square: dominated by the few
    large jumps at edges, which ``l2`` weighs the same way, where ``l1`` spreads the net's effort over
    the many small changes of flat areas. Both are clamped to 0..1 first, as the runtime shows them: a
    change beyond white or black is not flicker, and penalising it would spend the net's capacity on
    values nobody sees."""
    y, y_moved = y.clamp(0, 1), y_moved.clamp(0, 1)
    target, inside = warp(y, theta)
    m = mask * inside
    diff = _DIFFERENCE[norm](y_moved - target)
    return (diff * m).sum() / (m.sum() * y.shape[1]).clamp_min(1)
