"""A photo's EXIF (date taken, camera, place) goes into its stylised copy, upright."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from realtime_nst.cli import main

TAKEN = "2024:05:01 10:00:00"


def _photo(path, **save) -> None:
    """A 60x40 photo stored sideways (EXIF orientation 6: turn it 90 degrees to show it), from a Canon."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Canon"
    exif.get_ifd(0x8769)[0x9003] = TAKEN  # DateTimeOriginal
    exif.get_ifd(0x8769)[0x927C] = b"maker's own bytes"
    exif.get_ifd(0x8769)[0xA001] = 0xFFFF  # ColorSpace "uncalibrated", as phones mark Display P3 photos
    exif.get_ifd(0x8825)[1] = "N"  # GPSLatitudeRef
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(path, exif=exif.tobytes(), **save)


def _exif(path) -> Image.Exif:
    with Image.open(path) as im:
        assert im.size == (40, 60)  # upright, as the original is shown
        return im.getexif()


def test_the_date_camera_and_place_are_kept_and_the_orientation_is_upright(tmp_path, identity):
    _photo(tmp_path / "IMG_1.jpg", quality=95)
    for name in ("out.jpg", "out.png"):
        assert main(["-q", "image", str(tmp_path / "IMG_1.jpg"), str(tmp_path / name), "--model", str(identity)]) == 0
        exif = _exif(tmp_path / name)
        assert exif[0x010F] == "Canon" and exif.get_ifd(0x8769)[0x9003] == TAKEN and exif.get_ifd(0x8825)[1] == "N"
        assert exif[0x0112] == 1  # the pixels are upright now: a viewer must not turn them again
        assert 0x927C not in exif.get_ifd(0x8769)  # the maker's note points into the original file
        assert exif.get_ifd(0x8769)[0xA001] == 1  # sRGB, as the copy is written


def test_a_folder_keeps_each_photos_exif_and_an_untagged_photo_gets_none(tmp_path, identity):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.jpg")
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(photos / "b.jpg")
    assert main(["-q", "image", str(photos), str(tmp_path / "out"), "--model", str(identity)]) == 0
    assert _exif(tmp_path / "out" / "a.jpg").get_ifd(0x8769)[0x9003] == TAKEN
    with Image.open(tmp_path / "out" / "b.jpg") as im:
        assert not im.getexif()


def test_a_format_that_cannot_carry_it_is_said(tmp_path, identity, caplog):
    _photo(tmp_path / "IMG_1.jpg")
    with caplog.at_level("INFO", logger="rtnst"):
        assert main(["image", str(tmp_path / "IMG_1.jpg"), str(tmp_path / "o.bmp"), "--model", str(identity)]) == 0
    assert ".bmp cannot carry the photos' EXIF (date taken, camera)" in caplog.text
    assert Image.open(io.BytesIO((tmp_path / "o.bmp").read_bytes())).size == (40, 60)
