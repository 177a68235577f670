"""The two network tiers: sizes, costs, shape conventions and pytorch/examples checkpoints."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from realtime_nst.training import cost, nets  # noqa: E402
from realtime_nst.errors import OptionError  # noqa: E402


@pytest.mark.parametrize("tier, params, macs", [("quality", 1_679_235, 153_792), ("realtime", 32_651, 2559)])
def test_cost_report(tier, params, macs):
    net = nets.build(tier)
    assert net.TIER == tier
    assert cost.count_params(net) == params
    assert cost.macs_per_pixel(net, size_px=64) == pytest.approx(macs, rel=1e-3)


def test_realtime_is_50x_cheaper_than_quality_and_runs_at_a_quarter_of_the_pixels():
    q, r = (cost.macs_per_pixel(nets.build(t), size_px=32) for t in ("quality", "realtime"))
    assert q / r > 50
    assert nets.RealtimeNet.NATIVE_MAX_SIDE_PX == 640  # 640x360 for a 720p frame: 1/4 of its pixels


@pytest.mark.parametrize("tier", ["quality", "realtime"])
def test_output_has_input_shape(tier):
    net = nets.build(tier).eval()
    m = net.PAD_MULTIPLE
    x = torch.rand(2, 3, 5 * m, 7 * m) * (255 if net.INPUT_RANGE == "0-255" else 1)
    with torch.no_grad():
        assert net(x).shape == x.shape


def test_conventions():
    assert (nets.TransformerNet.INPUT_RANGE, nets.TransformerNet.PAD_MULTIPLE) == ("0-255", 4)
    assert (nets.RealtimeNet.INPUT_RANGE, nets.RealtimeNet.PAD_MULTIPLE) == ("0-1", 4)
    assert (nets.RealtimeNetV2.INPUT_RANGE, nets.RealtimeNetV2.PAD_MULTIPLE) == ("0-1", 8)


def test_realtime_starts_mid_grey():
    # The head bias starts at 0.5, so an untrained net returns a mid-grey-ish image, not black.
    torch.manual_seed(0)
    with torch.no_grad():
        y = nets.build("realtime").eval()(torch.rand(1, 3, 32, 32))
    assert 0.2 < float(y.mean()) < 0.8


def test_pytorch_examples_checkpoint_with_stale_running_stats_loads():
    src = nets.TransformerNet()
    state = dict(src.state_dict())
    # Checkpoints saved by old PyTorch carry instance-norm running stats current modules lack.
    for name in ("in1", "in2", "res1.in1", "in5"):
        ch = state[f"{name}.weight"].shape[0]
        state[f"{name}.running_mean"] = torch.zeros(ch)
        state[f"{name}.running_var"] = torch.ones(ch)
    net = nets.load_pytorch_examples_checkpoint(nets.TransformerNet(), state)
    assert torch.equal(net.conv1.conv2d.weight, src.conv1.conv2d.weight)
    # pytorch/examples module names are kept.
    assert {"conv1.conv2d.weight", "res5.conv2.conv2d.bias", "deconv1.conv2d.weight", "in5.bias"} <= set(state)


def test_unknown_tier():
    with pytest.raises(OptionError, match="unknown network tier"):
        nets.build("fastest")


@pytest.mark.parametrize("in_ch, out_ch, groups", [(5, 4, 1), (6, 6, 6)])
def test_tied_upsample_is_nearest_upsampling_then_a_3x3_conv(in_ch, out_ch, groups):
    torch.manual_seed(0)
    up = nets.TiedUpsample(in_ch, out_ch, groups=groups)
    x = torch.randn(2, in_ch, 7, 9)
    ref = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"),
                                     up.weight, up.bias, padding=1, groups=groups)
    torch.testing.assert_close(up(x), ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the export's forms: the same function, and the 3x3 weights come back from each
        for exported in (up.as_export_layers(), up.as_phase_layers()):
            torch.testing.assert_close(exported(x), ref, rtol=1e-5, atol=1e-5)
            weights = {f"up.{k}": v for k, v in exported.state_dict().items()}
            up.weights_from_export("up", weights)
            assert set(weights) == {"up.weight", "up.bias"}
            torch.testing.assert_close(weights["up.weight"], up.weight, rtol=1e-5, atol=1e-5)
    # Depthwise, the export runs the conv after a plain upsampling (onnxruntime keeps its fast layout).
    assert isinstance(up.as_export_layers()[0], torch.nn.Upsample) == (groups == out_ch)


def test_export_form_computes_the_same_and_gives_the_weights_back():
    from realtime_nst.training.export_form import for_export, from_export

    torch.manual_seed(0)
    net = nets.RealtimeNet().eval()
    with torch.no_grad():
        net.norm_in.weight.uniform_(0.5, 2.0)
        net.norm_in.bias.uniform_(-1.0, 1.0)
    exported = for_export(net)
    assert isinstance(exported.norm_in[1], torch.nn.Conv2d)  # the norm's scale and shift as a 1x1 conv
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), net(x), rtol=1e-4, atol=1e-4)
    back = from_export(net, exported.state_dict())
    assert set(back) == set(net.state_dict())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(back[k], v, rtol=1e-5, atol=1e-5, msg=k)


def test_realtime_net_paints_no_pixel_grid_on_a_flat_input():
    """Tied upsampling: a flat input gives a flat output away from the border, whatever the weights.
    The first realtime net's free transposed convs give each output phase its own colour."""
    torch.manual_seed(0)
    x = torch.full((1, 3, 256, 256), 0.4)
    with torch.no_grad():
        for net, flat in ((nets.RealtimeNet(), True), (nets.RealtimeNetV2(), True), (nets.RealtimeNetV1(), False)):
            centre = net.eval()(x)[..., 96:160, 96:160]
            spread = float((centre - centre.mean(dim=(2, 3), keepdim=True)).abs().max())
            assert (spread < 1e-4) == flat, (type(net).__name__, spread)


def test_build_picks_the_net_version_the_weights_fit():
    v1 = nets.RealtimeNetV1().state_dict()
    assert type(nets.build("realtime", state=v1)) is nets.RealtimeNetV1
    assert type(nets.build("realtime", state=nets.RealtimeNetV2().state_dict())) is nets.RealtimeNetV2
    assert type(nets.build("realtime", state=nets.RealtimeNet().state_dict())) is nets.RealtimeNet
    assert type(nets.build("realtime")) is nets.RealtimeNet
    wide = nets.RealtimeNet(full=16, half=32).state_dict()  # a wider realtime net keeps its widths
    nets.build("realtime", state=wide).load_state_dict(wide)
    deep = nets.RealtimeNet(quarter=32, blocks=5, block_norm=True).state_dict()  # and its depth
    nets.build("realtime", state=deep).load_state_dict(deep)
