"""realtime_nst: real-time neural style transfer for video files, webcams and live streams.

The names in ``__all__`` are the public API; everything else (the modules themselves included) is
private and may change. They load lazily, so ``import realtime_nst`` pulls in neither onnxruntime,
OpenCV nor PyAV until a name that needs them is used, and never torch.
"""

from __future__ import annotations

import importlib

from .errors import (
    CameraError,
    CorruptInputError,
    InputError,
    MissingDependencyError,
    ModelError,
    OptionError,
    OutputError,
    RtnstError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Stylizer": ".runtime.stylizer",
    "OnnxStylizer": ".runtime.stylizer",
    "FrameSource": ".runtime.sources",
    "VideoFileSource": ".runtime.sources",
    "CameraSource": ".runtime.camera",
    "FrameSink": ".runtime.sinks",
    "VideoFileSink": ".runtime.sinks",
    "GifFileSink": ".runtime.gif",
    "open_file_sink": ".runtime.sinks",
    "VirtualCameraSink": ".runtime.vcam",
    "Smoother": ".runtime.smoothing",
    "EmaSmoother": ".runtime.smoothing",
    "FlowSmoother": ".runtime.smoothing",
    "make_smoother": ".runtime.smoothing",
    "stylize_video": ".runtime.video",
    "VideoReport": ".runtime.video",
    "run_live": ".runtime.live",
    "serve_live": ".runtime.hub",
    "read_image": ".imageio",
    "write_image": ".imageio",
    "shipped_models": ".registry",
    "resolve_model": ".registry",
}

__all__ = [
    "CameraError", "CorruptInputError", "InputError", "MissingDependencyError", "ModelError", "OptionError",
    "OutputError", "RtnstError", "__version__", *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime_nst' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
