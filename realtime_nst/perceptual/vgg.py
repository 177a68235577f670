"""VGG16/VGG19 feature extractors for perceptual losses (Simonyan & Zisserman 2014).

Weights come from a file in torchvision's ``features.{i}`` key layout (safetensors or .pth). The file's
input convention travels with it: Caffe (RGB 0..255 minus the mean, no std; the Oxford weights) or
torchvision (RGB 0..1 normalised by ImageNet mean/std). The module always takes RGB 0..1 and converts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, ModelError, OptionError

# "M" is a pooling layer; numbers are conv output channels. Indices match torchvision's features.
_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
TORCHVISION_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
ENV_WEIGHTS = "RTNST_VGG_WEIGHTS"


@dataclass(frozen=True)
class Convention:
    """How the weights expect their input: ``scale`` 255 or 1, then minus ``mean``, divided by ``std``."""

    name: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CAFFE = Convention("caffe", 255.0, (123.68, 116.779, 103.939), (1.0, 1.0, 1.0))
TORCHVISION = Convention("torchvision", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CONVENTIONS = {"caffe": CAFFE, "torchvision": TORCHVISION}


def layer_names(arch: str) -> list[str]:
    """Names of the ``features`` modules in order: conv1_1, relu1_1, ..., pool1, ..."""
    names, block, idx = [], 1, 1
    for item in _CFG[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


class VGGFeatures(nn.Module):
    """Returns the activations of the requested layers, running only as deep as the deepest one."""

    def __init__(self, arch: str = "vgg16", *, pool: str = "max", convention: Convention = CAFFE,
                 width: int = 64) -> None:
        super().__init__()
        if arch not in _CFG:
            raise OptionError(f"unknown VGG {arch!r}; expected vgg16 or vgg19")
        if pool not in ("max", "avg"):
            raise OptionError(f"pool must be max or avg, got {pool!r}", param="pool")
        layers: list[nn.Module] = []
        in_ch = 3
        for item in _CFG[arch]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            else:
                # ``width`` < 64 scales every layer down: tiny random VGGs for tests.
                out_ch = int(item) * width // 64
                layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = out_ch
        self.arch = arch
        self.features = nn.Sequential(*layers)
        self.names = layer_names(arch)
        self.set_convention(convention)
        self.requires_grad_(False)

    def set_convention(self, convention: Convention) -> None:
        self.convention = convention
        mean = torch.tensor(convention.mean).view(1, 3, 1, 1)
        std = torch.tensor(convention.std).view(1, 3, 1, 1)
        # x*scale - mean, / std folded into one multiply-add.
        self.register_buffer("_mul", convention.scale / std, persistent=False)
        self.register_buffer("_add", -mean / std, persistent=False)

    def check_layers(self, layers: list[str]) -> None:
        bad = [name for name in layers if name not in self.names]
        if bad:
            raise OptionError(f"unknown {self.arch} layer(s) {', '.join(bad)}; valid: conv1_1 ... {self.names[-2]}")

    def min_side_px(self, layers: list[str]) -> int:
        """Each pooling layer before the deepest of ``layers`` halves the image: it must not reach 0 px."""
        deepest = max(self.names.index(n) for n in layers)
        return 2 ** sum(1 for n in self.names[:deepest] if n.startswith("pool"))

    def check_size(self, width: int, height: int, layers: list[str], *, what: str) -> None:
        """InputError when ``what`` (an image of ``width`` x ``height``) is too small for ``layers``."""
        need = self.min_side_px(layers)
        if min(width, height) < need:
            raise InputError(f"{what} is {width}x{height} px: too small or too thin for VGG's "
                             f"{max(layers, key=self.names.index)}, which needs {need} px or more a side")

    def forward(self, rgb01: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        last = max(self.names.index(n) for n in wanted)
        self.check_size(rgb01.shape[-1], rgb01.shape[-2], layers, what="an image")  # never pooled to nothing
        x = rgb01 * self._mul + self._add
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features[: last + 1]):
            x = module(x)
            if self.names[i] in wanted:
                out[self.names[i]] = x
        return out


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise ModelError(f"VGG weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad pickle
        raise ModelError(f"{path} is not a readable .pth/.safetensors weights file ({exc})") from None
    return state, {}


def _convention_from_metadata(meta: dict[str, str]) -> Convention | None:
    if not meta:
        return None
    if meta.get("input_range", "").startswith("0..255"):
        mean = tuple(float(v) for v in meta.get("mean_rgb", "123.68,116.779,103.939").split(","))
        std = tuple(float(v) for v in meta.get("std", "1,1,1").split(","))
        return Convention("caffe", 255.0, mean, std)  # type: ignore[arg-type]
    if meta.get("input_range", "").startswith("0..1"):
        return TORCHVISION
    return None


def load_vgg(
    arch: str = "vgg16",
    *,
    weights: str | os.PathLike | None = None,
    convention: str | None = None,
    pool: str = "max",
) -> VGGFeatures:
    """Build a VGG and load its weights.

    ``weights``: a file, else ``$RTNST_VGG_WEIGHTS``, else torchvision's published weights
    downloaded once into the torch hub cache. ``convention``: "caffe" or "torchvision"; by default
    taken from the file's metadata, else caffe for safetensors from ../shared and torchvision for .pth.
    """
    source = weights or os.environ.get(ENV_WEIGHTS)
    if source:
        path = Path(source)
        state, meta = _read_weights(path)
        if meta.get("arch") and meta["arch"] != arch:
            raise ModelError(f"{path} holds {meta['arch']} weights, but {arch} was asked for")
        found = _convention_from_metadata(meta) or TORCHVISION
    else:
        state = _download_torchvision(arch)
        found = TORCHVISION
    feats = {k[len("features."):]: v.float() for k, v in state.items() if k.startswith("features.")}
    if "0.weight" not in feats:
        raise ModelError(f"{source or arch}: no features.0.weight key; expected torchvision's VGG key layout")
    net = VGGFeatures(arch, pool=pool, width=int(feats["0.weight"].shape[0]))
    try:
        net.features.load_state_dict(feats)
    except RuntimeError as exc:
        raise ModelError(f"VGG weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
    if convention is not None:
        if convention not in CONVENTIONS:
            raise OptionError(f"convention must be caffe or torchvision, got {convention!r}", param="convention")
        found = CONVENTIONS[convention]
    net.set_convention(found)
    return net.eval()


def _download_torchvision(arch: str) -> dict[str, torch.Tensor]:
    url = TORCHVISION_URLS[arch]
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True)
    except Exception as exc:  # URLError, HTTPError, socket errors...
        cache = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
        raise ModelError(
            f"no VGG weights given and the download of {url} failed ({type(exc).__name__}); "
            f"pass --vgg-weights FILE, set {ENV_WEIGHTS}, or put the file at {cache}"
        ) from None
