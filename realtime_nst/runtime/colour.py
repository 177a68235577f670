"""Decoded video frames to BGR frames as players show them on an ordinary (SDR, BT.709) screen."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np

from ..frames import video_matrix
from . import swscale as sws

log = logging.getLogger("rtnst")

# FFmpeg's enums (AVColorTransferCharacteristic, AVColorPrimaries) for what needs converting, not
# just a matrix: HDR transfers, and BT.2020's wider primaries, which phones record HDR video in.
_HDR_TRANSFERS = {16: "HDR10 (PQ)", 18: "HLG"}  # SMPTE ST 2084, ARIB STD-B67
_BT2020_PRIMARIES = 9
# Reference white (HDR's 203 cd/m², BT.2408) becomes SDR white and brighter highlights clip:
# a phone's HLG or PQ clip looks as its SDR version would. A plain YUV->RGB decode instead gives
# the HDR signal itself, grey and washed out (a PQ clip of bunny: 58 levels off its SDR frames
# on average, 3 after this mapping; HLG: 32, 2).
_TO_SDR = "out_transfer=bt709:out_primaries=bt709:out_color_matrix=bt709"
_TOLD: set[str] = set()  # the files whose mapping was said: a command opens its input more than once
# 4:2:0 chroma interpolated to every pixel, as players show it. swscale's default YUV->RGB path
# repeats each chroma sample over a 2x2 block, whose edges crawl along moving colour edges: a 4:2:0
# round trip of great_wave-realtime's flow-smoothed bunny frames decoded so raised their E_warp by
# 30% (interpolated: 2%), and the model was fed the blocks. Shrinking in the same
# pass (area, as frames.resize shrinks) costs no more than the blocky decode and a separate resize
# (720p -> 640x360: 1.6 ms against 1.4 + 0.5; 3.5 ms for the 720p frame alone).
_SWS_DECODE, _SWS_DECODE_SHRINK = sws.EXACT | sws.BILINEAR, sws.EXACT | sws.AREA


class FrameConverter:
    """``convert(frame)``: a PyAV VideoFrame to an HxWx3 uint8 BGR frame (one per video source)."""

    def __init__(self, name: str, *, key: str) -> None:
        """``name``: the source as messages call it; ``key``: the same source however it was named."""
        self.name, self._path_key = name, key
        self._scale = sws.Scaler()
        self._graph = None
        self._graph_key: tuple | None = None
        self._unmapped = False
        # Frames are scaled to this (w, h) in the conversion when the caller only wants them that size
        # (HDR frames before they are mapped: the mapping costs 36 ms a 1080p frame, 132 ms at 4K).
        self.shrink_to: tuple[int, int] | None = None

    def convert(self, frame) -> np.ndarray:
        # older PyAV has neither attribute (and its FFmpeg no colour-managed scaling)
        trc, primaries = getattr(frame, "color_trc", None), getattr(frame, "color_primaries", None)
        if (trc in _HDR_TRANSFERS or primaries == _BT2020_PRIMARIES) and not self._unmapped:
            image = self._to_sdr(frame, _HDR_TRANSFERS.get(trc, "BT.2020 colour"))
            if image is not None:
                return image
        size = self.shrink_to
        shrink = size is not None and (size[0] < frame.width or size[1] < frame.height)
        width, height = size if shrink else (frame.width, frame.height)
        # untagged HD: decode as players do (BT.709); tagged, PyAV follows the tag; SD is BT.601 either way
        matrix = video_matrix(frame.height) if frame.colorspace in (0, 2) and frame.height >= 720 else None
        return self._scale(frame, width=width, height=height, format="bgr24", src_colorspace=matrix,
                           interpolation=_SWS_DECODE_SHRINK if shrink else _SWS_DECODE).to_ndarray()

    def _to_sdr(self, frame, what: str) -> np.ndarray | None:
        import av
        import av.filter

        key = (frame.width, frame.height, frame.format.name, frame.colorspace, frame.color_range,
               frame.color_trc, frame.color_primaries, self.shrink_to)
        try:
            if key != self._graph_key:
                self._graph = self._build(frame, self.shrink_to)
                self._graph_key = key
            self._graph.push(frame)
            image = self._graph.pull().to_ndarray()
        except (av.error.FFmpegError, ValueError) as exc:
            # FFmpeg before 8 has no colour-managed scaling: the frames are decoded as they are.
            self._unmapped = True
            if self._path_key in _TOLD:
                return None
            _TOLD.add(self._path_key)
            log.warning("rtnst: %s is %s video, which this FFmpeg cannot map to ordinary screens' colours (%s): "
                        "its frames will look grey and washed out; a newer PyAV ('pip install -U av') maps them",
                        self.name, what, getattr(exc, "strerror", None) or exc)
            return None
        if self._path_key not in _TOLD:
            _TOLD.add(self._path_key)
            log.info("rtnst: %s is %s video: its frames are mapped to ordinary (SDR, BT.709) colours, as the "
                     "output is", self.name, what)
        return image

    @staticmethod
    def _build(frame, size: tuple[int, int] | None):
        import av.filter

        graph = av.filter.Graph()
        chain = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                  time_base=frame.time_base or Fraction(1, 1000))]
        if size and size != (frame.width, frame.height):  # the HDR signal as it is, area-averaged as frames.resize does
            chain.append(graph.add("scale", f"w={size[0]}:h={size[1]}:flags=area"))
        chain += [graph.add("scale", _TO_SDR), graph.add("format", "bgr24"), graph.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        return graph
