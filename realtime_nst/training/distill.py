"""Distillation: train a small net to reproduce a trained big one's outputs, with no VGG pass.

The VGG perceptual loss costs ~80 GFLOP per 256² image (forward + backward), the realtime net under
1: on a 2-core CPU a run is VGG-bound. Distilling from a trained quality-tier teacher (Hinton et al.
2015, applied to style networks as in Wang et al. 2020, "Collaborative Distillation for Ultra-
Resolution Universal Style Transfer") replaces the VGG pass with a pixel loss against the teacher's
output, computed once per training photo and cached beside the checkpoint (``NAME.teacher.npy``).

The photos are fixed centre crops (no random crops or flips), so each cached target is exactly what
the teacher paints for the input the student sees, borders included: the student learns the
teacher's border handling instead of guessing the context a random crop cut off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError, OutputError
from ..files import atomic_write

log = logging.getLogger("rtnst")

Teacher = Callable[[np.ndarray], np.ndarray]  # frame -> stylised frame, same size
_INIT_CHAIN_MAX = 16  # checkpoints followed back through --init (a loop of them ends there)


def load_teacher(spec: str, *, device: torch.device) -> tuple[Teacher, str, str]:
    """A teacher from a training checkpoint (.pt/.pth) or an ONNX model (path or shipped name), with
    its style name and style image name."""
    if Path(spec).suffix not in (".pt", ".pth"):
        from ..registry import resolve_model
        from ..runtime.stylizer import OnnxStylizer

        stylizer = OnnxStylizer(resolve_model(spec), device="cuda" if device.type == "cuda" else "cpu")
        return stylizer.stylize, stylizer.info.style, stylizer.info.metadata.get("rtnst.style_image", "")

    from ..perceptual.tensors import to_batch, to_frame
    from .export import load_checkpoint
    from .nets import forward_with_margin, from_net, to_net

    net, info = load_checkpoint(spec)
    net = net.to(device, memory_format=torch.channels_last)
    tier = info["tier"]

    def run(frame: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = from_net(forward_with_margin(net, to_net(to_batch(frame).to(device), tier)), tier)
        return to_frame(y)

    return run, str(info.get("style", Path(spec).stem)), str(info.get("style_image", ""))


def cache_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".teacher.npy")


def cache_of_init(init: str | None, *, teacher: str, data: str, size_px: int,
                  photo_side_px: int | None = None) -> Path | None:
    """The teacher cache of the checkpoint a fine-tune starts from, or of the checkpoint that one
    started from, and so on (a VGG stage between distillation and an anchored stage has none of its
    own), when that run was distilled from the same teacher on the same photos, crop size and
    scale: its targets are exactly this run's."""
    from .config import saved_config

    for _ in range(_INIT_CHAIN_MAX):
        if not init or Path(init).suffix not in (".pt", ".pth") or not Path(init).is_file():
            return None
        cfg = saved_config(init)
        same = ((cfg.get("teacher"), cfg.get("data"), cfg.get("image_size_px"), cfg.get("photo_side_px") or size_px)
                == (teacher, data, size_px, photo_side_px or size_px))
        if same and cache_path(init).is_file():
            return cache_path(init)
        init = cfg.get("init")
    return None


def teacher_targets(teacher: Teacher, data, out: str | Path, *, progress: bool = True,
                    workers: int = 0, reuse: Path | None = None) -> np.ndarray:
    """Teacher outputs (N x S x S x 3 uint8 RGB) for every crop of ``data``, read from the cache
    beside ``out`` (or from ``reuse``, another run's cache of the same targets) when it matches,
    else computed (with a progress bar) and cached beside ``out``."""
    from tqdm import tqdm

    from ..perceptual.tensors import to_frame
    from .data import batches

    path = cache_path(out)
    shape = (len(data), data.size_px, data.size_px, 3)
    for candidate in (path, reuse):
        if candidate is None or not candidate.is_file():
            continue
        try:
            cached = np.load(candidate, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise OutputError(f"{candidate} is not a readable teacher cache ({exc}); delete it to rebuild") from None
        if cached.shape == shape:
            log.info("rtnst: teacher outputs from %s", candidate)
            return cached
        log.warning("rtnst: %s holds %s, not %s: not used", candidate, cached.shape, shape)
    targets = np.empty(shape, np.uint8)
    loader = batches(data, workers=workers, batch_size=1)
    for i, x in enumerate(tqdm(loader, total=len(data), desc="teacher outputs", unit="img", disable=not progress)):
        frame = to_frame(x)
        y = teacher(frame)
        if y.shape != frame.shape:
            raise ModelError(f"the teacher returned a {y.shape} frame for a {frame.shape} input")
        targets[i] = y[:, :, ::-1]
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.save(f, targets)
    return targets


def distill_losses(y: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1 on pixels plus L1 on horizontal/vertical differences: the edge term keeps the teacher's
    brush-stroke texture, which a pixel loss alone lets a small student blur into its average."""
    pixel = (y - target).abs().mean()
    edges = ((y.diff(dim=-1) - target.diff(dim=-1)).abs().mean() + (y.diff(dim=-2) - target.diff(dim=-2)).abs().mean())
    return {"total": pixel + edges, "pixel": pixel, "edges": edges}
