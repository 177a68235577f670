"""The virtual-camera sink: stylised frames become a camera other programs can pick (video calls,
OBS), through pyvirtualcam (``pip install 'realtime_nst[vcam]'``; on Linux the v4l2loopback module)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import CameraError, MissingDependencyError

log = logging.getLogger("rtnst")


class VirtualCameraSink:
    """Sends frames to a virtual camera through pyvirtualcam (on Linux: the v4l2loopback module)."""

    def __init__(self, width: int, height: int, fps: float, *, device: str | None = None,
                 backend: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise MissingDependencyError("pyvirtualcam is not installed; pip install 'realtime_nst[vcam]'") from None
        self._cam = None
        known = sorted(getattr(getattr(pyvirtualcam, "camera", None), "BACKENDS", {}) or {})
        if backend is not None and known and backend not in known:  # else pyvirtualcam fails with a KeyError
            raise CameraError(f"unknown virtual camera backend {backend!r}; this system has: {', '.join(known)}")
        try:
            self._cam = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                            device=device, backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise CameraError(f"cannot open a virtual camera ({exc}); on Linux load v4l2loopback: "
                              "sudo modprobe v4l2loopback devices=1 exclusive_caps=1") from None
        self.device = self._cam.device
        log.info("rtnst: sending frames to virtual camera %s", self.device)

    def write(self, frame: np.ndarray) -> None:
        if self._cam is None:
            raise CameraError(f"virtual camera {self.device} is closed")
        self._cam.send(frame)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None

    def abort(self) -> None:  # a virtual camera keeps nothing: stopping it is all there is to undo
        self.close()

    def __enter__(self) -> "VirtualCameraSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
