from fractions import Fraction

import numpy as np
import pytest

from fakes import probe, write_clip
from realtime_nst.cli import main
from realtime_nst.errors import OutputError
from realtime_nst.runtime.gif import GifFileSink


def gif_times_s(path):
    import av

    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return [float(f.pts * f.time_base) for f in frames], float(c.duration) / 1e6


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_video_to_gif_every_frame_at_the_source_pace_sound_said_left_out(tmp_path, identity, caplog):
    src = write_clip(tmp_path / "in.mp4", frames=24, size=(64, 48), fps=Fraction(24), audio="aac", brightness_ramp=True)
    out = tmp_path / "out.gif"
    with caplog.at_level("INFO", logger="rtnst"):
        assert main(["-q", "video", str(src), str(out), "--model", str(identity)]) == 0
    a, b = probe(src), probe(out)
    assert b["count"] == 24 and b["size"] == (64, 48) and b["audio"] == []
    # one palette of 256 colours for the clip, undithered: the picture and the frames' order survive
    err = [np.abs(x.astype(int) - y).mean() for x, y in zip(a["frames"], b["frames"])]
    assert max(err) < 4
    times, duration_s = gif_times_s(out)
    assert np.allclose(times, np.arange(24) / 24, atol=0.006) and abs(duration_s - 1.0) < 0.02
    assert any("no sound" in r.getMessage() for r in caplog.records)
    assert leftovers(tmp_path) == []  # the kept frames and the partial GIF are gone


def test_frames_in_bursts_are_kept_and_each_shown(tmp_path):
    out = tmp_path / "burst.gif"
    with GifFileSink(out, width=32, height=24, fps=Fraction(24), time_base=Fraction(1, 1000)) as sink:
        for i, at_ms in enumerate([0, 42, 90, 95, 170, 180, 250, 292]):  # a camera's clock: 24 fps, jittery
            sink.write(np.full((24, 32, 3), i * 30, np.uint8), at_ms)
    times, _ = gif_times_s(out)
    assert sink.frames_left_out == 0 and len(times) == 8 and min(np.diff(times)) >= 0.02 - 1e-9


def test_frames_faster_than_gif_players_show_are_left_out_and_said(tmp_path, caplog):
    out = tmp_path / "fast.gif"
    with caplog.at_level("WARNING", logger="rtnst"), GifFileSink(out, width=32, height=24, fps=Fraction(60)) as sink:
        for i in range(60):
            sink.write(np.full((24, 32, 3), i * 4, np.uint8))
    times, duration_s = gif_times_s(out)
    assert sink.frames_written + sink.frames_left_out == 60 and 20 <= sink.frames_written <= 51  # 0 to 1 s, 2 cs apart
    assert min(np.diff(times)) >= 0.02 - 1e-9  # browsers would play shorter delays as 0.1 s
    assert abs(duration_s - 1.0) < 0.05  # plays at the clip's speed
    assert any("left out" in r.getMessage() for r in caplog.records)


def test_small_frames_are_scaled_to_the_output_size_and_timestamps_are_kept(tmp_path):
    out = tmp_path / "big.gif"
    with GifFileSink(out, width=64, height=48, fps=Fraction(25), time_base=Fraction(1, 1000),
                     frame_size=(32, 24)) as sink:
        for pts in (5000, 5130, 5170, 5500):  # a variable-rate source, off the 1/25 s grid its rate would give
            sink.write(np.full((24, 32, 3), 200, np.uint8), pts)
    info = probe(out)
    assert info["size"] == (64, 48) and abs(int(info["frames"][0].mean()) - 200) <= 2
    assert np.allclose(gif_times_s(out)[0], [0.0, 0.13, 0.17, 0.5])


def test_abort_close_twice_and_refusals(tmp_path):
    out = tmp_path / "a.gif"
    sink = GifFileSink(out, width=32, height=24, fps=Fraction(25))
    sink.write(np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(OutputError, match="expected 32x24 frames, got 16x16"):
        sink.write(np.zeros((16, 16, 3), np.uint8))
    sink.abort()
    sink.abort()
    sink.close()
    with pytest.raises(OutputError, match="already closed"):
        sink.write(np.zeros((24, 32, 3), np.uint8))
    assert not out.exists() and leftovers(tmp_path) == []
    empty = GifFileSink(tmp_path / "e.gif", width=32, height=24, fps=Fraction(25))
    with pytest.raises(OutputError, match="no frames"):
        empty.close()
    assert leftovers(tmp_path) == [] and not (tmp_path / "e.gif").exists()
    out.write_bytes(b"mine")
    with pytest.raises(OutputError, match="exists"):
        GifFileSink(out, width=32, height=24, fps=Fraction(25))
    assert out.read_bytes() == b"mine"


def test_webcam_records_a_gif(tmp_path, identity):
    clip = write_clip(tmp_path / "cam.mp4", frames=10, audio=None)
    rec = tmp_path / "rec.gif"
    argv = ["-q", "webcam", "--camera", str(clip), "--no-window", "--model", str(identity), "--record", str(rec)]
    assert main(argv) == 0
    info = probe(rec)
    assert 1 <= info["count"] <= 10 and info["size"] == (64, 48)


def test_an_interrupted_or_damaged_clip_still_gives_a_gif_of_the_frames_done(tmp_path, identity):
    import threading

    from realtime_nst.errors import CorruptInputError
    from realtime_nst.runtime.stylizer import OnnxStylizer
    from realtime_nst.runtime.video import stylize_video

    class StopAfter10:
        def __init__(self, inner, stop):
            self.inner, self.stop, self.seen = inner, stop, 0

        def stylize(self, frame):
            self.seen += 1
            if self.seen == 10:
                self.stop.set()
            return self.inner.stylize(frame)

    src = write_clip(tmp_path / "in.mp4", frames=60, audio=None, faststart=True)  # its index first: cut, it opens
    stop = threading.Event()
    with OnnxStylizer(identity) as st:
        report = stylize_video(src, tmp_path / "cut.gif", StopAfter10(st, stop), progress=False, stop=stop)
    assert report.interrupted and 10 <= probe(tmp_path / "cut.gif")["count"] == report.frames_written < 60
    data = src.read_bytes()
    (tmp_path / "bad.mp4").write_bytes(data[: len(data) * 2 // 3])
    with OnnxStylizer(identity) as st, pytest.raises(CorruptInputError, match="bad.gif holds the"):
        stylize_video(tmp_path / "bad.mp4", tmp_path / "bad.gif", st, progress=False)
    assert probe(tmp_path / "bad.gif")["count"] >= 1 and leftovers(tmp_path) == []
