"""The training objective: Johnson et al. 2016's perceptual loss in the terms ``rtnst eval quality``
measures, and the border term of the zero-padded realtime nets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .. import frames as fr
from ..imageio import read_image
from ..perceptual.losses import content_distance, gram, style_distance, total_variation
from ..perceptual.tensors import to_batch
from ..perceptual.vgg import load_vgg

if TYPE_CHECKING:
    from .config import TrainConfig


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
        self.cfg, self.device, self.amp_dtype = cfg, device, amp_dtype
        self.vgg = load_vgg(cfg.vgg, weights=cfg.vgg_weights).to(device, memory_format=torch.channels_last)
        self.vgg.check_layers(cfg.content_layers + cfg.style_layers)
        style = read_image(cfg.style)
        style = fr.resize(style, fr.fit_max_side(style.shape[1], style.shape[0], cfg.style_size_px))
        self.vgg.check_size(style.shape[1], style.shape[0], cfg.style_layers,
                            what=f"the style image at --style-size {cfg.style_size_px}")
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
