"""Live sources: cameras (OpenCV), stream URLs and video files standing in for a camera (PyAV),
read by a grabber thread that keeps only the newest frame."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import CameraError, RtnstError
from .sources import TimedFrame, VideoFileSource, is_stream_url


def _parse_camera(camera: str | int) -> str | int:
    if isinstance(camera, int):
        return camera
    # isdecimal, not isdigit: "²" is a digit int() refuses. An index OpenCV cannot hold is no camera.
    if camera.isascii() and camera.isdecimal():
        index = int(camera)
        if index > 2**31 - 1:
            raise CameraError(f"camera {camera} does not exist (camera indices are small numbers: 0, 1, ...)")
        return index
    return camera


class CameraSource:
    """A camera index or device path (OpenCV), a stream URL, or a video file standing in for a camera.

    A grabber thread reads continuously and keeps only the newest frame, so a slow consumer drops
    frames instead of building up latency. A video file is delivered at its own frame rate, as a
    camera would, and ends normally. URLs and files are decoded as VideoFileSource decodes (chroma
    interpolated as players show it, turned upright, HDR mapped), where OpenCV would repeat 4:2:0
    chroma over 2x2 pixels. A live source that stops delivering raises CameraError. The constructor
    waits (up to ``timeout_s``) for the first frame: what a camera delivers is known only then,
    whatever size was asked of it; ``timeout_s`` also bounds each wait of a stream URL for data.
    """

    def __init__(self, camera: str | int = 0, *, timeout_s: float = 5.0, width: int | None = None,
                 height: int | None = None) -> None:
        import cv2

        self.camera = _parse_camera(camera)
        self.is_file = isinstance(self.camera, str) and Path(self.camera).is_file()
        self._cap = self._reader = None
        if self.is_file or is_stream_url(self.camera):
            self._reader = VideoFileSource(self.camera, timeout_s=timeout_s)
            self.fps: Fraction = self._reader.fps
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
            except RtnstError as exc:  # a corrupt file or a broken stream: ends with its error
                frame, self._error = None, exc
            with self._cond:
                if frame is None:
                    if not self.is_file and self._error is None:
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
        if self._reader is not None:
            timed = self._reader.read()
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
            # PyAV's container must not close under a read, which ends within a decode (a file) or
            # within timeout_s (a stream URL)
            self._thread.join(timeout=None if self._reader is not None else 2.0)
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> "CameraSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
