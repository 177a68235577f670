"""Frame sources: the FrameSource contract and video files and stream URLs (PyAV); cameras are in
camera.py. ``read()`` returns the next frame with its timestamp, or None at the end."""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import CorruptInputError, InputError, OptionError
from .colour import FrameConverter
from .containers import seeks_by_index
from .deinterlace import Deinterlacer

log = logging.getLogger("rtnst")
_TOLD: set[tuple[str, str]] = set()  # (what, file) said once: a command opens its input more than once

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_stream_url(target: str | os.PathLike | int) -> bool:
    """Whether ``target`` is a URL (rtsp://, srt://, http://, ...) rather than a path."""
    return isinstance(target, str) and _URL.match(target) is not None


class TimedFrame(NamedTuple):
    """A frame and its presentation timestamp in the source's ``time_base`` (None: a live source,
    whose frames are numbered at its rate)."""

    frame: np.ndarray
    pts: int | None


@runtime_checkable
class FrameSource(Protocol):
    """Where frames come from. It declares what it delivers before the first read: ``size`` (w, h)
    of its frames as delivered, ``fps`` and ``time_base`` (None when it has no timestamps).
    ``read()`` returns the next TimedFrame, or None at the end; a source that breaks raises
    (CorruptInputError, CameraError). ``close()`` is safe to call twice."""

    size: tuple[int, int]
    fps: Fraction
    time_base: Fraction | None

    def read(self) -> TimedFrame | None: ...

    def close(self) -> None: ...


class VideoFileSource:
    """Decodes the first video stream of a file, in order, every frame, with its timestamp. A URL
    (rtsp://, srt://, http://, ...) is read the same way, as a stream FFmpeg receives, each network
    wait bounded by ``timeout_s``. ``start_s``: the file is read from the frame shown at that time on
    (players' clock: 0 is its first frame)."""

    def __init__(self, path: str | os.PathLike, *, timeout_s: float = 10.0, start_s: float = 0.0) -> None:
        import av

        self.url = str(path) if is_stream_url(path) else None
        self.path = None if self.url else Path(path)
        self.name = self.url or str(self.path)  # what messages call it
        self._short_name = self.url or self.path.name  # what log lines call it
        self.timeout_s = timeout_s
        if self.path is not None and not self.path.exists():
            raise InputError(f"input {self.path} does not exist")
        if self.path is not None and not self.path.is_file():
            raise InputError(f"input {self.path} is not a file")
        try:
            self._container = av.open(self.name, "r", timeout=timeout_s if self.url else None)
        except av.error.PermissionError:
            raise InputError(f"cannot read {self.name}: permission denied") from None
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            if self.url:
                raise InputError(f"could not open the stream {self.url} "
                                 f"({getattr(exc, 'strerror', None) or exc})") from None
            raise InputError(f"{self.path} is not a video file FFmpeg can open (or it is truncated before its index)") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.name} has no video stream")
        # FFmpeg's pick (as ffmpeg and players make it): not an attached cover picture, else the stream
        # with the most to show, where the first video stream may be a one-frame thumbnail.
        self.stream = self._container.streams.best("video") or self._container.streams.video[0]
        if len(self._container.streams.video) > 1 and ("streams", self.name) not in _TOLD:
            _TOLD.add(("streams", self.name))
            log.info("rtnst: %s holds %d video streams: stylising stream %d (%dx%d), the one players show",
                     self._short_name, len(self._container.streams.video), self.stream.index,
                     self.stream.codec_context.width, self.stream.codec_context.height)
        if self.stream.codec_context is None:
            self._container.close()
            raise InputError(f"{self.name}: its video is in a format FFmpeg cannot decode")
        if self.path is not None and self.stream.codec_context.name == "webp" and _animated_webp(self.path):
            self._container.close()  # FFmpeg's WebP decoder reads still pictures only
            raise InputError(f"{self.name} is an animated WebP, which FFmpeg cannot decode as video: convert it to "
                             ".gif or .mp4 first (read as an image, its first frame can be stylised)")
        if self._container.format.name == "image2" or self._container.format.name.endswith("_pipe"):
            self._container.close()  # FFmpeg's still-picture readers: a one-frame "video" of a photo
            raise InputError(f"{self.name} is a still image, not a video: rtnst image stylises it")
        # Frame threads hold back a frame each: throughput for a file, latency for a live stream (a
        # 640x360 MPEG-TS stream over local TCP at 25 fps: 180 ms from encoder to frame, 96 with slices).
        self.stream.thread_type = "SLICE" if self.url else "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self.fps: Fraction = Fraction(rate)
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90_000)
        self.frame_count: int | None = self.stream.frames or self._estimate_frames()
        self._from_pts = self._seek(start_s) if start_s > 0 else None  # frames before it are dropped
        if self._from_pts is not None and self.stream.frames:
            self.frame_count = max(0, self.stream.frames - round(start_s * self.fps))
        self.frames_read = 0
        self.packets_skipped = 0  # damaged video packets left out
        self._frames: Iterator = self._decode()
        self._told_rotation = False
        self._colour = FrameConverter(self._short_name, key=self.url or str(self.path.resolve()))
        self._turned = False
        # The first frame is decoded now: only a decoded frame tells whether the clip is stored
        # rotated (a phone's display matrix), and so the size it is delivered at.
        try:
            self._first: TimedFrame | None = self._next()
        except BaseException:
            self.close()
            raise
        if self._first is None and self._from_pts is not None:
            length = f" (its video lasts {self.duration_s:.2f} s)" if self.duration_s else ""
            self.close()
            raise InputError(f"{self.name} has no frame from {start_s:g} s on{length}")
        if self._first is None:
            self.close()
            raise CorruptInputError(f"{self.name} has a video stream but no frame could be decoded")
        self.size: tuple[int, int] = (self._first.frame.shape[1], self._first.frame.shape[0])

    def _seek(self, start_s: float) -> int:
        """Moves the reading to the keyframe before ``start_s``; returns the timestamp from which frames count."""
        import av

        if self.url:
            raise OptionError("a live stream cannot be read from part way", param="start_s")
        target = (self.stream.start_time or 0) + round(Fraction(start_s).limit_denominator(1_000_000) / self.time_base)
        if seeks_by_index(self._container):
            try:
                self._container.seek(target, stream=self.stream, backward=True)
            except av.error.FFmpegError:
                pass  # nothing read yet: the reading starts at the top, and frames before the start are dropped
        return target - round(1 / (2 * self.fps * self.time_base))  # a frame within half a frame of it counts

    @property
    def duration_s(self) -> float | None:
        """How long the video lasts, as its file states it (None: it does not)."""
        if self.stream.duration and self.time_base:
            return float(self.stream.duration * self.time_base)
        return self._container.duration / 1_000_000 if self._container and self._container.duration else None

    def time_s(self, pts: int | None) -> float | None:
        """A frame's timestamp as players show it: seconds from the video's first frame."""
        return None if pts is None else float((pts - (self.stream.start_time or 0)) * self.time_base)

    def _estimate_frames(self) -> int | None:
        duration = self.stream.duration
        if duration is not None and self.time_base:
            return round(duration * self.time_base * self.fps)
        if self._container.duration:
            return round(self._container.duration / 1_000_000 * self.fps)
        return None

    def _decode(self) -> Iterator:
        import av

        fields = Deinterlacer(self._short_name)
        first_error, clean_since = None, 0  # a damaged packet's, and the packets decoded since the last one
        try:
            for packet in self._container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:
                    # A damaged packet (a bad sector, a glitch in a recording or a stream): players skip
                    # it and go on, showing its neighbours longer, and so does rtnst, if frames follow.
                    if first_error is None:
                        first_error = (exc, self.frames_read)
                    self.packets_skipped += 1
                    clean_since = 0
                    continue
                clean_since += packet.size > 0  # not the end's empty packet, which gives the frames held back
                for frame in frames:
                    if self._from_pts is None or frame.pts is None or frame.pts >= self._from_pts:
                        yield from fields.frames(frame)
            yield from fields.frames(None)
        except av.error.EOFError:
            yield from fields.frames(None)
        except av.error.FFmpegError as exc:
            raise self._broken(exc) from None
        # Damage that runs to the end (decoders with frame threads report an error a few packets
        # late) loses the rest of the video: that stays an error, as a truncated file is.
        if first_error is not None and not (self._reached_the_end() if self.stream.duration else clean_since):
            raise self._broken(first_error[0])
        if self.packets_skipped:
            n = self.packets_skipped
            log.warning("rtnst: %s: %d damaged video packet%s could not be decoded and %s left out (the first after "
                        "frame %d); the frames around %s are shown longer, as players do", self._short_name, n,
                        "" if n == 1 else "s", "was" if n == 1 else "were", first_error[1], "it" if n == 1 else "them")

    def _broken(self, exc) -> CorruptInputError:
        import av

        if not self.url:
            what = f"is corrupt: decoding failed after {self.frames_read} frames ({exc.strerror or exc})"
        elif isinstance(exc, (av.error.ExitError, av.error.TimeoutError)):  # PyAV's timeout interrupts the read
            what = f"sent nothing for {self.timeout_s:g} s after {self.frames_read} frames"
        else:
            what = f"broke off after {self.frames_read} frames ({exc.strerror or exc})"
        return CorruptInputError(f"{self.name} {what}", frames_done=self.frames_read)

    @property
    def sample_aspect_ratio(self) -> Fraction | None:
        """The shape of a pixel as players show it (width over height; None: square), as delivered:
        anamorphic DV and DVD video stores 16:9 pictures in 720x576 frames of 64:45 pixels."""
        sar = self.stream.sample_aspect_ratio or self.stream.codec_context.sample_aspect_ratio
        if not sar or sar == 1:
            return None
        return 1 / Fraction(sar) if self._turned else Fraction(sar)

    def shrink_to(self, size: tuple[int, int] | None) -> None:
        """From the next read on, deliver frames larger than ``size`` (w, h, as delivered) at that size,
        shrunk in the decoder's colour conversion: for a caller that scales every frame to it anyway
        (one pass instead of two; HDR frames' mapping to SDR colours is then ~7x cheaper at 1080p)."""
        self._colour.shrink_to = (size[1], size[0]) if size and self._turned else size

    def read(self) -> TimedFrame | None:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return self._next()

    def _next(self) -> TimedFrame | None:
        if self._container is None:
            return None
        frame = next(self._frames, None)
        if frame is None:
            self._check_complete()
            return None
        self.frames_read += 1
        self._last_pts = frame.pts if frame.pts is not None else self._last_pts
        return TimedFrame(self._upright(frame), frame.pts)

    def _upright(self, frame) -> np.ndarray:
        image = self._colour.convert(frame)
        # Phones store portrait video as landscape frames plus a display matrix that players apply;
        # we turn the frames upright as players show them (and as ffmpeg's autorotate does), so the
        # output, which carries no such matrix, plays the same way up. PyAV gives the matrix's angle
        # counterclockwise: -90 (an iPhone portrait clip) means turn clockwise.
        angle = round(getattr(frame, "rotation", 0) or 0) % 360
        self._turned = angle in (90, 270)  # stored the other way round (shrink_to)
        if angle not in (90, 180, 270):
            return image
        import cv2

        if not self._told_rotation:
            self._told_rotation = True
            log.info("rtnst: %s is stored rotated by %d degrees; its frames are turned upright as players show them",
                     self._short_name, (360 - angle) % 360)
        turn = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}[angle]
        return cv2.rotate(image, turn)

    def _check_complete(self) -> None:
        # A file cut short still demuxes cleanly up to the cut: compare with what its header promises
        # (from part way: the frames after the start; none at all is said as that, by __init__).
        expected = self.frame_count if self._from_pts is not None else self.stream.frames
        if self._from_pts is not None and not self.frames_read:
            return
        if expected and self.frames_read + self.packets_skipped < expected and not self._reached_the_end():
            raise CorruptInputError(
                f"{self.name} is truncated: it promises {expected} frames but only {self.frames_read} could be decoded",
                frames_done=self.frames_read,
            )
        # A transport stream has no header or index to promise anything, but it is a run of fixed-size
        # packets (188 bytes; 192 in Blu-ray and AVCHD .m2ts/.mts, 204 with DVB's error correction):
        # a half-downloaded one ends part way through one.
        if self.path is not None and self._container.format.name == "mpegts":
            size = self.path.stat().st_size
            if all(size % packet for packet in (188, 192, 204)):
                raise CorruptInputError(f"{self.name} is truncated: it ends part way through a transport-stream "
                                        f"packet, after {self.frames_read} frames", frames_done=self.frames_read)

    def _reached_the_end(self) -> bool:
        """Whether the last frame decoded is within a frame of the stream's stated end: an index may
        count empty entries (an AVI's placeholder for a frame its recorder dropped) that decode to nothing."""
        duration, last = self.stream.duration, getattr(self, "_last_pts", None)
        if not duration or last is None or not self.time_base:
            return False
        frame_ticks = 1 / (self.fps * self.time_base)
        return last + 2 * frame_ticks >= (self.stream.start_time or 0) + duration

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoFileSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _animated_webp(path: Path) -> bool:
    from ..imageio import is_animated_webp

    try:
        with open(path, "rb") as f:
            return is_animated_webp(f.read(256))
    except OSError:
        return False
