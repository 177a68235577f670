"""``rtnst train``: train a feed-forward style network (see realtime_nst.train)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("rtnst")

# Options that change what a resumed run computes: changing them breaks the exact continuation.
_TRAINING = ("style", "teacher", "init", "data", "tier", "width", "block_norm", "image_size_px", "photo_side_px", "style_size_px", "batch_size", "lr", "content_weight",
             "style_weight", "tv_weight", "temporal_weight", "temporal_norm", "border_weight", "teacher_weight",
             "content_layers", "style_layers", "vgg", "vgg_weights", "seed", "amp")


def _layers(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a style network on a folder of photos",
        description="Train a feed-forward style network with a VGG perceptual loss. The checkpoint (--out) holds "
                    "model, optimizer, step and RNG state; --resume continues it exactly. Previews go to "
                    "NAME.previews/, a loss plot to NAME.loss.png. Multi-GPU: torchrun --standalone "
                    "--nproc_per_node=G -m realtime_nst train ... (--batch-size is per process). With --teacher "
                    "the net learns a trained net's outputs instead (distillation: no VGG pass; the teacher's "
                    "outputs are computed once and cached in NAME.teacher.npy, for that teacher and those photos "
                    "only); with --teacher and --style both, the VGG loss trains and the teacher's outputs anchor it.",
    )
    g = p.add_argument_group("data and output")
    g.add_argument("--style", metavar="IMAGE", help="style image (required unless resuming)")
    g.add_argument("--teacher", metavar="MODEL",
                   help="distil: learn this trained net's outputs (a .pt checkpoint, an .onnx file or a shipped model "
                        "name) instead of the VGG loss; much faster. With --style as well: train on the VGG loss "
                        "and keep the outputs near the teacher's (--teacher-weight): a fine-tune that adds texture to a distilled net")
    g.add_argument("--init", metavar="CKPT", help="fine-tune: start from these weights (a .pt checkpoint, an .onnx "
                                                  "model exported by rtnst or a shipped model name; step 0, fresh "
                                                  "optimizer) instead of random ones")
    g.add_argument("--data", metavar="DIR", help="folder of training photos, searched recursively (required unless resuming)")
    g.add_argument("--out", required=True, metavar="NAME.pt", help="checkpoint file, written every --checkpoint-every steps")
    g.add_argument("--resume", action="store_true",
                   help="continue --out where it stopped, with its saved settings (options given here override them)")
    g.add_argument("--overwrite", action="store_true", help="start again even if --out exists")
    n = p.add_argument_group("network and loss (defaults: realtime tier, VGG16 relu3_3 / relu1_2..relu4_3)")
    n.add_argument("--tier", choices=["realtime", "quality"], help="network: realtime (CPU) or quality (TransformerNet)")
    n.add_argument("--width", type=int, metavar="N",
                   help="realtime tier: channels at full resolution, twice as many at half (default: 8, about 2.6k "
                        "MACs/px; 16: 3.7k, a lower style distance at the same content distance, but ~30%% slower on "
                        "AVX2-only CPUs; check its speed on the target CPU with rtnst bench). --init and --resume "
                        "take their weights' width")
    n.add_argument("--block-norm", action="store_true", default=None,
                   help="realtime tier: an instance norm in each residual block (tried on great_wave: 23-31%% less "
                        "style distance, but more flicker and 12-15%% more model time, see models/README.md). "
                        "--init and --resume take their weights' layout")
    n.add_argument("--content-layers", type=_layers, metavar="L1,L2", help="VGG content layers (default: relu3_3)")
    n.add_argument("--style-layers", type=_layers, metavar="L1,L2",
                   help="VGG style layers (default: relu1_2,relu2_2,relu3_3,relu4_3)")
    n.add_argument("--content-weight", type=float, metavar="W", help="content distance weight (default: 1)")
    n.add_argument("--style-weight", type=float, metavar="W", help="style distance weight (default: 10)")
    n.add_argument("--tv-weight", type=float, metavar="W", help="total variation weight (default: 0.01)")
    n.add_argument("--temporal-weight", type=float, metavar="W",
                   help="steadier video: also make the output of each crop moved by a small random motion (plus "
                        "noise) match the moved output (ReCoNet-style temporal loss on still photos); 0 = off (default)")
    n.add_argument("--temporal-norm", choices=["l1", "l2"],
                   help="how --temporal-weight weighs a difference: l1 (mean absolute, default) or l2 (mean square, "
                        "as the flicker metric E_warp: large jumps at edges count most; its values are ~20x smaller, "
                        "so give a ~20x larger weight)")
    n.add_argument("--border-weight", type=float, metavar="W",
                   help="no painted frame: make the output of each crop without its 16 px border match the full "
                        "output there (default: 10 for the realtime tier, whose zero padding lets it find the "
                        "border; 0 for quality and when distilling; needs --image-size 64 or more)")
    n.add_argument("--teacher-weight", type=float, metavar="W",
                   help="with --teacher and --style: weight of the distance to the teacher's outputs (default: 10)")
    n.add_argument("--vgg", choices=["vgg16", "vgg19"], help="loss network (default: vgg16)")
    n.add_argument("--vgg-weights", metavar="FILE", help="VGG weights (.safetensors/.pth; default: $RTNST_VGG_WEIGHTS or torchvision's)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--image-size", type=int, dest="image_size_px", metavar="PX", help="training crop side (default: 256)")
    o.add_argument("--photo-side", type=int, dest="photo_side_px", metavar="PX",
                   help="scale each photo's short side to PX (up to 1.25x more) before cropping (default: the crop "
                        "side, so crops show whole scenes). A net made to run at a long side of 640 sees scenes with "
                        "a short side of 360-480: crops at that scale show it objects as big as users' frames do")
    o.add_argument("--style-size", type=int, dest="style_size_px", metavar="PX", help="style image long side (default: 512)")
    o.add_argument("--batch-size", type=int, metavar="N", help="images per step and process (default: 4)")
    steps = o.add_mutually_exclusive_group()
    steps.add_argument("--steps", type=int, metavar="N", help="optimizer steps in all (default: 20000)")
    steps.add_argument("--epochs", type=int, metavar="N", help="passes over the data instead of --steps")
    o.add_argument("--lr", type=float, metavar="LR", help="Adam learning rate (default: 0.001)")
    o.add_argument("--seed", type=int, metavar="N", help="seed of the initial weights, shuffling and crops (default: 42)")
    o.add_argument("--amp", choices=["auto", "none", "bf16", "fp16"],
                   help="autocast dtype; auto = bf16 on CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX), else none (default: auto)")
    o.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: CUDA when present")
    o.add_argument("--workers", type=int, metavar="N", help="image decoding processes (default: 2)")
    m = p.add_argument_group("monitoring")
    m.add_argument("--checkpoint-every", type=int, metavar="N", help="steps between checkpoints (default: 200)")
    m.add_argument("--preview-every", type=int, metavar="N", help="steps between previews (default: 500)")
    m.add_argument("--preview-image", metavar="IMAGE", help="content image for previews (default: the first photo)")
    p.set_defaults(handler=run)


def build_config(args: argparse.Namespace):
    from ..errors import OptionError
    from ..training.config import TrainConfig, saved_config

    given = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if getattr(args, k, None) is not None}
    values: dict = {}
    if args.resume and Path(args.out).is_file():
        values = saved_config(args.out)
        changed = [k for k in _TRAINING if k in given and k in values and given[k] != values[k]]
        if changed:
            log.warning("rtnst: --resume with changed %s: the run will not continue exactly as it began",
                        ", ".join(changed))
        if "steps" in given:
            values.pop("epochs", None)
        if "epochs" in given:
            values.pop("steps", None)
    values.update(given)
    missing = [f"--{k}" for k in ("style", "data") if not values.get(k) and not (k == "style" and values.get("teacher"))]
    if missing:
        why = (f"{args.out} holds no settings to resume with" if args.resume and Path(args.out).is_file()
               else "unless --resume finds a checkpoint at --out")
        raise OptionError(f"{' and '.join(missing)} required ({why})")
    values.setdefault("style", None)
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from ..errors import require

    require("torch", extra="train")
    from ..training.train import Trainer

    cfg = build_config(args)
    trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite)
    trainer.fit(progress=logging.getLogger().level <= logging.INFO)
    if trainer.rank != 0:
        return 130 if trainer.interrupted else 0
    if trainer.interrupted:
        print(f"rtnst: stopped; wrote {cfg.out} at step {trainer.step} of {trainer.total_steps} "
              f"(continue with: rtnst train --out {cfg.out} --resume)")
        return 130
    print(f"wrote {cfg.out} at step {trainer.step}; loss plot {Path(cfg.out).with_suffix('.loss.png')}")
    return 0
