"""Perceptual losses and the style/content distances used by training, optimisation and evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .trainconfig import TrainConfig

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


def border_distance(inner_out: torch.Tensor, full_out: torch.Tensor, margin_px: int) -> torch.Tensor:
    """Mean |f(crop) − crop(f(x))| for the crop of x without a ``margin_px`` border.

    A net with zero padding can tell where the image ends and, under the style loss, learns to paint
    a frame there (strong strokes are cheap style). The inner crop's border lies inside the full
    image, where the net paints no frame; asking the crop's output to equal the full output there
    (the latter held fixed) removes the frame without a reflect margin at inference.
    """
    m = margin_px
    return (inner_out - full_out[..., m:-m, m:-m].detach()).abs().mean()


class PerceptualLoss:
    """Johnson et al. 2016's training loss in the terms ``rtnst eval quality`` measures: content
    distance C over the content layers, style distance S against the style image's Gram matrices,
    and total variation; ``total`` weighs them as the training config says."""

    def __init__(self, cfg: TrainConfig, *, device: torch.device, amp_dtype: torch.dtype | None) -> None:
        from . import frames as fr
        from .evaluate import to_batch
        from .imageio import read_image
        from .vgg import load_vgg

        self.cfg, self.device, self.amp_dtype = cfg, device, amp_dtype
        self.vgg = load_vgg(cfg.vgg, weights=cfg.vgg_weights).to(device, memory_format=torch.channels_last)
        self.vgg.check_layers(cfg.content_layers + cfg.style_layers)
        style = read_image(cfg.style)
        style = fr.resize(style, fr.fit_max_side(style.shape[1], style.shape[0], cfg.style_size_px))
        with torch.no_grad():
            feats = self.vgg(to_batch(style).to(device), cfg.style_layers)
        self.style_grams = {k: gram(v) for k, v in feats.items()}

    def __call__(self, y: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Terms for outputs ``y`` of inputs ``x`` (both batches of RGB 0..1)."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            feats_y = self.vgg(y, sorted(set(cfg.style_layers + cfg.content_layers)))
            with torch.no_grad():
                feats_x = self.vgg(x, cfg.content_layers)
        content = sum(content_distance(feats_y[k], feats_x[k]).mean() for k in cfg.content_layers) / len(cfg.content_layers)
        style = style_distance({k: feats_y[k] for k in cfg.style_layers}, self.style_grams).mean()
        tv = total_variation(y.float())
        total = cfg.content_weight * content + cfg.style_weight * style + cfg.tv_weight * tv
        return {"total": total, "content": content, "style": style, "tv": tv}
