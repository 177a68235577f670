"""Train the shipped style models: one ``rtnst train`` process per model, run side by side.

    python tools/train_models.py --styles ../shared/assets/styles --data ../shared/assets/photos/train \\
        --runs runs/ --vgg-weights vgg16.safetensors [--only great_wave-quality,udnie-realtime]
        [--time-limit-s 480] [--style-weights 5,15]

Every run is ``rtnst train ... --resume``, so calling this again continues each model where it
stopped; with --time-limit-s every process gets SIGTERM at the deadline, finishes its step and
writes its checkpoint (how the shipped models were trained in several short GPU sessions).
--style-weights trains one variant per weight (RUNS/NAME.swW.pt) to pick a style/content balance.
On one GPU the processes share it (bf16 autocast); on CPU run one at a time (--parallel 1).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The shipped models. Settings not given here are rtnst train's defaults (VGG16, content relu3_3,
# style relu1_2..relu4_3, 256 px crops, style image at 512 px). Style weights were chosen per style
# from a sweep so that the quality tier beats the reference models' style distance at a content
# distance no more than 10% above theirs (models/README.md has the measurements).
WEIGHTS = {"starry_night": 10.0, "the_scream": 5.0, "great_wave": 10.0, "udnie": 12.0, "shipwreck": 6.0, "mosaic": 5.0}
RECIPES: dict[str, dict] = {
    **{f"{s}-quality": dict(style=s, tier="quality", lr=1e-3, style_weight=w) for s, w in WEIGHTS.items()},
    # The realtime net as shipped: steady by construction (temporal term), and relu4_3 left out of the
    # style loss, where it added nothing to S at 20% of the cost.
    **{f"{s}-realtime": dict(style=s, tier="realtime", lr=2e-3, style_weight=w, temporal_weight=15.0,
                             style_layers="relu1_2,relu2_2,relu3_3") for s, w in WEIGHTS.items()},
}
COMMON = dict(batch_size=8, steps=40_000, checkpoint_every=250, preview_every=1000)


def command(name: str, recipe: dict, args: argparse.Namespace, out: Path) -> list[str]:
    style = next(iter(sorted(Path(args.styles).glob(recipe["style"] + ".*"))), None)
    if style is None:
        raise SystemExit(f"train_models: no style image {recipe['style']}.* in {args.styles}")
    settings = {**COMMON, **{k: v for k, v in recipe.items() if k != "style"}}
    cmd = [sys.executable, "-m", "realtime_nst", "train", "--style", str(style), "--data", args.data,
           "--out", str(out), "--resume", "--workers", str(args.workers)]
    if args.vgg_weights:
        cmd += ["--vgg-weights", args.vgg_weights]
    if args.preview_image:
        cmd += ["--preview-image", args.preview_image]
    for k, v in settings.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return cmd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--styles", required=True, help="folder of style images (NAME.jpg)")
    p.add_argument("--data", required=True, help="folder of training photos")
    p.add_argument("--runs", required=True, help="folder for checkpoints and logs")
    p.add_argument("--vgg-weights", help="VGG16 weights (default: $RTNST_VGG_WEIGHTS)")
    p.add_argument("--preview-image", help="content image for the previews")
    p.add_argument("--only", help="comma-separated model names (default: all): " + ", ".join(RECIPES))
    p.add_argument("--style-weights", help="comma-separated style weights: one variant of each model per weight")
    p.add_argument("--steps", type=int, help=f"override the step count (default {COMMON['steps']})")
    p.add_argument("--parallel", type=int, default=0, help="processes at once (default: all)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes per run (default 1)")
    p.add_argument("--time-limit-s", type=float, help="SIGTERM every run after this many seconds")
    p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    args = p.parse_args(argv)

    names = [n.strip() for n in args.only.split(",")] if args.only else list(RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, list[str], Path]] = []
    for name in names:
        weights = [float(w) for w in args.style_weights.split(",")] if args.style_weights else [None]
        for w in weights:
            recipe = dict(RECIPES[name])
            if args.steps:
                recipe["steps"] = args.steps
            stem = name
            if w is not None:
                recipe["style_weight"], stem = w, f"{name}.sw{w:g}"
            jobs.append((stem, command(name, recipe, args, runs / f"{stem}.pt"), runs / f"{stem}.log"))

    if args.dry_run:
        for _, cmd, log in jobs:
            print(" ".join(cmd[1:]), ">>", log)
        return 0
    deadline = time.monotonic() + args.time_limit_s if args.time_limit_s else None
    parallel = args.parallel or len(jobs)
    # Side by side, the processes share the cores: one thread each unless the caller says otherwise
    # (a single CPU run keeps torch's default of one thread per core).
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", threads), PYTHONUNBUFFERED="1")
    pending, running, codes = list(jobs), [], {}
    while pending or running:
        while pending and len(running) < parallel and not (deadline and time.monotonic() > deadline):
            stem, cmd, log = pending.pop(0)
            running.append((stem, subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT, env=env)))
        if deadline and time.monotonic() > deadline:
            for _, proc in running:
                proc.send_signal(signal.SIGTERM)
            for stem, proc in running:
                codes[stem] = proc.wait()
            running, pending = [], []
            break
        time.sleep(1.0)
        for stem, proc in list(running):
            if proc.poll() is not None:
                codes[stem] = proc.returncode
                running.remove((stem, proc))
    failed = [s for s, c in codes.items() if c not in (0, 130)]
    for stem, code in codes.items():
        print(f"{stem:32} {'done' if code == 0 else 'stopped (resumable)' if code == 130 else f'FAILED ({code})'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
