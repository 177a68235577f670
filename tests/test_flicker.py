"""The warping-error metric on known cases, and the clip evaluation on synthetic video (no models)."""

from __future__ import annotations

import csv
import cv2
import numpy as np
import pytest

from fakes import gradient_frame, onnx_model, write_clip
from realtime_nst.cli import main
from realtime_nst.errors import InputError
from realtime_nst.evaluation.flicker import (
    MetricFlow,
    evaluate_flicker,
    inside_mask,
    non_occlusion_mask,
    read_video,
    warp,
    warping_error,
    write_csv,
)
from realtime_nst.runtime.smoothing import make_smoother

from test_smoothing import H, W, fake_style, flicker, panning, texture

def const_flow(dx: float, dy: float, h: int = H, w: int = W) -> np.ndarray:
    return np.dstack([np.full((h, w), dx, np.float32), np.full((h, w), dy, np.float32)])


def test_identical_frames_score_zero():
    f = texture(0)[:H, :W].copy()
    assert warping_error(f, f, const_flow(0, 0)) == 0.0
    assert warping_error(f, f, const_flow(0, 0), np.ones((H, W), np.float32)) == 0.0


@pytest.mark.parametrize("shift", [(3, 2), (-2.5, 1.25)])
def test_translation_with_its_true_flow_scores_zero(shift):
    dx, dy = shift
    prev = texture(1)[:H, :W].copy()
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    cur = cv2.warpAffine(prev, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    true_back = const_flow(-dx, -dy)  # cur(x) = prev(x - d)
    assert warping_error(prev, cur, true_back) < 1e-4
    # Without the flow the same pair is far from zero, and a wrong flow is penalised too.
    assert warping_error(prev, cur, const_flow(0, 0)) > 100 * max(warping_error(prev, cur, true_back), 1e-6)
    # Rounding the (sub-pixel) flow of uint8 frames is the only difference left.
    assert warping_error(prev, cur, const_flow(dx, dy)) > 1e-3


def test_warp_and_inside_mask():
    img = np.arange(H * W, dtype=np.float32).reshape(H, W)
    out = warp(img, const_flow(2, 0))
    assert np.array_equal(out[:, :-2], img[:, 2:])
    m = inside_mask(const_flow(2, -1))
    assert m[:, -2:].sum() == 0 and m[:1].sum() == 0 and m[1:, :-2].min() == 1


def test_occlusion_mask_forward_backward():
    back, fwd = const_flow(-3, 1), const_flow(3, -1)
    m = non_occlusion_mask(back, fwd)
    assert m[5:-5, 5:-5].min() == 1  # consistent: visible
    assert m[:, :3].sum() == 0  # came from outside the frame
    bad = non_occlusion_mask(back, const_flow(-3, 1))  # forward disagrees: occluded
    assert bad.sum() == 0


def test_metric_flow_on_a_translation():
    frames = panning(2, step=(3, 2))
    flow, mask = MetricFlow()(frames[0], frames[1])
    inner = mask[10:-10, 10:-10]
    assert inner.mean() > 0.9
    # The crop window moves right and down, so each current pixel came from (x + 3, y + 2).
    assert np.median(np.abs(flow[..., 0][mask > 0] - 3)) < 0.25
    assert np.median(np.abs(flow[..., 1][mask > 0] - 2)) < 0.25
    assert warping_error(frames[0], frames[1], flow, mask) < 0.2 * warping_error(frames[0], frames[1], const_flow(0, 0))


class FakeMeter:
    def __init__(self):
        self.calls = 0

    def measure(self, content, output):
        self.calls += 1
        assert content.shape == output.shape
        return float(np.std(output)), 0.0


def test_evaluate_flicker_ranks_smoothing(tmp_path):
    rng = np.random.default_rng(0)
    frames = panning(16, step=(2, 1))
    smoothers = {k: make_smoother(k) for k in ("none", "ema", "flow")}
    meter = FakeMeter()
    res = evaluate_flicker(lambda f: flicker(fake_style(f), rng), frames, smoothers, meter=meter, style_every=5)
    assert list(res) == ["none", "ema", "flow", "input"]
    for r in res.values():
        assert r.frames == 16 and len(r.e_warp) == 15
        assert [t for t, _ in r.style] == ([4, 9, 14] if r.kind != "input" else [])
    assert meter.calls == 9
    # The input pans cleanly: its own E_warp (the floor) is far below the flickering output's.
    assert res["input"].mean_e_warp < 0.2 * res["none"].mean_e_warp
    # Smoothing strays from the per-frame output where things move (ghosting); no smoothing does not.
    assert res["ema"].mean_ghosting > 0 and res["flow"].mean_ghosting > 0 and res["none"].mean_ghosting is None
    assert res["flow"].mean_e_warp < 0.6 * res["none"].mean_e_warp
    assert res["flow"].ms_per_frame > 0 and res["none"].ms_per_frame == 0
    out = tmp_path / "f.csv"
    write_csv(out, res)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 64 and rows[0]["e_warp"] == "" and rows[4]["style_distance"] != ""


def test_evaluate_flicker_static_unsmoothed_is_zero():
    f = texture(2)[:H, :W].copy()
    res = evaluate_flicker(fake_style, [f] * 4, {"none": None})
    assert res["none"].mean_e_warp == 0.0 and res["none"].mean_style is None


def test_read_video(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_video(tmp_path / "nope.avi")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError):
        read_video(tmp_path / "junk.mp4")
    path = write_clip(tmp_path / "v.mp4", frames=6, audio=None, size=(W, H))
    frames, count = read_video(path, max_frames=4)
    got = list(frames)
    assert count == 4 and len(got) == 4 and got[0].shape == (H, W, 3)
    frames, count = read_video(path)
    assert count == 6 and len(list(frames)) == 6


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from realtime_nst.evaluation.flicker import plot

    res = evaluate_flicker(fake_style, panning(4), {"none": None, "flow": make_smoother("flow")})
    plot(tmp_path / "p.png", res)
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_cli_eval_flicker(tmp_path, identity, capsys):
    clip = write_clip(tmp_path / "c.mp4", frames=8, audio=None)
    rc = main(["-q", "eval", "flicker", "--model", str(identity), str(clip), "--csv", str(tmp_path / "f.csv"),
               "--smooth", "none,flow", "--max-frames", "6"])
    out = capsys.readouterr().out
    assert rc == 0 and "skipping the style distance" in out
    assert "none" in out and "flow" in out and "ema" not in out
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert len(rows) == 18 and {r["smooth"] for r in rows} == {"none", "flow", "input"}
    assert "the input's own E_warp (floor)" in out and "target max(0.5 x none, floor)" in out
    assert "x contrast floor" in out
    assert "ghosting" in out and ("met" in out.split("\nflow")[1] or "missed" in out.split("\nflow")[1])
    # The identity model on a clean synthetic clip barely flickers.
    assert all(float(r["e_warp"]) < 0.05 for r in rows if r["e_warp"])


def test_cli_eval_flicker_with_style(tmp_path, identity, tiny_vgg16_file, photo_dir, capsys):
    pytest.importorskip("matplotlib")
    clip = write_clip(tmp_path / "c.mp4", frames=6, audio=None)
    rc = main(["-q", "eval", "flicker", "--model", str(identity), str(clip), "--style", str(photo_dir.parent / "style.png"),
               "--vgg-weights", str(tiny_vgg16_file), "--style-every", "2", "--plot", str(tmp_path / "p.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "style S" in out and "skipping" not in out
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_cli_eval_flicker_bad_options(tmp_path, identity, capsys):
    clip = write_clip(tmp_path / "c.mp4", frames=4, audio=None)
    assert main(["eval", "flicker", "--model", str(identity), str(clip), "--max-frames", "1"]) == 2
    assert main(["eval", "flicker", "--model", str(identity), str(clip), "--smooth-strength", "2"]) == 2
    assert main(["eval", "flicker", "--model", str(identity), str(tmp_path / "missing.mp4")]) == 2
    with pytest.raises(SystemExit):
        main(["eval", "flicker", "--model", str(identity), str(clip), "--smooth", "none,median"])
    err = capsys.readouterr().err
    assert "--max-frames" in err and "--smooth-strength" in err and "does not exist" in err
    # --csv/--plot never replace a file silently, and are checked before the work starts.
    kept = tmp_path / "kept.csv"
    kept.write_text("mine")
    assert main(["eval", "flicker", "--model", str(identity), str(clip), "--csv", str(kept)]) == 2
    assert main(["eval", "flicker", "--model", str(identity), str(clip), "--plot", str(tmp_path / "nodir" / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "does not exist" in err and kept.read_text() == "mine"
    assert main(["-q", "eval", "flicker", "--model", str(identity), str(clip), "--csv", str(kept), "--overwrite"]) == 0
    assert kept.read_text().startswith("frame,smooth") and not list(tmp_path.glob("*.part"))


def test_cli_eval_quality(tmp_path, identity, tiny_vgg16_file, photo_dir, capsys):
    rc = main(["-q", "eval", "quality", "--model", str(identity), "--content", str(photo_dir / "p1.png"),
               "--style", str(photo_dir.parent / "style.png"), "--vgg-weights", str(tiny_vgg16_file)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and lines[0].split() == ["image", "S", "C", "shift", "edge"]
    assert lines[1].startswith("p1.png") and lines[-1].startswith("mean")
    # The identity model reproduces its input: content distance 0, it moves with its input, no edge line.
    assert float(lines[1].split()[2]) == pytest.approx(0.0, abs=1e-6)
    assert float(lines[1].split()[3]) == pytest.approx(0.0, abs=1e-6)
    assert float(lines[1].split()[4]) == 0.0


def test_cli_eval_quality_leaves_out_images_too_small_to_measure(tmp_path, identity, tiny_vgg16_file, photo_dir,
                                                                caplog, capsys):
    import shutil

    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(photo_dir / "p1.png", folder / "p1.png")
    cv2.imwrite(str(folder / "tiny.png"), np.full((3, 3, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "thin.png"), np.full((16, 4000, 3), 90, np.uint8))  # 512x2 at the metric's size
    args = ["-q", "eval", "quality", "--model", str(identity), "--style", str(photo_dir.parent / "style.png"),
            "--vgg-weights", str(tiny_vgg16_file)]
    assert main(args + ["--content", str(folder)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert [r.split()[0] for r in rows] == ["image", "p1.png", "mean"] and "thin.png, tiny.png" in caplog.text
    assert main(args + ["--content", str(folder / "tiny.png")]) == 2
    assert "too small or too thin" in capsys.readouterr().err
    assert main(args + ["--content", str(folder), "--input-side", "1"]) == 2
    assert "--input-side" in capsys.readouterr().err


def test_edge_line_flags_a_line_painted_along_one_edge():
    from realtime_nst.evaluation.quality import edge_line

    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 3)
    assert edge_line(scene, scene.copy()) == 0.0
    lined = scene.copy()
    lined[:, -2:] = 0  # a dark 2 px line down the right edge
    assert edge_line(scene, lined) > 0.4 * scene[:, -12:-4].mean()  # 2 of the 3 outer columns, all dark
    assert edge_line(scene, np.clip(scene.astype(int) + 40, 0, 255).astype(np.uint8)) < 1.0  # brighter, no line
    assert edge_line(scene[:20, :20], lined[:20, :20]) == 0.0  # too small to tell a band from the edge


def test_shift_sensitivity_flags_a_grid_tied_to_the_pixels():
    from realtime_nst.evaluation.quality import shift_sensitivity

    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 3)

    def grid(frame):  # a 2-px colour checkerboard anchored at the top-left pixel, as per-phase weights paint
        yy, xx = np.indices(frame.shape[:2])
        return np.clip(frame.astype(np.int16) + 60 * (((yy + xx) % 2)[..., None] * 2 - 1), 0, 255).astype(np.uint8)

    assert shift_sensitivity(lambda f: f.copy(), scene) == pytest.approx(0.0, abs=1e-9)
    assert shift_sensitivity(grid, scene) > 0.1  # ~60/255 on the odd shifts
    assert shift_sensitivity(grid, scene[:12, :20]) > 0.1  # smaller than the border: still measured


def test_cli_eval_flicker_model_strength_and_several(tmp_path, capsys):
    pytest.importorskip("onnx")
    model = onnx_model(tmp_path / "m.onnx", metadata={"rtnst.smooth_strength": "0.75"})
    clip = write_clip(tmp_path / "c.mp4", frames=5, audio=None)
    assert main(["-q", "eval", "flicker", "--model", str(model), str(clip), "--smooth", "none,flow"]) == 0
    out = capsys.readouterr().out
    assert "strength 0.75" in out  # the model's measured strength when none is given
    assert main(["-q", "eval", "flicker", "--model", str(model), str(clip), "--smooth-strength", "0.5,0.7",
                 "--csv", str(tmp_path / "f.csv")]) == 0
    out = capsys.readouterr().out
    assert "strength 0.5, 0.7" in out
    for name in ("ema@0.5", "ema@0.7", "flow@0.5", "flow@0.7"):
        assert name in out
    assert {r["smooth"] for r in csv.DictReader((tmp_path / "f.csv").open())} == {
        "none", "ema@0.5", "ema@0.7", "flow@0.5", "flow@0.7", "input"}


def test_cli_eval_flicker_scores_a_finished_output_video(tmp_path, identity, capsys):
    clip = write_clip(tmp_path / "c.mp4", frames=8, audio=None)
    out = tmp_path / "styled.mp4"
    assert main(["-q", "video", str(clip), str(out), "--model", str(identity)]) == 0
    capsys.readouterr()
    assert main(["-q", "eval", "flicker", str(clip), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("file"))
    e_file = float(row.split()[1])
    header = next(line for line in lines if "(floor)" in line)
    floor = float(header.split("(floor) ")[1].split(";")[0])
    assert e_file < 4 * floor + 1e-4  # the identity model's encoded output flickers about as its input
    preview = tmp_path / "preview.mp4"
    assert main(["-q", "video", str(clip), str(preview), "--model", str(identity), "--max-frames", "4",
                 "--output-size", "32x24"]) == 0
    capsys.readouterr()
    assert main(["-q", "eval", "flicker", str(clip), "--output", str(preview)]) == 0
    out = capsys.readouterr().out
    assert "scored the first 4 frames only: the video holds more" in out and ": 4 frames" in out


def test_cli_eval_flicker_refuses_frames_too_small_to_measure(tmp_path, identity, capsys):
    clip = write_clip(tmp_path / "c.mp4", frames=3, size=(8, 6), audio=None)
    assert main(["-q", "eval", "flicker", str(clip), "--model", str(identity)]) == 2
    assert "16 px or more" in capsys.readouterr().err


def test_eval_quality_stylises_at_the_users_size_and_measures_at_512(tmp_path, tiny_vgg16_file):
    pytest.importorskip("torch")
    import cv2

    from realtime_nst.evaluation.quality import evaluate_quality

    photo = tmp_path / "big.png"
    cv2.imwrite(str(photo), gradient_frame(1200, 800))

    class Recorder:
        sizes = []

        def stylize(self, frame):
            self.sizes.append(frame.shape[:2])
            return frame

    rows = evaluate_quality(Recorder(), [photo], photo, vgg_weights=tiny_vgg16_file)
    assert Recorder.sizes[0] == (800, 1200)  # the photo as it is, not a 512 px copy
    assert rows[0].style_distance < 1e-6 and rows[0].content_distance < 1e-6  # identity: output = input
    Recorder.sizes.clear()
    evaluate_quality(Recorder(), [photo], photo, vgg_weights=tiny_vgg16_file, input_max_side_px=600)
    assert Recorder.sizes[0] == (400, 600)


def test_contrast_floor_tells_a_contrasty_steady_output_from_a_flickering_one():
    """On a sub-pixel pan (the flow estimate is then never exact), a deterministic sharpening scores
    several times the input's floor, as a contrasty style does, but near its contrast floor; an
    output that also flickers scores far above it."""
    from realtime_nst.evaluation.flicker import INPUT, contrast_floor, gradient_energy

    assert gradient_energy(np.full((8, 8, 3), 90, np.uint8)) == 0.0
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[:, ::2] = 255  # 7 of 8 horizontal neighbours differ by 1 in each of the 3 channels
    assert gradient_energy(stripes) == pytest.approx(3.0 * 7 / 8, rel=1e-6)

    tex = texture(0).astype(np.float32)
    clip = [np.clip(cv2.warpAffine(tex, np.float32([[1, 0, -0.6 * t], [0, 1, -0.3 * t]]), tex.shape[1::-1],
                                   flags=cv2.INTER_CUBIC)[40:40 + H, 40:40 + W], 0, 255).astype(np.uint8) for t in range(10)]

    def sharpen(f):
        f = f.astype(np.float32)
        blur = cv2.GaussianBlur(f, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
        return np.clip(f + 2.0 * (f - blur), 0, 255).astype(np.uint8)

    rng = np.random.default_rng(0)
    steady = evaluate_flicker(sharpen, clip, {"none": None})
    shaky = evaluate_flicker(lambda f: flicker(sharpen(f), rng, sigma=6.0), clip, {"none": None})
    x_floor = steady["none"].mean_e_warp / steady[INPUT].mean_e_warp
    x_contrast = steady["none"].mean_e_warp / contrast_floor(steady["none"], steady[INPUT])
    assert steady["none"].mean_gradient > 1.5 * steady[INPUT].mean_gradient
    assert x_floor > 2.5 and x_contrast < 2.5
    assert shaky["none"].mean_e_warp / contrast_floor(shaky["none"], shaky[INPUT]) > 2 * x_contrast


def test_contrast_floor_of_a_flat_input_video_is_undefined_not_an_error(tmp_path, identity, capsys):
    from realtime_nst.evaluation.flicker import INPUT, contrast_floor

    res = evaluate_flicker(fake_style, [np.full((H, W, 3), 40, np.uint8)] * 3, {"none": None})
    assert np.isnan(contrast_floor(res["none"], res[INPUT]))
    import av

    clip = tmp_path / "grey.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(4):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="bgr24")))
        out.mux(stream.encode())
    assert main(["-q", "eval", "flicker", "--model", str(identity), str(clip), "--smooth", "none"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    header = next(line for line in out.splitlines() if line.startswith("grey.mp4: "))
    assert "frames" in header and "strength" not in header  # nothing smoothed: no strength to report


def test_a_scene_cut_is_left_out_of_every_mean(tmp_path):
    """Across a cut the forward-backward check passes a few pixels by chance, whose errors dwarf the
    rest of the clip: one cut in 240 frames was most of bunny's E_warp. It scores NaN instead."""
    shot_a, shot_b = panning(5, seed=0), panning(5, seed=3)
    res = evaluate_flicker(fake_style, shot_a + shot_b, {"none": None, "flow": make_smoother("flow")})
    within = evaluate_flicker(fake_style, shot_a, {"none": None})
    for name in ("input", "none", "flow"):
        e = res[name].e_warp
        assert len(e) == 9 and np.isnan(e[4]) and np.isnan(e).sum() == 1, (name, e)
        assert res[name].cuts == 1 and np.isfinite(res[name].mean_e_warp)
    assert res["none"].mean_e_warp == pytest.approx(np.mean(within["none"].e_warp + res["none"].e_warp[5:]))
    write_csv(tmp_path / "e.csv", res)
    rows = [r for r in csv.DictReader(open(tmp_path / "e.csv")) if r["smooth"] == "none"]
    assert [r["e_warp"] == "" for r in rows] == [True, False, False, False, False, True, False, False, False, False]
