"""`rtnst serve`: a real server on a free loopback port, driven by fake cameras. Every wait is bounded."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from fakes import FakeSource, gradient_frame, onnx_model, write_clip
from realtime_nst.errors import CameraError, OptionError
from realtime_nst.runtime.hub import FrameHub, serve_live
from realtime_nst.runtime.serve import LiveServer, is_loopback, server_token, token_ok
from realtime_nst.runtime.smoothing import make_smoother
from realtime_nst.runtime.stylizer import OnnxStylizer

TIMEOUT_S = 10.0


@pytest.fixture
def add_half(tmp_path):
    return onnx_model(tmp_path / "add_half.onnx", kind="add_half")


def paced(make, period_s=0.01):
    """``make`` delivering at most one frame per ``period_s``, as a camera would."""
    def frame(i):
        time.sleep(period_s)
        return make(i)
    return frame


@contextlib.contextmanager
def serving(stylizers, source=None, *, size=(64, 48), **kw):
    """serve_live in a thread on a free port: yields (server, result); stops and joins it after."""
    source = source or FakeSource(paced(lambda i: gradient_frame(*size, index=i)), 10**6, size=size)
    ready, stop, result = queue.Queue(), threading.Event(), {}

    def run():
        try:
            result["frames"] = serve_live(source, stylizers, port=0, stop=stop, on_ready=ready.put, **kw)
        except BaseException as exc:  # handed to the test
            result["error"] = exc
            ready.put(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server = ready.get(timeout=TIMEOUT_S)
    try:
        if server is None:
            raise result["error"]
        yield server, result
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
        assert not thread.is_alive(), "serve_live did not stop"


def get(server, path, *, headers=None, method="GET", body=None):
    """(status, headers, body) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r, r.read()
    finally:
        conn.close()


def control(server, changes, path="/api/control"):
    status, _, body = get(server, path, method="POST", body=json.dumps(changes),
                          headers={"Content-Type": "application/json"})
    return status, json.loads(body)


def state(server):
    status, _, body = get(server, "/api/state")
    assert status == 200
    return json.loads(body)


def frames(server, path="/stream.mjpg"):
    """The stream's frames, decoded, as they arrive."""
    r = urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=TIMEOUT_S)
    assert r.headers.get_content_type() == "multipart/x-mixed-replace"
    with r:
        while True:
            line = r.readline()
            if not line:
                return
            if not line.startswith(b"--"):
                continue
            length = None
            while (line := r.readline().strip()):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            data = r.read(length)
            yield cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def wait_for(predicate, what, timeout_s=TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_page_state_and_stream_frames(identity):
    with OnnxStylizer(identity) as st, serving([st], size=(96, 64)) as (server, _):
        status, r, body = get(server, "/")
        assert status == 200 and r.headers.get_content_type() == "text/html" and b'id="live"' in body
        status, _, body = get(server, "/clean")
        assert status == 200 and b'data-mode="clean"' in body
        shots = []
        for frame in frames(server):
            shots.append(frame)
            if len(shots) == 5:
                break
        assert all(f.shape == (64, 96, 3) for f in shots)
        s = state(server)
        assert s["frames"] >= 5 and s["size"] == [96, 64] and s["models"] == ["identity"] and s["error"] is None
        assert s["fps"] > 0 and s["latency_ms"] is not None and not s["token_required"]
        status, r, body = get(server, "/frame.jpg")
        assert status == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (64, 96, 3)


def test_controls_change_the_output(identity, add_half):
    """Strength 0 shows the source, 1 the model's output; the style switch picks the other model."""
    source = FakeSource(paced(lambda i: np.full((32, 48, 3), 60, np.uint8)), 10**6, size=(48, 32))
    with OnnxStylizer(add_half, input_range="0-1") as bright, OnnxStylizer(identity) as same, \
            serving([bright, same], source, smoother=make_smoother("ema", strength=0.5), smooth=False) as (server, _):
        stream = frames(server)

        def shows(value):
            return lambda: abs(float(next(stream).mean()) - value) < 4

        wait_for(shows(187), "the model's output (60 + 127.5)")
        status, s = control(server, {"strength": 0})
        assert status == 200 and s["strength"] == 0
        wait_for(shows(60), "the source at strength 0")
        control(server, {"strength": 1.0, "model": 1})
        wait_for(shows(60), "the identity model")
        assert state(server)["model"] == 1
        control(server, {"model": 0, "smooth": True})
        wait_for(shows(187), "the first model again, smoothed")
        assert state(server)["smooth"] is True


def test_two_viewers_at_once(identity):
    with OnnxStylizer(identity) as st, serving([st]) as (server, _):
        got = {0: 0, 1: 0}

        def watch(k):
            for _ in frames(server):
                got[k] += 1
                if got[k] == 10:
                    return

        threads = [threading.Thread(target=watch, args=(k,), daemon=True) for k in got]
        for t in threads:
            t.start()
        wait_for(lambda: state(server)["viewers"] == 2 or all(v >= 10 for v in got.values()), "two viewers")
        for t in threads:
            t.join(TIMEOUT_S)
        assert got == {0: 10, 1: 10}


def test_a_viewer_that_stops_reading_stalls_nothing(identity):
    """A client that never reads fills its socket buffers; the loop and the other viewers go on."""
    big = (640, 360)  # large frames fill the stalled socket quickly
    source = FakeSource(paced(lambda i: (np.random.default_rng(i).random((360, 640, 3)) * 255).astype(np.uint8), 0.005),
                        10**6, size=big)
    with OnnxStylizer(identity) as st, serving([st], source) as (server, _):
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            wait_for(lambda: state(server)["viewers"] == 1, "the stalled viewer to connect")
            time.sleep(0.5)  # its buffers are full by now: ~20 frames of ~200 KB were offered
            before = state(server)["frames"]
            seen = 0
            for _ in frames(server):
                seen += 1
                if seen == 15:
                    break
            assert state(server)["frames"] >= before + 14  # the first frame seen may be the one at "before"
        finally:
            stalled.close()


def test_token_off_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("myhost.lan")
    made = server_token("0.0.0.0", None)
    assert made and len(made) >= 16 and made != server_token("0.0.0.0", None)
    assert server_token("127.0.0.1", None) is None and server_token("::", "given") == "given"
    assert token_ok(None, None) and token_ok("abc", "abc")
    assert not token_ok("abc", None) and not token_ok("abc", "abd") and not token_ok("abc", "")


def test_token_is_enforced(identity):
    """The handler's check, with a token given (as it is made up off loopback) on a loopback port."""
    with OnnxStylizer(identity) as st, serving([st], token="s3cret") as (server, _):
        assert server.url("/clean").endswith("/clean?token=s3cret")
        for path in ("/", "/clean", "/stream.mjpg", "/api/state", "/frame.jpg"):
            assert get(server, path)[0] == 403
            assert get(server, path + "?token=wrong")[0] == 403
        assert control(server, {"strength": 0.5})[0] == 403
        assert get(server, "/api/state?token=s3cret")[0] == 200
        assert get(server, "/api/state", headers={"X-Rtnst-Token": "s3cret"})[0] == 200
        status, s = control(server, {"strength": 0.5}, path="/api/control?token=s3cret")
        assert status == 200 and s["token_required"] and s["strength"] == 0.5


def test_bad_requests_get_4xx(identity, caplog):
    with OnnxStylizer(identity) as st, serving([st]) as (server, _):
        assert get(server, "/nope")[0] == 404
        assert get(server, "/api/control")[0] == 405
        assert get(server, "/", method="PUT")[0] == 405
        assert get(server, "/", method="DELETE")[0] == 405
        assert get(server, "/api/state", method="POST", body=b"{}", headers={"Content-Type": "application/json"})[0] == 405
        assert get(server, "/api/control", method="POST", body=b"strength=0")[0] == 415  # a form post from any web page
        json_ct = {"Content-Type": "application/json"}
        assert get(server, "/api/control", method="POST", body=b"x" * 5000, headers=json_ct)[0] == 413
        assert get(server, "/api/control", method="POST", body=b"{not json", headers=json_ct)[0] == 400
        for bad in ({"strength": 2}, {"strength": "1"}, {"model": 1}, {"model": True}, {"smooth": 1},
                    {"speed": 1}, [1, 2], None):
            status, body = control(server, bad)
            assert status == 400 and body["error"], bad
        assert get(server, "/", headers={"Host": "evil.example:8765"})[0] == 403  # DNS rebinding
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S) as raw:
            raw.sendall(b"GET / NOTHTTP\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.0 400")
        s = state(server)
        assert s["strength"] == 1.0 and s["model"] == 0
    assert "Traceback" not in caplog.text


class Unplugged:
    """A camera that delivers ``n`` frames, then disconnects."""

    size, fps, time_base = (32, 24), 30, None

    def __init__(self, n):
        self.n = n

    def read(self):
        from realtime_nst.runtime.sources import TimedFrame

        time.sleep(0.01)
        if self.n == 0:
            raise CameraError("camera 0 stopped delivering frames after 5 (disconnected?)")
        self.n -= 1
        return TimedFrame(np.full((24, 32, 3), 50, np.uint8), None)

    def close(self):
        pass


def test_a_camera_that_disconnects_shows_on_the_page(identity, caplog):
    with OnnxStylizer(identity) as st, serving([st], Unplugged(5)) as (server, result):
        s = wait_for(lambda: (s := state(server))["error"] and s, "the error in the state")
        assert "stopped delivering" in s["error"] and s["ended"] and s["frames"] == 5
        assert sum(1 for _ in frames(server)) <= 1  # the stream ends (after the last frame at most)
    assert isinstance(result["error"], CameraError)
    assert "stopped delivering" in caplog.text


def test_hub_alone():
    hub = FrameHub()
    assert hub.jpeg() == (0, b"") and hub.wait_newer(0, timeout_s=0.01) == 0
    frame = gradient_frame(40, 30)
    hub.publish(frame, taken_t=time.perf_counter())
    frame[:] = 0  # the hub copied it
    assert hub.wait_newer(0, timeout_s=0.01) == 1
    seq, data = hub.jpeg()
    assert seq == 1 and hub.jpeg()[1] is data and hub.encoded == 1  # encoded once, whoever asks
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).max() > 200
    hub.close()
    hub.close()
    assert hub.wait_newer(1, timeout_s=5) is None
    with pytest.raises(OptionError, match="jpeg_quality"):
        FrameHub(jpeg_quality=0)


def test_each_frame_published_carries_its_own_read_time_with_frames_read_ahead():
    from realtime_nst.runtime.hub import HubTap
    from realtime_nst.runtime.live import LiveState, run_live

    read_t = {}

    def make(i):
        read_t[i] = time.perf_counter()
        return np.full((8, 8, 3), i, np.uint8)

    class Slow:  # later frames often finish first
        def stylize(self, frame):
            time.sleep(0.003 * (int(frame[0, 0, 0]) % 3))
            return frame.copy()

    class Hub:
        published = []

        def publish(self, frame, *, taken_t):
            self.published.append((int(frame[0, 0, 0]), taken_t))

    hub = Hub()
    tap = HubTap(FakeSource(make, 12), hub)
    state = LiveState()
    keys = iter([-1, -1, ord("n")])  # a model switch while frames are read ahead
    assert run_live(tap, [Slow(), Slow()], window=False, sinks=[tap], state=state, workers=3,
                    keys=lambda: next(keys, -1)) == 12
    assert [i for i, _ in hub.published] == list(range(12)) and state.index == 1
    for i, t in hub.published:  # taken just after the source gave frame i, before it gave the next
        assert read_t[i] <= t and (i + 1 not in read_t or t <= read_t[i + 1])


def test_port_in_use_is_an_option_error(identity):
    with OnnxStylizer(identity) as st, serving([st]) as (server, _):
        with pytest.raises(OptionError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            LiveServer(FrameHub(), None, port=server.port)


def _start_cli(args, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "realtime_nst", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True).start()
    return proc, lines


def test_cli_serves_until_sigterm_and_closes_the_port(tmp_path, identity):
    clip = write_clip(tmp_path / "cam.mp4", frames=30, audio=None)
    proc, lines = _start_cli(["--camera", str(clip), "--port", "0", "--model", str(identity), "--smooth", "ema"], tmp_path)
    try:
        first = lines.get(timeout=30)
        assert first.startswith("rtnst: serving 64x48 on http://127.0.0.1:")
        port = int(first.rsplit(":", 1)[1].strip("/\n"))
        assert "/clean" in lines.get(timeout=5) and "/stream.mjpg" in lines.get(timeout=5)
        deadline = time.monotonic() + 20  # the port opens before the first frame is stylised
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=TIMEOUT_S) as r:
                s = json.load(r)
            if s["size"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert s["size"] == [64, 48] and s["smooth"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_bad_port_is_one_line(tmp_path, identity):
    clip = write_clip(tmp_path / "cam.mp4", frames=10, audio=None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "realtime_nst", "serve", "--camera", str(clip), "--port", str(port),
                            "--model", str(identity)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    err = [l for l in r.stderr.splitlines() if l.startswith("rtnst: error")]
    assert r.returncode == 2 and len(err) == 1 and "--port" in err[0] and "Traceback" not in r.stderr


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_in_a_headless_browser(tmp_path, add_half):
    """Chromium shows the stream on the clean page, and the page's script fills in the figures."""
    size = (320, 180)
    source = FakeSource(paced(lambda i: gradient_frame(*size, index=i), 0.02), 10**6, size=size)
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    with OnnxStylizer(add_half) as st, serving([st], source) as (server, _):
        shot = tmp_path / "clean.png"
        subprocess.run([*base, f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", server.url("/clean")],
                       capture_output=True, timeout=60, cwd=tmp_path)
        dom = subprocess.run([*base, "--dump-dom", server.url("/")], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path).stdout
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (size[1], size[0])
    # The frame fills the page: its horizontal (blue) and vertical (green) ramps are there.
    assert np.median(img[:, -20:, 0]) > np.median(img[:, :20, 0]) + 150
    assert np.median(img[-20:, :, 1]) > np.median(img[:20, :, 1]) + 150
    frames_shown = dom.split('id="frames">', 1)[1].split("<", 1)[0] if 'id="frames">' in dom else ""
    assert frames_shown.isdigit() and int(frames_shown) > 0, dom[-2000:]
    assert 'value="0"' in dom and "add_half" in dom  # the style list came from the state endpoint
