"""Convert a realtime-net checkpoint from the v3 layout (instance norm inside each low-resolution
residual block) to the current one (no normalisation there), as the starting point of a distillation.

    python tools/fold_instance_norm.py old-realtime.pt new.pt --data PHOTOS [--images 256]
    rtnst train --teacher old-realtime.onnx --data PHOTOS --out new.pt --resume --steps 600 --batch-size 16 --lr 5e-4
    rtnst train --init new.pt --style S.jpg --data PHOTOS --out tuned.pt --steps 50 --lr 5e-4 --style-weight W

Every InstanceNormalization op costs onnxruntime two layout reorders; the v3 net had seven. Each
block norm is replaced by a fixed affine map: the per-channel mean and standard deviation it saw,
averaged over training crops, folded into the 1x1 conv before it (the BatchNorm-folding identity
with dataset statistics in place of per-image ones). The result is close to the old net but not
equal (per-image statistics vary), so a short distillation against the old net (exported to ONNX,
its reflect margin included) closes the gap and teaches the new net the old one's borders. The
distilled net comes out a little softer than the old one (a pixel loss averages texture it cannot
place exactly); a few dozen steps of the VGG loss restore the texture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realtime_nst.training import nets  # noqa: E402
from realtime_nst.training.data import PhotoCrops  # noqa: E402

V3_NORMS = (2, 6)  # body indices of the two InstanceNorm2d in a v3 LowResBlock
V3_TO_V4 = {0: 0, 1: 1, 4: 3, 5: 4}  # v3 body index -> current body index


def v3_layout() -> nets.RealtimeNet:
    """The current RealtimeNet with the v3 block norms put back (random weights)."""
    net = nets.RealtimeNet()
    for block in net.blocks:
        ch = block.body[0].in_channels
        layers = list(block.body)
        block.body = nn.Sequential(layers[0], layers[1], nn.InstanceNorm2d(ch, affine=True), layers[2],
                                   layers[3], layers[4], nn.InstanceNorm2d(ch, affine=True))
    return net


def v3_net(state: dict[str, torch.Tensor]) -> nets.RealtimeNet:
    net = v3_layout()
    net.load_state_dict(state)
    return net.eval()


def norm_statistics(net: nets.RealtimeNet, batches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block norm: the mean over images of the per-image channel mean and standard deviation."""
    norms = [b.body[i] for b in net.blocks for i in V3_NORMS]
    sums = [[0.0, 0.0] for _ in norms]
    n = 0

    def hook(k):
        def f(mod, inp, out):
            x = inp[0]
            sums[k][0] = sums[k][0] + x.mean(dim=(2, 3)).sum(0)
            sums[k][1] = sums[k][1] + (x.var(dim=(2, 3), unbiased=False) + mod.eps).sqrt().sum(0)
        return f

    handles = [m.register_forward_hook(hook(k)) for k, m in enumerate(norms)]
    with torch.no_grad():
        for x in batches:
            nets.forward_with_margin(net, x)
            n += x.shape[0]
    for h in handles:
        h.remove()
    return [(s[0] / n, s[1] / n) for s in sums]


def fold(state: dict[str, torch.Tensor], stats) -> dict[str, torch.Tensor]:
    out = {}
    k = 0
    for key, value in state.items():
        if ".body." not in key:
            out[key] = value
    for b in range(len({key.split(".")[1] for key in state if key.startswith("blocks.")})):
        for norm_idx in V3_NORMS:
            mean, std = stats[k]
            k += 1
            gamma, beta = state[f"blocks.{b}.body.{norm_idx}.weight"], state[f"blocks.{b}.body.{norm_idx}.bias"]
            pw = norm_idx - 1  # the 1x1 conv just before the norm
            scale = gamma / std
            w, bias = state[f"blocks.{b}.body.{pw}.weight"], state[f"blocks.{b}.body.{pw}.bias"]
            out[f"blocks.{b}.body.{V3_TO_V4[pw]}.weight"] = w * scale.view(-1, 1, 1, 1)
            out[f"blocks.{b}.body.{V3_TO_V4[pw]}.bias"] = (bias - mean) * scale + beta
            dw = pw - 1
            out[f"blocks.{b}.body.{V3_TO_V4[dw]}.weight"] = state[f"blocks.{b}.body.{dw}.weight"]
            out[f"blocks.{b}.body.{V3_TO_V4[dw]}.bias"] = state[f"blocks.{b}.body.{dw}.bias"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="v3 realtime checkpoint (.pt)")
    ap.add_argument("out", type=Path, help="current-layout checkpoint to write (step 0, for --resume)")
    ap.add_argument("--data", required=True, help="training photos for the statistics")
    ap.add_argument("--images", type=int, default=256, help="crops to average over (default: 256)")
    ap.add_argument("--size", type=int, default=256, help="crop side (default: 256)")
    args = ap.parse_args(argv)
    saved = torch.load(args.old, map_location="cpu", weights_only=True)
    state = saved.get("model", saved)
    old = v3_net(state)
    data = PhotoCrops(args.data, size_px=args.size, fixed=True)
    count = min(args.images, len(data))
    batches = (torch.stack([data[i] for i in range(j, min(j + 16, count))]) for j in range(0, count, 16))
    new_state = fold(state, norm_statistics(old, batches))
    new = nets.RealtimeNet()
    new.load_state_dict(new_state)
    with torch.no_grad():  # how close the folded net is, before any distillation
        x = torch.stack([data[i] for i in range(min(8, len(data)))])
        diff = (nets.forward_with_margin(new.eval(), x) - nets.forward_with_margin(old, x)).abs().mean()
    print(f"folded {args.old.name}: mean |new - old| = {float(diff) * 255:.2f} / 255 on {len(x)} crops")
    keep = {k: saved[k] for k in ("style", "style_image") if k in saved}
    torch.save({"model": new_state, "tier": "realtime", "step": 0, **keep}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
