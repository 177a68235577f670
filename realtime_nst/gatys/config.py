"""Settings of one ``rtnst optimize`` run, checked before anything heavy starts (no torch needed to
build or describe them)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..errors import OptionError

# Gatys et al.: content conv4_2, style conv1_1 ... conv5_1. The paper uses Caffe's blob names, and Caffe
# rectifies in place, so its "conv4_2" is the ReLU output: relu4_2 here (conv4_2 here is pre-ReLU).
DEFAULT_CONTENT_LAYERS = "relu4_2"
DEFAULT_STYLE_LAYERS = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"


def parse_layers(spec: str, what: str) -> dict[str, float]:
    """'relu1_1,relu2_1:0.5' -> {'relu1_1': 1.0, 'relu2_1': 0.5}: names with optional positive weights."""
    layers: dict[str, float] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, weight = item.partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise OptionError(f"{what}_layers: bad weight {weight!r} in {item!r} (expected NAME or NAME:WEIGHT)",
                              param=f"{what}_layers") from None
        if not value > 0 or not math.isfinite(value):
            raise OptionError(f"{what}_layers: the weight of {name} must be positive, got {weight}", param=f"{what}_layers")
        layers[name.strip()] = value
    if not layers:
        raise OptionError(f"{what}_layers names no layer", param=f"{what}_layers")
    return layers


@dataclass
class OptimizeConfig:
    vgg: str = "vgg19"
    vgg_weights: str | os.PathLike | None = None
    pool: str = "max"  # "avg": Gatys et al. found average pooling gives slightly better results
    content_layers: dict[str, float] = field(default_factory=lambda: parse_layers(DEFAULT_CONTENT_LAYERS, "content"))
    style_layers: dict[str, float] = field(default_factory=lambda: parse_layers(DEFAULT_STYLE_LAYERS, "style"))
    content_weight: float = 1.0
    style_weight: float = 20.0
    tv_weight: float = 1e-2
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1.0 for L-BFGS (its step scale), 0.02 for Adam (pixel units 0..1)
    iterations: int = 300  # per scale; one VGG forward+backward each
    init: str = "content"
    max_side_px: int = 512
    scales: int = 1
    style_blend: list[float] | None = None  # one weight per style image; default equal
    preserve_color: bool = False
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # of VGG's convolutions; losses and Grams stay fp32 (see resolve_precision)
    winograd: bool = True  # CPU fp32 only: NNPACK Winograd convolutions (see _speed_up); False: oneDNN

    def check(self, n_styles: int) -> None:
        for name, choices in (("vgg", ("vgg16", "vgg19")), ("pool", ("max", "avg")), ("optimizer", ("lbfgs", "adam")),
                              ("init", ("content", "noise", "style")), ("device", ("auto", "cpu", "cuda")),
                              ("precision", ("auto", "fp32", "bf16"))):
            if getattr(self, name) not in choices:
                raise OptionError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, got {getattr(self, name)!r}",
                                  param=name)
        import torch

        from ..perceptual.vgg import layer_names

        names = layer_names(self.vgg)  # before minutes of loading and computing, not after
        bad = [n for n in [*self.content_layers, *self.style_layers] if n not in names]
        if bad:
            raise OptionError(f"unknown {self.vgg} layer(s) {', '.join(bad)}; valid: conv1_1 ... {names[-2]}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if not getattr(self, name) >= 0 or not math.isfinite(getattr(self, name)):  # 0 turns a term off
                raise OptionError(f"{name} must be 0 or positive, got {getattr(self, name)}", param=name)
        if self.content_weight == 0 and self.style_weight == 0:
            raise OptionError("content_weight and style_weight are both 0: nothing to optimise", param=("content_weight", "style_weight"))
        for name in ("iterations", "max_side_px", "scales"):
            if getattr(self, name) <= 0:
                raise OptionError(f"{name} must be positive, got {getattr(self, name)}", param=name)
        if self.lr is not None and not self.lr > 0:
            raise OptionError(f"lr must be positive, got {self.lr}", param="lr")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise OptionError("device cuda: no CUDA device is available to PyTorch", param="device")
        if n_styles == 0:
            raise OptionError("give at least one style image")
        if self.style_blend is not None and len(self.style_blend) != n_styles:
            raise OptionError(f"style_blend has {len(self.style_blend)} weights for {n_styles} style images", param="style_blend")
        if self.style_blend is not None and not all(w > 0 and math.isfinite(w) for w in self.style_blend):
            raise OptionError(f"style_blend weights must be positive, got {self.style_blend}", param="style_blend")
