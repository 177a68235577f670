"""realtime_nst: real-time neural style transfer for video files, webcams and live streams."""

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

__all__ = [
    "CameraError", "CorruptInputError", "InputError", "MissingDependencyError", "ModelError",
    "OptionError", "OutputError", "RtnstError", "OnnxStylizer", "__version__",
]


def __getattr__(name: str):
    # Keep `import realtime_nst` light: onnxruntime loads only when the stylizer is used.
    if name == "OnnxStylizer":
        from .runtime.stylizer import OnnxStylizer

        return OnnxStylizer
    raise AttributeError(name)
