"""Still images in another RGB colour space than sRGB (an embedded ICC profile: a phone's Display P3,
a camera's Adobe RGB) to sRGB, the space the models were trained in and in which outputs are written
(untagged, as sRGB is assumed). Read raw, a P3 photo's values shown as sRGB look washed out, and so
did its stylised colours and a --preserve-color result."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np

from .cicp import find_code_points, profile_for

log = logging.getLogger("rtnst")

# Where each format keeps its profile, found in the file's first bytes so that an untagged image
# (the common case) costs no Pillow import. TIFF keeps it in a tag anywhere: Pillow looks.
_MARKERS = {"JPEG": b"ICC_PROFILE\x00", "PNG": b"iCCP", "WebP": b"ICCP", "AVIF": b"colrprof"}
PROFILE_HEAD_BYTES = 1 << 17  # a JPEG's APP2 follows an EXIF segment of up to 64 KiB
_CONVERSIONS: dict[bytes, object | None] = {}  # profile digest -> its transform to sRGB, None: already sRGB


def in_srgb(frame: np.ndarray, data: np.ndarray, kind: str | None, path: Path, *,
            icc: bytes | None = None) -> np.ndarray:
    """``frame`` (BGR, decoded from the file's bytes ``data``; ``kind`` as imageio._kind names it) in
    sRGB, by the colour space the file states: an embedded ICC profile (``icc``, where the decoder
    gave it already) or code points (cicp.py). A PNG's code points take precedence over its profile;
    an AVIF's or HEIF's profile over its code points, which also carry the YCbCr matrix."""
    head = data[:PROFILE_HEAD_BYTES].tobytes()
    points = find_code_points(kind, head)
    if points is not None and (kind == "PNG" or not (icc or may_have_profile(kind, head))):
        return profile_to_srgb(frame, profile_for(points, path), path)
    if icc:
        return profile_to_srgb(frame, icc, path)
    return to_srgb(frame, data.tobytes(), path) if may_have_profile(kind, head) else frame


def may_have_profile(kind: str | None, head: bytes) -> bool:
    """From the image's kind (imageio._kind) and first bytes: whether it may carry an ICC profile."""
    return kind == "TIFF" or (kind in _MARKERS and _MARKERS[kind] in head[:PROFILE_HEAD_BYTES])


def to_srgb(frame: np.ndarray, data: bytes, path: Path) -> np.ndarray:
    """``frame`` (BGR, decoded from ``data``) in sRGB: converted where the file embeds an RGB profile
    that is not sRGB, else as it is. A profile that cannot be read is said and ignored."""
    from PIL import Image  # Pillow's LittleCMS; only tagged images get here

    try:
        with warnings.catch_warnings():  # only the header is read: a panorama's size is no bomb here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                icc = im.info.get("icc_profile")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return _unreadable(frame, path, exc)
    return profile_to_srgb(frame, icc, path)


def profile_to_srgb(frame: np.ndarray, icc: bytes | None, path: Path) -> np.ndarray:
    """``frame`` (BGR) taken from an image whose embedded ICC profile is ``icc`` (None: untagged), in sRGB."""
    if not icc:
        return frame
    from PIL import Image, ImageCms

    try:
        digest = hashlib.sha1(icc).digest()
        if digest not in _CONVERSIONS:
            _CONVERSIONS[digest] = _transform(icc)
        transform = _CONVERSIONS[digest]
        if transform is None:
            return frame
        rgb = Image.fromarray(np.ascontiguousarray(frame[:, :, ::-1]))
        out = np.asarray(ImageCms.applyTransform(rgb, transform))[:, :, ::-1]
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        return _unreadable(frame, path, exc)
    return np.ascontiguousarray(out)


def _unreadable(frame: np.ndarray, path: Path, exc: Exception) -> np.ndarray:
    log.warning("rtnst: %s: its colour profile cannot be read (%s); its colours are taken as sRGB", path, exc)
    return frame


def _transform(icc: bytes):
    """The profile's transform to sRGB, or None for a profile that is not RGB or is sRGB already
    (every colour of a 6x6x6 cube within one level: sRGB's many variants, such as the black-scaled
    one, included)."""
    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if profile.profile.xcolor_space.strip() != "RGB":  # grey and CMYK: OpenCV's own conversion stands
        return None
    # Perceptual where the profile has tables for it; LittleCMS falls back to relative colorimetric
    # for matrix profiles (Display P3, Adobe RGB), which clips what sRGB cannot show.
    transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.PERCEPTUAL)
    levels = np.linspace(0, 255, 6).astype(np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    moved = np.abs(np.asarray(ImageCms.applyTransform(Image.fromarray(cube), transform)).astype(int) - cube)
    if moved.max() <= 1:
        return None
    log.info("rtnst: images with the colour profile %r are converted to sRGB",
             ImageCms.getProfileDescription(profile).strip())
    return transform
