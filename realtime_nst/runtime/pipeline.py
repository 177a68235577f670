"""Decode → stylise → encode with the three stages overlapping (threads, bounded queues).

onnxruntime, FFmpeg's decoders and encoders release the GIL, so threads overlap real work. Queues
are bounded so a fast decoder cannot fill memory ahead of a slow model. With ``workers`` > 1
several frames are stylised at once (each by one thread) and written in order: on a few CPU cores
that beats one frame at a time on all of them, whose threads wait for each other at every layer
and for the cores decoding and encoding take.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

_END = object()


@dataclass
class PipelineResult:
    frames_done: int
    interrupted: bool


def _put(q: queue.Queue, item, stop: threading.Event | None) -> bool:
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if stop is not None and stop.is_set():
                return False


def run_pipeline(
    frames: Callable[[], tuple[np.ndarray, object] | None],
    process: Callable[[np.ndarray], np.ndarray],
    write: Callable[[np.ndarray, object], None],
    *,
    stop: threading.Event | None = None,
    queue_size: int = 4,
    workers: int = 1,
    on_frame: Callable[[], None] | None = None,
) -> PipelineResult:
    """Run until ``frames()`` returns None or ``stop`` is set; every frame read before the stop is
    processed and written, in order. ``process`` is called from ``workers`` threads at once, so it
    must keep no state between frames (``write`` sees them one at a time, in order). Exceptions
    from any stage are re-raised here after the other stages have drained, so the caller can still
    finish the output file."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    stop = stop or threading.Event()
    halt = threading.Event()  # tells the reader to stop early (interrupt or downstream failure)
    q_in: queue.Queue = queue.Queue(queue_size)
    q_out: queue.Queue = queue.Queue(queue_size)
    errors: list[BaseException] = []  # the first is re-raised at the end
    written_off = threading.Event()  # writing failed: later frames are drained, not written
    done = 0

    def reader() -> None:
        try:
            while not halt.is_set():
                item = frames()
                if item is None:
                    break
                if not _put(q_in, item, halt):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        _put(q_in, _END, None)

    def writer() -> None:
        nonlocal done
        while True:
            item = q_out.get()
            if item is _END:
                return
            if written_off.is_set():
                continue  # drain without writing after a write or process failure; a reader
                # failure (a truncated input) still gets every frame read before it written
            future, meta = item
            try:
                write(future.result(), meta)
                done += 1
                if on_frame:
                    on_frame()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                written_off.set()
                halt.set()

    threads = [threading.Thread(target=reader, name="rtnst-read", daemon=True),
               threading.Thread(target=writer, name="rtnst-write", daemon=True)]
    for t in threads:
        t.start()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="rtnst-stylise")
    try:
        while True:
            if stop.is_set():
                halt.set()
            item = q_in.get()
            if item is _END:
                break
            frame, meta = item
            # The writer waits for each result in turn: at most queue_size + workers frames in flight.
            q_out.put((pool.submit(process, frame), meta))
    except BaseException as exc:
        errors.append(exc)
        written_off.set()
        halt.set()
        # Keep draining the reader so it can exit.
        while q_in.get() is not _END:
            pass
    finally:
        q_out.put(_END)
        for t in threads:
            t.join()
        pool.shutdown(wait=True)
    if errors:
        raise errors[0]
    return PipelineResult(done, stop.is_set())
