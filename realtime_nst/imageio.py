"""Reading and writing still images as frames (HxWx3 uint8 BGR), with typed errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, OutputError
from .exif import with_exif
from .files import atomic_write, check_output_path
from .heif import HEIC_SUFFIXES, can_read_heic, cannot_read_advice, decode_heic
from .profiles import in_srgb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
if cv2.haveImageWriter("x.avif"):  # OpenCV builds with libavif (PyPI's since 4.11) read and write AVIF
    IMAGE_SUFFIXES.add(".avif")
ALPHA_SUFFIXES = {".png", ".webp"}  # the formats whose transparency is kept
# (OpenCV writes a TIFF's fourth channel without marking it as alpha: other programs do not read it so)
_PNG_HEAD_BYTES = 1 << 16  # where a PNG's first IDAT is looked for (else it is decoded twice)
log = logging.getLogger("rtnst")


def read_image(path: str | os.PathLike) -> np.ndarray:
    return _decode_frame(_read_bytes(path), Path(path))


def read_image_with_alpha(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame and the image's transparency (HxW uint8, 0 = transparent), or None when it has none
    or is opaque everywhere."""
    path = Path(path)
    data = _read_bytes(path)
    frame = _decode_frame(data, path)
    if not _may_have_alpha(data[:_PNG_HEAD_BYTES].tobytes()):
        return frame, None
    # A second decode: IMREAD_COLOR (above) gives the frame OpenCV's conversions (grey, 16-bit,
    # palette, EXIF orientation) but drops the alpha channel, which only IMREAD_UNCHANGED keeps.
    try:
        full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # a file damaged where only this decode reads it: the picture itself is fine
        full = None
    if full is None or full.ndim != 3 or full.shape[2] != 4:
        return frame, None
    if full.shape[:2] != frame.shape[:2]:
        log.warning("rtnst: %s: its transparency does not match its oriented picture; not kept", path)
        return frame, None
    alpha = full[:, :, 3]
    if alpha.dtype == np.uint16:
        alpha = (alpha >> 8).astype(np.uint8)
    elif alpha.dtype != np.uint8:
        alpha = (np.clip(alpha.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return frame, (np.ascontiguousarray(alpha) if alpha.min() < 255 else None)


def _may_have_alpha(head: bytes) -> bool:
    """From the file's first bytes: False when it cannot hold transparency, which spares an opaque
    PNG (the common case) the second decode."""
    if head.startswith(b"\x89PNG"):
        # IHDR's colour type (byte 25): 4 grey+alpha, 6 RGBA; any type may carry a tRNS chunk,
        # which comes before the first IDAT.
        idat = head.find(b"IDAT")
        return len(head) < 26 or head[25] in (4, 6) or idat < 0 or b"tRNS" in head[:idat]
    return _kind(head) in ("TIFF", "WebP")


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


# Cameras' raw sensor data. OpenCV's TIFF reader would return the small preview many of them (DNG,
# NEF, ARW) carry first, passed off as the photo; developing the raw data is a raw converter's job.
RAW_SUFFIXES = {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".erf", ".kdc", ".mrw", ".mos"}
RAW_ADVICE = "export it as JPEG, PNG or TIFF from a raw converter (Lightroom, darktable, the camera's app) first"


def not_read(suffix: str) -> tuple[str, str] | None:
    """For photos rtnst does not read, by suffix: (what they are, in the plural; what to do about them)."""
    suffix = suffix.lower()
    if suffix in RAW_SUFFIXES:
        return "camera RAW files", RAW_ADVICE.replace("export it", "export them")
    if suffix in HEIC_SUFFIXES and not can_read_heic():
        return "HEIC images", cannot_read_advice(many=True)
    return None


# ISO base media (HEIF) files: the major brand after "ftyp". iPhones save HEIC by default.
_HEIF_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", **dict.fromkeys(
    (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"), "HEIC")}


def _kind(head: bytes) -> str | None:
    """The image format a file's first bytes (48 or more) name, if any."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":  # an AVIF may give the generic HEIF brand first and "avif" among the others
        return "AVIF" if b"avif" in head[8:48] or b"avis" in head[8:48] else _HEIF_BRANDS.get(head[8:12])
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _is_video(head: bytes) -> bool:
    """From a file's first bytes: an MP4/MOV (not a HEIF still), Matroska/WebM or AVI file."""
    return ((head[4:8] == b"ftyp" and _kind(head) is None) or head.startswith(b"\x1a\x45\xdf\xa3")
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI "))


def _png_is_whole(data: np.ndarray) -> bool:
    """Whether the PNG's chunks run to its IEND chunk within the file (each chunk: length, type,
    data, CRC). Bytes after IEND, which some programs append, do not matter."""
    at, size = 8, data.size
    while at + 8 <= size:
        length = int.from_bytes(data[at:at + 4].tobytes(), "big")
        if data[at + 4:at + 8].tobytes() == b"IEND":
            return True
        at += 12 + length
    return False


def _read_bytes(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if not path.is_file():
        raise InputError(f"input {path} is not a file")
    try:
        return np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _decode_frame(data: np.ndarray, path: Path) -> np.ndarray:
    if path.suffix.lower() in RAW_SUFFIXES:
        raise InputError(f"{path} is a camera RAW file, which rtnst does not develop: {RAW_ADVICE}")
    kind = _kind(data[:48].tobytes())
    # libpng writes its own line to stderr for a cut-off file before OpenCV gives up on it
    if kind == "PNG" and not _png_is_whole(data):
        raise InputError(f"{path} is a truncated PNG image")
    if kind == "HEIC":
        frame, icc = decode_heic(data.tobytes(), path)
        return in_srgb(frame, data, kind, path, icc=icc)
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if frame is None and kind:
        raise InputError(f"{path} looks like a {kind} image, but OpenCV cannot decode it (damaged, truncated or a "
                         "variant it does not read)")
    if frame is None and _is_video(data[:48].tobytes()):
        raise InputError(f"{path} is a video, not a still image: rtnst video stylises it")
    if frame is None:
        raise InputError(f"{path} is not an image OpenCV can decode (expected one of "
                         f"{', '.join(sorted(readable_suffixes()))})")
    frame = in_srgb(frame, data, kind, path)
    if data[:4].tobytes() == b"GIF8" or path.suffix.lower() in (".tif", ".tiff"):  # may hold several pictures
        try:
            count = cv2.imcount(str(path))
        except cv2.error:
            count = 1
        if count > 1:
            animation = "; rtnst video stylises every frame of an animated GIF" if kind == "GIF" else ""
            log.warning("rtnst: %s holds %d frames (an animation or pages): only the first is used%s", path, count,
                        animation)
    elif is_animated_webp(data[:256].tobytes()):
        log.warning("rtnst: %s is an animated WebP: only its first frame is used", path)
    return frame


def is_animated_webp(head: bytes) -> bool:
    """From a file's first 256 bytes: a WebP animation (its ANIM chunk follows the VP8X header)."""
    return _kind(head) == "WebP" and b"ANIM" in head[:256]


def check_image_format(path: Path) -> None:
    """That write_image can encode ``path``'s format, told by its suffix."""
    suffix = path.suffix.lower()
    if suffix in HEIC_SUFFIXES:
        raise OutputError(f"cannot write {path}: rtnst reads HEIC but does not write it; use .jpg (or another of "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(f"cannot tell the image format of {path}: use one of {', '.join(sorted(IMAGE_SUFFIXES))}")


def write_image(path: str | os.PathLike, frame: np.ndarray, *, alpha: np.ndarray | None = None,
                overwrite: bool = False, exif: bytes | None = None) -> None:
    """Encode fully in memory, then write whole (files.atomic_write). ``alpha`` (HxW uint8), when
    given, is written as the image's transparency: the format must hold one (ALPHA_SUFFIXES).
    ``exif`` (exif.read_exif of the original) goes into a JPEG or PNG."""
    path = Path(path)
    # No write probe per image: callers probe the folder once before a run, and the write itself
    # reports a folder that refuses it.
    check_output_path(path, overwrite=overwrite, probe=False)
    check_image_format(path)
    suffix = path.suffix.lower()
    if alpha is not None:
        if suffix not in ALPHA_SUFFIXES:
            raise OutputError(f"{path} cannot hold transparency: use one of {', '.join(sorted(ALPHA_SUFFIXES))}")
        if alpha.shape != frame.shape[:2]:
            alpha = cv2.resize(alpha, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        frame = np.dstack([frame, alpha])
    ok, buf = cv2.imencode(suffix, frame)
    if not ok:
        raise OutputError(f"OpenCV could not encode {path}")
    data = with_exif(buf.tobytes(), suffix, exif) if exif else buf.tobytes()
    with atomic_write(path, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(data)


def readable_suffixes() -> set[str]:
    """The image files read_image reads: IMAGE_SUFFIXES, and HEIC where the heif extra is installed."""
    return IMAGE_SUFFIXES | HEIC_SUFFIXES if can_read_heic() else IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    pattern = "**/*" if recursive else "*"
    suffixes = readable_suffixes()
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in suffixes)
