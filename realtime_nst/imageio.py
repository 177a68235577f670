"""Reading and writing still images as frames (HxWx3 uint8 BGR), with typed errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, OutputError
from .files import atomic_write, check_output_path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
log = logging.getLogger("rtnst")


def read_image(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if not path.is_file():
        raise InputError(f"input {path} is not a file")
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if frame is None:
        raise InputError(f"{path} is not an image OpenCV can decode (expected one of {', '.join(sorted(IMAGE_SUFFIXES))})")
    if data[:4].tobytes() == b"GIF8" or path.suffix.lower() in (".tif", ".tiff"):  # may hold several pictures
        try:
            count = cv2.imcount(str(path))
        except cv2.error:
            count = 1
        if count > 1:
            log.warning("rtnst: %s holds %d frames (an animation or pages): only the first is used", path, count)
    return frame


def write_image(path: str | os.PathLike, frame: np.ndarray, *, overwrite: bool = False) -> None:
    """Encode fully in memory, then write whole (files.atomic_write)."""
    path = Path(path)
    # No write probe per image: callers probe the folder once before a run, and the write itself
    # reports a folder that refuses it.
    check_output_path(path, overwrite=overwrite, probe=False)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(f"cannot tell the image format of {path}: use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    ok, buf = cv2.imencode(suffix, frame)
    if not ok:
        raise OutputError(f"OpenCV could not encode {path}")
    with atomic_write(path) as tmp:
        buf.tofile(tmp)


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
