"""``rtnst optimize CONTENT STYLE [STYLE ...] OUT``: optimisation-based style transfer (Gatys et al. 2016)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from ..errors import ModelError, OptionError

log = logging.getLogger("rtnst")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # no "(default: None)" on options without one
        return action.help if action.default is None or action.default is False else super()._get_help_string(action)


def register(sub) -> None:
    from ..gatys.config import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OptimizeConfig

    d = OptimizeConfig()
    p = sub.add_parser(
        "optimize",
        help="stylise one image by optimising its pixels (Gatys et al.; slow, no trained model needed)",
        description="Style transfer by optimisation (Gatys, Ecker & Bethge 2016): starting from the content image "
        "(or noise, or the style), change the pixels until VGG sees the content's features and the style's Gram "
        "matrices. Loss terms are relative (a term of 0.1 is a 10 percent mismatch), so the weights do not depend on "
        "the VGG file's input convention. Slow on CPU: a few seconds per iteration at 512 px; CUDA is used when present. "
        "Ctrl-C ends the run after the iteration in progress and still writes the result so far.",
        formatter_class=_Formatter,
    )
    p.add_argument("content", metavar="CONTENT", help="content image")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image; give several to blend their styles")
    p.add_argument("out", metavar="OUT", help="output image (.png, .jpg, ...); written atomically")
    p.add_argument("--overwrite", action="store_true", help="replace OUT (and --save-every images) if they exist")

    g = p.add_argument_group("network")
    g.add_argument("--vgg", choices=["vgg19", "vgg16"], default=d.vgg, help="loss network")
    g.add_argument("--vgg-weights", metavar="FILE",
                   help="VGG weights (.safetensors/.pth, torchvision key layout) of the --vgg architecture; "
                   "default: $RTNST_VGG_WEIGHTS, else torchvision's download")
    g.add_argument("--pool", choices=["max", "avg"], default=d.pool,
                   help="VGG pooling; Gatys et al. prefer avg for slightly smoother results")
    g.add_argument("--content-layers", default=DEFAULT_CONTENT_LAYERS, metavar="L[:W],...",
                   help="content layers, each with an optional relative weight (conv1_1, relu1_1, pool1, ...). "
                   "Gatys et al.'s conv4_2 is Caffe's in-place-rectified output, i.e. relu4_2 here")
    g.add_argument("--style-layers", default=DEFAULT_STYLE_LAYERS, metavar="L[:W],...",
                   help="style layers, each with an optional relative weight, e.g. relu1_1:2,relu2_1")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device, help="auto: CUDA when present")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=d.precision,
                   help="of VGG's convolutions (losses stay fp32). auto: bf16 on CPUs with native bf16 "
                   "(AVX-512 BF16, AMX), ~1.4x faster there and the same result; fp32 elsewhere")

    g = p.add_argument_group("loss")
    g.add_argument("--content-weight", type=float, default=d.content_weight, metavar="W",
                   help="weight of the content term; 0 turns it off (texture synthesis)")
    g.add_argument("--style-weight", type=float, default=d.style_weight, metavar="W",
                   help="weight of the style term; raise for more style, lower for more content")
    g.add_argument("--tv-weight", type=float, default=d.tv_weight, metavar="W",
                   help="weight of the total-variation term (smoothness); 0 turns it off")
    g.add_argument("--style-blend", type=_floats, metavar="W,W,...",
                   help="one positive weight per STYLE image (default: equal)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=["lbfgs", "adam"], default=d.optimizer,
                   help="L-BFGS converges in fewer iterations; Adam uses less memory")
    g.add_argument("--lr", type=float, metavar="LR",
                   help="step size: L-BFGS step scale (default 1) or Adam learning rate in 0..1 pixel units (default 0.02)")
    g.add_argument("--iterations", type=int, default=d.iterations, metavar="N",
                   help="iterations per scale; each is one VGG forward and backward")
    g.add_argument("--init", choices=["content", "noise", "style"], default=d.init,
                   help="starting image: the content, uniform noise (as in Gatys et al.) or the first style")
    g.add_argument("--max-side", type=int, default=d.max_side_px, metavar="PX", dest="max_side_px",
                   help="long side of the output, at most (the content is only shrunk)")
    g.add_argument("--scales", type=int, default=d.scales, metavar="N",
                   help="coarse to fine: run at 1/2^(N-1) of the size first, doubling up to --max-side; "
                   "faster and better large structures for big outputs")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed (noise initialisation)")

    g = p.add_argument_group("output")
    g.add_argument("--preserve-color", action="store_true",
                   help="keep the content's colours: transfer luminance only (Gatys et al. 2016b)")
    g.add_argument("--save-every", type=int, metavar="N",
                   help="also write OUT-stem_iterNNNN.ext beside OUT every N iterations")
    g.add_argument("--metric-vgg-weights", metavar="FILE",
                   help="VGG16 weights for the style and content distances printed at the end "
                   "(default: --vgg-weights when --vgg is vgg16, else $RTNST_VGG_WEIGHTS)")
    p.set_defaults(handler=run)


def _snapshot_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}_iter{step:04d}{out.suffix}")


def _check_outputs(out: Path, snapshots: list[Path], overwrite: bool, inputs: list[str]) -> None:
    """Fail before minutes of work, not after."""
    from ..files import check_outputs
    from ..imageio import check_image_format

    check_image_format(out)
    check_outputs([out, *snapshots], overwrite=overwrite, inputs=inputs)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import require

    require("torch", extra="train")

    from ..gatys.config import OptimizeConfig, parse_layers
    from ..gatys.optimize import optimize
    from ..imageio import read_image, write_image
    from ..signals import stop_on_signals

    if args.save_every is not None and args.save_every <= 0:
        raise OptionError(f"--save-every must be positive, got {args.save_every}")
    cfg = OptimizeConfig(
        vgg=args.vgg, vgg_weights=args.vgg_weights, pool=args.pool,
        content_layers=parse_layers(args.content_layers, "content"),
        style_layers=parse_layers(args.style_layers, "style"),
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        optimizer=args.optimizer, lr=args.lr, iterations=args.iterations, init=args.init,
        max_side_px=args.max_side_px, scales=args.scales, style_blend=args.style_blend,
        preserve_color=args.preserve_color, seed=args.seed, device=args.device, precision=args.precision,
    )
    cfg.check(len(args.styles))
    out = Path(args.out)
    total = cfg.iterations * cfg.scales
    every = args.save_every
    _check_outputs(out, [_snapshot_path(out, s) for s in range(every, total + 1, every)] if every else [], args.overwrite,
                   [args.content, *args.styles])
    content = read_image(args.content)
    styles = [read_image(s) for s in args.styles]

    quiet = getattr(args, "quiet", False)
    bars = []  # opened at the first iteration, so that set-up errors print as one clean line

    def on_step(info) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="it", disable=quiet, dynamic_ncols=True, file=sys.stderr))
        t = info.terms
        bars[0].set_postfix(scale=f"{info.scale}/{cfg.scales}", total=f"{t['total']:.4g}", content=f"{t['content']:.4f}",
                            style=f"{t['style']:.4f}", tv=f"{t['tv']:.4f}")
        bars[0].update(1)
        if every and info.step % every == 0:
            write_image(_snapshot_path(out, info.step), info.frame(), overwrite=True)  # checked up front

    stop = threading.Event()  # Ctrl-C / SIGTERM: finish the iteration, write the result so far
    try:
        with stop_on_signals(stop):
            result = optimize(content, styles, cfg, callback=on_step, stop=stop)
    finally:
        if bars:
            bars[0].close()
    write_image(out, result.frame, overwrite=args.overwrite)
    first, last = result.history[0]["total"], result.history[-1]["total"]
    if result.stopped:
        log.warning("rtnst: interrupted: %s holds the result after iteration %d of %d (incomplete)", out,
                    len(result.history), total)
    log.info("rtnst: wrote %s (%dx%d); total loss %.4g -> %.4g", out, result.frame.shape[1], result.frame.shape[0], first, last)
    _report_distances(args, content, styles, result.frame, quiet=quiet)
    return 130 if result.stopped else 0  # as video and train: the run did not finish


def _report_distances(args: argparse.Namespace, content, styles, output, *, quiet: bool) -> None:
    """The project's metric (evaluate.py): S against each style, C against the content, at long side 512."""
    from .. import frames as fr
    from ..evaluation.quality import EVAL_SIDE_PX, QualityMeter

    own = args.vgg_weights if args.vgg == "vgg16" else None
    weights = args.metric_vgg_weights or own or os.environ.get("RTNST_VGG_WEIGHTS")
    size = fr.fit_max_side(output.shape[1], output.shape[0], EVAL_SIDE_PX)
    output = fr.resize(output, size)
    content = fr.resize(content, size)
    for path, style in zip(args.styles, styles):
        try:
            s, c = QualityMeter(style, vgg_weights=weights).measure(content, output)
        except ModelError as exc:
            log.warning("rtnst: no style/content distances (they need VGG16 weights; pass --metric-vgg-weights): %s", exc)
            return
        if not quiet:
            print(f"style distance S = {s:.4f} ({Path(path).name}), content distance C = {c:.4f} "
                  f"(VGG16; {size[0]}x{size[1]} px)")
