"""VGG forward + backward to the image, made faster for ``rtnst optimize`` without changing the result.

Optimising pixels runs VGG forward and backward hundreds of times on one image, so the cost of each
convolution is the cost of the tool. Three things pay here: a Gram matrix whose backward is one matrix
product instead of autograd's three; on CPUs without native bf16, NNPACK's Winograd convolutions
(fp32); on CPUs with it (AVX-512 BF16, AMX), bf16 autocast around VGG alone. Each is checked against
plain fp32 by tools/bench_optimize.py (gradient against float64, and the loss L-BFGS ends at).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .vgg import VGGFeatures

log = logging.getLogger("rtnst")


def _as_matrix(feat: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Activations as a matrix without a copy: (N, HW, C) if channels-last, else (N, C, HW)."""
    n, c, h, w = feat.shape
    if feat.is_contiguous(memory_format=torch.channels_last) and not feat.is_contiguous():
        return feat.permute(0, 2, 3, 1).reshape(n, h * w, c), True
    return feat.reshape(n, c, h * w), False


class _GramFn(torch.autograd.Function):
    """losses.gram with a cheaper backward. Autograd would differentiate through both factors of F·Fᵀ
    (two matrix products and a sum); for G = F·Fᵀ/K, dL/dF = (g + gᵀ)·F/K is one product. On VGG at
    512 px the Grams cost ~15% of an evaluation this way instead of ~20%."""

    @staticmethod
    def forward(ctx, feat):  # type: ignore[override]
        ctx.save_for_backward(feat)
        m, hwc = _as_matrix(feat)
        g = torch.bmm(m.transpose(1, 2), m) if hwc else torch.bmm(m, m.transpose(1, 2))
        return g / feat[0].numel()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (feat,) = ctx.saved_tensors
        n, c, h, w = feat.shape
        sym = (grad + grad.transpose(1, 2)) / feat[0].numel()
        m, hwc = _as_matrix(feat)
        if hwc:
            return torch.bmm(m, sym).view(n, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(sym, m).view(n, c, h, w)


def gram(feat: torch.Tensor) -> torch.Tensor:
    return _GramFn.apply(feat)


class _WinogradConvFn(torch.autograd.Function):
    """3x3, stride 1, pad 1 convolution through NNPACK's Winograd kernels; input gradient only.

    The input gradient of such a convolution is the same convolution of the output gradient with the
    kernels flipped and in/out swapped, so backward runs through NNPACK too."""

    @staticmethod
    def forward(ctx, x, weight, bias, weight_t):  # type: ignore[override]
        ctx.save_for_backward(weight_t)
        return torch._nnpack_spatial_convolution(x, weight, bias, [1, 1], [1, 1])

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (weight_t,) = ctx.saved_tensors
        return torch._nnpack_spatial_convolution(grad.contiguous(), weight_t, None, [1, 1], [1, 1]), None, None, None


class _WinogradConv(nn.Module):
    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.register_buffer("weight_t", conv.weight.detach().transpose(0, 1).flip(2, 3).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _WinogradConvFn.apply(x.contiguous(), self.weight, self.bias, self.weight_t)


def winograd_available() -> bool:
    return torch._nnpack_available()  # also initialises NNPACK, which must happen before its first use


def cpu_has_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere oneDNN emulates it,
    ~50x slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto": bf16 on CPUs with native bf16, where VGG16's forward + backward at 512 px takes ~1.4x less
    time than the fp32 path below and L-BFGS still ends at the same or a lower fp32 loss
    (tools/bench_optimize.py checks it at every run); fp32 elsewhere. CUDA keeps fp32 unless asked."""
    if precision != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
            log.warning("rtnst: this CPU has no native bf16 (AVX-512 BF16 or AMX): --precision bf16 runs far slower than fp32")
        return precision
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def speed_up(vgg: VGGFeatures, device: torch.device, winograd: bool,
              precision: str = "fp32") -> tuple[VGGFeatures, torch.memory_format]:
    """Same function, faster. For fp32 on CPU, NNPACK's Winograd convolutions take ~1.5x less time than
    oneDNN's channels-last ones for VGG's 3x3 layers on AVX2 (forward + backward at 512 px). They keep the
    result: on three content/style pairs the image gradient's relative error against float64 is 0.9-1.8e-3
    with them, 0.3-1.1e-3 with plain NCHW fp32, and L-BFGS ends at the same loss within the spread that any
    fp32 reordering causes; tools/bench_optimize.py checks both. bf16 (autocast) and CUDA run oneDNN's or
    cuDNN's channels-last convolutions."""
    if device.type == "cpu" and precision == "fp32" and winograd and winograd_available():
        for i, m in enumerate(vgg.features):
            # On conv1_1 (3 input channels) NNPACK is ~3x slower than oneDNN.
            if isinstance(m, nn.Conv2d) and m.in_channels >= 16 and m.kernel_size == (3, 3) and m.padding == (1, 1):
                vgg.features[i] = _WinogradConv(m)
        return vgg.to(device), torch.contiguous_format
    return vgg.to(device, memory_format=torch.channels_last), torch.channels_last
