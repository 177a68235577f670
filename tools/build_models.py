"""Build the shipped-models folder: manifest.json, the README table and a contact sheet.

    python tools/build_models.py models/starry_night-realtime.onnx models/udnie.pt ... \\
        --content /path/to/content_photos --styles /path/to/style_images --default starry_night-realtime

Each .pt is exported first (``rtnst export``, checked) to MODELS_DIR/<style>-<tier>.onnx; each .onnx is
described from its rtnst metadata (copied into MODELS_DIR when it lies elsewhere). The manifest lists
name, file, style, source image, tier, precision, MACs/px, params, training settings, sha256 and the
default flag; README.md gets the table between its markers; contact_sheet.png shows every content
image (rows) through every model (columns), with the style images on top when --styles is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime_nst.errors import RtnstError  # noqa: E402
from realtime_nst.imageio import list_images, read_image  # noqa: E402
from realtime_nst.modelfile import META_SMOOTH_STRENGTH  # noqa: E402
from realtime_nst.registry import MANIFEST  # noqa: E402

START, END = "<!-- models-table:start -->", "<!-- models-table:end -->"
FIGURES_START, FIGURES_END = "<!-- models-figures:start -->", "<!-- models-figures:end -->"
MEASUREMENTS = "measurements.json"  # written by tools/measure_models.py
TRAINING_KEYS = ("block_norm", "teacher", "teacher_weight", "steps", "epochs", "image_size_px", "style_size_px", "batch_size",
                 "lr", "content_weight", "style_weight", "tv_weight", "content_layers", "style_layers", "vgg", "seed", "amp",
                 "temporal_weight", "temporal_norm", "border_weight")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# Metadata set after a model is measured that none of its measured figures depends on (measure_models
# scores the unsmoothed output): changing it keeps the figures.
UNMEASURED_KEYS = (META_SMOOTH_STRENGTH,)


def measured_sha256(path: Path) -> str:
    """sha256 of what measure_models measures: the model without its UNMEASURED_KEYS metadata."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in UNMEASURED_KEYS]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def describe(path: Path, folder: Path) -> dict:
    from realtime_nst.runtime.session import open_session

    meta = dict(open_session(path, device="cpu", cpu_form=False).get_modelmeta().custom_metadata_map)
    if "rtnst.tier" not in meta:
        raise RtnstError(f"{path} has no rtnst metadata; export it with `rtnst export`")
    training = json.loads(meta.get("rtnst.training") or "{}")
    return {
        "name": path.name[: -len(".onnx")],
        "file": path.relative_to(folder).as_posix(),
        "style": meta["rtnst.style"],
        "style_image": meta.get("rtnst.style_image", ""),
        "tier": meta["rtnst.tier"],
        "precision": meta.get("rtnst.precision", "fp32"),
        "input_range": meta.get("rtnst.input_range"),
        "pad_multiple": int(meta.get("rtnst.pad_multiple", 8)),
        "max_side_px": int(meta["rtnst.max_side_px"]) if meta.get("rtnst.max_side_px", "").isdigit() else None,
        "macs_per_pixel": int(meta.get("rtnst.macs_per_pixel", 0)) or None,
        "params": int(meta.get("rtnst.params", 0)) or None,
        "trained_steps": int(meta["rtnst.steps"]) if meta.get("rtnst.steps", "").isdigit() else None,
        "teacher": training.get("teacher") and Path(training["teacher"]).name,
        "anchored": bool(training.get("teacher") and training.get("style")),  # VGG loss plus the teacher
        "smooth_strength": float(meta["rtnst.smooth_strength"]) if "rtnst.smooth_strength" in meta else None,
        "training": {k: training[k] for k in TRAINING_KEYS if k in training},
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "default": False,
    }


def gather(inputs: list[Path], folder: Path, *, overwrite: bool) -> list[Path]:
    out = []
    for path in inputs:
        if path.suffix == ".pt":
            from realtime_nst.training.export import export, load_checkpoint

            _, info = load_checkpoint(path)
            target = folder / f"{info['style']}-{info['tier']}.onnx"
            if overwrite or not target.exists():
                export(path, target, overwrite=True)
            path = target
        elif path.suffix != ".onnx":
            raise RtnstError(f"{path}: expected a .pt checkpoint or an .onnx model")
        elif path.resolve().parent != folder.resolve():
            shutil.copy2(path, folder / path.name)
            path = folder / path.name
        out.append(path)
    return out


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def table(entries: list[dict]) -> str:
    lines = ["| name | style | source image | tier | precision | MACs/px | params | runs at (long side) | steps | "
             "trained | smooth strength | default |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        how = "VGG16 perceptual loss"
        if e.get("teacher"):
            how = f"{how}, anchored to `{e['teacher']}`" if e.get("anchored") else f"distilled from `{e['teacher']}`"
        if e.get("training", {}).get("block_norm"):
            how += "; norm in the residual blocks"
        strength = f"{e['smooth_strength']:g}" if e.get("smooth_strength") is not None else ""
        lines.append(f"| `{e['name']}` | {e['style']} | {e['style_image']} | {e['tier']} | {e['precision']} | "
                     f"{_num(e['macs_per_pixel'])} | {_num(e['params'])} | {e.get('max_side_px') or 'own size'} | "
                     f"{_num(e['trained_steps'])} | {how} | "
                     f"{strength} | {'yes' if e['default'] else ''} |")
    return "\n".join(lines)


def figures_table(entries: list[dict], measured: dict, folder: Path) -> str:
    """Measured figures of the shipped models (and, after them, of any other model measured, such as
    the references), from tools/measure_models.py; a model measured before it changed (other than in
    UNMEASURED_KEYS) shows '?'.
    "÷ ref" compares S and C with a measured model that is not shipped and has the same style image."""
    shipped = {e["name"]: e for e in entries}
    names = [n for n in shipped if n in measured] + sorted(n for n in measured if n not in shipped)
    clips = sorted({c for n in names for c in measured[n].get("e_warp", {})})
    refs = {measured[n]["style_image"]: measured[n] for n in names if n not in shipped and "style_image" in measured[n]}
    lines = ["| model | S | C | S ÷ ref | C ÷ ref | shift | edge | "
             + " | ".join(f"E_warp / floor (/ contrast floor), {Path(c).stem}" for c in clips)
             + " | smooth strength | fps, model at 640x360 | fps, 1280x720 end to end (runs at, smoothing) | CPU |",
             "|---" * (11 + len(clips)) + "|"]
    for n in names:
        m = measured[n]
        e = shipped.get(n)
        label = f"`{n}`" if e else f"{n} (not shipped)"
        if e is not None and m.get("model_sha256") != measured_sha256(folder / e["file"]):
            lines.append(f"| {label} |" + " ? |" * (10 + len(clips)))
            continue
        ref = refs.get(m.get("style_image")) if e else None
        ratios = " | ".join(f"{m[k] / ref[k]:.2f}" if ref and k in m else "" for k in ("S", "C"))
        quality = [f"{m[k]:{f}}" if k in m else "" for k, f in (("S", ".4f"), ("C", ".3f"), ("shift", ".3f"), ("edge", ".1f"))]
        ew = " | ".join(_e_warp_cell(m["e_warp"][c]) if c in m.get("e_warp", {}) else "" for c in clips)
        strength = f"{e['smooth_strength']:g}" if e and e.get("smooth_strength") is not None else ""
        fps = m.get("fps")
        speed = (f"{fps['model_640x360']:.0f} | {fps['end_to_end_1280x720']:.0f} ({fps['runs_at_1280x720']}, "
                 f"{fps.get('end_to_end_smooth', 'none')}) | "
                 f"{m.get('cpu', '?')}") if fps else " |  | "
        lines.append(f"| {label} | {quality[0]} | {quality[1]} | {ratios} | {quality[2]} | {quality[3]} | {ew} | {strength} | {speed} |")
    return "\n".join(lines)


def _e_warp_cell(e: dict) -> str:
    contrast = f" ({e['x_contrast_floor']:.2f})" if "x_contrast_floor" in e else ""
    return f"{e['x_floor']:.1f}x{contrast}"


def _replace(text: str, start: str, end: str, block: str) -> str | None:
    if start in text and end in text:
        return text[: text.index(start)] + block + text[text.index(end) + len(end):]
    return None


def write_readme(path: Path, entries: list[dict], measured: dict | None = None) -> None:
    """The tables of ``entries`` (models in ``path``'s folder) into the README at ``path``."""
    block = f"{START}\n{table(entries)}\n{END}"
    text = path.read_text() if path.is_file() else ""
    text = _replace(text, START, END, block) or (
        "# Shipped style models\n\nList them with `rtnst models`; use one with `--model NAME`. "
        "Built by `tools/build_models.py`, which also writes `manifest.json` and `contact_sheet.png`.\n\n"
        f"{block}\n")
    if measured:
        figures = f"{FIGURES_START}\n{figures_table(entries, measured, path.parent)}\n{FIGURES_END}"
        text = _replace(text, FIGURES_START, FIGURES_END, figures) or text.replace(
            END, f"{END}\n\nMeasured by `tools/measure_models.py` (see its help for the method):\n\n{figures}", 1)
    path.write_text(text)


def _square(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(img[y : y + s, x : x + s], (side, side), interpolation=cv2.INTER_AREA)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((24, img.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text[:28], (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, img])


def contact_sheet(entries: list[dict], folder: Path, content: Path, styles: Path | None, *, cell: int,
                  max_side: int) -> np.ndarray:
    from realtime_nst.runtime.stylizer import OnnxStylizer

    photos = [read_image(p) for p in list_images(content)]
    if not photos:
        raise RtnstError(f"--content {content}: no images")
    blank = np.full((cell, cell, 3), 255, np.uint8)
    columns = [_label(np.vstack([blank] * bool(styles) + [_square(p, cell) for p in photos]), "content")]
    for e in entries:
        with OnnxStylizer(folder / e["file"], device="cpu", max_side_px=max_side) as model:
            cells = [_square(model.stylize(p), cell) for p in photos]
        if styles:
            found = styles / e["style_image"] if e["style_image"] else None
            cells.insert(0, _square(read_image(found), cell) if found and found.is_file() else blank)
        columns.append(_label(np.vstack(cells), e["name"]))
    return np.hstack([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in columns])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="trained .pt checkpoints and/or exported .onnx models")
    ap.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    ap.add_argument("--content", type=Path, help="folder of content photos for the contact sheet (none: no sheet)")
    ap.add_argument("--styles", type=Path, help="folder holding the style images, shown on top of the sheet")
    ap.add_argument("--default", help="name of the default model (default: the previous one, else the first realtime)")
    ap.add_argument("--cell", type=int, default=192, help="contact sheet cell side in pixels (default: 192)")
    ap.add_argument("--max-side", type=int, default=512, help="stylise sheet photos at this long side (default: 512)")
    ap.add_argument("--overwrite", action="store_true", help="re-export .pt files whose .onnx exists")
    args = ap.parse_args(argv)
    args.models = [p.resolve() for p in args.models]  # relative paths compare with the absolute --models-dir
    folder = args.models_dir
    folder.mkdir(parents=True, exist_ok=True)
    try:
        entries = [describe(p, folder) for p in gather(args.models, folder, overwrite=args.overwrite)]
        names = [e["name"] for e in entries]
        previous = folder / MANIFEST
        old = [e["name"] for e in json.loads(previous.read_text())["models"] if e.get("default")] if previous.is_file() else []
        default = args.default or next((n for n in old if n in names), None) or next(
            (e["name"] for e in entries if e["tier"] == "realtime"), names[0])
        if default not in names:
            raise RtnstError(f"--default {default!r} is not one of {names}")
        for e in entries:
            e["default"] = e["name"] == default
        previous.write_text(json.dumps({"models": entries}, indent=2) + "\n")
        measurements = folder / MEASUREMENTS
        measured = json.loads(measurements.read_text())["models"] if measurements.is_file() else None
        write_readme(folder / "README.md", entries, measured)
        print(f"wrote {previous} and {folder / 'README.md'} ({len(entries)} models, default {default})")
        if args.content:
            sheet = contact_sheet(entries, folder, args.content, args.styles, cell=args.cell, max_side=args.max_side)
            cv2.imwrite(str(folder / "contact_sheet.png"), sheet)
            print(f"wrote {folder / 'contact_sheet.png'} ({sheet.shape[1]}x{sheet.shape[0]})")
    except RtnstError as exc:
        print(f"build_models: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
