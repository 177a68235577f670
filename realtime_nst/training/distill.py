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

import hashlib
import json
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


def teacher_file(spec: str) -> Path:
    """The file a teacher spec names: a training checkpoint, an ONNX path or a shipped model."""
    if Path(spec).suffix in (".pt", ".pth"):
        return Path(spec)
    from ..registry import resolve_model

    return resolve_model(spec)


def load_teacher(spec: str, *, device: torch.device) -> tuple[Teacher, str, str]:
    """A teacher from a training checkpoint (.pt/.pth) or an ONNX model (path or shipped name), with
    its style name and style image name."""
    if Path(spec).suffix not in (".pt", ".pth"):
        from ..runtime.stylizer import OnnxStylizer

        stylizer = OnnxStylizer(teacher_file(spec), device="cuda" if device.type == "cuda" else "cpu")
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


def _key_path(cache: Path) -> Path:
    return cache.with_suffix(".json")


def targets_key(teacher: str | Path, data) -> str:
    """What a teacher cache's targets are a function of: the teacher's bytes, and each photo (name
    and size) with the crop size and scale. A cache is used only by a run whose key is the same, so
    a restarted run with another teacher or other photos never trains on stale targets."""
    h = hashlib.sha256(Path(teacher).read_bytes())
    h.update(f"{data.size_px} {data.photo_side_px}".encode())
    for path in data.paths:
        h.update(f"\n{Path(path).name} {Path(path).stat().st_size}".encode())
    return h.hexdigest()


def caches_of_init(init: str | None) -> list[Path]:
    """The teacher caches of the checkpoint a fine-tune starts from, of the checkpoint that one
    started from, and so on (a VGG stage between distillation and an anchored stage has none of its
    own): candidates for this run's targets, which ``teacher_targets`` checks by their key."""
    from .config import saved_config

    found: list[Path] = []
    for _ in range(_INIT_CHAIN_MAX):
        if not init or Path(init).suffix not in (".pt", ".pth") or not Path(init).is_file():
            break
        if cache_path(init).is_file() and cache_path(init) not in found:
            found.append(cache_path(init))
        init = saved_config(init).get("init")
    return found


def _cached(candidate: Path, *, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        made_for = json.loads(_key_path(candidate).read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        made_for = None
    if made_for != key:
        why = ("made from another teacher or other photos" if made_for
               else f"made without a record ({_key_path(candidate).name}) of its teacher and photos")
        log.warning("rtnst: %s was %s: not used", candidate, why)
        return None
    try:
        cached = np.load(candidate, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise OutputError(f"{candidate} is not a readable teacher cache ({exc}); delete it to rebuild") from None
    if cached.shape != shape:
        log.warning("rtnst: %s holds %s, not %s: not used", candidate, cached.shape, shape)
        return None
    log.info("rtnst: teacher outputs from %s", candidate)
    return cached


def teacher_targets(teacher: Teacher, data, out: str | Path, *, key: str, progress: bool = True,
                    workers: int = 0, reuse: list[Path] = ()) -> np.ndarray:
    """Teacher outputs (N x S x S x 3 uint8 RGB) for every crop of ``data``, read from the cache
    beside ``out`` (or from one of ``reuse``, other runs' caches) when it was made for ``key``
    (``targets_key``), else computed (with a progress bar) and cached beside ``out``."""
    from tqdm import tqdm

    from ..perceptual.tensors import to_frame
    from .data import batches

    path = cache_path(out)
    shape = (len(data), data.size_px, data.size_px, 3)
    for candidate in (path, *reuse):
        if candidate.is_file() and (cached := _cached(candidate, key=key, shape=shape)) is not None:
            return cached
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
    with atomic_write(_key_path(path)) as tmp:
        tmp.write_text(json.dumps({"key": key}))
    return targets


def distill_losses(y: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1 on pixels plus L1 on horizontal/vertical differences: the edge term keeps the teacher's
    brush-stroke texture, which a pixel loss alone lets a small student blur into its average."""
    pixel = (y - target).abs().mean()
    edges = ((y.diff(dim=-1) - target.diff(dim=-1)).abs().mean() + (y.diff(dim=-2) - target.diff(dim=-2)).abs().mean())
    return {"total": pixel + edges, "pixel": pixel, "edges": edges}
