"""Checks of an exported ONNX model against the PyTorch net it came from (export parity, the fp16
and int8 variants): stand-in images, running both, PSNR, and a quiet onnxruntime session."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from ..runtime.session import open_session
from . import nets

log = logging.getLogger("rtnst")


def sample_images(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Deterministic smooth-plus-detail RGB 0..1 images (NCHW), standing in for photos."""
    import cv2

    rng = np.random.default_rng((seed, n, h, w))
    out = np.empty((n, 3, h, w), np.float32)
    for i in range(n):
        coarse = cv2.resize(rng.random((7, 9, 3), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        out[i] = np.clip(coarse + 0.08 * rng.standard_normal((h, w, 3), np.float32), 0, 1).transpose(2, 0, 1)
    return out


def pad_to(x: np.ndarray, multiple: int) -> np.ndarray:
    ph, pw = (-x.shape[2]) % multiple, (-x.shape[3]) % multiple
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if ph < x.shape[2] and pw < x.shape[3] else "edge")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 0..255 images as seen (clipped to 0..255); inf when identical."""
    mse = float(np.mean((np.clip(a, 0, 255).astype(np.float64) - np.clip(b, 0, 255)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run_both(session, net: torch.nn.Module | None, x01: np.ndarray, tier: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Outputs (0..255 scale, cropped to x's size) of an ORT session and the PyTorch net on x01."""
    cls = nets.NETWORKS[tier]
    scale = 255.0 if cls.INPUT_RANGE == "0-255" else 1.0
    h, w = x01.shape[2:]
    multiple = getattr(net, "PAD_MULTIPLE", cls.PAD_MULTIPLE)  # an earlier version of the tier's net may need more
    xin = pad_to(x01, multiple) * np.float32(scale)
    ort_out = session.run(None, {session.get_inputs()[0].name: xin})[0][:, :, :h, :w] * (255.0 / scale)
    if net is None:
        return ort_out, None
    with torch.no_grad():
        ref = net(torch.from_numpy(xin)).numpy()[:, :, :h, :w] * (255.0 / scale)
    return ort_out, ref


def quiet_session(path: Path, *, device: str = "cpu", threads: int | None = None):
    """An onnxruntime session without the stylizer's "runs on ..." line (these are internal checks)."""
    return open_session(path, device=device, threads=threads, spin=threads is not None, announce=False)


def check_parity(path: Path, net: torch.nn.Module, tier: str, sizes, *, min_db: float,
                 name: Path | None = None) -> list[tuple[str, float]]:
    """PSNR of onnxruntime against PyTorch at each size; ModelError below ``min_db`` (``name``: the
    output's own name, where ``path`` is its temporary file)."""
    session = quiet_session(path)
    rows = []
    for n, h, w in sizes:
        got, ref = run_both(session, net, sample_images(n, h, w), tier)
        rows.append((f"{n}x{h}x{w}", round(psnr(got, ref), 2)))
        log.info("rtnst: parity %s onnxruntime vs PyTorch: %.1f dB", rows[-1][0], rows[-1][1])
        if not rows[-1][1] >= min_db:  # NaN weights give a NaN PSNR, which no comparison with < catches
            raise ModelError(f"{name or path}: onnxruntime output differs from PyTorch at {rows[-1][0]} "
                             f"({rows[-1][1]:.1f} dB < {min_db} dB); the model was not kept")
    return rows


@contextlib.contextmanager
def quiet():
    """Silences the exporter's, optimizer's and quantizer's chatter (onnxruntime.quantization logs on
    the root logger itself; a filter there drops only such direct records, not rtnst's)."""
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    drop = lambda record: record.levelno >= logging.ERROR  # noqa: E731
    logging.getLogger().addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger().removeFilter(drop)
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
