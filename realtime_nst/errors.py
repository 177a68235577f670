"""Typed errors. Library code raises these; only the CLI turns them into a message and exit code 2."""

from __future__ import annotations


class RtnstError(Exception):
    """Base class of every error rtnst raises on purpose (bad input, missing files, ...).

    The message speaks the library's terms: it names parameters (``max_side_px``, ``overwrite=True``)
    and ``param`` says which, so a front end can say its own names for them (the CLI: ``--max-side``).
    """

    def __init__(self, message: str, *, param: str | tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.params: tuple[str, ...] = (param,) if isinstance(param, str) else tuple(param or ())


class InputError(RtnstError):
    """An input (image, video, folder) is missing, unreadable or not what was expected."""


class CorruptInputError(InputError):
    """A video broke off part way; ``frames_done`` frames were decoded before it did."""

    def __init__(self, message: str, *, frames_done: int = 0) -> None:
        super().__init__(message)
        self.frames_done = frames_done


class OutputError(RtnstError):
    """An output path cannot be written, or exists and may not be overwritten."""


class ModelError(RtnstError):
    """A model file is missing, is not ONNX, or has the wrong inputs/outputs."""


class CameraError(RtnstError):
    """A camera does not open, or disconnects mid-stream."""


class OptionError(RtnstError):
    """An option value is out of range or inconsistent with another option."""


class MissingDependencyError(RtnstError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, *, extra: str):
    """Import an optional dependency, or raise MissingDependencyError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{module} is not installed; {install_hint(extra)}") from exc


def install_hint(extra: str) -> str:
    """How to add an optional extra, installed from PyPI or from a checkout."""
    return f"install it with: pip install 'realtime_nst[{extra}]' (in a checkout: pip install '.[{extra}]')"
