"""The two network tiers: sizes, costs, shape conventions and pytorch/examples checkpoints."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from realtime_nst import nets  # noqa: E402
from realtime_nst.errors import OptionError  # noqa: E402


@pytest.mark.parametrize("tier, params, macs", [("quality", 1_679_235, 153_792), ("realtime", 39_323, 787.375)])
def test_cost_report(tier, params, macs):
    net = nets.build(tier)
    assert net.TIER == tier
    assert nets.count_params(net) == params
    assert nets.macs_per_pixel(net, size_px=64) == pytest.approx(macs, rel=1e-3)


def test_realtime_is_100x_cheaper_than_quality():
    q, r = (nets.macs_per_pixel(nets.build(t), size_px=32) for t in ("quality", "realtime"))
    assert q / r > 100


@pytest.mark.parametrize("tier", ["quality", "realtime"])
def test_output_has_input_shape(tier):
    net = nets.build(tier).eval()
    m = net.PAD_MULTIPLE
    x = torch.rand(2, 3, 5 * m, 7 * m) * (255 if net.INPUT_RANGE == "0-255" else 1)
    with torch.no_grad():
        assert net(x).shape == x.shape


def test_conventions():
    assert (nets.TransformerNet.INPUT_RANGE, nets.TransformerNet.PAD_MULTIPLE) == ("0-255", 4)
    assert (nets.RealtimeNet.INPUT_RANGE, nets.RealtimeNet.PAD_MULTIPLE) == ("0-1", 8)


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
