"""ONNX export: graph, metadata, parity with PyTorch at odd sizes, fp16/int8 variants, the stylizer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from realtime_nst.training import export as ex  # noqa: E402
from realtime_nst.training import onnxcheck  # noqa: E402
from realtime_nst.training import cost, nets  # noqa: E402
from realtime_nst.errors import ModelError, OptionError, OutputError  # noqa: E402
from realtime_nst.runtime.stylizer import OnnxStylizer  # noqa: E402


def test_cli_export_checks_and_metadata(realtime_export):
    folder, stdout = realtime_export
    path = folder / "mosaic-realtime.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    for v in (model.graph.input[0], model.graph.output[0]):
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        assert dims == ["N", 3, "H", "W"]
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "InstanceNormalization", "Resize"} <= ops and "ConvTranspose" not in ops  # export_form
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["rtnst.input_range"] == "0-1" and meta["rtnst.channel_order"] == "rgb"
    assert meta["rtnst.pad_multiple"] == "4" and meta["rtnst.tier"] == "realtime" and meta["rtnst.margin_px"] == "4"
    assert meta["rtnst.max_side_px"] == "640"  # the realtime net's native inference size
    assert meta["rtnst.style"] == "mosaic" and meta["rtnst.style_image"] == "mosaic.jpg"
    assert meta["rtnst.steps"] == "123" and '"lr": 0.002' in meta["rtnst.training"]
    assert int(meta["rtnst.params"]) == cost.count_params(nets.build("realtime"))
    # The command reports parity at every size, odd ones included, each >= 45 dB.
    assert "2x97x131" in stdout and "1x361x643" in stdout
    dbs = [float(t.split(" dB")[0].split()[-1]) for t in stdout.splitlines()[0].split(",")]
    assert len(dbs) == 3 and min(dbs) >= 45


def test_stylizer_runs_the_export_at_any_size(realtime_export):
    folder, _ = realtime_export
    frame = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)  # odd sides: padded inside
    with OnnxStylizer(folder / "mosaic-realtime.onnx", device="cpu") as s:
        assert s.info.input_range == "0-1" and s.info.pad_multiple == 4 and s.info.margin_px == 4 and s.info.style == "mosaic"
        assert s.stylize(frame).shape == frame.shape
        assert s.max_side_px == 640 and s.inference_size(1280, 720) == (640, 360)  # its native size by default
    with OnnxStylizer(folder / "mosaic-realtime.onnx", device="cpu", max_side_px=320) as s:
        assert s.inference_size(1280, 720) == (320, 180)


def test_fp16_keeps_instance_norm_in_fp32(realtime_export):
    folder, stdout = realtime_export
    model = onnx.load(str(folder / "mosaic-realtime.fp16.onnx"))
    inits = {i.name: i.data_type for i in model.graph.initializer}
    conv_w = [n.input[1] for n in model.graph.node if n.op_type == "Conv"]
    assert all(inits[w] == onnx.TensorProto.FLOAT16 for w in conv_w)
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(inits[n.input[1]] == onnx.TensorProto.FLOAT for n in norms)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {p.key: p.value for p in model.metadata_props}["rtnst.precision"] == "fp16"
    assert "fp16: mosaic-realtime.fp16.onnx" in stdout


def test_int8_written_only_when_faster(realtime_export):
    folder, stdout = realtime_export
    line = next(x for x in stdout.splitlines() if x.startswith("int8:"))
    assert "dB vs fp32" in line and "ms fp32" in line
    path = folder / "mosaic-realtime.int8.onnx"
    if "not written" in line:
        assert not path.exists()
    else:
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["rtnst.precision"] == "int8" and float(meta["rtnst.int8_psnr_db"]) > 20
        assert OnnxStylizer(path, device="cpu").stylize(np.zeros((16, 24, 3), np.uint8)).shape == (16, 24, 3)


def test_quality_from_pytorch_examples_pth(tmp_path):
    """A bare pytorch/examples state dict (stale running stats included) exports as the quality tier."""
    torch.manual_seed(1)
    state = dict(nets.TransformerNet().state_dict())
    state["in1.running_mean"], state["in1.running_var"] = torch.zeros(32), torch.ones(32)
    torch.save(state, tmp_path / "udnie.pth")
    report = ex.export(tmp_path / "udnie.pth", tmp_path / "udnie.onnx", fp16=True, sizes=((1, 32, 32), (2, 19, 27)))
    assert report.tier == "quality" and [s for s, _ in report.parity_db] == ["1x32x32", "2x19x27"]
    assert min(db for _, db in report.parity_db) >= 45
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "udnie.onnx")).metadata_props}
    assert (meta["rtnst.input_range"], meta["rtnst.pad_multiple"], meta["rtnst.style"]) == ("0-255", "4", "udnie")
    assert meta["rtnst.max_side_px"] == "640"  # strokes sized for 256 px crops shrink on a photo's own size
    assert "fp16" in report.variants
    with OnnxStylizer(tmp_path / "udnie.onnx", device="cpu") as s:
        assert s.stylize(np.full((21, 30, 3), 90, np.uint8)).shape == (21, 30, 3)


def test_parity_failure_is_an_error(realtime_export):
    folder, _ = realtime_export
    torch.manual_seed(99)
    other = nets.build("realtime").eval()  # not the exported weights
    with pytest.raises(ModelError, match="differs from PyTorch"):
        onnxcheck.check_parity(folder / "mosaic-realtime.onnx", other, "realtime", ((1, 24, 24),), min_db=45)
    with torch.no_grad():
        for p in other.parameters():
            p.fill_(float("nan"))  # a NaN PSNR is no pass either
    with pytest.raises(ModelError, match="nan dB"):
        onnxcheck.check_parity(folder / "mosaic-realtime.onnx", other, "realtime", ((1, 24, 24),), min_db=45)


def test_reexport_of_an_older_form_keeps_the_function_and_the_record(realtime_export, tmp_path, monkeypatch):
    """A model exported in the earlier form (tied upsampling as phase conv + interleave, the norm whole)
    re-exports into today's form with the same outputs, its training record and smoothing strength."""
    import onnxruntime as ort

    from realtime_nst import modelfile as mf
    from realtime_nst.training import tied

    folder, _ = realtime_export
    with monkeypatch.context() as m:
        m.setattr(tied.TiedUpsample, "as_export_layers", tied.TiedUpsample.as_phase_layers)
        m.setattr(nets.RealtimeNet, "SPLIT_NORMS_FOR_EXPORT", False)
        ex.export(folder / "mosaic.pt", tmp_path / "old.onnx", sizes=((1, 32, 48),))
    model = onnx.load(str(tmp_path / "old.onnx"))
    assert {"ConvTranspose", "InstanceNormalization"} <= {n.op_type for n in model.graph.node}
    mf.write_metadata(model, {mf.META_SMOOTH_STRENGTH: "0.6"})
    onnx.save(model, str(tmp_path / "old.onnx"))
    ex.export(tmp_path / "old.onnx", tmp_path / "new.onnx", sizes=((1, 32, 48),))
    new = onnx.load(str(tmp_path / "new.onnx"))
    assert "ConvTranspose" not in {n.op_type for n in new.graph.node}
    before = {p.key: p.value for p in model.metadata_props}
    after = {p.key: p.value for p in new.metadata_props}
    assert after["rtnst.steps"] == "123" and after[mf.META_SMOOTH_STRENGTH] == "0.6"
    assert after["rtnst.training"] == before["rtnst.training"] and after[mf.META_STYLE] == "mosaic"
    x = onnxcheck.sample_images(1, 48, 64)
    a = ort.InferenceSession(str(tmp_path / "old.onnx")).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(tmp_path / "new.onnx")).run(None, {"input": x})[0]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_refusals(realtime_export, tmp_path):
    folder, _ = realtime_export
    with pytest.raises(OutputError, match="exists"):
        ex.export(folder / "mosaic.pt", folder / "mosaic-realtime.onnx")
    with pytest.raises(OptionError, match="needs calib"):
        ex.export(folder / "mosaic.pt", tmp_path / "m.onnx", int8=True)
    with pytest.raises(OptionError, match="not a folder"):
        ex.export(folder / "mosaic.pt", tmp_path / "m.onnx", int8=True, calib=tmp_path / "no_photos")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionError, match="no photos"):
        ex.export(folder / "mosaic.pt", tmp_path / "m.onnx", int8=True, calib=tmp_path / "empty")
    assert not (tmp_path / "m.onnx").exists()  # refused before the fp32 model was written
    with pytest.raises(OptionError, match=".onnx"):
        ex.export(folder / "mosaic.pt", tmp_path / "m.pb")
    state = torch.load(folder / "mosaic.pt", weights_only=True)
    state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, tmp_path / "diverged.pt")
    with pytest.raises(ModelError, match="NaN or infinite"):
        ex.export(tmp_path / "diverged.pt", tmp_path / "m.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable"):
        ex.export(tmp_path / "junk.pt", tmp_path / "m.onnx")


def test_psnr_and_padding():
    a = np.zeros((1, 3, 4, 4), np.float32)
    assert onnxcheck.psnr(a, a) == float("inf")
    assert onnxcheck.psnr(a, a + 255) == pytest.approx(0.0)
    assert onnxcheck.psnr(a, a - 10) == float("inf")  # compared as seen: clipped to 0..255
    x = onnxcheck.sample_images(1, 5, 7)
    p = onnxcheck.pad_to(x, 4)
    assert p.shape == (1, 3, 8, 8) and np.array_equal(p[:, :, :5, :7], x) and np.array_equal(p[:, :, 5, :7], x[:, :, 3])
