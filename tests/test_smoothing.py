"""Temporal smoothers on synthetic moving patterns (fast, no models needed)."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from realtime_nst.cli.common import add_smoothing_options
from realtime_nst.errors import OptionError
from realtime_nst.runtime.smoothing import (
    DEFAULT_STRENGTH,
    FLOW_SIDE_PX,
    SMOOTH_KINDS,
    EmaSmoother,
    FlowSmoother,
    Smoother,
    make_smoother,
    smoother_for,
)

H, W = 120, 160


def texture(seed: int, h: int = 2 * H, w: int = 2 * W) -> np.ndarray:
    """A blobby colour texture with structure at several scales, so optical flow has something to lock on."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((24, 90.0), (8, 50.0), (3, 25.0)):
        small = rng.normal(0, 1, (h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[cell:cell + h, cell:cell + w]
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def fake_style(frame: np.ndarray) -> np.ndarray:
    """A deterministic 'style': a colour swap and an edge boost, like a model's output is a function of the input."""
    edges = cv2.Laplacian(frame, cv2.CV_16S, ksize=3)
    return cv2.convertScaleAbs(frame[:, :, ::-1].astype(np.int16) - edges // 2)


def flicker(frame: np.ndarray, rng: np.random.Generator, sigma: float = 12.0) -> np.ndarray:
    """What makes per-frame style transfer flicker: output noise that changes every frame."""
    noise = rng.normal(0, sigma, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def panning(n: int, step: tuple[int, int] = (2, 1), seed: int = 0) -> list[np.ndarray]:
    """n crops of a larger texture moving by ``step`` (dx, dy) pixels a frame: a pure camera pan."""
    tex = texture(seed)
    return [np.ascontiguousarray(tex[20 + t * step[1]:20 + t * step[1] + H, 20 + t * step[0]:20 + t * step[0] + W])
            for t in range(n)]


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))))


def test_make_smoother_kinds_and_errors():
    assert SMOOTH_KINDS == ("none", "ema", "flow")
    assert make_smoother("none") is None
    assert isinstance(make_smoother("ema"), EmaSmoother)
    assert isinstance(make_smoother("flow", strength=0.3), FlowSmoother)
    assert isinstance(make_smoother("flow"), Smoother)
    with pytest.raises(OptionError, match="smooth must be"):
        make_smoother("median")
    for bad in (-0.1, 1.5):
        with pytest.raises(OptionError, match="smooth_strength"):
            make_smoother("ema", strength=bad)


def test_smoother_for_takes_the_strength_given_else_the_models_own():
    from types import SimpleNamespace

    from realtime_nst.runtime.smoothing import DEFAULT_STRENGTH

    measured = SimpleNamespace(info=SimpleNamespace(smooth_strength=0.8))
    assert smoother_for("flow", measured).strength == 0.8
    assert smoother_for("ema", measured, strength=0.3).strength == 0.3
    assert smoother_for("flow", object()).strength == DEFAULT_STRENGTH  # a stylizer without model metadata
    assert smoother_for("none", measured) is None


def test_add_smoothing_options():
    p = argparse.ArgumentParser()
    add_smoothing_options(p)
    args = p.parse_args([])
    assert (args.smooth, args.smooth_strength) == ("none", None)  # None: the model's, else the default
    args = p.parse_args(["--smooth", "flow", "--smooth-strength", "0.4"])
    assert (args.smooth, args.smooth_strength) == ("flow", 0.4)
    with pytest.raises(SystemExit):
        p.parse_args(["--smooth", "median"])
    p = argparse.ArgumentParser()
    add_smoothing_options(p, default="flow")
    assert p.parse_args([]).smooth == "flow"
    assert "flow (default)" in " ".join(p.format_help().split()) and "none (default)" not in p.format_help()


@pytest.mark.parametrize("kind", ["ema", "flow"])
def test_first_frame_and_zero_strength_pass_through(kind):
    src = texture(1)[:H, :W].copy()
    sty = fake_style(src)
    sm = make_smoother(kind)
    assert np.array_equal(sm(src, sty), sty)
    off = make_smoother(kind, strength=0.0)
    for _ in range(3):
        assert np.array_equal(off(src, sty), sty)


@pytest.mark.parametrize("kind", ["ema", "flow"])
def test_static_scene_comes_out_static(kind):
    """A still input whose stylisation flickers: the output must settle near the clean stylisation and
    change far less from frame to frame (no drift, no creeping blur)."""
    rng = np.random.default_rng(0)
    src = texture(2)[:H, :W].copy()
    clean = fake_style(src)
    sm = make_smoother(kind)
    outs, ins = [], []
    for _ in range(30):
        sty = flicker(clean, rng)
        ins.append(sty)
        outs.append(sm(src, sty))
    in_change = np.mean([mad(a, b) for a, b in zip(ins[10:], ins[11:])])
    out_change = np.mean([mad(a, b) for a, b in zip(outs[10:], outs[11:])])
    assert out_change < 0.6 * in_change
    # The noise averages out: the output is closer to the clean stylisation than any single frame.
    assert mad(outs[-1], clean) < 0.8 * mad(ins[-1], clean)


def test_static_clean_scene_stays_exact():
    """No flicker at all: repeated warping with a (near) zero flow must not soften the picture."""
    src = texture(3)[:H, :W].copy()
    sty = fake_style(src)
    sm = FlowSmoother()
    for _ in range(40):
        out = sm(src, sty)
    assert mad(out, sty) < 1.0


def test_flow_follows_motion_where_ema_ghosts():
    """A camera pan with flickering stylisation: flow stays on the moving picture, EMA smears it."""
    rng = np.random.default_rng(1)
    frames = panning(24, step=(3, 1))
    flow_sm, ema_sm = FlowSmoother(), EmaSmoother()
    err_flow, err_ema, err_none = [], [], []
    for t, src in enumerate(frames):
        clean = fake_style(src)
        sty = flicker(clean, rng)
        out_f, out_e = flow_sm(src, sty), ema_sm(src, sty)
        if t >= 8:
            inner = (slice(8, -8), slice(8, -8))  # new content enters at the borders
            err_flow.append(mad(out_f[inner], clean[inner]))
            err_ema.append(mad(out_e[inner], clean[inner]))
            err_none.append(mad(sty[inner], clean[inner]))
    assert flow_sm.trusted_fraction > 0.8
    # Flow averages the noise out without ghosting: better than no smoothing and than EMA.
    assert np.mean(err_flow) < 0.85 * np.mean(err_none)
    assert np.mean(err_flow) < 0.7 * np.mean(err_ema)


def test_flow_resolution_follows_a_small_moving_object():
    """A 32 px object crossing a 512x288 frame is a few flow pixels wide at 128 px: the history is
    smeared over it. The default flow resolution keeps the object near its clean stylisation."""
    hs, ws, side = 288, 512, 32
    background, thing = texture(5, hs, ws), texture(6, side, side)
    errors = {}
    for flow_side_px in (128, FLOW_SIDE_PX):
        rng, sm, errs = np.random.default_rng(0), FlowSmoother(0.8, flow_side_px=flow_side_px), []
        for t in range(25):
            frame, x, y = background.copy(), 100 + 3 * t, 120 + t
            frame[y:y + side, x:x + side] = thing
            clean = fake_style(frame)
            out = sm(frame, flicker(clean, rng))
            if t > 5:
                errs.append(mad(out[y:y + side, x:x + side], clean[y:y + side, x:x + side]))
        errors[flow_side_px] = float(np.mean(errs))
    assert errors[FLOW_SIDE_PX] < 0.8 * errors[128], errors


@pytest.mark.parametrize("kind", ["ema", "flow"])
def test_scene_cut_does_not_smear(kind):
    a_frames = panning(10, seed=4)
    b_frames = panning(3, seed=5)
    sm = make_smoother(kind, strength=0.9)
    for src in a_frames:
        sm(src, fake_style(src))
    cut = b_frames[0]
    out = sm(cut, fake_style(cut))
    assert np.array_equal(out, fake_style(cut))
    if kind == "flow":
        assert sm.trusted_fraction < 0.3


@pytest.mark.parametrize("kind", ["ema", "flow"])
def test_reset_and_size_change_start_afresh(kind):
    rng = np.random.default_rng(2)
    src = texture(6)[:H, :W].copy()
    sm = make_smoother(kind)
    for _ in range(5):
        sm(src, flicker(fake_style(src), rng))
    sm.reset()
    sty = flicker(fake_style(src), rng)
    assert np.array_equal(sm(src, sty), sty)
    small = np.ascontiguousarray(src[: H // 2, : W // 2])
    sty_small = fake_style(small)
    assert np.array_equal(sm(small, sty_small), sty_small)


@pytest.mark.parametrize("h, w", [(2, 2), (6, 8), (1, 40)])
def test_flow_smooths_frames_smaller_than_opencvs_flow_takes(h, w):
    rng = np.random.default_rng(3)
    sm = FlowSmoother()
    for _ in range(3):
        src = rng.integers(0, 255, (h, w, 3), np.uint8)
        out = sm(src, src)
        assert out.shape == src.shape and out.dtype == np.uint8


def test_flow_handles_output_larger_than_source():
    """The flow is computed on the source and scaled to the output size."""
    frames = panning(6, step=(2, 0))
    sm = FlowSmoother()
    for src in frames:
        big = cv2.resize(fake_style(src), (2 * W, 2 * H))
        out = sm(src, big)
        assert out.shape == big.shape and out.dtype == np.uint8
    assert mad(out, big) < 6.0


def test_strength_given_else_model_else_default():
    from types import SimpleNamespace

    from realtime_nst.cli.video import make_smoother_from
    from realtime_nst.runtime.smoothing import strength_for
    from realtime_nst.runtime.stylizer import ModelInfo

    assert strength_for(0.3, 0.8) == 0.3
    assert strength_for(None, 0.8) == 0.8
    assert strength_for(None, None) == DEFAULT_STRENGTH
    with pytest.raises(OptionError, match="smooth_strength"):
        strength_for(1.5, None)

    def info(meta):
        return ModelInfo(None, "input", "output", "0-1", "rgb", 8, None, 0, meta)

    assert info({"rtnst.smooth_strength": "0.7"}).smooth_strength == 0.7
    assert info({"rtnst.smooth_strength": "7"}).smooth_strength is None  # out of range: ignored
    assert info({}).smooth_strength is None
    stylizer = SimpleNamespace(info=info({"rtnst.smooth_strength": "0.8"}))
    assert make_smoother_from(argparse.Namespace(smooth="flow", smooth_strength=None), stylizer).strength == 0.8
    assert make_smoother_from(argparse.Namespace(smooth="ema", smooth_strength=0.2), stylizer).strength == 0.2
    assert make_smoother_from(argparse.Namespace(smooth="none", smooth_strength=None), stylizer) is None
