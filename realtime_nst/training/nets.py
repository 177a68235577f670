"""Feed-forward style networks (PyTorch). Import only with the ``train`` extra installed.

Two tiers share one convention: a batch is NCHW float32 RGB; ``INPUT_RANGE`` says whether pixels are
0..255 or 0..1 (the same range comes out), ``PAD_MULTIPLE`` the side multiple the net needs.
"""

from __future__ import annotations

import torch
from torch import nn

from .tied import TiedUpsample


class ConvLayer(nn.Module):
    """Reflection pad + conv, as pytorch/examples fast_neural_style (module names kept for its .pth files)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3, 1)
        self.in1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = ConvLayer(ch, ch, 3, 1)
        self.in2 = nn.InstanceNorm2d(ch, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class UpsampleConvLayer(nn.Module):
    """Nearest upsample then conv instead of a transposed conv: avoids checkerboard artefacts
    (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts")."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = nn.functional.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(nn.Module):
    """``quality`` tier: Johnson et al. 2016 with instance norm (Ulyanov et al. 2016), exactly the
    pytorch/examples layout so its published checkpoints load. About 154k MACs per output pixel.

    Trained on 256 px crops, its strokes have a fixed size in pixels, so on a photo's own 1-1.5k px
    they shrink to a fine hatching: at a long side of 640 (``NATIVE_MAX_SIDE_PX``, the runtime scales
    the result back up) the style distance of the four shipped models measured 0.17-0.94x the
    lengstrom references' against 0.87-1.73x at the photos' own size (models/README.md).
    """

    INPUT_RANGE = "0-255"
    PAD_MULTIPLE = 4
    NATIVE_MAX_SIDE_PX = 640
    INFERENCE_MARGIN_PX = 8  # great_wave's net painted a 2-3 px line along the bottom edge without it
    TIER = "quality"

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, 32, 9, 1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, 3, 2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, 3, 2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1, self.res2, self.res3, self.res4, self.res5 = (ResidualBlock(128) for _ in range(5))
        self.deconv1 = UpsampleConvLayer(128, 64, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def _dw_separable(in_ch: int, out_ch: int, *, stride: int = 1) -> nn.Sequential:
    # Zero padding inside the Conv (not a separate Pad op) lets onnxruntime fuse Conv+ReLU and keep
    # its blocked NCHWc layout across layers; a Pad op between convs forces layout reorders.
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, padding=1, groups=in_ch),
        nn.Conv2d(in_ch, out_ch, 1),
        nn.ReLU(inplace=True),
    )


class LowResBlock(nn.Module):
    """Residual block at low resolution (1/4 in RealtimeNet, 1/8 in RealtimeNetV2), without
    normalisation: every InstanceNormalization op makes onnxruntime leave its blocked NCHWc layout and
    come back (two reorders); with one per block RealtimeNetV2 ran ~25% slower at 720p (random weights)
    and RealtimeNet 12-15% slower at 640x360 (models/README.md weighs what it bought)."""

    def __init__(self, ch: int, *, norm: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, groups=ch),
            nn.Conv2d(ch, ch, 1),
            *([nn.InstanceNorm2d(ch, affine=True)] if norm else []),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, groups=ch),
            nn.Conv2d(ch, ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _up(in_ch: int, out_ch: int) -> nn.Sequential:
    # Channels are mixed at the low resolution (1x1), the 3x3 upsampling is depthwise: a full
    # TiedUpsample from 64 to 24 channels costs ~380 MACs/px and a third of the fps at 720p.
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1), TiedUpsample(out_ch, out_ch, groups=out_ch))


class RealtimeNet(nn.Module):
    """``realtime`` tier: runs at a native long side of 640 px (``NATIVE_MAX_SIDE_PX``; the runtime
    scales the output back to the frame's size), about 2.6k MACs/px.

    A 720p frame stylised at 640x360 leaves the net ~4x the per-pixel budget of 720p inference, and
    it goes where texture is made: the style distance is lost at VGG relu2_2/relu3_3, the fine and
    mid texture of full and half resolution (Magenta's lite transformer spends 30-45% of its MACs
    there). So a full 3x3 conv at full resolution (8 channels) and a refining layer there, 16
    channels at 1/2, and the residual blocks at 1/4 (64 channels) instead of 1/8. Depthwise-separable
    convs (Howard et al. 2017) elsewhere, U-Net skips, one instance norm (Ulyanov et al. 2016) where
    the 1/4 level starts, grid-free upsampling only (TiedUpsample: nearest x2 + 3x3, Odena et al.
    2016). Pixels RGB 0..1. Sized by `rtnst bench --sizes 1280x720` end to end (decode, resize,
    model, resize, encode on 2 cores): full-resolution tensors cost memory traffic more than MACs.
    ``full=16, half=32`` (`rtnst train --width 16`, 3.7k MACs/px) runs as fast with AVX-512
    (onnxruntime's blocked layout holds 16 channels there) but ~30% slower with AVX2 (blocks of 8).
    ``block_norm`` (`rtnst train --block-norm`) adds an instance norm inside each residual block: less
    style distance, more flicker, 12-15% more model time (see LowResBlock and models/README.md).
    """

    INPUT_RANGE = "0-1"
    PAD_MULTIPLE = 4
    MARGIN_PX = 0  # zero padding; the border term of training keeps a frame from being painted
    # The border term (a mean over the crop) leaves a 1-3 px line along edges: a reflected margin hides it.
    INFERENCE_MARGIN_PX = 4
    NATIVE_MAX_SIDE_PX = 640
    TIER = "realtime"
    SPLIT_NORMS_FOR_EXPORT = True  # export_form: the 1/4 level stays in onnxruntime's blocked layout

    def __init__(self, *, full: int = 8, half: int = 16, quarter: int = 64, blocks: int = 3,
                 block_norm: bool = False) -> None:
        super().__init__()
        self.block_norm = block_norm
        self.stem = nn.Sequential(nn.Conv2d(3, full, 3, padding=1), nn.ReLU(inplace=True))
        self.down1 = _dw_separable(full, half, stride=2)
        self.down2 = _dw_separable(half, quarter, stride=2)
        self.norm_in = nn.InstanceNorm2d(quarter, affine=True)
        self.blocks = nn.Sequential(*(LowResBlock(quarter, norm=block_norm) for _ in range(blocks)))
        self.up2 = _up(quarter, half)
        self.refine1 = _dw_separable(half, half)
        self.up1 = _up(half, full)
        self.refine0 = _dw_separable(full, full)
        self.head = nn.Conv2d(full, 3, 1)
        with torch.no_grad():
            self.head.bias.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem(x)
        s1 = self.down1(s0)
        y = self.blocks(self.norm_in(self.down2(s1)))
        y = self.refine1(self.up2(y) + s1)
        y = self.refine0(self.up1(y) + s0)
        return self.head(y)


class RealtimeNetV2(nn.Module):
    """The second ``realtime`` net, for 720p inference (about 0.9k MACs/px); kept to load and fine-tune
    checkpoints trained with it.

    Depthwise-separable convs (Howard et al. 2017, MobileNets), a stride-2 stem, the residual
    blocks at 1/8 resolution, encoder features added back at 1/4 and 1/2 (U-Net style skips) so
    the small net keeps edges. Every upsampling is a TiedUpsample (nearest x2 + 3x3 conv): no
    pixel-grid pattern (RealtimeNetV1's transposed convs painted one), and the last one works at
    full resolution, where the finest brush texture lives. Channels are 8 at 1/2, 24 at 1/4 and 64
    at 1/8 resolution: at 720p the half-resolution tensors, not the MACs, set the time (memory
    traffic plus layout reorders), so that level is kept thin. One instance norm (Ulyanov et al.
    2016) where the 1/8 level starts makes the output independent of the input's contrast; the
    blocks have none (see LowResBlock). Pixels are RGB 0..1 in and out.
    """

    INPUT_RANGE = "0-1"
    PAD_MULTIPLE = 8
    # Zero padding (fast in onnxruntime, see _dw_separable) lets the net see the image border; the
    # training's border term (losses.border_distance) teaches it not to paint a frame there, so no
    # reflect margin (48 px = 22% more pixels at 720p) is needed. Exported as rtnst.margin_px.
    MARGIN_PX = 0
    INFERENCE_MARGIN_PX = 0
    TIER = "realtime"

    def __init__(self, width: int = 64, blocks: int = 3, *, mid: int = 24, half: int = 8) -> None:
        super().__init__()
        w2, w4 = half, mid
        self.stem = nn.Sequential(nn.Conv2d(3, w2, 3, 2, padding=1), nn.ReLU(inplace=True))
        self.down2 = _dw_separable(w2, w4, stride=2)
        self.down3 = _dw_separable(w4, width, stride=2)
        self.norm_in = nn.InstanceNorm2d(width, affine=True)
        self.blocks = nn.Sequential(*(LowResBlock(width) for _ in range(blocks)))
        self.up3 = _up(width, w4)
        self.refine2 = _dw_separable(w4, w4)
        self.up2 = _up(w4, w2)
        self.refine1 = _dw_separable(w2, w2)
        self.head = TiedUpsample(w2, 3)
        with torch.no_grad():
            self.head.bias.fill_(0.5)  # start at mid-grey instead of adding 0.5 at full resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.stem(x)
        s2 = self.down2(s1)
        y = self.blocks(self.norm_in(self.down3(s2)))
        y = self.refine2(self.up3(y) + s2)
        y = self.refine1(self.up2(y) + s1)
        return self.head(y)


class RealtimeNetV1(RealtimeNetV2):
    """The first ``realtime`` net (the shipped realtime models until they are retrained): the same
    net with free 2x2 stride-2 transposed convs for upsampling, the function of a 1x1 conv +
    PixelShuffle (Shi et al. 2016) that onnxruntime runs ~8x faster than DepthToSpace at 720p.
    Non-overlapping does not mean no checkerboard (Odena et al. 2016): each output phase has its own
    weights, and under the VGG loss the trained nets paint a faint colour grid tied to the pixel
    grid (shift sensitivity 0.07-0.21 in `rtnst eval quality`, quality tier 0.015-0.033). Kept to
    load, fine-tune and distil those models.
    """

    def __init__(self, width: int = 64, blocks: int = 3, *, mid: int = 24, half: int = 8) -> None:
        super().__init__(width, blocks, mid=mid, half=half)
        self.up3 = nn.ConvTranspose2d(width, mid, 2, 2)
        self.up2 = nn.ConvTranspose2d(mid, half, 2, 2)
        self.head = nn.ConvTranspose2d(half, 3, 2, 2)
        with torch.no_grad():
            self.head.bias.fill_(0.5)


def forward_with_margin(net: nn.Module, x: torch.Tensor, *, call=None) -> torch.Tensor:
    """``net(x)`` with the input reflect-padded by the net's MARGIN_PX and the margin cropped off
    again (``call`` runs the padded batch, e.g. a DDP wrapper of ``net``)."""
    m = min(getattr(net, "MARGIN_PX", 0), x.shape[-2] - 1, x.shape[-1] - 1)  # reflection needs m < side
    m -= m % max(1, net.PAD_MULTIPLE // 2)  # 2·m keeps the side a multiple of PAD_MULTIPLE
    if m <= 0:
        return (call or net)(x)
    y = (call or net)(torch.nn.functional.pad(x, (m, m, m, m), mode="reflect"))
    return y[..., m:-m, m:-m]


NETWORKS: dict[str, type[nn.Module]] = {"quality": TransformerNet, "realtime": RealtimeNet}


def to_net(x01: torch.Tensor, tier: str) -> torch.Tensor:
    """A 0..1 batch in the tier's INPUT_RANGE."""
    return x01 * 255.0 if NETWORKS[tier].INPUT_RANGE == "0-255" else x01


def from_net(y: torch.Tensor, tier: str) -> torch.Tensor:
    """The tier's output back to 0..1 units."""
    return y / 255.0 if NETWORKS[tier].INPUT_RANGE == "0-255" else y


def build(tier: str, *, state: dict[str, torch.Tensor] | None = None, width: int | None = None,
          block_norm: bool = False) -> nn.Module:
    """A fresh net of ``tier`` (``width``: the realtime net's channels at full resolution, twice that
    at half; ``block_norm``: see RealtimeNet); given the weights it is to load (``state``), the
    version of the net they fit: realtime weights with a 1/8 level (``down3``) are RealtimeNetV2's,
    or V1's when their upsampling is a 2x2 transposed conv; RealtimeNet's take the widths, block count
    and block norms they were trained with."""
    if tier == "realtime" and state is not None and "down3.0.weight" in state:
        head = tuple(getattr(state.get("head.weight"), "shape", ()))
        return RealtimeNetV1() if head[-2:] == (2, 2) else RealtimeNetV2()
    if tier == "realtime" and state is not None and {"stem.0.weight", "down1.1.weight"} <= state.keys():
        return RealtimeNet(full=state["stem.0.weight"].shape[0], half=state["down1.1.weight"].shape[0],
                           quarter=state["down2.1.weight"].shape[0],
                           blocks=len({k.split(".")[1] for k in state if k.startswith("blocks.")}),
                           block_norm=any(k.startswith("blocks.0.body.2.") for k in state))
    if tier == "realtime" and (width is not None or block_norm):
        return RealtimeNet(**({"full": width, "half": 2 * width} if width else {}), block_norm=block_norm)
    try:
        return NETWORKS[tier]()
    except KeyError:
        from ..errors import OptionError

        raise OptionError(f"unknown network tier {tier!r}; expected one of {sorted(NETWORKS)}") from None


def load_pytorch_examples_checkpoint(net: TransformerNet, state: dict[str, torch.Tensor]) -> TransformerNet:
    """Load a pytorch/examples ``.pth``; old ones carry InstanceNorm ``running_mean/var`` keys that
    current PyTorch no longer has (track_running_stats=False), so they are dropped."""
    clean = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var"))}
    net.load_state_dict(clean)
    return net
