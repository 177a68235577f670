"""The output's timeline: sound in step with the picture whatever the source's timestamps look like."""

import logging
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fakes import mux_frames, probe
from realtime_nst.cli import main
from realtime_nst.errors import OutputError
from realtime_nst.runtime.sinks import VideoFileSink

FPS = 24
FLASH_FRAME = 12  # a white frame, with a click in the sound at the same moment
RATE = 48000


def flash_clip(path: Path, *, start_s: float = 0.0, frames: int = 24, fmt: str | None = None,
               audio_lead_s: float = 0.0) -> Path:
    """Grey frames with one white one, and silence with one click at its time; both tracks start at ``start_s``
    (the sound ``audio_lead_s`` earlier, or later where negative)."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        first = round(start_s * FPS)
        mux_frames(out, video, [grey(flash=i == FLASH_FRAME) for i in range(frames)],
                   pts=range(first, first + frames), time_base=Fraction(1, FPS))
        lead = round(audio_lead_s * RATE)
        mux_sound(out, audio, click_at(RATE * FLASH_FRAME // FPS + lead, RATE * frames // FPS + 1024 + max(0, lead)),
                  first=round(start_s * RATE) - lead)
    return path


def grey(*, flash: bool = False) -> np.ndarray:
    return np.full((48, 64, 3), 250 if flash else 60, np.uint8)


def click_at(at: int, length: int) -> np.ndarray:
    """Silence of ``length`` samples at RATE with a 10 ms click from sample ``at``."""
    sound = np.zeros(length, np.float32)
    sound[at:at + 480] = 0.8 * np.sin(np.arange(480) * 2 * np.pi * 1000 / RATE)
    return sound


def mux_sound(out, audio, sound: np.ndarray, *, first: int = 0) -> None:
    """Encode mono float ``sound`` into ``audio`` in chunks of 1024 samples, the first at sample ``first``."""
    import av

    for k in range(0, len(sound) - 1024 + 1, 1024):
        chunk = av.AudioFrame.from_ndarray(sound[None, k:k + 1024], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = RATE, first + k, Fraction(1, RATE)
        for packet in audio.encode(chunk):
            out.mux(packet)
    for packet in audio.encode(None):
        out.mux(packet)


def flash_and_click_s(path: Path) -> tuple[list[float], list[float], float]:
    """Times of the white frames and of the clicks' starts in a file, and its last frame's time."""
    import av

    with av.open(str(path)) as c:
        times = [(float(f.pts * f.time_base), f.to_ndarray(format="gray").mean()) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        parts = [(float(f.pts * f.time_base), f.to_ndarray()[0], f.sample_rate) for f in c.decode(audio=0)]
    sound = np.concatenate([p for _, p, _ in parts]).astype(np.float32)
    if sound.dtype.kind != "f" or np.abs(sound).max() > 2:  # integer samples (MP2, PCM)
        sound /= 32768
    rate = parts[0][2]
    loud = np.flatnonzero(np.abs(sound) > 0.3)
    starts = loud[np.r_[True, np.diff(loud) > rate // 10]] if len(loud) else []
    return ([t for t, level in times if level > 200], [parts[0][0] + s / rate for s in starts], times[-1][0])


@pytest.mark.parametrize("suffix, fmt", [(".ts", "mpegts"), (".mkv", None)])
def test_sound_stays_with_the_picture_when_the_source_does_not_start_at_zero(tmp_path, identity, suffix, fmt):
    src = flash_clip(tmp_path / f"in{suffix}", start_s=5.0, fmt=fmt)  # camcorders and broadcasts start late
    out = tmp_path / "out.mp4"
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", "none"]) == 0
    flashes, clicks, _ = flash_and_click_s(out)
    assert flashes == pytest.approx([FLASH_FRAME / FPS], abs=1e-3)
    assert clicks == pytest.approx(flashes, abs=0.03)


@pytest.mark.parametrize("lead_s", [0.5, -0.3])  # sound from before the picture; sound that starts late
def test_sound_re_encoded_for_the_container_stays_with_the_picture(tmp_path, identity, lead_s):
    src = flash_clip(tmp_path / "in.mkv", start_s=1.0, audio_lead_s=lead_s)
    out = tmp_path / "out.webm"  # AAC cannot go into WebM: re-encoded to Opus
    assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", "none"]) == 0
    flashes, clicks, _ = flash_and_click_s(out)
    assert flashes == pytest.approx([FLASH_FRAME / FPS], abs=1e-3)
    assert clicks == pytest.approx(flashes, abs=0.03)


def test_joined_clips_play_one_after_the_other_in_step(tmp_path, identity, caplog):
    part = flash_clip(tmp_path / "part.ts", frames=48, fmt="mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)  # `cat part.ts part.ts`: the timestamps start again halfway
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="rtnst"):
        assert main(["-q", "video", str(joined), str(out), "--model", str(identity), "--smooth", "none"]) == 0
    assert "started again" in caplog.text
    flashes, clicks, last_s = flash_and_click_s(out)
    assert probe(out)["count"] == 96 and last_s == pytest.approx(95 / FPS, abs=0.01)
    assert flashes == pytest.approx([FLASH_FRAME / FPS, (48 + FLASH_FRAME) / FPS], abs=0.01)
    assert clicks == pytest.approx(flashes, abs=0.05)


def test_damaged_sound_is_left_out_and_the_video_finished(tmp_path, identity, caplog):
    import av

    src = flash_clip(tmp_path / "in.ts", fmt="mpegts")
    with av.open(str(src)) as c:
        pid = c.streams.audio[0].id
    data = bytearray(src.read_bytes())
    hit = 0
    for at in range(0, len(data) - 188, 188):  # MPEG-TS packets: 188 bytes, the PID in bytes 1-2
        if data[at] == 0x47 and ((data[at + 1] & 0x1F) << 8 | data[at + 2]) == pid:
            hit += 1
            if hit % 2:
                data[at + 20:at + 60] = bytes(b ^ 0xFF for b in data[at + 20:at + 60])
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="rtnst"):
        code = main(["-q", "video", str(damaged), str(out), "--model", str(identity), "--smooth", "none"])
    with av.open(str(out)) as c:
        assert code == 0 and sum(1 for _ in c.decode(video=0)) == 24  # (its sound is still damaged: not decoded)
    assert "damaged audio or subtitle packet" in caplog.text


def test_a_source_whose_frames_change_size_is_scaled_not_cropped(tmp_path):
    out = tmp_path / "o.mp4"
    half_white = np.zeros((48, 64, 3), np.uint8)
    half_white[:, 32:] = 255
    with VideoFileSink(out, width=32, height=24, fps=Fraction(FPS), time_base=Fraction(1, FPS)) as sink:
        sink.write(np.full((24, 32, 3), 60, np.uint8), 0)
        sink.write(half_white, 1)  # twice the size: cropping would keep its black left half only
    import av

    with av.open(str(out)) as c:
        last = [f.to_ndarray(format="gray") for f in c.decode(video=0)][-1]
    assert last.shape == (24, 32) and last[:, :12].mean() < 30 and last[:, 20:].mean() > 225


def test_a_file_made_meanwhile_by_another_run_is_kept(tmp_path):
    out = tmp_path / "o.mp4"
    sink = VideoFileSink(out, width=32, height=24, fps=Fraction(FPS))
    sink.write(np.full((24, 32, 3), 60, np.uint8))
    out.write_bytes(b"the other run's video")  # it started after our checks and finished first
    with pytest.raises(OutputError, match="appeared while"):
        sink.close()
    assert out.read_bytes() == b"the other run's video"
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]  # our temporary file is gone


def test_two_sinks_on_one_name_use_their_own_temporary_files(tmp_path):
    out = tmp_path / "o.mp4"
    sinks = [VideoFileSink(out, width=32, height=24, fps=Fraction(FPS), overwrite=True) for _ in range(2)]
    assert sinks[0].tmp != sinks[1].tmp

    def fill(sink, level):
        for _ in range(5):
            sink.write(np.full((24, 32, 3), level, np.uint8))
        sink.close()

    workers = [threading.Thread(target=fill, args=(s, v)) for s, v in zip(sinks, (40, 200))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert probe(out)["count"] == 5 and [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def test_pcm_sound_from_matroska_is_re_encoded_for_mp4(tmp_path, identity, caplog):
    import av

    src = tmp_path / "pcm.mkv"  # Matroska stores no channel layout: MP4's muxer refused the copy
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=RATE)
        mux_frames(out, video, [grey()] * 6)
        for k in range(0, RATE // 4, 1024):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 2048), np.int16), format="s16", layout="stereo")
            chunk.sample_rate, chunk.pts = RATE, k
            for packet in audio.encode(chunk):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    out = tmp_path / "o.mp4"
    with caplog.at_level(logging.INFO, logger="rtnst"):
        assert main(["video", str(src), str(out), "--model", str(identity), "--smooth", "none"]) == 0
    assert probe(out)["audio"] == ["aac"] and "re-encoding it to aac" in caplog.text


def test_a_variable_rate_source_keeps_its_timing_in_a_file_of_fixed_rate(tmp_path, identity, caplog):
    import av

    times_ms = [100 * i for i in range(12)] + [1200 + round(1000 * i / 30) for i in range(24)]  # 10 fps, then 30
    flash_ms = times_ms[18]
    src = tmp_path / "phone.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        audio = out.add_stream("aac", rate=RATE)
        mux_frames(out, video, [grey(flash=t == flash_ms) for t in times_ms], pts=times_ms,
                   time_base=Fraction(1, 1000))
        mux_sound(out, audio, click_at(RATE * flash_ms // 1000, RATE * 2 + 1024))
    out = tmp_path / "o.mpg"  # MPEG-1 stores a frame rate, as AVI does: no timestamps per frame
    with caplog.at_level(logging.WARNING, logger="rtnst"):
        assert main(["-q", "video", str(src), str(out), "--model", str(identity), "--smooth", "none"]) == 0
    assert "frames repeated" in caplog.text
    flashes, clicks, last_s = flash_and_click_s(out)
    first_s = flash_and_click_s(out)[2] - (probe(out)["count"] - 1) / probe(out)["rate"]
    assert last_s - first_s == pytest.approx(times_ms[-1] / 1000, abs=0.05)  # as long as the source
    assert len(flashes) == 1 and clicks == pytest.approx(flashes, abs=0.03)


@pytest.mark.parametrize("fps", [Fraction(120000, 1001), Fraction(1800000, 60061)])  # slow motion; a phone's mean rate
def test_avi_takes_rates_mpeg4_cannot_state_exactly(tmp_path, fps):
    out = tmp_path / "o.avi"
    with VideoFileSink(out, width=32, height=24, fps=fps, time_base=Fraction(1, 90_000)) as sink:
        for i in range(6):
            sink.write(np.full((24, 32, 3), 40 * i, np.uint8), i * round(90_000 / fps))
    import av

    with av.open(str(out)) as c:
        rate = c.streams.video[0].average_rate
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert abs(rate / fps - 1) < 1e-6


def test_a_fixed_rate_rounded_to_milliseconds_is_put_back_on_its_grid(tmp_path):
    import av

    fps = Fraction(30000, 1001)
    out = tmp_path / "o.mp4"
    ms = [round(i * 1000 / fps) for i in range(10)] + [520]  # an OBS .mkv's timestamps, then one after a gap
    with VideoFileSink(out, width=32, height=24, fps=fps, time_base=Fraction(1, 1000)) as sink:
        for t in ms:
            sink.write(np.full((24, 32, 3), 90, np.uint8), t)
    with av.open(str(out)) as c:
        times = sorted(p.pts * p.time_base for p in c.demux(video=0) if p.pts is not None)
    assert times[:10] == [i / fps for i in range(10)]  # one frame duration: a fixed rate, as the source was
    assert times[10] == Fraction(52, 100)  # off the grid: where the source has it


def test_a_phones_variable_rate_keeps_its_frames_times(tmp_path):
    import av

    ticks = [0, 20, 40, 60, 85, 105, 125]  # 1/600 s: a phone's .mov, one frame late; its mean rate is odd
    out = tmp_path / "o.mp4"
    with VideoFileSink(out, width=32, height=24, fps=Fraction(1800000, 60061), time_base=Fraction(1, 600)) as sink:
        for t in ticks:
            sink.write(np.full((24, 32, 3), 90, np.uint8), t)
    with av.open(str(out)) as c:
        times = sorted(p.pts * p.time_base for p in c.demux(video=0) if p.pts is not None)
    assert times == [Fraction(t, 600) for t in ticks]
