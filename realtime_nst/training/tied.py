"""Tied upsampling for the realtime net: nearest x2 + 3x3 conv run as one 4x4 stride-2 transposed
conv, and the conversion of its weights to and from the plain layers the ONNX export holds
(export_form applies it to a whole net)."""

from __future__ import annotations

import torch
from torch import nn

# Along one axis, a 3-tap conv (taps w-1, w0, w1) after nearest x2 upsampling reads the low-resolution
# input like this: output pixel 2i sees inputs i-1 (w-1) and i (w0 + w1), output 2i+1 sees i (w-1 + w0)
# and i+1 (w1). _PHASES[phase, input i-1 / i / i+1, tap] holds that, one 3-tap conv per output phase;
# as a 4-tap stride-2 transposed conv (kernel index 2i + phase + 1 - 2 * input) the taps are
# [w1, w0 + w1, w-1 + w0, w-1] (_TIE).
_PHASES = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
                        [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
_TIE = torch.stack([_PHASES[1, 2], _PHASES[0, 1], _PHASES[1, 1], _PHASES[0, 0]])


def _swap_group_axes(k: torch.Tensor, groups: int) -> torch.Tensor:
    """(A, B/groups, h, w) <-> (B, A/groups, h, w): conv weights are (out, in/g), transposed-conv
    weights (in, out/g); with groups the swap happens within each group. Its own inverse."""
    a, b_per_group = k.shape[:2]
    h, w = k.shape[2:]
    return k.reshape(groups, a // groups, b_per_group, h, w).transpose(1, 2).reshape(groups * b_per_group, a // groups, h, w)


class TiedUpsample(nn.Module):
    """Nearest x2 upsampling then a 3x3 conv (zero padding), computed from the low-resolution input as
    one transposed conv (kernel 4, stride 2, padding 1): the resize-convolution Odena et al. 2016
    ("Deconvolution and Checkerboard Artifacts") recommend, at a transposed conv's price and without
    building the upsampled tensor.

    A free transposed conv gives each of the four output phases its own weights, and under the VGG
    loss the first realtime nets used them to paint a colour grid tied to the pixel grid. Here the
    phases are sums of the same nine taps, so a flat input gives a flat output. The 4x4 kernel is a
    fixed linear function of the 3x3 weights; the ONNX export holds another form that onnxruntime
    runs faster (as_export_layers).
    """

    def __init__(self, in_ch: int, out_ch: int, *, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch // groups, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.register_buffer("tie", _TIE.clone(), persistent=False)
        self.register_buffer("phases", _PHASES.clone(), persistent=False)

    def kernel(self) -> torch.Tensor:
        """The transposed-conv kernel, (in_ch, out_ch / groups, 4, 4) as conv_transpose2d wants it."""
        return _swap_group_axes(torch.einsum("ai,bj,ocij->ocab", self.tie, self.tie, self.weight), self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv_transpose2d(x, self.kernel().to(x.dtype), self.bias.to(x.dtype), stride=2,
                                              padding=1, groups=self.groups)

    def phase_kernel(self) -> torch.Tensor:
        """The four output phases as one 3x3 conv at the low resolution, (4 * out_ch, in_ch / groups, 3, 3),
        output channel 4 * o + 2 * row phase + column phase (each phase reads a 2x2 window, padded to 3x3)."""
        out_ch, in_per_group = self.weight.shape[:2]
        k = torch.einsum("pai,qbj,ocij->opqcab", self.phases, self.phases, self.weight)
        return k.reshape(4 * out_ch, in_per_group, 3, 3)

    def as_export_layers(self) -> nn.Sequential:
        """The plain layers the ONNX export holds. Depthwise (the realtime net's): nearest x2 (``0``)
        then the 3x3 conv (``1``) at the full resolution, where onnxruntime keeps its blocked NCHWc
        layout through both: the realtime net took ~10% less time (640x360, one core) than with the
        phase form. Otherwise the phase form (as_phase_layers), whose conv runs at the low resolution."""
        if self.groups != self.weight.shape[0] or self.weight.shape[1] != 1:
            return self.as_phase_layers()
        out_ch = self.weight.shape[0]
        conv = nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch)
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            conv.bias.copy_(self.bias)
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv)

    def as_phase_layers(self) -> nn.Sequential:
        """The phase conv (``0``), then a stride-2 transposed conv with one-hot weights (``1``) that only
        interleaves the phases. onnxruntime's CPU ConvTranspose is slow for a 4x4 stride-2 kernel (three
        of them took ~29 ms of a 720p frame, a third of the net) and fast for a 2x2 non-overlapping one;
        DepthToSpace, the obvious interleave, is slower."""
        out_ch, in_per_group = self.weight.shape[:2]
        conv = nn.Conv2d(in_per_group * self.groups, 4 * out_ch, 3, padding=1, groups=self.groups, bias=False)
        interleave = nn.ConvTranspose2d(4 * out_ch, out_ch, 2, 2, groups=out_ch)
        with torch.no_grad():
            conv.weight.copy_(self.phase_kernel())
            interleave.weight.copy_(torch.eye(4).reshape(4, 1, 2, 2).repeat(out_ch, 1, 1, 1))
            interleave.bias.copy_(self.bias)
        return nn.Sequential(conv, interleave)

    def weight_from_phase_kernel(self, kernel: torch.Tensor) -> torch.Tensor:
        """The 3x3 weights back from a phase kernel (exact: the stacked phase matrices have full column rank)."""
        out_ch, in_per_group = self.weight.shape[:2]
        k = kernel.reshape(out_ch, 2, 2, in_per_group, 3, 3).permute(0, 3, 1, 4, 2, 5).reshape(out_ch, in_per_group, 6, 6)
        inv = torch.linalg.pinv(self.phases.reshape(6, 3))
        return torch.einsum("ia,jb,ocab->ocij", inv, inv, k.to(inv.dtype))

    def weights_from_export(self, name: str, weights: dict[str, torch.Tensor]) -> None:
        """Replace, in ``weights``, the exported layers of this module (either form) by its own weights."""
        phase = weights.pop(f"{name}.0.weight", None)
        weight = weights.pop(f"{name}.1.weight")
        bias = weights.pop(f"{name}.1.bias", None)  # the exporter drops zero biases
        weights[f"{name}.weight"] = weight if phase is None else self.weight_from_phase_kernel(phase)
        weights[f"{name}.bias"] = torch.zeros_like(self.bias) if bias is None else bias
