"""fp16 and int8 variants of an exported model (``rtnst export --fp16`` / ``--int8 --calib DIR``).

fp16 is for GPUs: weights and activations in half precision with InstanceNormalization kept in fp32.
int8 is static QDQ quantisation (onnxruntime.quantization), written only where it is faster here.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError, OptionError
from ..files import AtomicFile, atomic_write
from ..modelfile import META_PRECISION, write_metadata
from . import nets
from .onnxcheck import psnr, quiet, quiet_session, run_both, sample_images

log = logging.getLogger("rtnst")

MIN_FP16_PSNR_DB = 35.0
# Ops whose float inputs may become fp16 (input indices); InstanceNormalization stays fp32: its
# variance of 0..255-scale activations overflows fp16.
FP16_INPUTS = {"Conv": (0, 1, 2), "ConvTranspose": (0, 1, 2), "Add": (0, 1), "Sub": (0, 1), "Mul": (0, 1), "Relu": (0,), "Pad": (0, 2),
               "Resize": (0,), "DepthToSpace": (0,), "Identity": (0,), "Concat": tuple(range(8))}
FP32_OPS = {"InstanceNormalization"}


def to_fp16(model):
    """fp16 weights and activations with fp32 input/output and InstanceNormalization islands."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half = onnx.ModelProto()
    half.CopyFrom(model)
    model, g = half, half.graph
    unknown = {n.op_type for n in g.node} - set(FP16_INPUTS) - FP32_OPS
    if unknown:
        raise ModelError(f"fp16=True does not know how to convert ops {sorted(unknown)}", param="fp16")
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, i))
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and all(i in FP16_INPUTS.get(op, ()) for op, i in uses.get(init.name, [])):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    nodes = []
    inp, out = g.input[0].name, g.output[0].name
    nodes.append(helper.make_node("Cast", [inp], [inp + "_fp16"], to=TensorProto.FLOAT16))
    for node in g.node:
        node.input[:] = [inp + "_fp16" if x == inp else x for x in node.input]
        if node.op_type in FP32_OPS:
            x = node.input[0]
            nodes.append(helper.make_node("Cast", [x], [x + "_fp32"], to=TensorProto.FLOAT))
            node.input[0] = x + "_fp32"
            y = node.output[0]
            node.output[0] = y + "_fp32"
            nodes += [node, helper.make_node("Cast", [y + "_fp32"], [y], to=TensorProto.FLOAT16)]
        else:
            nodes.append(node)
    for node in nodes:
        node.output[:] = [out + "_fp16" if y == out else y for y in node.output]
    nodes.append(helper.make_node("Cast", [out + "_fp16"], [out], to=TensorProto.FLOAT))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(model)
    return model


def check_fp16(path: Path, net: torch.nn.Module, tier: str, sizes) -> str:
    import onnxruntime as ort

    # On CPU onnxruntime runs fp16 ops it has no kernel for in fp32 (inserting Casts): that checks the
    # graph and the fp16 weights, not fp16 arithmetic, which only a GPU run shows.
    device = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    try:
        session = quiet_session(path, device=device)
    except ModelError as exc:
        log.warning("rtnst: fp16 parity not checked: onnxruntime %s cannot run it here (%s)", device, exc)
        return f"{path.name}: written, parity not checked ({device} cannot run it)"
    worst = min(psnr(*run_both(session, net, sample_images(n, h, w), tier)) for n, h, w in sizes)
    if worst < MIN_FP16_PSNR_DB:
        path.unlink()
        raise ModelError(f"fp16 model differs from PyTorch fp32 ({worst:.1f} dB < {MIN_FP16_PSNR_DB} dB); removed")
    where = "CUDA" if device == "cuda" else "CPU (fp16 weights; fp16 arithmetic is only checked on a GPU)"
    return f"{path.name}: {worst:.1f} dB vs PyTorch fp32 on {where}"


def time_models(paths: list[Path], shape: tuple[int, int, int, int], *, runs: int = 7, threads: int = 2) -> list[float]:
    """Median milliseconds of one inference for each model (onnxruntime CPU, ``threads`` threads,
    model only); runs are interleaved so a load change on the machine hits every model alike."""
    sessions = [quiet_session(p, threads=threads) for p in paths]
    feed = np.random.default_rng(0).random(shape, np.float32)
    times: list[list[float]] = [[] for _ in sessions]
    for i in range(runs + 1):
        for s, t in zip(sessions, times):
            t0 = time.perf_counter()
            s.run(None, {s.get_inputs()[0].name: feed})
            if i:  # the first run of each warms up
                t.append(time.perf_counter() - t0)
    return [1000 * statistics.median(t) for t in times]


def calibration_batches(folder: str | Path, tier: str, *, count: int = 16, size_px: int = 256, seed: int = 0):
    import cv2

    from ..imageio import list_images, read_image

    paths = list_images(folder, recursive=True)
    if not paths:
        raise OptionError(f"calib {folder}: no images found", param="calib")
    rng = np.random.default_rng(seed)
    scale = 255.0 if nets.NETWORKS[tier].INPUT_RANGE == "0-255" else 1.0
    for i in sorted(rng.choice(len(paths), min(count, len(paths)), replace=False)):
        img = read_image(paths[i])
        h, w = img.shape[:2]
        k = size_px / min(h, w)
        img = cv2.resize(img, (max(size_px, round(w * k)), max(size_px, round(h * k))), interpolation=cv2.INTER_AREA)
        y, x = (img.shape[0] - size_px) // 2, (img.shape[1] - size_px) // 2
        rgb = cv2.cvtColor(img[y : y + size_px, x : x + size_px], cv2.COLOR_BGR2RGB)
        yield (rgb.transpose(2, 0, 1)[None].astype(np.float32) * (scale / 255.0))


def quantize_int8(fp32: Path, out: Path, calib: str | Path, tier: str, meta: dict[str, str], *,
                  speed_shape=(1, 3, 360, 640), runs: int = 7, force: bool = False) -> str:
    """Static QDQ int8 (per-channel weights), kept only when faster than fp32 here (or ``force``)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    batches = list(calibration_batches(calib, tier))

    class Reader(CalibrationDataReader):
        feeds = iter({"input": b} for b in batches)
        get_next = lambda self: next(self.feeds, None)  # noqa: E731

    scratch = AtomicFile(out.with_name(out.name + ".quant.onnx"))  # the raw quantised model, never kept
    tmp = scratch.tmp
    with quiet():  # reduce_range: 7-bit weights avoid u8s8 overflow on CPUs without VNNI
        quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    s32, s8 = quiet_session(fp32), quiet_session(tmp)
    scale = 255.0 if nets.NETWORKS[tier].INPUT_RANGE == "0-255" else 1.0
    db = statistics.median(psnr(run_both(s8, None, b / scale, tier)[0], run_both(s32, None, b / scale, tier)[0])
                           for b in batches[:4])
    ms32, ms8 = time_models([fp32, tmp], speed_shape, runs=runs)
    note = f"int8 {db:.1f} dB vs fp32, {ms8:.0f} ms vs {ms32:.0f} ms fp32 at {speed_shape[3]}x{speed_shape[2]}"
    if ms8 >= 0.95 * ms32 and not force:
        scratch.discard()
        log.warning("rtnst: int8 model not written: it is not faster than fp32 on this CPU (%s)", note)
        return "not written: " + note
    model = onnx.load(str(tmp))
    write_metadata(model, {**meta, META_PRECISION: "int8", "rtnst.int8_psnr_db": f"{db:.2f}"})
    scratch.discard()
    with atomic_write(out) as part:
        onnx.save(model, str(part))
    return f"{out.name}: " + note
