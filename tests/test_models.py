"""`rtnst models` and tools/build_models.py (manifest, README table, contact sheet)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from realtime_nst import cli
from realtime_nst.registry import ENV_MODELS_DIR, resolve_model, shipped_models

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def models_cli(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ["models"])
    return cli.main


def test_no_models_yet(models_cli, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    assert models_cli(["models"]) == 0
    assert "no shipped models" in capsys.readouterr().out


def test_table_marks_default_and_missing_files(models_cli, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-realtime.onnx").write_bytes(b"")
    entries = [{"name": "a-realtime", "file": "a-realtime.onnx", "style": "a", "tier": "realtime",
                "macs_per_pixel": 1494, "max_side_px": 640, "default": True},
               {"name": "b-quality", "file": "b-quality.onnx", "style": "b", "tier": "quality",
                "macs_per_pixel": 153792}]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    assert models_cli(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STYLE", "TIER", "MACs/px", "RUNS", "AT", "DEFAULT"]
    assert lines[1].split() == ["a-realtime", "a", "realtime", "1.5k", "640", "px", "*"]
    assert lines[2].split()[:6] == ["b-quality", "b", "quality", "153.8k", "any", "size"] and "file missing" in lines[2]
    assert models_cli(["models", "--json"]) == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)] == ["a-realtime", "b-quality"]


@pytest.mark.parametrize("text", ["{not json", '{"models": [{"file": "x.onnx"}]}', '{"models": "abc"}', "[1, 2]",
                                  '{"models": [1]}'])
def test_bad_manifest_is_one_line_error(models_cli, tmp_path, monkeypatch, capsys, text):
    (tmp_path / "manifest.json").write_text(text)
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    assert models_cli(["models"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtnst: error:") and "not a valid model manifest" in err and len(err.splitlines()) == 1


def test_build_models(realtime_export, photo_dir, tmp_path, monkeypatch, capsys):
    folder, _ = realtime_export
    out = tmp_path / "models"
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "mosaic.jpg").write_bytes(next(photo_dir.rglob("*.jpg")).read_bytes())
    cmd = [sys.executable, str(REPO / "tools" / "build_models.py"), str(folder / "mosaic-realtime.onnx"),
           "--models-dir", str(out), "--content", str(photo_dir / "sub"), "--styles", str(styles), "--cell", "48"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())["models"]
    e = manifest[0]
    assert (e["name"], e["file"], e["style"], e["style_image"], e["tier"]) == (
        "mosaic-realtime", "mosaic-realtime.onnx", "mosaic", "mosaic.jpg", "realtime")
    assert e["default"] and e["macs_per_pixel"] == 2559 and e["params"] > 0 and len(e["sha256"]) == 64
    assert e["max_side_px"] == 640
    assert e["training"] == {"steps": 4000, "lr": 0.002} and e["trained_steps"] == 123
    assert "| `mosaic-realtime` | mosaic | mosaic.jpg | realtime | fp32 | 2,559 | 32,651 | 640 |" in (out / "README.md").read_text()
    import cv2

    sheet = cv2.imread(str(out / "contact_sheet.png"))
    n_content = len(list((photo_dir / "sub").iterdir()))
    assert sheet.shape[1] == 2 * (48 + 4) and sheet.shape[0] == 24 + 48 * (1 + n_content) + 4
    # The registry and `rtnst models` read what the tool wrote.
    monkeypatch.setenv(ENV_MODELS_DIR, str(out))
    assert [m.name for m in shipped_models()] == ["mosaic-realtime"]
    assert resolve_model("mosaic") == out / "mosaic-realtime.onnx" and resolve_model(None) == resolve_model("mosaic")


def test_train_models_tool_plans_one_resumable_run_per_model(tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    for s in ("udnie", "mosaic"):
        (styles / f"{s}.jpg").write_bytes(b"x")
    base = [sys.executable, str(REPO / "tools" / "train_models.py"), "--styles", str(styles), "--data", "photos",
            "--runs", str(tmp_path / "runs")]
    proc = subprocess.run(base + ["--only", "udnie-quality,mosaic-realtime", "--style-weights", "3,9", "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 12 and all("--resume" in ln and "train" in ln for ln in lines)  # mosaic: five stages
    assert "--tier quality" in lines[0] and "--style-weight 3.0" in lines[0] and "udnie-quality.sw3.pt" in lines[0]
    assert "--tier realtime" in lines[11] and "--style-weight 9.0" in lines[11] and "mosaic-realtime.sw9.pt" in lines[11]
    assert "--temporal-weight 100.0" in lines[11] and "--temporal-weight" not in lines[0]  # steady realtime nets
    assert "--block-norm" in lines[7] and "--teacher mosaic-quality" in lines[7] and "--lr 5e-05" in lines[11]
    # A realtime model in stages: distilled from its quality model, then fine-tuned, each stage from the last.
    (styles / "great_wave.jpg").write_bytes(b"x")
    proc = subprocess.run(base + ["--only", "great_wave-realtime", "--steps", "7", "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    distil, vgg, anchor, *_, t100, last = proc.stdout.splitlines()
    runs = tmp_path / "runs"
    assert "--teacher great_wave-quality" in distil and "--style" not in distil
    assert "--block-norm " in distil and "--block-norm" not in vgg  # later stages find it in the weights
    assert f"--init {runs / 'great_wave-realtime.distil.pt'}" in vgg and "--teacher" not in vgg
    assert f"--init {runs / 'great_wave-realtime.vgg.pt'}" in anchor and "--teacher great_wave-quality" in anchor
    assert f"--init {runs / 'great_wave-realtime.t50.pt'}" in t100 and "--temporal-weight 100.0" in t100
    assert "--steps 7" in t100 and "--steps 7" not in vgg
    assert f"--init {runs / 'great_wave-realtime.t100.pt'}" in last and "--temporal-weight 100.0" in last
    assert f"--out {runs / 'great_wave-realtime.pt'}" in last and "--lr 5e-05" in last and "--batch-size 8" in last
    # starry_night ships no quality model: its teacher is a short CPU fine-tune of a shipped one.
    (styles / "starry_night.jpg").write_bytes(b"x")
    proc = subprocess.run(base + ["--only", "starry_night-quality", "--dry-run"], capture_output=True, text=True,
                          timeout=60)
    assert "--init the_scream-quality" in proc.stdout and "--steps 1200" in proc.stdout, proc.stdout
    proc = subprocess.run(base + ["--only", "mosaic-quality", "--dry-run"], capture_output=True, text=True, timeout=60)
    assert "--init the_scream-quality" in proc.stdout and "--style-weight 5.0" in proc.stdout, proc.stdout
    (runs / "great_wave-quality.pt").write_bytes(b"")  # a quality model trained here is the teacher
    proc = subprocess.run(base + ["--only", "great_wave-realtime", "--dry-run"], capture_output=True, text=True, timeout=60)
    assert f"--teacher {runs / 'great_wave-quality.pt'}" in proc.stdout.splitlines()[0]
    # A polish repeats the stage before it, as --steps and --style-weights left it, at a tenth of its rate.
    proc = subprocess.run(base + ["--only", "great_wave-realtime", "--steps", "7", "--style-weights", "3", "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *_, stage, polish = proc.stdout.splitlines()
    assert "--steps 7" in stage and "--lr 0.0005" in stage and "--batch-size 4" in stage
    assert f"--init {runs / 'great_wave-realtime.sw3.t100.pt'}" in polish and "--lr 5e-05" in polish
    assert "--batch-size 8" in polish and "--steps 250" in polish
    assert f"--out {runs / 'great_wave-realtime.sw3.pt'}" in polish
    for same in ("--style-weight 3.0", "--teacher-weight 10.0", "--border-weight 10.0", "--temporal-weight 100.0"):
        assert same in stage and same in polish
    # A polish inside a recipe settles the stage just before it; --steps and --style-weights set the last
    # stage that is not a polish, and the polishes after it (one with its own teacher weight) repeat it.
    (styles / "the_scream.jpg").write_bytes(b"x")
    proc = subprocess.run(base + ["--only", "the_scream-realtime", "--steps", "7", "--style-weights", "3", "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    *_, stage, again, last = proc.stdout.splitlines()
    settled = next(ln for ln in proc.stdout.splitlines() if "the_scream-realtime.sw3.settled.pt" in ln)
    assert f"--init {runs / 'the_scream-realtime.sw3.anchor.pt'}" in settled and "--lr 5e-05" in settled
    assert "--temporal-weight 15.0" in settled and "--steps 250" in settled and "--style-weight" not in settled
    t0a = next(ln for ln in proc.stdout.splitlines() if "the_scream-realtime.sw3.t0a.pt" in ln)
    assert f"--init {runs / 'the_scream-realtime.sw3.t0p.pt'}" in t0a and "--teacher-weight 20.0" in t0a
    assert "--steps 7" in stage and "--style-weight 3.0" in stage and "--lr 0.0005" in stage
    assert "--temporal-norm l2" in stage and f"--init {runs / 'the_scream-realtime.sw3.r4s.pt'}" in stage
    assert f"--init {runs / 'the_scream-realtime.sw3.r5p.pt'}" in last
    # Rounds of the l2 stage, its polish and a polish at style weight 13, each from the one before.
    l2s = next(ln for ln in proc.stdout.splitlines() if "--out " + str(runs / "the_scream-realtime.sw3.l2s.pt") in ln)
    assert f"--init {runs / 'the_scream-realtime.sw3.l2p.pt'}" in l2s and "--style-weight 13.0" in l2s
    r2 = next(ln for ln in proc.stdout.splitlines() if "--out " + str(runs / "the_scream-realtime.sw3.r2.pt") in ln)
    assert f"--init {runs / 'the_scream-realtime.sw3.l2s.pt'}" in r2 and "--temporal-weight 800.0" in r2
    for polish in (again, last):
        assert "--steps 250" in polish and "--lr 5e-05" in polish and "--temporal-norm l2" in polish
    # The last polish carries its own style weight, over the one --style-weights gave the stage.
    assert "--style-weight 3.0" in again and "--style-weight 13.0" in last
    bad = subprocess.run(base + ["--only", "nope-quality", "--dry-run"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown model" in bad.stderr


def test_shipped_models_match_their_manifest():
    import hashlib

    folder = REPO / "models"
    entries = json.loads((folder / "manifest.json").read_text())["models"]
    assert sum(e["default"] for e in entries) == 1
    tiers = {(e["style"], e["tier"]) for e in entries}
    for style in ("starry_night", "the_scream", "great_wave", "udnie", "shipwreck", "mosaic"):
        assert (style, "realtime") in tiers
    assert sum(t == "quality" for _, t in tiers) >= 3
    for e in entries:
        assert hashlib.sha256((folder / e["file"]).read_bytes()).hexdigest() == e["sha256"], e["name"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 40e6


def test_shipped_models_keep_their_edge_line_outside_the_frame():
    # The nets paint a 1-3 px line along some of the image's edges (models/README.md): the reflected
    # margin the runtime adds is what keeps it out of the output.
    from realtime_nst.runtime.stylizer import OnnxStylizer

    entries = json.loads((REPO / "models" / "manifest.json").read_text())["models"]
    for e in entries:
        with OnnxStylizer(REPO / "models" / e["file"], device="cpu") as st:
            assert st.info.margin_px >= (4 if e["tier"] == "realtime" else 8), e["name"]


def test_default_shipped_model_stylizes_a_frame(monkeypatch):
    import numpy as np

    from realtime_nst.runtime.stylizer import OnnxStylizer

    monkeypatch.delenv(ENV_MODELS_DIR, raising=False)
    path = resolve_model(None)
    assert path.parent == REPO / "models"
    frame = np.zeros((45, 61, 3), np.uint8)
    frame[:, :30] = (0, 0, 255)  # red half, then black
    with OnnxStylizer(path, device="cpu") as st:
        out = st.stylize(frame)
    assert out.shape == frame.shape and out.std() > 5  # painted, not blank


def test_a_damaged_shipped_model_is_refused_and_a_good_one_checked_once(tmp_path, monkeypatch):
    import hashlib
    import shutil

    from realtime_nst import registry
    from realtime_nst.errors import ModelError

    folder = tmp_path / "models"
    folder.mkdir()
    src = REPO / "models" / "starry_night-realtime.onnx"
    shutil.copy(src, folder / "m.onnx")
    entry = {"name": "m-realtime", "file": "m.onnx", "style": "m", "tier": "realtime", "default": True,
             "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps({"models": [entry]}))
    monkeypatch.setenv("RTNST_MODELS_DIR", str(folder))
    monkeypatch.setattr(registry, "VERIFIED_CACHE", tmp_path / "cache" / "verified.json")
    assert registry.resolve_model("m") == folder / "m.onnx"
    assert registry.VERIFIED_CACHE.is_file()
    data = bytearray((folder / "m.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    (folder / "m.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="m-realtime is damaged"):
        registry.resolve_model(None)
    (folder / "m.onnx").write_bytes(src.read_bytes())
    registry.VERIFIED_CACHE.write_text("[]")  # a cache of another shape: checked again, not an error
    assert registry.resolve_model("m") == folder / "m.onnx"


def test_measure_models_feeds_the_figures_table(realtime_export, photo_dir, tiny_vgg16_file, tmp_path):
    from realtime_nst.evaluation.bench import write_clip

    folder, _ = realtime_export
    out = tmp_path / "models"
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "mosaic.jpg").write_bytes(next(photo_dir.rglob("*.jpg")).read_bytes())
    clip = tmp_path / "clip.mp4"
    write_clip(clip, (96, 64), 6)
    measure = [sys.executable, str(REPO / "tools" / "measure_models.py"), str(folder / "mosaic-realtime.onnx"),
               "--models-dir", str(out), "--content", str(photo_dir / "sub"), "--styles", str(styles),
               "--clips", str(clip), "--vgg-weights", str(tiny_vgg16_file), "--bench-frames", "3", "--rounds", "2"]
    out.mkdir()
    proc = subprocess.run(measure, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads((out / "measurements.json").read_text())["models"]["mosaic-realtime"]
    assert figures["S"] > 0 and figures["C"] > 0 and 0 <= figures["shift"] < 1 and 0 <= figures["edge"] < 255
    ew = figures["e_warp"]["clip.mp4"]
    assert ew["none"] > 0 and ew["floor"] > 0 and ew["x_floor"] == pytest.approx(ew["none"] / ew["floor"])
    assert ew["x_contrast_floor"] > 0
    assert figures["fps"]["model_640x360"] > 0 and figures["fps"]["end_to_end_1280x720"] > 0
    assert figures["fps"]["runs_at_1280x720"] == "640x360" and len(figures["model_sha256"]) == 64
    assert figures["fps"]["rounds"] == 2
    again = subprocess.run(measure, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "measured before, skipped" in again.stdout
    lacking = subprocess.run(measure[:3] + ["--parts", "quality,flicker"], capture_output=True, text=True, timeout=60)
    assert lacking.returncode == 2 and "--content, --styles, --clips needed" in lacking.stderr
    build = [sys.executable, str(REPO / "tools" / "build_models.py"), str(folder / "mosaic-realtime.onnx"),
             "--models-dir", str(out)]
    assert subprocess.run(build, capture_output=True, text=True, timeout=120).returncode == 0
    readme = (out / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `mosaic-realtime` | 0."))
    assert f"| {figures['S']:.4f} | {figures['C']:.3f} |" in row and f"{ew['x_floor']:.1f}x ({ew['x_contrast_floor']:.2f})" in row
    assert f"| {figures['shift']:.3f} | {figures['edge']:.1f} |" in row
    # A reference measured with the same style image: S and C as ratios of its figures.
    data = json.loads((out / "measurements.json").read_text())
    data["models"]["ref"] = {"style_image": "mosaic.jpg", "S": 2 * figures["S"], "C": figures["C"] / 2, "shift": 0.03}
    (out / "measurements.json").write_text(json.dumps(data))
    assert subprocess.run(build, capture_output=True, text=True, timeout=120).returncode == 0
    lines = (out / "README.md").read_text().splitlines()
    assert "| 0.50 | 2.00 |" in next(line for line in lines if line.startswith("| `mosaic-realtime` | 0."))
    assert any(line.startswith("| ref (not shipped) | ") for line in lines)
    # A smoothing strength stored after the measurement keeps the figures (none depends on it) ...
    from realtime_nst.modelfile import update_metadata

    update_metadata(out / "mosaic-realtime.onnx", {"rtnst.smooth_strength": "0.7"})
    build = build[:2] + [str(out / "mosaic-realtime.onnx")] + build[3:]  # the copy in --models-dir, not a new one
    assert subprocess.run(build, capture_output=True, text=True, timeout=120).returncode == 0
    assert f"| `mosaic-realtime` | {figures['S']:.4f} |" in (out / "README.md").read_text()
    # ... but a model changed since it was measured shows no stale figures.
    data["models"]["mosaic-realtime"]["model_sha256"] = "0" * 64
    (out / "measurements.json").write_text(json.dumps(data))
    assert subprocess.run(build, capture_output=True, text=True, timeout=120).returncode == 0
    assert "| `mosaic-realtime` | ? |" in (out / "README.md").read_text()
