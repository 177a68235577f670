"""The stylizer: runs an image-to-image ONNX style model on frames with onnxruntime."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from . import frames as fr
from .errors import ModelError, OptionError

log = logging.getLogger("rtnst")

# Metadata keys our exported models carry (``rtnst export``); foreign models get flags instead.
META_INPUT_RANGE = "rtnst.input_range"  # "0-255" | "0-1"
META_CHANNEL_ORDER = "rtnst.channel_order"  # "rgb" | "bgr"
META_PAD_MULTIPLE = "rtnst.pad_multiple"
META_STYLE = "rtnst.style"
META_TIER = "rtnst.tier"
META_MARGIN = "rtnst.margin_px"  # reflect-pad this much around a frame and crop it off (border artefacts)
META_SMOOTH_STRENGTH = "rtnst.smooth_strength"  # --smooth-strength measured for this model (tools/)
DEFAULT_PAD_MULTIPLE = 8  # covers nets with up to three stride-2 stages when a foreign model says nothing

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


@runtime_checkable
class Stylizer(Protocol):
    """Anything that turns a frame into a stylised frame of the same size."""

    def stylize(self, frame: np.ndarray) -> np.ndarray: ...


@dataclass
class ModelInfo:
    path: Path
    input_name: str
    output_name: str
    input_range: str
    channel_order: str
    pad_multiple: int
    fixed_size: tuple[int, int] | None  # (w, h) when the model only takes one size
    margin_px: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def style(self) -> str:
        return self.metadata.get(META_STYLE, self.path.stem)

    @property
    def smooth_strength(self) -> float | None:
        """The smoothing strength measured for this model, if its metadata carries one."""
        try:
            value = float(self.metadata[META_SMOOTH_STRENGTH])
        except (KeyError, ValueError):
            return None
        return value if 0.0 <= value <= 1.0 else None


def choose_providers(device: str, available: list[str]) -> tuple[list[str], str]:
    """Providers to try for ``device`` (auto = TensorRT > CUDA > CPU), and why, for the log line."""
    if device not in ("auto", *PROVIDERS):
        raise OptionError(f"--device must be auto, cpu, cuda or tensorrt, got {device!r}")
    order = ["tensorrt", "cuda", "cpu"]
    wanted = order if device == "auto" else order[order.index(device):]
    chosen = [PROVIDERS[d] for d in wanted if PROVIDERS[d] in available]
    if PROVIDERS["cpu"] not in chosen:
        chosen.append(PROVIDERS["cpu"])
    note = ""
    if device not in ("auto", "cpu") and PROVIDERS[device] not in available:
        note = f" ({device} requested but not available; pip install 'realtime_nst[gpu]' and check the CUDA drivers)"
    return chosen, note


def _session_options(threads: int | None, *, spin: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # One thread per core: hyper-threads and oversubscription both slow convolutions down.
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    # Spinning wins the last few % of a model-only benchmark but steals the cores that decoding and
    # encoding threads need in the video pipeline.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.log_severity_level = 3
    return opts


def inspect_model(session, path: Path, *, input_range: str | None, channel_order: str | None,
                  pad_multiple: int | None) -> ModelInfo:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelError(f"{path}: expected one image input and one output, got {len(inputs)} inputs and {len(outputs)} outputs")
    shape = inputs[0].shape
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ModelError(f"{path}: expected an input of shape (N, 3, H, W), got {tuple(shape)}")
    if "float" not in inputs[0].type:
        raise ModelError(f"{path}: expected a float32 input, got {inputs[0].type}")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    rng = input_range or meta.get(META_INPUT_RANGE, "0-255")
    order = channel_order or meta.get(META_CHANNEL_ORDER, "rgb")
    if rng not in ("0-255", "0-1"):
        raise OptionError(f"--input-range must be 0-255 or 0-1, got {rng!r}")
    if order not in ("rgb", "bgr"):
        raise OptionError(f"--channel-order must be rgb or bgr, got {order!r}")
    multiple = pad_multiple or int(meta.get(META_PAD_MULTIPLE, DEFAULT_PAD_MULTIPLE))
    if multiple < 1:
        raise OptionError(f"--pad-multiple must be at least 1, got {multiple}")
    fixed = (shape[3], shape[2]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
    margin = 0 if fixed else int(meta.get(META_MARGIN, 0))
    return ModelInfo(path, inputs[0].name, outputs[0].name, rng, order, multiple, fixed, margin, meta)


def open_session(path: str | os.PathLike, *, device: str = "auto", threads: int | None = None, spin: bool = True):
    """An onnxruntime InferenceSession with typed errors and one log line naming the provider used."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    providers, note = choose_providers(device, ort.get_available_providers())
    try:
        session = ort.InferenceSession(str(path), _session_options(threads, spin=spin), providers=providers)
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, NoSuchFile, RuntimeException...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a usable ONNX model: {first[:200]}") from None
    log.info("rtnst: %s runs on %s%s", path.name, session.get_providers()[0], note)
    return session


class OnnxStylizer:
    """Stylises frames of any size with an image-to-image ONNX model.

    Frames are scaled so the long side is at most ``max_side_px`` for inference, padded (reflected) to
    the model's multiple, run, cropped, and scaled back to the source size (or ``output_size``).
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
    ) -> None:
        for flag, value in (("--max-side", max_side_px), ("--pad-multiple", pad_multiple), ("--threads", threads)):
            if value is not None and value < 1:  # 0 would otherwise mean "not given" further down
                raise OptionError(f"{flag} must be a positive whole number, got {value}")
        self._session = open_session(model, device=device, threads=threads, spin=spin)
        self.info = inspect_model(self._session, Path(model), input_range=input_range,
                                  channel_order=channel_order, pad_multiple=pad_multiple)
        self.provider = self._session.get_providers()[0]
        self.max_side_px = max_side_px
        self.output_size = output_size
        self.preserve_color = preserve_color
        self.strength = fr.check_strength(strength)
        self._scale = 255.0 if self.info.input_range == "0-255" else 1.0
        self._binding = self._session.io_binding()
        self._shape: tuple[int, int] | None = None
        self._in = self._out = np.empty(0, np.float32)
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

    def _bind(self, h: int, w: int) -> None:
        """(Re)allocate input/output buffers for an inference size and bind them once."""
        self._in = np.empty((1, 3, h, w), np.float32)
        self._out = np.empty((1, 3, h, w), np.float32)
        b = self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        b.bind_input(self.info.input_name, "cpu", 0, np.float32, self._in.shape, self._in.ctypes.data)
        b.bind_output(self.info.output_name, "cpu", 0, np.float32, self._out.shape, self._out.ctypes.data)
        self._shape = (h, w)

    def inference_size(self, width: int, height: int) -> tuple[int, int]:
        return self.info.fixed_size or fr.fit_max_side(width, height, self.max_side_px)

    def run_model(self, frame: np.ndarray) -> np.ndarray:
        """The raw model on one frame at its own size: pad, run, crop. No resizing or blending."""
        h, w = frame.shape[:2]
        m, k = self.info.pad_multiple, self.info.margin_px
        ph, pw = (-(h + 2 * k)) % m, (-(w + 2 * k)) % m
        if ph or pw or k:
            mode = cv2.BORDER_REFLECT_101 if k + ph < h and k + pw < w else cv2.BORDER_REPLICATE
            frame = cv2.copyMakeBorder(frame, k, k + ph, k, k + pw, mode)
        if self._shape != frame.shape[:2]:
            self._bind(*frame.shape[:2])
        order = (2, 1, 0) if self.info.channel_order == "rgb" else (0, 1, 2)
        inv = 1.0 / 255.0 if self._scale == 1.0 else 1.0
        for dst, src in enumerate(order):
            np.multiply(frame[:, :, src], inv, out=self._in[0, dst], casting="unsafe")
        self._session.run_with_iobinding(self._binding)
        planes = self._out[0, :, k : k + h, k : k + w]
        # Both orders are their own inverse: BGR channel i is model channel order[i].
        out = cv2.merge([planes[order[i]] for i in range(3)])
        np.maximum(out, 0.0, out=out)
        return cv2.convertScaleAbs(out, alpha=255.0 / self._scale)

    def stylize(self, frame: np.ndarray) -> np.ndarray:
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
        self._binding = None

    def __enter__(self) -> "OnnxStylizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
