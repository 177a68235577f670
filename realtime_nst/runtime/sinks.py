"""Frame sinks: video files (PyAV, audio carried over from the source), animated GIFs (gif.py),
windows, virtual cameras."""

from __future__ import annotations

import logging
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import OptionError, OutputError
from ..files import AtomicFile, KeptIfFinished, check_output_path
from ..frames import video_matrix
from . import swscale as sws
from .choices import DEFAULT_PRESET, X264_PRESETS
from .containers import open_container
from .passthrough import JOIN_S, Passthrough

_MAX_GAP_S = 10.0  # a longer jump forward in a source's clock is a break, not seconds of one frame repeated

log = logging.getLogger("rtnst")

# swscale's default RGB->YUV rounds down: grey 128 became Y 125 / UV 127, frames ~1 level darker from
# the encode alone. Accurate rounding and full chroma interpolation fix that (an RGB->YUV->RGB round
# trip with accurate conversions: bias 2.0 -> 0.1 levels) for ~1.5 ms more per 720p frame.
_SWS_FLAGS = sws.BILINEAR | sws.EXACT
# Frames smaller than the video (``frame_size``) are enlarged in the same conversion, bicubic as
# frames.resize enlarges: one pass over the full-size frame instead of two (~4 ms a 720p frame).
_SWS_FLAGS_ENLARGE = sws.BICUBIC | sws.EXACT
# Encoders with a fixed quantiser instead of a CRF: 6 CRF steps double x264's quantiser, and at CRF
# 18 x264 and MPEG-1 at quantiser 2 come close on bunny (39.5 and 39.2 dB PSNR; MPEG-1 at twice the size).
# The quantiser is pinned by its bounds: the rate control has no room to aim at its default 200 kb/s.
_QSCALE_CODECS = {"mpeg4", "mpeg2video", "mpeg1video"}
# MPEG-1/2 video stores a frame rate, not a time base: frames are numbered at it, as in AVI, and a
# rate outside the standard table (10 or 15 fps, say) takes FFmpeg's extension codes, which it reads back.
_FRAME_RATE_CODECS = {"mpeg2video", "mpeg1video"}
_FRAME_NUMBERED = {".avi"}  # containers that store a frame rate, not per-frame timestamps



@runtime_checkable
class FrameSink(Protocol):
    """Where stylised frames go. ``close()`` finishes the output (a video file is renamed into place)
    and ``abort()`` drops it (nothing useful was written); both are safe to call twice, and after
    either, ``write`` raises."""

    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def _mux_tracks_until(self, time_s: float | None) -> None:
        if self._tracks is not None:
            self._tracks.mux_until(time_s)

    def abort(self) -> None: ...


def open_file_sink(path: str | os.PathLike, *, crf: int = 18, preset: str = DEFAULT_PRESET, progress: bool = False,
                   sample_aspect_ratio: Fraction | None = None, **common) -> FrameSink:
    """The sink for ``path``'s suffix: gif.GifFileSink for .gif (``crf``, ``preset`` and
    ``sample_aspect_ratio`` are video's and unused there: GIF players show square pixels), else
    VideoFileSink (``progress``: a bar for the GIF's writing pass only)."""
    from .gif import GIF_SUFFIX, GifFileSink

    if Path(path).suffix.lower() == GIF_SUFFIX:
        common.pop("part_s", None)  # a GIF has no sound or chapters to cut
        return GifFileSink(path, progress=progress, **common)
    return VideoFileSink(path, crf=crf, preset=preset, sample_aspect_ratio=sample_aspect_ratio, **common)


class VideoFileSink(KeptIfFinished):
    """Encodes frames to a temporary file beside ``path`` and renames it when closed.

    The audio and subtitle tracks of ``audio_from`` are carried over (passthrough.py), muxed alongside
    the video up to the last video timestamp, so a file closed early (interrupt, corrupt input)
    still has audio and video of the same length. With ``overwrite`` off, a file that appears at
    ``path`` while this one is written is kept and the close fails.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: Fraction,
                 time_base: Fraction | None = None, audio_from: str | os.PathLike | None = None,
                 overwrite: bool = False, crf: int = 18, preset: str = DEFAULT_PRESET,
                 frame_size: tuple[int, int] | None = None, sample_aspect_ratio: Fraction | None = None,
                 part_s: tuple[float, float | None] | None = None) -> None:
        """``crf`` and ``preset``: H.264's quality and speed (``crf`` scaled to VP9's range for .webm).
        ``frame_size``: frames are written at this (smaller) size and scaled to ``width`` x
        ``height`` by the encoder's colour conversion. ``sample_aspect_ratio``: the pixels' shape
        players are told (None: square). ``part_s``: the part of ``audio_from`` the frames cover,
        (start, end or None) in seconds, where not the whole: its tracks and chapters are cut to it."""
        self.path = Path(path)
        if preset not in X264_PRESETS:
            raise OptionError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}", param="preset")
        check_output_path(self.path, overwrite=overwrite)
        self._file = AtomicFile(self.path, overwrite=overwrite)
        self.tmp = self._file.tmp
        self._out, codec = open_container(self.path, self.tmp)
        self.fps = Fraction(fps)
        self._numbered = self.path.suffix.lower() in _FRAME_NUMBERED or codec in _FRAME_RATE_CODECS
        if codec == "mpeg4":  # MPEG-4 Part 2 counts time in steps of at least 1/65535 s
            self.fps = 1 / (1 / self.fps).limit_denominator(65535)  # 119.88 fps (slow motion) within 1 ppm
            self._numbered = self._numbered or bool(time_base and Fraction(time_base).denominator > 65535)
        self._video = self._out.add_stream(codec, rate=self.fps)
        # 4:2:0, which every player decodes (4:4:4 H.264 many cannot), needs even sides: an odd frame
        # loses its last column or row. (x264's SPS cropping, which would keep it, is not reachable
        # through FFmpeg's options.)
        self.width, self.height = width - width % 2, height - height % 2
        if (self.width, self.height) != (width, height):
            if min(self.width, self.height) == 0:
                self._discard()
                raise OutputError(f"cannot encode {width}x{height} frames as video: a side must be 2 px or more")
            log.info("rtnst: %dx%d frames are encoded as %dx%d (4:2:0 video needs even sides)", width, height,
                     self.width, self.height)
        self._video.width, self._video.height = self.width, self.height
        if sample_aspect_ratio:
            self._video.codec_context.sample_aspect_ratio = Fraction(sample_aspect_ratio)
        self.frame_size = tuple(frame_size) if frame_size and tuple(frame_size) != (width, height) else None
        self._video.pix_fmt = "yuv420p"
        # Frames become YUV by the matrix players assume for this size, and the stream says so
        # (BT.709 or BT.601, limited range): swscale's BT.601 default, untagged, shifted HD colours.
        self._matrix = video_matrix(height)
        self._scale = sws.Scaler()
        cc = self._video.codec_context
        # FFmpeg's enums: 1 = BT.709, 6 = SMPTE 170M (BT.601); range 1 = limited ("MPEG").
        cc.colorspace = cc.color_primaries = cc.color_trc = 1 if self._matrix == "ITU709" else 6
        cc.color_range = 1
        if codec == "libx264":
            self._video.options = {"crf": str(crf), "preset": preset}
        elif codec == "libvpx-vp9":  # constant quality on VP9's 0..63 scale; its default speed is far too slow
            self._video.options = {"crf": str(round(crf * 63 / 51)), "b": "0", "deadline": "realtime",
                                   "cpu-used": "8", "row-mt": "1"}
        elif codec in _QSCALE_CODECS:  # FFmpeg's default for them is 200 kb/s, blocky at any size
            q = min(31, max(1, round(2 * 2 ** ((crf - 18) / 6))))
            self._video.options = {"qmin": str(q), "qmax": str(q),
                                   **({"strict": "unofficial"} if codec in _FRAME_RATE_CODECS else {})}
        if self._numbered:  # AVI cannot order B-frames (no presentation timestamps): players would shuffle them
            self._video.codec_context.max_b_frames = 0
        if codec == "mpeg4" and self.path.suffix.lower() == ".avi":
            # FFmpeg tags it FMP4, which many players and TVs do not know; they know the codec as Xvid.
            self._video.codec_tag = "XVID"
        # Encoder and stream share the source's time base, so source timestamps pass through unchanged.
        # AVI has no timestamps, only a frame rate: there frames are numbered at fps (with the source's
        # fine time base its muxer wrote a 600 fps stream padded with empty frames).
        tb = Fraction(time_base) if time_base and not self._numbered else 1 / self.fps
        self._src_tb = Fraction(time_base) if time_base else None
        # A time base that cannot hold the frame rate's grid (Matroska's 1/1000 s, so OBS's recordings,
        # at 29.97 fps) rounds a fixed rate to 33, 33 and 34 ms frames, which an MP4 keeps as a variable
        # rate (editors flag it, and drift its sound). A base that holds both the grid and the source's
        # ticks puts the frames back on the grid (_to_out). Only for a nominal rate (24, 29.97, 50 fps):
        # a phone's variable rate averages to an odd one (1800000/60061), and its frames keep their times.
        grid = math.lcm(self._src_tb.denominator, self.fps.numerator) if tb == self._src_tb else 0
        self._snap = (self.fps.denominator in (1, 1001) and grid <= (65535 if codec == "mpeg4" else 10_000_000)
                      and (1 / (self.fps * tb)).denominator != 1)
        if self._snap:
            tb = Fraction(1, grid)
        self._video.time_base = self._video.codec_context.time_base = tb
        self._tb = tb  # the muxer may change the stream's time base when it writes the header
        self.frames_written = 0
        self._pts0: int | None = None
        self._last_pts = -1
        self._restamped = 0
        self._joins = 0  # the source's timeline started again (joined clips)
        self._repeated = self._left_out = 0  # frames, to keep a variable rate's timing at a fixed one
        self._held = None  # the last frame encoded, repeated where a fixed rate needs it
        self._last_time_s = 0.0
        self._closed = False
        self._tracks: Passthrough | None = None
        if audio_from is not None:
            try:
                self._tracks = Passthrough(self._out, Path(audio_from), video=self._video, label=self.path.suffix,
                                           part_s=part_s)
            except BaseException:
                self._discard()
                raise

    # -- video ---------------------------------------------------------------------------------
    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Append a frame. ``pts`` is the source timestamp in ``time_base`` (kept, so variable
        frame rates and the exact rational rate survive); None numbers frames at ``fps``."""
        import av

        if self._closed:
            raise OutputError(f"{self.path} is already closed")
        first, copies = self._place(pts)
        if copies == 0:
            return  # a frame that a fixed frame rate has no slot for
        if self.frame_size:
            if (frame.shape[1], frame.shape[0]) != self.frame_size:
                raise OutputError(f"{self.path}: expected {self.frame_size[0]}x{self.frame_size[1]} frames, "
                                  f"got {frame.shape[1]}x{frame.shape[0]}")
            flags = _SWS_FLAGS_ENLARGE
        elif frame.shape[:2] != (self.height, self.width) and all(
                0 <= got - want <= 1 for got, want in zip(frame.shape[:2], (self.height, self.width))):
            frame, flags = np.ascontiguousarray(frame[: self.height, : self.width]), _SWS_FLAGS  # odd side
        else:  # a source whose frame size changes part way is scaled to the video's size
            flags = _SWS_FLAGS if frame.shape[:2] == (self.height, self.width) else _SWS_FLAGS_ENLARGE
        vf = self._scale(
            av.VideoFrame.from_ndarray(frame, format="bgr24"), width=self.width, height=self.height, format=self._video.pix_fmt, dst_colorspace=self._matrix,
            dst_color_range="MPEG", interpolation=flags)
        try:
            for k in range(copies):  # the frame before fills the slots up to this frame's own
                shown = vf if k == copies - 1 or self._held is None else self._held
                shown.pts, shown.time_base = first + k, self._tb
                for packet in self._video.encode(shown):
                    self._out.mux(packet)
            self._held = vf
            self._last_pts = vf.pts
            self._last_time_s = float(vf.pts * self._tb)
            self._mux_tracks_until(self._last_time_s + float(1 / self.fps))
        except av.error.FFmpegError as exc:
            raise OutputError(f"writing {self.path} failed: {exc.strerror or exc}") from None
        self.frames_written += copies

    def _place(self, pts: int | None) -> tuple[int, int]:
        """(the output timestamp of a frame with source timestamp ``pts``, how many times it goes in)."""
        if pts is not None and self._pts0 is None:
            self._pts0 = pts  # the source's start: time 0 of the output, for its audio too
            if self._tracks is not None and self._src_tb is not None:
                self._tracks.start_s = pts * self._src_tb
        if self._numbered and pts is not None and self._src_tb is not None:
            return self.frames_written, self._copies_at_the_rate(pts)
        if pts is None or self._numbered:
            return round(self.frames_written / self.fps / self._tb), 1
        out = self._to_out(pts - self._pts0)
        if (self._last_pts - out) * self._tb > JOIN_S:
            step = max(1, round(1 / self.fps / self._tb))
            self._pts0 = pts - round((self._last_pts + step) * self._tb / (self._src_tb or self._tb))
            self._joins += 1
            return self._last_pts + step, 1
        if out <= self._last_pts:  # a damaged source repeats or reorders timestamps: the encoder and muxer
            self._restamped += 1  # need them increasing, so the frame takes the next
            return self._last_pts + 1, 1
        return out, 1

    def _to_out(self, ticks: int) -> int:
        """A source time (``ticks`` after its start) in the output's time base: on the frame rate's grid
        where it lies within the source's rounding of it, else exactly as the source has it."""
        if not self._snap:
            return ticks
        t = ticks * self._src_tb
        on_grid = round(t * self.fps) / self.fps
        return round((on_grid if abs(t - on_grid) <= self._src_tb else t) / self._tb)

    def _copies_at_the_rate(self, pts: int) -> int:
        """How many times a frame goes into a file that stores a frame rate, not timestamps (.avi,
        MPEG-1/2): a variable-rate source's frames are repeated or left out to keep its timing."""
        slot = round((pts - self._pts0) * self._src_tb * self.fps)
        behind = self.frames_written - slot
        if behind / self.fps > JOIN_S or -behind / self.fps > _MAX_GAP_S:  # its clock started again, or jumped
            self._pts0 = pts - round(self.frames_written / self.fps / self._src_tb)
            self._joins += 1
            return 1
        if behind > 0:
            self._left_out += 1
            return 0
        self._repeated -= behind
        return 1 - behind

    def close(self, *, complete: bool = True) -> None:
        """Finish the file and move it into place. ``complete=False`` (interrupted, corrupt input)
        still gives a playable file with the frames written so far, and audio of the same length."""
        import av

        if self._closed:
            return
        if self._joins:
            log.warning("rtnst: the source's timestamps started again %d time%s (joined clips?); each part "
                        "continues the one before", self._joins, "" if self._joins == 1 else "s")
        if self._repeated or self._left_out:
            log.warning("rtnst: %s stores a fixed frame rate: %d frames repeated and %d left out to keep the "
                        "source's timing", self.path.suffix, self._repeated, self._left_out)
        if self._restamped:
            log.warning("rtnst: %d frame%s of the source had a repeated or out-of-order timestamp; "
                        "each was given the next one", self._restamped, "" if self._restamped == 1 else "s")
        if self.frames_written == 0:  # FFmpeg never created the file: say so instead of an empty video
            self.abort()
            raise OutputError(f"no frames to write: {self.path} was not created")
        self._closed = True
        try:
            for packet in self._video.encode(None):
                self._out.mux(packet)
            end = None if complete else self._last_time_s + float(1 / self.fps)
            self._mux_tracks_until(end)
            self._out.close()
        except av.error.FFmpegError as exc:
            self._discard()
            raise OutputError(f"writing {self.path} failed: {exc.strerror or exc}") from None
        except Exception:
            self._discard()
            raise
        finally:
            if self._tracks is not None:
                self._tracks.close()
        self._file.commit()

    def _mux_tracks_until(self, time_s: float | None) -> None:
        if self._tracks is not None:
            self._tracks.mux_until(time_s)

    def abort(self) -> None:
        """Drop the temporary file: for failures where nothing useful was written."""
        if self._closed:
            return
        self._closed = True
        self._discard()
        if self._tracks is not None:
            self._tracks.close()

    def _discard(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        self._file.discard()
