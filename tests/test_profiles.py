"""Images with an embedded colour profile are read in sRGB, the space the models work in."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from fakes import DISPLAY_P3_D50, rgb_profile
from PIL import Image, ImageCms, features

from realtime_nst.imageio import IMAGE_SUFFIXES, read_image

COLOUR = (180, 120, 100)  # RGB: a skin tone, in the file's own colour space


def _tagged(path, icc: bytes | None, **save) -> np.ndarray:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:] = COLOUR
    Image.fromarray(rgb).save(path, icc_profile=icc, **save)
    return rgb


@pytest.mark.parametrize("name, save", [("p3.png", {}), ("p3.jpg", {"quality": 100}), ("p3.webp", {"lossless": True}),
                                        ("p3.tif", {}), ("p3.avif", {"quality": 100})])
def test_a_display_p3_photo_is_read_in_srgb(tmp_path, name, save, caplog):
    if name.endswith(".avif") and not (".avif" in IMAGE_SUFFIXES and features.check("avif")):
        pytest.skip("this OpenCV or Pillow build has no AVIF")
    icc = rgb_profile(DISPLAY_P3_D50)
    rgb = _tagged(tmp_path / name, icc, **save)
    to_srgb = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                      "RGB", "RGB")
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), to_srgb))[0, 0].astype(int)
    with caplog.at_level("INFO", logger="rtnst"):
        got = read_image(tmp_path / name)[0, 0, ::-1].astype(int)
    assert np.abs(got - expected).max() <= 2
    assert got[0] - COLOUR[0] >= 8  # P3's values read raw as sRGB would be this much less saturated


def test_an_srgb_profile_leaves_the_values_as_they_are(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _tagged(tmp_path / "s.png", srgb)
    assert tuple(read_image(tmp_path / "s.png")[0, 0, ::-1]) == COLOUR


def test_a_damaged_profile_is_said_and_the_colours_taken_as_srgb(tmp_path, caplog):
    _tagged(tmp_path / "bad.png", b"\0" * 200)
    with caplog.at_level("WARNING", logger="rtnst"):
        assert tuple(read_image(tmp_path / "bad.png")[0, 0, ::-1]) == COLOUR
    assert "colour profile cannot be read" in caplog.text


def test_avif_is_read_and_written(tmp_path, identity):
    from realtime_nst.cli import main

    if ".avif" not in IMAGE_SUFFIXES:
        pytest.skip("this OpenCV build has no AVIF")
    _tagged(tmp_path / "in.avif", None, quality=100)
    assert main(["-q", "image", str(tmp_path), str(tmp_path / "out"), "--model", str(identity)]) == 0
    out = read_image(tmp_path / "out" / "in.avif")  # found in the folder, written in its own format
    assert out.shape == (16, 24, 3) and np.abs(out[4:-4, 4:-4, ::-1].astype(int) - COLOUR).max() <= 12


# Display P3 (180, 120, 100) in sRGB, as LittleCMS converts it with Apple's profile (sRGB's curve)
P3_IN_SRGB = (190, 117, 96)


def _with_code_points(path, primaries: int, transfer: int) -> None:
    """Rewrites the nclx colour box an AVIF or HEIF encoder wrote (BT.709 / sRGB)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"colrnclx") + 8
    assert at >= 8, "the encoder wrote no nclx box"
    data[at:at + 4] = struct.pack(">HH", primaries, transfer)
    path.write_bytes(bytes(data))


def _png_with_cicp(path, rgb: np.ndarray, primaries: int, transfer: int) -> None:
    png = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()
    body = b"cICP" + bytes([primaries, transfer, 0, 1])
    chunk = struct.pack(">I", 4) + body + struct.pack(">I", zlib.crc32(body))
    at = png.find(b"IDAT") - 4
    path.write_bytes(png[:at] + chunk + png[at:])


def _picture(path, name: str, primaries: int, transfer: int) -> None:
    rgb = np.full((16, 24, 3), COLOUR, np.uint8)
    if name.endswith(".png"):
        return _png_with_cicp(path, rgb, primaries, transfer)
    if name.endswith(".avif"):
        if not (".avif" in IMAGE_SUFFIXES and features.check("avif")):
            pytest.skip("this OpenCV or Pillow build has no AVIF")
        Image.fromarray(rgb).save(path, quality=100)
    else:
        pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")
        pillow_heif.from_pillow(Image.fromarray(rgb)).save(path, quality=-1)
    _with_code_points(path, primaries, transfer)


@pytest.mark.parametrize("name", ["p3.avif", "p3.heic", "p3.png"])
def test_display_p3_named_by_code_points_is_read_in_srgb(tmp_path, name):
    _picture(tmp_path / name, name, 12, 13)  # Display P3's primaries, sRGB's curve: a browser's or phone's P3
    got = read_image(tmp_path / name)[8, 12, ::-1].astype(int)
    assert np.abs(got - P3_IN_SRGB).max() <= 3, got


@pytest.mark.parametrize("primaries, transfer, said", [(1, 13, ""), (2, 2, ""), (9, 16, "HDR picture (PQ)"),
                                                       (22, 13, "not ones rtnst knows")])
def test_code_points_of_srgb_hdr_or_unknown_leave_the_values(tmp_path, caplog, primaries, transfer, said):
    _picture(tmp_path / "p.png", "p.png", primaries, transfer)
    with caplog.at_level("WARNING", logger="rtnst"):
        assert tuple(read_image(tmp_path / "p.png")[0, 0, ::-1]) == COLOUR
    assert said in caplog.text and (said or not caplog.text)


def test_bt2020_code_points_are_converted_too(tmp_path):
    _picture(tmp_path / "wide.png", "wide.png", 9, 1)  # BT.2020's primaries, BT.709's curve
    got = read_image(tmp_path / "wide.png")[0, 0, ::-1].astype(int)
    # independently: BT.709's OETF inverted, ITU-R BT.2087's BT.2020 -> BT.709 matrix, sRGB's curve
    v = np.array(COLOUR) / 255
    linear = np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))
    to_709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]])
    srgb = np.clip(to_709 @ linear, 0, 1)
    expected = 255 * np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)
    assert np.abs(got - expected).max() <= 2, (got, expected)
