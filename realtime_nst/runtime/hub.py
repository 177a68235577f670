"""The shared side of ``rtnst serve``: one live loop publishes each stylised frame to a hub, any
number of viewers take the newest one; the page's controls steer the loop between frames."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import Sequence

import cv2
import numpy as np

from ..errors import CameraError, OptionError
from .live import LiveState, run_live
from .sources import FrameSource
from .stylizer import Stylizer

log = logging.getLogger("rtnst")


class FrameHub:
    """The newest stylised frame, its JPEG, and how fast and late frames arrive.

    Viewers wait on a condition for a frame newer than the one they sent last, so a slow viewer
    skips frames instead of queueing them, and never holds up the loop or the other viewers. Each
    frame is encoded once, by the first viewer that wants it (in its own thread: with no viewers
    nothing is encoded, and encoding never delays inference).
    """

    def __init__(self, *, jpeg_quality: int = 80) -> None:
        if not 1 <= jpeg_quality <= 100:
            raise OptionError(f"jpeg_quality must be between 1 and 100, got {jpeg_quality}", param="jpeg_quality")
        self.jpeg_quality = jpeg_quality
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._published: deque[float] = deque(maxlen=30)
        self._latency_s: deque[float] = deque(maxlen=30)
        self._jpeg_lock = threading.Lock()
        self._jpeg: tuple[int, bytes] = (0, b"")
        self.encode_s = 0.0  # total time spent encoding, and how many frames: the serving's own cost
        self.encoded = 0
        self.viewers = 0
        self.ended = False
        self.error: str | None = None

    def publish(self, frame: np.ndarray, *, taken_t: float | None = None) -> None:
        """A new frame (copied: the loop may reuse its buffers); ``taken_t`` is the perf_counter
        time its source frame was taken, for the latency shown."""
        frame = frame.copy()
        now = time.perf_counter()
        with self._cond:
            if self.ended:
                return
            self._frame, self._seq = frame, self._seq + 1
            self._published.append(now)
            if taken_t is not None:
                self._latency_s.append(now - taken_t)
            self._cond.notify_all()

    def end(self, error: str | None = None) -> None:
        """No more frames (the source ended, failed, or the server is closing): viewers stop waiting."""
        with self._cond:
            self.ended = True
            self.error = self.error or error
            self._cond.notify_all()

    close = end

    @contextlib.contextmanager
    def viewing(self):
        """Counts a viewer while inside (shown on the page)."""
        with self._cond:
            self.viewers += 1
        try:
            yield
        finally:
            with self._cond:
                self.viewers -= 1

    def wait_newer(self, after: int, timeout_s: float) -> int | None:
        """The number of the newest frame once it is newer than ``after``; ``after`` itself when
        none came within ``timeout_s``; None when none will come (ended)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.ended, timeout=timeout_s)
            if self._seq > after:
                return self._seq
            return None if self.ended else after

    def jpeg(self) -> tuple[int, bytes]:
        """(number, JPEG bytes) of the newest frame; (0, b"") before the first."""
        with self._cond:
            seq, frame = self._seq, self._frame
        with self._jpeg_lock:
            if frame is not None and seq > self._jpeg[0]:
                t0 = time.perf_counter()
                ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                self.encode_s += time.perf_counter() - t0
                self.encoded += 1
                if ok:
                    self._jpeg = (seq, data.tobytes())
            return self._jpeg

    def stats(self) -> dict:
        with self._cond:
            times, lat = list(self._published), list(self._latency_s)
            frame = self._frame
            stats = {"frames": self._seq, "ended": self.ended, "error": self.error, "viewers": self.viewers}
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        stats["fps"] = round((len(times) - 1) / span, 1) if span > 0 else 0.0
        stats["latency_ms"] = round(1000 * sum(lat) / len(lat), 1) if lat else None
        stats["size"] = None if frame is None else [frame.shape[1], frame.shape[0]]
        stats["encode_ms"] = round(1000 * self.encode_s / self.encoded, 2) if self.encoded else None
        return stats

    def __enter__(self) -> "FrameHub":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HubTap:
    """Both ends of the loop for the hub: wraps the source (noting when each frame was taken) and is
    the FrameSink that publishes the stylised frame, so the hub knows each frame's latency. The loop
    may read a few frames ahead; it writes every frame it reads, in order, so the times queue up."""

    def __init__(self, source: FrameSource, hub: FrameHub) -> None:
        self.source, self.hub = source, hub
        self.size, self.fps, self.time_base = source.size, source.fps, source.time_base
        self._taken_t: deque[float] = deque()

    def read(self):
        item = self.source.read()
        if item is not None:
            self._taken_t.append(time.perf_counter())
        return item

    def write(self, frame: np.ndarray) -> None:
        self.hub.publish(frame, taken_t=self._taken_t.popleft() if self._taken_t else None)

    def close(self) -> None:  # the source and the hub belong to whoever made them
        pass

    abort = close


class LiveControls:
    """What the page may change, checked here and applied by the loop between frames. The strength
    applies to every model, so the slider means the same whichever style is shown."""

    KEYS = ("model", "strength", "smooth")

    def __init__(self, state: LiveState, stylizers: Sequence[Stylizer], *, names: Sequence[str] | None = None,
                 smoother_available: bool = True) -> None:
        self.state, self.stylizers, self.smoother_available = state, list(stylizers), smoother_available
        self.names = list(names) if names else [_model_name(st, i) for i, st in enumerate(self.stylizers)]
        self._wanted = {"model": state.index, "strength": getattr(self.stylizers[state.index], "strength", 1.0),
                        "smooth": state.smooth and smoother_available}
        self._lock = threading.Lock()

    def snapshot(self) -> dict:
        with self._lock:
            return {"models": self.names, **self._wanted, "smooth_available": self.smoother_available}

    def apply(self, changes: dict) -> dict:
        """Check ``changes`` (a JSON object: model index, strength 0..1, smooth on/off) and hand
        them to the loop; raises OptionError naming the bad one."""
        if not isinstance(changes, dict):
            raise OptionError("controls must be a JSON object")
        unknown = sorted(set(changes) - set(self.KEYS))
        if unknown:
            raise OptionError(f"unknown control {unknown[0]!r}; known: {', '.join(self.KEYS)}")
        model, strength, smooth = (changes.get(k) for k in self.KEYS)
        if "model" in changes and not (type(model) is int and 0 <= model < len(self.stylizers)):
            raise OptionError(f"model must be an index 0..{len(self.stylizers) - 1}, got {model!r}")
        if "strength" in changes and not (type(strength) in (int, float) and 0.0 <= strength <= 1.0):
            raise OptionError(f"strength must be a number between 0 and 1, got {strength!r}")
        if "smooth" in changes and type(smooth) is not bool:
            raise OptionError(f"smooth must be true or false, got {smooth!r}")
        if smooth and not self.smoother_available:
            raise OptionError("smoothing is not available (no smoother was given)")
        with self._lock:
            self._wanted.update(changes)

        def apply() -> None:
            if "model" in changes:
                self.state.index = model
            if "smooth" in changes:
                self.state.smooth = smooth
            if "strength" in changes:
                for st in self.stylizers:
                    st.strength = float(strength)

        self.state.between_frames(apply)
        return self.snapshot()


def _model_name(stylizer: Stylizer, i: int) -> str:
    info = getattr(stylizer, "info", None)
    return info.path.stem if info is not None else f"model {i + 1}"


def serve_live(source: FrameSource, stylizers: Sequence[Stylizer], *, smoother=None, smooth: bool = True,
               host: str = "127.0.0.1", port: int = 8765, token: str | None = None, jpeg_quality: int = 80,
               stop: threading.Event | None = None, on_ready=None, keep_serving: bool = True,
               workers: int = 1) -> int:
    """Run the live loop and serve its frames over HTTP (see ``serve.LiveServer``) until ``stop``
    is set. ``on_ready(server)`` is called once the port is open. When the source ends or fails,
    the page keeps showing the last frame and the error until ``stop`` (``keep_serving``); a failed
    source's CameraError is raised then. ``workers``: frames stylised at once (``run_live``).
    Returns the number of frames stylised."""
    from .serve import LiveServer

    stop = stop or threading.Event()
    state = LiveState(smooth=smooth and smoother is not None)
    controls = LiveControls(state, stylizers, smoother_available=smoother is not None)
    with FrameHub(jpeg_quality=jpeg_quality) as hub, LiveServer(hub, controls, host=host, port=port, token=token) as server:
        if on_ready is not None:
            on_ready(server)
        tap = HubTap(source, hub)
        try:
            n = run_live(tap, stylizers, window=False, sinks=[tap], smoother=smoother, stop=stop, state=state,
                         workers=workers)
        except CameraError as exc:
            hub.end(error=str(exc))
            log.warning("rtnst: %s; the page shows it until Ctrl-C", exc)
            if keep_serving:
                while not stop.wait(0.5):  # short waits: a signal handler runs between them
                    pass
            raise
        hub.end()
        if keep_serving and not stop.is_set():
            log.info("rtnst: the source ended after %d frames; the page shows the last until Ctrl-C", n)
            while not stop.wait(0.5):
                pass
    return n
