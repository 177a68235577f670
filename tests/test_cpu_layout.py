"""The graph rewrite for onnxruntime's CPU kernels: same function, wider blocks, stated add shapes."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from realtime_nst.runtime.cpu_layout import WIDE_BLOCK, for_cpu, same_function
from realtime_nst.runtime.session import open_session

MODELS = Path(__file__).resolve().parent.parent / "models"


class _Graph:
    """A small ONNX image-to-image graph built layer by layer: random conv weights, input "input"."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.inits, self.nodes = [], []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv(self, name: str, x: str, cout: int, cin: int, k: int = 3, *, group: int = 1, stride: int = 1) -> str:
        w = self.const(f"{name}.w", self.rng.standard_normal((cout, cin // group, k, k)) * 0.3)
        b = self.const(f"{name}.b", self.rng.standard_normal(cout) * 0.1)
        return self.op("Conv", x, w, b, name=name, group=group, pads=[k // 2] * 4, strides=[stride] * 2)

    def op(self, kind: str, *inputs: str, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(kind, list(inputs), [name], **attrs))
        return name

    def model(self, output: str):
        """The graph as a model whose output is the 3-channel tensor ``output`` (renamed "output")."""
        assert self.nodes[-1].output[0] == output, "the last layer added is the output"
        self.nodes[-1].output[0] = "output"
        image = ["N", 3, "H", "W"]
        graph = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, image)],
                                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, image)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.metadata_props.append(onnx.StringStringEntryProto(key="rtnst.pad_multiple", value="4"))
        return model


def _u_net(*, after_skip: str = "Relu", add_constant: bool = False, shapes_stated: bool = False) -> bytes:
    """A small U-Net in the shape of the realtime net: 8 channels at full size, a stride-2 level, a
    nearest upsampling, a skip add, a depthwise and a pointwise conv, a 3-channel head.
    ``after_skip`` is the op after the skip add; ``add_constant`` adds a constant to the stem;
    ``shapes_stated``: every tensor's shape in the file, as some exporters write them (height and
    width unknown)."""
    g = _Graph(1)
    s0 = g.op("Relu", g.conv("stem", "input", 8, 3), name="s0")
    if add_constant:
        s0 = g.op("Add", s0, g.const("half", np.full((1, 8, 1, 1), 0.5)), name="s0c")
    y = g.op("Relu", g.conv("down", s0, 16, 8, stride=2), name="y")
    y = g.conv("narrow", y, 8, 16, 1)
    up = g.op("Resize", y, "", g.const("scales", np.array([1, 1, 2, 2])), name="up", mode="nearest")
    y = g.op(after_skip, g.op("Add", g.conv("tied", up, 8, 8, group=8), s0, name="skip"), name="act")
    y = g.op("Relu", g.conv("pw", g.conv("dw", y, 8, 8, group=8), 8, 8, 1), name="refined")
    model = g.model(g.conv("output", y, 3, 8, 1))
    if shapes_stated:
        model = onnx.shape_inference.infer_shapes(model)
        assert {"s0", "tied", "skip"} <= {vi.name for vi in model.graph.value_info}
    return model.SerializeToString()


def _session(data: bytes, path: Path | None = None):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if path is not None:
        opts.optimized_model_filepath = str(path)
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _conv_widths(data: bytes) -> dict[str, int]:
    model = onnx.load_from_string(data)
    weights = {i.name: i.dims[0] for i in model.graph.initializer}
    return {n.output[0]: weights[n.input[1]] for n in model.graph.node if n.op_type == "Conv"}


def test_the_8_channel_layers_are_widened_to_a_16_channel_block_and_compute_the_same_function():
    original = _u_net()
    tuned = for_cpu(original)
    assert tuned is not None
    widths = _conv_widths(tuned)
    assert widths["stem"] == widths["tied"] == widths["dw"] == widths["pw"] == widths["narrow"] == 16
    assert widths["output"] == 3 and widths["down"] == 16  # the output keeps its channels
    assert same_function(_session(original), _session(tuned))
    x = np.random.default_rng(2).random((1, 3, 36, 52), dtype=np.float32)  # a size the test did not use
    a, b = (_session(d).run(None, {"input": x})[0] for d in (original, tuned))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapes_stated", [False, True])
def test_the_add_shapes_are_stated_and_onnxruntime_fuses_the_add_into_its_conv(tmp_path, shapes_stated):
    original = _u_net(shapes_stated=shapes_stated)
    tuned = for_cpu(original)
    stated = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in onnx.load_from_string(tuned).graph.value_info}
    assert stated["tied"] == stated["s0"] == stated["skip"] and stated["skip"][2].startswith("rtnst_h")
    assert same_function(_session(original), _session(tuned))
    kept = {}
    for name, data in (("original", original), ("tuned", tuned)):
        _session(data, tmp_path / f"{name}.onnx")
        kept[name] = [n.op_type for n in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node]
    if not any(op.startswith("Reorder") for op in kept["original"]):
        pytest.skip("onnxruntime runs no blocked layout on this CPU")
    assert kept["original"].count("Add") == 1 and kept["tuned"].count("Add") == 0  # fused into the conv


@pytest.mark.parametrize("variant", [dict(after_skip="Sigmoid"), dict(add_constant=True)])
def test_a_layer_that_would_fill_the_new_channels_keeps_its_tensors_as_they_are(variant):
    original = _u_net(**variant)
    tuned = for_cpu(original)
    widths = _conv_widths(tuned)
    # Sigmoid(0) and 0 + 0.5 are not zero: the stem and the skip's tensors stay at 8 channels
    assert widths["stem"] == widths["tied"] == 8
    assert same_function(_session(original), _session(tuned))


def test_graphs_it_does_not_understand_are_left_alone():
    assert for_cpu(b"not a model") is None
    fixed = onnx.load_from_string(_u_net())
    for d, v in zip(fixed.graph.input[0].type.tensor_type.shape.dim[2:], (64, 64)):
        d.Clear()
        d.dim_value = v
    assert for_cpu(fixed.SerializeToString()) is None


@pytest.mark.parametrize("name", ["great_wave-realtime", "udnie-realtime"])
def test_shipped_models_give_the_same_frames_in_the_tuned_form(name):
    path = MODELS / f"{name}.onnx"
    x = np.random.default_rng(3).random((1, 3, 72, 128), dtype=np.float32)
    outs = [open_session(path, device="cpu", announce=False, cpu_form=form).run(None, {"input": x})[0]
            for form in (False, True)]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)
    tuned = for_cpu(path.read_bytes())  # whether or not this CPU has AVX-512
    assert tuned is not None and max(_conv_widths(tuned).values()) == 64
    assert min(w for w in _conv_widths(tuned).values() if w != 3) == WIDE_BLOCK
    assert same_function(_session(path.read_bytes()), _session(tuned))


def test_a_float16_net_is_stated_in_its_own_types():
    from realtime_nst.training.variants import to_fp16

    half = to_fp16(onnx.load(str(MODELS / "udnie-realtime.onnx"))).SerializeToString()
    tuned = for_cpu(half)
    assert tuned is not None and same_function(_session(half), _session(tuned))


def _random_net(seed: int) -> bytes:
    """A random small graph of the layers the rewrite knows and some it must leave alone: convs of
    3-20 channels (dense, depthwise, stride 2), ReLU, Sigmoid, Adds of equal tensors, a constant Add,
    nearest upsampling back to a level already seen."""
    g = _Graph(seed)
    rng = g.rng
    tensors = [("input", 3, 0)]  # (name, channels, level: how many stride-2 convs from the input)
    for _ in range(int(rng.integers(6, 14))):
        x, c, level = tensors[int(rng.integers(len(tensors)))]
        kind = rng.choice(["conv", "dw", "down", "relu", "sigmoid", "add", "const", "up"])
        name = f"t{len(g.nodes)}"
        if kind == "conv":
            cout = int(rng.integers(3, 21))
            tensors.append((g.conv(name, x, cout, c), cout, level))
        elif kind == "dw":
            tensors.append((g.conv(name, x, c, c, group=c), c, level))
        elif kind == "down" and level < 2:
            cout = int(rng.integers(3, 21))
            tensors.append((g.conv(name, x, cout, c, stride=2), cout, level + 1))
        elif kind in ("relu", "sigmoid"):
            tensors.append((g.op("Relu" if kind == "relu" else "Sigmoid", x, name=name), c, level))
        elif kind == "add":
            same = [t for t in tensors if t[1] == c and t[2] == level and t[0] != x]
            if same:
                tensors.append((g.op("Add", x, same[int(rng.integers(len(same)))][0], name=name), c, level))
        elif kind == "const":
            tensors.append((g.op("Add", x, g.const(f"{name}.k", np.full((1, c, 1, 1), 0.25)), name=name), c, level))
        elif kind == "up" and level > 0:
            scales = g.const(f"{name}.s", np.array([1, 1, 2, 2]))
            tensors.append((g.op("Resize", x, "", scales, name=name, mode="nearest"), c, level - 1))
    last = [t for t in tensors if t[2] == 0][-1]  # the output: a 3-channel conv of the last full-size tensor
    return g.model(g.conv("out", last[0], 3, last[1])).SerializeToString()


def test_random_graphs_keep_their_function_when_rewritten():
    rewritten = 0
    x = np.random.default_rng(5).random((1, 3, 40, 56), dtype=np.float32)
    for seed in range(40):
        original = _random_net(seed)
        tuned = for_cpu(original)
        if tuned is None:
            continue
        rewritten += 1
        a, b = (_session(d).run(None, {"input": x})[0] for d in (original, tuned))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"seed {seed}")
    assert rewritten >= 20  # most random graphs have something to widen or an add to state
