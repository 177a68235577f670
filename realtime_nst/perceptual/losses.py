"""The style and content distances (Gram matrices of VGG features) that training, optimisation and
evaluation share, and total variation."""

from __future__ import annotations

import torch

# Layers of the evaluation metric (training issue): VGG16 relu1_2, relu2_2, relu3_3, relu4_3.
EVAL_STYLE_LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
EVAL_CONTENT_LAYER = "relu3_3"


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F·Fᵀ / (C·H·W) per batch item, computed in fp32 even under autocast."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def total_variation(batch: torch.Tensor) -> torch.Tensor:
    return (batch[..., 1:, :] - batch[..., :-1, :]).abs().mean() + (batch[..., :, 1:] - batch[..., :, :-1]).abs().mean()


def style_distance(out_feats: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """S = Σ_l ‖G_l(out) − G_l(style)‖²_F / Σ_l ‖G_l(style)‖²_F, one value per batch item."""
    num = sum(((gram(out_feats[k]) - g) ** 2).sum(dim=(1, 2)) for k, g in style_grams.items())
    den = sum((g**2).sum(dim=(1, 2)) for g in style_grams.values())
    return num / den


def content_distance(out_feat: torch.Tensor, content_feat: torch.Tensor) -> torch.Tensor:
    """C = ‖φ(out) − φ(content)‖² / ‖φ(content)‖², one value per batch item."""
    o, c = out_feat.float(), content_feat.float()
    return ((o - c) ** 2).sum(dim=(1, 2, 3)) / (c**2).sum(dim=(1, 2, 3))
