"""tools/: tune_smoothing, fold_instance_norm, stamp_model, train_models' runner, build_models' table
and the avx2_only shim."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import onnx_model, write_clip

REPO = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_tune_smoothing_picks_the_smallest_strength_meeting_every_limit():
    tool = load_tool("tune_smoothing")

    def clip(*rows, floor=0.1, ghost_ema=None):  # rows: (strength, relative E_warp change, style rise, ghosting)
        return {a: tool.Outcome(1 + de, 1.0, floor, ds, g, ghost_ema) for a, de, ds, g in rows}

    clip_a = clip((0.5, -0.45, 0.01, None), (0.6, -0.55, 0.04, None), (0.7, -0.62, 0.08, None))
    clip_b = clip((0.5, -0.52, 0.02, None), (0.6, -0.58, 0.12, None), (0.7, -0.66, 0.09, None))
    assert tool.choose([clip_a], [0.5, 0.6, 0.7]) == 0.6
    assert tool.choose([clip_a, clip_b], [0.5, 0.6, 0.7]) == 0.7  # 0.6 costs clip b +12% style
    assert tool.choose([clip((0.5, -0.3, None, None))], [0.5]) is None
    assert tool.choose([clip((0.5, -0.6, None, None)), clip_b], [0.5, 0.6]) == 0.5  # no style image: E_warp alone
    # An output already near the input's own E_warp cannot halve it: reaching the floor is enough.
    assert tool.choose([clip((0.5, -0.2, 0.0, None), floor=0.85)], [0.5]) == 0.5
    # More ghosting than ema at 0.5 rules a strength out.
    ghosty = clip((0.5, -0.55, 0.0, 0.02), (0.6, -0.6, 0.0, 0.03), ghost_ema=0.025)
    assert tool.choose([ghosty], [0.5, 0.6]) == 0.5 and tool.choose([ghosty], [0.6]) is None
    assert tool.Outcome(0.4, 1.0, 0.1, None, None, None).target == 0.5
    # On the encoded file the same target applies, against the encoded unsmoothed file.
    assert not tool.Outcome(0.4, 1.0, 0.1, None, None, None, e_warp_encoded=0.45, e_none_encoded=0.8).meets()
    assert tool.Outcome(0.4, 1.0, 0.1, None, None, None, e_warp_encoded=0.4, e_none_encoded=0.8).meets()


def test_tune_smoothing_encoded_check_steps_up_until_the_encoded_file_meets_the_target(monkeypatch):
    tool = load_tool("tune_smoothing")
    encoded = {None: 1.0, 0.5: 0.55, 0.6: 0.45, 0.7: 0.4}  # the file unsmoothed, then at each strength
    calls = []

    def fake_encoded(model, video, strength, *, max_frames):
        calls.append(strength)
        return encoded[strength]

    monkeypatch.setattr(tool, "encoded_e_warp", fake_encoded)
    clip = {a: tool.Outcome(0.4, 1.0, 0.1, 0.0, None, None) for a in (0.4, 0.5, 0.6, 0.7)}
    clip[0.4] = tool.Outcome(0.6, 1.0, 0.1, 0.0, None, None)  # misses on raw frames: never encoded
    tool.check_encoded(Path("m.onnx"), [Path("c.mp4")], [clip], [0.4, 0.5, 0.6, 0.7], max_frames=None)
    assert tool.choose([clip], [0.4, 0.5, 0.6, 0.7]) == 0.6
    assert calls == [None, 0.5, 0.6]  # unsmoothed once, and nothing above the first that meets
    assert clip[0.7].e_warp_encoded is None


def test_tune_smoothing_end_to_end_writes_the_metadata(tmp_path):
    pytest.importorskip("onnx")
    from realtime_nst.modelfile import update_metadata
    from realtime_nst.runtime.stylizer import OnnxStylizer

    tool = load_tool("tune_smoothing")
    model = onnx_model(tmp_path / "m.onnx", metadata={"rtnst.style": "x"})
    clip = write_clip(tmp_path / "c.mp4", frames=6, audio=None)
    assert tool.main([str(model), "--videos", str(clip), "--strengths", "0.5,0.9", "--max-frames", "6",
                      "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())["m.onnx"]
    assert set(report["clips"]["c.mp4"]) == {"0.5", "0.9"}
    assert {"e_warp", "e_none", "floor", "ghosting", "ghosting_ema"} <= set(report["clips"]["c.mp4"]["0.5"])
    assert report["strength"] in (None, 0.5, 0.9)
    assert tool.main([str(model), "--videos", str(clip), "--strengths", "0.9", "--max-frames", "6", "--encoded",
                      "--json", str(tmp_path / "e.json")]) == 0
    outcome = json.loads((tmp_path / "e.json").read_text())["m.onnx"]["clips"]["c.mp4"]["0.9"]
    # The identity model's output is its input: smoothed, it is no less steady than the input on raw
    # frames, so the encoded files are made and scored.
    assert outcome["e_warp"] <= max(0.5 * outcome["e_none"], outcome["floor"])
    assert outcome["e_warp_encoded"] > 0 and outcome["e_none_encoded"] > 0
    update_metadata(model, {"rtnst.smooth_strength": "0.7"})
    update_metadata(model, {"rtnst.smooth_strength": "0.8"})  # replaces, does not add a second key
    with OnnxStylizer(model, device="cpu") as st:
        assert st.info.smooth_strength == 0.8 and st.info.style == "x"
    assert tool.main([str(tmp_path / "none.onnx"), "--videos", str(clip)]) == 2


def test_fold_instance_norm_is_exact_for_one_image():
    torch = pytest.importorskip("torch")
    from torch import nn

    from realtime_nst.training import nets

    tool = load_tool("fold_instance_norm")
    torch.manual_seed(0)
    v3 = tool.v3_layout()
    for block in v3.blocks:  # random affine norm parameters, not the identity they start as
        for i in tool.V3_NORMS:
            nn.init.uniform_(block.body[i].weight, 0.5, 1.5)
            nn.init.uniform_(block.body[i].bias, -0.2, 0.2)
    v3.eval()
    x = torch.rand(1, 3, 64, 64)
    folded = nets.RealtimeNet().eval()
    folded.load_state_dict(tool.fold(v3.state_dict(), tool.norm_statistics(v3, [x])))
    with torch.no_grad():
        # With the statistics of this one image, the folded net computes what the normalised one does.
        torch.testing.assert_close(folded(x), v3(x), rtol=1e-4, atol=1e-4)
        y = torch.rand(1, 3, 64, 64) * 0.3  # other statistics: close, not equal
        assert not torch.allclose(folded(y), v3(y), atol=1e-4)


def test_build_models_table_says_how_each_model_was_trained():
    tool = load_tool("build_models")
    base = {"style": "s", "style_image": "s.jpg", "tier": "realtime", "precision": "fp32", "macs_per_pixel": 2603,
            "params": 10, "trained_steps": 400, "smooth_strength": None, "default": False}
    rows = tool.table([{**base, "name": "a", "teacher": None, "anchored": False},
                       {**base, "name": "b", "teacher": "s-quality.onnx", "anchored": False},
                       {**base, "name": "c", "teacher": "s-quality.onnx", "anchored": True}]).splitlines()[2:]
    assert "| VGG16 perceptual loss |" in rows[0]
    assert "| distilled from `s-quality.onnx` |" in rows[1]
    assert "| VGG16 perceptual loss, anchored to `s-quality.onnx` |" in rows[2]


def test_stamp_model_sets_the_native_size_and_margin_the_runtime_uses(tmp_path, capsys):
    pytest.importorskip("onnx")
    from realtime_nst.runtime.stylizer import OnnxStylizer

    tool = load_tool("stamp_model")
    model = onnx_model(tmp_path / "m.onnx", metadata={"rtnst.style": "x", "rtnst.smooth_strength": "0.6"})
    assert tool.main([str(model), "--max-side", "320"]) == 0
    with OnnxStylizer(model, device="cpu") as st:
        assert st.inference_size(1280, 720) == (320, 180)
        assert st.info.style == "x" and st.info.smooth_strength == 0.6 and st.info.margin_px == 0  # others kept
    with OnnxStylizer(model, device="cpu", max_side_px=640) as st:
        assert st.inference_size(1280, 720) == (640, 360)
    assert tool.main([str(model), "--margin", "4"]) == 0
    with OnnxStylizer(model, device="cpu") as st:
        assert st.info.margin_px == 4 and st.inference_size(1280, 720) == (320, 180)
    for bad in (["--max-side", "0"], ["--margin", "-1"], []):
        assert tool.main([str(model), *bad]) == 2
    assert "give --max-side, --margin or both" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "none.onnx"), "--max-side", "320"]) == 2
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert tool.main([str(tmp_path / "junk.onnx"), "--max-side", "320"]) == 2
    assert "junk.onnx is not an ONNX model" in capsys.readouterr().err
    assert (tmp_path / "junk.onnx").read_bytes() == b"not a model"


def test_train_models_runs_each_models_stages_in_order_and_stops_a_model_at_a_failed_stage(tmp_path):
    tool = load_tool("train_models")

    def stage(name, code="pass"):
        script = f"import pathlib; {code}; pathlib.Path(r'{tmp_path}', '{name}').touch()"
        return name, [sys.executable, "-c", script], tmp_path / f"{name}.log"

    jobs = [[stage("a1"), stage("a2", f"assert pathlib.Path(r'{tmp_path}', 'a1').exists()")],
            [stage("b1", "raise SystemExit(3)"), stage("b2")]]
    assert tool.run_jobs(jobs, parallel=1, time_limit_s=None) == 1  # b1 failed
    assert (tmp_path / "a2").exists() and not (tmp_path / "b1").exists() and not (tmp_path / "b2").exists()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


@pytest.mark.skipif(not shutil.which("gcc") or not {"cpuid_fault", "avx512f", "avx2"} <= _cpu_flags(),
                    reason="needs gcc and an AVX-512 CPU with CPUID faulting")
def test_avx2_only_hides_avx512_from_what_libraries_see(tmp_path):
    lib = tmp_path / "avx2_only.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(REPO / "tools" / "avx2_only.c")], check=True)
    probe = ("import json; from numpy._core._multiarray_umath import __cpu_features__ as f; "
             "print(json.dumps([f['AVX2'], f['AVX512F'], f.get('AVX512_SPR', False)]))")
    native = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    shimmed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             env={**os.environ, "LD_PRELOAD": str(lib)})
    assert json.loads(native.stdout)[:2] == [True, True]
    assert json.loads(shimmed.stdout) == [True, False, False]


def test_bench_webcam_counts_the_frames_a_stand_in_camera_gave_and_the_loop_stylised(tmp_path, capsys):
    bench_webcam = load_tool("bench_webcam")
    clip = write_clip(tmp_path / "src.mp4", frames=6, size=(64, 48), audio=None)
    assert bench_webcam.main(["--video", str(clip), "--sizes", "64x48", "--fps", "10", "--seconds", "1.5",
                              "--smooth", "none,flow", "--model", str(onnx_model(tmp_path / "m.onnx"))]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("round")]
    assert len(rows) == 2 and "--smooth none" in rows[0] and "--smooth flow" in rows[1]
    for row in rows:
        done, given = (int(v) for v in row.split()[5].split("/"))
        assert given == 15 and 0 < done <= 15  # 1.5 s at 10 fps; a tiny identity model keeps up with most
