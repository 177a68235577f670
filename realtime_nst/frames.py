"""Frame helpers. A ``frame`` is always HxWx3 uint8 BGR; a ``batch`` always NCHW float32."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import OptionError


def check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}"
        raise OptionError(f"expected a frame as HxWx3 uint8 BGR, got {got}")


def fit_max_side(width: int, height: int, max_side_px: int | None) -> tuple[int, int]:
    """Size (w, h) scaled down, aspect kept, so the long side is at most ``max_side_px``."""
    if not max_side_px or max(width, height) <= max_side_px:
        return width, height
    scale = max_side_px / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (w, h): area filter when shrinking (no aliasing), bicubic when enlarging."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    shrinking = size[0] < frame.shape[1]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def preserve_color(source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
    Transfer"): keep the stylised Y channel and the source's chroma (YCrCb)."""
    styl = cv2.cvtColor(stylized, cv2.COLOR_BGR2YCrCb)
    src = cv2.cvtColor(source, cv2.COLOR_BGR2YCrCb)
    src[..., 0] = styl[..., 0]
    return cv2.cvtColor(src, cv2.COLOR_YCrCb2BGR)


def blend(source: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` 1 is the stylised frame, 0 the source."""
    if strength >= 1.0:
        return stylized
    if strength <= 0.0:
        return source
    return cv2.addWeighted(stylized, strength, source, 1.0 - strength, 0.0)


def check_strength(strength: float) -> float:
    if not 0.0 <= strength <= 1.0:
        raise OptionError(f"strength must be between 0 and 1, got {strength}", param="strength")
    return float(strength)


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"expected a size as WIDTHxHEIGHT (e.g. 1280x720), got {text!r}") from None
    if w <= 0 or h <= 0:
        raise OptionError(f"a size must be positive, got {text!r}")
    return w, h


def video_matrix(height: int) -> str:
    """The YUV<->RGB matrix players assume for video that carries no colour tag (PyAV/swscale name):
    BT.709 from 720 lines up (HD), BT.601 below. Decoding and encoding by it makes an untagged file
    look in a player as it looked in ours."""
    return "ITU709" if height >= 720 else "ITU601"
