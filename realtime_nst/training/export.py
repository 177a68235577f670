"""``rtnst export``: a trained checkpoint to an ONNX model the stylizer runs, checked before it is kept.

The graph comes from the dynamo-based ``torch.onnx.export`` (clean: Conv, InstanceNormalization, Pad,
Resize, DepthToSpace, Relu, Add), falling back to the TorchScript exporter if that fails. N, H and W
are dynamic; metadata carries everything ``OnnxStylizer`` needs. Every export is verified with
``onnx.checker`` and onnxruntime-vs-PyTorch parity (PSNR on the 0..255 output) at several sizes,
odd ones included (reflect-padded to the net's multiple, cropped back), and is refused below 45 dB.
The fp16 and int8 variants live in variants.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import __version__
from .. import modelfile as mf
from ..errors import ModelError, OptionError
from ..files import atomic_write, check_outputs
from ..imageio import list_images
from . import cost, export_form, nets
from .onnxcheck import check_parity, quiet

log = logging.getLogger("rtnst")

OPSET = 18
MIN_PSNR_DB = 45.0
CHECK_SIZES = ((1, 256, 256), (2, 97, 131), (1, 361, 643))  # (N, H, W); odd sides get padded


@dataclass
class ExportReport:
    path: Path
    tier: str
    parity_db: list[tuple[str, float]] = field(default_factory=list)  # ("NxHxW", PSNR)
    variants: dict[str, str] = field(default_factory=dict)  # "fp16"/"int8" -> what happened


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Our training checkpoint, a pytorch/examples ``.pth`` state dict (quality tier), or an ONNX
    model this project exported (its initializers keep the PyTorch parameter names)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    if path.suffix.lower() == ".onnx":
        return _load_onnx_weights(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code from a .pth
    except Exception as exc:
        raise ModelError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: expected a checkpoint dict, got {type(state).__name__}")
    info = {k: state[k] for k in ("tier", "style", "style_image", "config", "step") if k in state}
    weights = state.get("model", state)
    if "tier" not in info:
        info["tier"] = "quality" if "conv1.conv2d.weight" in weights else "realtime"
    net = nets.build(info["tier"], state=weights)
    try:
        if info["tier"] == "quality":
            nets.load_pytorch_examples_checkpoint(net, weights)
        else:
            net.load_state_dict(weights)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the {info['tier']} net: {str(exc).splitlines()[0]}") from None
    bad = [k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f"{path}: {len(bad)} of its weights hold NaN or infinite values ({bad[0]}, ...): "
                         "a run that diverged; take an earlier checkpoint")
    info.setdefault("style", path.stem)
    return net.eval(), info


def _load_onnx_weights(path: Path) -> tuple[torch.nn.Module, dict]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    tier = meta.get(mf.META_TIER)
    if tier not in nets.NETWORKS:
        raise ModelError(f"{path} was not exported by rtnst (no rtnst.tier in its metadata): its weights cannot be trained on")
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    net = nets.build(tier, state=inits)
    inits = export_form.from_export(net, inits)
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in inits or tuple(inits[k].shape) != tuple(wanted[k].shape)]
    if missing:
        raise ModelError(f"{path}: {len(missing)} weights of the {tier} net are not in it (first: {missing[0]}); "
                         f"it may come from another version of the net")
    net.load_state_dict({k: inits[k] for k in wanted})
    try:
        config = json.loads(meta.get("rtnst.training") or "{}")
    except ValueError:
        config = {}
    # The record it was exported with, so that a re-export (in the current export form) keeps it.
    info = {"tier": tier, "style": meta.get(mf.META_STYLE, path.stem), "style_image": meta.get(mf.META_STYLE_IMAGE, ""),
            "step": meta.get("rtnst.steps", ""), "config": config, "metadata": meta}
    return net.eval(), info


def to_onnx(net: torch.nn.Module, *, opset: int = OPSET):
    """ONNX ModelProto with input "input" and output "output", both (N, 3, H, W) dynamic."""
    import onnx

    net = export_form.for_export(net)
    x = torch.rand(2, 3, 12 * net.PAD_MULTIPLE, 16 * net.PAD_MULTIPLE) * (255 if net.INPUT_RANGE == "0-255" else 1)
    with quiet():
        try:
            from torch.export import Dim

            auto = {0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO}
            model = torch.onnx.export(net, (x,), dynamo=True, input_names=["input"], output_names=["output"],
                                      dynamic_shapes=({**auto},), opset_version=opset, verbose=False).model_proto
        except Exception as exc:  # the dynamo exporter raises many types; the legacy one is the fallback
            log.warning("rtnst: dynamo ONNX export failed (%s); using the TorchScript exporter", str(exc)[:200])
            import io

            buf = io.BytesIO()
            axes = {0: "N", 2: "H", 3: "W"}
            torch.onnx.export(net, (x,), buf, dynamo=False, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": axes, "output": axes}, opset_version=opset)
            model = onnx.load_from_string(buf.getvalue())
            try:
                import onnxscript.optimizer

                model = onnxscript.optimizer.optimize(model)
            except ImportError:
                pass
    del model.graph.value_info[:]  # drop the exporter's symbolic sizes (s0, s53...): N, H, W say it all
    for v in (*model.graph.input, *model.graph.output):
        for dim, name in zip(v.type.tensor_type.shape.dim, ("N", None, "H", "W")):
            if name:
                dim.dim_param = name
    return model


def metadata(net: torch.nn.Module, info: dict, precision: str) -> dict[str, str]:
    cfg = info.get("config") or {}
    native = {mf.META_MAX_SIDE: str(net.NATIVE_MAX_SIDE_PX)} if getattr(net, "NATIVE_MAX_SIDE_PX", None) else {}
    return {**native,
        mf.META_INPUT_RANGE: net.INPUT_RANGE,
        mf.META_CHANNEL_ORDER: "rgb",
        mf.META_PAD_MULTIPLE: str(net.PAD_MULTIPLE),
        mf.META_MARGIN: str(getattr(net, "INFERENCE_MARGIN_PX", 0)),
        mf.META_STYLE: str(info["style"]),
        mf.META_TIER: info["tier"],
        "rtnst.input_layout": "NCHW float32, RGB, range as rtnst.input_range; output the same",
        mf.META_STYLE_IMAGE: str(info.get("style_image") or Path(cfg.get("style", "")).name),
        mf.META_PRECISION: precision,
        "rtnst.params": str(cost.count_params(net)),
        "rtnst.macs_per_pixel": str(round(cost.macs_per_pixel(net))),
        "rtnst.steps": str(info.get("step", "")),
        "rtnst.training": json.dumps(cfg, sort_keys=True, default=str),
        "rtnst.version": __version__,
    }


def export(checkpoint: str | Path, out: str | Path, *, fp16: bool = False, int8: bool = False,
           calib: str | Path | None = None, sizes=CHECK_SIZES, opset: int = OPSET, overwrite: bool = False,
           min_db: float = MIN_PSNR_DB, force_int8: bool = False, int8_speed_shape=(1, 3, 360, 640)) -> ExportReport:
    """Write ``out`` (fp32), plus ``out``'s stem + .fp16.onnx / .int8.onnx when asked."""
    import onnx

    out = Path(out)
    if out.suffix != ".onnx":
        raise OptionError(f"the output must end in .onnx, got {out}")
    if int8 and not calib:
        raise OptionError("int8=True needs calib DIR (a folder of photos for calibration)", param=("int8", "calib"))
    if int8 and not Path(calib).is_dir():  # before anything is written, not after the fp32 export
        raise OptionError(f"calib {calib} is not a folder", param="calib")
    if int8 and not list_images(calib):
        raise OptionError(f"calib {calib} holds no photos to calibrate with", param="calib")
    if opset < 17:
        raise OptionError(f"opset must be at least 17, got {opset}", param="opset")
    targets = [out] + [out.with_suffix(f".{p}.onnx") for p, on in (("fp16", fp16), ("int8", int8)) if on]
    check_outputs(targets, overwrite=overwrite, inputs=[checkpoint], make_folders=True)
    net, info = load_checkpoint(checkpoint)
    log.info("rtnst: exporting %s (%s, %s, step %s)", checkpoint, info["style"], info["tier"], info.get("step", "?"))
    model = to_onnx(net, opset=opset)
    written = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    if written != opset:
        log.warning("rtnst: opset %d was asked for; the exporter wrote opset %d", opset, written)
    # An rtnst model re-exported keeps the rest of its metadata too (a measured smoothing strength):
    # its weights, and so what was measured of them, are the same.
    meta = {**info.get("metadata", {}), **metadata(net, info, "fp32")}
    mf.write_metadata(model, meta)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"the exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
    with atomic_write(out) as tmp:
        onnx.save(model, str(tmp))
        parity = check_parity(tmp, net, info["tier"], sizes, min_db=min_db, name=out)
        report = ExportReport(out, info["tier"], parity)
    from .variants import check_fp16, quantize_int8, to_fp16

    if fp16:
        path = out.with_suffix(".fp16.onnx")
        half = to_fp16(model)
        mf.write_metadata(half, {**meta, mf.META_PRECISION: "fp16"})
        with atomic_write(path) as tmp:
            onnx.save(half, str(tmp))
        report.variants["fp16"] = check_fp16(path, net, info["tier"], sizes[:2])
    if int8:
        report.variants["int8"] = quantize_int8(out, out.with_suffix(".int8.onnx"), calib, info["tier"], meta,
                                                speed_shape=int8_speed_shape, force=force_int8)
    return report
