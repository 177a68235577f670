import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from fakes import gradient_frame, onnx_model, write_clip
from realtime_nst.cli import COMMANDS, main


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_unknown_option_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "realtime_nst", "video", "a.mp4", "b.mp4", "--bogus"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--bogus" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name, said", [
    ("cut.gif", "looks like a GIF image, but OpenCV cannot decode it"),  # OpenCV logs "can't read header"
    ("cut.png", "is a truncated PNG image"),  # libpng logs "PNG input buffer is incomplete"
    ("cut.webp", "looks like a WebP image, but OpenCV cannot decode it"),
    ("notes.jpg", "is not an image OpenCV can decode (expected one of "),
    ("clip.mp4", "is a video, not a still image: rtnst video stylises it"),
    # a raw file's first picture is often a small preview, which OpenCV would read as the photo
    ("DSC_0001.NEF", "is a camera RAW file, which rtnst does not develop: export it as JPEG, PNG or TIFF"),
])
def test_undecodable_image_is_our_one_line_only(tmp_path, identity, name, said):
    bad = tmp_path / name
    whole = cv2.imencode(".png", np.full((64, 64, 3), 90, np.uint8))[1].tobytes()
    bad.write_bytes({"cut.gif": b"GIF89a", "cut.png": whole[: len(whole) // 2], "notes.jpg": b"a text",
                    "cut.webp": b"RIFF\x10\x00\x00\x00WEBPVP8 cut",
                    "clip.mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(64),
                    "DSC_0001.NEF": cv2.imencode(".tiff", np.full((12, 16, 3), 90, np.uint8))[1].tobytes()}[name])
    proc = subprocess.run([sys.executable, "-m", "realtime_nst", "image", str(bad), str(tmp_path / "o.png"),
                           "--model", str(identity), "-q"], capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"rtnst: error: {bad} {said}"), proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_image_file_to_file_odd_size(tmp_path, identity):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gradient_frame(37, 21))
    out = tmp_path / "out.png"
    assert main(["-q", "image", str(src), str(out), "--model", str(identity)]) == 0
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(src)))


def test_image_says_when_the_models_own_size_set_how_large_it_painted(tmp_path, caplog):
    model = onnx_model(tmp_path / "m.onnx", metadata={"rtnst.max_side_px": "32"})
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gradient_frame(64, 48))
    with caplog.at_level("INFO", logger="rtnst"):
        assert main(["image", str(src), str(tmp_path / "a.png"), "--model", str(model)]) == 0
        assert main(["image", str(src), str(tmp_path / "b.png"), "--model", str(model), "--max-side", "64"]) == 0
    notes = [r.getMessage() for r in caplog.records if "the size the model is made for" in r.getMessage()]
    assert notes == ["rtnst: stylised at 32x24, the size the model is made for (--max-side PX for another)"]
    assert cv2.imread(str(tmp_path / "a.png")).shape == (48, 64, 3)  # the photo's size


def test_video_says_the_size_it_stylises_at_and_how_it_smooths(tmp_path, caplog):
    model = onnx_model(tmp_path / "m.onnx", metadata={"rtnst.max_side_px": "32", "rtnst.smooth_strength": "0.7"})
    clip = write_clip(tmp_path / "in.mp4", frames=3, size=(64, 48))
    with caplog.at_level("INFO", logger="rtnst"):
        assert main(["video", str(clip), str(tmp_path / "a.mp4"), "--model", str(model)]) == 0
        assert main(["video", str(clip), str(tmp_path / "b.mp4"), "--model", str(model), "--max-side", "64",
                     "--smooth", "none"]) == 0
    notes = [r.getMessage() for r in caplog.records if "the size the model is made for" in r.getMessage()]
    assert notes == ["rtnst: stylising at 32x24, the size the model is made for (--max-side PX for another)"]
    smoothing = [r.getMessage() for r in caplog.records if "smoothing" in r.getMessage()]
    assert smoothing == ["rtnst: smoothing against flicker: flow at strength 0.7 (--smooth none: off)"]


def test_image_folder_to_folder_and_no_silent_overwrite(tmp_path, identity, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.png"), gradient_frame(20 + i, 16, index=i))
    extra = tmp_path / "extra.jpg"
    cv2.imwrite(str(extra), gradient_frame(30, 30))
    out = tmp_path / "out"
    assert main(["-q", "image", str(folder), str(extra), str(out), "--model", str(identity)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["extra.jpg", "p0.png", "p1.png", "p2.png"]
    before = (out / "p0.png").read_bytes()
    assert main(["image", str(folder), str(out), "--model", str(identity), "--strength", "0.5"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "p0.png").read_bytes() == before


def test_image_bad_inputs(tmp_path, identity, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert main(["image", str(text), str(tmp_path / "o.jpg"), "--model", str(identity)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["image", str(tmp_path / "nope.jpg"), str(tmp_path / "o.jpg"), "--model", str(identity)]) == 2
    assert "does not exist" in capsys.readouterr().err
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gradient_frame(8, 8))
    assert main(["image", str(src), str(tmp_path / "o.xyz"), "--model", str(identity)]) == 2
    assert "format" in capsys.readouterr().err
    # before the model loads: a model that does not exist is not what it reports
    assert main(["image", str(src), str(tmp_path / "o.xyz"), "--model", str(tmp_path / "missing.onnx")]) == 2
    assert "format" in capsys.readouterr().err
    assert main(["image", str(src), str(tmp_path / "o.png"), "--model", str(identity), "--strength", "2"]) == 2
    assert "strength" in capsys.readouterr().err
    # Options argparse converts (sizes) and numbers where 0 would silently mean "not given".
    for bad, words in ((["--output-size", "abc"], "WIDTHxHEIGHT"), (["--output-size", "0x5"], "positive"),
                       (["--max-side", "0"], "--max-side"), (["--pad-multiple", "0"], "--pad-multiple"),
                       (["--threads", "-1"], "--threads")):
        try:
            code = main(["image", str(src), str(tmp_path / "o.png"), "--model", str(identity), *bad])
        except SystemExit as exc:  # argparse's own errors exit while parsing
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()
    # One image into a folder that does not exist yet: made, as for several; a file into a missing
    # folder: refused before the model is even loaded.
    assert main(["image", str(src), str(tmp_path / "new_folder"), "--model", str(identity)]) == 0
    assert (tmp_path / "new_folder" / "in.png").is_file()
    assert main(["image", str(src), str(tmp_path / "missing" / "o.png"), "--model", str(tmp_path / "no.onnx")]) == 2
    assert "folder" in capsys.readouterr().err
    # An output that is an input is refused even with --overwrite: the source would be lost.
    before = src.read_bytes()
    assert main(["image", str(src), str(src), "--model", str(identity), "--overwrite"]) == 2
    assert "is an input file" in capsys.readouterr().err
    assert main(["image", str(tmp_path), str(tmp_path), "--model", str(identity), "--overwrite"]) == 2
    assert "is an input file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_bench_prints_rows(identity, capsys, caplog):
    with caplog.at_level("INFO", logger="rtnst"):
        assert main(["bench", "--model", str(identity), "--sizes", "64x48", "--frames", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and "64x48" in out[1] and "fps" in out[1]
    assert "rtnst: CPU: " in caplog.text and "cores; onnxruntime's kernels: " in caplog.text  # beside every figure
    values = out[1].split()
    assert float(values[-4]) > 0 and float(values[-2]) > 0  # model fps and end-to-end fps


def test_bench_end_to_end_on_a_clip_scaled_to_each_size(identity, tmp_path, capsys, monkeypatch):
    from realtime_nst.evaluation import bench

    src = write_clip(tmp_path / "real.mp4", frames=4, size=(96, 64), audio=None)
    made = []
    real_write = bench.write_clip
    monkeypatch.setattr(bench, "write_clip", lambda *a, **k: made.append((a[1], a[2], k.get("source"))) or real_write(*a, **k))
    assert main(["bench", "--model", str(identity), "--sizes", "64x48", "--frames", "6", "--warmup", "1",
                 "--clip", str(src)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert float(out[1].split()[-2]) > 0
    assert made and all(size == (64, 48) and source == src for size, _, source in made)
    frames = bench.clip_frames(src, (64, 48), 6)  # a 4-frame clip, looped to 6
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3) and np.array_equal(frames[4], frames[0])
    assert main(["bench", "--model", str(identity), "--clip", str(tmp_path / "none.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--model", str(identity), "--sizes", ","]) == 2  # nothing to measure is no success
    assert "--sizes" in capsys.readouterr().err
    assert main(["bench", "--model", str(identity), "--sizes", "64x48", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_video_files_are_smoothed_along_the_flow_unless_told_otherwise(identity, tmp_path, monkeypatch):
    """A file is made once and watched many times: `rtnst video` (and bench's end-to-end run, which
    times it) smooth with flow by default; `--smooth none` gives each frame as the model paints it."""
    from realtime_nst.runtime import video

    used = []
    real = video.stylize_video
    monkeypatch.setattr(video, "stylize_video", lambda *a, **k: used.append(k.get("smoother")) or real(*a, **k))
    src = write_clip(tmp_path / "in.mp4", frames=3, size=(64, 48), audio=None)
    assert main(["-q", "video", str(src), str(tmp_path / "a.mp4"), "--model", str(identity)]) == 0
    assert main(["-q", "video", str(src), str(tmp_path / "b.mp4"), "--model", str(identity), "--smooth", "none"]) == 0
    assert main(["-q", "bench", "--model", str(identity), "--sizes", "32x24", "--frames", "2", "--warmup", "0"]) == 0
    assert main(["-q", "bench", "--model", str(identity), "--sizes", "32x24", "--frames", "2", "--warmup", "0",
                 "--smooth", "none"]) == 0
    assert [type(s).__name__ for s in used] == ["FlowSmoother", "NoneType", "FlowSmoother", "FlowSmoother",
                                                "NoneType", "NoneType"]  # bench: a warm-up run, then the timed one


def test_bench_rounds_alternate_models_and_report_median_and_range(identity, tmp_path, capsys):
    other = onnx_model(tmp_path / "other.onnx", kind="first_channel")
    args = ["bench", "--model", str(identity), "--model", str(other), "--sizes", "64x48,32x32", "--frames", "2",
            "--warmup", "0", "--model-only", "--rounds", "3", "--input-range", "0-1"]
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out.strip().splitlines()
    assert "range" in out[0] and len(out) == 1 + 2 * 2  # one summary row per model and size, not one per round
    assert captured.err.count("round") == 3
    for line in out[1:]:
        lo, hi = (float(v) for v in line.split()[-1].split("-"))
        median = float(line.split()[-4])
        assert 0 < lo <= median <= hi
    assert main(["bench", "--model", str(identity), "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err


def test_bench_graph_both_times_each_model_as_stored_and_as_run(capsys):
    args = ["-q", "bench", "--model", "udnie-realtime", "--sizes", "64x48", "--frames", "2", "--warmup", "0",
            "--model-only", "--graph", "both", "--rounds", "2"]
    assert main(args) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [r.split()[:2] for r in rows] == [["udnie-realtime.onnx", "(stored)"], ["udnie-realtime.onnx", "(tuned)"]]


def test_public_api_is_pinned_and_lazy():
    import realtime_nst

    assert sorted(realtime_nst.__all__) == sorted([
        "CameraError", "CameraSource", "CorruptInputError", "EmaSmoother", "FlowSmoother", "FrameSink", "FrameSource",
        "GifFileSink", "InputError", "MissingDependencyError", "ModelError", "OnnxStylizer", "OptionError", "OutputError",
        "RtnstError", "Smoother", "Stylizer", "VideoFileSink", "VideoFileSource", "VideoReport", "VirtualCameraSink",
        "__version__", "make_smoother", "open_file_sink", "read_image", "resolve_model", "run_live", "serve_live",
        "shipped_models", "stylize_video", "write_image"])
    for name in realtime_nst.__all__:
        assert getattr(realtime_nst, name) is not None
    code = "import sys, realtime_nst; print(sorted(m for m in ('onnxruntime', 'cv2', 'av', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # `rtnst --help` and every command's options: the parser is built without numpy, OpenCV or FFmpeg.
    code = ("import sys; from realtime_nst import cli; cli.build_parser(); "
            "print(sorted(m for m in ('numpy', 'onnxruntime', 'cv2', 'av', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_quiet_after_the_command_and_errors_name_the_commands_flags(tmp_path, identity, capsys):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gradient_frame(16, 12))
    assert main(["image", str(src), str(tmp_path / "o.png"), "--model", str(identity), "-q"]) == 0
    assert capsys.readouterr().err == ""  # no "runs on" line: -q after the command counts
    assert main(["image", str(src), str(tmp_path / "o.png"), "--model", str(identity)]) == 2
    assert "o.png exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert main(["image", str(src), str(tmp_path / "p.png"), "--model", str(identity), "--max-side", "0"]) == 2
    assert "rtnst: error: --max-side must be a positive whole number, got 0" in capsys.readouterr().err


def test_output_piped_into_a_closed_reader_is_no_error():
    proc = subprocess.run(f"{sys.executable} -m realtime_nst models | head -c 1 > /dev/null; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_one_image_into_a_path_without_suffix_is_file_to_file(tmp_path, identity, capsys):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gradient_frame(8, 8))
    assert main(["-q", "image", str(src), "/dev/null", "--model", str(identity), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "several inputs" not in err and "cannot tell the image format of /dev/null" in err


def test_folder_run_goes_past_bad_files_and_counts_them(tmp_path, identity, capsys, caplog):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ("a.png", "c.png", "sub/d.png"):
        cv2.imwrite(str(photos / name), gradient_frame(8, 8))
    (photos / "b.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["-q", "image", str(photos), str(out), "--model", str(identity)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rtnst: error: 1 of 3 images could not be stylised") and "the other 2 were written" in err[-1]
    assert "skipped" in caplog.text and "b.png is not an image" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert "1 subfolder not searched" in caplog.text
    assert main(["-q", "image", str(photos), str(tmp_path / "ff"), "--model", str(identity), "--fail-fast"]) == 2
    assert "(1 of 3 images were written before it)" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ff").iterdir()) == ["a.png"]
    (photos / "b.png").unlink()
    assert main(["-q", "image", str(photos), str(tmp_path / "rec"), "--model", str(identity), "--recursive"]) == 0
    assert (tmp_path / "rec" / "sub" / "d.png").is_file() and (tmp_path / "rec" / "a.png").is_file()


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, identity, monkeypatch, capsys):
    from realtime_nst import files

    def read_only(*a, **k):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), gradient_frame(8, 8))
    assert main(["-q", "image", str(src), str(tmp_path / "o.png"), "--model", str(identity)]) == 2
    assert "is not writable (Read-only file system)" in capsys.readouterr().err


def test_image_keeps_transparency_where_the_output_can_hold_it(tmp_path, identity, caplog):
    src = tmp_path / "cutout.png"
    bgra = np.dstack([gradient_frame(40, 24), np.tile(np.linspace(0, 255, 40).astype(np.uint8), (24, 1))])
    cv2.imwrite(str(src), bgra)
    for suffix in (".png", ".webp"):
        out = tmp_path / f"out{suffix}"
        assert main(["-q", "image", str(src), str(out), "--model", str(identity)]) == 0
        got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert got.shape == (24, 40, 4) and np.array_equal(got[:, :, 3], bgra[:, :, 3]), suffix
    assert "transparency" not in caplog.text
    for name in ("out.jpg", "out.tiff"):
        out = tmp_path / name
        assert main(["-q", "image", str(src), str(out), "--model", str(identity)]) == 0
        assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (24, 40, 3)
        assert f"has transparency, which {name} cannot hold: written opaque" in caplog.text
    opaque = tmp_path / "opaque.png"  # an alpha channel that is 255 everywhere is not kept
    cv2.imwrite(str(opaque), np.dstack([gradient_frame(8, 8), np.full((8, 8), 255, np.uint8)]))
    assert main(["-q", "image", str(opaque), str(tmp_path / "o.png"), "--model", str(identity)]) == 0
    assert cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED).shape == (8, 8, 3)


def test_animated_gif_and_webp_use_their_first_frame_and_say_so(tmp_path, identity, caplog):
    gif = tmp_path / "a.gif"
    assert cv2.imwritemulti(str(gif), [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 240)])
    out = tmp_path / "o.png"
    assert main(["-q", "image", str(gif), str(out), "--model", str(identity)]) == 0
    assert "holds 3 frames (an animation or pages): only the first is used; rtnst video stylises every frame" in \
        caplog.text
    assert int(cv2.imread(str(out)).mean()) < 10
    webp = tmp_path / "a.webp"
    assert cv2.imwritemulti(str(webp), [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 240)])
    assert main(["-q", "image", str(webp), str(tmp_path / "w.png"), "--model", str(identity)]) == 0
    assert "a.webp is an animated WebP: only its first frame is used" in caplog.text


def test_sigterm_during_a_folder_run_says_how_far_it_got(tmp_path, identity):
    import signal
    import time

    photos = tmp_path / "photos"
    photos.mkdir()
    big = np.random.default_rng(0).integers(0, 255, (600, 800, 3), np.uint8)  # slow enough to catch mid-run
    for i in range(80):
        cv2.imwrite(str(photos / f"{i:03d}.png"), big)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "realtime_nst", "-q", "image", str(photos), str(out), "--model",
                             str(identity)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60

    def written() -> bool:  # a finished image; not the hidden write probe or .part file made before the loop
        return out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())

    while not written() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    done = len(list(out.iterdir()))
    assert f"rtnst: interrupted: {done} of 80 images written" in stdout and 0 < done < 80


def test_bench_compares_a_shipped_model_and_a_foreign_one_in_one_run(tmp_path, capsys):
    # The foreign flags apply to the foreign model only: an identity model taking 0-1 pixels; the
    # shipped model keeps the conventions in its metadata (0-1 as well, but pad multiple 8, not 3).
    foreign = onnx_model(tmp_path / "foreign.onnx")
    assert main(["-q", "bench", "--model", "starry_night-realtime", "--model", str(foreign), "--input-range", "0-1",
                 "--pad-multiple", "3", "--sizes", "48x32", "--frames", "1", "--warmup", "1", "--model-only"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["starry_night-realtime.onnx", "foreign.onnx"]


def test_a_folder_is_stylised_one_image_per_core_and_fail_fast_one_at_a_time(tmp_path, identity, monkeypatch):
    import threading

    from realtime_nst.cli import image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(8):
        cv2.imwrite(str(photos / f"{i}.png"), gradient_frame(64, 48, index=i))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    seen, lock, at_once, busy = [], threading.Lock(), [], [0]
    stylise = image._stylise_file

    def spy(*a, **kw):
        with lock:
            busy[0] += 1
            at_once.append(busy[0])
        time.sleep(0.02)
        try:
            return stylise(*a, **kw)
        finally:
            with lock:
                busy[0] -= 1
                seen.append(threading.current_thread().name)

    monkeypatch.setattr(image, "_stylise_file", spy)
    assert main(["-q", "image", str(photos), str(tmp_path / "out"), "--model", str(identity)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i}.png" for i in range(8)]
    assert max(at_once) == 2 and len(set(seen)) == 2  # two images at once, each on a worker thread
    at_once.clear()
    assert main(["-q", "image", str(photos), str(tmp_path / "ff"), "--model", str(identity), "--fail-fast"]) == 0
    assert max(at_once) == 1


def test_one_unreadable_image_is_reported_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    args = [str(tmp_path / "notes.png"), str(tmp_path / "o.png"), "--model", str(tmp_path / "no.onnx")]
    assert main(["image", *args]) == 2
    err = capsys.readouterr().err
    assert "notes.png" in err and "no.onnx" not in err


def test_camera_raw_files_in_a_folder_are_named_not_skipped_silently(tmp_path, identity, caplog, capsys):
    folder = tmp_path / "card"
    folder.mkdir()
    preview = cv2.imencode(".tiff", np.full((12, 16, 3), 90, np.uint8))[1].tobytes()
    (folder / "DSC_0001.NEF").write_bytes(preview)
    (folder / "DSC_0002.dng").write_bytes(preview)
    assert main(["-q", "image", str(folder), str(tmp_path / "out"), "--model", str(identity)]) == 2
    assert "holds camera RAW files only, which rtnst does not read: export them as JPEG" in capsys.readouterr().err
    cv2.imwrite(str(folder / "a.png"), np.full((8, 8, 3), 90, np.uint8))
    with caplog.at_level("WARNING", logger="rtnst"):
        assert main(["-q", "image", str(folder), str(tmp_path / "out"), "--model", str(identity)]) == 0
    assert "2 camera RAW files left out" in caplog.text
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
