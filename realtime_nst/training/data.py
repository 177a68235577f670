"""Training photos: found recursively, decoded in worker processes, random crops.

Crops are drawn from a generator seeded by (seed, epoch, index), so a resumed run sees exactly the
images and crops it would have seen had it never stopped. ``fixed=True`` gives one centre crop per
photo instead (distillation caches the teacher's output for each).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import InputError
from ..imageio import list_images
from ..signals import stop_signals_held


# Decoding workers are started fresh, not forked: by the time a loader starts, the trainer holds
# OpenMP, onnxruntime (a teacher) and OpenCV thread pools, and a forked child inherits their locks in
# whatever state they were, so it can hang. ~2 s per loader start; a script that trains with
# workers must keep its top level behind ``if __name__ == "__main__"``.
WORKER_START = "spawn"


def batches(dataset: Dataset, *, workers: int, **loader_kw):
    """An iterator over a DataLoader of ``dataset`` whose ``workers`` decoding processes never see
    Ctrl-C or SIGTERM. Those reach every process of the group (a terminal, a batch system, ``docker
    stop``), and a worker killed by one would stop the trainer with an error before its checkpoint;
    the trainer turns them into a clean stop and ends its workers itself."""
    loader = DataLoader(dataset, num_workers=workers, multiprocessing_context=WORKER_START if workers else None,
                        worker_init_fn=_ignore_stop_signals if workers else None, **loader_kw)
    with stop_signals_held():  # the workers start here, and are born with the signals held
        return iter(loader)


def _ignore_stop_signals(_worker_id: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class PhotoCrops(Dataset):
    def __init__(self, root: str | Path, *, size_px: int, photo_side_px: int | None = None, seed: int = 0,
                 fixed: bool = False) -> None:
        self.paths = list_images(root, recursive=True)
        if not self.paths:
            raise InputError(f"no images (.jpg, .png, ...) found under {root}")
        self.size_px = size_px
        self.photo_side_px = photo_side_px or size_px
        self.seed = seed
        self.fixed = fixed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        """An RGB 0..1 float tensor 3xSxS: the photo's short side scaled to P..1.25·P (P: photo_side_px,
        by default S), then a random SxS crop (fixed: short side P, centre crop, not flipped)."""
        rng = np.random.default_rng((self.seed, 0 if self.fixed else self.epoch, index))
        img = cv2.imread(str(self.paths[index]), cv2.IMREAD_COLOR)
        if img is None:  # a broken file in a big folder should not stop a long run
            img = np.full((self.size_px, self.size_px, 3), 127, np.uint8)
        h, w = img.shape[:2]
        scale = self.photo_side_px * (1.0 if self.fixed else rng.uniform(1.0, 1.25)) / min(h, w)
        nw, nh = max(self.size_px, round(w * scale)), max(self.size_px, round(h * scale))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        if self.fixed:
            y, x = (nh - self.size_px) // 2, (nw - self.size_px) // 2
        else:
            y, x = rng.integers(0, nh - self.size_px + 1), rng.integers(0, nw - self.size_px + 1)
        img = img[y : y + self.size_px, x : x + self.size_px]
        if not self.fixed and rng.random() < 0.5:
            img = img[:, ::-1]
        rgb = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB)
        return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)


class ResumableSampler(Sampler[int]):
    """Shuffles each epoch with (seed, epoch) and can start part way into an epoch; splits the order
    between DDP ranks in equal shares (the last n % world images of an epoch's order are left out, so
    every rank runs the same number of steps)."""

    def __init__(self, n: int, *, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch = 0
        self.start = 0

    def order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        return perm[self.rank :: self.world][: self.n // self.world]

    def __iter__(self):
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return len(self.order()) - self.start


class Indexed(Dataset):
    """``(index, item)`` pairs of another dataset (to look up per-item data such as cached targets)."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return index, self.data[index]
