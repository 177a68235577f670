"""``rtnst optimize``: style transfer by optimising the pixels of one image (Gatys, Ecker & Bethge 2016,
"Image Style Transfer Using Convolutional Neural Networks", CVPR).

Slow but needs no trained network. The loss terms are relative, so their weights mean the same whatever
the VGG's input convention (Caffe 0..255 or torchvision 0..1) and whatever the layer's activation scale:

    content = Σ_l w_l ‖φ_l(x) − φ_l(c)‖² / ‖φ_l(c)‖²     / Σ_l w_l
    style   = Σ_l w_l ‖G_l(x) − A_l‖²_F / ‖A_l‖²_F       / Σ_l w_l
    tv      = total variation of x (losses.total_variation)

with G_l = F·Fᵀ/(C·H·W) and A_l the blend of the style images' Grams. Gatys et al. weight each style
layer by 1/(4N²M²); dividing by ‖A_l‖² instead makes every layer count equally, as their equal w_l intend.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import frames as fr
from ..errors import OptionError
from ..perceptual.losses import total_variation
from ..perceptual.tensors import to_batch, to_frame
from ..perceptual.vgg import VGGFeatures, load_vgg
from ..perceptual.vggspeed import gram as _gram
from ..perceptual.vggspeed import resolve_precision, speed_up
from .config import OptimizeConfig

LBFGS_HISTORY = 20


@dataclass
class StepInfo:
    """Passed to the callback after every evaluation; ``frame()`` renders the current image."""

    step: int  # 1-based, counted over all scales
    total: int
    scale: int  # 1-based, coarse to fine
    terms: dict[str, float]  # total, content, style, tv (unweighted terms; total is weighted)
    frame: Callable[[], np.ndarray]


@dataclass
class OptimizeResult:
    frame: np.ndarray
    history: list[dict[str, float]]  # terms of every evaluation, in order
    stopped: bool = False  # ``stop`` was set: the result so far (at the final size), not the full run


def scale_sizes(width: int, height: int, max_side_px: int, scales: int) -> list[tuple[int, int]]:
    """(w, h) of each pass, coarse to fine, halving per scale; the last fits ``max_side_px``."""
    w, h = fr.fit_max_side(width, height, max_side_px)
    return [(max(1, round(w / 2**k)), max(1, round(h / 2**k))) for k in range(scales - 1, -1, -1)]


def _render(x: torch.Tensor, content: np.ndarray, preserve_color: bool) -> np.ndarray:
    frame = to_frame(x)
    return fr.preserve_color(content, frame) if preserve_color else frame


class Objective:
    """The loss of one pass: content targets and blended style Grams are computed once, up front."""

    def __init__(self, vgg: VGGFeatures, content: torch.Tensor, styles: list[torch.Tensor], blend: list[float],
                 cfg: OptimizeConfig, *, memory_format: torch.memory_format = torch.contiguous_format,
                 precision: str = "fp32") -> None:
        self.vgg, self.cfg, self.memory_format = vgg, cfg, memory_format
        self.bf16 = precision == "bf16"
        self.content_layers = cfg.content_layers if cfg.content_weight else {}
        self.style_layers = cfg.style_layers if cfg.style_weight else {}
        self.layers = list(self.content_layers) + [k for k in self.style_layers if k not in self.content_layers]
        with torch.no_grad():
            feats = vgg(content, list(self.content_layers)) if self.content_layers else {}
            self.content = {k: feats[k] for k in self.content_layers}
            self.content_norm = {k: (v**2).sum() for k, v in self.content.items()}
            self.grams: dict[str, torch.Tensor] = {}
            for style, b in zip(styles, blend):  # Gatys et al. 2016 §3: mix styles by mixing their Grams
                for k, v in (vgg(style, list(self.style_layers)) if self.style_layers else {}).items():
                    self.grams[k] = self.grams.get(k, 0) + b * _gram(v)
            self.gram_norm = {k: (g**2).sum() for k, g in self.grams.items()}

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        zero = x.new_zeros(())
        # Only VGG runs in bf16; its features come back to fp32 before they are squared and summed over
        # hundreds of thousands of pixels. The targets (computed once, above) stay fp32.
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            feats = self.vgg(x.contiguous(memory_format=self.memory_format), self.layers)
        feats = {k: v.float() for k, v in feats.items()}
        content = sum((w * ((feats[k] - self.content[k]) ** 2).sum() / self.content_norm[k]
                       for k, w in self.content_layers.items()), zero)
        style = sum((w * ((_gram(feats[k]) - self.grams[k]) ** 2).sum() / self.gram_norm[k]
                     for k, w in self.style_layers.items()), zero)
        content = content / max(sum(self.content_layers.values()), 1e-12)
        style = style / max(sum(self.style_layers.values()), 1e-12)
        tv = total_variation(x) if self.cfg.tv_weight else zero
        total = self.cfg.content_weight * content + self.cfg.style_weight * style + self.cfg.tv_weight * tv
        return {"total": total, "content": content, "style": style, "tv": tv}


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def optimize(content: np.ndarray, styles: list[np.ndarray], cfg: OptimizeConfig | None = None, *,
             callback: Callable[[StepInfo], None] | None = None, stop: threading.Event | None = None) -> OptimizeResult:
    """Stylise ``content`` (a BGR frame) with ``styles`` (frames); returns the image at ``cfg.max_side_px``.
    When ``stop`` is set (Ctrl-C in the CLI) the run ends after the iteration in progress."""
    cfg = cfg or OptimizeConfig()
    cfg.check(len(styles))
    for frame in [content, *styles]:
        fr.check_frame(frame)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    # Weights need no gradient (VGGFeatures sets that), so backward computes input gradients only.
    precision = resolve_precision(cfg.precision, device)
    vgg, layout = speed_up(load_vgg(cfg.vgg, weights=cfg.vgg_weights, pool=cfg.pool), device, cfg.winograd, precision)
    sizes = scale_sizes(content.shape[1], content.shape[0], cfg.max_side_px, cfg.scales)
    need = vgg.min_side_px(list(cfg.content_layers) + list(cfg.style_layers))
    if min(sizes[0]) < need:
        raise OptionError(f"the {'coarsest pass' if cfg.scales > 1 else 'image'} would be {sizes[0][0]}x{sizes[0][1]} px, "
                          f"but the layers used need at least {need} px per side; use fewer --scales or a larger --max-side")
    blend = cfg.style_blend or [1.0] * len(styles)
    blend = [b / sum(blend) for b in blend]
    lr = cfg.lr or (1.0 if cfg.optimizer == "lbfgs" else 0.02)
    total = cfg.iterations * len(sizes)
    history: list[dict[str, float]] = []
    x: torch.Tensor | None = None
    for scale, (w, h) in enumerate(sizes, 1):
        c_frame = fr.resize(content, (w, h))
        # Styles are seen at the pass's long side, so brush strokes keep their size relative to the image.
        s_frames = [fr.resize(s, fr.fit_max_side(s.shape[1], s.shape[0], max(w, h))) for s in styles]
        for i, s in enumerate(s_frames, 1):
            name = f"style image {i}" if len(styles) > 1 else "the style image"
            vgg.check_size(s.shape[1], s.shape[0], list(cfg.style_layers), what=f"{name} at this pass's size")
        s_batches = [to_batch(s).to(device) for s in s_frames]
        objective = Objective(vgg, to_batch(c_frame).to(device), s_batches, blend, cfg, memory_format=layout,
                              precision=precision)
        if x is None:
            if cfg.init == "content":
                x = to_batch(c_frame)
            elif cfg.init == "style":
                x = to_batch(fr.resize(styles[0], (w, h)))
            else:  # Gatys et al. start from white noise
                x = torch.rand(1, 3, h, w)
        else:  # coarse to fine: the last pass's result, upsampled, starts the next one
            x = F.interpolate(x.detach(), size=(h, w), mode="bicubic", align_corners=False).clamp_(0, 1)
        # The optimiser's parameter stays NCHW-contiguous (L-BFGS flattens it with .view); the
        # objective hands VGG a channels-last copy where that is the fast layout.
        x = x.to(device).contiguous().requires_grad_(True)
        if cfg.optimizer == "lbfgs":
            # One iteration per step() call: one evaluation each (no line search, as in Johnson's
            # neural-style), and the curvature history carries over between calls. Tolerances are 0 so
            # that small relative losses never end the run early. 20 past steps cost 20*2 image-sized
            # vectors: 120 MB at 512 px (PyTorch's default 100 would be 600 MB).
            opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=LBFGS_HISTORY, tolerance_grad=0.0,
                                    tolerance_change=0.0)
        else:
            opt = torch.optim.Adam([x], lr=lr)
        terms: dict[str, float] = {}

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = objective(x)
            loss["total"].backward()
            terms.update({k: float(v.detach()) for k, v in loss.items()})
            return loss["total"]

        for _ in range(cfg.iterations):
            opt.step(closure)
            if cfg.optimizer == "adam":
                with torch.no_grad():  # Adam's steps are small: keeping x a valid image costs nothing
                    x.clamp_(0, 1)
            if not math.isfinite(terms["total"]):
                raise OptionError(f"the loss became {terms['total']} at iteration {len(history) + 1}; "
                                  f"lower --lr or the loss weights")
            history.append(dict(terms))
            if callback:
                callback(StepInfo(len(history), total, scale, dict(terms), partial(_render, x, c_frame, cfg.preserve_color)))
            if stop is not None and stop.is_set():
                # A coarse pass's image is scaled up so the file has the size the user asked for.
                frame = _render(x, c_frame, cfg.preserve_color)
                return OptimizeResult(fr.resize(frame, sizes[-1]) if (w, h) != sizes[-1] else frame, history, stopped=True)
    return OptimizeResult(_render(x, c_frame, cfg.preserve_color), history)
