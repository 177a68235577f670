"""Ctrl-C and SIGTERM as a request to stop (realtime_nst.signals)."""

import os
import signal
import subprocess
import sys
import threading

from realtime_nst.signals import stop_on_signals, stop_signals_held


def test_a_signal_sets_the_stop_event_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(threading.Event()) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_held_signals_arrive_afterwards_and_a_process_started_meanwhile_never_gets_them():
    with stop_on_signals(threading.Event()) as stop:
        with stop_signals_held():
            child = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.read(); print('alive')"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            # At this thread: a signal sent to the process may land on a thread that never held it
            # (torch's worker threads, started by earlier tests in this process).
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            assert not stop.wait(0.2)  # held
        assert stop.wait(5)  # delivered once released
        child.send_signal(signal.SIGTERM)  # the child was born with it held
        out, _ = child.communicate("x", timeout=30)
    assert child.returncode == 0 and out.strip() == "alive"
