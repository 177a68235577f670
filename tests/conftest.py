"""Shared fixtures: tiny random VGG weight files, a folder of small synthetic photos and an identity
ONNX model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import onnx_model

ASSETS = Path("/work/shared/assets")


def _tiny_vgg(folder: Path, arch: str) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from realtime_nst.perceptual.vgg import VGGFeatures

    torch.manual_seed(0)
    net = VGGFeatures(arch, width=8)
    state = {f"features.{k}": v.contiguous() for k, v in net.features.state_dict().items()}
    path = folder / f"tiny_{arch}.safetensors"
    save_file(state, str(path), metadata={"input_range": "0..255", "arch": arch})
    return path


@pytest.fixture
def identity(tmp_path) -> Path:
    """An ONNX model whose output is its input: the runtime's plumbing without a net."""
    pytest.importorskip("onnx")
    return onnx_model(tmp_path / "identity.onnx")


@pytest.fixture(scope="session")
def tiny_vgg16_file(tmp_path_factory) -> Path:
    """A VGG16 with 1/8 of the channels and random weights, in the shared weights' file layout."""
    return _tiny_vgg(tmp_path_factory.mktemp("vgg"), "vgg16")


@pytest.fixture(scope="session")
def tiny_vgg19_file(tmp_path_factory) -> Path:
    return _tiny_vgg(tmp_path_factory.mktemp("vgg"), "vgg19")


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Eight small photo-like images of different sizes, some in a subfolder, plus a style image
    beside (not inside) the folder at ``photo_dir.parent / "style.png"``."""
    import cv2

    root = tmp_path_factory.mktemp("photos")
    folder = root / "train"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        h, w = 40 + 7 * i, 64 - 3 * i
        img = cv2.resize((rng.random((5, 6, 3)) * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / ("sub" if i % 3 == 0 else "") / f"p{i}.{'png' if i % 2 else 'jpg'}"), img)
    style = np.zeros((48, 48, 3), np.uint8)
    style[::6] = (30, 120, 250)
    style[:, ::5] = (250, 200, 20)
    cv2.imwrite(str(root / "style.png"), style)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests run tiny tensors: one intra-op thread is as fast, and far faster than two when another
    process (a training run, a second test) competes for the cores."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def realtime_export(tmp_path_factory, photo_dir):
    """A random-weight realtime net saved as a training checkpoint, exported once through
    `rtnst export --fp16 --int8 --calib`: (folder, stdout of the command)."""
    import contextlib
    import io

    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from realtime_nst import cli
    from realtime_nst.training import nets

    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    net = nets.build("realtime")
    torch.save({"model": net.state_dict(), "tier": "realtime", "style": "mosaic", "style_image": "mosaic.jpg",
                "step": 123, "config": {"steps": 4000, "lr": 0.002, "style": "/x/mosaic.jpg"}}, folder / "mosaic.pt")
    saved, cli.COMMANDS = cli.COMMANDS, ["export"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(["-q", "export", str(folder / "mosaic.pt"), str(folder / "mosaic-realtime.onnx"),
                             "--fp16", "--int8", "--calib", str(photo_dir)])
    finally:
        cli.COMMANDS = saved
    assert code == 0
    return folder, out.getvalue()
