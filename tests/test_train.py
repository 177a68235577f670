"""Training: exact resume, epochs, checkpoints/previews/plot, options, and DDP under torchrun (gloo)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from realtime_nst.training.data import PhotoCrops, ResumableSampler  # noqa: E402
from realtime_nst.errors import InputError, ModelError, OptionError, OutputError  # noqa: E402
from realtime_nst.training.config import TrainConfig
from realtime_nst.training.train import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def tiny_config(photo_dir: Path, vgg: Path, out: Path, **kw) -> TrainConfig:
    base = dict(style=str(photo_dir.parent / "style.png"), data=str(photo_dir), out=str(out), tier="realtime",
                image_size_px=32, style_size_px=48, batch_size=2, steps=6, lr=1e-2, checkpoint_every=3,
                preview_every=3, workers=0, vgg_weights=str(vgg), seed=7)  # a worker process costs ~2 s to start
    base.update(kw)
    return TrainConfig(**base)


def test_resume_continues_exactly(photo_dir, tiny_vgg16_file, tmp_path):
    # 8 photos / batch 2 = 4 steps an epoch: the resumed half crosses an epoch boundary.
    whole = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "whole.pt"))
    whole.fit(progress=False)
    Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "split.pt", steps=3)).fit(progress=False, plot=False)
    changed = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "split.pt", lr=1e-3, temporal_weight=1.0),
                      resume=True)
    assert changed.opt.param_groups[0]["lr"] == 1e-3  # --resume --lr changes the rate
    changed.history.append(changed.history[-1] + [0.5])  # a step with the added term
    assert changed.plot_losses().stat().st_size > 1000  # rows from before the change are left out
    resumed = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "split.pt"), resume=True)
    assert resumed.step == 3 and resumed.opt.param_groups[0]["lr"] == 1e-2
    resumed.fit(progress=False, plot=False)

    a, b = torch.tensor(whole.history), torch.tensor(resumed.history)
    assert a.shape == (6, 6) and a[:, 0].tolist() == [1, 2, 3, 4, 5, 6]  # step, total, content, style, tv, border
    assert whole.terms[-1] == "border" and float(a[:, 5].abs().max()) == 0  # 32 px crops: too small for it
    torch.testing.assert_close(b, a, rtol=1e-5, atol=0)
    for (k, va), vb in zip(whole.net.state_dict().items(), resumed.net.state_dict().values()):
        torch.testing.assert_close(vb, va, rtol=1e-5, atol=1e-7, msg=k)

    state = torch.load(tmp_path / "split.pt", weights_only=True)
    assert {"model", "optimizer", "step", "rng", "history", "tier", "style", "style_image", "config"} <= set(state)
    assert state["step"] == 6 and state["style"] == "style" and state["config"]["steps"] == 6
    assert sorted(p.name for p in (tmp_path / "whole.previews").iterdir()) == ["step_000003.jpg", "step_000006.jpg"]
    assert (tmp_path / "whole.loss.png").stat().st_size > 1000


def test_epochs_and_quality_tier(photo_dir, tiny_vgg16_file, tmp_path):
    cfg = tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "q.pt", tier="quality", epochs=1, batch_size=4,
                      workers=0, image_size_px=16, checkpoint_every=100, preview_every=100)
    t = Trainer(cfg)
    assert t.total_steps == 2
    t.fit(progress=False, plot=False)
    assert torch.load(tmp_path / "q.pt", weights_only=True)["step"] == 2
    with pytest.raises(OutputError, match="resume=True"):
        Trainer(cfg)
    with pytest.raises(OptionError, match="holds a quality net"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "q.pt"), resume=True)


@pytest.mark.parametrize("bad, match", [(dict(batch_size=0), "batch_size"), (dict(epochs=0), "epochs"),
                                        (dict(amp="fp8"), "amp must"), (dict(lr=0), "lr must"),
                                        (dict(tier="fast"), "tier must"), (dict(image_size_px=22), "multiple of 4"),
                                        (dict(tier="quality", image_size_px=30), "multiple of 4")])
def test_bad_options(photo_dir, tiny_vgg16_file, tmp_path, bad, match):
    with pytest.raises(OptionError, match=match):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "x.pt", **bad).check()


def test_sampler_splits_ranks_equally_and_resumes_mid_epoch():
    ranks = [ResumableSampler(11, seed=3, rank=r, world=2) for r in range(2)]
    orders = [s.order() for s in ranks]
    assert len(orders[0]) == len(orders[1]) == 5 and not set(orders[0]) & set(orders[1])
    ranks[0].start = 2
    assert list(ranks[0]) == orders[0][2:] and len(ranks[0]) == 3
    ranks[0].epoch = 1
    assert ranks[0].order() != orders[0]


def test_crops_are_reproducible(photo_dir):
    data = PhotoCrops(photo_dir, size_px=24, seed=1)
    assert len(data) == 8  # found recursively, .jpg and .png
    x = data[3]
    assert x.shape == (3, 24, 24) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, data[3])
    data.epoch = 1
    assert not torch.equal(x, data[3])


def test_cli_resume_uses_saved_settings(photo_dir, tiny_vgg16_file, tmp_path, monkeypatch, capsys):
    from realtime_nst import cli

    monkeypatch.setattr(cli, "COMMANDS", ["train"])
    out = tmp_path / "c.pt"
    args = ["-q", "train", "--style", str(photo_dir.parent / "style.png"), "--data", str(photo_dir), "--out", str(out),
            "--vgg-weights", str(tiny_vgg16_file), "--image-size", "16", "--style-size", "32", "--batch-size", "2",
            "--steps", "1", "--workers", "1", "--style-layers", "relu1_2,relu2_2", "--tv-weight", "0.5"]  # a started worker
    assert cli.main(args) == 0
    assert cli.main(["-q", "train", "--out", str(out), "--resume", "--steps", "2"]) == 0
    state = torch.load(out, weights_only=True)
    assert state["step"] == 2 and state["config"]["style_layers"] == ["relu1_2", "relu2_2"]
    assert state["config"]["tv_weight"] == 0.5 and state["config"]["image_size_px"] == 16
    assert cli.main(["-q", "train", "--out", str(tmp_path / "none.pt")]) == 2
    assert "--style and --data required" in capsys.readouterr().err


def test_ddp_two_processes_gloo(photo_dir, tiny_vgg16_file, tmp_path):
    """`torchrun --nproc_per_node=2 -m realtime_nst train ...` on CPU: gloo, each rank its own share."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from realtime_nst import cli
        cli.COMMANDS = ["train"]  # only the command under test, whatever else is being written
        if __name__ == "__main__":  # the decoding worker imports this script again
            sys.exit(cli.main(sys.argv[1:]))
    """))
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           "-q", "train", "--style", str(photo_dir.parent / "style.png"), "--data", str(photo_dir), "--out", str(out),
           "--vgg-weights", str(tiny_vgg16_file), "--image-size", "16", "--style-size", "32", "--batch-size", "2",
           "--epochs", "1", "--workers", "1", "--checkpoint-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(out, weights_only=True)
    # 8 photos, 2 processes x batch 2: one epoch is 2 steps.
    assert state["step"] == 2 and len(state["history"]) == 2
    assert all(torch.isfinite(torch.tensor(state["history"])).flatten())
    assert not any(k.startswith("module.") for k in state["model"])


def test_sigterm_to_the_whole_process_group_still_writes_the_checkpoint(photo_dir, tiny_vgg16_file, tmp_path):
    """A batch system or `docker stop` signals every process of the job, decoding workers too."""
    import signal

    out = tmp_path / "g.pt"
    cmd = [sys.executable, "-m", "realtime_nst", "train", "--style", str(photo_dir.parent / "style.png"),
           "--data", str(photo_dir), "--out", str(out), "--vgg-weights", str(tiny_vgg16_file), "--image-size", "16",
           "--style-size", "32", "--batch-size", "2", "--steps", "100000", "--workers", "1", "--checkpoint-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    state = torch.load(out, weights_only=True)
    assert state["step"] == len(state["history"]) >= 1


def test_fp16_autocast_saves_its_grad_scaler(photo_dir, tiny_vgg16_file, tmp_path):
    # bf16 works the same way but its convolutions are very slow on CPUs without AVX-512 BF16.
    cfg = tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "h.pt", amp="fp16", steps=2, workers=0,
                      image_size_px=16)
    t = Trainer(cfg)
    assert t.amp_dtype == torch.float16 and t.scaler.is_enabled()
    t.fit(progress=False, plot=False)
    state = torch.load(tmp_path / "h.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0 and len(state["history"]) == 2
    assert Trainer(cfg, resume=True).scaler.get_scale() == state["scaler"]["scale"]


def test_sigterm_checkpoints_and_resume_finishes(photo_dir, tiny_vgg16_file, tmp_path, monkeypatch):
    import signal

    t = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "s.pt", workers=0))
    real = Trainer.losses
    monkeypatch.setattr(Trainer, "losses", lambda self, x, index=None: (os.kill(os.getpid(), signal.SIGTERM), real(self, x, index))[1])
    t.fit(progress=False, plot=False)
    assert t.interrupted and t.step == 1
    assert torch.load(tmp_path / "s.pt", weights_only=True)["step"] == 1
    monkeypatch.setattr(Trainer, "losses", real)
    again = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "s.pt", workers=0), resume=True)
    again.fit(progress=False, plot=False)
    assert not again.interrupted and again.step == 6


def test_fixed_crops_ignore_the_epoch(photo_dir):
    data = PhotoCrops(photo_dir, size_px=24, seed=1, fixed=True)
    x = data[2]
    data.epoch = 5
    assert torch.equal(x, data[2])


def test_photo_side_crops_a_part_of_the_scene_at_that_scale(photo_dir, tiny_vgg16_file, tmp_path):
    import cv2

    from realtime_nst.training.distill import caches_of_init, targets_key

    whole = PhotoCrops(photo_dir, size_px=16, fixed=True)[0]
    closer = PhotoCrops(photo_dir, size_px=16, photo_side_px=48, fixed=True)[0]
    photo = cv2.cvtColor(cv2.imread(str(PhotoCrops(photo_dir, size_px=16).paths[0])), cv2.COLOR_BGR2RGB)
    h, w = photo.shape[:2]
    scaled = cv2.resize(photo, (round(w * 48 / min(h, w)), round(h * 48 / min(h, w))), interpolation=cv2.INTER_CUBIC)
    y, x = (scaled.shape[0] - 16) // 2, (scaled.shape[1] - 16) // 2
    want = torch.from_numpy(scaled[y:y + 16, x:x + 16].copy()).permute(2, 0, 1).float() / 255
    assert torch.allclose(closer, want, atol=1 / 255) and not torch.allclose(closer, whole, atol=0.05)
    with pytest.raises(OptionError, match="photo_side_px"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "x.pt", photo_side_px=16).check()  # below the crop side
    # A teacher cache is a function of the teacher, the photos and their scale: its key says so.
    torch.save({"model": {}}, tmp_path / "t.pt")
    torch.save({"model": {"x": torch.ones(1)}}, tmp_path / "u.pt")
    key = targets_key(tmp_path / "t.pt", PhotoCrops(photo_dir, size_px=16, fixed=True))
    assert key == targets_key(tmp_path / "t.pt", PhotoCrops(photo_dir, size_px=16, fixed=True))
    assert key != targets_key(tmp_path / "t.pt", PhotoCrops(photo_dir, size_px=16, photo_side_px=48, fixed=True))
    assert key != targets_key(tmp_path / "u.pt", PhotoCrops(photo_dir, size_px=16, fixed=True))
    # Candidates from earlier stages: through a stage without a teacher (VGG only), and a loop ends.
    torch.save({"config": {}}, tmp_path / "a.pt")
    (tmp_path / "a.teacher.npy").write_bytes(b"")
    torch.save({"config": {"init": str(tmp_path / "a.pt")}}, tmp_path / "v.pt")
    assert caches_of_init(str(tmp_path / "v.pt")) == [tmp_path / "a.teacher.npy"]
    torch.save({"config": {"init": str(tmp_path / "w.pt")}}, tmp_path / "w.pt")
    assert caches_of_init(str(tmp_path / "w.pt")) == []


def test_distill_from_a_teacher_needs_no_vgg(photo_dir, tmp_path, monkeypatch):
    """--teacher: the student learns the teacher's cached outputs; no VGG weights anywhere."""
    from realtime_nst import cli
    from realtime_nst.training import nets
    from realtime_nst.training.distill import cache_path

    monkeypatch.delenv("RTNST_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(cli, "COMMANDS", ["train"])
    torch.manual_seed(1)
    teacher = nets.build("quality")
    torch.save({"model": teacher.state_dict(), "tier": "quality", "style": "wave", "style_image": "wave.jpg"},
               tmp_path / "teacher.pt")
    out = tmp_path / "student.pt"
    args = ["-q", "train", "--teacher", str(tmp_path / "teacher.pt"), "--data", str(photo_dir), "--out", str(out),
            "--image-size", "32", "--batch-size", "4", "--steps", "40", "--lr", "0.01", "--workers", "0",
            "--checkpoint-every", "20", "--preview-every", "40"]
    assert cli.main(args) == 0
    state = torch.load(out, weights_only=True)
    assert state["tier"] == "realtime" and state["style"] == "wave" and state["style_image"] == "wave.jpg"
    h = torch.tensor(state["history"])  # step, total, pixel, edges
    assert h.shape == (40, 4)
    assert h[-5:, 2].mean() < 0.5 * h[:5, 2].mean()  # it learns the teacher's outputs
    cache = np.load(cache_path(out))
    assert cache.shape == (8, 32, 32, 3) and cache.dtype == np.uint8
    # The cache holds exactly what the teacher paints for the fixed crops.
    x = PhotoCrops(photo_dir, size_px=32, fixed=True)[3]
    with torch.no_grad():
        want = (teacher.eval()(x[None] * 255)[0].clamp(0, 255)).round().byte().permute(1, 2, 0).numpy()
    assert np.abs(cache[3].astype(int) - want.astype(int)).max() <= 1
    stamp = cache_path(out).stat().st_mtime_ns
    assert cli.main(["-q", "train", "--out", str(out), "--resume", "--steps", "44"]) == 0
    assert torch.load(out, weights_only=True)["step"] == 44
    assert cache_path(out).stat().st_mtime_ns == stamp  # resumed from the cache, not recomputed


def test_distill_cli_needs_teacher_or_style(photo_dir, tmp_path, monkeypatch, capsys):
    from realtime_nst import cli

    monkeypatch.setattr(cli, "COMMANDS", ["train"])
    assert cli.main(["-q", "train", "--data", str(photo_dir), "--out", str(tmp_path / "x.pt")]) == 2
    assert "--style required" in capsys.readouterr().err
    assert cli.main(["-q", "train", "--teacher", str(tmp_path / "nope.pt"), "--data", str(photo_dir),
                     "--out", str(tmp_path / "x.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_init_starts_from_given_weights(photo_dir, tiny_vgg16_file, tmp_path):
    first = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "a.pt", steps=2))
    first.fit(progress=False, plot=False)
    tuned = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "b.pt", steps=2, init=str(tmp_path / "a.pt")))
    assert tuned.step == 0
    for k, v in first.net.state_dict().items():
        assert torch.equal(tuned.net.state_dict()[k], v), k
    with pytest.raises(OptionError, match="holds a realtime net"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "c.pt", tier="quality", init=str(tmp_path / "a.pt")))


def test_width_trains_a_wider_realtime_net_and_init_keeps_it(photo_dir, tiny_vgg16_file, tmp_path):
    from realtime_nst.training import cost, nets

    wide = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "w.pt", steps=1, width=16))
    wide.fit(progress=False, plot=False)
    assert wide.net.stem[0].out_channels == 16 and wide.net.down1[1].out_channels == 32
    assert cost.macs_per_pixel(wide.net) > 1.4 * cost.macs_per_pixel(nets.RealtimeNet())
    tuned = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "t.pt", steps=1, init=str(tmp_path / "w.pt")))
    for k, v in wide.net.state_dict().items():  # no --width: the weights' own
        assert torch.equal(tuned.net.state_dict()[k], v), k
    assert tuned.opt.param_groups[0]["params"][0] is tuned.net.stem[0].weight  # the optimizer trains the net in use
    with pytest.raises(OptionError, match="width 8 asked, but .*w.pt holds a realtime net of another width"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "n.pt", width=8, init=str(tmp_path / "w.pt")))
    with pytest.raises(OptionError, match="the quality net has fixed ones"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "q.pt", tier="quality", width=16).check()
    with pytest.raises(OptionError, match="width must be positive, got 0"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "z.pt", width=0).check()


def test_block_norm_trains_exports_and_comes_back_from_the_export(photo_dir, tiny_vgg16_file, tmp_path):
    from torch import nn

    from realtime_nst.training.export import export, load_checkpoint

    normed = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "n.pt", steps=1, workers=0, block_norm=True))
    normed.fit(progress=False, plot=False)
    assert all(isinstance(b.body[2], nn.InstanceNorm2d) for b in normed.net.blocks)
    assert export(tmp_path / "n.pt", tmp_path / "n.onnx").parity_db  # checked against PyTorch
    back, _ = load_checkpoint(tmp_path / "n.onnx")  # no flag needed: the weights say it
    for k, v in normed.net.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=1e-5, msg=k)
    # A stage started from it trains the same net, and its record (checkpoint, metadata) says so.
    later = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "m.pt", steps=1, workers=0, init=str(tmp_path / "n.pt")))
    later.fit(progress=False, plot=False)
    assert isinstance(later.net.blocks[0].body[2], nn.InstanceNorm2d)
    assert torch.load(tmp_path / "m.pt", weights_only=True)["config"]["block_norm"] is True
    plain = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "p.pt", steps=1, workers=0))
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in plain.net.blocks.modules())
    plain.fit(progress=False, plot=False)
    with pytest.raises(OptionError, match="block_norm asked, but .*p.pt holds a realtime net without norms"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "x.pt", block_norm=True, init=str(tmp_path / "p.pt")))
    with pytest.raises(OptionError, match="the quality net has fixed norms"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "q.pt", tier="quality", block_norm=True).check()


def test_init_from_an_exported_onnx_model(photo_dir, tiny_vgg16_file, tmp_path):
    """A shipped or exported model can be fine-tuned: its ONNX initializers carry the weights."""
    from realtime_nst.errors import ModelError
    from realtime_nst.training.export import export, load_checkpoint

    first = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "a.pt", steps=2))
    first.fit(progress=False, plot=False)
    export(tmp_path / "a.pt", tmp_path / "a.onnx")
    tuned = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "b.pt", steps=2, init=str(tmp_path / "a.onnx")))
    for k, v in first.net.state_dict().items():  # the tied upsampling weights come back from phase kernels
        torch.testing.assert_close(tuned.net.state_dict()[k], v, rtol=0, atol=1e-5, msg=k)
    from realtime_nst.training import nets

    torch.save({"model": nets.RealtimeNetV1().state_dict(), "tier": "realtime", "style": "old"}, tmp_path / "old.pt")
    export(tmp_path / "old.pt", tmp_path / "old.onnx")
    net, info = load_checkpoint(tmp_path / "old.onnx")
    assert info["tier"] == "realtime" and info["style"] == "old"
    assert type(net).__name__ == "RealtimeNetV1"  # made before the tied upsampling: loads as what it is
    tuned = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "v1.pt", steps=1, workers=0,
                                init=str(tmp_path / "old.onnx")))
    assert type(tuned.net).__name__ == "RealtimeNetV1"  # fine-tuned as that version
    tuned.fit(progress=False, plot=False)
    resumed = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "v1.pt", steps=2, workers=0), resume=True)
    assert type(resumed.net).__name__ == "RealtimeNetV1" and resumed.step == 1
    foreign = tmp_path / "foreign.onnx"
    import onnx

    m = onnx.load(str(tmp_path / "a.onnx"))
    del m.metadata_props[:]
    onnx.save(m, str(foreign))
    with pytest.raises(ModelError, match="not exported by rtnst"):
        load_checkpoint(foreign)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_temporal_loss_term_is_trained(photo_dir, tmp_path, monkeypatch, norm):
    """--temporal-weight adds a 'temporal' term (distillation here: no VGG) that the run lowers."""
    from realtime_nst import cli
    from realtime_nst.training import nets

    monkeypatch.setattr(cli, "COMMANDS", ["train"])
    torch.manual_seed(1)
    torch.save({"model": nets.build("realtime").state_dict(), "tier": "realtime", "style": "s"}, tmp_path / "t.pt")
    out = tmp_path / "student.pt"
    assert cli.main(["-q", "train", "--teacher", str(tmp_path / "t.pt"), "--data", str(photo_dir), "--out", str(out),
                     "--image-size", "32", "--batch-size", "4", "--steps", "30", "--lr", "0.01", "--workers", "0",
                     "--temporal-weight", "5", "--temporal-norm", norm, "--checkpoint-every", "30",
                     "--preview-every", "30"]) == 0
    state = torch.load(out, weights_only=True)
    h = torch.tensor(state["history"])  # step, total, pixel, edges, temporal
    assert h.shape == (30, 5) and state["config"]["temporal_weight"] == 5 and state["config"]["temporal_norm"] == norm
    assert torch.allclose(h[:, 1], h[:, 2] + h[:, 3] + 5 * h[:, 4], rtol=1e-4)
    assert h[-5:, 4].mean() < h[:5, 4].mean()


def test_teacher_and_style_anchor_the_vgg_loss(photo_dir, tiny_vgg16_file, tmp_path):
    """--teacher with --style: the VGG terms plus the weighted distance to the teacher's cached outputs,
    which the run lowers; the style named is the style image's, not the teacher's."""
    from realtime_nst.training import nets
    from realtime_nst.training.distill import cache_path

    torch.manual_seed(3)
    torch.save({"model": nets.build("quality").state_dict(), "tier": "quality", "style": "wave"}, tmp_path / "t.pt")
    teacher = str(tmp_path / "t.pt")
    Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "d.pt", style=None, teacher=teacher, steps=2,
                        workers=0)).fit(progress=False, plot=False)
    cfg = tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "a.pt", teacher=teacher, teacher_weight=50.0, init=str(tmp_path / "d.pt"),
                      border_weight=0.0, steps=24, checkpoint_every=24, preview_every=24, workers=0)
    t = Trainer(cfg)
    assert t.terms == ["total", "content", "style", "tv", "teacher"]
    # Distilled from the same teacher on the same photos: the start's cached targets are reused.
    assert not cache_path(tmp_path / "a.pt").exists()
    np.testing.assert_array_equal(t.targets, np.load(cache_path(tmp_path / "d.pt")))
    t.fit(progress=False, plot=False)
    h = torch.tensor(t.history)  # step, total, content, style, tv, teacher
    torch.testing.assert_close(h[:, 1], h[:, 2] + 10 * h[:, 3] + 0.01 * h[:, 4] + 50 * h[:, 5])
    assert h[-4:, 5].mean() < 0.7 * h[:4, 5].mean()
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    assert state["style"] == "style" and state["config"]["teacher_weight"] == 50
    # Another teacher from the same start, or restarted under the same name: the cached targets are
    # not its own, so it makes them.
    before = t.targets
    for _ in range(2):
        torch.save({"model": nets.build("quality").state_dict(), "tier": "quality", "style": "wave"}, tmp_path / "t.pt")
        other = Trainer(dataclasses.replace(cfg, out=str(tmp_path / "c.pt")))
        assert cache_path(tmp_path / "c.pt").exists() and not np.array_equal(other.targets, before)
        before = np.array(other.targets)
    with pytest.raises(OptionError, match="teacher_weight"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "b.pt", teacher_weight=-1.0).check()
    with pytest.raises(OptionError, match="temporal_norm must be l1 or l2, got 'l3'"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "b.pt", temporal_norm="l3").check()


def test_border_term_off_for_quality_and_old_checkpoints(photo_dir, tiny_vgg16_file, tmp_path):
    from realtime_nst.training.config import REALTIME_BORDER_WEIGHT, saved_config

    t = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "big.pt", image_size_px=64, steps=2, workers=0))
    t.fit(progress=False, plot=False)
    h = torch.tensor(t.history)  # step, total, content, style, tv, border: the term is on, and in the total
    assert float(h[:, 5].min()) > 0
    torch.testing.assert_close(h[:, 1], h[:, 2] + 10 * h[:, 3] + 0.01 * h[:, 4] + REALTIME_BORDER_WEIGHT * h[:, 5])
    assert tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "d.pt", teacher="t.pt", style=None).border_weight_used == 0
    assert tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "a.pt", teacher="t.pt").border_weight_used == REALTIME_BORDER_WEIGHT
    assert tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "q.pt", tier="quality").border_weight_used == 0
    assert tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "r.pt", border_weight=0.0).border_weight_used == 0
    # A checkpoint trained before the term existed continues without it.
    torch.save({"config": {"style_weight": 5.0}, "model": {}}, tmp_path / "old.pt")
    assert saved_config(tmp_path / "old.pt")["border_weight"] == 0.0
    with pytest.raises(OptionError, match="border_weight"):
        tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "b.pt", border_weight=-1.0).check()


def test_border_distance_sees_a_painted_frame():
    from realtime_nst.training.objective import border_distance

    x = torch.rand(2, 3, 48, 48)
    pointwise = lambda t: 0.5 * t + 0.1  # noqa: E731  (no idea where the border is)
    framed = lambda t: torch.nn.functional.conv2d(t, torch.full((3, 1, 3, 3), 1 / 9), padding=1, groups=3)  # noqa: E731
    for f, zero in ((pointwise, True), (framed, False)):
        d = float(border_distance(f(x[..., 8:-8, 8:-8]), f(x), 8))
        assert (d < 1e-7) == zero, d


@pytest.mark.parametrize("damage", ["text", "truncated", "list", "bad step", "bad optimizer"])
def test_resuming_a_damaged_checkpoint_is_one_error_naming_it(photo_dir, tiny_vgg16_file, tmp_path, damage):
    out = tmp_path / "run.pt"
    Trainer(tiny_config(photo_dir, tiny_vgg16_file, out, steps=1)).fit(progress=False, plot=False)
    state = torch.load(out, weights_only=True)
    if damage == "text":
        out.write_text("not a checkpoint")
    elif damage == "truncated":
        out.write_bytes(out.read_bytes()[:2000])
    elif damage == "list":
        torch.save([1, 2, 3], out)
    else:
        state.update({"step": "abc"} if damage == "bad step" else {"optimizer": {"state": {}}})
        torch.save(state, out)
    with pytest.raises(ModelError, match="run.pt"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, out, steps=2), resume=True)


def test_the_output_folder_is_made_and_one_that_cannot_be_is_refused_before_training(photo_dir, tiny_vgg16_file, tmp_path):
    Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "runs" / "run.pt"))  # its folder is made, as export's
    assert (tmp_path / "runs").is_dir()
    (tmp_path / "file").write_text("a file where the folder would go")
    with pytest.raises(OutputError, match="is not a folder"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "file" / "run.pt"))
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "folder.pt"), overwrite=True)


def test_a_style_image_too_small_for_vgg_and_a_tiny_preview(photo_dir, tiny_vgg16_file, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "dot.png"), np.full((1, 1, 3), 200, np.uint8))
    with pytest.raises(InputError, match="style image"):
        Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "a.pt", style=str(tmp_path / "dot.png")))
    cv2.imwrite(str(tmp_path / "thin.png"), np.full((2, 5, 3), 200, np.uint8))
    run = Trainer(tiny_config(photo_dir, tiny_vgg16_file, tmp_path / "b.pt", steps=1, preview_every=1,
                              preview_image=str(tmp_path / "thin.png")))
    run.fit(progress=False, plot=False)
    assert [p.name for p in (tmp_path / "b.previews").iterdir()] == ["step_000001.jpg"]
