"""Which container and video codec an output path gets: FFmpeg's answer for the suffix (checked
before any work is done), with what FFmpeg does not list, in the library's terms."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputError

# The first the container takes: VP9 for .webm, MPEG-1/2 for MPEG program streams (.mpg, .vob).
_VIDEO_CODECS = ("libx264", "h264", "mpeg4", "libvpx-vp9", "mpeg2video", "mpeg1video")
_SUFFIXES_TO_USE = ".mp4, .mkv, .mov, .webm, .avi, .ts, .mpg or .gif"  # what the messages of a refused output suggest
# FFmpeg lists what a container takes only where the muxer keeps a table. MPEG-TS (.ts, .mts, .m2ts)
# keeps none, so only its defaults (MPEG-2 video, MP2 audio) are listed, yet H.264 with AAC is what
# broadcast, camcorder and stream recordings put in it.
_ALSO_TAKEN = {"mpegts": {"libx264", "h264", "aac", "mp3", "ac3", "eac3", "opus"}}
# AVI stores no timestamps, and FFmpeg's reader (mpv's, and every tool's built on FFmpeg) gives H.264
# in AVI a presentation time one or more frames after its decoding time, whatever the encoder's
# settings: the picture plays 2 frames behind its sound. MPEG-4 Part 2, FFmpeg's own choice for AVI
# and the codec AVI players expect (Xvid), reads back frame for frame.
_FIRST_CHOICE = {"avi": "mpeg4"}
# The MP4 muxer would write video under these suffixes, but players and media libraries file them as
# audio (music, audiobooks) and show no picture.
_AUDIO_MP4_SUFFIXES = {".m4a", ".m4b"}


def check_video_output(path: str | os.PathLike) -> None:
    """Fail before any work if ``path``'s suffix names no video format that can be written here.
    FFmpeg itself tells, as it will when the file is written; our lists only mend where its answer is
    wrong for video (_ALSO_TAKEN, _AUDIO_MP4_SUFFIXES)."""
    import tempfile

    from .gif import GIF_SUFFIX

    path = Path(path)
    if path.suffix.lower() == GIF_SUFFIX:
        return
    with tempfile.TemporaryDirectory(prefix="rtnst-") as folder:
        open_container(path, Path(folder) / f"probe{path.suffix}")[0].close()


def open_container(path: Path, target: Path):
    """FFmpeg's output container for ``target``, in the format ``path``'s suffix names, and the
    video codec it will get (the first of _VIDEO_CODECS it takes). FFmpeg creates no file yet."""
    import av

    try:
        out = av.open(str(target), "w")
    except ValueError:
        raise OutputError(f"cannot tell the video format of {path} from its suffix (use {_SUFFIXES_TO_USE})") from None
    except av.error.FFmpegError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if out.format.name.startswith("image2"):  # FFmpeg's still-image writers: a frame per file
        out.close()
        raise OutputError(f"{path.suffix} is a still-image format, not a video: use {_SUFFIXES_TO_USE} "
                          "(rtnst image stylises a still)")
    if path.suffix.lower() in _AUDIO_MP4_SUFFIXES:
        out.close()
        raise OutputError(f"{path.suffix} is an audio format (players show no picture): use {_SUFFIXES_TO_USE}")
    choices = (_FIRST_CHOICE[out.format.name], *_VIDEO_CODECS) if out.format.name in _FIRST_CHOICE else _VIDEO_CODECS
    codec = next((c for c in choices if c in av.codecs_available and takes(out, c)), None)
    if codec is None:
        out.close()
        raise OutputError(f"no video encoder for the {path.suffix} container; use {_SUFFIXES_TO_USE}")
    return out, codec


def takes(out, codec: str) -> bool:
    """Whether the output container ``out`` can hold ``codec`` (a codec or encoder name)."""
    return codec in out.supported_codecs or codec in _ALSO_TAKEN.get(out.format.name, ())


# What a folder given to `rtnst video` is searched for.
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".vob",
                  ".wmv", ".asf", ".flv", ".3gp", ".mxf", ".dv"}
# Input formats whose index FFmpeg seeks by: reading from part way (--start) jumps there. Others
# (MPEG-TS and program streams, raw streams) are read from the top, what comes before the start
# dropped: FFmpeg's seek by timestamp there can land past the start or at the end of a short file.
_INDEXED = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "flv", "asf"}


def seeks_by_index(container) -> bool:
    """Whether an opened input ``container`` (PyAV) can be read from part way by seeking."""
    return container.format.name in _INDEXED
