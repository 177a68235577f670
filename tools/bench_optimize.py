"""Benchmark ``rtnst optimize`` against a plain PyTorch L-BFGS loop (issue 4).

The reference point: the Keras + scipy tutorial this project started from reports 217 s for 20 L-BFGS
function evaluations of a 512x512 image with VGG16. Both runs below do that work: 20 evaluations (VGG16
forward + backward to the image) of the same loss, from the same start, with the same L-BFGS settings:

* ours:  realtime_nst.optimize (VGG run only to the deepest layer used, NNPACK Winograd convolutions on
         CPU or channels-last, targets computed once);
* plain: the same loss written the naive way: NCHW, the whole VGG16 (through pool5) every evaluation,
         oneDNN's default convolutions, one LBFGS.step(max_iter=20) call.

It prints wall time (and process CPU time, which a busy machine inflates less) of each, their ratio, and
how closely the results agree: the relative difference of the loss at every evaluation, of the final
images' losses under the plain (exact fp32) objective, and the mean pixel difference of the images.

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
from realtime_nst.evaluate import to_batch  # noqa: E402
from realtime_nst.imageio import read_image  # noqa: E402
from realtime_nst.losses import gram, total_variation  # noqa: E402
from realtime_nst.optimize import LBFGS_HISTORY, OptimizeConfig, optimize  # noqa: E402
from realtime_nst.vgg import load_vgg  # noqa: E402

SHARED = REPO.parent / "shared" / "assets"
TUTORIAL_S = 217.0


class PlainObjective:
    """The loss of realtime_nst.optimize.Objective, written the obvious way."""

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
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=cfg.iterations, history_size=LBFGS_HISTORY, tolerance_grad=0.0, tolerance_change=0.0)
    losses = []

    def closure():
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        losses.append(loss.item())
        return loss

    opt.step(closure)
    return x.detach(), losses, objective


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
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = (args.size, args.size)
    images = []
    for path in (args.content, args.style):
        # The timing does not depend on the pictures: noise stands in where the shared ones are absent.
        img = read_image(path) if Path(path).exists() else np.random.default_rng(len(images)).integers(0, 256, (*size, 3), np.uint8)
        images.append(fr.resize(img, size))
    content, style = images
    cfg = OptimizeConfig(vgg="vgg16", vgg_weights=args.vgg_weights, iterations=args.evals, max_side_px=args.size)
    print(f"{args.evals} L-BFGS evaluations, {args.size}x{args.size}, VGG16, content {list(cfg.content_layers)}, "
          f"style {list(cfg.style_layers)}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.1f}")

    # Warm-up (imports, oneDNN/NNPACK set-up) outside the timings: a tiny run of each.
    optimize(fr.resize(content, (64, 64)), [style], OptimizeConfig(vgg="vgg16", vgg_weights=args.vgg_weights, iterations=2, max_side_px=64))
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
        ours_losses = [h["total"] for h in ours.history]
        diffs = [abs(a - b) / abs(b) for a, b in zip(ours_losses, losses)]
        with torch.no_grad():  # both final images under the exact objective (ours is quantised to 8 bits)
            final_plain = objective(x_plain.clamp(0, 1)).item()
            final_ours = objective(to_batch(ours.frame)).item()
        pixels = np.abs(ours.frame.astype(float)
                        - (x_plain[0].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()[:, :, ::-1]).mean()
        print(f"agreement: loss per evaluation differs by at most {max(diffs):.2%} (at the last {diffs[-1]:.2%}); "
              f"final images' exact loss {final_ours:.4g} (ours) vs {final_plain:.4g} (plain), "
              f"{abs(final_ours - final_plain) / final_plain:.2%} apart; mean pixel difference {pixels:.2f}/255")
    print(f"load average after {os.getloadavg()[0]:.1f} (timings are pessimistic when it exceeds the cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
