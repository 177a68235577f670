"""Animated GIF output: one palette for the whole clip, made once the last frame is in."""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..files import AtomicFile, KeptIfFinished, check_output_path
from . import swscale as sws

log = logging.getLogger("rtnst")

GIF_SUFFIX = ".gif"
# GIF stores delays in 1/100 s, and browsers play a delay of 0 or 1 as 10: frames are at least 2/100 s
# apart, and some of a 60 fps clip's are left out so that it plays at its own speed (see write).
_MIN_DELAY_CS = 2
_MAX_LAG_CS = 3
_SPOOL_CODEC, _SPOOL_PIX_FMT = "ffv1", "bgr0"  # lossless, ~3.6x smaller than raw frames, ~6 ms a 360p frame
# The palette's colour counts are taken from every 2nd pixel of every 2nd row of frames at least this
# tall and wide: the same colours, a quarter of palettegen's time (1.3 against 4.2 ms a 360p frame).
_SUBSAMPLE_FROM_PX = 128
_MAX_WORKERS = 4  # threads that map frames to the palette when the GIF is written


class GifFileSink(KeptIfFinished):
    """Writes frames as an animated GIF that loops, renamed into place when closed (the FrameSink
    contract of sinks.py).

    A GIF frame holds 256 colours. A palette per frame (FFmpeg's palettegen on each) lets flat areas
    change colour from frame to frame and took ~27 ms more a 360p frame; so the frames are kept
    losslessly in a file beside the output while they come, one palette is made from all of them,
    and the GIF is written on ``close()``. No dithering: error diffusion draws its noise anew every
    frame (stylised bunny, 240 frames: E_warp 9% above the undithered GIF's, which is 4% above the
    frames' own).
    ``frame_size``: frames arrive at this (smaller) size and are scaled to ``width`` x ``height``
    when the GIF is written. A GIF has no sound: an audio track of ``audio_from`` is left out, and said.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: Fraction,
                 time_base: Fraction | None = None, audio_from: str | os.PathLike | None = None,
                 overwrite: bool = False, frame_size: tuple[int, int] | None = None,
                 progress: bool = False) -> None:
        import av
        import av.filter

        self.path = Path(path)
        check_output_path(self.path, overwrite=overwrite)
        if min(width, height) < 1 or max(width, height) > 65535:
            raise OutputError(f"cannot write {width}x{height} frames as a GIF: sides must be 1-65535 px")
        self.width, self.height = width, height
        self.frame_size = tuple(frame_size) if frame_size else (width, height)
        self.fps = Fraction(fps)
        self._tb = Fraction(time_base) if time_base else None
        self._progress = progress
        self._scale = sws.Scaler()
        if audio_from is not None:
            _say_sound_left_out(Path(audio_from))
        self._file = AtomicFile(self.path, overwrite=overwrite)
        self.tmp = self._file.tmp
        self._spool_path = self.tmp.with_name(self.tmp.name + ".frames.mkv")
        try:
            self._spool = av.open(str(self._spool_path), "w")
        except av.error.FFmpegError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._spool_video = self._spool.add_stream(_SPOOL_CODEC, rate=self.fps)
        self._spool_video.width, self._spool_video.height = self.frame_size
        self._spool_video.pix_fmt = _SPOOL_PIX_FMT
        self._step = 2 if min(self.frame_size) >= _SUBSAMPLE_FROM_PX else 1
        self._stats = av.filter.Graph()
        w, h = (-(-side // self._step) for side in self.frame_size)  # the sampled frame's sides
        src = self._stats.add_buffer(width=w, height=h, format="bgr24", time_base=Fraction(1, 100))
        gen = self._stats.add("palettegen", "stats_mode=full:reserve_transparent=0")
        src.link_to(gen)
        gen.link_to(self._stats.add("buffersink"))
        self._stats.configure()
        self._delays_at_cs: list[int] = []
        self._pts0: int | None = None
        self.frames_written = 0
        self.frames_left_out = 0
        self._closed = False

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Append a frame. ``pts``: its source timestamp in ``time_base`` (None: frames at ``fps``)."""
        import av

        if self._closed:
            raise OutputError(f"{self.path} is already closed")
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            raise OutputError(f"{self.path}: expected {self.frame_size[0]}x{self.frame_size[1]} frames, "
                              f"got {frame.shape[1]}x{frame.shape[0]}")
        if pts is None or self._tb is None:
            time_s = (self.frames_written + self.frames_left_out) / self.fps
        else:
            self._pts0 = pts if self._pts0 is None else self._pts0
            time_s = (pts - self._pts0) * self._tb
        due_cs = round(time_s * 100)
        # A frame due sooner than GIF can show it waits its turn; one that would fall further behind
        # than _MAX_LAG_CS is left out. Frames that arrive in bursts (a live camera's clock) are kept,
        # a clip faster than 50 fps drops frames and keeps its pace.
        at_cs = max(due_cs, self._delays_at_cs[-1] + _MIN_DELAY_CS) if self._delays_at_cs else due_cs
        if at_cs - due_cs > _MAX_LAG_CS:
            self.frames_left_out += 1
            return
        sampled = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[::self._step, ::self._step]), format="bgr24")
        sampled.pts = at_cs
        try:
            self._stats.push(sampled)
            spooled = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
            spooled = self._scale(spooled, format=_SPOOL_PIX_FMT)
            spooled.pts = len(self._delays_at_cs)
            for packet in self._spool_video.encode(spooled):
                self._spool.mux(packet)
        except av.error.FFmpegError as exc:
            raise OutputError(f"writing {self.path} failed: {exc.strerror or exc}") from None
        self._delays_at_cs.append(at_cs)
        self.frames_written += 1

    def close(self, *, complete: bool = True) -> None:
        """Make the palette and write the GIF. ``complete`` is accepted for the video sink's sake: a GIF
        of the frames written so far is always complete."""
        if self._closed:
            return
        if self.frames_left_out:
            log.warning("rtnst: GIF players show at most 50 frames a second: %d of %d frames were left out "
                        "so that %s plays at the source's speed", self.frames_left_out,
                        self.frames_left_out + self.frames_written, self.path)
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"no frames to write: {self.path} was not created")
        self._closed = True
        try:
            self._finish_spool()
            palette = self._palette()
            self._write_gif(palette)
        except Exception:
            self._file.discard()
            raise
        finally:
            self._spool_path.unlink(missing_ok=True)
        self._file.commit()

    def abort(self) -> None:
        """Drop the output and the kept frames."""
        if self._closed:
            return
        self._closed = True
        try:
            self._spool.close()
        except Exception:
            pass
        self._spool_path.unlink(missing_ok=True)
        self._file.discard()

    def _finish_spool(self) -> None:
        for packet in self._spool_video.encode(None):
            self._spool.mux(packet)
        self._spool.close()

    def _palette(self):
        import av

        self._stats.push(None)
        try:
            return self._stats.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            raise OutputError(f"writing {self.path} failed: FFmpeg made no palette") from None

    def _write_gif(self, palette) -> None:
        import av
        from tqdm import tqdm

        # Mapping a 720p frame to the palette takes ~37 ms and the GIF encoder ~13: frames are scaled
        # and mapped on every core (each thread its own filter graph: without dithering a frame's
        # mapping depends on nothing else), and encoded in order here. FFmpeg runs both without the GIL.
        local = threading.local()

        def mapped(spooled, at_cs: int):
            if not hasattr(local, "graph"):
                local.scale = sws.Scaler()
                local.graph, local.frames_in, local.sink = self._mapping_graph(palette)
            frame = local.scale(spooled, width=self.width, height=self.height, format="bgr24",
                                interpolation=sws.BICUBIC)
            frame.pts, frame.time_base = at_cs, Fraction(1, 100)
            local.frames_in.push(frame)
            done = list(_pull_all(local.sink))
            if len(done) != 1:  # paletteuse gives a frame back for each frame at once
                raise OutputError(f"writing {self.path} failed: FFmpeg's paletteuse returned {len(done)} frames "
                                  "for one")
            return done[0]

        out = av.open(str(self.tmp), "w", format="gif")
        try:
            video = out.add_stream("gif", rate=self.fps)
            video.width, video.height, video.pix_fmt = self.width, self.height, "pal8"
            video.time_base = video.codec_context.time_base = Fraction(1, 100)  # else the rate's: 1/25 s steps

            def encode(done) -> None:
                for packet in video.encode(done):
                    out.mux(packet)

            workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1))
            pending: deque = deque()
            with av.open(str(self._spool_path)) as spool, ThreadPoolExecutor(workers) as pool, \
                    tqdm(total=self.frames_written, unit="frame", disable=not self._progress, dynamic_ncols=True,
                         desc=f"writing {self.path.name}") as bar:
                for i, spooled in enumerate(spool.decode(video=0)):
                    pending.append(pool.submit(mapped, spooled, self._delays_at_cs[i]))
                    if len(pending) > 2 * workers:
                        encode(pending.popleft().result())
                        bar.update(1)
                while pending:
                    encode(pending.popleft().result())
                    bar.update(1)
            encode(None)
        except av.error.FFmpegError as exc:
            raise OutputError(f"writing {self.path} failed: {exc.strerror or exc}") from None
        finally:
            out.close()

    def _mapping_graph(self, palette):
        """A filter graph that maps frames of the GIF's size to ``palette``: (graph, its frame input,
        its output)."""
        import av.filter

        graph = av.filter.Graph()
        frames_in = graph.add_buffer(width=self.width, height=self.height, format="bgr24", time_base=Fraction(1, 100))
        palette_in = graph.add_buffer(width=palette.width, height=palette.height, format=palette.format.name,
                                      time_base=Fraction(1, 100))
        use = graph.add("paletteuse", "dither=none")
        sink = graph.add("buffersink")
        frames_in.link_to(use, 0, 0)
        palette_in.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()
        palette.pts = 0
        palette_in.push(palette)
        palette_in.push(None)
        return graph, frames_in, sink  # the graph too: its filters do not keep it alive


def _pull_all(sink):
    import av

    while True:
        try:
            yield sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def _say_sound_left_out(source: Path) -> None:
    import av

    try:
        with av.open(str(source)) as f:
            has_audio = bool(f.streams.audio)
    except (av.error.FFmpegError, OSError):
        return  # the source's own reader reports a file it cannot open
    if has_audio:
        log.info("rtnst: a GIF has no sound: the audio of %s is left out (write .mp4 to keep it)", source.name)
