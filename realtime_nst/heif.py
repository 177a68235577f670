"""HEIC / HEIF photos, an iPhone's default format, which OpenCV cannot decode: read through libheif
when the ``heif`` extra (pillow-heif) is installed, else named with what to do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .errors import InputError

HEIC_SUFFIXES = {".heic", ".heif"}
INSTALL_HINT = "pip install 'realtime_nst[heif]'"
SAVE_AS_JPEG = "save it as JPEG (an iPhone takes JPEG photos with Settings > Camera > Formats > Most Compatible)"
WRITTEN_AS = ".jpg"  # what a HEIC input becomes in an output folder: rtnst cannot encode HEIC


def can_read_heic() -> bool:
    """Whether pillow-heif is installed (looked up, not imported: a folder listing asks)."""
    try:
        return importlib.util.find_spec("pillow_heif") is not None
    except ValueError:  # sys.modules holds None for it: its import is blocked
        return False


def cannot_read_advice(*, many: bool = False) -> str:
    """What to do about HEIC files when pillow-heif is not installed."""
    advice = f"install the heif extra to read {'them' if many else 'it'} ({INSTALL_HINT}), or {SAVE_AS_JPEG}"
    return advice.replace("save it", "save them") if many else advice


def decode_heic(data: bytes, path: Path) -> tuple[np.ndarray, bytes | None]:
    """The primary picture of a HEIF file as a frame (HxWx3 uint8 BGR) upright (libheif applies the
    file's rotation and mirroring), and its ICC profile, if any. 10-bit pictures (an iPhone's HDR
    photos) are scaled to 8 bits."""
    try:
        import pillow_heif
    except ImportError:
        raise InputError(f"{path} is a HEIC image, which OpenCV cannot decode: {cannot_read_advice()}") from None
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        pixels = np.asarray(heif)
    except (ValueError, RuntimeError, OSError) as exc:  # libheif's errors, as pillow-heif raises them
        raise InputError(f"{path} looks like a HEIC image, but libheif cannot decode it ({exc})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype != np.uint8 or pixels.shape[2] not in (1, 3, 4):
        raise InputError(f"{path}: expected an 8-bit grey or colour HEIC picture, got {heif.mode} pixels")
    if pixels.shape[2] == 1:
        frame = np.repeat(pixels, 3, axis=2)
    else:  # a picture's alpha plane (rare in photos) is dropped, as OpenCV's colour decode does
        frame = np.ascontiguousarray(pixels[:, :, 2::-1])
    return frame, heif.info.get("icc_profile") or None
