"""Benchmark ``rtnst optimize`` against a plain PyTorch L-BFGS loop (issue 4).

The reference point: the Keras + scipy tutorial this project started from reports 217 s for 20 L-BFGS
function evaluations of a 512x512 image with VGG16. Both runs below do that work: 20 evaluations (VGG16
forward + backward to the image) of the same loss, from the same start, with the same L-BFGS settings:

* ours:  realtime_nst.gatys.optimize (VGG run only to the deepest layer used, targets computed once, and
         bf16 autocast on CPUs with native bf16, else NNPACK Winograd convolutions in fp32);
* plain: the same loss written the naive way: NCHW, the whole VGG16 (through pool5) every evaluation,
         oneDNN's default convolutions, one LBFGS.step(max_iter=20) call.

It prints wall time (and process CPU time) of each and their ratio, and checks that the speed-ups keep
the result: (1) the loss gradient at one image, 256 px, of ours and of the plain objective against a
float64 computation; (2) the loss at every evaluation, the final images' losses under the plain
objective, and the mean pixel difference of the images. L-BFGS without line search builds its first
curvature pair from a tiny step, so any fp32 reordering (even channels-last instead of NCHW) moves the
trajectory by a few percent; --control adds runs of ours in fp32 (Winograd, and oneDNN) to show that
spread.

    python tools/bench_optimize.py [--vgg-weights FILE] [--content IMG --style IMG] [--size 512] [--evals 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_nst import frames as fr  # noqa: E402
from realtime_nst.perceptual.tensors import to_batch  # noqa: E402
from realtime_nst.imageio import read_image  # noqa: E402
from realtime_nst.perceptual.losses import gram, total_variation  # noqa: E402
from realtime_nst.gatys.config import OptimizeConfig  # noqa: E402
from realtime_nst.gatys.optimize import LBFGS_HISTORY, _render, optimize  # noqa: E402
from realtime_nst.perceptual.vgg import load_vgg  # noqa: E402
from realtime_nst.perceptual.vggspeed import cpu_has_bf16, resolve_precision, speed_up  # noqa: E402

SHARED = REPO.parent / "shared" / "assets"
TUTORIAL_S = 217.0


class PlainObjective:
    """The loss of realtime_nst.gatys.optimize.Objective, written the obvious way."""

    def __init__(self, vgg, content, style, cfg: OptimizeConfig) -> None:
        self.vgg, self.cfg = vgg, cfg
        with torch.no_grad():
            c, s = self.features(content), self.features(style)
        self.content = {k: c[k] for k in cfg.content_layers}
        self.grams = {k: gram(s[k]) for k in cfg.style_layers}

    def features(self, x):
        out = {}
        x = x * self.vgg._mul + self.vgg._add  # RGB 0..1 to the weights' convention
        for name, module in zip(self.vgg.names, self.vgg.features):  # all of VGG16, through pool5
            x = module(x)
            out[name] = x
        return out

    def __call__(self, x):
        f, cfg = self.features(x), self.cfg
        content = sum(w * ((f[k] - t) ** 2).sum() / (t**2).sum() for (k, w), t in
                      zip(cfg.content_layers.items(), self.content.values())) / sum(cfg.content_layers.values())
        style = sum(w * ((gram(f[k]) - self.grams[k]) ** 2).sum() / (self.grams[k] ** 2).sum()
                    for k, w in cfg.style_layers.items()) / sum(cfg.style_layers.values())
        return cfg.content_weight * content + cfg.style_weight * style + cfg.tv_weight * total_variation(x)


def run_plain(weights, content, style, cfg: OptimizeConfig):
    vgg = load_vgg("vgg16", weights=weights)
    # to_batch's tensors are strided like channels-last (a permuted HWC frame): make them plain NCHW.
    objective = PlainObjective(vgg, to_batch(content).contiguous(), to_batch(style).contiguous(), cfg)
    x = to_batch(content).contiguous().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=cfg.iterations, history_size=LBFGS_HISTORY,
                            tolerance_grad=0.0, tolerance_change=0.0)
    losses = []

    def closure():
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        losses.append(loss.item())
        return loss

    opt.step(closure)
    return x.detach(), losses, objective


def gradient_errors(weights, content, style, cfg: OptimizeConfig, size: int = 256) -> dict[str, float]:
    """Relative error of the image gradient, against float64, at the content plus a little noise."""
    from realtime_nst.gatys.optimize import Objective

    c, s = (to_batch(fr.resize(img, (size, size))).contiguous() for img in (content, style))
    x0 = (c + 0.05 * torch.randn(c.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)

    def grad(objective, dtype):
        x = x0.to(dtype).clone().requires_grad_(True)
        loss = objective(x)
        (loss["total"] if isinstance(loss, dict) else loss).backward()
        return x.grad.double()

    ref = grad(PlainObjective(load_vgg("vgg16", weights=weights).double(), c.double(), s.double(), cfg), torch.float64)
    out = {"plain fp32": grad(PlainObjective(load_vgg("vgg16", weights=weights), c, s, cfg), torch.float32)}
    variants = [("ours fp32 Winograd", True, "fp32"), ("ours fp32 oneDNN", False, "fp32")]
    if cpu_has_bf16():  # emulated bf16 elsewhere would take minutes
        variants.append(("ours bf16", False, "bf16"))
    for name, winograd, precision in variants:
        vgg, layout = speed_up(load_vgg("vgg16", weights=weights), torch.device("cpu"), winograd, precision)
        out[name] = grad(Objective(vgg, c, [s], [1.0], cfg, memory_format=layout, precision=precision), torch.float32)
    return {k: float((g - ref).norm() / ref.norm()) for k, g in out.items()}


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    default_weights = SHARED / "vgg" / "vgg16_imagenet_caffe_rgb_fp32.safetensors"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vgg-weights", default=str(default_weights) if default_weights.exists() else None,
                    help="VGG16 weights (default: ../shared/assets/vgg/... when present, else $RTNST_VGG_WEIGHTS)")
    ap.add_argument("--content", default=str(SHARED / "photos" / "content" / "tubingen.jpg"))
    ap.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    ap.add_argument("--size", type=int, default=512, help="the image is SIZExSIZE (default 512)")
    ap.add_argument("--evals", type=int, default=20, help="L-BFGS function evaluations (default 20)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--skip-plain", action="store_true", help="time only ours")
    ap.add_argument("--control", action="store_true", help="also run ours with oneDNN convolutions (see above)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = (args.size, args.size)
    images = []
    for path in (args.content, args.style):
        # The timing does not depend on the pictures: noise stands in where the shared ones are absent.
        rng = np.random.default_rng(len(images))
        img = read_image(path) if Path(path).exists() else rng.integers(0, 256, (*size, 3), np.uint8)
        images.append(fr.resize(img, size))
    content, style = images
    cfg = OptimizeConfig(vgg="vgg16", vgg_weights=args.vgg_weights, iterations=args.evals, max_side_px=args.size)
    precision = resolve_precision(cfg.precision, torch.device("cpu"))
    print(f"{args.evals} L-BFGS evaluations, {args.size}x{args.size}, VGG16, content {list(cfg.content_layers)}, "
          f"style {list(cfg.style_layers)}; ours in {precision} (native bf16: {cpu_has_bf16()}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average before {os.getloadavg()[0]:.1f}")

    errors = gradient_errors(args.vgg_weights, content, style, cfg)
    print("image gradient vs float64 (256 px): " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))

    # Warm-up (imports, oneDNN/NNPACK set-up) outside the timings: a tiny run of each.
    optimize(fr.resize(content, (64, 64)), [style],
             OptimizeConfig(vgg="vgg16", vgg_weights=args.vgg_weights, iterations=2, max_side_px=64))
    if not args.skip_plain:
        run_plain(args.vgg_weights, fr.resize(content, (64, 64)), fr.resize(style, (64, 64)),
                  OptimizeConfig(iterations=2, vgg="vgg16"))

    ours, t_ours, cpu_ours = _timed(lambda: optimize(content, [style], cfg))
    print(f"ours : {t_ours:7.1f} s wall, {cpu_ours:7.1f} s CPU  ({t_ours / args.evals:.2f} s per evaluation); "
          f"loss {ours.history[0]['total']:.4g} -> {ours.history[-1]['total']:.4g}")
    print(f"       vs the tutorial's {TUTORIAL_S:.0f} s: {TUTORIAL_S / t_ours:.1f}x faster")
    if not args.skip_plain:
        (x_plain, losses, objective), t_plain, cpu_plain = _timed(lambda: run_plain(args.vgg_weights, content, style, cfg))
        print(f"plain: {t_plain:7.1f} s wall, {cpu_plain:7.1f} s CPU  ({t_plain / args.evals:.2f} s per evaluation); "
              f"loss {losses[0]:.4g} -> {losses[-1]:.4g}")
        print(f"ratio plain/ours: {t_plain / t_ours:.2f}x wall, {cpu_plain / cpu_ours:.2f}x CPU")
        plain_frame = _render(x_plain, content, False)

        def agreement(result) -> str:
            diffs = [abs(h["total"] - p) / p for h, p in zip(result.history, losses)]
            with torch.no_grad():  # both final images, as 8-bit frames, under the plain objective
                final, ref = (objective(to_batch(f).contiguous()).item() for f in (result.frame, plain_frame))
            pixels = np.abs(result.frame.astype(float) - plain_frame).mean()
            return (f"loss per evaluation differs from plain's by at most {max(diffs):.2%} (at the last {diffs[-1]:.2%}); "
                    f"final image's loss {final:.4g} vs plain's {ref:.4g} ({(final - ref) / ref:+.2%}); "
                    f"mean pixel difference {pixels:.2f}/255")

        print("agreement, ours: " + agreement(ours))
        if args.control:
            for label, winograd in (("Winograd", True), ("oneDNN", False)):
                cfg.precision, cfg.winograd = "fp32", winograd
                ctrl, t_ctrl, _ = _timed(lambda: optimize(content, [style], cfg))
                print(f"control, ours fp32 with {label} convolutions ({t_ctrl:.1f} s wall): " + agreement(ctrl))
    print(f"load average after {os.getloadavg()[0]:.1f} (timings are pessimistic when it exceeds the cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
