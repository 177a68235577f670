"""The threaded pipeline with several frames stylised at once, and what makes that safe."""

import random
import threading
import time

import numpy as np
import pytest

from fakes import gradient_frame, onnx_model, probe, write_clip
from realtime_nst.errors import OptionError
from realtime_nst.runtime.pipeline import run_pipeline
from realtime_nst.runtime.session import MAX_FRAME_WORKERS, ThreadPlan, plan_threads
from realtime_nst.runtime.stylizer import OnnxStylizer
from realtime_nst.runtime.video import stylize_video


def _numbered(count):
    it = iter(range(count))

    def frames():
        i = next(it, None)
        return None if i is None else (np.full((2, 2, 3), i % 256, np.uint8), i)

    return frames


def test_several_workers_write_every_frame_in_order():
    written, busy, most = [], [0], [0]
    lock = threading.Lock()
    rng = random.Random(0)

    def process(frame):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(rng.random() * 0.004)  # later frames often finish first
        with lock:
            busy[0] -= 1
        return frame + 1

    result = run_pipeline(_numbered(60), process, lambda out, i: written.append((i, int(out[0, 0, 0]))), workers=3)
    assert result.frames_done == 60 and not result.interrupted
    assert written == [(i, i % 256 + 1) for i in range(60)]
    assert most[0] > 1  # frames really were stylised at once


def test_a_failing_frame_stops_the_run_after_the_frames_before_it():
    written = []

    def process(frame):
        if frame[0, 0, 0] == 7:
            raise RuntimeError("frame 7 is bad")
        return frame

    with pytest.raises(RuntimeError, match="frame 7 is bad"):
        run_pipeline(_numbered(200), process, lambda out, i: written.append(i), workers=2)
    assert written == list(range(7))


def test_workers_must_be_positive():
    with pytest.raises(ValueError):
        run_pipeline(_numbered(1), lambda f: f, lambda *a: None, workers=0)


@pytest.mark.parametrize("threads, cores, plan", [
    (None, 2, ThreadPlan(2, 1)), (None, 1, ThreadPlan(1, 1)), (None, 16, ThreadPlan(MAX_FRAME_WORKERS, 4)),
    (2, 2, ThreadPlan(1, 2)), (1, 8, ThreadPlan(MAX_FRAME_WORKERS, 1)), (4, 2, ThreadPlan(1, 4)),
])
def test_thread_plan(threads, cores, plan):
    assert plan_threads(threads=threads, cores=cores) == plan


def test_thread_plan_refuses_no_threads():
    with pytest.raises(OptionError, match="threads"):
        plan_threads(threads=0, cores=2)


def test_one_stylizer_used_from_several_threads_at_once(tmp_path):
    model = onnx_model(tmp_path / "blur.onnx", kind="blur")
    frames = [gradient_frame(64 + 8 * (i % 3), 48, index=i) for i in range(24)]
    with OnnxStylizer(model, threads=1) as st:
        alone = [st.stylize(f) for f in frames]
        results = [None] * len(frames)

        def work(k):
            for i in range(k, len(frames), 4):
                results[i] = st.stylize(frames[i])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(np.array_equal(a, b) for a, b in zip(alone, results))


def test_smoothing_follows_the_video_with_frames_stylised_at_once(tmp_path):
    from realtime_nst.runtime.smoothing import make_smoother

    model = onnx_model(tmp_path / "blur.onnx", kind="blur")
    src = write_clip(tmp_path / "in.mp4", frames=16, size=(96, 64), audio=None)
    outs = []
    for workers in (1, 3):
        out = tmp_path / f"out{workers}.mp4"
        with OnnxStylizer(model, threads=1) as st:
            stylize_video(src, out, st, smoother=make_smoother("flow", strength=0.6), progress=False, workers=workers)
        outs.append(probe(out)["frames"])
    assert len(outs[0]) == len(outs[1]) == 16
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(*outs)) <= 1


def test_frames_at_once_only_where_every_stylizer_runs_on_the_cpu(tmp_path):
    class Unknown:
        def stylize(self, frame):
            return frame

    plan = ThreadPlan(2, 1)
    with OnnxStylizer(onnx_model(tmp_path / "id.onnx"), device="cpu", threads=1) as st:
        assert plan.workers_for(st) == 2
        assert plan.workers_for(st, Unknown()) == 1
