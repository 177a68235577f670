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
                "macs_per_pixel": 1494, "default": True},
               {"name": "b-quality", "file": "b-quality.onnx", "style": "b", "tier": "quality",
                "macs_per_pixel": 153792}]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    assert models_cli(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STYLE", "TIER", "MACs/px", "DEFAULT"]
    assert lines[1].split() == ["a-realtime", "a", "realtime", "1.5k", "*"]
    assert lines[2].split()[:4] == ["b-quality", "b", "quality", "153.8k"] and "file missing" in lines[2]
    assert models_cli(["models", "--json"]) == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)] == ["a-realtime", "b-quality"]


def test_bad_manifest_is_one_line_error(models_cli, tmp_path, monkeypatch, capsys):
    (tmp_path / "manifest.json").write_text("{not json")
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    assert models_cli(["models"]) == 2
    assert capsys.readouterr().err.startswith("rtnst: error:")


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
    assert e["default"] and e["macs_per_pixel"] == 787 and e["params"] > 0 and len(e["sha256"]) == 64
    assert e["training"] == {"steps": 4000, "lr": 0.002} and e["trained_steps"] == 123
    assert "| `mosaic-realtime` | mosaic | mosaic.jpg | realtime | fp32 | 787 |" in (out / "README.md").read_text()
    import cv2

    sheet = cv2.imread(str(out / "contact_sheet.png"))
    n_content = len(list((photo_dir / "sub").iterdir()))
    assert sheet.shape[1] == 2 * (48 + 4) and sheet.shape[0] == 24 + 48 * (1 + n_content) + 4
    # The registry and `rtnst models` read what the tool wrote.
    monkeypatch.setenv(ENV_MODELS_DIR, str(out))
    assert [m.name for m in shipped_models()] == ["mosaic-realtime"]
    assert resolve_model("mosaic") == out / "mosaic-realtime.onnx" and resolve_model(None) == resolve_model("mosaic")
