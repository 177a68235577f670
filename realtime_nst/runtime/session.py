"""onnxruntime sessions, and the choice of execution provider in one place."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, OptionError
from ..modelfile import Choice

log = logging.getLogger("rtnst")


class Device(Choice):
    """Where a model runs; ``auto`` tries TensorRT, then CUDA, then the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"


PROVIDERS = {
    Device.TENSORRT: "TensorrtExecutionProvider",
    Device.CUDA: "CUDAExecutionProvider",
    Device.CPU: "CPUExecutionProvider",
}


def choose_providers(device: str, available: list[str]) -> tuple[list[str], str]:
    """Providers to try for ``device``, best first, and a note for the log line when the device
    asked for is not available here."""
    device = Device.parse(device, param="device")
    order = [Device.TENSORRT, Device.CUDA, Device.CPU]
    wanted = order if device is Device.AUTO else order[order.index(device):]
    chosen = [PROVIDERS[d] for d in wanted if PROVIDERS[d] in available]
    if PROVIDERS[Device.CPU] not in chosen:
        chosen.append(PROVIDERS[Device.CPU])
    note = ""
    if device not in (Device.AUTO, Device.CPU) and PROVIDERS[device] not in available:
        note = f" ({device} requested but not available; pip install 'realtime_nst[gpu]' and check the CUDA drivers)"
    return chosen, note


# Frames a video pipeline stylises at once on the CPU, at most: beyond a few, each frame's own
# threads scale better than more frames in flight (memory, latency).
MAX_FRAME_WORKERS = 4


@dataclass(frozen=True)
class ThreadPlan:
    """How a video pipeline spends the CPU cores: ``workers`` frames at once, ``threads``
    onnxruntime threads each."""

    workers: int
    threads: int

    def workers_for(self, *stylizers) -> int:
        """Frames at once for these stylizers: the plan's where every one runs on the CPU, else one
        (a GPU session, or a stylizer of unknown make, which may not be safe from several threads)."""
        on_cpu = all(getattr(st, "provider", None) == PROVIDERS[Device.CPU] for st in stylizers)
        return self.workers if on_cpu else 1


def plan_threads(*, threads: int | None = None, cores: int | None = None) -> ThreadPlan:
    """One thread per frame and as many frames at once as there are cores (up to
    MAX_FRAME_WORKERS; cores left over go to each frame's threads); with ``threads`` given, as many
    frames as fill the cores with that many each. A small net's layers are too short to keep two
    threads busy: on 2 AMD EPYC cores `rtnst video` at 1280x720 made a median 39 fps with two frames
    of one thread, 33 with one frame of two (the default model, the encoder on the same cores).
    Only for the CPU: a GPU session runs one frame at a time."""
    cores = cores or os.cpu_count() or 1
    if threads is not None and threads < 1:
        raise OptionError(f"threads must be a positive whole number, got {threads}", param="threads")
    if threads is not None:
        return ThreadPlan(max(1, min(MAX_FRAME_WORKERS, cores // threads)), threads)
    workers = min(cores, MAX_FRAME_WORKERS)
    return ThreadPlan(workers, max(1, cores // workers))


def _session_options(threads: int | None, *, spin: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # One thread per core: hyper-threads and oversubscription both slow convolutions down.
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    # Spinning wins the last few % of a model-only benchmark but steals the cores that decoding and
    # encoding threads need in the video pipeline.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.log_severity_level = 3
    return opts


# The graph rewrite for the CPU kernels (cpu_layout) is for small nets, whose time goes into layout
# reorders and separate adds. A large model's goes into its convs: the quality nets (6.7 MB) ran no
# faster rewritten, and the rewrite and its check added ~100 ms to loading them.
CPU_FORM_MAX_BYTES = 2 << 20


def _cpu_form_session(path: Path, opts, providers: list[str]):
    """A session of the model rewritten for AVX-512's kernels (cpu_layout.for_cpu), if this CPU runs
    them, the rewrite changes anything, and it gives the model's own outputs on a test image; else None."""
    import onnxruntime as ort

    from .cpu_layout import for_cpu, same_function, wide_blocks

    if providers[0] != PROVIDERS[Device.CPU] or path.stat().st_size > CPU_FORM_MAX_BYTES or not wide_blocks():
        return None
    form = for_cpu(path.read_bytes())
    if form is None:
        return None
    try:
        fast = ort.InferenceSession(form, opts, providers=providers)
        plain = ort.InferenceSession(str(path), _session_options(1, spin=False), providers=providers)
        if same_function(plain, fast):
            return fast
    except Exception:  # noqa: BLE001 - the model as it is decides what the user hears
        pass
    log.debug("rtnst: %s runs as it is (its rewritten form did not match it)", path.name)
    return None


def open_session(path: str | os.PathLike, *, device: str = "auto", threads: int | None = None, spin: bool = True,
                 announce: bool = True, cpu_form: bool = True):
    """An onnxruntime InferenceSession with typed errors; ``announce`` logs one line naming the
    provider actually used. On a CPU with AVX-512 a small net's graph runs in the form those kernels
    run fastest (``cpu_form``; cpu_layout.py), checked against the model's own outputs."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    providers, note = choose_providers(device, ort.get_available_providers())
    opts = _session_options(threads, spin=spin)
    try:
        session = _cpu_form_session(path, opts, providers) if cpu_form else None
        if session is None:
            session = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, NoSuchFile, RuntimeException...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a usable ONNX model: {first[:200]}") from None
    if announce:
        log.info("rtnst: %s runs on %s%s", path.name, session.get_providers()[0], note)
    return session
