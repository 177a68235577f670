"""Colour spaces named by code points (ITU-T H.273, "CICP") instead of an embedded ICC profile: an
AVIF's or HEIF's ``nclx`` colour box, a PNG's ``cICP`` chunk. Browsers, libavif and Android phones
tag Display P3 or BT.2020 stills this way. A matrix-and-curves ICC profile is made for the code
points, so that profiles.py converts them to sRGB as it converts a photo with an embedded profile."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("rtnst")

D65 = (0.3127, 0.3290)
# colour_primaries -> red, green, blue and white chromaticities (x, y), H.273 table 2
PRIMARIES = {
    1: ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060), D65),  # BT.709, sRGB
    4: ((0.67, 0.33), (0.21, 0.71), (0.14, 0.08), (0.310, 0.316)),  # BT.470 System M
    5: ((0.64, 0.33), (0.29, 0.60), (0.15, 0.06), D65),  # BT.601 625 lines
    6: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), D65),  # BT.601 525 lines
    7: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), D65),  # SMPTE 240M
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), D65),  # BT.2020
    11: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.314, 0.351)),  # DCI-P3 (theatre white)
    12: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), D65),  # Display P3
}
SRGB_PRIMARIES, SRGB_TRANSFER, UNSPECIFIED = 1, 13, 2
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}
_D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


@dataclass(frozen=True)
class CodePoints:
    primaries: int
    transfer: int
    matrix: int


def find_code_points(kind: str | None, head: bytes) -> CodePoints | None:
    """The code points in a file's first bytes: an AVIF or HEIF ``colr`` box of type ``nclx``, or a
    PNG ``cICP`` chunk (which takes precedence over the PNG's ICC profile)."""
    if kind in ("AVIF", "HEIC"):
        at = head.find(b"colrnclx")
        fields = head[at + 8:at + 14] if at >= 0 else b""
        if len(fields) == 6:
            return CodePoints(*struct.unpack(">HHH", fields))
    elif kind == "PNG":
        at = head.find(b"cICP")
        if at >= 4 and head[at - 4:at] == b"\0\0\0\x04" and len(head) >= at + 8:
            return CodePoints(head[at + 4], head[at + 5], head[at + 6])
    return None


def profile_for(points: CodePoints, path: Path) -> bytes | None:
    """An ICC profile of the colour space the code points name, or None where the picture is sRGB
    already (or the code points say nothing rtnst can use)."""
    primaries = SRGB_PRIMARIES if points.primaries == UNSPECIFIED else points.primaries
    if points.transfer in HDR_TRANSFERS:
        log.warning("rtnst: %s is an HDR picture (%s): read without tone mapping, its colours come out flat", path,
                    HDR_TRANSFERS[points.transfer])
        return None
    curve = _curve(points.transfer)
    if primaries not in PRIMARIES or curve is None:
        if (primaries, points.transfer) != (SRGB_PRIMARIES, UNSPECIFIED):
            log.warning("rtnst: %s: its colour code points (primaries %d, transfer %d) are not ones rtnst knows; "
                        "its colours are taken as sRGB", path, points.primaries, points.transfer)
        return None
    if primaries == SRGB_PRIMARIES and points.transfer in (SRGB_TRANSFER, UNSPECIFIED):
        return None
    return matrix_profile(colorants_d50(PRIMARIES[primaries]), curve,
                          name=f"CICP primaries {points.primaries}, transfer {points.transfer}")


def _curve(transfer: int) -> np.ndarray | None:
    """The transfer function's decoding (signal -> linear light), sampled at 1024 points."""
    v = np.linspace(0.0, 1.0, 1024)
    if transfer in (SRGB_TRANSFER, UNSPECIFIED):
        return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    if transfer in (1, 6, 14, 15):  # BT.709 and the standards that share its curve: its OETF inverted
        return np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))
    if transfer in (4, 5):  # BT.470 M and B/G: plain powers
        return v ** (2.2 if transfer == 4 else 2.8)
    if transfer == 8:
        return v
    return None


def colorants_d50(chromaticities) -> np.ndarray:
    """The red, green and blue colorants' XYZ (rows), adapted to ICC's D50 white (Bradford)."""
    xy = np.array(chromaticities[:3])
    p = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy.sum(1)) / xy[:, 1]])  # columns: each primary at Y 1
    wx, wy = chromaticities[3]
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    to_xyz = p * np.linalg.solve(p, white)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ _D50) / (_BRADFORD @ white)) @ _BRADFORD
    return (adapt @ to_xyz).T


def matrix_profile(colorants, curve: float | np.ndarray, *, name: str) -> bytes:
    """A minimal ICC v2 display profile: the colorants' XYZ (D50, rows) and one tone curve for all
    three channels (a gamma, or linear light sampled evenly over the signal's range)."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(float(v) * 65536))

    def xyz(values) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    text = name.encode("ascii", "replace") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 78
    if np.isscalar(curve):
        trc = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(float(curve) * 256))
    else:
        table = np.round(np.clip(curve, 0.0, 1.0) * 65535).astype(">u2")
        trc = b"curv\0\0\0\0" + struct.pack(">I", table.size) + table.tobytes()
    tags = [(b"desc", desc), (b"wtpt", xyz(_D50)), (b"rXYZ", xyz(colorants[0])), (b"gXYZ", xyz(colorants[1])),
            (b"bXYZ", xyz(colorants[2])), (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    offset = 128 + 4 + 12 * len(tags)
    directory, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        directory += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    header = (struct.pack(">I", offset + len(body)) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + b"".join(s15(v) for v in _D50) + b"\0" * 48)
    return header + directory + body
