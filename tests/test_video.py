import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakes import gradient_frame, mux_frames, probe, write_chroma_ramp, write_clip
from realtime_nst.cli import main
from realtime_nst.runtime.sinks import VideoFileSink
from realtime_nst.runtime.stylizer import OnnxStylizer
from realtime_nst.runtime.video import stylize_video


def test_every_frame_same_rate_audio_remuxed(tmp_path, identity):
    src = write_clip(tmp_path / "in.mp4", frames=20, audio="aac")
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity)]) == 0
    a, b = probe(src), probe(out)
    assert b["count"] == a["count"] == 20
    assert b["rate"] == a["rate"] == Fraction(30000, 1001)
    assert b["size"] == a["size"]
    assert b["audio"] == ["aac"] and b["audio_samples"] == a["audio_samples"]  # copied, not re-encoded
    # identity model: the picture survives (only codec loss), colours not swapped
    err = np.mean([np.abs(x.astype(int) - y).mean() for x, y in zip(a["frames"], b["frames"])])
    assert err < 3
    assert not list(tmp_path.glob(".*part*"))


def test_audio_reencoded_when_container_cannot_hold_it(tmp_path, identity, caplog):
    src = write_clip(tmp_path / "in.mkv", frames=10, audio="libopus")
    out = tmp_path / "out.avi"
    with OnnxStylizer(identity) as st, caplog.at_level("INFO", logger="rtnst"):
        stylize_video(src, out, st, progress=False)
    info = probe(out)
    assert info["count"] == 10 and len(info["audio"]) == 1 and info["audio"][0] != "opus"
    assert any("re-encoding" in r.getMessage() for r in caplog.records)


def test_frames_stay_in_order(tmp_path, identity):
    src = write_clip(tmp_path / "ramp.mp4", frames=12, audio=None, brightness_ramp=True)
    out = tmp_path / "out.mp4"
    with OnnxStylizer(identity) as st:
        report = stylize_video(src, out, st, progress=False)
    assert report.frames_written == 12 and not report.interrupted
    means = [f.mean() for f in probe(out)["frames"]]
    assert means == sorted(means) and means[-1] - means[0] > 150
    # AVI stores a frame rate, not timestamps: frames are numbered at the source's rate, without B-frames
    avi = tmp_path / "out.avi"
    with OnnxStylizer(identity) as st:
        stylize_video(src, avi, st, progress=False)
    info = probe(avi)
    assert info["rate"] == Fraction(30000, 1001) and info["count"] == 12
    means = [f.mean() for f in info["frames"]]
    assert means == sorted(means)


def test_avi_picture_starts_with_its_sound(tmp_path, identity):
    """FFmpeg's reader puts H.264 in AVI two frames after its sound; the picture must start at 0 as the audio does."""
    import av

    src = write_clip(tmp_path / "in.mp4", frames=12, audio="aac")
    out = tmp_path / "out.avi"
    with OnnxStylizer(identity) as st:
        stylize_video(src, out, st, progress=False)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        first = next(c.decode(video=0))
        assert first.pts * first.time_base == 0
        assert stream.codec_context.name == "mpeg4" and stream.codec_tag == "XVID"
    assert probe(out)["count"] == 12


class StopAfter:
    """A stylizer that asks the pipeline to stop after ``n`` frames, as Ctrl-C would."""

    def __init__(self, inner, stop, n):
        self.inner, self.stop, self.n, self.seen = inner, stop, n, 0

    def stylize(self, frame):
        self.seen += 1
        if self.seen == self.n:
            self.stop.set()
        return self.inner.stylize(frame)


def test_interrupt_leaves_playable_partial_file(tmp_path, identity):
    src = write_clip(tmp_path / "in.mp4", frames=60, audio="aac")
    out = tmp_path / "out.mp4"
    stop = threading.Event()
    with OnnxStylizer(identity) as st:
        report = stylize_video(src, out, StopAfter(st, stop, 10), progress=False, stop=stop)
    assert report.interrupted
    info = probe(out)
    assert 10 <= info["count"] < 60 and info["count"] == report.frames_written
    video_s = info["count"] / float(info["rate"])
    assert abs(info["audio_samples"] / info["audio_rate"] - video_s) < 0.1  # audio cut at the same point


def test_sigint_in_a_real_process(tmp_path, identity):
    src = write_clip(tmp_path / "in.mp4", frames=400, size=(320, 240), audio=None)
    out = tmp_path / "out.mp4"
    code = (
        "import sys, time\n"
        "from realtime_nst.cli import common\n"
        "orig = common.make_stylizer\n"
        "class Slow:\n"
        "    def __init__(self, st): self.st = st\n"
        "    def stylize(self, f): time.sleep(0.02); return self.st.stylize(f)\n"
        "    def __enter__(self): return self\n"
        "    def __exit__(self, *a): self.st.close()\n"
        "common.make_stylizer = lambda *a, **k: Slow(orig(*a, **k))\n"
        "from realtime_nst.cli import video\n"
        "video.make_stylizer = common.make_stylizer\n"
        "from realtime_nst.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, "video", str(src), str(out), "--model", str(identity)],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.*.part.mp4")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    n = probe(out)["count"]
    assert 0 < n < 400


def test_truncated_video_keeps_decoded_frames(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=60, size=(160, 120), audio=None, faststart=True)
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(cut), str(out), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated" in err[0] and str(out) in err[0]
    import re

    decoded, kept = (int(v) for v in re.search(r"only (\d+) could be decoded.* holds the (\d+) frames", err[0]).groups())
    assert 0 < decoded < 60 and kept == decoded == probe(out)["count"]  # every decoded frame is written


def _damage_packet(src, index: int) -> None:
    """Overwrites the bytes of the clip's ``index``-th video packet, as a bad sector would."""
    import av

    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    pos, size = packets[index]
    data = bytearray(src.read_bytes())
    data[pos:pos + size] = b"\xff" * size
    src.write_bytes(bytes(data))


def test_a_damaged_packet_is_left_out_and_the_rest_stylised(tmp_path, identity, caplog):
    src = write_clip(tmp_path / "in.mp4", frames=30, size=(160, 120))
    _damage_packet(src, 10)
    out = tmp_path / "out.mp4"
    with caplog.at_level("WARNING", logger="rtnst"):
        assert main(["-q", "video", str(src), str(out), "--model", str(identity)]) == 0
    assert "1 damaged video packet could not be decoded and was left out (the first after frame 10)" in caplog.text
    info = probe(out)
    assert info["count"] == 29 and abs(info["audio_samples"] / 48000 - 30 * 1001 / 30000) < 0.05
    import av

    with av.open(str(out)) as c:  # the frame before the gap is shown longer: the picture lasts as long as before
        v = c.streams.video[0]
        assert abs(float(v.duration * v.time_base) - 30 * 1001 / 30000) < 0.01


def test_damage_with_nothing_after_it_is_still_corrupt(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=12, size=(160, 120), audio=None)
    for index in range(6, 12):  # the second half: a file whose end was overwritten
        _damage_packet(src, index)
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is corrupt: decoding failed after" in err[0] and str(out) in err[0]
    assert 0 < probe(out)["count"] <= 6


def test_a_transport_stream_cut_part_way_through_a_packet_is_truncated(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.ts", frames=30, size=(160, 120), audio=None)
    data = src.read_bytes()
    assert len(data) % 188 == 0
    cut = tmp_path / "cut.ts"  # a half-downloaded recording: no index to tell, but a packet left whole
    cut.write_bytes(data[: len(data) // 2 + 77])
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(cut), str(out), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated" in err[0] and str(out) in err[0]
    assert 0 < probe(out)["count"] < 30
    assert main(["-q", "video", str(src), str(tmp_path / "whole.mp4"), "--model", str(identity)]) == 0


def test_existing_output_is_not_overwritten(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=4, audio=None)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    assert main(["video", str(src), str(out), "--model", str(identity)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--overwrite"]) == 0
    assert probe(out)["count"] == 4


@pytest.mark.parametrize("make_input, expect", [
    (lambda p: p / "missing.mp4", "does not exist"),
    (lambda p: (p / "notes.mp4").write_text("hello") and p / "notes.mp4", "not a video"),
    (lambda p: p, "holds no videos"),  # a folder is searched for videos
])
def test_bad_inputs_one_line_exit_2(tmp_path, identity, capsys, make_input, expect):
    src = make_input(tmp_path)
    assert main(["video", str(src), str(tmp_path / "o.mp4"), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]
    assert not (tmp_path / "o.mp4").exists()


def test_unwritable_output_and_bad_model(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=2, audio=None)
    assert main(["video", str(src), str(tmp_path / "nodir" / "o.mp4"), "--model", str(identity)]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(64))
    assert main(["video", str(src), str(tmp_path / "o.mp4"), "--model", str(junk)]) == 2
    assert "not a usable ONNX model" in capsys.readouterr().err


def test_a_stream_url_as_input_is_refused_with_the_command_that_reads_it(tmp_path, identity, capsys):
    out = tmp_path / "o.mp4"
    assert main(["video", "rtsp://127.0.0.1:9/live", str(out), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rtnst webcam --camera rtsp://127.0.0.1:9/live" in err[0] and not out.exists()


@pytest.mark.parametrize("name, expect", [("o.png", "still-image format"), ("o.jpg", "still-image format"),
                                          ("o.xyz", "cannot tell the video format"), ("o.m4a", "audio format")])
def test_an_output_suffix_ffmpeg_cannot_write_as_video_is_refused_before_the_model_loads(tmp_path, capsys, name,
                                                                                          expect):
    src = write_clip(tmp_path / "in.mp4", frames=2, audio="aac")  # with audio: .png once died re-encoding it
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(64))  # were the model loaded first, its error would come instead
    assert main(["video", str(src), str(tmp_path / name), "--model", str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "junk.onnx"]


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "photo.webp"])
def test_a_photo_given_as_a_video_is_named_with_the_command_for_it(tmp_path, identity, capsys, name):
    cv2.imwrite(str(tmp_path / name), np.full((48, 64, 3), 90, np.uint8))
    assert main(["video", str(tmp_path / name), str(tmp_path / "o.mp4"), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a still image, not a video: rtnst image stylises it" in err[0], err
    assert not (tmp_path / "o.mp4").exists()


SHARED = Path(__file__).resolve().parents[2] / "shared" / "assets"


@pytest.mark.skipif(not (SHARED / "reference_models").is_dir(), reason="needs ../shared/assets")
def test_reference_model_on_real_clip(tmp_path):
    out = tmp_path / "bunny.mp4"
    clip = tmp_path / "short.mp4"
    write_clip(clip, frames=6, size=(162, 90), audio="aac")  # odd multiple: exercises padding
    model = SHARED / "reference_models" / "lengstrom_udnie.onnx"
    assert main(["-q", "video", str(clip), str(out), "--model", str(model), "--pad-multiple", "4"]) == 0
    info = probe(out)
    assert info["count"] == 6 and info["size"] == (162, 90) and info["audio"] == ["aac"]


@pytest.mark.parametrize("smooth", ["ema", "flow"])
def test_smoothing_option_keeps_every_frame(tmp_path, identity, smooth):
    src = write_clip(tmp_path / "in.mp4", frames=10, size=(96, 64), audio="aac")
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", smooth,
                 "--smooth-strength", "0.5"]) == 0
    assert probe(out)["count"] == 10


def test_rotated_phone_clip_is_turned_upright(tmp_path, identity):
    from fakes import rotate_clip
    from realtime_nst.runtime.sources import VideoFileSource

    clip = write_clip(tmp_path / "c.mp4", frames=3, audio=None)
    turned = rotate_clip(clip, tmp_path / "portrait.mp4")
    with VideoFileSource(clip) as plain, VideoFileSource(turned) as portrait:
        assert (plain.size, portrait.size) == ((64, 48), (48, 64))  # declared as delivered, before a read
        (stored, pts), (upright, _) = plain.read(), portrait.read()
    assert pts == 0 and stored.shape == (48, 64, 3) and upright.shape == (64, 48, 3)
    assert np.array_equal(upright, cv2.rotate(stored, cv2.ROTATE_90_CLOCKWISE))  # as a player shows it
    out = tmp_path / "out.mp4"
    with OnnxStylizer(identity) as st:
        stylize_video(turned, out, st, progress=False)
    assert probe(out)["size"] == (48, 64) and probe(out)["count"] == 3


def test_webm_gets_vp9_and_opus_resampled(tmp_path, identity):
    src = write_clip(tmp_path / "in.mp4", frames=10, audio_rate=44100)  # Opus has no 44.1 kHz
    out = tmp_path / "out.webm"
    with OnnxStylizer(identity) as st:
        stylize_video(src, out, st, progress=False)
    a, b = probe(src), probe(out)
    assert b["count"] == 10 and b["rate"] == a["rate"] and b["audio"] == ["opus"] and b["audio_rate"] == 48000
    assert abs(b["audio_samples"] / 48000 - a["audio_samples"] / a["audio_rate"]) < 0.03  # same length


@pytest.mark.parametrize("suffix, codecs", [(".ts", ["h264", "aac"]), (".mpg", ["mpeg1video", "mp2"])])
def test_mpeg_ts_gets_h264_and_aac_and_mpg_gets_mpeg1(tmp_path, identity, suffix, codecs):
    """FFmpeg lists only MPEG-2 and MP2 for MPEG-TS, which has no codec table, though H.264 + AAC is what
    it holds; an MPEG program stream takes MPEG-1 video, which stores a frame rate, not timestamps."""
    import av

    src = write_clip(tmp_path / "in.mp4", frames=10, audio="aac")
    out = tmp_path / f"out{suffix}"
    with OnnxStylizer(identity) as st:
        stylize_video(src, out, st, progress=False)
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams] == codecs
    a, b = probe(src), probe(out)
    assert b["count"] == 10 and b["rate"] == a["rate"]
    assert abs(b["audio_samples"] / b["audio_rate"] - a["audio_samples"] / a["audio_rate"]) < 0.03


def test_mpeg1_is_written_at_the_quality_crf_asks_for(tmp_path):
    """FFmpeg's MPEG-1/2/4 encoders default to 200 kb/s: the sink gives them a quantiser from --crf."""
    import av

    rng = np.random.default_rng(0)
    grey = [cv2.GaussianBlur(rng.integers(0, 256, (240, 320), np.uint8), (3, 3), 0) for _ in range(8)]
    frames = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in grey]  # no chroma for 4:2:0 to lose
    errors = []
    for crf in (18, 30):
        with VideoFileSink(tmp_path / f"q{crf}.mpg", width=320, height=240, fps=Fraction(15), crf=crf) as sink:
            for frame in frames:
                sink.write(frame)
        with av.open(str(tmp_path / f"q{crf}.mpg")) as c:
            rate = c.streams.video[0].average_rate  # 15 fps: one of FFmpeg's extension codes
            decoded = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
        assert len(decoded) == 8 and rate == 15
        errors.append(np.mean([cv2.absdiff(f, d).mean() for f, d in zip(frames, decoded)]))
    assert errors[0] < 3 < errors[1], errors  # 2.3 and 6.2 levels; 9.5 at FFmpeg's default


def test_subtitles_copied_into_mkv_and_left_out_of_mp4_with_a_warning(tmp_path, identity, caplog):
    from fakes import with_subtitles

    srt = "1\n00:00:00,100 --> 00:00:00,250\nhello\n\n2\n00:00:00,300 --> 00:00:00,350\nworld\n"
    src = with_subtitles(write_clip(tmp_path / "c.mp4", frames=12, audio=None), tmp_path / "subs.mkv", srt)
    with OnnxStylizer(identity) as st, caplog.at_level("WARNING", logger="rtnst"):
        stylize_video(src, tmp_path / "out.mkv", st, progress=False)
        assert not caplog.records
        stylize_video(src, tmp_path / "out.mp4", st, progress=False)
    assert any("subtitle" in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
    import av

    with av.open(str(tmp_path / "out.mkv")) as c:
        cues = [(bytes(p), p.pts) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert cues == [(b"hello", 100), (b"world", 300)] and probe(tmp_path / "out.mkv")["count"] == 12
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert not c.streams.subtitles


def test_file_tags_and_video_language_are_kept(tmp_path, identity):
    import av

    tags = {"title": "Holiday", "creation_time": "2017-09-26T16:57:49.000000Z"}
    src = write_clip(tmp_path / "in.mp4", frames=4, audio=None, metadata=tags)
    for ext in ("mp4", "mkv"):
        out = tmp_path / f"out.{ext}"
        with OnnxStylizer(identity) as st:
            stylize_video(src, out, st, progress=False)
        with av.open(str(out)) as c:
            assert {k: c.metadata.get(k) for k in tags} == tags, (ext, dict(c.metadata))


@pytest.mark.parametrize("size, matrix_tag, red_y", [((64, 48), 6, 82), ((1280, 720), 1, 63)])
def test_encoder_matrix_is_the_one_players_assume_and_is_tagged(tmp_path, size, matrix_tag, red_y):
    """Players decode untagged video by size (BT.601 below 720 lines, BT.709 above): we encode by that
    matrix and tag it. swscale's default encode (BT.601 always, rounding down) gave grey 128 -> Y 125."""
    import av

    from realtime_nst.runtime.sinks import VideoFileSink

    w, h = size
    grey, red = np.full((h, w, 3), 128, np.uint8), np.zeros((h, w, 3), np.uint8)
    red[..., 2] = 255
    out = tmp_path / "m.mp4"
    with VideoFileSink(out, width=w, height=h, fps=Fraction(25)) as sink:
        for frame in (grey, red):
            sink.write(frame)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.colorspace == matrix_tag
        planes = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
    ys = [int(np.median(p[:h])) for p in planes]
    uv = int(np.median(planes[0][h:]))
    assert ys[0] == 126 and uv == 128  # limited range: 16 + 219 * 128 / 255, chroma exactly neutral
    assert abs(ys[1] - red_y) <= 1  # 16 + 219 * (0.299 for BT.601, 0.2126 for BT.709)


def test_untagged_hd_input_is_decoded_as_players_do(tmp_path):
    """An HD clip without colour tags is BT.709 to every player; decoding it as swscale's BT.601
    default turned pure green into (0, 212, 0)."""
    import av

    from realtime_nst.runtime.sources import VideoFileSource

    green = np.zeros((720, 1280, 3), np.uint8)
    green[..., 1] = 255
    path = tmp_path / "hd.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        s.options = {"crf": "1"}
        f = av.VideoFrame.from_ndarray(green, format="bgr24").reformat(format="yuv420p", dst_colorspace="ITU709")
        f.pts = 0
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)
    with VideoFileSource(path) as src:
        frame = src.read().frame
    assert np.abs(frame[360, 640].astype(int) - (0, 255, 0)).max() <= 6



def test_4_2_0_chroma_is_interpolated_as_players_do_also_when_shrunk(tmp_path):
    """swscale's default decode repeats each chroma sample over 2x2 pixels; players interpolate. The
    blocks fed the model a staircase and crawled along moving colour edges in the flicker metric."""
    from realtime_nst.runtime.sources import VideoFileSource

    w, h = 64, 16
    path = write_chroma_ramp(tmp_path / "ramp.mkv", size=(w, h))
    with VideoFileSource(path) as src:
        full = src.read().frame
        src.shrink_to((w // 2, h // 2))
        small = src.read().frame
    red = full[h // 2, 4:-4, 2].astype(int)
    assert (np.diff(red) > 0).all(), red  # a smooth ramp: no pair of pixels shares one chroma sample
    assert small.shape == (h // 2, w // 2, 3)
    assert np.abs(small[h // 4, 2:-2, 2].astype(int) - full[h // 2, 4:-4, 2].reshape(-1, 2).mean(axis=1)).max() <= 3


def test_max_frames_preview_cuts_the_audio_to_match(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=30)
    out = tmp_path / "preview.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--max-frames", "10"]) == 0
    info = probe(out)
    video_s = 10 / info["rate"]
    assert info["count"] == 10 and abs(info["audio_samples"] / info["audio_rate"] - float(video_s)) < 0.05
    assert main(["video", str(src), str(tmp_path / "x.mp4"), "--model", str(identity), "--max-frames", "0"]) == 2
    assert "--max-frames" in capsys.readouterr().err


def test_repeated_and_reordered_timestamps_are_restamped_and_the_file_finished(tmp_path):
    from fractions import Fraction

    from realtime_nst.runtime.sinks import VideoFileSink

    out = tmp_path / "o.mp4"
    with VideoFileSink(out, width=32, height=24, fps=Fraction(25), time_base=Fraction(1, 25)) as sink:
        for pts in (0, 0, 3, 2, 5, 5):
            sink.write(np.full((24, 32, 3), 60, np.uint8), pts)
    assert probe(out)["count"] == 6


def test_tracks_in_codecs_ffmpeg_does_not_know(tmp_path, identity, capsys, caplog):
    clip = write_clip(tmp_path / "c.mkv", frames=3)
    data = clip.read_bytes()
    unknown_audio = tmp_path / "a.mkv"  # Matroska names codecs by string: this one exists nowhere
    unknown_audio.write_bytes(data.replace(b"A_AAC", b"A_ZZZ"))
    out = tmp_path / "out.mkv"
    assert main(["video", str(unknown_audio), str(out), "--model", str(identity)]) == 0
    assert "audio track 1 has a codec FFmpeg does not know: left out" in caplog.text
    assert probe(out)["count"] == 3 and probe(out)["audio"] == []
    capsys.readouterr()
    unknown_video = tmp_path / "v.mkv"
    unknown_video.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_ZZZZZ/ISO/ZZZ"))
    assert main(["-q", "video", str(unknown_video), str(tmp_path / "o2.mkv"), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot decode" in err[0]


def test_odd_sized_video_is_encoded_4_2_0_and_says_so(tmp_path, identity, caplog):
    import av

    src = tmp_path / "odd.mkv"
    with av.open(str(src), "w") as c:  # FFV1 stores odd sizes losslessly: a source an editor might export
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 65, 49, "yuv444p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((49, 65, 3), 80 + i, np.uint8), format="bgr24").reformat(format="yuv444p")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "out.mp4"
    caplog.set_level("INFO", logger="rtnst")
    assert main(["video", str(src), str(out), "--model", str(identity)]) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert probe(out)["size"] == (64, 48) and probe(out)["count"] == 3
    assert "65x49 frames are encoded as 64x48" in caplog.text


def test_a_model_run_smaller_than_the_video_is_scaled_up_by_the_encoder(tmp_path, identity):
    # 130x98 (even after 4:2:0 trimming is 130x98) stylised at 64x48: the model's output goes to the
    # encoder at 64x48 and its colour conversion scales it up; the file is as the plain path makes it.
    src = write_clip(tmp_path / "in.mp4", frames=8, size=(130, 98), audio=None)
    with OnnxStylizer(identity, max_side_px=64) as st:
        assert st.scaled_only_size(130, 98) == (64, 48)
        direct = stylize_video(src, tmp_path / "direct.mp4", st, progress=False)
    # strength just under 1 blends with the full-size source, so that path scales the output itself
    with OnnxStylizer(identity, max_side_px=64, strength=0.999) as st:
        assert st.scaled_only_size(130, 98) is None
        stylize_video(src, tmp_path / "plain.mp4", st, progress=False)
    a, b = probe(tmp_path / "direct.mp4"), probe(tmp_path / "plain.mp4")
    assert direct.frames_written == a["count"] == b["count"] == 8
    assert a["size"] == b["size"] == (130, 98)
    diff = np.mean([np.abs(x.astype(int) - y).mean() for x, y in zip(a["frames"], b["frames"])])
    assert diff < 2.0, diff


@pytest.mark.parametrize("opts", [{"preserve_color": True}, {"strength": 0.5}, {"output_size": (90, 60)},
                                  {"max_side_px": 4096}])
def test_the_full_size_frame_is_kept_when_the_output_needs_it(identity, opts):
    with OnnxStylizer(identity, **{"max_side_px": 64, **opts}) as st:
        assert st.scaled_only_size(130, 98) is None


def test_sink_says_when_frames_are_not_the_size_it_scales_from(tmp_path):
    from realtime_nst.errors import OutputError
    from realtime_nst.runtime.sinks import VideoFileSink

    with VideoFileSink(tmp_path / "o.mp4", width=128, height=96, fps=Fraction(30), frame_size=(64, 48)) as sink:
        sink.write(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(OutputError, match="expected 64x48 frames, got 128x96"):
            sink.write(np.zeros((96, 128, 3), np.uint8))
    assert probe(tmp_path / "o.mp4")["size"] == (128, 96)


def test_preset_reaches_the_encoder_and_a_bad_one_is_refused(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=12, size=(160, 120), audio=None)
    sizes = {}
    for preset in ("ultrafast", "veryfast"):
        out = tmp_path / f"{preset}.mp4"
        assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--preset", preset]) == 0
        sizes[preset] = out.stat().st_size
    assert sizes["ultrafast"] > sizes["veryfast"]  # no CABAC, no B-frames: bigger at the same CRF
    from realtime_nst.errors import OptionError

    with OnnxStylizer(identity) as st, pytest.raises(OptionError, match="preset must be one of"):
        stylize_video(src, tmp_path / "bad.mp4", st, progress=False, preset="fastest")
    assert not (tmp_path / "bad.mp4").exists() and not list(tmp_path.glob(".bad*"))


def write_hdr_clip(path: Path, sdr_bgr: np.ndarray, transfer: str, *, frames: int = 3) -> Path:
    """A 10-bit BT.2020 clip of ``sdr_bgr`` as a phone records it in HDR: SDR white at HDR's reference
    white (203 cd/m², BT.2408), PQ (SMPTE ST 2084) or HLG (ARIB STD-B67, 1000 cd/m² display)."""
    import av

    to_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
    light = (sdr_bgr[..., ::-1] / 255.0) ** 2.4 @ to_2020.T * 203  # cd/m², BT.2020 RGB
    if transfer == "pq":
        y = (light / 10000) ** 0.1593017578125
        signal = ((0.8359375 + 18.8515625 * y) / (1 + 18.6875 * y)) ** 78.84375
    else:  # HLG: display light back to scene light (inverse OOTF, gamma 1.2), then the OETF
        display = light / 1000
        lum = np.maximum(display @ np.array([0.2627, 0.6780, 0.0593]), 1e-9)
        scene = display * lum[..., None] ** (1 / 1.2 - 1)
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        signal = np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-9)) + c)
    rgb48 = np.round(np.clip(signal, 0, 1) * 65535).astype(np.uint16)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=25)
        vs.width, vs.height, vs.pix_fmt = rgb48.shape[1], rgb48.shape[0], "yuv444p10le"
        cc = vs.codec_context
        cc.colorspace = cc.color_primaries = 9  # BT.2020
        cc.color_trc, cc.color_range = (16 if transfer == "pq" else 18), 1
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(rgb48, format="rgb48le").reformat(
                format="yuv444p10le", dst_colorspace="BT2020", dst_color_range="MPEG")
            vf.pts = i
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_hdr_phone_clips_are_mapped_to_the_colours_of_their_sdr_version(tmp_path, identity, transfer, caplog):
    import av

    from realtime_nst.runtime.sources import VideoFileSource

    patches = np.array([[40, 40, 40], [128, 128, 128], [230, 230, 230], [60, 90, 200], [40, 160, 60],
                        [190, 110, 40], [120, 150, 210]], np.float64)  # BGR: greys, red, green, blue, skin
    sdr = np.repeat(np.repeat(patches[None], 16, axis=0), 16, axis=1)
    clip = write_hdr_clip(tmp_path / f"{transfer}.mkv", sdr, transfer)
    with caplog.at_level("INFO", logger="rtnst"), VideoFileSource(clip) as src:
        got = src.read().frame.astype(np.float64)
    with av.open(str(clip)) as c:
        plain = next(c.decode(video=0)).to_ndarray(format="bgr24")  # the HDR signal read as SDR
    err = np.abs(got - sdr)[4:12]
    assert err[:, :48].max() <= 2  # the greys, exactly
    assert err.max() <= 16 and err.mean() < 5  # colours: FFmpeg maps BT.2020 to BT.709 a little less saturated
    assert np.abs(plain - sdr)[4:12].mean() > 15  # grey and washed out: what the mapping is for
    assert any("mapped to ordinary" in r.getMessage() for r in caplog.records)
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(clip), str(out), "--model", str(identity)]) == 0
    assert np.abs(probe(out)["frames"][0] - sdr)[4:12].mean() < 6


def test_an_ffmpeg_that_cannot_map_hdr_decodes_it_as_it_is_and_says_so_once(tmp_path, monkeypatch, caplog):
    import av

    from realtime_nst.runtime import colour
    from realtime_nst.runtime.sources import VideoFileSource

    monkeypatch.setattr(colour, "_TO_SDR", "no_such_option=1")  # as FFmpeg 7's scale filter answers
    clip = write_hdr_clip(tmp_path / "old.mkv", np.full((16, 16, 3), 128.0), "pq")
    with caplog.at_level("INFO", logger="rtnst"):
        for _ in range(2):
            with VideoFileSource(clip) as src:
                got = [src.read().frame for _ in range(3)]
    with av.open(str(clip)) as c:
        plain = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert all(np.array_equal(g, plain) for g in got)
    assert [r.levelname for r in caplog.records if "washed out" in r.getMessage()] == ["WARNING"]


def test_hdr_frames_wanted_smaller_are_shrunk_before_they_are_mapped(tmp_path, identity):
    from realtime_nst.runtime.sources import VideoFileSource

    patches = np.array([[128, 128, 128], [60, 90, 200], [40, 160, 60], [120, 150, 210]], np.float64)
    sdr = np.repeat(np.repeat(patches[None], 32, axis=0), 32, axis=1)  # 128x32
    clip = write_hdr_clip(tmp_path / "hlg.mkv", sdr, "hlg")
    with VideoFileSource(clip) as src:
        src.shrink_to((64, 16))
        first, second = src.read().frame, src.read().frame
    assert first.shape == (32, 128, 3) and second.shape == (16, 64, 3)  # the first was decoded before
    small = sdr[::2, ::2]
    assert np.abs(second.astype(float) - small)[4:12, [4, 12, 20, 28, 36, 44, 52, 60]].mean() < 5
    out = tmp_path / "out.mp4"  # a model run at half size: rtnst video asks for small frames
    assert main(["-q", "video", str(clip), str(out), "--model", str(identity), "--max-side", "64"]) == 0
    frame = probe(out)["frames"][-1].astype(float)
    assert frame.shape == (32, 128, 3) and np.abs(frame - sdr)[8:24, [8, 24, 40, 56, 72, 88, 104, 120]].mean() < 6


def test_the_video_not_a_one_frame_thumbnail_stream_is_stylised(tmp_path, identity):
    import av

    src = tmp_path / "thumb_first.mkv"
    with av.open(str(src), "w") as out:
        thumb = out.add_stream("mjpeg", rate=1)  # a cover picture stored as the first video stream
        thumb.width, thumb.height, thumb.pix_fmt = 64, 48, "yuvj420p"
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for stream, n in ((thumb, 1), (video, 12)):
            mux_frames(out, stream, [gradient_frame(64, 48, index=i) for i in range(n)])
    out = tmp_path / "o.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity)]) == 0
    assert probe(out)["count"] == 12


def test_an_existing_folder_as_output_takes_the_video_under_its_own_name(tmp_path, identity, caplog):
    src = write_clip(tmp_path / "in.mp4", frames=2, audio=None)
    (tmp_path / "o.mp4").mkdir()
    with caplog.at_level("INFO", logger="rtnst"):
        assert main(["video", str(src), str(tmp_path / "o.mp4"), "--model", str(identity)]) == 0
    assert probe(tmp_path / "o.mp4" / "in.mp4")["count"] == 2 and f"wrote {tmp_path / 'o.mp4' / 'in.mp4'}" in caplog.text


def test_a_bad_input_is_reported_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "notes.mp4").write_text("not a video")
    for name in ("missing.mp4", "notes.mp4"):
        assert main(["video", str(tmp_path / name), str(tmp_path / "o.mp4"), "--model", str(tmp_path / "no.onnx")]) == 2
        err = capsys.readouterr().err
        assert name in err and "no.onnx" not in err


def _anamorphic_clip(path):
    """16:9 pictures in 4:3 frames (64x48 of 4:3 pixels), as DV and DVD store them."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.codec_context.sample_aspect_ratio = Fraction(4, 3)
        mux_frames(out, v, [gradient_frame(64, 48, index=i) for i in range(3)])
    return path


def test_anamorphic_pixels_keep_their_shape_unless_an_output_size_is_given(tmp_path, identity):
    import av

    src = _anamorphic_clip(tmp_path / "dv.mp4")

    def sar(path):
        with av.open(str(path)) as c:
            return c.streams.video[0].sample_aspect_ratio

    assert main(["-q", "video", str(src), str(tmp_path / "o.mkv"), "--model", str(identity)]) == 0
    assert sar(tmp_path / "o.mkv") == Fraction(4, 3)
    assert main(["-q", "video", str(src), str(tmp_path / "sq.mp4"), "--model", str(identity),
                 "--output-size", "86x48"]) == 0
    assert sar(tmp_path / "sq.mp4") in (None, Fraction(0), Fraction(1))


def test_an_index_entry_with_no_frame_is_not_taken_for_truncation(tmp_path, identity):
    import av

    src = tmp_path / "dropped.avi"  # a capture's placeholder for a frame its recorder dropped
    with av.open(str(src), "w") as out:
        v = out.add_stream("mpeg4", rate=24)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        images = [gradient_frame(64, 48, index=i) for i in range(12)]
        mux_frames(out, v, images[:3], flush=False)
        empty = av.Packet(0)
        empty.stream, empty.pts, empty.dts, empty.time_base = v, 3, 3, Fraction(1, 24)
        out.mux(empty)
        mux_frames(out, v, images[4:], pts=range(4, 12))
    out_path = tmp_path / "o.mp4"
    assert main(["-q", "video", str(src), str(out_path), "--model", str(identity)]) == 0
    assert probe(out_path)["count"] == 11


def test_a_cameras_timecode_is_kept(tmp_path, identity):
    import av

    src = tmp_path / "cam.mov"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.metadata["timecode"] = "01:02:03:04"
        mux_frames(out, v, [gradient_frame(64, 48, index=i) for i in range(3)])
    for ext in ("mov", "mkv"):
        out_path = tmp_path / f"o.{ext}"
        assert main(["-q", "video", str(src), str(out_path), "--model", str(identity)]) == 0
        with av.open(str(out_path)) as c:
            tags = {k.lower(): v for k, v in c.streams.video[0].metadata.items()}
        assert tags.get("timecode") == "01:02:03:04", (ext, tags)


def test_interlaced_frames_are_deinterlaced_as_players_show_them(tmp_path, caplog):
    import av

    from realtime_nst.runtime.sources import VideoFileSource

    def combing(image):  # what adjacent rows differ by beyond what rows two apart do
        g = image.astype(np.float32).mean(axis=2)
        return float(np.abs(g[1:-1] - (g[:-2] + g[2:]) / 2).mean())

    src = tmp_path / "tv.mkv"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 128, 96, "yuv420p"
        v.options = {"x264-params": "interlaced=1:tff=1", "crf": "12"}
        images = []
        for t in range(8):  # a bar moving 8 px a frame, its two fields 1/50 s apart: woven, it combs
            woven = np.full((96, 128, 3), 40, np.uint8)
            woven[0::2, 10 + 8 * t:26 + 8 * t] = 230
            woven[1::2, 14 + 8 * t:30 + 8 * t] = 230
            images.append(woven)
        mux_frames(out, v, images)  # x264 codes them as fields: decoded frames say they are interlaced
    with av.open(str(src)) as c:
        decoded = [(f.to_ndarray(format="bgr24"), f.pts) for f in c.decode(video=0)]
    woven, times = [f for f, _ in decoded], [t for _, t in decoded]
    with caplog.at_level("INFO", logger="rtnst"), VideoFileSource(src) as source:
        shown = []
        while (item := source.read()) is not None:
            shown.append(item)
    assert len(shown) == len(woven) == 8 and [item.pts for item in shown] == times
    assert np.mean([combing(i.frame) for i in shown]) < 0.4 * np.mean([combing(f) for f in woven])
    assert "is interlaced" in caplog.text


def test_the_model_sees_anamorphic_pixels_square(tmp_path):
    from realtime_nst.runtime.video import stylize_video

    src = _anamorphic_clip(tmp_path / "dv.mp4")

    class Recorder:
        def __init__(self):
            self.shapes = set()

        def stylize(self, frame):
            self.shapes.add(frame.shape)
            return frame

    for name, size in (("o.mp4", (64, 48)), ("o.gif", (85, 48))):
        model = Recorder()
        stylize_video(src, tmp_path / name, model, progress=False)
        assert model.shapes == {(48, 85, 3)}  # 64 px of 4:3 pixels are shown 85 px wide
        assert probe(tmp_path / name)["size"] == size  # the video keeps its pixels; a GIF's are square


def test_an_animated_webp_is_named_not_called_corrupt(tmp_path, capsys):
    import av

    if "libwebp_anim" not in av.codecs_available:
        pytest.skip("this FFmpeg has no WebP animation encoder")
    src = tmp_path / "anim.webp"
    with av.open(str(src), "w", format="webp") as out:
        s = out.add_stream("libwebp_anim", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuva420p"
        mux_frames(out, s, [gradient_frame(32, 32, index=i) for i in range(3)])
    assert main(["-q", "video", str(src), str(tmp_path / "o.mp4"), "--model", str(tmp_path / "no.onnx")]) == 2
    err = capsys.readouterr().err
    assert "animated WebP" in err and "corrupt" not in err
