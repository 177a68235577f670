"""A photo's EXIF (date taken, camera, place) carried into its stylised copy, so that photo libraries
sort and label it as they do the original. OpenCV's encoders write none."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger("rtnst")

_HEAD_BYTES = 1 << 17  # EXIF comes first in a JPEG, before the first IDAT in a PNG, in WebP's first chunks
_ORIENTATION, _EXIF_IFD, _MAKER_NOTE, _COLOUR_SPACE = 0x0112, 0x8769, 0x927C, 0xA001
KEEPS_EXIF = {".jpg", ".jpeg", ".png"}


def read_exif(path: Path) -> bytes | None:
    """The EXIF of the photo at ``path`` as an output should carry it ("Exif\\0\\0" + TIFF data), or
    None: the orientation is "upright" (rtnst reads pictures upright), the colour space sRGB (rtnst
    converts them to it), and the thumbnail (the original picture) and the maker's note (offsets into
    the original file) are left out."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError:
        return None
    if b"Exif" not in head and b"eXIf" not in head:  # untagged, the common case: no Pillow import
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a panorama's size, a damaged tag: the picture was read already
            try:
                im = Image.open(path)
            except UnidentifiedImageError:  # HEIC: Pillow reads it once the heif extra's plugin is registered
                try:
                    from pillow_heif import register_heif_opener
                except ImportError:
                    return None
                register_heif_opener()
                im = Image.open(path)
            with im:
                exif = im.getexif()
                if not exif:
                    return None
                if _ORIENTATION in exif:
                    exif[_ORIENTATION] = 1
                details = exif.get_ifd(_EXIF_IFD)
                details.pop(_MAKER_NOTE, None)
                if _COLOUR_SPACE in details:  # a P3 photo says "uncalibrated"; its copy is sRGB (profiles.py)
                    details[_COLOUR_SPACE] = 1
                return exif.tobytes()
    except Exception as exc:  # noqa: BLE001 - Pillow's many parse errors: the metadata is a nicety
        log.info("rtnst: %s: its EXIF could not be read (%s); the output carries none", path, exc)
        return None


def with_exif(encoded: bytes, suffix: str, exif: bytes) -> bytes:
    """An encoded JPEG or PNG (``suffix``) with ``exif`` (as read_exif gives it) in it."""
    suffix = suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        if len(exif) + 2 > 0xFFFF or not encoded.startswith(b"\xff\xd8"):
            return encoded  # too large for one APP1 segment
        return encoded[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + encoded[2:]
    if suffix == ".png":
        import zlib

        body = b"eXIf" + exif[6:]  # PNG's chunk holds the TIFF data without the "Exif\0\0" marker
        chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
        at = encoded.find(b"IDAT") - 4
        return encoded[:at] + chunk + encoded[at:] if at > 8 else encoded
    return encoded
