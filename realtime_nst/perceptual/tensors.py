"""Frames to torch batches and back: a ``frame`` is HxWx3 uint8 BGR, a batch NCHW float32 RGB 0..1."""

from __future__ import annotations

import numpy as np
import torch


def to_batch(frame: np.ndarray) -> torch.Tensor:
    """frame -> 1x3xHxW float32 RGB 0..1."""
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_frame(batch: torch.Tensor) -> np.ndarray:
    """The first image of an RGB 0..1 batch (values outside 0..1 clipped) -> frame."""
    rgb = (batch.detach()[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(rgb[:, :, ::-1])
