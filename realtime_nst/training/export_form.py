"""The form a net takes in its ONNX export, and the way back to its own weights.

The exported graph computes the same function with layers onnxruntime's CPU runs fast: tied
upsampling as plain layers (tied.TiedUpsample.as_export_layers), and an affine instance norm as the
plain norm, then its scale and shift as a depthwise 1x1 conv. onnxruntime has no blocked-layout
(NCHWc) InstanceNormalization, and the layers after one that reads its output left the blocked layout
too: in the realtime net every residual add of the 1/4 level did, with a reorder out and back around
it. A conv after the norm takes the blocked layout up again. Both together: the realtime net took
12-15% less time at 640x360 on one core (AMD EPYC, AVX-512) than in the earlier form. Exported
weights keep PyTorch's names under the replaced module (``norm_in.1.weight``), so ``rtnst train
--init`` reads them back (from_export).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .tied import TiedUpsample


def _split_norm(norm: nn.InstanceNorm2d) -> nn.Sequential:
    ch = norm.num_features
    scale = nn.Conv2d(ch, ch, 1, groups=ch)
    with torch.no_grad():
        scale.weight.copy_(norm.weight.reshape(ch, 1, 1, 1))
        scale.bias.copy_(norm.bias)
    return nn.Sequential(nn.InstanceNorm2d(ch, eps=norm.eps, affine=False), scale)


def _export_layers(mod: nn.Module) -> nn.Module | None:
    if isinstance(mod, TiedUpsample):
        return mod.as_export_layers()
    if isinstance(mod, nn.InstanceNorm2d) and mod.affine and not mod.track_running_stats:
        return _split_norm(mod)
    return None


def for_export(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in its export form, each replaced module's layers under its name. Instance
    norms are split only in a net that says ``SPLIT_NORMS_FOR_EXPORT`` (the realtime net's; in the
    quality net each is followed by a ReLU or residual add outside the blocked layout anyway, and
    split it ran 3% slower)."""
    split = getattr(net, "SPLIT_NORMS_FOR_EXPORT", False)
    net = copy.deepcopy(net)
    for name, mod in list(net.named_modules()):
        if not name or (isinstance(mod, nn.InstanceNorm2d) and not split):
            continue
        layers = _export_layers(mod)
        if layers is not None:
            parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
            setattr(parent, name.rpartition(".")[2], layers)
    return net


def from_export(net: nn.Module, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` of an exported copy of ``net`` (this export form or an earlier one), as ``net``'s own."""
    weights = dict(weights)
    for name, mod in net.named_modules():
        if isinstance(mod, TiedUpsample) and f"{name}.1.weight" in weights:
            mod.weights_from_export(name, weights)
        elif isinstance(mod, nn.InstanceNorm2d) and f"{name}.1.weight" in weights:
            weights[f"{name}.weight"] = weights.pop(f"{name}.1.weight").reshape(-1)
            bias = weights.pop(f"{name}.1.bias", None)
            weights[f"{name}.bias"] = torch.zeros_like(mod.bias) if bias is None else bias
    return weights
