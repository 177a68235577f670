import logging

import cv2
import numpy as np
import pytest

from fakes import gradient_frame, onnx_model
from realtime_nst.errors import ModelError, OptionError
from realtime_nst.runtime.session import choose_providers
from realtime_nst.runtime.stylizer import OnnxStylizer


@pytest.mark.parametrize("size", [(64, 48), (37, 53), (1, 1), (101, 7)])
def test_output_size_equals_input_size_with_exact_pixels(identity, size):
    frame = gradient_frame(*size)
    with OnnxStylizer(identity) as st:
        out = st.stylize(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out, frame)


def test_input_range_0_1_and_channel_order(tmp_path):
    frame = gradient_frame(40, 30)
    with OnnxStylizer(onnx_model(tmp_path / "i.onnx"), input_range="0-1") as st:
        assert np.array_equal(st.stylize(frame), frame)
    first = onnx_model(tmp_path / "first.onnx", kind="first_channel")
    with OnnxStylizer(first, channel_order="rgb") as st:
        out = st.stylize(frame)
    assert all(np.array_equal(out[..., c], frame[..., 2]) for c in range(3))  # model channel 0 = red
    with OnnxStylizer(first, channel_order="bgr") as st:
        out = st.stylize(frame)
    assert all(np.array_equal(out[..., c], frame[..., 0]) for c in range(3))  # model channel 0 = blue


def test_conventions_come_from_metadata(tmp_path):
    model = onnx_model(tmp_path / "m.onnx", kind="add_half",
                       metadata={"rtnst.input_range": "0-1", "rtnst.pad_multiple": "16", "rtnst.style": "tone"})
    frame = np.full((20, 30, 3), 10, np.uint8)
    with OnnxStylizer(model) as st:
        assert st.info.pad_multiple == 16 and st.info.style == "tone"
        out = st.stylize(frame)
    assert np.all(out == 10 + 128)  # +0.5 in 0..1 units is +127.5 -> rounds to 138
    with OnnxStylizer(model, input_range="0-255") as st:  # a flag overrides the metadata
        assert np.all(st.stylize(frame) == 10)  # +0.5 of 255 rounds back to 10 (11 at most)


def test_max_side_and_output_size(identity):
    frame = gradient_frame(200, 100)
    with OnnxStylizer(identity, max_side_px=50) as st:
        assert st.inference_size(200, 100) == (50, 25)
        out = st.stylize(frame)
    assert out.shape == frame.shape
    assert np.abs(out.astype(int) - frame).mean() < 6  # a down/up-scaled copy of the same picture
    with OnnxStylizer(identity, output_size=(64, 32)) as st:
        assert st.stylize(frame).shape == (32, 64, 3)


def test_strength_and_preserve_color(tmp_path):
    frame = gradient_frame(48, 32)
    gray_model = onnx_model(tmp_path / "first.onnx", kind="first_channel")
    with OnnxStylizer(gray_model, strength=0.0) as st:
        assert np.array_equal(st.stylize(frame), frame)
    with OnnxStylizer(gray_model, strength=0.5) as st:
        half = st.stylize(frame).astype(int)
    styled = np.repeat(frame[..., 2:3], 3, axis=2).astype(int)
    assert np.abs(half - (styled + frame) / 2).max() <= 1
    soft = (90 + frame // 3).astype(np.uint8)  # in-gamut colours: no clipping when Y is swapped
    frame, styled = soft, np.repeat(soft[..., 2:3], 3, axis=2).astype(int)
    with OnnxStylizer(gray_model, preserve_color=True) as st:
        kept = st.stylize(frame)
    ycc_out, ycc_src = cv2.cvtColor(kept, cv2.COLOR_BGR2YCrCb), cv2.cvtColor(frame, cv2.COLOR_BGR2YCrCb)
    assert np.abs(ycc_out[..., 1:].astype(int) - ycc_src[..., 1:]).mean() < 3  # chroma of the source
    assert np.abs(ycc_out[..., 0].astype(int) - cv2.cvtColor(styled.astype(np.uint8), cv2.COLOR_BGR2YCrCb)[..., 0]).mean() < 3
    with pytest.raises(OptionError, match="strength"):
        OnnxStylizer(gray_model, strength=1.5)


def test_bad_models(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        OnnxStylizer(junk)
    with pytest.raises(ModelError, match="does not exist"):
        OnnxStylizer(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match=r"\(N, 3, H, W\)"):
        OnnxStylizer(onnx_model(tmp_path / "gray.onnx", input_shape=("N", 1, "H", "W")))
    with pytest.raises(ModelError, match="shape"):
        OnnxStylizer(onnx_model(tmp_path / "shrink.onnx", kind="shrink"))


def test_rejects_non_frames(identity):
    with OnnxStylizer(identity) as st, pytest.raises(OptionError, match="HxWx3 uint8"):
        st.stylize(np.zeros((10, 10), np.float32))


def test_provider_choice_and_fallback_log(identity, caplog):
    cpu = ["CPUExecutionProvider"]
    assert choose_providers("auto", ["TensorrtExecutionProvider", "CUDAExecutionProvider", *cpu])[0] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("cuda", ["TensorrtExecutionProvider", "CUDAExecutionProvider", *cpu])[0] == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen, note = choose_providers("tensorrt", cpu)
    assert chosen == cpu and "not available" in note
    with pytest.raises(OptionError):
        choose_providers("metal", cpu)
    with caplog.at_level(logging.INFO, logger="rtnst"):
        with OnnxStylizer(identity, device="cuda") as st:
            assert st.provider == "CPUExecutionProvider"
    lines = [r.getMessage() for r in caplog.records if "runs on" in r.getMessage()]
    assert len(lines) == 1 and "CPUExecutionProvider" in lines[0] and "cuda requested" in lines[0]


def test_close_twice_is_safe_and_a_closed_stylizer_says_so(identity):
    st = OnnxStylizer(identity)
    st.close()
    st.close()
    with pytest.raises(OptionError, match="closed"):
        st.stylize(gradient_frame(8, 8))


def test_margin_from_metadata_hides_border_effects(tmp_path):
    frame = np.full((21, 30, 3), 100, np.uint8)
    plain = OnnxStylizer(onnx_model(tmp_path / "b.onnx", kind="blur"), device="cpu").stylize(frame)
    assert plain.shape == frame.shape and plain[0, 0, 0] < 60  # zero padding darkens the corner
    meta = {"rtnst.margin_px": "2", "rtnst.pad_multiple": "8"}
    with OnnxStylizer(onnx_model(tmp_path / "m.onnx", kind="blur", metadata=meta), device="cpu") as st:
        assert st.info.margin_px == 2
        assert np.array_equal(st.stylize(frame), frame)  # reflected margin, cropped off again
    ident = OnnxStylizer(onnx_model(tmp_path / "i.onnx", metadata=meta), device="cpu")
    img = gradient_frame(13, 17)
    assert np.array_equal(ident.stylize(img), img)  # the crop lands exactly on the frame


def test_tiny_frames_are_padded_up_for_models_with_their_own_reflect_padding(tmp_path):
    model = onnx_model(tmp_path / "r.onnx", kind="reflect8")
    with OnnxStylizer(model, pad_multiple=4) as st:
        for h, w in ((4, 4), (3, 1000), (1, 1)):
            frame = gradient_frame(w, h)
            assert np.array_equal(st.stylize(frame), frame)
    with OnnxStylizer(model, max_side_px=6) as st:  # the inference copy is 6 px on its long side
        assert st.stylize(gradient_frame(60, 40)).shape == (40, 60, 3)


def test_refusals_of_outputs_that_cannot_exist_and_of_broken_outputs(tmp_path, identity):
    with pytest.raises(OptionError, match="output_size must be between 1x1 and 16384x16384, got 100000x100000"):
        OnnxStylizer(identity, output_size=(100000, 100000))
    with OnnxStylizer(onnx_model(tmp_path / "nan.onnx", kind="nan")) as st:
        with pytest.raises(ModelError, match="nan.onnx produced NaN or infinite values"):
            st.stylize(gradient_frame(16, 16))


def test_a_fixed_size_model_says_so_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="rtnst")
    model = onnx_model(tmp_path / "f.onnx", input_shape=(1, 3, 32, 48))
    with OnnxStylizer(model) as st:
        assert st.stylize(gradient_frame(100, 60)).shape == (60, 100, 3)
        st.stylize(gradient_frame(100, 60))
    assert caplog.text.count("takes only 48x32 images") == 1
