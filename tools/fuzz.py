"""Feed rtnst damaged files and check that every run ends cleanly.

Mutated copies of a small clip, an image and a model (truncations, flipped bytes, zeroed and
duplicated ranges) go through `rtnst video` / `rtnst webcam --camera FILE` / `rtnst image`; every
case must end in exit 0 (and then with a playable output) or in one `rtnst: error:` line with exit
2: never a traceback, another exit code or a hang. tests/test_fuzz.py runs a few dozen seeded cases;
this runs hundreds:

    python tools/fuzz.py --cases 300 --seed 1            # prints the counts and every failure
"""

from __future__ import annotations

import argparse
import collections
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT_SUFFIXES = {1: ".gif", 5: ".ts"}  # by case number modulo 8; the rest .mp4
OUTCOMES = ("exit 0", "clean exit 2", "traceback", "other exit", "hang", "bad output")


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random damage of ``data``: (what was done, the damaged bytes)."""
    n = len(data)
    kind = rng.choice(["truncate", "flip", "zero", "duplicate"])
    if kind == "truncate":
        cut = rng.randrange(1, n)
        return f"truncate at {cut}", data[:cut]
    start = rng.randrange(0, n)
    length = min(n - start, rng.choice([1, 4, 64, 1024, 16384]))
    if kind == "flip":
        out = bytearray(data)
        for i in rng.sample(range(n), k=min(n, length)):
            out[i] ^= 1 << rng.randrange(8)
        return f"flip {length} bytes", bytes(out)
    if kind == "zero":
        return f"zero {length} at {start}", data[:start] + bytes(length) + data[start + length:]
    return f"duplicate {length} at {start}", data[:start + length] + data[start:]


@dataclass
class Case:
    name: str
    argv: list[str]
    output: Path | None  # what exit 0 must have made


def classify(proc: subprocess.CompletedProcess | None, output: Path | None) -> str:
    if proc is None:
        return "hang"
    if "Traceback" in proc.stderr:
        return "traceback"
    if proc.returncode == 2:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("rtnst: error:")]
        return "clean exit 2" if len(lines) == 1 else "other exit"
    if proc.returncode != 0:
        return "other exit"
    if output is not None and not _playable(output):
        return "bad output"
    return "exit 0"


def _playable(path: Path) -> bool:
    if path.suffix == ".png":
        import cv2

        return path.is_file() and cv2.imread(str(path)) is not None
    try:
        import av

        with av.open(str(path)) as c:
            return any(True for _ in c.decode(video=0))
    except Exception:  # noqa: BLE001 - any failure to decode is the finding
        return False


def run(case: Case, *, timeout_s: float) -> tuple[Case, str, str]:
    try:
        proc = subprocess.run([sys.executable, "-m", "realtime_nst", "-q", *case.argv], capture_output=True,
                              text=True, timeout=timeout_s, cwd=REPO)
    except subprocess.TimeoutExpired:
        proc = None
    outcome = classify(proc, case.output)
    return case, outcome, (proc.stderr.strip().splitlines() or [""])[-1] if proc else ""


def make_cases(work: Path, *, clip: Path, image: Path, model: Path, n: int, seed: int) -> list[Case]:
    """n cases, split between damaged clips, images and models (run on the undamaged clip/image)."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        target = ("clip", "clip", "image", "model")[i % 4]
        src = {"clip": clip, "image": image, "model": model}[target]
        what, data = mutate(src.read_bytes(), rng)
        bad = work / f"{i:04d}_{target}{src.suffix}"
        bad.write_bytes(data)
        if target == "clip" and i % 8 == 4:  # the file standing in for a camera (decoded in a grabber thread)
            out = work / f"{i:04d}_rec.mp4"
            argv = ["webcam", "--camera", str(bad), "--no-window", "--record", str(out), "--model", str(model)]
        elif target == "clip":  # the other clips as .mp4, .gif and .ts in turn
            out = work / f"{i:04d}_out{OUTPUT_SUFFIXES.get(i % 8, '.mp4')}"
            argv = ["video", str(bad), str(out), "--model", str(model)]
        elif target == "image":
            out = work / f"{i:04d}_out.png"
            argv = ["image", str(bad), str(out), "--model", str(model)]
        else:
            out = work / f"{i:04d}_out.png"
            argv = ["image", str(image), str(out), "--model", str(bad)]
        cases.append(Case(f"{target}: {what}", argv, out))
    return cases


def fuzz(cases: list[Case], *, timeout_s: float = 60, workers: int = 2) -> list[tuple[Case, str, str]]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda c: run(c, timeout_s=timeout_s), cases))


def sample_inputs(work: Path) -> tuple[Path, Path, Path]:
    """A 2 s clip with audio, a photo-like PNG and a small ONNX model, made here (no ../shared)."""
    sys.path.insert(0, str(REPO / "tests"))
    import cv2

    from fakes import gradient_frame, onnx_model, write_clip

    clip = write_clip(work / "clip.mp4", frames=24, size=(96, 64))
    image = work / "image.png"
    cv2.imwrite(str(image), gradient_frame(96, 64))
    return clip, image, onnx_model(work / "model.onnx", kind="blur")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=60)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip, image, model = sample_inputs(work)
        from tqdm import tqdm

        cases = make_cases(work, clip=clip, image=image, model=model, n=args.cases, seed=args.seed)
        results = []
        with ThreadPoolExecutor(2) as pool:
            for r in tqdm(pool.map(lambda c: run(c, timeout_s=args.timeout_s), cases), total=len(cases), unit="case"):
                results.append(r)
    counts = collections.Counter(outcome for _, outcome, _ in results)
    print(", ".join(f"{o}: {counts.get(o, 0)}" for o in OUTCOMES))
    for case, outcome, last in results:
        if outcome not in ("exit 0", "clean exit 2"):
            print(f"{outcome:12} {case.name:32} rtnst {' '.join(case.argv)}\n{'':12} {last}")
    return 0 if set(counts) <= {"exit 0", "clean exit 2"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
