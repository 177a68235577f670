"""rtnst optimize on tiny images with tiny random VGGs (fast); real VGG weights are never needed."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest
import torch

from realtime_nst import cli
from realtime_nst import frames as fr
from realtime_nst.errors import InputError, ModelError, OptionError
from realtime_nst.imageio import read_image, write_image
from realtime_nst.gatys.config import OptimizeConfig, parse_layers
from realtime_nst.gatys.optimize import Objective, optimize, scale_sizes
from realtime_nst.perceptual.vggspeed import resolve_precision, speed_up, winograd_available
from realtime_nst.perceptual.vgg import VGGFeatures, load_vgg

# fp32 everywhere (auto would pick bf16 on some CPUs): on tiny random VGGs bf16's gradient noise can
# throw L-BFGS's first curvature estimates off; bf16 is tested on its own below.
FAST = dict(iterations=8, max_side_px=40, tv_weight=1e-3, precision="fp32")
# Layers down to block 3 only: ~4x cheaper than the defaults and enough to see every option act.
SHALLOW = dict(content_layers={"relu3_1": 1.0}, style_layers={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny tensors gain nothing from threads, and on busy cores every parallel region waits for a
    # descheduled thread: 1 thread runs these tests ~10x faster there.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _save_tiny_vgg(path, arch):
    from safetensors.torch import save_file

    torch.manual_seed({"vgg16": 16, "vgg19": 19}[arch])
    net = VGGFeatures(arch, width=8)
    save_file({f"features.{k}": v.contiguous() for k, v in net.features.state_dict().items()}, str(path),
              metadata={"input_range": "0..255", "arch": arch})
    return str(path)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("opt")
    yy, xx = np.mgrid[0:36, 0:48]
    content = np.stack([xx * 5, yy * 7, 255 - xx * 5], axis=-1).astype(np.uint8)  # smooth colour ramps
    cv2.circle(content, (24, 18), 9, (30, 200, 60), -1)
    style_a = np.zeros((40, 40, 3), np.uint8)
    style_a[:, ::4] = (40, 90, 250)  # orange stripes
    style_b = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)  # noise
    out = {"dir": d, "content": content, "style_a": style_a, "style_b": style_b}
    for name in ("content", "style_a", "style_b"):
        out[f"{name}_path"] = str(d / f"{name}.png")
        write_image(out[f"{name}_path"], out[name])
    out["vgg19"] = _save_tiny_vgg(d / "tiny19.safetensors", "vgg19")
    out["vgg16"] = _save_tiny_vgg(d / "tiny16.safetensors", "vgg16")
    return out


def _cfg(assets, **kw) -> OptimizeConfig:
    return OptimizeConfig(**{"vgg_weights": assets["vgg19"], **FAST, **kw})


def _totals(result) -> list[float]:
    return [h["total"] for h in result.history]


# -- library -------------------------------------------------------------------------------------
def test_lbfgs_with_default_layers_lowers_the_loss(assets):
    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets))
    t = _totals(r)
    assert len(t) == 8 and t[-1] < 0.5 * t[0]
    assert r.history[0]["content"] == 0.0  # --init content: starts on the content itself
    assert r.frame.dtype == np.uint8 and r.frame.shape == (30, 40, 3)  # 48x36 fit into --max-side 40
    start = cv2.resize(assets["content"], (40, 30), interpolation=cv2.INTER_AREA)
    assert np.abs(r.frame.astype(int) - start).mean() > 1  # it did change


def test_adam_noise_init_seed_vgg16_avg_pool(assets):
    cfg = _cfg(assets, vgg="vgg16", vgg_weights=assets["vgg16"], pool="avg", optimizer="adam", lr=0.05,
               init="noise", iterations=12, seed=3, **SHALLOW)
    a = optimize(assets["content"], [assets["style_a"]], cfg)
    assert _totals(a)[-1] < 0.7 * _totals(a)[0]
    assert np.array_equal(a.frame, optimize(assets["content"], [assets["style_a"]], cfg).frame)  # same seed, same image
    cfg.seed = 4
    assert not np.array_equal(a.frame, optimize(assets["content"], [assets["style_a"]], cfg).frame)


def test_pooling_changes_the_network(assets):
    kw = dict(init="style", iterations=1, **SHALLOW)
    mx = optimize(assets["content"], [assets["style_a"]], _cfg(assets, pool="max", **kw)).history[0]
    avg = optimize(assets["content"], [assets["style_a"]], _cfg(assets, pool="avg", **kw)).history[0]
    assert mx["content"] != pytest.approx(avg["content"], rel=1e-3)


def test_init_style_starts_away_from_the_content(assets):
    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets, init="style", iterations=1, **SHALLOW))
    assert r.history[0]["content"] > 0.05


def test_a_style_image_too_thin_for_the_layers_is_named(assets):
    thin = np.full((1, 400, 3), 128, np.uint8)
    with pytest.raises(InputError, match="the style image at this pass's size"):
        optimize(assets["content"], [thin], _cfg(assets, iterations=1))


def test_layer_and_term_weights(assets):
    assert parse_layers("relu1_1, relu2_1:0.5", "style") == {"relu1_1": 1.0, "relu2_1": 0.5}
    kw = dict(init="style", iterations=1, content_layers={"relu3_1": 1.0})
    even = optimize(assets["content"], [assets["style_a"]],
                    _cfg(assets, style_layers={"relu1_1": 1.0, "relu3_1": 1.0}, **kw)).history[0]
    skew = optimize(assets["content"], [assets["style_a"]],
                    _cfg(assets, style_layers={"relu1_1": 9.0, "relu3_1": 1.0}, **kw)).history[0]
    assert skew["style"] != pytest.approx(even["style"], rel=1e-3)
    w = optimize(assets["content"], [assets["style_a"]], _cfg(assets, init="style", iterations=1, content_weight=2.0,
                                                               style_weight=3.0, tv_weight=0.5, **SHALLOW)).history[0]
    assert w["total"] == pytest.approx(2 * w["content"] + 3 * w["style"] + 0.5 * w["tv"], rel=1e-5)
    off = optimize(assets["content"], [assets["style_a"]],
                   _cfg(assets, iterations=1, init="style", content_weight=0, tv_weight=0, **SHALLOW)).history[0]
    assert off["content"] == 0 and off["tv"] == 0
    assert off["total"] == pytest.approx(off["style"] * OptimizeConfig().style_weight, rel=1e-5)


def test_style_blend(assets):
    styles = [assets["style_a"], assets["style_b"]]

    def first_style(blend):
        return optimize(assets["content"], styles, _cfg(assets, iterations=1, style_blend=blend, **SHALLOW)).history[0]["style"]

    equal, a_heavy, b_heavy = first_style(None), first_style([9.0, 1.0]), first_style([1.0, 9.0])
    assert first_style([2.0, 2.0]) == pytest.approx(equal, rel=1e-5)  # weights are relative
    assert len({round(v, 5) for v in (equal, a_heavy, b_heavy)}) == 3
    with pytest.raises(OptionError, match="1 weights for 2 style images"):
        optimize(assets["content"], styles, _cfg(assets, style_blend=[1.0]))
    with pytest.raises(OptionError, match="must be positive"):
        optimize(assets["content"], styles, _cfg(assets, style_blend=[1.0, 0.0]))


def test_preserve_color_keeps_the_content_chroma(assets):
    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets, preserve_color=True, **SHALLOW))
    plain = optimize(assets["content"], [assets["style_a"]], _cfg(assets, **SHALLOW))
    start = cv2.resize(assets["content"], (40, 30), interpolation=cv2.INTER_AREA)
    chroma = lambda img: cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[..., 1:].astype(int)  # noqa: E731
    assert np.abs(chroma(r.frame) - chroma(start)).mean() < 2.5  # YCrCb round trip rounds
    assert np.abs(chroma(plain.frame) - chroma(start)).mean() > np.abs(chroma(r.frame) - chroma(start)).mean() + 1
    luma = lambda img: cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[..., 0].astype(int)  # noqa: E731
    assert np.abs(luma(r.frame) - luma(plain.frame)).mean() < 2.5  # the stylised luminance is kept


def test_coarse_to_fine_and_callback(assets):
    assert scale_sizes(48, 36, 40, 3) == [(10, 8), (20, 15), (40, 30)]
    seen = []
    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets, scales=2, iterations=3, **SHALLOW),
                 callback=lambda info: seen.append((info.step, info.total, info.scale, info.frame().shape)))
    assert seen == [(1, 6, 1, (15, 20, 3)), (2, 6, 1, (15, 20, 3)), (3, 6, 1, (15, 20, 3)),
                    (4, 6, 2, (30, 40, 3)), (5, 6, 2, (30, 40, 3)), (6, 6, 2, (30, 40, 3))]
    assert r.frame.shape == (30, 40, 3) and len(r.history) == 6
    # the fine pass starts from the upsampled coarse result, not from the content: content term > 0 at once
    assert r.history[3]["content"] > 0
    with pytest.raises(OptionError, match="at least 16 px"):  # relu5_1 sits behind 4 poolings
        optimize(assets["content"], [assets["style_a"]], _cfg(assets, scales=3))


def test_stop_ends_after_the_iteration_with_the_result_so_far_at_full_size(assets):
    import threading

    stop = threading.Event()
    coarse = []

    def on_step(info):
        coarse.append(info.frame())
        if info.step == 2:
            stop.set()  # what Ctrl-C does in the CLI

    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets, scales=2, iterations=3, **SHALLOW),
                 callback=on_step, stop=stop)
    assert r.stopped and len(r.history) == 2
    assert r.frame.shape == (30, 40, 3)  # the coarse pass's image, scaled to the size asked for
    assert np.abs(r.frame.astype(float) - fr.resize(coarse[-1], (40, 30)).astype(float)).max() <= 1


@pytest.mark.skipif(not winograd_available(), reason="this PyTorch has no NNPACK")
def test_winograd_convolutions_match_onednn(assets):
    cfg = _cfg(assets)
    torch.manual_seed(0)
    x, content, style = torch.rand(1, 3, 32, 40, requires_grad=True), torch.rand(1, 3, 32, 40), torch.rand(1, 3, 40, 40)
    results = []
    for winograd in (True, False):
        vgg, layout = speed_up(load_vgg("vgg19", weights=assets["vgg19"]), torch.device("cpu"), winograd)
        obj = Objective(vgg, content, [style], [1.0], cfg, memory_format=layout)
        x.grad = None
        loss = obj(x)["total"]
        loss.backward()
        results.append((loss.item(), x.grad.clone()))
    (a, ga), (b, gb) = results
    assert a == pytest.approx(b, rel=1e-4)
    assert float((ga - gb).norm() / gb.norm()) < 1e-3


def test_bf16_objective_matches_fp32(assets):
    cfg = _cfg(assets)
    torch.manual_seed(1)
    x, content, style = torch.rand(1, 3, 32, 40, requires_grad=True), torch.rand(1, 3, 32, 40), torch.rand(1, 3, 40, 40)
    results = {}
    for precision in ("fp32", "bf16"):
        vgg, layout = speed_up(load_vgg("vgg19", weights=assets["vgg19"]), torch.device("cpu"), False, precision)
        obj = Objective(vgg, content, [style], [1.0], cfg, memory_format=layout, precision=precision)
        x.grad = None
        terms = obj(x)
        assert all(v.dtype == torch.float32 for v in terms.values())  # losses are summed in fp32
        terms["total"].backward()
        results[precision] = (terms["total"].item(), x.grad.clone())
    (a, ga), (b, gb) = results["fp32"], results["bf16"]
    assert b == pytest.approx(a, rel=0.03)  # bf16 keeps ~3 significant digits per value
    # Same direction up to bf16's rounding (on real VGG16 at 256 px the error is measured by
    # tools/bench_optimize.py); a wrong cast or a dropped term would give far less.
    assert float(torch.nn.functional.cosine_similarity(ga.flatten(), gb.flatten(), dim=0)) > 0.95
    assert float((ga - gb).norm() / ga.norm()) < 0.25


def test_bf16_run_lowers_the_loss(assets):
    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets, precision="bf16", optimizer="adam", iterations=12))
    t = _totals(r)
    assert t[-1] < 0.7 * t[0] and r.frame.shape == (30, 40, 3)


def test_precision_choice(monkeypatch):
    import realtime_nst.perceptual.vggspeed as vs

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(vs, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16" and resolve_precision("auto", cuda) == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cuda) == "bf16"
    monkeypatch.setattr(vs, "cpu_has_bf16", lambda: False)  # emulated bf16 would be ~50x slower
    assert resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(OptionError, match="precision must be auto, fp32 or bf16"):
        optimize(np.zeros((8, 8, 3), np.uint8), [np.zeros((8, 8, 3), np.uint8)], OptimizeConfig(precision="fp16"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda(assets):
    r = optimize(assets["content"], [assets["style_a"]], _cfg(assets, device="cuda"))
    assert _totals(r)[-1] < _totals(r)[0]


def test_bad_inputs_raise_clear_errors(assets):
    c, s = assets["content"], [assets["style_a"]]
    with pytest.raises(OptionError, match=r"unknown vgg19 layer\(s\) conv9_9"):
        optimize(c, s, _cfg(assets, style_layers={"conv9_9": 1.0}))
    for spec, msg in [("relu1_1:0", "weight of relu1_1 must be positive"), ("relu1_1:-2", "must be positive"),
                      ("relu1_1:x", "bad weight 'x'"), (",", "names no layer")]:
        with pytest.raises(OptionError, match=msg):
            parse_layers(spec, "style")
    for kw, msg in [(dict(style_weight=-1), "style_weight must be 0 or positive"),
                    (dict(content_weight=float("nan")), "content_weight"),
                    (dict(content_weight=0, style_weight=0), "both 0"),
                    (dict(lr=0), "lr must be positive"), (dict(iterations=0), "iterations must be positive"),
                    (dict(max_side_px=-5), "max_side_px must be positive"), (dict(scales=0), "scales"),
                    (dict(optimizer="sgd"), "optimizer must be lbfgs or adam"),
                    (dict(init="zeros"), "init must be content, noise or style"), (dict(device="tpu"), "device"),
                    (dict(pool="min"), "pool must be max or avg"), (dict(vgg="vgg11"), "vgg must be vgg16 or vgg19")]:
        with pytest.raises(OptionError, match=msg):
            optimize(c, s, _cfg(assets, **kw))
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="device cuda: no CUDA device"):
            optimize(c, s, _cfg(assets, device="cuda"))
    with pytest.raises(OptionError, match="at least one style"):
        optimize(c, [], _cfg(assets))
    with pytest.raises(OptionError, match="HxWx3 uint8"):
        optimize(c.astype(np.float32), s, _cfg(assets))
    with pytest.raises(ModelError, match="vgg19 weights, but vgg16"):
        optimize(c, s, _cfg(assets, vgg="vgg16"))


# -- command line ------------------------------------------------------------------------------
def _main(monkeypatch, *argv) -> int:
    # Only the optimize command: the others are not this test's business (and may not exist yet).
    monkeypatch.setattr(cli, "COMMANDS", ["optimize"])
    return cli.main(list(argv))


def _base(assets, out, *extra):
    return ["optimize", assets["content_path"], assets["style_a_path"], str(out), "--vgg-weights", assets["vgg19"],
            "--max-side", "40", "--iterations", "4", "--content-layers", "relu3_1", "--style-layers",
            "relu1_1,relu2_1:2,relu3_1", *extra]


def test_cli_writes_output_snapshots_and_distances(assets, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.png"
    rc = _main(monkeypatch, *_base(assets, out, "--save-every", "2", "--metric-vgg-weights", assets["vgg16"],
                                   "--optimizer", "adam", "--lr", "0.05", "--init", "noise", "--seed", "1",
                                   "--pool", "avg", "--tv-weight", "0.01", "--style-weight", "100",
                                   "--content-weight", "2", "--device", "cpu"))
    assert rc == 0
    assert read_image(out).shape == (30, 40, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "out_iter0002.png", "out_iter0004.png"]
    printed = capsys.readouterr().out
    assert "style distance S = " in printed and "content distance C = " in printed


def test_cli_two_styles_preserve_color_scales_vgg16(assets, tmp_path, monkeypatch, capsys):
    out = tmp_path / "o.jpg"
    argv = ["optimize", assets["content_path"], assets["style_a_path"], assets["style_b_path"], str(out),
            "--vgg", "vgg16", "--vgg-weights", assets["vgg16"], "--max-side", "40", "--iterations", "2",
            "--scales", "2", "--style-blend", "3,1", "--preserve-color", "--content-layers", "relu2_2",
            "--style-layers", "relu1_2,relu2_2"]
    assert _main(monkeypatch, *argv) == 0
    assert read_image(out).shape == (30, 40, 3)
    assert capsys.readouterr().out.count("style distance S = ") == 2  # one per style; VGG16 weights reused


def test_cli_errors_are_one_line_and_exit_2(assets, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.png"
    write_image(out, assets["content"])
    (tmp_path / "new_iter0002.png").touch()
    cases = [
        (_base(assets, out), f"{out} exists; pass --overwrite"),
        (_base(assets, tmp_path / "new.png", "--save-every", "2"), "new_iter0002.png exists; pass --overwrite"),
        (["optimize", str(tmp_path / "missing.jpg"), assets["style_a_path"], str(tmp_path / "a.png"),
          "--vgg-weights", assets["vgg19"]], "missing.jpg does not exist"),
        (_base(assets, tmp_path / "b.png", "--style-layers", "relu1_1,bogus3_1"), "unknown vgg19 layer(s) bogus3_1"),
        (_base(assets, tmp_path / "c.png", "--style-weight", "-1"), "--style-weight must be 0 or positive"),
        (_base(assets, tmp_path / "d.png", "--content-layers", "relu3_1:0"), "weight of relu3_1 must be positive"),
        (_base(assets, tmp_path / "e.png", "--save-every", "0"), "--save-every must be positive"),
        (_base(assets, tmp_path / "f.txt"), "cannot tell the image format"),
        (_base(assets, tmp_path / "nodir" / "g.png"), "does not exist"),
        (_base(assets, tmp_path / "h.png", "--style-blend", "1,2"), "2 weights for 1 style images"),
        (_base(assets, tmp_path / "i.png", "--vgg-weights", str(tmp_path / "none.safetensors")),
         "none.safetensors does not exist"),
        (["optimize", str(out), assets["style_a_path"], str(out), "--overwrite", "--vgg-weights", assets["vgg19"]],
         "is an input file"),
    ]
    for argv, msg in cases:
        assert _main(monkeypatch, *argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("rtnst: error: ") and err.count("\n") == 1 and msg in err, err
    assert read_image(out).shape == assets["content"].shape  # not overwritten
    assert not (tmp_path / "a.png").exists()


def test_cli_overwrite_and_help(assets, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.png"
    write_image(out, assets["content"])
    assert _main(monkeypatch, *_base(assets, out, "--overwrite")) == 0
    assert read_image(out).shape == (30, 40, 3)
    with pytest.raises(SystemExit) as exc:
        _main(monkeypatch, "optimize", "--help")
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--vgg-weights", "--content-layers", "--style-layers", "--content-weight", "--style-weight",
                   "--tv-weight", "--optimizer", "--lr", "--init", "--pool", "--max-side", "--style-blend",
                   "--preserve-color", "scales", "--save-every", "--seed", "--device", "--overwrite"):
        assert option in text
    with pytest.raises(SystemExit) as exc:  # argparse errors: one line, exit 2
        _main(monkeypatch, *_base(assets, tmp_path / "x.png", "--style-blend", "a,b"))
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_register_on_a_fresh_parser(tmp_path):
    from realtime_nst.cli import optimize as cmd

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers(dest="command"))
    c, out = str(tmp_path / "c.jpg"), str(tmp_path / "o.png")
    args = parser.parse_args(["optimize", c, "s1.jpg", "s2.jpg", out])
    assert (args.content, args.styles, args.out, args.handler) == (c, ["s1.jpg", "s2.jpg"], out, cmd.run)
    with pytest.raises(InputError, match="c.jpg does not exist"):
        args.handler(args)
