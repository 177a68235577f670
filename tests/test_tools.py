"""tools/tune_smoothing.py and tools/fold_instance_norm.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fakes import onnx_model, write_clip

REPO = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tune_smoothing_picks_the_smallest_strength_meeting_both_limits():
    tool = load_tool("tune_smoothing")
    clip_a = {0.5: (-0.45, 0.01), 0.6: (-0.55, 0.04), 0.7: (-0.62, 0.08)}
    clip_b = {0.5: (-0.52, 0.02), 0.6: (-0.58, 0.12), 0.7: (-0.66, 0.09)}
    assert tool.choose([clip_a], [0.5, 0.6, 0.7]) == 0.6
    assert tool.choose([clip_a, clip_b], [0.5, 0.6, 0.7]) == 0.7  # 0.6 costs clip b +12% style
    assert tool.choose([{0.5: (-0.3, None)}], [0.5]) is None
    assert tool.choose([{0.5: (-0.6, None)}, clip_b], [0.5, 0.6]) == 0.5  # no style image: E_warp alone
    assert tool.choose([clip_a, {0.5: (-0.9, 0.2), 0.6: (-0.9, 0.2), 0.7: (-0.9, 0.2)}], [0.5, 0.6, 0.7]) is None


def test_tune_smoothing_end_to_end_writes_the_metadata(tmp_path):
    pytest.importorskip("onnx")
    from realtime_nst.runtime.stylizer import OnnxStylizer

    tool = load_tool("tune_smoothing")
    model = onnx_model(tmp_path / "m.onnx", metadata={"rtnst.style": "x"})
    clip = write_clip(tmp_path / "c.mp4", frames=6, audio=None)
    assert tool.main([str(model), "--videos", str(clip), "--strengths", "0.5,0.9", "--max-frames", "6",
                      "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())["m.onnx"]
    assert set(report["clips"]["c.mp4"]) == {"0.5", "0.9"}
    assert report["strength"] in (None, 0.5, 0.9)
    tool.write_strength(model, 0.7)
    tool.write_strength(model, 0.8)  # replaces, does not add a second key
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
