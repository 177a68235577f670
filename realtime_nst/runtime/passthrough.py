"""A source's audio and subtitle tracks carried into the video being written, on that video's timeline."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from .containers import seeks_by_index, takes

log = logging.getLogger("rtnst")

_MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder"}
# A timestamp this far behind the last one is the source's timeline starting again (clips joined by
# `cat`, a stream that restarted): what follows continues from the last one instead of being squeezed in.
JOIN_S = 0.5
_CHAPTER_FORMATS = {"matroska", "webm", "mp4", "mov", "ipod", "ismv"}  # muxers that write chapters


class Passthrough:
    """The audio and subtitle streams of ``source``, added to the output container ``out``.

    Audio is copied packet by packet (remuxed, not re-encoded) where ``out`` can hold its codec, else
    re-encoded to its default audio codec, and said so; subtitles are copied where ``out`` takes
    their format, else left out, and said so. ``label`` names the output in those messages.

    Timestamps follow the video: ``start_s``, the source time of the video's first frame, is time 0
    (set it before the first ``mux_until``), and where a track's timestamps start again (joined
    clips) it continues from where it was, as the video does. ``part_s``: the part of the source the
    video covers, (start, end or None) in seconds on the players' clock, where it is not the whole:
    what ends before its start is left out, and the chapters are cut to it. Damaged packets that
    FFmpeg refuses are left out and counted; ``close()`` says how many.
    """

    def __init__(self, out, source: Path, *, video, label: str,
                 part_s: tuple[float, float | None] | None = None) -> None:
        import av

        self._out = out
        self._label = label
        self._src = av.open(str(source), "r")
        self.start_s: Fraction = Fraction(0)
        self._streams: dict[int, tuple] = {}  # source stream index -> (out_stream, reencode)
        self._shifts: dict[int, int] = {}  # ticks taken off each stream's timestamps
        self._last: dict[int, tuple[int, int]] = {}  # each stream's last (dts, duration) on our timeline
        self._pending: list = []
        self._encoded: dict[int, int] = {}  # re-encoded streams: samples given to the encoder
        self._skipped = 0
        self._trimmed, self._sought = bool(part_s and part_s[0] > 0), False
        self._closed = False
        try:
            self._add_streams(video)
            self._add_chapters(part_s or (0.0, None))
        except BaseException:
            self._src.close()
            raise
        wanted = [self._src.streams[i] for i in self._streams]
        self._demux = self._src.demux(wanted) if wanted else None

    def _add_streams(self, video) -> None:
        import av

        # The file's own tags (title, creation_time, ...; what the muxer writes itself is left to it)
        # and the video's language stay: photo and video libraries sort and label by them.
        self._out.metadata.update({k: v for k, v in self._src.metadata.items() if k not in _MUXER_TAGS})
        # Its timecode too (camera and editing footage; a .mov keeps it as a timecode track).
        shown = self._src.streams.best("video") if self._src.streams.video else None  # as sources.py picks it
        for tag in ("language", "timecode"):
            value = shown.metadata.get(tag) if shown is not None else None
            if value:
                video.metadata[tag] = value
        for s in self._src.streams.audio:
            if s.codec_context is None:  # a codec FFmpeg does not know: neither copied nor decoded
                log.warning("rtnst: audio track %d has a codec FFmpeg does not know: left out", s.index)
                continue
            name = s.codec_context.name
            # PCM in MP4 ("ipcm") is recent: many players cannot play it, and from Matroska, which
            # stores no channel layout, FFmpeg's MP4 muxer refuses it. It is re-encoded there instead.
            pcm_in_mp4 = name.startswith("pcm_") and self._out.format.name == "mp4"
            if takes(self._out, name) and not pcm_in_mp4:
                self._streams[s.index] = (self._out.add_stream_from_template(s), False)
                continue
            target = self._out.default_audio_codec
            try:
                encoder = av.codec.Codec(target, "w")
            except (av.codec.codec.UnknownCodecError, av.error.FFmpegError, ValueError):
                log.warning("rtnst: audio track %d (%s) cannot go into %s, which has no audio encoder here: "
                            "left out (.mp4 and .mkv keep it)", s.index, name, self._label)
                continue
            # Opus, say, has no 44.1 kHz: take the next rate the encoder has (PyAV resamples to it).
            rate, rates = s.codec_context.sample_rate, encoder.audio_rates
            if rates and rate not in rates:
                rate = min((r for r in rates if r >= rate), default=max(rates))
            log.info("rtnst: audio %s cannot go into %s as is; re-encoding it to %s", name, self._label, target)
            self._streams[s.index] = (self._out.add_stream(target, rate=rate), True)
        # Subtitle tracks are copied where the container takes their format (SRT/ASS into .mkv);
        # converting them (SRT into .mp4's mov_text) is not done, and said.
        for s in self._src.streams.subtitles:
            name = s.codec_context.name if s.codec_context else "unknown"
            if takes(self._out, name):
                self._streams[s.index] = (self._out.add_stream_from_template(s), False)
            else:
                log.warning("rtnst: subtitle track %d (%s) cannot go into %s: left out (.mkv keeps it)",
                            s.index, name, self._label)
        # Named, not carried: a camera's telemetry (GoPro's GPS and motion data), a Matroska file's
        # attachments (the fonts of styled subtitles). A timecode track goes over as the video's tag.
        others = [f"attachment {s.metadata.get('filename', s.index)}" if s.type == "attachment"
                  else f"data track {s.index}" for s in self._src.streams
                  if s.type == "attachment" or (s.type == "data" and "timecode" not in s.metadata)]
        if others:
            log.warning("rtnst: %s of the source left out of %s (rtnst carries the sound, subtitles, chapters and "
                        "timecode)", ", ".join(others), self._label)

    def _add_chapters(self, part_s: tuple[float, float | None]) -> None:
        """The source's chapters (an editor's or a camera's markers), cut to ``part_s`` and on the
        output's timeline; set before the first packet, as the muxers write them in the header."""
        chapters = self._src.chapters() if hasattr(self._src, "chapters") else []  # PyAV 14 and later
        start, end = part_s
        kept = []
        for chapter in chapters:
            tb = chapter["time_base"]
            begins, ends = float(chapter["start"] * tb) - start, float(chapter["end"] * tb) - start
            if ends <= 0 or (end is not None and begins >= end - start):
                continue
            ends = ends if end is None else min(ends, end - start)
            kept.append({"id": len(kept) + 1, "start": round(max(begins, 0.0) * 1000), "end": round(ends * 1000),
                         "time_base": Fraction(1, 1000), "metadata": dict(chapter["metadata"])})
        if not kept:
            return
        if self._out.format.name.split(",")[0] not in _CHAPTER_FORMATS:
            log.warning("rtnst: the source's %d chapter%s cannot go into %s: left out (.mkv and .mp4 keep them)",
                        len(kept), "" if len(kept) == 1 else "s", self._label)
            return
        self._out.set_chapters(kept)

    def mux_until(self, time_s: float | None) -> None:
        """Mux the packets that start before ``time_s`` on the video's timeline (None: all that remain)."""
        import av

        if self._demux is None:
            return
        if self._trimmed and not self._sought and self.start_s > 1 and seeks_by_index(self._src):  # near the start
            self._sought = True
            try:
                self._src.seek(int((self.start_s - 1) * 1_000_000))
            except av.error.FFmpegError:
                pass  # read from the top, leaving out what ends before the start
            self._demux = self._src.demux([self._src.streams[i] for i in self._streams])
        while True:
            if not self._pending:
                packet = next(self._demux, None)
                if packet is None:
                    self._demux = None
                    break
                if packet.dts is None and packet.size == 0:
                    continue  # the demuxer's flush packet
                self._to_our_timeline(packet)
                if self._trimmed and packet.pts is not None and (packet.pts + (packet.duration or 0)) <= 0:
                    continue  # wholly before the part of the source the video starts at
                self._pending.append(packet)
            packet = self._pending[0]
            if packet.pts is not None and time_s is not None and packet.pts * packet.time_base >= time_s:
                return
            self._pending.pop(0)
            out, reencode = self._streams[packet.stream.index]
            try:
                if reencode:
                    for frame in packet.decode():
                        for ready in self._fit_to_timeline(frame, packet.stream.index):
                            ready.pts = None  # numbered from 0 by the encoder, as the samples lie end to end
                            self._out.mux(out.encode(ready))
                else:
                    packet.stream = out
                    self._out.mux(packet)
            except (av.error.ArgumentError, av.error.InvalidDataError):
                self._skipped += 1  # bad data, or timestamps the muxer refuses: the rest of the track goes on
        for out, reencode in self._streams.values():
            if reencode:
                self._out.mux(out.encode(None))

    def _fit_to_timeline(self, frame, key: int):
        """Decoded audio made to lie end to end from time 0, for an encoder that numbers samples from
        there: what lies before 0 (audio that starts before the video) is cut, a gap is filled with
        silence. Yields the frames to encode."""
        import av
        import numpy as np

        rate, given = frame.sample_rate, self._encoded.get(key, 0)  # samples given to the encoder so far
        if frame.pts is None or not frame.time_base or not frame.samples:
            self._encoded[key] = given + frame.samples
            yield frame
            return
        start = round(frame.pts * frame.time_base * rate)
        if abs(start - given) <= rate // 200:  # within 5 ms: as it lies
            self._encoded[key] = given + frame.samples
            yield frame
            return
        samples = frame.to_ndarray()
        per = samples.shape[1] // frame.samples  # columns a sample takes: 1 planar, channels packed
        if start > given:  # a gap: silence up to the frame
            for n in range(given, start, rate):
                silence = np.zeros((samples.shape[0], min(rate, start - n) * per), samples.dtype)
                yield _audio_frame(av, silence, frame)
            given = start
        cut = given - start  # samples of this frame that lie before what was given already
        if cut >= frame.samples:
            return
        self._encoded[key] = given + frame.samples - cut
        yield _audio_frame(av, samples[:, cut * per:], frame) if cut else frame

    def _to_our_timeline(self, packet) -> None:
        key, tb = packet.stream.index, packet.time_base
        if key not in self._shifts:
            self._shifts[key] = round(self.start_s / tb)
        dts = packet.dts if packet.dts is not None else packet.pts
        if dts is None:
            return
        last = self._last.get(key)
        if last is not None and (last[0] - (dts - self._shifts[key])) * tb > JOIN_S:
            self._shifts[key] = dts - (last[0] + max(1, last[1]))
        shift = self._shifts[key]
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        self._last[key] = (dts - shift, packet.duration or 0)

    def close(self) -> None:
        """Close the source; safe twice."""
        if self._closed:
            return
        self._closed = True
        self._src.close()
        if self._skipped:
            log.warning("rtnst: %d damaged audio or subtitle packet%s of the source left out", self._skipped,
                        "" if self._skipped == 1 else "s")


def _audio_frame(av, samples, like):
    """An audio frame of ``samples`` (to_ndarray's layout) in ``like``'s format and rate."""
    import numpy as np

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=like.format.name, layout=like.layout.name)
    frame.sample_rate = like.sample_rate
    return frame
