"""The live loop: camera → stylizer → smoothing → window / recording / virtual camera."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .. import frames as fr
from ..errors import OptionError
from .sinks import FrameSink
from .sources import FrameSource
from .stylizer import Stylizer

log = logging.getLogger("rtnst")
WINDOW = "rtnst"


@dataclass
class LiveState:
    """What the keys (or a remote control, through ``between_frames``) change; shown in the overlay."""

    index: int = 0
    paused: bool = False
    quit: bool = False
    smooth: bool = True  # the smoother, when there is one, runs
    snapshots: list[Path] = field(default_factory=list)
    _calls: queue.SimpleQueue = field(default_factory=queue.SimpleQueue, repr=False)

    def between_frames(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the loop's thread before its next frame: another thread (a web page's
        controls) then never changes a model or the smoother while a frame is in it."""
        self._calls.put(fn)

    def run_calls(self) -> None:
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            fn()


def handle_key(key: int, state: LiveState, stylizers: Sequence[Stylizer], *, on_snapshot: Callable[[], None],
               on_switch: Callable[[], None]) -> None:
    """q quit, space pause, s snapshot, n/p next/previous model, +/- strength by 0.1."""
    ch = chr(key & 0xFF) if key >= 0 else ""
    if ch in ("q", "\x1b"):
        state.quit = True
    elif ch == " ":
        state.paused = not state.paused
    elif ch == "s":
        on_snapshot()
    elif ch in ("n", "p") and len(stylizers) > 1:
        state.index = (state.index + (1 if ch == "n" else -1)) % len(stylizers)
        on_switch()
    elif ch in ("+", "=", "-", "_"):
        st = stylizers[state.index]
        step = 0.1 if ch in ("+", "=") else -0.1
        st.strength = round(min(1.0, max(0.0, getattr(st, "strength", 1.0) + step)), 2)


def _stylise(stylizer: Stylizer, frame: np.ndarray, smoothed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(the frame as the smoother sees it, the stylised frame). For a frame to be ``smoothed``, when
    the output is no more than the model's output scaled up (OnnxStylizer.scaled_only_size), both
    stay at the size the model runs at, as `rtnst video` smooths them, and the caller scales the
    result up: the smoother costs ~3x as much on a 1280x720 frame (18.8 against 6.6 ms of CPU).
    Otherwise the scaling is done here, in the stylising thread."""
    small = smoothed and getattr(stylizer, "scaled_only_size", lambda w, h: None)(frame.shape[1], frame.shape[0])
    if small:
        frame = fr.resize(frame, small)
    return frame, stylizer.stylize(frame)


def run_live(
    source: FrameSource,
    stylizers: Sequence[Stylizer],
    *,
    window: bool = True,
    sinks: Sequence[FrameSink] = (),
    smoother=None,
    snapshot_dir: Path = Path("."),
    max_frames: int | None = None,
    stop: threading.Event | None = None,
    keys: Callable[[], int] | None = None,
    state: LiveState | None = None,
    workers: int = 1,
) -> int:
    """Run until the source ends, q is pressed, ``stop`` is set or ``max_frames`` are shown.
    Returns the number of frames stylised. ``keys`` replaces cv2.waitKey (tests); ``state`` lets
    another thread steer the loop (see ``LiveState.between_frames``). With ``workers`` > 1 the
    next frames are read and stylised (each in its own thread) while one is shown: more frames a
    second on a few CPU cores, at the cost of ``workers`` - 1 frames of latency; smoothing, sinks and
    the window still see every frame read, one at a time, in order."""
    if workers < 1:
        raise OptionError(f"workers must be at least 1, got {workers}", param="workers")
    stop = stop or threading.Event()
    state = state or LiveState()
    times: deque[float] = deque(maxlen=30)
    shown = 0
    last: np.ndarray | None = None
    pool = ThreadPoolExecutor(workers, thread_name_prefix="rtnst-live") if workers > 1 else None
    ahead: deque[tuple[Future, np.ndarray]] = deque()  # frames read and being stylised, oldest first

    def snapshot() -> None:
        if last is None:
            return
        path = snapshot_dir / f"rtnst_{time.strftime('%Y%m%d_%H%M%S')}_{shown:05d}.png"
        cv2.imwrite(str(path), last)
        state.snapshots.append(path)
        log.info("rtnst: snapshot %s", path)

    def switch() -> None:
        if smoother is not None:
            smoother.reset()  # its previous output is of another model, or stale
        log.info("rtnst: model %d of %d%s", state.index + 1, len(stylizers),
                 "" if smoother is None else f", smoothing {'on' if state.smooth else 'off'}")

    current = (state.index, state.smooth)

    if window:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    try:
        while not (stop.is_set() or state.quit or (max_frames is not None and shown >= max_frames)):
            state.run_calls()
            smoothing = smoother is not None and state.smooth
            if (state.index, state.smooth) != current:  # by a key or a remote control
                if state.index != current[0] and ahead:
                    # Frames read ahead go to the new model again, not dropped: a recording (or the
                    # page's latency, which pairs frames read with frames shown) keeps every frame.
                    for future, _ in ahead:
                        future.cancel()  # one already running finishes unseen
                    ahead = deque((pool.submit(_stylise, stylizers[state.index], f, smoothing), f) for _, f in ahead)
                current = (state.index, state.smooth)
                switch()
            if not state.paused:
                if pool is None:
                    item = source.read()
                    if item is None:
                        break
                    frame = item.frame
                    seen, out = _stylise(stylizers[state.index], frame, smoothing)
                else:
                    while len(ahead) < workers and (item := source.read()) is not None:
                        ahead.append((pool.submit(_stylise, stylizers[state.index], item.frame, smoothing), item.frame))
                    if not ahead:
                        break
                    future, frame = ahead.popleft()
                    seen, out = future.result()
                if smoother is not None and state.smooth:
                    out = smoother(seen, out)
                # stylised small to be smoothed: scaled to the size asked for (output_size), else the camera's
                size = getattr(stylizers[state.index], "output_size", None) or (frame.shape[1], frame.shape[0])
                out = fr.resize(out, size)
                last = out
                for sink in sinks:
                    sink.write(out)
                shown += 1
                times.append(time.perf_counter())
            if window and last is not None:
                cv2.imshow(WINDOW, _overlay(last, times, state, stylizers))
            key = keys() if keys else (cv2.waitKey(1 if not state.paused else 30) if window else -1)
            handle_key(key, state, stylizers, on_snapshot=snapshot, on_switch=lambda: None)  # the loop sees the switch
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if window:
            cv2.destroyWindow(WINDOW)
    return shown


def _overlay(frame: np.ndarray, times: deque, state: LiveState, stylizers: Sequence[Stylizer]) -> np.ndarray:
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    st = stylizers[state.index]
    text = f"{fps:5.1f} fps  model {state.index + 1}/{len(stylizers)}  strength {getattr(st, 'strength', 1.0):.1f}"
    if state.paused:
        text += "  [paused]"
    view = frame.copy()
    cv2.putText(view, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(view, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return view
