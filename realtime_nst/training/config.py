"""Settings of one ``rtnst train`` run (``TrainConfig``), checked before anything heavy starts, and
the settings a checkpoint was trained with (``saved_config``: ``--resume`` reuses them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ModelError, OptionError
from . import nets, temporal


# The term is smallest for a flat output, so a strong one fades the style: at 40, VGG fine-tunes of
# udnie, shipwreck and starry_night went flat or washed out within 100-400 steps, where 10 kept them.
# At 10 a fine-tune on the VGG loss alone can still paint a thin frame (the_scream: 4-6 px in 400
# steps); anchored to a teacher (--teacher with --style) none painted one.
REALTIME_BORDER_WEIGHT = 10.0


@dataclass
class TrainConfig:
    style: str | None  # None when distilling (--teacher alone)
    data: str
    out: str
    tier: str = "realtime"
    width: int | None = None  # realtime net: channels at full resolution (twice at half); None: the net's default
    block_norm: bool = False  # realtime net: an instance norm inside each residual block (nets.RealtimeNet)
    image_size_px: int = 256
    photo_side_px: int | None = None  # photos' short side before cropping; None: the crop side (whole scenes)
    style_size_px: int = 512
    batch_size: int = 4
    steps: int = 20_000
    epochs: int | None = None
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e-2
    content_layers: list[str] = field(default_factory=lambda: ["relu3_3"])
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    vgg: str = "vgg16"
    vgg_weights: str | None = None
    seed: int = 42
    checkpoint_every: int = 200
    preview_every: int = 500
    preview_image: str | None = None
    amp: str = "auto"  # auto | none | bf16 | fp16
    workers: int = 2
    device: str = "auto"
    teacher: str | None = None  # distil from this net's outputs (checkpoint or ONNX model), no VGG
    teacher_weight: float = 10.0  # with a style as well: how strongly the teacher's outputs anchor the VGG loss
    init: str | None = None  # start from these weights (fine-tuning) instead of random ones
    temporal_weight: float = 0.0  # steadiness under small motion and noise (temporal.py); 0 = off
    temporal_norm: str = "l1"  # l1 | l2: how the temporal term weighs a difference (temporal.temporal_loss)
    border_weight: float | None = None  # no painted frame (losses.border_distance); None: the tier's default

    @property
    def border_weight_used(self) -> float:
        # The realtime net zero-pads and needs the term under the VGG loss; the quality net reflect-pads,
        # and a teacher's outputs already say what belongs at the border (with the term as well,
        # distillation at weight 10 diverged in tests).
        if self.border_weight is not None:
            return self.border_weight
        return REALTIME_BORDER_WEIGHT if self.tier == "realtime" and not self.distilling else 0.0

    @property
    def distilling(self) -> bool:
        """The teacher's outputs are the whole loss (no style image, no VGG pass)."""
        return bool(self.teacher) and not self.style

    @property
    def uses_teacher(self) -> bool:
        """The teacher's outputs are computed and used (distilling or anchored)."""
        return self.distilling or self.anchored

    @property
    def anchored(self) -> bool:
        """The VGG loss plus the teacher's outputs as an anchor (a style image and a teacher)."""
        return bool(self.teacher) and bool(self.style) and self.teacher_weight > 0

    def check(self) -> None:
        if self.epochs is not None and self.epochs <= 0:
            raise OptionError(f"epochs must be positive, got {self.epochs}", param="epochs")
        if self.workers < 0:
            raise OptionError(f"workers must be 0 or more, got {self.workers}", param="workers")
        if self.tier not in nets.NETWORKS:
            raise OptionError(f"tier must be one of {sorted(nets.NETWORKS)}, got {self.tier!r}", param="tier")
        if self.width is not None and self.tier != "realtime":
            raise OptionError(f"width sets the realtime net's channels; the {self.tier} net has fixed ones", param="width")
        if self.block_norm and self.tier != "realtime":
            raise OptionError(f"block_norm changes the realtime net; the {self.tier} net has fixed norms",
                              param="block_norm")
        if self.width is not None and self.width <= 0:
            raise OptionError(f"width must be positive, got {self.width}", param="width")
        if self.photo_side_px is not None and self.photo_side_px < self.image_size_px:
            raise OptionError(f"photo_side_px must be at least image_size_px ({self.image_size_px}), got {self.photo_side_px}",
                              param="photo_side_px")
        for name in ("image_size_px", "style_size_px", "batch_size", "steps", "checkpoint_every", "preview_every"):
            if getattr(self, name) <= 0:
                raise OptionError(f"{name} must be positive, got {getattr(self, name)}", param=name)
        multiple = nets.NETWORKS[self.tier].PAD_MULTIPLE  # the net's strides: other sizes break its skips
        if self.image_size_px % multiple:
            raise OptionError(f"image_size_px must be a multiple of {multiple} for the {self.tier} net, got {self.image_size_px}", param="image_size_px")
        for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight", "border_weight", "teacher_weight", "lr"):
            if (getattr(self, name) or 0) < 0 or (name == "lr" and self.lr == 0):
                raise OptionError(f"{name} must be positive, got {getattr(self, name)}", param=name)
        if self.temporal_norm not in temporal.NORMS:
            raise OptionError(f"temporal_norm must be {' or '.join(temporal.NORMS)}, got {self.temporal_norm!r}",
                              param="temporal_norm")
        if self.amp not in ("auto", "none", "bf16", "fp16"):
            raise OptionError(f"amp must be auto, none, bf16 or fp16, got {self.amp!r}", param="amp")
        if self.device not in ("auto", "cpu", "cuda"):
            raise OptionError(f"device must be auto, cpu or cuda, got {self.device!r}", param="device")


def read_state(path: str | Path) -> dict:
    """A training checkpoint's saved dict; ModelError, naming the file, for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code
    except Exception as exc:
        raise ModelError(f"{path} is not a readable training checkpoint ({type(exc).__name__}); move it "
                         "away to start afresh") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: expected a training checkpoint (a dict), got {type(state).__name__}")
    return state


def saved_config(path: str | Path) -> dict:
    """The TrainConfig fields a checkpoint was trained with ({} for an older file without them)."""
    config = read_state(path).get("config") or {}
    if not isinstance(config, dict):
        raise ModelError(f"{path}: its saved settings are damaged; move it away to start afresh")
    known = TrainConfig.__dataclass_fields__
    saved = {k: v for k, v in config.items() if k in known}
    if saved and "border_weight" not in saved:
        saved["border_weight"] = 0.0  # trained before the term existed: continue exactly as it was
    return saved
