"""Tied upsampling for the realtime net: nearest x2 + 3x3 conv run as one 4x4 stride-2 transposed
conv, and the conversion of its weights to and from the plain layer the ONNX export holds."""

from __future__ import annotations

import copy

import torch
from torch import nn

# Along one axis, a 3-tap conv (taps w-1, w0, w1) after nearest x2 upsampling reads the low-resolution
# input like a 4-tap stride-2 transposed conv with taps [w1, w0 + w1, w-1 + w0, w-1]: output pixel 2i
# sees inputs i-1 (w-1) and i (w0 + w1), output 2i+1 sees i (w-1 + w0) and i+1 (w1).
_TIE = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


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
    fixed linear function of the 3x3 weights; the ONNX export holds it folded (for_export).
    """

    def __init__(self, in_ch: int, out_ch: int, *, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch // groups, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.register_buffer("tie", _TIE.clone(), persistent=False)

    def kernel(self) -> torch.Tensor:
        """The transposed-conv kernel, (in_ch, out_ch / groups, 4, 4) as conv_transpose2d wants it."""
        return _swap_group_axes(torch.einsum("ai,bj,ocij->ocab", self.tie, self.tie, self.weight), self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv_transpose2d(x, self.kernel().to(x.dtype), self.bias.to(x.dtype), stride=2,
                                              padding=1, groups=self.groups)

    def as_conv_transpose(self) -> nn.ConvTranspose2d:
        """The plain layer with the folded kernel: what the ONNX export holds."""
        ct = nn.ConvTranspose2d(self.weight.shape[1] * self.groups, self.weight.shape[0], 4, 2, 1, groups=self.groups)
        with torch.no_grad():
            ct.weight.copy_(self.kernel())
            ct.bias.copy_(self.bias)
        return ct

    def weight_from_kernel(self, kernel: torch.Tensor) -> torch.Tensor:
        """The 3x3 weights back from a folded kernel (exact: the tie matrix has full column rank)."""
        k = _swap_group_axes(kernel, self.groups)
        inv = torch.linalg.pinv(self.tie)
        return torch.einsum("ia,jb,ocab->ocij", inv, inv, k.to(inv.dtype))


def for_export(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every TiedUpsample as a plain ConvTranspose2d of the same name, so the
    exported weights keep PyTorch's names (rtnst train --init reads them back, see from_export)."""
    net = copy.deepcopy(net)
    for name, mod in list(net.named_modules()):
        if isinstance(mod, TiedUpsample):
            parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
            setattr(parent, name.rpartition(".")[2], mod.as_conv_transpose())
    return net


def from_export(net: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` of a for_export copy, with the folded kernels turned back into ``net``'s 3x3 weights."""
    weights = dict(weights)
    for name, mod in net.named_modules():
        key = f"{name}.weight"
        if isinstance(mod, TiedUpsample) and key in weights and tuple(weights[key].shape[-2:]) == (4, 4):
            weights[key] = mod.weight_from_kernel(weights[key])
            weights.setdefault(f"{name}.bias", torch.zeros_like(mod.bias))  # the exporter drops zero biases
    return weights
