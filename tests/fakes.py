"""Small stand-ins for tests: tiny ONNX models, synthetic clips with and without audio."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np


def onnx_model(path: Path, *, kind: str = "identity", metadata: dict[str, str] | None = None,
               input_shape=("N", 3, "H", "W")) -> Path:
    """kind: identity | first_channel (every output channel = input channel 0) | shrink (output half
    size: not image-to-image) | add_half (x + 0.5) | blur (3x3 box, zero padding) | reflect8 (identity
    through a reflect pad of 8 px, which fails on sides of 8 or less) | nan (NaN everywhere)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    inits = []
    if kind == "identity":
        nodes = [helper.make_node("Identity", ["input"], ["output"])]
    elif kind == "first_channel":
        w = np.zeros((3, 3, 1, 1), np.float32)
        w[:, 0] = 1.0
        inits.append(helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten()))
        nodes = [helper.make_node("Conv", ["input", "w"], ["output"])]
    elif kind == "blur":  # 3x3 box blur with zero padding: darkens the border, as zero-padded nets do
        w = np.zeros((3, 1, 3, 3), np.float32) + 1 / 9
        inits.append(helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten()))
        nodes = [helper.make_node("Conv", ["input", "w"], ["output"], group=3, pads=[1, 1, 1, 1])]
    elif kind == "shrink":
        nodes = [helper.make_node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2], strides=[2, 2])]
    elif kind == "add_half":
        inits.append(helper.make_tensor("h", TensorProto.FLOAT, [1], [0.5]))
        nodes = [helper.make_node("Add", ["input", "h"], ["output"])]
    elif kind == "reflect8":
        inits.append(helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 8, 8, 0, 0, 8, 8]))
        inits += [helper.make_tensor(n, TensorProto.INT64, [2], v) for n, v in
                  (("starts", [8, 8]), ("ends", [-8, -8]), ("axes", [2, 3]))]
        nodes = [helper.make_node("Pad", ["input", "pads"], ["padded"], mode="reflect"),
                 helper.make_node("Slice", ["padded", "starts", "ends", "axes"], ["output"])]
    elif kind == "nan":
        inits.append(helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0]))
        nodes = [helper.make_node("Sub", ["input", "two"], ["neg"]), helper.make_node("Sqrt", ["neg"], ["output"])]
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, kind, [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.save(model, str(path))
    return path


def mux_frames(out, stream, images, *, pts=None, time_base=None, flush: bool = True) -> None:
    """Encode BGR ``images`` into ``stream`` of the open container ``out``, at ``pts`` (0, 1, ... unless
    given, in ``time_base`` if given); ``flush``: end the stream."""
    import av

    for t, image in zip(range(len(images)) if pts is None else pts, images):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24").reformat(format=stream.pix_fmt)
        frame.pts = t
        if time_base is not None:
            frame.time_base = time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    if flush:
        for packet in stream.encode(None):
            out.mux(packet)


def gradient_frame(w: int, h: int, *, index: int = 0) -> np.ndarray:
    """A frame with distinct B, G, R content and a moving bar (so codecs and flow have structure)."""
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), np.full_like(xx, 40)], -1).astype(np.uint8)
    x0 = (index * 3) % max(w - 8, 1)
    frame[:, x0 : x0 + 6] = (255, 255, 255)
    return frame


def write_clip(path: Path, *, frames: int = 12, size=(64, 48), fps=Fraction(30000, 1001),
               audio: str | None = "aac", audio_rate: int = 48000, faststart: bool = False,
               brightness_ramp: bool = False, metadata: dict[str, str] | None = None) -> Path:
    """A clip with ``frames`` frames and (optionally) a 440 Hz tone as long as the video."""
    import av

    opts = {"movflags": "+faststart"} if faststart else {}
    out = av.open(str(path), "w", options=opts)
    out.metadata.update(metadata or {})
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height = size
    vs.pix_fmt = "yuv420p"
    vs.options = {"crf": "10", "preset": "ultrafast"}
    a_stream = None
    if audio:
        a_stream = out.add_stream(audio, rate=audio_rate)
    for i in range(frames):
        img = gradient_frame(*size, index=i)
        if brightness_ramp:
            img = np.full_like(img, min(255, 10 + i * 20))
        vf = av.VideoFrame.from_ndarray(img, format="bgr24")
        vf.pts = i
        vf.time_base = 1 / fps
        for p in vs.encode(vf):
            out.mux(p)
    if a_stream is not None:
        n = int(audio_rate * frames / fps)
        t = np.arange(n) / audio_rate
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        step = 1024
        for k in range(0, n, step):
            chunk = tone[k : k + step]
            af = av.AudioFrame.from_ndarray(np.repeat(chunk[None, :], 2, 0).T.reshape(1, -1).copy(), format="s16",
                                            layout="stereo")
            af.sample_rate = audio_rate
            af.pts = k
            for p in a_stream.encode(af):
                out.mux(p)
        for p in a_stream.encode(None):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    return path


def probe(path: Path) -> dict:
    """Frame count (decoded), rate, size, audio codec and audio duration of a file."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "size": (v.codec_context.width, v.codec_context.height),
                "audio": [a.codec_context.name for a in c.streams.audio]}
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    info["frames"] = frames
    info["count"] = len(frames)
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio_samples"] = sum(f.samples for f in c.decode(audio=0))
            info["audio_rate"] = a.codec_context.sample_rate
    return info


def rotate_clip(src: Path, out: Path) -> Path:
    """A copy of an MP4 whose track header holds the display matrix of an iPhone portrait clip
    (players turn its frames 90 degrees clockwise). PyAV cannot write one, so the 'tkhd' box is patched."""
    import struct

    data = bytearray(src.read_bytes())
    i = data.find(b"tkhd")
    fields = 20 if data[i + 4] == 0 else 32  # version 0 or 1: 32- or 64-bit times
    offset = i + 4 + 4 + fields + 8 + 8  # past version/flags, times and track id, reserved, layer..volume
    data[offset:offset + 36] = struct.pack(">9I", 0, 0x10000, 0, (-0x10000) & 0xFFFFFFFF, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(data))
    return out


def chroma_ramp_frame(w: int, h: int, pts: int):
    """A 4:2:0 av.VideoFrame of flat grey luma and a left-to-right red-difference ramp: decoded with
    each chroma sample repeated over 2x2 pixels (swscale's default), its red channel is a staircase."""
    import av

    y, u = np.full((h, w), 128, np.uint8), np.full((h // 2, w // 2), 128, np.uint8)
    v = np.tile(np.linspace(60, 200, w // 2).round().astype(np.uint8), (h // 2, 1))
    f = av.VideoFrame(w, h, "yuv420p")
    for plane, data in zip(f.planes, (y, u, v)):
        plane.update(np.ascontiguousarray(data))
    f.pts = pts
    return f


def write_chroma_ramp(path: Path, *, size=(64, 16), frames: int = 2) -> Path:
    """A lossless clip of chroma_ramp_frame."""
    import av

    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            for p in s.encode(chroma_ramp_frame(w, h, i)):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def serve_mpegts(*, frames: int, size=(64, 16), fps: int = 25, stall_s: float = 0.0) -> tuple[str, threading.Thread]:
    """A live stream: a thread sends ``frames`` frames of chroma_ramp_frame as MPEG-TS
    over TCP to the first client, at ``fps``, then goes silent for ``stall_s`` and hangs up.
    Returns the stream's URL and the thread."""
    import socket
    import time

    import av

    listener = socket.create_server(("127.0.0.1", 0))
    w, h = size

    def send() -> None:
        with listener, listener.accept()[0] as conn, conn.makefile("wb") as pipe:
            try:
                with av.open(pipe, "w", format="mpegts") as c:
                    st = c.add_stream("libx264", rate=fps)
                    st.width, st.height, st.pix_fmt = w, h, "yuv420p"
                    st.options = {"qp": "0", "tune": "zerolatency"}
                    for i in range(frames):
                        for p in st.encode(chroma_ramp_frame(w, h, i)):
                            c.mux(p)
                        pipe.flush()
                        time.sleep(1 / fps)
                    time.sleep(stall_s)
            except (OSError, av.error.FFmpegError):
                pass  # the client hung up first

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return f"tcp://127.0.0.1:{listener.getsockname()[1]}", thread


def with_subtitles(clip: Path, out: Path, srt: str) -> Path:
    """``clip``'s video stream and an SRT subtitle track (``srt``, the file's text) remuxed into ``out`` (.mkv)."""
    import av

    srt_path = out.with_suffix(".srt")
    srt_path.write_text(srt)
    with av.open(str(clip)) as src, av.open(str(srt_path)) as subs, av.open(str(out), "w") as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        text = dst.add_stream_from_template(subs.streams[0])
        for stream_in, stream_out in ((src.streams.video[0], video), (subs.streams[0], text)):
            for packet in (src if stream_in.container is src else subs).demux(stream_in):
                if packet.dts is not None:
                    packet.stream = stream_out
                    dst.mux(packet)
    return out


class FakeSource:
    """A FrameSource of generated frames: ``make(i)`` gives frame i (0-based), ``count`` of them."""

    def __init__(self, make, count: int, *, size=(16, 16), fps=Fraction(30)) -> None:
        self.make, self.count, self.size, self.fps, self.time_base = make, count, size, fps, None
        self.i, self.closed = 0, 0

    def read(self):
        from realtime_nst.runtime.sources import TimedFrame

        if self.i >= self.count:
            return None
        self.i += 1
        return TimedFrame(self.make(self.i - 1), None)

    def close(self) -> None:
        self.closed += 1


def rgb_profile(primaries_d50, *, gamma: float = 2.2, name: str = "Display P3 (test)") -> bytes:
    """A minimal ICC v2 display profile (matrix and gamma curves), as phones and cameras embed for
    Display P3 or Adobe RGB. ``primaries_d50``: the red, green and blue colorants' XYZ (D50)."""
    from realtime_nst.cicp import matrix_profile

    return matrix_profile(primaries_d50, gamma, name=name)


# Display P3's colorants, adapted to D50 (Bradford), as Apple's profile gives them.
DISPLAY_P3_D50 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
