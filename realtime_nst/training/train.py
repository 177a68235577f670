"""``rtnst train``: a feed-forward style network trained with a VGG perceptual loss
(Johnson et al. 2016), resumable, with checkpoints, previews and a loss plot.

The loss terms are the evaluation metric itself (losses.py): the style term is the normalised Gram
distance S, the content term the normalised feature distance C, so weights mean the same whatever
the VGG weights' input convention and a run optimises what ``rtnst eval quality`` measures.
With ``--teacher`` the student learns a trained net's outputs instead (distill.py): no VGG pass.
With ``--teacher`` and ``--style`` both, the VGG loss trains and the teacher's outputs anchor it: the
fine-tune adds texture while staying near what the teacher paints for each photo (its colours, its
faces).
Multi-GPU (or multi-process CPU) training runs under ``torchrun`` with DistributedDataParallel:

    torchrun --standalone --nproc_per_node=2 -m realtime_nst train --style S.jpg --data DIR --out NAME.pt

Each process takes its own share of every epoch's shuffled order; ``--batch-size`` is per process
(gloo on CPU, NCCL on CUDA). A resumed run (``--resume``) sees the same batches and optimizer state
it would have had it never stopped, so its losses match an uninterrupted run's.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .. import frames as fr
from ..errors import ModelError, OptionError, OutputError
from ..files import atomic_write, check_outputs
from ..imageio import read_image, write_image
from ..perceptual.tensors import to_batch, to_frame
from . import nets
from .config import TrainConfig, read_state
from .data import Indexed, PhotoCrops, ResumableSampler, batches
from .objective import PerceptualLoss, border_distance

log = logging.getLogger("rtnst")
BORDER_MARGIN_PX = 16  # the crop for the border term (losses.border_distance) leaves this much out


class Trainer:
    def __init__(self, cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> None:
        cfg.check()
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise OptionError("device cuda was asked for, but PyTorch sees no CUDA GPU", param="device")
        cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if cuda else "gloo")
            if cuda:
                torch.cuda.set_device(self.local_rank)
        self.device = torch.device("cuda" if cuda else "cpu")
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest conv algorithms once
        self.stop = threading.Event()  # set by Ctrl-C / SIGTERM: checkpoint at the next step and return
        self.interrupted = False
        if cfg.amp == "auto":  # CPUs without native bf16 (AVX2) emulate it, far slower than fp32
            from ..perceptual.vggspeed import cpu_has_bf16

            amp = "bf16" if cuda or cpu_has_bf16() else "none"
        else:
            amp = cfg.amp
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        if self.out.exists() and not (resume or overwrite):
            raise OutputError(f"{self.out} exists; pass resume=True to continue it or overwrite=True to start again", param=("resume", "overwrite"))
        check_outputs([self.out], overwrite=True, make_folders=True)  # said now, not after the training

        torch.manual_seed(cfg.seed)
        self.net = nets.build(cfg.tier, width=cfg.width, block_norm=cfg.block_norm).to(self.device, memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.history: list[list[float]] = []
        if resume and self.out.exists():
            self._load(self.out)
        elif cfg.init:
            from ..registry import resolve_model
            from .export import load_checkpoint

            init, info = load_checkpoint(cfg.init if Path(cfg.init).exists() else resolve_model(cfg.init))
            if info["tier"] != cfg.tier:
                raise OptionError(f"init {cfg.init} holds a {info['tier']} net, not {cfg.tier}", param="init")
            self._use_version_of(init.state_dict(), source=cfg.init)
            self.net.load_state_dict(init.state_dict())

        self.data = PhotoCrops(cfg.data, size_px=cfg.image_size_px, photo_side_px=cfg.photo_side_px, seed=cfg.seed,
                               fixed=cfg.uses_teacher)
        if cfg.uses_teacher:
            self._init_teacher()
        if cfg.style:
            self._init_perceptual()
        self.sampler = ResumableSampler(len(self.data), seed=cfg.seed, rank=self.rank, world=self.world)
        per_epoch = len(self.data) // (cfg.batch_size * self.world)
        if per_epoch == 0:
            raise OptionError(f"{len(self.data)} images are fewer than one batch of {cfg.batch_size * self.world}")
        self.steps_per_epoch = per_epoch
        self.total_steps = cfg.epochs * per_epoch if cfg.epochs else cfg.steps
        self.model = self.net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.net, device_ids=[self.local_rank] if cuda else None)
        preview = Path(cfg.preview_image) if cfg.preview_image else self.data.paths[0]
        self.preview = read_image(preview)

    def _init_perceptual(self) -> None:
        self.terms = ["total", "content", "style", "tv"] + ["teacher"] * self.cfg.anchored + self._extra_terms()
        self.style_name, self.style_image = Path(self.cfg.style).stem, Path(self.cfg.style).name
        self.perceptual = PerceptualLoss(self.cfg, device=self.device, amp_dtype=self.amp_dtype)

    def _init_teacher(self) -> None:
        from .distill import caches_of_init, load_teacher, teacher_file, targets_key, teacher_targets

        self.terms = ["total", "pixel", "edges"] + self._extra_terms()
        teacher, self.style_name, self.style_image = load_teacher(self.cfg.teacher, device=self.device)
        key = targets_key(teacher_file(self.cfg.teacher), self.data)
        self.targets = teacher_targets(teacher, self.data, self.out, key=key, progress=self.rank == 0,
                                       workers=self.cfg.workers, reuse=caches_of_init(self.cfg.init))

    # -- checkpoints ---------------------------------------------------------------------------
    def _extra_terms(self) -> list[str]:
        return ["border"] * bool(self.cfg.border_weight_used) + ["temporal"] * bool(self.cfg.temporal_weight)

    def _use_version_of(self, weights: dict[str, torch.Tensor], *, source: str | Path) -> None:
        """Weights of an earlier version of the net (RealtimeNetV1) or of another width or block norm are
        trained on as that net, unless a width or block norm was asked for."""
        net = nets.build(self.cfg.tier, state=weights)
        if _shapes(net) == _shapes(self.net):
            return
        if self.cfg.width is not None:
            raise OptionError(f"width {self.cfg.width} asked, but {source} holds a {self.cfg.tier} net of another width "
                              "or version (leave width out to train it at its own)", param="width")
        if self.cfg.block_norm:
            raise OptionError(f"block_norm asked, but {source} holds a {self.cfg.tier} net without norms in its blocks "
                              "(leave block_norm out to train it as it is)", param="block_norm")
        self.net = net.to(self.device, memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        # The run's record (checkpoint, model metadata) describes the net it trained.
        self.cfg = replace(self.cfg, block_norm=getattr(net, "block_norm", False))

    def _load(self, path: Path) -> None:
        state = read_state(path)
        if state.get("tier") != self.cfg.tier:
            raise OptionError(f"{path} holds a {state.get('tier')} net, not {self.cfg.tier}")
        try:
            self._restore(state, path)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise ModelError(f"{path} is damaged or does not fit this net ({type(exc).__name__}: "
                             f"{str(exc)[:120]}); move it away to start afresh") from None
        log.info("rtnst: resumed %s at step %d", path, self.step)

    def _restore(self, state: dict, path: Path) -> None:
        self._use_version_of(state["model"], source=path)
        self.net.load_state_dict(state["model"])
        if "optimizer" in state:
            self.opt.load_state_dict(state["optimizer"])
            for group in self.opt.param_groups:  # the saved state holds the old rate; --lr may change it
                group["lr"] = self.cfg.lr
        self.step = int(state.get("step", 0))
        self.history = list(state.get("history", []))
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())

    def save(self) -> None:
        if self.rank != 0:
            return
        state = {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "rng": torch.get_rng_state(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "tier": self.cfg.tier,
            "style": self.style_name,
            "style_image": self.style_image,
            "config": asdict(self.cfg),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state()
        with atomic_write(self.out) as tmp:
            torch.save(state, tmp)

    # -- training ------------------------------------------------------------------------------
    def _stylize(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            return nets.from_net(nets.forward_with_margin(self.net, nets.to_net(x, self.cfg.tier), call=self.model), self.cfg.tier)

    def losses(self, x: torch.Tensor, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        y = self._stylize(x)
        if cfg.uses_teacher:
            from .distill import distill_losses

            target = torch.from_numpy(self.targets[index.numpy()]).to(self.device).permute(0, 3, 1, 2).float() / 255
            distilled = distill_losses(y.float(), target)
        if cfg.distilling:
            terms = distilled
        else:
            terms = self.perceptual(y, x)
            if cfg.anchored:
                terms["teacher"] = distilled["total"]
                terms["total"] = terms["total"] + cfg.teacher_weight * terms["teacher"]
        if cfg.border_weight_used:
            terms["border"] = torch.zeros((), device=y.device)
            m = BORDER_MARGIN_PX  # a multiple of the net's stride: the crop keeps the pixel grid's phase
            if min(x.shape[-2:]) >= 4 * m:  # smaller crops leave too little inside to compare
                y_inner = self._stylize(x[..., m:-m, m:-m].contiguous(memory_format=torch.channels_last))
                terms["border"] = border_distance(y_inner.float(), y.float(), m)
                terms["total"] = terms["total"] + cfg.border_weight_used * terms["border"]
        if cfg.temporal_weight:
            from .temporal import moved_view, temporal_loss

            x_moved, theta, mask = moved_view(x)
            y_moved = self._stylize(x_moved.contiguous(memory_format=torch.channels_last))
            terms["temporal"] = temporal_loss(y.float(), y_moved.float(), theta, mask, norm=cfg.temporal_norm)
            terms["total"] = terms["total"] + cfg.temporal_weight * terms["temporal"]
        return terms

    def fit(self, *, progress: bool = True, plot: bool = True) -> None:
        """Train to the last step, or until Ctrl-C / SIGTERM: then the step in progress finishes, a
        checkpoint is written and ``self.interrupted`` is set (``--resume`` continues from there)."""
        from ..signals import stop_on_signals

        with stop_on_signals(self.stop):
            self._fit(progress=progress, plot=plot)

    def _fit(self, *, progress: bool, plot: bool) -> None:
        from tqdm import tqdm

        cfg = self.cfg
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress or self.rank != 0,
                   unit="step", dynamic_ncols=True)
        self.net.train()
        t0, seen = time.perf_counter(), 0
        while self.step < self.total_steps:
            epoch, offset = divmod(self.step, self.steps_per_epoch)
            self.data.epoch = self.sampler.epoch = epoch
            self.sampler.start = offset * cfg.batch_size
            for index, x in batches(Indexed(self.data), workers=cfg.workers, batch_size=cfg.batch_size,
                                    sampler=self.sampler, drop_last=True, pin_memory=self.device.type == "cuda"):
                x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                terms = self.losses(x, index)
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(terms["total"]).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
                self.step += 1
                seen += x.shape[0] * self.world
                vals = self._mean_over_ranks(terms)
                if not math.isfinite(vals["total"]):
                    raise OptionError(f"the loss became {vals['total']} at step {self.step}; lower lr or the weights", param="lr")
                self.history.append([self.step] + [vals[k] for k in self.terms])
                bar.set_postfix(epoch=epoch + 1, **{k: f"{vals[k]:.4f}" for k in self.terms},
                                img_s=f"{seen / (time.perf_counter() - t0):.2f}")
                bar.update(1)
                if self.step % cfg.checkpoint_every == 0 or self.step == self.total_steps:
                    self.save()
                if self.step % cfg.preview_every == 0 or self.step == self.total_steps:
                    self.write_preview()
                if self.step >= self.total_steps or self.stop.is_set():
                    break
            if self.stop.is_set():
                self.interrupted = True
                break
        bar.close()
        self.save()
        if self.rank == 0 and plot:
            self.plot_losses()
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()

    def _mean_over_ranks(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """Loss terms for the log and history: under DDP, the mean over all processes' batches."""
        keys = list(terms)
        t = torch.stack([terms[k].detach().float() for k in keys])
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
            t /= self.world
        return dict(zip(keys, t.tolist()))

    def stylize_preview(self):
        m = self.net.PAD_MULTIPLE
        img = fr.resize(self.preview, fr.fit_max_side(self.preview.shape[1], self.preview.shape[0], 512))
        img = fr.resize(img, (max(img.shape[1], 4 * m), max(img.shape[0], 4 * m)))  # tiny: enlarged, not cropped away
        h, w = img.shape[:2]
        img = img[: h - h % m, : w - w % m]
        self.net.eval()
        with torch.no_grad():
            y = nets.from_net(nets.forward_with_margin(self.net, nets.to_net(to_batch(img).to(self.device), self.cfg.tier)),
                          self.cfg.tier)
        self.net.train()
        return to_frame(y)

    def write_preview(self) -> None:
        if self.rank != 0:
            return
        (folder := self.out.with_name(self.out.stem + ".previews")).mkdir(parents=True, exist_ok=True)
        write_image(folder / f"step_{self.step:06d}.jpg", self.stylize_preview(), overwrite=True)

    def plot_losses(self) -> Path | None:
        from .lossplot import plot_history

        # A run resumed with another set of terms (say --border-weight added) has shorter early rows.
        rows = [r for r in self.history if len(r) == 1 + len(self.terms)]
        return plot_history(rows, self.terms, self.out.with_suffix(".loss.png"))


def _shapes(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}
