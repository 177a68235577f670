"""HEIC photos (an iPhone's default) are read through the heif extra, or named with what to do."""

from __future__ import annotations

import io
import sys

import cv2
import numpy as np
import pytest
from fakes import DISPLAY_P3_D50, rgb_profile
from PIL import Image, ImageCms

from realtime_nst.cli import main
from realtime_nst.imageio import list_images, read_image

pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")

NOT_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def _heic(path, rgb: np.ndarray, **save) -> None:
    pillow_heif.from_pillow(Image.fromarray(rgb)).save(path, quality=-1, **save)  # -1: lossless


def _halves(height: int = 32, width: int = 48) -> np.ndarray:
    """RGB: red on the left, blue on the right."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (200, 30, 30)
    rgb[:, width // 2:] = (30, 30, 200)
    return rgb


def test_a_heic_photo_is_read_as_a_frame(tmp_path):
    rgb = _halves()
    _heic(tmp_path / "IMG_0001.HEIC", rgb)
    frame = read_image(tmp_path / "IMG_0001.HEIC")
    assert frame.shape == (32, 48, 3) and frame.dtype == np.uint8
    assert np.abs(frame[:, :, ::-1].astype(int) - rgb).mean() < 4  # BGR, as every frame


def test_a_heic_photo_is_turned_upright_as_stored(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise for display; libheif stores it as the file's rotation
    _heic(tmp_path / "r.heic", _halves(), exif=exif.tobytes())
    frame = read_image(tmp_path / "r.heic")
    assert frame.shape == (48, 32, 3)
    assert frame[2, 16, 2] > 150 and frame[-3, 16, 0] > 150  # red now on top, blue at the bottom


def test_a_display_p3_heic_is_read_in_srgb(tmp_path):
    icc = rgb_profile(DISPLAY_P3_D50)
    rgb = np.full((16, 24, 3), (180, 120, 100), np.uint8)
    _heic(tmp_path / "p3.heic", rgb, icc_profile=icc)
    to_srgb = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                      "RGB", "RGB")
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), to_srgb))[0, 0].astype(int)
    got = read_image(tmp_path / "p3.heic")[8, 12, ::-1].astype(int)
    assert np.abs(got - expected).max() <= 3 and got[0] - 180 >= 8


def test_a_ten_bit_heic_is_read_in_eight_bits(tmp_path):
    deep = np.zeros((16, 24, 3), np.uint16)
    deep[:] = (40000, 20000, 60000)  # 16-bit values; saved as 10-bit
    pillow_heif.from_bytes("RGB;16", (24, 16), deep.tobytes()).save(tmp_path / "hdr.heic", quality=-1)
    frame = read_image(tmp_path / "hdr.heic")
    assert frame.dtype == np.uint8 and np.abs(frame[8, 12, ::-1].astype(int) - (156, 78, 233)).max() <= 4


def test_a_damaged_heic_is_one_line(tmp_path, identity, capsys):
    (tmp_path / "IMG_0001.HEIC").write_bytes(NOT_HEIC)
    assert main(["-q", "image", str(tmp_path / "IMG_0001.HEIC"), str(tmp_path / "o.png"), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "looks like a HEIC image, but libheif cannot decode it" in err[0]
    assert not (tmp_path / "o.png").exists()


def test_a_folder_of_heic_photos_is_stylised_into_jpegs(tmp_path, identity):
    phone = tmp_path / "phone"
    phone.mkdir()
    _heic(phone / "IMG_0001.HEIC", _halves())
    cv2.imwrite(str(phone / "IMG_0002.png"), np.full((8, 8, 3), 90, np.uint8))
    assert [p.name for p in list_images(phone)] == ["IMG_0001.HEIC", "IMG_0002.png"]
    assert main(["-q", "image", str(phone), str(tmp_path / "out"), "--model", str(identity)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["IMG_0001.jpg", "IMG_0002.png"]
    assert cv2.imread(str(tmp_path / "out" / "IMG_0001.jpg")).shape == (32, 48, 3)


def test_heic_is_not_an_output_format(tmp_path, identity, capsys):
    _heic(tmp_path / "in.heic", _halves())
    assert main(["-q", "image", str(tmp_path / "in.heic"), str(tmp_path / "out.heic"), "--model", str(identity)]) == 2
    assert "rtnst reads HEIC but does not write it; use .jpg" in capsys.readouterr().err
    assert not (tmp_path / "out.heic").exists()


def test_without_the_extra_heic_photos_are_named_with_what_to_do(tmp_path, identity, monkeypatch, caplog, capsys):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if not installed: its import fails
    folder = tmp_path / "phone"
    folder.mkdir()
    _heic(folder / "IMG_0001.HEIC", _halves())
    assert main(["-q", "image", str(folder / "IMG_0001.HEIC"), str(tmp_path / "o.png"), "--model", str(identity)]) == 2
    assert "is a HEIC image, which OpenCV cannot decode: install the heif extra to read it" in capsys.readouterr().err
    assert main(["-q", "image", str(folder), str(tmp_path / "out"), "--model", str(identity)]) == 2
    assert "holds HEIC images only, which rtnst does not read: install the heif extra to read them" in \
        capsys.readouterr().err
    cv2.imwrite(str(folder / "a.png"), np.full((8, 8, 3), 90, np.uint8))
    with caplog.at_level("WARNING", logger="rtnst"):
        assert main(["-q", "image", str(folder), str(tmp_path / "out"), "--model", str(identity)]) == 0
    assert "1 HEIC image left out" in caplog.text and "save them as JPEG" in caplog.text
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


def test_a_heic_photos_exif_goes_into_its_jpeg(tmp_path, identity):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    _heic(tmp_path / "IMG_0001.HEIC", _halves(), exif=exif.tobytes())
    assert main(["-q", "image", str(tmp_path / "IMG_0001.HEIC"), str(tmp_path / "out"), "--model", str(identity)]) == 0
    with Image.open(tmp_path / "out" / "IMG_0001.jpg") as im:
        assert im.size == (32, 48) and im.getexif()[0x0112] == 1
        assert im.getexif().get_ifd(0x8769)[0x9003] == "2024:05:01 10:00:00"
