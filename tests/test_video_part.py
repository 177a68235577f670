"""`rtnst video --start/--end`: a part of a clip, its sound with it."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from fakes import probe, write_clip

from realtime_nst.cli import main

FPS = Fraction(30000, 1001)


def _source_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24").astype(int) for f in c.decode(video=0)]


@pytest.mark.parametrize("out_name", ["part.mp4", "part.webm", "part.gif"])  # copied sound, re-encoded, none
def test_start_and_end_give_that_part_and_its_sound(tmp_path, identity, out_name):
    src = write_clip(tmp_path / "in.mp4", frames=60, size=(96, 64), fps=FPS)
    out = tmp_path / out_name
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", "none",
                 "--start", "0.5", "--end", "0:01.5"]) == 0
    info = probe(out)
    assert info["count"] == 30  # the frames shown from 0.5 s up to 1.5 s: 15 (0.5005 s) to 44 (1.468 s)
    source = _source_frames(src)
    if not out_name.endswith(".gif"):  # a GIF's palette changes the colours
        first = info["frames"][0].astype(int)
        errors = [np.abs(first - s).mean() for s in source]
        assert int(np.argmin(errors)) == 15 and errors[15] < 3
        assert abs(info["audio_samples"] / info["audio_rate"] - 30 / FPS) < 0.03  # sound as long as the picture


@pytest.mark.parametrize("in_name", ["in.ts", "in.mkv"])  # read from the top to the start; by its index
def test_a_part_of_other_containers(tmp_path, identity, in_name):
    src = write_clip(tmp_path / in_name, frames=30, size=(96, 64), fps=FPS)
    out = tmp_path / "part.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", "none",
                 "--start", "0.3", "--end", "0.7"]) == 0
    info = probe(out)
    first = info["frames"][0].astype(int)
    errors = [np.abs(first - s).mean() for s in _source_frames(src)]
    assert info["count"] == 12 and int(np.argmin(errors)) == 9  # frames 9 (0.300 s) to 20 (0.667 s)
    assert abs(info["audio_samples"] / info["audio_rate"] - 12 / FPS) < 0.03


def test_the_sound_of_a_part_is_in_step_with_its_picture(tmp_path, identity):
    # a click at 1.0 s in the sound; the picture turns white at the same moment
    src = tmp_path / "click.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 255 if i >= 30 else 0, np.uint8), format="bgr24")
            frame.pts, frame.time_base = i, 1 / FPS
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        sound = np.zeros(int(48000 * 60 / FPS), np.float32)
        click_at = round(48000 * 30 / FPS)
        sound[click_at:click_at + 48] = 0.8
        for n in range(0, sound.size, 1024):
            af = av.AudioFrame.from_ndarray(sound[None, n:n + 1024], format="flt", layout="mono")
            af.sample_rate, af.pts = 48000, n
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    out = tmp_path / "part.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", "none",
                 "--start", "0.7"]) == 0
    with av.open(str(out)) as c:
        white_at = next(float(f.pts * f.time_base) for f in c.decode(video=0) if f.to_ndarray(format="gray").mean() > 128)
    with av.open(str(out)) as c:
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])  # the first channel
    click_s = int(np.argmax(np.abs(samples))) / 48000
    assert abs(white_at - (30 / FPS - 0.7)) < 1 / FPS
    assert abs(click_s - white_at) < 0.005, (click_s, white_at)  # within 5 ms


def test_a_start_past_the_end_or_an_end_before_it_is_one_line(tmp_path, identity, capsys):
    src = write_clip(tmp_path / "in.mp4", frames=12, fps=FPS, audio=None)
    out = str(tmp_path / "o.mp4")
    assert main(["video", str(src), out, "--model", str(identity), "--start", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no frame from 100 s on (its video lasts 0.40 s)" in err[0], err
    assert main(["video", str(src), out, "--model", str(identity), "--start", "0:02", "--end", "1"]) == 2
    assert "--end (1 s) must come after --start (2 s)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["video", str(src), out, "--model", str(identity), "--start", "1:75"])
    assert exit_.value.code == 2 and "expected a time as seconds" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_several_videos_and_folders_go_into_a_folder(tmp_path, identity, caplog, capsys):
    clips = tmp_path / "clips"
    (clips / "day2").mkdir(parents=True)
    write_clip(clips / "a.mp4", frames=6, fps=FPS)
    write_clip(clips / "day2" / "b.mkv", frames=4, fps=FPS)
    (clips / "notes.txt").write_text("not a video")
    broken = write_clip(tmp_path / "c.mp4", frames=5, fps=FPS, audio=None)
    broken.write_bytes(broken.read_bytes()[:300])  # cut before its first frame
    other = write_clip(tmp_path / "d.wmv.mov", frames=3, fps=FPS, audio=None)
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="rtnst"):
        code = main(["video", str(clips), str(broken), str(other), str(out), "--model", str(identity), "-r",
                     "--suffix", "_styled", "--smooth", "none"])
    assert code == 2  # one input could not be stylised: said, and the others written
    assert "1 of 4 videos could not be stylised in full" in capsys.readouterr().err
    assert "skipped: " in caplog.text and "c.mp4 is not a video file FFmpeg can open" in caplog.text
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a_styled.mp4", "d.wmv_styled.mov", "day2/b_styled.mkv"]
    assert probe(out / "a_styled.mp4")["count"] == 6 and probe(out / "day2" / "b_styled.mkv")["count"] == 4


def test_a_folder_without_videos_and_existing_outputs_are_refused_before_any_work(tmp_path, identity, capsys):
    empty = tmp_path / "photos"
    empty.mkdir()
    assert main(["video", str(empty), str(tmp_path / "out"), "--model", str(identity)]) == 2
    assert "holds no videos (" in capsys.readouterr().err
    src = write_clip(tmp_path / "a.mp4", frames=3, fps=FPS, audio=None)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.mp4").write_bytes(b"precious")
    assert main(["video", str(src), str(tmp_path / "b.mp4"), str(tmp_path / "out"), "--model", str(identity)]) == 2
    assert (tmp_path / "out" / "a.mp4").read_bytes() == b"precious"


def _with_chapters(src, out):
    """``src`` remuxed into ``out`` with two chapters: 0-1 s "Intro", 1-2 s "Main"."""
    with av.open(str(src)) as i, av.open(str(out), "w") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        o.set_chapters([{"id": n + 1, "start": n * 1000, "end": (n + 1) * 1000, "time_base": Fraction(1, 1000),
                         "metadata": {"title": title}} for n, title in enumerate(("Intro", "Main"))])
        for packet in i.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                o.mux(packet)
    return out


def _chapters(path) -> list[tuple[float, float, str]]:
    with av.open(str(path)) as c:
        return [(round(float(ch["start"] * ch["time_base"]), 3), round(float(ch["end"] * ch["time_base"]), 3),
                 ch["metadata"]["title"]) for ch in c.chapters()]


@pytest.mark.skipif(not hasattr(av.container.InputContainer, "chapters"), reason="PyAV before 14 reads no chapters")
def test_chapters_are_kept_and_cut_with_the_part(tmp_path, identity, caplog):
    src = _with_chapters(write_clip(tmp_path / "plain.mkv", frames=60, size=(64, 48), fps=FPS), tmp_path / "in.mkv")
    for name in ("out.mkv", "out.mp4"):
        assert main(["-q", "video", str(src), str(tmp_path / name), "--model", str(identity)]) == 0
        assert _chapters(tmp_path / name) == [(0.0, 1.0, "Intro"), (1.0, 2.0, "Main")]
    assert main(["-q", "video", str(src), str(tmp_path / "part.mp4"), "--model", str(identity),
                 "--start", "0.5", "--end", "1.25"]) == 0
    assert _chapters(tmp_path / "part.mp4") == [(0.0, 0.5, "Intro"), (0.5, 0.75, "Main")]
    with caplog.at_level("WARNING", logger="rtnst"):
        assert main(["-q", "video", str(src), str(tmp_path / "out.avi"), "--model", str(identity)]) == 0
    assert "the source's 2 chapters cannot go into .avi: left out" in caplog.text


def test_a_data_track_left_out_is_said(tmp_path, identity, caplog):
    src = tmp_path / "camera.ts"  # a camera's telemetry beside its picture
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        data = out.add_data_stream()
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            for p in v.encode(frame):
                out.mux(p)
            packet = av.Packet(b"GPS %d" % i)
            packet.stream, packet.pts, packet.dts, packet.time_base = data, i * 3000, i * 3000, Fraction(1, 90000)
            out.mux(packet)
        for p in v.encode(None):
            out.mux(p)
    with caplog.at_level("WARNING", logger="rtnst"):
        assert main(["-q", "video", str(src), str(tmp_path / "o.mp4"), "--model", str(identity)]) == 0
    assert "data track 1 of the source left out of .mp4" in caplog.text


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tmp_path, identity):
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "a.mp4", frames=3, fps=FPS, audio=None)
    args = ["-q", "video", str(clips), str(clips / "styled"), "--model", str(identity), "-r"]
    assert main(args) == 0
    assert main([*args, "--overwrite"]) == 0  # again, over its own outputs: they are not inputs
    assert sorted(str(p.relative_to(clips)) for p in clips.rglob("*.mp4")) == ["a.mp4", "styled/a.mp4"]
