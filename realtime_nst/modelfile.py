"""The model-file contract: what an ONNX style model exported by rtnst says about itself in its
metadata (written by training/export.py, read by runtime/stylizer.py), and the small value types
for its conventions. Foreign models carry none of it; the user gives the conventions instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelError, OptionError

META_INPUT_RANGE = "rtnst.input_range"  # InputRange
META_CHANNEL_ORDER = "rtnst.channel_order"  # ChannelOrder
META_PAD_MULTIPLE = "rtnst.pad_multiple"  # sides must be multiples of this
META_MARGIN = "rtnst.margin_px"  # reflect-pad this much around a frame and crop it off (border artefacts)
META_MAX_SIDE = "rtnst.max_side_px"  # native inference size: the long side the net was made to run at
META_STYLE = "rtnst.style"
META_STYLE_IMAGE = "rtnst.style_image"
META_TIER = "rtnst.tier"  # Tier
META_PRECISION = "rtnst.precision"  # fp32 | fp16 | int8
META_SMOOTH_STRENGTH = "rtnst.smooth_strength"  # --smooth-strength measured for this model (tools/)
DEFAULT_PAD_MULTIPLE = 8  # covers nets with up to three stride-2 stages when a foreign model says nothing


class Choice(str, enum.Enum):
    """A string value type: compares equal to its text, and ``parse`` names the parameter when the
    text is none of the choices."""

    @classmethod
    def parse(cls, value: str, *, param: str):
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise OptionError(f"{param} must be one of {choices}, got {value!r}", param=param) from None

    def __str__(self) -> str:
        return self.value


class InputRange(Choice):
    """The pixel range a model takes and returns."""

    BYTE = "0-255"
    UNIT = "0-1"

    @property
    def scale(self) -> float:
        return 255.0 if self is InputRange.BYTE else 1.0


class ChannelOrder(Choice):
    RGB = "rgb"
    BGR = "bgr"


class Tier(Choice):
    """Our two kinds of network: ``quality`` (Johnson et al.'s) and ``realtime`` (for CPUs)."""

    QUALITY = "quality"
    REALTIME = "realtime"


@dataclass
class ModelInfo:
    """What the runtime knows of a model: from its graph, its metadata and the user's overrides."""

    path: Path
    input_name: str
    output_name: str
    input_range: InputRange
    channel_order: ChannelOrder
    pad_multiple: int
    fixed_size: tuple[int, int] | None  # (w, h) when the model only takes one size
    margin_px: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def style(self) -> str:
        return self.metadata.get(META_STYLE, self.path.stem)

    @property
    def native_max_side_px(self) -> int | None:
        """The long side the model was made to run at (None: any size, the frame's own)."""
        return _positive_int(self.metadata.get(META_MAX_SIDE))

    @property
    def smooth_strength(self) -> float | None:
        """The smoothing strength measured for this model, if its metadata carries one."""
        try:
            value = float(self.metadata[META_SMOOTH_STRENGTH])
        except (KeyError, ValueError):
            return None
        return value if 0.0 <= value <= 1.0 else None


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def update_metadata(path: str | Path, meta: dict[str, str]) -> None:
    """Set ``meta`` in the ONNX file at ``path`` (other keys kept), rewritten atomically; needs the onnx
    package (train extra). The graph and weights are left as they are."""
    import onnx

    from .files import atomic_write

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # a missing file, or protobuf's DecodeError for one that is no model
        raise ModelError(f"{path} is not an ONNX model ({exc})") from None
    write_metadata(model, meta)
    with atomic_write(path) as tmp:
        onnx.save(model, str(tmp))


def write_metadata(model, meta: dict[str, str]) -> None:
    """Set ``meta`` on an ``onnx.ModelProto`` (other keys kept); needs the onnx package (train extra)."""
    import onnx

    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep + [onnx.StringStringEntryProto(key=k, value=v) for k, v in meta.items()])
    if META_TIER in meta:
        model.doc_string = f"rtnst {meta[META_TIER]} style model: {meta.get(META_STYLE, '')}"
