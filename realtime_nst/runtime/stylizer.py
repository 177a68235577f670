"""The stylizer: runs an image-to-image ONNX style model on frames with onnxruntime."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from .. import frames as fr
from ..errors import ModelError, OptionError
from ..modelfile import (
    DEFAULT_PAD_MULTIPLE,
    META_CHANNEL_ORDER,
    META_INPUT_RANGE,
    META_MARGIN,
    META_PAD_MULTIPLE,
    META_TIER,
    ChannelOrder,
    InputRange,
    ModelInfo,
)
from .session import open_session

log = logging.getLogger("rtnst")

MIN_SIDE_PX = 32  # the smallest side a model is run at (smaller frames are padded; see run_model)
# Larger outputs cannot be held in memory as frames (a 16384x16384 frame is 768 MiB already).
MAX_OUTPUT_SIDE_PX = 16384


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class _Buffers:
    """An input and an output array of one inference size, bound to a session's inputs/outputs."""

    def __init__(self, session, info: ModelInfo, h: int, w: int) -> None:
        self.shape = (h, w)
        self.input = np.empty((1, 3, h, w), np.float32)
        self.output = np.empty((1, 3, h, w), np.float32)
        self.binding = session.io_binding()
        self.binding.bind_input(info.input_name, "cpu", 0, np.float32, self.input.shape, self.input.ctypes.data)
        self.binding.bind_output(info.output_name, "cpu", 0, np.float32, self.output.shape, self.output.ctypes.data)


@runtime_checkable
class Stylizer(Protocol):
    """Anything that turns a frame into a stylised frame of the same size."""

    def stylize(self, frame: np.ndarray) -> np.ndarray: ...


def inspect_model(session, path: Path, *, input_range: str | None, channel_order: str | None,
                  pad_multiple: int | None) -> ModelInfo:
    """The model's conventions: the overrides given, else its metadata (rtnst's own models say them
    there), else the common defaults of foreign models (0-255, rgb, multiple 8)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelError(f"{path}: expected one image input and one output, got {len(inputs)} inputs and {len(outputs)} outputs")
    shape = inputs[0].shape
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ModelError(f"{path}: expected an input of shape (N, 3, H, W), got {tuple(shape)}")
    if "float" not in inputs[0].type:
        raise ModelError(f"{path}: expected a float32 input, got {inputs[0].type}")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    rng = InputRange.parse(input_range or meta.get(META_INPUT_RANGE, "0-255"), param="input_range")
    order = ChannelOrder.parse(channel_order or meta.get(META_CHANNEL_ORDER, "rgb"), param="channel_order")
    try:
        multiple = int(pad_multiple or meta.get(META_PAD_MULTIPLE, DEFAULT_PAD_MULTIPLE))
    except ValueError:
        raise ModelError(f"{path}: its {META_PAD_MULTIPLE} metadata is not a whole number") from None
    if multiple < 1:
        raise OptionError(f"pad_multiple must be at least 1, got {multiple}", param="pad_multiple")
    fixed = (shape[3], shape[2]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
    margin = 0 if fixed else int(meta.get(META_MARGIN, 0))
    return ModelInfo(path, inputs[0].name, outputs[0].name, rng, order, multiple, fixed, margin, meta)


class OnnxStylizer:
    """Stylises frames of any size with an image-to-image ONNX model.

    Frames are scaled so the long side is at most ``max_side_px`` for inference (default: the size
    the model was made for, when its metadata says), padded (reflected) to the model's multiple, run,
    cropped, and scaled back to the source size (or ``output_size``). On the CPU the graph runs
    rewritten for the kernels (``cpu_form``, see session.open_session). ``input_range``,
    ``channel_order`` and ``pad_multiple`` describe a foreign model (a model exported by rtnst says
    them in its metadata; given, they override it).
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        device: str = "auto",
        input_range: str | None = None,
        channel_order: str | None = None,
        pad_multiple: int | None = None,
        max_side_px: int | None = None,
        output_size: tuple[int, int] | None = None,
        preserve_color: bool = False,
        strength: float = 1.0,
        threads: int | None = None,
        spin: bool = True,
        cpu_form: bool = True,
    ) -> None:
        for param, value in (("max_side_px", max_side_px), ("pad_multiple", pad_multiple), ("threads", threads)):
            if value is not None and value < 1:  # 0 would otherwise mean "not given" further down
                raise OptionError(f"{param} must be a positive whole number, got {value}", param=param)
        self._session = open_session(model, device=device, threads=threads, spin=spin, cpu_form=cpu_form)
        self.info = inspect_model(self._session, Path(model), input_range=input_range,
                                  channel_order=channel_order, pad_multiple=pad_multiple)
        self.provider = self._session.get_providers()[0]
        if self.info.fixed_size:
            log.info("rtnst: %s takes only %dx%d images: every frame is resized to that and back%s",
                     self.info.path.name, *self.info.fixed_size, " (max_side_px does not apply)" if max_side_px else "")
        # A model made for one inference size (rtnst.max_side_px) runs at it unless told otherwise.
        self.max_side_px = max_side_px or self.info.native_max_side_px
        if output_size is not None and not all(1 <= side <= MAX_OUTPUT_SIDE_PX for side in output_size):
            raise OptionError(f"output_size must be between 1x1 and {MAX_OUTPUT_SIDE_PX}x{MAX_OUTPUT_SIDE_PX}, got "
                              f"{output_size[0]}x{output_size[1]}", param="output_size")
        self.output_size = output_size
        self.preserve_color = preserve_color
        self.strength = fr.check_strength(strength)
        self._scale = self.info.input_range.scale
        # Buffers bound to the session, one set per calling thread: frames may be stylised by
        # several threads at once (onnxruntime runs one session concurrently).
        self._local = threading.local()
        self._check_output_shape()

    def _check_output_shape(self) -> None:
        size = self.info.fixed_size or (self.info.pad_multiple * 4,) * 2
        probe = np.zeros((1, 3, size[1], size[0]), np.float32)
        try:
            out = self._session.run([self.info.output_name], {self.info.input_name: probe})[0]
        except Exception as exc:
            raise ModelError(f"{self.info.path}: the model fails on a (1, 3, {size[1]}, {size[0]}) image: "
                             f"{str(exc).strip().splitlines()[0][:200]}") from None
        if out.shape != probe.shape:
            raise ModelError(f"{self.info.path}: expected an image-to-image model whose output has its input's "
                             f"shape {probe.shape}, got {out.shape}")

    def _buffers(self, h: int, w: int) -> _Buffers:
        """This thread's input/output buffers for an inference size, bound once per size."""
        buf = getattr(self._local, "buffers", None)
        if buf is None or buf.shape != (h, w):
            buf = self._local.buffers = _Buffers(self._session, self.info, h, w)
        return buf

    def run_again(self) -> None:
        """Run the model once more on the input of this thread's last ``run_model`` call, leaving
        out the conversions around it: the model's own time, for benchmarks."""
        buf = getattr(self._local, "buffers", None)
        if buf is None:
            raise OptionError("run_again needs a run_model call first")
        self._session.run_with_iobinding(buf.binding)

    def inference_size(self, width: int, height: int) -> tuple[int, int]:
        return self.info.fixed_size or fr.fit_max_side(width, height, self.max_side_px)

    def scaled_only_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The size the model runs at for ``width``x``height`` frames, when ``stylize``'s output is
        no more than the model's output scaled up to the frame's size: a caller that can scale for
        free (a video encoder's colour conversion) may then pass frames at this size and take the
        output as it is. None when the full-size frame is needed (``strength`` < 1 and
        ``preserve_color`` blend with it), the output has a size of its own, the model takes one
        fixed size, or nothing would be scaled."""
        if self.info.fixed_size or self.output_size or self.preserve_color or self.strength < 1.0:
            return None
        size = self.inference_size(width, height)
        return size if size != (width, height) else None

    def run_model(self, frame: np.ndarray) -> np.ndarray:
        """The raw model on one frame at its own size: pad, run, crop. No resizing or blending."""
        h, w = frame.shape[:2]
        m, k = self.info.pad_multiple, self.info.margin_px
        # A side of a few pixels breaks models whose own reflect padding needs more than the side
        # ("pre-pad exceeds maximum"): such frames are padded up to MIN_SIDE_PX and cropped back.
        floor = max(MIN_SIDE_PX, 4 * m)
        ph, pw = (_round_up(max(h + 2 * k, floor), m) - h - 2 * k, _round_up(max(w + 2 * k, floor), m) - w - 2 * k)
        if ph or pw or k:
            mode = cv2.BORDER_REFLECT_101 if k + ph < h and k + pw < w else cv2.BORDER_REPLICATE
            frame = cv2.copyMakeBorder(frame, k, k + ph, k, k + pw, mode)
        buf = self._buffers(*frame.shape[:2])
        order = (2, 1, 0) if self.info.channel_order == "rgb" else (0, 1, 2)
        inv = 1.0 / 255.0 if self._scale == 1.0 else 1.0
        for dst, src in enumerate(order):
            np.multiply(frame[:, :, src], inv, out=buf.input[0, dst], casting="unsafe")
        self._session.run_with_iobinding(buf.binding)
        if not np.isfinite(buf.output.sum(dtype=np.float64)):  # one pass, ~0.3 ms at 640x360
            raise ModelError(f"{self.info.path.name} produced NaN or infinite values: the model is damaged or "
                             f"does not suit this input (input range {self.info.input_range})")
        planes = buf.output[0, :, k : k + h, k : k + w]
        # Both orders are their own inverse: BGR channel i is model channel order[i].
        out = cv2.merge([planes[order[i]] for i in range(3)])
        np.maximum(out, 0.0, out=out)
        return cv2.convertScaleAbs(out, alpha=255.0 / self._scale)

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise OptionError(f"the stylizer of {self.info.path.name} is closed")
        fr.check_frame(frame)
        src_h, src_w = frame.shape[:2]
        inf_w, inf_h = self.inference_size(src_w, src_h)
        styled = self.run_model(fr.resize(frame, (inf_w, inf_h)))
        out_size = self.output_size or (src_w, src_h)
        styled = fr.resize(styled, out_size)
        if self.preserve_color or self.strength < 1.0:
            source = fr.resize(frame, out_size)
            if self.preserve_color:
                styled = fr.preserve_color(source, styled)
            styled = fr.blend(source, styled, self.strength)
        return styled

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]
        self._local = threading.local()

    def __enter__(self) -> "OnnxStylizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_foreign(path: str | os.PathLike) -> bool:
    """True for a model that does not carry rtnst's conventions in its metadata (not exported by rtnst)."""
    session = open_session(path, device="cpu", announce=False, cpu_form=False)  # its metadata only
    return META_TIER not in session.get_modelmeta().custom_metadata_map
