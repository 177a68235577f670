"""Frame sources: video files (PyAV) and cameras/streams (OpenCV; a file standing in for a camera is
read with PyAV). ``read()`` returns the next frame with its timestamp, or None at the end."""

from __future__ import annotations

import logging
import os
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..errors import CameraError, CorruptInputError, InputError, RtnstError
from .colour import FrameConverter

log = logging.getLogger("rtnst")


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
    """Decodes the first video stream of a file, in order, every frame, with its timestamp."""

    def __init__(self, path: str | os.PathLike) -> None:
        import av

        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"input {self.path} does not exist")
        if not self.path.is_file():
            raise InputError(f"input {self.path} is not a file")
        try:
            self._container = av.open(str(self.path), "r")
        except av.error.PermissionError:
            raise InputError(f"cannot read {self.path}: permission denied") from None
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
            raise InputError(f"{self.path} is not a video file FFmpeg can open (or it is truncated before its index)") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path} has no video stream")
        self.stream = self._container.streams.video[0]
        if self.stream.codec_context is None:
            self._container.close()
            raise InputError(f"{self.path}: its video is in a format FFmpeg cannot decode")
        self.stream.thread_type = "AUTO"  # frame+slice threads in the decoder
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        self.fps: Fraction = Fraction(rate)
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90_000)
        self.frame_count: int | None = self.stream.frames or self._estimate_frames()
        self.frames_read = 0
        self._frames: Iterator = self._decode()
        self._told_rotation = False
        self._colour = FrameConverter(self.path)
        self._turned = False
        # The first frame is decoded now: only a decoded frame tells whether the clip is stored
        # rotated (a phone's display matrix), and so the size it is delivered at.
        try:
            self._first: TimedFrame | None = self._next()
        except BaseException:
            self.close()
            raise
        if self._first is None:
            self.close()
            raise CorruptInputError(f"{self.path} has a video stream but no frame could be decoded")
        self.size: tuple[int, int] = (self._first.frame.shape[1], self._first.frame.shape[0])

    def _estimate_frames(self) -> int | None:
        duration = self.stream.duration
        if duration is not None and self.time_base:
            return round(duration * self.time_base * self.fps)
        if self._container.duration:
            return round(self._container.duration / 1_000_000 * self.fps)
        return None

    def _decode(self) -> Iterator:
        import av

        try:
            for packet in self._container.demux(self.stream):
                for frame in packet.decode():
                    yield frame
        except av.error.EOFError:
            return
        except av.error.FFmpegError as exc:
            raise CorruptInputError(
                f"{self.path} is corrupt: decoding failed after {self.frames_read} frames ({exc.strerror or exc})",
                frames_done=self.frames_read,
            ) from None

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
                     self.path.name, (360 - angle) % 360)
        turn = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}[angle]
        return cv2.rotate(image, turn)

    def _check_complete(self) -> None:
        # A file cut short still demuxes cleanly up to the cut: compare with what its header promises.
        expected = self.stream.frames
        if expected and self.frames_read < expected:
            raise CorruptInputError(
                f"{self.path} is truncated: it promises {expected} frames but only {self.frames_read} could be decoded",
                frames_done=self.frames_read,
            )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoFileSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse_camera(camera: str | int) -> str | int:
    if isinstance(camera, int):
        return camera
    return int(camera) if camera.isdigit() else camera


class CameraSource:
    """A camera index, device path, URL, or video file standing in for a camera.

    A grabber thread reads continuously and keeps only the newest frame, so a slow consumer drops
    frames instead of building up latency. A video file is delivered at its own frame rate, as a
    camera would, and ends normally; it is decoded as VideoFileSource decodes (chroma interpolated
    as players show it, turned upright, HDR mapped), where OpenCV would repeat 4:2:0 chroma over 2x2
    pixels. A live source that stops delivering raises CameraError. The
    constructor waits (up to ``timeout_s``) for the first frame: what a camera delivers is known only
    then, whatever size was asked of it.
    """

    def __init__(self, camera: str | int = 0, *, timeout_s: float = 5.0, width: int | None = None,
                 height: int | None = None) -> None:
        import cv2

        self.camera = _parse_camera(camera)
        self.is_file = isinstance(self.camera, str) and Path(self.camera).is_file()
        self._cap = self._file = None
        if self.is_file:
            self._file = VideoFileSource(self.camera)
            self.fps: Fraction = self._file.fps
        else:
            self._cap = cv2.VideoCapture(self.camera)
            if not self._cap.isOpened():
                self._cap.release()
                raise CameraError(f"could not open camera {camera!r} (no such device, busy, or not a stream OpenCV can read)")
            if width and height:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            fps = self._cap.get(cv2.CAP_PROP_FPS)
            self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(30)
        self.time_base: Fraction | None = None  # live: frames carry no timestamps of their own
        self.timeout_s = timeout_s
        self.frames_grabbed = 0
        self.frames_dropped = 0
        self._latest: np.ndarray | None = None
        self._fresh = False
        self._ended = False
        self._error: RtnstError | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grab, name="rtnst-camera", daemon=True)
        self._thread.start()
        with self._cond:
            arrived = self._cond.wait_for(lambda: self._fresh or self._ended, timeout=timeout_s)
            # A camera that delivered frames and then failed (all before this thread woke up, on a
            # busy machine) still opens: read() gives its newest frame, then the failure.
            error = None if self._fresh else self._error or CameraError(
                f"camera {camera!r} delivered no frame" + (f" for {timeout_s:g} s" if not arrived else ""))
        if error is not None:
            self.close()
            raise error
        self.size: tuple[int, int] = (self._latest.shape[1], self._latest.shape[0])

    def _grab(self) -> None:
        period = 1.0 / self.fps if self.is_file else 0.0
        next_t = time.perf_counter()
        while not self._stop.is_set():
            try:
                frame = self._next_frame()
            except RtnstError as exc:  # a corrupt or truncated file: ends with its error
                frame, self._error = None, exc
            with self._cond:
                if frame is None:
                    if not self.is_file:
                        self._error = CameraError(
                            f"camera {self.camera!r} stopped delivering frames after {self.frames_grabbed} (disconnected?)")
                    self._ended = True
                    self._cond.notify_all()
                    return
                if self._fresh:
                    self.frames_dropped += 1
                self._latest, self._fresh = frame, True
                self.frames_grabbed += 1
                self._cond.notify_all()
            if period:
                next_t += period
                time.sleep(max(0.0, next_t - time.perf_counter()))

    def _next_frame(self) -> np.ndarray | None:
        if self._file is not None:
            timed = self._file.read()
            return None if timed is None else timed.frame
        ok, frame = self._cap.read()
        return frame if ok else None

    def read(self) -> TimedFrame | None:
        """The newest frame not yet returned; waits up to ``timeout_s`` for one."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._fresh or self._ended, timeout=self.timeout_s):
                raise CameraError(f"camera {self.camera!r} delivered no frame for {self.timeout_s:g} s")
            if self._fresh:
                self._fresh = False
                return TimedFrame(self._latest, None)
            if self._error:
                raise self._error
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            # a file's next frame is always a decode away, and its container must not close under it
            self._thread.join(timeout=None if self._file is not None else 2.0)
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> "CameraSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
