"""Images with an embedded colour profile are read in sRGB, the space the models work in."""

from __future__ import annotations

import io

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
