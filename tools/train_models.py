"""Train the shipped style models: one ``rtnst train`` process per model, run side by side.

    python tools/train_models.py --styles ../shared/assets/styles --data ../shared/assets/photos/train \\
        --runs runs/ --vgg-weights vgg16.safetensors [--only great_wave-quality,udnie-realtime]
        [--time-limit-s 480] [--style-weights 5,15]

A realtime model is made in stages (distillation from the style's quality model, VGG fine-tunes),
each its own run (RUNS/NAME.STAGE.pt; the last is RUNS/NAME.pt). Every run is ``rtnst train ...
--resume``, so calling this again continues each model where it stopped (finished stages end at
once); with --time-limit-s every process gets SIGTERM at the deadline, finishes its step and
writes its checkpoint (how the shipped models were trained in several short GPU sessions).
--style-weights trains one variant per weight (RUNS/NAME.swW.pt) to pick a style/content balance.
On one GPU the processes share it (bf16 autocast); on CPU run one at a time (--parallel 1). A
realtime model learns from its style's quality model: RUNS/STYLE-quality.pt when it is there (train
it first), else the shipped one.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The shipped quality models. Settings not given here are rtnst train's defaults (VGG16, content
# relu3_3, style relu1_2..relu4_3, 256 px crops, style image at 512 px). Style weights were chosen
# per style from a sweep so that the quality tier beats the reference models' style distance at a
# content distance no more than 10% above theirs (models/README.md has the measurements).
WEIGHTS = {"starry_night": 10.0, "the_scream": 5.0, "great_wave": 10.0, "udnie": 12.0, "shipwreck": 6.0, "mosaic": 5.0}
QUALITY = dict(tier="quality", lr=1e-3, batch_size=8, steps=40_000, checkpoint_every=250, preview_every=1000)

# The realtime models as shipped: stages run one after another, each starting from the weights of
# the one before (``init``: an earlier stage of the model, or a shipped model). Distillation from the
# style's quality model gives colours and shapes cheaply (no VGG pass); the VGG stages, with the
# temporal term, give texture and steadiness; anchored stages (a style and a teacher) keep the
# content close to the teacher's. models/README.md says what each stage bought.
_DISTIL = dict(tier="realtime", batch_size=16, lr=1.5e-3, temporal_weight=1.0, checkpoint_every=50)
_VGG = dict(tier="realtime", batch_size=4, lr=5e-4, style_layers="relu1_2,relu2_2,relu3_3", temporal_weight=15.0,
            border_weight=10.0, checkpoint_every=50, preview_every=100)


def _distil(style: str, steps: int, **kw) -> dict:
    return {**_DISTIL, "teacher": f"{style}-quality", "steps": steps, **kw}


def _vgg(style: str, steps: int, init: str, **kw) -> dict:
    return {**_VGG, "style": style, "steps": steps, "init": init, **kw}


def _anchored(style: str, steps: int, init: str, **kw) -> dict:
    return _vgg(style, steps, init, teacher=f"{style}-quality", **kw)


# A last stage that repeats the stage before it (the same loss, from its weights) at a tenth of its
# learning rate and twice its batch: Adam at a constant rate leaves the weights jittering about the
# optimum, and settling them lowered the style distance at about the same content distance
# (the_scream: S 0.1406 -> 0.1331, C 0.513 -> 0.515; shipwreck: 0.2232 -> 0.2163, 0.500 -> 0.503).
# A polish repeats the last stage that is not a polish, from the weights of the stage just before it,
# with any overrides it carries; main() builds it after --steps and --style-weights have set that stage.
POLISH_STEPS, POLISH_BATCH_FACTOR, POLISH_LR_FACTOR = 250, 2, 0.1


def polish(**overrides) -> dict:
    return {"polish": True, **overrides}


POLISH = polish()


def polished(before: dict, before_stage: str) -> dict:
    return {**before, "init": before_stage, "lr": before["lr"] * POLISH_LR_FACTOR,
            "batch_size": before["batch_size"] * POLISH_BATCH_FACTOR,
            "steps": POLISH_STEPS}


def _spend_steadiness(style: str, init: str, name: str, *, last: str, **kw) -> list[tuple[str, dict]]:
    """Three stages from ``init``: the anchored loss at a lower temporal weight (``name``), its polish
    (``name`` + "p"), and a polish at teacher weight 20 that brings the content back (``last``)."""
    stage = _anchored(style, 300, init, teacher_weight=10.0, **kw)
    return [(name, stage), (name + "p", POLISH), (last, polish(teacher_weight=20.0))]


def _l2_round(style: str, init: str, name: str, *, last: str) -> list[tuple[str, dict]]:
    """Three stages from ``init``: 300 anchored steps with the temporal term as a mean square at weight
    800 (``name``), their polish (``name`` + "p"), and a polish at style weight 13 that spends some of
    the steadiness bought on style (``last``)."""
    stage = _anchored(style, 300, init, teacher_weight=10.0, border_weight=20.0, temporal_weight=800.0,
                      temporal_norm="l2")
    return [(name, stage), (name + "p", POLISH), (last, polish(style_weight=13.0))]


def _cpu_teacher_stages(style: str) -> list[tuple[str, dict]]:
    """Distilled with the norm in the blocks, anchored, then anchored at a rising temporal weight
    (the stages before temporal weight 100 draw a fine hatching over skies and skin), polished."""
    anchored = dict(teacher_weight=10.0, style_weight=15.0)
    return [("distil", _distil(style, 600, block_norm=True)),
            ("anchor", _anchored(style, 400, "distil", **anchored)),
            ("t50", _anchored(style, 300, "anchor", **anchored, temporal_weight=50.0)),
            ("t100", _anchored(style, 300, "t50", **anchored, temporal_weight=100.0)),
            ("", POLISH)]


REALTIME: dict[str, list[tuple[str, dict]]] = {
    # Three more anchored stages at a rising temporal weight (15 -> 50 -> 100 -> 200) made udnie steady
    # unsmoothed (people_walking: 2.8x -> 2.2x -> 1.8x -> 1.2x the clip's own E_warp) for style it could
    # spare (S 0.1734 -> 0.2181, 0.54x the reference's) at no cost in content (C 0.685 -> 0.667). A
    # polish gives the steadiness back for style (after 100: S 0.1736, 2.3x), so udnie has none. A last
    # stage at teacher weight 120 and temporal 400 spends more of that style on content, for faces
    # (two portraits at ~1 MP: C 1.17x -> 1.02x the reference's; the content photos: S 0.2181 ->
    # 0.2411, C 0.667 -> 0.608; people_walking 1.2x -> 1.3x).
    "udnie": [("distil", _distil("udnie", 600)),
              ("anchor", _anchored("udnie", 400, "distil", teacher_weight=10.0)),
              ("t50", _anchored("udnie", 300, "anchor", teacher_weight=10.0, temporal_weight=50.0)),
              ("t100", _anchored("udnie", 300, "t50", teacher_weight=10.0, temporal_weight=100.0)),
              ("t200", _anchored("udnie", 300, "t100", teacher_weight=10.0, temporal_weight=200.0)),
              ("", _anchored("udnie", 300, "t200", teacher_weight=120.0, temporal_weight=400.0))],
    # A VGG stage before the anchor, as great_wave's, and a strong anchor to bring the content back:
    # S 0.2335 -> 0.2234 and C 0.521 -> 0.504 against the recipe of udnie. With the norm in the blocks
    # the same stages kept more style (S 0.2163 -> 0.1535) and less content (C 0.503 -> 0.549) and
    # flickered more (people_walking 1.6x -> 2.4x); a last stage anchored harder, at a higher temporal
    # weight, brings both back within issue 16's bars: S 0.1748, C 0.511, 1.3x / 1.8x.
    "shipwreck": [("distil", _distil("shipwreck", 600, block_norm=True)),
                  ("vgg", _vgg("shipwreck", 1500, "distil", temporal_weight=5.0)),
                  ("anchor", _anchored("shipwreck", 400, "vgg", teacher_weight=60.0)),
                  ("settled", POLISH),
                  ("", _anchored("shipwreck", 300, "settled", teacher_weight=120.0, temporal_weight=30.0))],
    # great_wave's recipe without its VGG stage, from a teacher fine-tuned from the_scream-quality
    # (CPU_TEACHERS): against the net without the norm, trained the udnie way from a teacher of 1,108 steps
    # from random weights, S 0.2766 -> 0.2949, C 0.758 -> 0.669, shift 0.035 -> 0.024, unsmoothed
    # E_warp 5.2x/5.8x -> 4.1x/6.5x, and no hatching over flat skies and faces.
    "starry_night": _cpu_teacher_stages("starry_night"),
    # shipwreck's recipe at border weight 20 for the anchored stage (the VGG stage paints the_scream
    # a frame at 10) and teacher weight 10: S 0.1435 -> 0.1406 at C 0.515 -> 0.513 (4 px margin)
    # against four stages (400 VGG steps, 150 at border 40, two anchored at teacher weight 30).
    # the_scream was steadier than decision 4 asks, so its later stages spend some of that on style, in
    # three rounds (temporal weight 15 -> 5 -> 2 -> 0): the anchored loss at the lower weight, polished,
    # then a polish at teacher weight 20 to bring the content back. S 0.1331 -> 0.1296 -> 0.1264 ->
    # 0.1226, C 0.515 -> 0.512 -> 0.518 -> 0.525, people_walking 1.2x -> 1.3x -> 1.4x -> 1.5x the
    # clip's own E_warp (bunny 2.7x within shots). Then steadiness bought back with the temporal term
    # as a mean square (E_warp is one; weight 800 ~ l1's 40), polished, and a polish at style weight 13
    # that spends some of it on style: S 0.1226 -> 0.1328 -> 0.1260, C 0.525 -> 0.499 -> 0.522, bunny
    # 2.7x -> 1.8x -> 2.0x, people_walking 1.5x -> 1.1x -> 1.2x. Each such round from the last moves the
    # frontier a little: S 0.1260 -> 0.1243 -> 0.1232 -> 0.1215 -> 0.1201 at C 0.522 -> 0.524 -> 0.525 ->
    # 0.525 -> 0.528, bunny 1.94-1.96x.
    "the_scream": [("distil", _distil("the_scream", 600)),
                   ("vgg", _vgg("the_scream", 1500, "distil", temporal_weight=5.0)),
                   ("anchor", _anchored("the_scream", 400, "vgg", teacher_weight=10.0, border_weight=20.0)),
                   ("settled", POLISH),
                   *_spend_steadiness("the_scream", "settled", "t5", last="t5a", temporal_weight=5.0,
                                      border_weight=20.0),
                   *_spend_steadiness("the_scream", "t5a", "t2", last="t2a", temporal_weight=2.0,
                                      border_weight=20.0),
                   *_spend_steadiness("the_scream", "t2a", "t0", last="t0a", temporal_weight=0.0, border_weight=20.0),
                   *_l2_round("the_scream", "t0a", "l2", last="l2s"),
                   *_l2_round("the_scream", "l2s", "r2", last="r2s"),
                   *_l2_round("the_scream", "r2s", "r3", last="r3s"),
                   *_l2_round("the_scream", "r3s", "r4", last="r4s"),
                   *_l2_round("the_scream", "r4s", "r5", last="")],
    # An instance norm in every residual block (--block-norm) took S 0.1085 -> 0.0833 at the same C, for
    # more flicker (people_walking 8.0x -> 10.6x the clip's own E_warp); anchored stages at a rising
    # temporal weight, as udnie's, spend some of that style on steadiness, and the polish settles the
    # last one: the same S as the net without the norm, C 0.750 -> 0.715, shift 0.026 -> 0.011,
    # unsmoothed E_warp 3.6x/8.0x -> 2.2x/6.1x (models/README.md).
    "great_wave": [("distil", _distil("great_wave", 1000, temporal_weight=0.0, block_norm=True)),
                   ("vgg", _vgg("great_wave", 2000, "distil", temporal_weight=5.0)),
                   ("anchor", _anchored("great_wave", 400, "vgg", teacher_weight=10.0, style_weight=15.0)),
                   ("t30", _anchored("great_wave", 400, "anchor", teacher_weight=10.0, style_weight=15.0,
                                     temporal_weight=30.0)),
                   ("t50", _anchored("great_wave", 300, "t30", teacher_weight=10.0, style_weight=15.0,
                                     temporal_weight=50.0)),
                   ("t100", _anchored("great_wave", 300, "t50", teacher_weight=10.0, style_weight=15.0,
                                      temporal_weight=100.0)),
                   ("", POLISH)],
    # starry_night's recipe, from a teacher fine-tuned from the_scream-quality (S 0.2168 against 0.2707
    # for 877 steps from random weights). Against the net without the norm (the udnie recipe with a last
    # stage at style weight 25): S 0.3489 -> 0.3342, C 1.117 -> 1.050, shift 0.023 -> 0.013, unsmoothed
    # E_warp 6.0x/10.0x -> 4.3x/9.2x, and faces kept better.
    "mosaic": _cpu_teacher_stages("mosaic"),
}
# starry_night and mosaic ship no quality model, and their realtime nets learn from one trained here
# (RUNS/STYLE-quality.pt). On 2 CPU cores it is a fine-tune of a shipped quality model: 1,200 steps of
# batch 4 (35-55 minutes). starry_night from the_scream-quality: S 0.1235, C 0.714, against S 0.1149, C
# 0.882 for 1,108 steps from random weights; mosaic: S 0.2168, C 1.070 against 0.2707, 1.084 for 877
# (models/README.md).
CPU_TEACHERS = {"starry_night": "the_scream-quality", "mosaic": "the_scream-quality"}
CPU_TEACHER = dict(tier="quality", lr=1e-3, batch_size=4, steps=1_200, checkpoint_every=50, preview_every=200)
RECIPES: dict[str, list[tuple[str, dict]]] = {
    **{f"{s}-quality": [("", {**QUALITY, "style": s, "style_weight": w} if s not in CPU_TEACHERS else
                         {**CPU_TEACHER, "style": s, "style_weight": w, "init": CPU_TEACHERS[s]})]
       for s, w in WEIGHTS.items()},
    **{f"{s}-realtime": stages for s, stages in REALTIME.items()},
}


def _trained(runs: Path, name: str) -> str:
    """A model trained here (RUNS/NAME.pt, such as a quality model a realtime one learns from), else
    ``name`` itself: a shipped model's name."""
    return str(runs / f"{name}.pt") if (runs / f"{name}.pt").is_file() else name


def command(recipe: dict, args: argparse.Namespace, out: Path, stage_files: dict[str, Path]) -> list[str]:
    cmd = [sys.executable, "-m", "realtime_nst", "train", "--data", args.data, "--out", str(out), "--resume",
           "--workers", str(args.workers)]
    if recipe.get("style"):
        style = next(iter(sorted(Path(args.styles).glob(recipe["style"] + ".*"))), None)
        if style is None:
            raise SystemExit(f"train_models: no style image {recipe['style']}.* in {args.styles}")
        cmd += ["--style", str(style)]
    if args.vgg_weights and recipe.get("style"):
        cmd += ["--vgg-weights", args.vgg_weights]
    if args.preview_image:
        cmd += ["--preview-image", args.preview_image]
    for k, v in recipe.items():
        if k == "style":
            continue
        if k in ("init", "teacher"):
            v = stage_files.get(v) or _trained(out.parent, v)
        if isinstance(v, bool):  # a switch (block_norm=True: --block-norm)
            cmd += [f"--{k.replace('_', '-')}"] * v
            continue
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
    p.add_argument("--style-weights", help="comma-separated style weights: one variant of each model per weight "
                                           "(its last stage's that is not a polish, and its polishes')")
    p.add_argument("--steps", type=int,
                   help="override the step count of each model's last stage that is not a polish (the one its "
                        "polishes repeat)")
    p.add_argument("--parallel", type=int, default=0, help="models trained at once (default: all)")
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
    jobs: list[list[tuple[str, list[str], Path]]] = []  # per model variant: its stages, in order
    for name in names:
        weights = [float(w) for w in args.style_weights.split(",")] if args.style_weights else [None]
        for w in weights:
            stem = name if w is None else f"{name}.sw{w:g}"
            stages, files = [], {}
            recipes = RECIPES[name]
            # --steps and --style-weights set the last stage that is not a polish; the polishes after it
            # repeat it as set.
            last = max(i for i, (_, r) in enumerate(recipes) if not r.get("polish"))
            base, before = {}, ""
            for i, (stage, recipe) in enumerate(recipes):
                if recipe.get("polish"):
                    recipe = {**polished(base, before), **{k: v for k, v in recipe.items() if k != "polish"}}
                else:
                    recipe = dict(recipe)
                    if i == last:
                        recipe.update({"steps": args.steps} if args.steps else {})
                        recipe.update({"style_weight": w} if w is not None else {})
                    base = recipe
                before = stage
                stage_stem = f"{stem}.{stage}" if stage else stem
                out = runs / f"{stage_stem}.pt"
                stages.append((stage_stem, command(recipe, args, out, files), runs / f"{stage_stem}.log"))
                files[stage] = out
            jobs.append(stages)

    if args.dry_run:
        for stages in jobs:
            for _, cmd, log in stages:
                print(" ".join(cmd[1:]), ">>", log)
        return 0
    return run_jobs(jobs, parallel=args.parallel or len(jobs), time_limit_s=args.time_limit_s)


def run_jobs(jobs: list[list[tuple[str, list[str], Path]]], *, parallel: int, time_limit_s: float | None) -> int:
    """Run up to ``parallel`` models at once, each model's stages one after another; a stage that
    fails or is stopped ends its model's run (``--resume`` continues it next time)."""
    deadline = time.monotonic() + time_limit_s if time_limit_s else None
    # Side by side, the processes share the cores: one thread each unless the caller says otherwise
    # (a single CPU run keeps torch's default of one thread per core).
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", threads), PYTHONUNBUFFERED="1")
    pending = [list(stages) for stages in jobs]
    running: list[tuple[str, subprocess.Popen, list]] = []
    codes: dict[str, int] = {}

    def start(stages: list) -> None:
        stem, cmd, log = stages.pop(0)
        running.append((stem, subprocess.Popen(cmd, stdout=log.open("a"), stderr=subprocess.STDOUT, env=env), stages))

    while pending or running:
        while pending and len(running) < parallel and not (deadline and time.monotonic() > deadline):
            start(pending.pop(0))
        if deadline and time.monotonic() > deadline:
            for _, proc, _ in running:
                proc.send_signal(signal.SIGTERM)
            for stem, proc, _ in running:
                codes[stem] = proc.wait()
            break
        time.sleep(1.0)
        for job in list(running):
            stem, proc, rest = job
            if proc.poll() is None:
                continue
            codes[stem] = proc.returncode
            running.remove(job)
            if proc.returncode == 0 and rest:
                start(rest)  # the model's next stage, in the slot this one held
    failed = [s for s, c in codes.items() if c not in (0, 130)]
    for stem, code in codes.items():
        print(f"{stem:32} {'done' if code == 0 else 'stopped (resumable)' if code == 130 else f'FAILED ({code})'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
