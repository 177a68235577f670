"""BackgroundSink: a recording written from a thread of its own keeps the FrameSink contract."""

import threading
import time

import numpy as np
import pytest

from realtime_nst.errors import OutputError
from realtime_nst.runtime.background import BackgroundSink


class Recorder:
    """A FrameSink that notes what it is given; ``fail_at`` makes that write raise, ``gate`` holds
    every write until it is set."""

    def __init__(self, *, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.written, self.closed_with, self.aborted = [], None, 0
        self.fail_at, self.gate = fail_at, gate
        self.threads = set()

    def write(self, frame, pts=None):
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(5)
        if len(self.written) == self.fail_at:
            raise OutputError("disk full")
        time.sleep(0.001)
        self.written.append((int(frame[0, 0, 0]), pts))

    def close(self, **kwargs):
        self.closed_with = kwargs

    def abort(self):
        self.aborted += 1


def frame(i: int) -> np.ndarray:
    return np.full((4, 4, 3), i, np.uint8)


def test_every_frame_is_written_in_order_off_the_callers_thread_then_closed():
    inner = Recorder()
    sink = BackgroundSink(inner, queue_size=2)
    for i in range(20):
        sink.write(frame(i), 10 * i)
    sink.close(complete=False)
    assert inner.written == [(i, 10 * i) for i in range(20)]
    assert inner.closed_with == {"complete": False} and inner.aborted == 0
    assert inner.threads == {"rtnst-sink"}
    sink.close()  # safe twice
    sink.abort()
    assert inner.aborted == 0
    with pytest.raises(OutputError, match="closed"):
        sink.write(frame(0))


def test_a_failed_write_is_raised_by_a_later_write_and_close_aborts_the_recording():
    inner = Recorder(fail_at=3)
    sink = BackgroundSink(inner, queue_size=1)
    with pytest.raises(OutputError, match="disk full"):
        for i in range(50):
            sink.write(frame(i))
    assert len(inner.written) == 3
    with pytest.raises(OutputError, match="disk full"):
        sink.close()
    assert inner.aborted == 1 and inner.closed_with is None


def test_an_error_found_only_when_closing_is_raised_by_close():
    inner = Recorder(fail_at=1)
    sink = BackgroundSink(inner)
    sink.write(frame(0))
    sink.write(frame(1))  # queued before the failure is known
    with pytest.raises(OutputError, match="disk full"):
        sink.close()
    assert inner.aborted == 1 and inner.closed_with is None


def test_abort_drops_what_is_queued():
    gate = threading.Event()
    inner = Recorder(gate=gate)
    sink = BackgroundSink(inner, queue_size=8)
    for i in range(6):
        sink.write(frame(i))
    threading.Timer(0.05, gate.set).start()  # the write in progress finishes after abort began
    sink.abort()
    assert inner.aborted == 1 and inner.closed_with is None
    assert len(inner.written) < 6
