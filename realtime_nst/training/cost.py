"""What a net costs to run: parameters and multiply-accumulates per pixel (export metadata, tables)."""

from __future__ import annotations

import torch
from torch import nn

from .export_form import for_export


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def macs_per_pixel(net: nn.Module, *, size_px: int = 256) -> float:
    """Multiply-accumulates per output pixel of the net as exported (export_form.for_export: what runs),
    counted from conv layers with forward hooks."""
    total = 0
    net = for_export(net)

    def hook(mod: nn.Conv2d | nn.ConvTranspose2d, inp, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        if isinstance(mod, nn.ConvTranspose2d):  # every input pixel meets every kernel tap once
            total += inp[0].numel() // inp[0].shape[0] * k * mod.out_channels // mod.groups
        else:
            total += out.numel() // out.shape[0] * k * (mod.in_channels // mod.groups)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, size_px, size_px))
    finally:
        for h in handles:
            h.remove()
    return total / (size_px * size_px)
