import threading
import time

import numpy as np
import pytest

from fakes import FakeSource, onnx_model, probe, rotate_clip, serve_mpegts, write_chroma_ramp, write_clip
from realtime_nst.cli import main
from realtime_nst.errors import CameraError
from realtime_nst.runtime.camera import CameraSource
from realtime_nst.runtime.stylizer import OnnxStylizer
from realtime_nst.runtime.live import LiveState, handle_key, run_live


def test_video_file_stands_in_for_a_camera(tmp_path, identity, capsys):
    clip = write_clip(tmp_path / "cam.mp4", frames=30, audio=None)
    rec = tmp_path / "rec.mp4"
    code = main(["webcam", "--camera", str(clip), "--no-window", "--model", str(identity), "--record", str(rec)])
    assert code == 0
    info = probe(rec)
    assert 1 <= info["count"] <= 30 and info["size"] == (64, 48)
    before = clip.read_bytes()
    code = main(["webcam", "--camera", str(clip), "--no-window", "--model", str(identity), "--record", str(clip),
                 "--overwrite"])
    assert code == 2 and "is an input file" in capsys.readouterr().err and clip.read_bytes() == before
    code = main(["webcam", "--camera", str(clip), "--no-window", "--model", str(identity), "--record",
                 str(tmp_path / "rec.png")])  # refused before the camera opens
    assert code == 2 and "still-image format" in capsys.readouterr().err and not (tmp_path / "rec.png").exists()


def test_a_file_standing_in_for_a_camera_is_decoded_as_video_files_are(tmp_path):
    """OpenCV repeats 4:2:0 chroma over 2x2 pixels and ignores a phone's display matrix; the file
    as a camera gives the frames `rtnst video` gets from it."""
    from realtime_nst.runtime.sources import VideoFileSource

    ramp = write_chroma_ramp(tmp_path / "ramp.mkv", size=(64, 16))
    with CameraSource(str(ramp)) as cam:
        frame, pts = cam.read()
        assert cam.fps == 25 and cam.size == (64, 16) and pts is None
    red = frame[8, 4:-4, 2].astype(int)
    assert (np.diff(red) > 0).all(), red  # a smooth ramp, not a staircase
    turned = rotate_clip(write_clip(tmp_path / "c.mp4", frames=3, audio=None), tmp_path / "portrait.mp4")
    with CameraSource(str(turned)) as cam, VideoFileSource(turned) as video:
        assert cam.size == video.size == (48, 64)
        assert np.array_equal(cam.read().frame, video.read().frame)


def test_a_stream_url_is_decoded_as_files_are_and_a_hang_up_or_silence_ends_it_clearly():
    from realtime_nst.errors import InputError, RtnstError

    url, sender = serve_mpegts(frames=20)
    with CameraSource(url) as cam:
        frame, _ = cam.read()
        assert cam.size == (64, 16) and cam.fps == 25
        assert (np.diff(frame[8, 4:-4, 2].astype(int)) > 0).all()  # chroma interpolated, not OpenCV's staircase
        with pytest.raises(CameraError, match="stopped delivering"):
            while cam.read() is not None:
                pass
    url, sender = serve_mpegts(frames=5, stall_s=10)
    started = time.monotonic()
    with pytest.raises(RtnstError, match="nothing for 1 s|no frame for 1 s"):
        with CameraSource(url, timeout_s=1) as cam:
            while cam.read() is not None:
                pass
    assert time.monotonic() - started < 5
    with pytest.raises(InputError, match="could not open the stream tcp://127.0.0.1:1 "):
        CameraSource("tcp://127.0.0.1:1")


def test_camera_that_does_not_open(capsys, identity):
    assert main(["webcam", "--camera", "/dev/video99", "--no-window", "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not open camera" in err[0]
    for index in ("99999999999999999999", "²"):  # larger than OpenCV takes; a digit that is no number
        assert main(["webcam", "--camera", index, "--no-window", "--model", str(identity)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "camera" in err[0]


class FakeCapture:
    """cv2.VideoCapture stand-in: a live camera delivering ``n`` frames, then unplugged."""

    def __init__(self, n, delay_s=0.0):
        self.n, self.delay_s, self.i = n, delay_s, 0

    def isOpened(self):
        return True

    def get(self, prop):
        return 30.0

    def set(self, *a):
        return True

    def read(self):
        time.sleep(self.delay_s)
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, np.full((24, 32, 3), self.i % 256, np.uint8)

    def release(self):
        pass


def test_disconnect_mid_stream_raises(monkeypatch):
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", lambda *_: FakeCapture(5))
    with CameraSource(0) as cam:
        with pytest.raises(CameraError, match="stopped delivering"):
            while cam.read() is not None:
                pass


class GatedCapture(FakeCapture):
    """Delivers frames 1..n as fast as asked, then blocks until released: the test knows exactly
    which frames the grabber has seen when it reads."""

    def __init__(self, n):
        super().__init__(n + 1)
        self.delivered, self.release_event = threading.Event(), threading.Event()

    def read(self):
        if self.i == self.n - 1:
            self.delivered.set()
            self.release_event.wait(5)
            return False, None
        return super().read()


def test_live_source_keeps_only_newest_frame(monkeypatch):
    import cv2

    cap = GatedCapture(20)
    monkeypatch.setattr(cv2, "VideoCapture", lambda *_: cap)
    with CameraSource(0) as cam:
        assert cap.delivered.wait(5)  # a slow consumer: 20 frames arrived before its first read
        newest, pts = cam.read()
        assert pts is None and cam.size == (32, 24)  # live: no timestamps; the size as delivered
        assert int(newest[0, 0, 0]) == 20 and cam.frames_dropped == 19
        cap.release_event.set()


def test_keys():
    class S:
        strength = 1.0

    sts = [S(), S()]
    state = LiveState()
    snaps, switches = [], []
    for key in (ord("n"), ord("-"), ord("-"), ord(" "), ord("s"), ord("p")):
        handle_key(key, state, sts, on_snapshot=lambda: snaps.append(1), on_switch=lambda: switches.append(1))
    assert state.index == 0 and sts[1].strength == 0.8 and state.paused and snaps == [1] and len(switches) == 2
    handle_key(ord("q"), state, sts, on_snapshot=lambda: None, on_switch=lambda: None)
    assert state.quit


def test_run_live_switches_models_and_sends_to_sinks(tmp_path, identity):
    def Source():
        return FakeSource(lambda i: np.full((16, 16, 3), 100, np.uint8), 6)

    class Sink:
        def __init__(self):
            self.frames = []

        def write(self, f):
            self.frames.append(f)

    first = onnx_model(tmp_path / "first.onnx", kind="first_channel")
    keys = iter([ord("n"), -1, ord("s"), -1, -1, -1, -1])
    sink = Sink()
    with OnnxStylizer(identity) as a, OnnxStylizer(first, input_range="0-1") as b:
        n = run_live(Source(), [a, b], window=False, sinks=[sink], snapshot_dir=tmp_path, keys=lambda: next(keys, -1))
    assert n == 6 and len(sink.frames) == 6
    assert list(tmp_path.glob("rtnst_*.png"))


def test_vcam_through_a_fake_backend(tmp_path, identity):
    pyvirtualcam = pytest.importorskip("pyvirtualcam")
    sent = []

    class FakeBackend:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            self.size = (width, height)

        def device(self):
            return "fake0"

        def send(self, frame):
            sent.append(frame.copy())

        def close(self):
            pass

    pyvirtualcam.register_backend("rtnst-test", FakeBackend)
    clip = write_clip(tmp_path / "cam.mp4", frames=10, audio=None)
    code = main(["webcam", "--camera", str(clip), "--no-window", "--model", str(identity), "--vcam",
                 "--vcam-backend", "rtnst-test", "--max-frames", "4"])
    assert code == 0
    assert len(sent) == 4 and sent[0].size == 48 * 64 * 3  # pyvirtualcam hands backends flat buffers


def test_disconnect_keeps_the_recording(tmp_path, identity, monkeypatch, capsys):
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", lambda *_: FakeCapture(8, delay_s=0.01))
    rec = tmp_path / "rec.mp4"
    assert main(["webcam", "--camera", "0", "--no-window", "--model", str(identity), "--record", str(rec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped delivering" in err[0]
    assert 1 <= probe(rec)["count"] <= 8


def test_window_shows_each_frame_with_its_overlay_and_is_closed(monkeypatch, identity):
    """The preview path (cv2 GUI replaced: CI has no display): every stylised frame is shown with
    the fps/model line drawn in its top-left corner only, keys come from cv2.waitKey, and the window
    is destroyed even when the source fails mid-stream."""
    import realtime_nst.runtime.live as webcam

    calls = {"named": 0, "destroyed": 0, "shown": []}
    monkeypatch.setattr(webcam.cv2, "namedWindow", lambda *a: calls.__setitem__("named", calls["named"] + 1))
    monkeypatch.setattr(webcam.cv2, "destroyWindow", lambda *a: calls.__setitem__("destroyed", calls["destroyed"] + 1))
    monkeypatch.setattr(webcam.cv2, "imshow", lambda name, img: calls["shown"].append(img.copy()))
    keys = iter([-1, -1, ord("q")])
    monkeypatch.setattr(webcam.cv2, "waitKey", lambda delay: next(keys, -1))

    def Source():
        return FakeSource(lambda i: np.full((64, 160, 3), 90, np.uint8), 1000, size=(160, 64))

    with OnnxStylizer(identity) as st:
        n = run_live(Source(), [st], window=True)
    assert n == 3 and calls["named"] == 1 and calls["destroyed"] == 1 and len(calls["shown"]) == 3
    shown = calls["shown"][-1]
    assert shown.shape == (64, 160, 3)
    assert np.any(shown[:30, :] != 90), "no overlay text in the top-left corner"
    assert np.all(shown[32:, :] == 90), "the overlay must not touch the rest of the frame"

    class Failing:
        def read(self):
            raise CameraError("camera 0 disconnected")

    with OnnxStylizer(identity) as st, pytest.raises(CameraError):
        run_live(Failing(), [st], window=True)
    assert calls["destroyed"] == 2


def test_one_frame_clip_is_recorded_whole_and_an_empty_recording_is_an_error(tmp_path, identity, capsys):
    from realtime_nst.errors import OutputError
    from realtime_nst.runtime.sinks import VideoFileSink

    clip = write_clip(tmp_path / "one.mp4", frames=1, audio=None)
    rec = tmp_path / "rec.mp4"
    assert main(["webcam", "--camera", str(clip), "--no-window", "--model", str(identity), "--record", str(rec)]) == 0
    assert probe(rec)["count"] == 1  # the frame read to learn the size is recorded too
    empty = VideoFileSink(tmp_path / "empty.mp4", width=64, height=48, fps=30)
    with pytest.raises(OutputError, match="no frames to write"):
        empty.close()
    empty.close()  # safe twice
    assert sorted(p.name for p in tmp_path.iterdir() if "empty" in p.name) == []


def test_no_display_and_unknown_vcam_backend_are_one_line(tmp_path, identity, monkeypatch, capsys):
    clip = write_clip(tmp_path / "c.mp4", frames=3, audio=None)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["-q", "webcam", "--camera", str(clip), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no display" in err[0] and "--no-window" in err[0]
    pytest.importorskip("pyvirtualcam")
    assert main(["-q", "webcam", "--camera", str(clip), "--model", str(identity), "--no-window", "--vcam",
                 "--vcam-backend", "nonsense"]) == 2
    captured = capsys.readouterr()
    assert "unknown virtual camera backend 'nonsense'" in captured.err and "Exception ignored" not in captured.err


def test_a_camera_that_fails_right_after_its_first_frames_still_opens(monkeypatch):
    import cv2

    class GrabsAtOnce(threading.Thread):  # the grabber sees frames and the failure before the opener waits
        def start(self):
            self.run()

    monkeypatch.setattr(cv2, "VideoCapture", lambda *_: FakeCapture(2))
    monkeypatch.setattr(threading, "Thread", GrabsAtOnce)
    with CameraSource(0) as cam:
        assert cam.read() is not None  # the newest frame, then the failure
        with pytest.raises(CameraError, match="stopped delivering frames after 2"):
            cam.read()


def test_frames_stylised_ahead_are_shown_in_order_and_restyled_on_a_model_switch(tmp_path):
    from realtime_nst.errors import OptionError

    class Tagger:  # a model that stamps its own number and the frame's on the output
        def __init__(self, tag):
            self.tag = tag

        def stylize(self, frame):
            time.sleep(0.002 * (int(frame[0, 0, 0]) % 3))  # later frames often finish first
            out = frame.copy()
            out[..., 1] = self.tag
            return out

    written = []

    class Sink:
        def write(self, f):
            written.append((int(f[0, 0, 0]), int(f[0, 0, 1])))

    source = FakeSource(lambda i: np.full((8, 8, 3), i, np.uint8), 20)
    keys = iter([-1, -1, -1, ord("n")])  # after the 4th frame is shown: frames 4 and 5 are already stylised
    n = run_live(source, [Tagger(1), Tagger(2)], window=False, sinks=[Sink()], keys=lambda: next(keys, -1), workers=3)
    assert [f for f, _ in written] == sorted(f for f, _ in written)  # in order
    assert written[:4] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert all(tag == 2 for _, tag in written[4:])  # nothing of the first model after the switch
    assert [f for f, _ in written] == list(range(20)) and n == 20  # no frame lost
    with pytest.raises(OptionError, match="workers"):
        run_live(FakeSource(lambda i: np.zeros((8, 8, 3), np.uint8), 1), [Tagger(1)], window=False, workers=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_live_loop_smooths_at_the_size_the_model_runs_at_as_video_does(tmp_path, workers):
    model = onnx_model(tmp_path / "native.onnx", metadata={"rtnst.max_side_px": "32"})
    seen, written = [], []

    class Smoother:
        def __call__(self, source, stylized):
            seen.append((source.shape, stylized.shape))
            return stylized

        def reset(self):
            pass

    class Sink:
        def write(self, f):
            written.append(f.shape)

    source = FakeSource(lambda i: np.full((48, 64, 3), 10 * i, np.uint8), 4)
    with OnnxStylizer(model) as st:
        assert run_live(source, [st], window=False, sinks=[Sink()], smoother=Smoother(), workers=workers) == 4
        st.strength = 0.5  # blended with the full-size frame: smoothed at full size
        run_live(FakeSource(lambda i: np.zeros((48, 64, 3), np.uint8), 1), [st], window=False, sinks=[Sink()],
                 smoother=Smoother(), workers=workers)
        st.strength, st.output_size = 1.0, (40, 30)  # --output-size: every sink gets that size
        run_live(FakeSource(lambda i: np.zeros((48, 64, 3), np.uint8), 2), [st], window=False, sinks=[Sink()],
                 smoother=Smoother(), workers=workers)
    assert seen[:5] == [((24, 32, 3), (24, 32, 3))] * 4 + [((48, 64, 3), (48, 64, 3))]
    assert written == [(48, 64, 3)] * 5 + [(30, 40, 3)] * 2  # what the window, recording and virtual camera get
