"""``rtnst eval quality``: style and content distances of a model's outputs (see losses.py)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import frames as fr
from ..errors import InputError
from ..imageio import list_images, read_image
from ..runtime.stylizer import Stylizer

EVAL_SIDE_PX = 512
SHIFTS_PX = (1, 2, 3)
SHIFT_BORDER_PX = 16
EDGE_PX = 3  # edge_line: the outer strip ...
EDGE_BAND_PX = (4, 12)  # ... against the band just inside it
# VGG16 reaches relu4_3 at 1/8 of the size: a side shorter than this leaves no Gram matrix worth the name.
MIN_METRIC_SIDE_PX = 16

log = logging.getLogger("rtnst")


@dataclass
class QualityRow:
    name: str
    style_distance: float
    content_distance: float
    shift: float  # see shift_sensitivity
    edge: float  # see edge_line


class QualityMeter:
    """Measures S and C against one style image with VGG16 (relu1_2..relu4_3, content relu3_3)."""

    def __init__(self, style: np.ndarray, *, vgg_weights: str | os.PathLike | None = None) -> None:
        import torch

        from ..perceptual.losses import EVAL_CONTENT_LAYER, EVAL_STYLE_LAYERS, gram
        from ..perceptual.tensors import to_batch
        from ..perceptual.vgg import load_vgg

        style = fr.resize(style, fr.fit_max_side(style.shape[1], style.shape[0], EVAL_SIDE_PX))
        if min(style.shape[:2]) < MIN_METRIC_SIDE_PX:
            raise InputError(f"the style image is too small or too thin to measure: {style.shape[1]}x"
                             f"{style.shape[0]} at a long side of {EVAL_SIDE_PX}, where both sides must be "
                             f"{MIN_METRIC_SIDE_PX} px or more")
        self.vgg = load_vgg("vgg16", weights=vgg_weights)
        with torch.no_grad():
            feats = self.vgg(to_batch(style), EVAL_STYLE_LAYERS)
        self.style_grams = {k: gram(v) for k, v in feats.items()}
        self.layers = sorted(set(EVAL_STYLE_LAYERS) | {EVAL_CONTENT_LAYER})
        self.content_layer = EVAL_CONTENT_LAYER

    def measure(self, content: np.ndarray, output: np.ndarray) -> tuple[float, float]:
        import torch

        from ..perceptual.losses import content_distance, style_distance
        from ..perceptual.tensors import to_batch

        with torch.no_grad():
            out = self.vgg(to_batch(output), self.layers)
            ref = self.vgg(to_batch(content), [self.content_layer])
            s = style_distance(out, self.style_grams)
            c = content_distance(out[self.content_layer], ref[self.content_layer])
        return float(s[0]), float(c[0])


def shift_sensitivity(stylize, frame: np.ndarray, *, output: np.ndarray | None = None, shifts_px=SHIFTS_PX,
                      border_px: int = SHIFT_BORDER_PX) -> float:
    """Mean |O(shift(x)) - shift(O(x))| (pixels 0..1) over horizontal shifts of a few pixels, away
    from the border. A net that paints a pattern tied to the pixel grid instead of the scene (per-phase
    weights of a transposed conv or PixelShuffle: checkerboard and grid artefacts) scores high
    (our first realtime nets 0.07-0.21); the quality tier scores 0.015-0.033, the reference models
    0.019-0.042. It is also a still-image predictor of flicker: a moving camera shifts the scene by
    a few pixels. ``output``: ``stylize(frame)`` when the caller already has it."""
    out = (stylize(frame) if output is None else output).astype(np.float32) / 255.0
    h, w = out.shape[:2]
    b = max(0, min(border_px, (min(h, w - max(shifts_px)) - 1) // 2))  # small images: a thinner border
    diffs = []
    for k in shifts_px:
        moved = stylize(np.ascontiguousarray(frame[:, k:])).astype(np.float32) / 255.0
        diffs.append(float(np.abs(out[b:h - b, k + b:w - b] - moved[b:h - b, b:w - k - b]).mean()))
    return float(np.mean(diffs))


def edge_line(frame: np.ndarray, output: np.ndarray) -> float:
    """How far the output's outer EDGE_PX pixels differ from the band just inside them (levels 0..255,
    the mean over colours), less the same for the input, at the worst of the four edges. Nets paint a
    line or frame there (without their reflected margin, on six photos: great_wave-realtime 44,
    great_wave-quality 62; with it 10 and 6). An image with a side shorter than twice the band: 0."""
    a, b = EDGE_BAND_PX
    if min(*frame.shape[:2], *output.shape[:2]) < 2 * b:
        return 0.0

    def edges(img: np.ndarray) -> np.ndarray:
        g = img.astype(np.float32)
        strips = [(g[:EDGE_PX], g[a:b]), (g[-EDGE_PX:], g[-b:-a]),
                  (g[:, :EDGE_PX], g[:, a:b]), (g[:, -EDGE_PX:], g[:, -b:-a])]
        return np.array([np.abs(o.mean((0, 1)) - i.mean((0, 1))).mean() for o, i in strips])

    return float(max(0.0, (edges(output) - edges(frame)).max()))


def evaluate_quality(stylizer: Stylizer, content: list[Path], style_image: Path, *,
                     vgg_weights: str | os.PathLike | None = None, input_max_side_px: int | None = None,
                     progress=None) -> list[QualityRow]:
    """S, C, shift sensitivity and edge line of what a user gets: each photo (scaled to ``input_max_side_px``
    first if given) is stylised as `rtnst image` does, at the stylizer's size and back to the
    photo's, and the output and the photo are then measured at a long side of EVAL_SIDE_PX. A model
    whose look depends on the input's size (texture that shrinks on larger frames) is measured as
    users see it."""
    meter = QualityMeter(read_image(style_image), vgg_weights=vgg_weights)
    rows = []
    skipped = []
    for path in content:
        img = read_image(path)
        img = fr.resize(img, fr.fit_max_side(img.shape[1], img.shape[0], input_max_side_px))
        metric_size = fr.fit_max_side(img.shape[1], img.shape[0], EVAL_SIDE_PX)
        if min(metric_size) < MIN_METRIC_SIDE_PX:
            skipped.append(path.name)
            if progress:
                progress.update(1)
            continue
        out = stylizer.stylize(img)
        s, c = meter.measure(fr.resize(img, metric_size), fr.resize(out, metric_size))
        rows.append(QualityRow(path.name, s, c, shift_sensitivity(stylizer.stylize, img, output=out),
                               edge_line(img, out)))
        if progress:
            progress.update(1)
    if skipped:
        note = (f"{len(skipped)} image{'s' if len(skipped) > 1 else ''} too small or too thin to measure "
                f"(both sides must be {MIN_METRIC_SIDE_PX} px or more at a long side of {EVAL_SIDE_PX}): "
                f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
        if not rows:
            raise InputError(note)
        log.warning("rtnst: left out %s", note)
    return rows


def content_paths(arg: str | os.PathLike) -> list[Path]:
    p = Path(arg)
    return list_images(p) if p.is_dir() else [p]
