"""Interlaced video (broadcast 1080i, DV, camcorders) deinterlaced as players do before showing it."""

from __future__ import annotations

import logging
from collections import deque
from fractions import Fraction
from typing import Iterator

log = logging.getLogger("rtnst")
_TOLD: set[str] = set()  # files said once to be interlaced: a command opens its input more than once


class Deinterlacer:
    """Interlaced frames (broadcast 1080i, DV, camcorders) woven from two fields are deinterlaced as
    players do before they are shown, else the model stylises the combs along every moving edge and
    the output, stored progressive, keeps them. FFmpeg's bwdif, a frame out for each frame in, one
    frame later: ``frames(frame)`` yields what is ready, ``frames(None)`` the last one."""

    def __init__(self, name: str) -> None:
        self._name, self._graph, self._key = name, None, None
        self._times: deque = deque()  # (pts, time_base) of the frames in: bwdif counts in half its time base

    def frames(self, frame) -> Iterator:
        if frame is not None and not frame.interlaced_frame and self._graph is None:
            yield frame  # progressive video, the common case: untouched
            return
        import av.filter

        key = None if frame is None else (frame.width, frame.height, frame.format.name)
        if self._graph is not None and (frame is None or key != self._key):
            self._graph.push(None)  # the end, or frames of another size: what is held comes out
            yield from self._pull()
            self._graph = None
        if frame is None:
            return
        if self._graph is None:
            if self._name not in _TOLD:
                _TOLD.add(self._name)
                log.info("rtnst: %s is interlaced: its frames are deinterlaced (bwdif) as players show them",
                         self._name)
            self._graph, self._key = av.filter.Graph(), key
            chain = [self._graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                            time_base=frame.time_base or Fraction(1, 90_000)),
                     self._graph.add("bwdif", "mode=send_frame:deint=interlaced"), self._graph.add("buffersink")]
            for a, b in zip(chain, chain[1:]):
                a.link_to(b)
            self._graph.configure()
        self._times.append((frame.pts, frame.time_base))
        self._graph.push(frame)
        yield from self._pull()

    def _pull(self) -> Iterator:
        import av

        while True:
            try:
                out = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            out.pts, out.time_base = self._times.popleft() if self._times else (out.pts, out.time_base)
            yield out
