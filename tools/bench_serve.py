"""What `rtnst serve` delivers: frames/s to 1 and 4 viewers, the serving's own CPU cost, and
glass-to-glass latency.

    python tools/bench_serve.py [--video bunny_640x360.mp4] [--sizes 640x360,1280x720] [--viewers 1,4]
                                [--seconds 6] [--model MODEL] [--workers 1,2]

1. camera: `rtnst serve --camera CLIP --port 0` in a subprocess (the clip stands in for a camera and
   is delivered at its own rate, 24 fps for bunny; other sizes are resized into a temporary clip
   first); N viewers here read /stream.mjpg. Frames/s each viewer got, and the server's CPU use
   (/proc) with 0 and N viewers: the difference is the serving's own cost.
2. capacity: the same loop in-process, fed by a source that never waits: the most it can deliver.
3. encode: cv2.imencode of stylised frames, ms per frame (the hub encodes each frame once, however
   many viewers there are).
4. latency: an in-process server whose fake camera (30 fps, newest frame wins, as CameraSource)
   stamps a frame counter into each frame as black/white blocks; a viewer decodes every JPEG it gets,
   reads the counter back and takes the frame's creation time from its arrival time.
The numbers mean something only on an otherwise idle machine: the load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_smoothing import load_frames  # noqa: E402

from realtime_nst import frames as fr  # noqa: E402
from realtime_nst.registry import resolve_model  # noqa: E402
from realtime_nst.runtime.hub import serve_live  # noqa: E402
from realtime_nst.runtime.sources import TimedFrame  # noqa: E402
from realtime_nst.runtime.stylizer import OnnxStylizer  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "assets" / "videos" / "bunny_640x360.mp4"
BITS = 14  # counter bits in the stamp, after one white and one black reference block


def stamp(frame: np.ndarray, n: int) -> np.ndarray:
    """Blocks across the top: white, black (the references), then ``n``'s bits (white = 1). Styles
    tint them but keep black from white, which single pixels or digits would not survive."""
    c = frame.shape[1] // (BITS + 2)
    for j, bit in enumerate([1, 0] + [(n >> k) & 1 for k in range(BITS)]):
        frame[:c, j * c:(j + 1) * c] = 255 if bit else 0
    return frame


def read_stamp(frame: np.ndarray) -> int | None:
    c = frame.shape[1] // (BITS + 2)
    m = c // 4  # block centres: JPEG and the style blur the edges
    v = [float(frame[m:c - m, j * c + m:(j + 1) * c - m].mean()) for j in range(BITS + 2)]
    if v[0] - v[1] < 40:
        return None
    return sum(1 << k for k in range(BITS) if v[k + 2] > (v[0] + v[1]) / 2)


def write_clip(frames: list[np.ndarray], path: Path, fps: int = 24) -> Path:
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        for f in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        out.mux(vs.encode(None))
    return path


def watch(url: str, until: float, arrivals: list, decode=None) -> None:
    """Read an MJPEG stream until ``until`` (perf_counter), noting each part's arrival time
    (and ``decode(jpeg_bytes, t)`` of it)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            while time.perf_counter() < until:
                line = r.readline()
                if not line:
                    return
                if line.startswith(b"Content-Length:"):
                    n = int(line.split(b":")[1])
                    r.readline()
                    data = r.read(n)
                    t = time.perf_counter()
                    arrivals.append(t)
                    if decode:
                        decode(data, t)
    except OSError:
        pass


def viewers_fps(url: str, n: int, start: float, seconds: float) -> list[float]:
    """Each of ``n`` viewers' frames/s between ``start`` and ``start + seconds``."""
    logs = [[] for _ in range(n)]
    threads = [threading.Thread(target=watch, args=(url, start + seconds, log), daemon=True) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 20)
    return [sum(1 for t in log if t >= start) / seconds for log in logs]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def camera_run(clip: Path, model: str | None, n_viewers: int, seconds: float) -> tuple[list[float], float]:
    """`rtnst serve` on ``clip``: (each viewer's fps, server CPU cores used) over ``seconds``."""
    cmd = [sys.executable, "-m", "realtime_nst", "-q", "serve", "--camera", str(clip), "--port", "0"]
    proc = subprocess.Popen(cmd + (["--model", model] if model else []), stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        port = int(first.rsplit(":", 1)[1].strip("/\n"))
        time.sleep(1.0)  # the model's first runs are slow
        c0, start = cpu_s(proc.pid), time.perf_counter() + 0.5
        fps = viewers_fps(f"http://127.0.0.1:{port}/stream.mjpg", n_viewers, start, seconds) if n_viewers else []
        if not n_viewers:
            time.sleep(seconds + 0.5)
        return fps, (cpu_s(proc.pid) - c0) / (time.perf_counter() - start + 0.5)
    finally:
        proc.terminate()
        proc.wait(20)


class FastSource:
    """Frames from memory, as fast as asked (the capacity run)."""

    def __init__(self, frames):
        self.frames, self.i = frames, 0
        self.size, self.fps, self.time_base = (frames[0].shape[1], frames[0].shape[0]), 30, None

    def read(self):
        self.i += 1
        return TimedFrame(self.frames[self.i % len(self.frames)], None)

    def close(self):
        pass


class StampingCamera(FastSource):
    """A 30 fps camera whose grabber stamps each frame with its number; read() gives the newest
    frame not yet given (waiting for one), as CameraSource does. ``born[n]`` is when frame n was made."""

    def __init__(self, frames, fps=30):
        super().__init__(frames)
        self.born, self._cond, self._new, self._stop = {}, threading.Condition(), None, threading.Event()
        threading.Thread(target=self._grab, args=(1 / fps,), daemon=True).start()

    def _grab(self, period):
        n, next_t = 0, time.perf_counter()
        while not self._stop.is_set():
            frame = stamp(self.frames[n % len(self.frames)].copy(), n % (1 << BITS))
            with self._cond:
                self.born[n % (1 << BITS)] = time.perf_counter()
                self._new = frame
                self._cond.notify_all()
            n, next_t = n + 1, next_t + period
            time.sleep(max(0.0, next_t - time.perf_counter()))

    def read(self):
        with self._cond:
            if not self._cond.wait_for(lambda: self._new is not None, timeout=5):
                return None  # closed
            frame, self._new = self._new, None
        return TimedFrame(frame, None)

    def close(self):
        self._stop.set()


def in_process(source, model: str | None, n_viewers: int, seconds: float, decode=None, workers: int = 1) -> dict:
    """serve_live over ``source`` with ``n_viewers``, ``workers`` frames stylised at once (the cores
    shared between them, as `rtnst serve` does); the first viewer runs ``decode``."""
    ready, stop = queue.Queue(), threading.Event()
    threads = max(1, (os.cpu_count() or 1) // workers)
    with OnnxStylizer(resolve_model(model), spin=False, threads=threads) as st:
        thread = threading.Thread(target=lambda: serve_live(source, [st], port=0, stop=stop, on_ready=ready.put,
                                                            keep_serving=False, workers=workers), daemon=True)
        thread.start()
        server = ready.get(timeout=30)
        time.sleep(1.0)
        start = time.perf_counter() + 0.5
        url = server.url("/stream.mjpg")
        logs = [[] for _ in range(n_viewers)]
        threads = [threading.Thread(target=watch, args=(url, start + seconds, log, decode if k == 0 else None),
                                    daemon=True) for k, log in enumerate(logs)]
        for t in threads:
            t.start()
        time.sleep(start - time.perf_counter())
        f0 = server.hub.stats()["frames"]
        for t in threads:
            t.join(seconds + 20)
        stats = server.hub.stats()
        stop.set()
        source.close()
        thread.join(20)
    return {"loop_fps": (stats["frames"] - f0) / seconds, "encode_ms": stats["encode_ms"],
            "fps": [sum(1 for t in log if t >= start) / seconds for log in logs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--sizes", default="640x360,1280x720")
    ap.add_argument("--viewers", default="1,4")
    ap.add_argument("--seconds", type=float, default=6.0, help="measuring window (the bunny clip lasts 10 s)")
    ap.add_argument("--model", help="default: the shipped default model")
    ap.add_argument("--skip-camera", action="store_true", help="leave out the `rtnst serve` subprocess runs")
    ap.add_argument("--workers", default="1,2", help="frames stylised at once in the in-process runs, side by side "
                                                     "(default: 1,2; `rtnst serve` uses one per core)")
    args = ap.parse_args()
    plans = [int(v) for v in args.workers.split(",")]
    sizes = [fr.parse_size(s) for s in args.sizes.split(",")]
    counts = [int(v) for v in args.viewers.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; model {resolve_model(args.model).name}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            w, h = size
            frames = load_frames(args.video, size, 240)
            clip = args.video if _clip_size(args.video) == size else write_clip(frames, Path(tmp) / f"clip_{w}x{h}.mp4")
            if not args.skip_camera:
                _, idle_cpu = camera_run(clip, args.model, 0, args.seconds)
                for n in counts:
                    fps, cpu = camera_run(clip, args.model, n, args.seconds)
                    print(f"{w}x{h} camera ({clip.name}), {n} viewer{'s' * (n > 1)}: {np.mean(fps):5.1f} fps each "
                          f"(min {min(fps):.1f}); server CPU {cpu:.2f} cores vs {idle_cpu:.2f} with none")
            for n in counts:
                for k in plans:
                    r = in_process(FastSource(frames), args.model, n, args.seconds, workers=k)
                    print(f"{w}x{h} capacity, {n} viewer{'s' * (n > 1)}, {k} at once: loop {r['loop_fps']:5.1f} fps, "
                          f"{np.mean(r['fps']):5.1f} fps each (min {min(r['fps']):.1f}), JPEG {r['encode_ms']} ms/frame")
            with OnnxStylizer(resolve_model(args.model), spin=False) as st:
                styled = [st.stylize(f) for f in frames[:20]]
            enc = []
            for f in styled * 3:
                t0 = time.perf_counter()
                ok, data = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])
                enc.append(time.perf_counter() - t0)
            print(f"{w}x{h} JPEG encode (quality 80): {1000 * np.median(enc):.2f} ms/frame median, "
                  f"{len(data) / 1024:.0f} KB")
            for n, k in [(n, k) for n in counts for k in plans]:
                cam = StampingCamera(frames)
                lat, unread = [], [0]

                def decode(data, t, cam=cam, lat=lat, unread=unread):
                    k = read_stamp(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
                    if k is None or k not in cam.born:
                        unread[0] += 1
                    else:
                        lat.append(t - cam.born[k])

                r = in_process(cam, args.model, n, args.seconds, decode=decode, workers=k)
                if lat:
                    ms = 1000 * np.array(lat)
                    print(f"{w}x{h} glass-to-glass, 30 fps camera, {n} viewer{'s' * (n > 1)}, {k} at once: median {np.median(ms):.0f} ms, "
                          f"p90 {np.percentile(ms, 90):.0f} ms over {len(ms)} frames ({unread[0]} unreadable); "
                          f"{np.mean(r['fps']):.1f} fps each")
    print(f"load average {os.getloadavg()[0]:.1f}")


def _clip_size(video: Path) -> tuple[int, int]:
    cap = cv2.VideoCapture(str(video))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return size


if __name__ == "__main__":
    main()
