"""Stylising a video file: every frame, in order, same rate, audio carried over."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .. import frames as fr
from ..errors import CorruptInputError, InputError, OptionError
from ..files import check_output_path
from ..signals import stop_on_signals
from .pipeline import run_pipeline
from .choices import DEFAULT_PRESET
from .gif import GIF_SUFFIX
from .sinks import open_file_sink
from .sources import VideoFileSource, is_stream_url
from .stylizer import Stylizer

log = logging.getLogger("rtnst")


@dataclass
class VideoReport:
    output: Path
    frames_written: int
    frames_expected: int | None
    interrupted: bool


def stylize_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    stylizer: Stylizer,
    *,
    smoother=None,
    overwrite: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    crf: int = 18,
    preset: str = DEFAULT_PRESET,
    max_frames: int | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    workers: int = 1,
) -> VideoReport:
    """Stylise ``input_path`` into ``output_path``.

    On Ctrl-C/SIGTERM (or ``stop`` set) the frames done so far are written as a playable file and
    the report says ``interrupted``. A truncated/corrupt input keeps the frames decoded before the
    damage and raises CorruptInputError afterwards, naming the output that holds them. With
    ``max_frames`` only the first frames are stylised (a preview), with the audio cut to match; with
    ``start_s`` and ``end_s`` (seconds on the players' clock) the part between them, its sound too.
    ``workers`` frames are stylised at once (``stylizer.stylize`` is then called from that many
    threads; see ``session.plan_threads``).
    """
    from tqdm import tqdm

    if is_stream_url(input_path):  # a live stream has no end, and its audio cannot be read a second time
        raise InputError(f"stylize_video reads video files; {input_path} is a stream URL (CameraSource reads streams)")
    src_path, out_path = Path(input_path), Path(output_path)
    check_output_path(out_path, overwrite=overwrite, inputs=(src_path,))
    if not 0 < crf <= 51:
        raise OptionError(f"crf must be between 1 and 51, got {crf}", param="crf")
    if workers < 1:
        raise OptionError(f"workers must be positive, got {workers}", param="workers")
    if max_frames is not None and max_frames < 1:
        raise OptionError(f"max_frames must be positive, got {max_frames}", param="max_frames")
    if start_s < 0:
        raise OptionError(f"start_s must be 0 or more, got {start_s:g}", param="start_s")
    if end_s is not None and end_s <= start_s:
        raise OptionError(f"end_s must be after start_s ({start_s:g} s), got {end_s:g}", param="end_s")
    with VideoFileSource(src_path, start_s=start_s) as source:
        width, height = getattr(stylizer, "output_size", None) or source.size
        # Non-square pixels (DV, DVD) are kept in the file, so it plays at the source's shape, but the
        # model sees them square: its strokes are round as the picture is shown, not stretched by the
        # pixels' shape. GIF players show square pixels, so a GIF is made at the shape shown. An output
        # size of the caller's own has square pixels.
        sar = None if getattr(stylizer, "output_size", None) else source.sample_aspect_ratio
        square = (max(1, round(width * sar)), height) if sar else None
        if square and out_path.suffix.lower() == GIF_SUFFIX:
            (width, height), sar = square, None
        # A model that runs smaller than the video (its native size, max_side_px) gets the frame
        # scaled down here and its output goes to the encoder as it is: the encoder's colour
        # conversion scales it up, so the full-size stylised frame is never made (~4 ms a 720p frame).
        small = getattr(stylizer, "scaled_only_size", lambda w, h: None)(*(square or (width, height))) or square
        source.shrink_to(small)
        sink = open_file_sink(out_path, width=width, height=height, fps=source.fps, time_base=source.time_base,
                              audio_from=src_path, overwrite=overwrite, crf=crf, preset=preset,
                              frame_size=small, progress=progress, sample_aspect_ratio=sar,
                              part_s=(start_s, end_s) if start_s > 0 or end_s is not None else None)
        read, cut = 0, False

        def frames():
            nonlocal read, cut
            if max_frames is not None and read >= max_frames:
                cut = True
                return None  # a preview of the first max_frames: the rest is not even decoded
            item = source.read()
            if item is not None and end_s is not None and (source.time_s(item.pts) or 0.0) >= end_s:
                cut = True
                return None
            read += 1
            return item

        def process(frame):  # called from several threads at once: no state between frames
            if small:
                frame = fr.resize(frame, small)
            return frame, stylizer.stylize(frame)

        def write(done, pts):  # in order, one at a time: the smoother's history follows the video
            frame, styled = done
            sink.write(styled if smoother is None else smoother(frame, styled), pts)

        total = source.frame_count
        if end_s is not None and total:
            total = min(total, max(1, round((end_s - start_s) * source.fps)))
        if max_frames is not None:
            total = min(max_frames, total or max_frames)
        bar = tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True,
                   desc=src_path.name, smoothing=0.1)
        stop = stop or threading.Event()
        failure: BaseException | None = None
        try:
            with stop_on_signals(stop):
                result = run_pipeline(frames, process, write, stop=stop, workers=workers,
                                      on_frame=lambda: bar.update(1))
        except CorruptInputError as exc:
            failure = exc
            result = None
        except BaseException:
            bar.close()
            sink.abort()
            raise
        bar.close()
        interrupted = result.interrupted if result else False
        # A part (max_frames, end_s) keeps the audio of the frames written only, as an interrupted run does.
        sink.close(complete=failure is None and not interrupted and not cut)
    report = VideoReport(out_path, sink.frames_written, source.frame_count, interrupted)
    if failure is not None:
        raise CorruptInputError(f"{failure}; {out_path} holds the {sink.frames_written} frames stylised before it",
                                frames_done=sink.frames_written)
    return report
