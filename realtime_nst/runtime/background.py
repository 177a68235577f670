"""A FrameSink that writes on a thread of its own, so the live loop hands a frame over and goes on."""

from __future__ import annotations

import queue
import threading

from ..errors import OutputError

_STOP = object()


class BackgroundSink:
    """Writes every frame given to ``sink``, in order, from a thread of its own, at most
    ``queue_size`` frames behind; a full queue makes ``write`` wait (the sink sets the pace).

    Why: the live loop does everything but the stylising on one thread, and a recording's colour
    conversion and encoder took 64% of that thread's time at 1280x720 (py-spy, Intel Xeon), while
    the stylising threads waited for the next frame. The FrameSink contract of sinks.py holds: an
    error of ``sink`` is raised by the next ``write`` or by ``close``, which then aborts ``sink``
    (a broken recording is not passed off as finished); ``close`` and ``abort`` are safe twice.
    """

    def __init__(self, sink, *, queue_size: int = 4) -> None:
        self.sink = sink
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rtnst-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self._error is None:  # after a failure the rest is drained, not written
                try:
                    self.sink.write(*item)
                except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread
                    self._error = exc

    def write(self, *args) -> None:
        """``sink.write(*args)``, later."""
        if self._closed:
            raise OutputError("the recording is already closed")
        if self._error is not None:
            raise self._error
        self._queue.put(args)

    def _finish(self, *, discard: bool) -> None:
        if discard:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        self._queue.put(_STOP)
        self._thread.join()

    def close(self, **kwargs) -> None:
        """Write what is queued, then ``sink.close(**kwargs)``; if a write failed, abort ``sink``
        and raise its error."""
        if self._closed:
            return
        self._closed = True
        self._finish(discard=False)
        if self._error is not None:
            self.sink.abort()
            raise self._error
        self.sink.close(**kwargs)

    def abort(self) -> None:
        """Drop what is queued and ``sink.abort()``."""
        if self._closed:
            return
        self._closed = True
        self._finish(discard=True)
        self.sink.abort()

    def __enter__(self) -> "BackgroundSink":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.abort() if exc_type else self.close()
