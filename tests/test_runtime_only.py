"""The runtime without torch: what a user who only stylises installs (``pip install .``).

With ``.venv-runtime`` beside the checkout (README's set-up command makes it: the package installed
without extras) the commands run there, from the installed package. Without it, or when the code
changed since it was installed, the suite's own Python runs them with the training-only packages
hidden, which checks the same imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import DISPLAY_P3_D50, onnx_model, rgb_profile, write_clip

REPO = Path(__file__).resolve().parent.parent
RUNTIME_VENV = REPO / ".venv-runtime"
# in the extras, not in `pip install .`
EXTRAS_ONLY = ("torch", "torchvision", "onnx", "onnxscript", "safetensors", "matplotlib", "pyvirtualcam", "pillow_heif")


def _installed_is_current(python: Path) -> bool:
    """Whether the runtime venv holds this checkout's code (a reinstall is needed after a change)."""
    where = subprocess.run([str(python), "-c", "import realtime_nst, os; print(os.path.dirname(realtime_nst.__file__))"],
                           capture_output=True, text=True, cwd="/", timeout=60).stdout.strip()
    if not where:
        return False
    installed, here = Path(where), REPO / "realtime_nst"
    sources = sorted(p.relative_to(here) for p in here.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return all((installed / rel).is_file() and (installed / rel).read_bytes() == (here / rel).read_bytes()
               for rel in sources)


@pytest.fixture(scope="module")
def rtnst(tmp_path_factory):
    """run(*args, code=...) -> CompletedProcess of `rtnst ARGS` (or `python -c CODE`) without torch."""
    work = tmp_path_factory.mktemp("runtime")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = RUNTIME_VENV / "bin" / "python"
    if not python.exists() or not _installed_is_current(python):
        python = Path(sys.executable)
        hide = work / "hide"
        for name in EXTRAS_ONLY:  # a package that fails to import is one that is not installed
            (hide / name).mkdir(parents=True)
            (hide / name / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n")
        env["PYTHONPATH"] = os.pathsep.join([str(hide), str(REPO)])

    def run(*args: str, code: str | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(python), "-c", code] if code else [str(python), "-m", "realtime_nst", *args]
        return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s)

    run.work = work
    return run


def test_torch_is_really_absent(rtnst):
    proc = rtnst(code="import importlib.util, sys\ntry:\n import torch\nexcept ImportError:\n sys.exit(0)\nsys.exit(1)")
    assert proc.returncode == 0, "torch imports in the runtime-only environment"


def test_stylising_commands_work_without_torch(rtnst):
    work = rtnst.work
    model = onnx_model(work / "identity.onnx")
    clip = write_clip(work / "in.mp4", frames=6)
    import cv2
    import numpy as np

    cv2.imwrite(str(work / "in.png"), np.full((20, 30, 3), 90, np.uint8))
    from PIL import Image

    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(work / "p3.png", icc_profile=rgb_profile(DISPLAY_P3_D50))
    for args in (["--version"], ["models"], ["-q", "image", "in.png", "out.png", "--model", str(model)],
                 ["-q", "image", "p3.png", "p3out.png", "--model", str(model)],  # the colour engine is installed
                 ["video", "in.mp4", "out.mp4", "--model", str(model), "-q"],
                 ["bench", "--model", str(model), "--sizes", "32x24", "--frames", "2", "--warmup", "1", "--model-only"],
                 ["eval", "flicker", str(clip), "--model", str(model), "--smooth", "none,flow", "-q"]):
        proc = rtnst(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
    assert (work / "out.png").is_file() and (work / "out.mp4").is_file() and (work / "p3out.png").is_file()


@pytest.mark.parametrize("args", [["train", "--style", "s.jpg", "--data", ".", "--out", "x.pt"],
                                  ["export", "x.pt", "x.onnx"], ["optimize", "in.png", "in.png", "o.png"],
                                  ["eval", "quality", "--content", "in.png", "--style", "in.png"]])
def test_training_commands_name_the_extra_in_one_line(rtnst, args):
    proc = rtnst(*args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("rtnst: error:") and "realtime_nst[train]" in lines[0]


def test_every_help_and_the_library_api_without_torch(rtnst):
    from realtime_nst.cli import COMMANDS

    for command in [*COMMANDS, "eval quality", "eval flicker"]:
        proc = rtnst(*command.split(), "--help")
        assert proc.returncode == 0 and len(proc.stdout) > 200, (command, proc.stderr[-2000:])
    model = onnx_model(rtnst.work / "api.onnx")
    code = f"""
import sys, numpy as np, realtime_nst as rt
with rt.OnnxStylizer({str(model)!r}, max_side_px=16) as st:
    out = st.stylize(np.full((24, 32, 3), 7, np.uint8))
assert out.shape == (24, 32, 3) and isinstance(st, rt.Stylizer)
assert callable(rt.serve_live) and callable(rt.run_live)
import realtime_nst.runtime.serve  # rtnst serve's HTTP side
assert "torch" not in sys.modules
print("ok")
"""
    proc = rtnst(code=code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_a_heic_photo_names_the_heif_extra_in_one_line(rtnst):
    (rtnst.work / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    proc = rtnst("-q", "image", "IMG_0001.HEIC", "o.jpg", "--model", str(onnx_model(rtnst.work / "id.onnx")))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "is a HEIC image, which OpenCV cannot decode: install the heif extra" in lines[0]
    assert "realtime_nst[heif]" in lines[0] and not (rtnst.work / "o.jpg").exists()
