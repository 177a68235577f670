"""A model's graph rewritten, same function, into the form onnxruntime's CPU kernels run fastest.

onnxruntime's CPU provider runs convolutions in a blocked layout (NCHWc): channels in blocks of 16
with AVX-512, 8 with AVX2. Two things in a graph keep it from doing that well, and neither shows in
the model's outputs:

- A tensor with fewer channels than a block (the realtime net's 8 full-resolution channels, with
  AVX-512) is stored padded to a block all the same, but every conv that reads it takes it back in
  plain layout, with a reorder before it. Widened with zero channels to a whole block, those layers
  stay blocked: the same memory traffic, no reorders. (Only where the blocks hold 16: with 8-wide
  blocks the widened layers would do twice the work.)
- An Add is fused into the conv that feeds it only where onnxruntime can prove both inputs have the
  same shape, which it cannot through an upsampling or a norm when the image size is free. The shapes
  are stated in the graph (value_info), found by shape inference at two concrete sizes.

Widening only where every layer that touches a tensor is one whose zero channels stay zero (convs,
depthwise convs, ReLU, Add, nearest upsampling); anything else leaves the tensor as it is. The six
realtime nets at 648x368, one thread (Intel Xeon, AVX-512): 17-21% less time. Only with AVX-512:
with AVX2's kernels (8-wide blocks; no widening) the stated adds alone made the nets 0-7% faster on
one thread, 2-5% slower on two, and the same end to end. Needs the ``onnx`` package.
"""

from __future__ import annotations

import logging

import numpy as np

from ..modelfile import DEFAULT_PAD_MULTIPLE, META_PAD_MULTIPLE

log = logging.getLogger("rtnst")

_PASS_THROUGH = {"Relu", "Add", "Resize"}  # zero channels in, zero channels out (Resize: checked nearest)
WIDE_BLOCK = 16  # onnxruntime's NCHWc block with AVX-512F


def wide_blocks() -> bool:
    """Whether onnxruntime's CPU kernels here hold 16 channels a block: where the CPU and OS run
    AVX-512 (the kernels' own test: AVX512F and its register state enabled)."""
    import cv2

    # OpenCV checks CPUID and the OS's register state as the kernels do; OpenCV 5 no longer names
    # its feature ids in Python (cv::CPU_AVX_512F is 13).
    return bool(cv2.checkHardwareSupport(getattr(cv2, "CPU_AVX_512F", 13)))


def _attr(node, name: str, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class _Sets:
    """Union-find over tensor names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _concrete_shapes(model, sizes: tuple[tuple[int, int], ...]) -> list[dict[str, tuple[int, ...]]]:
    """Every 4-D tensor's shape and, last, its element type, by ONNX shape inference with the input
    fixed at each (h, w)."""
    import onnx
    from onnx import shape_inference

    found = []
    for h, w in sizes:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        del m.graph.value_info[:]
        dims = m.graph.input[0].type.tensor_type.shape.dim
        for d, v in zip(dims, (1, dims[1].dim_value or 3, h, w)):
            d.Clear()
            d.dim_value = v
        m = shape_inference.infer_shapes(m, data_prop=True)
        shapes = {}
        for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
            d = vi.type.tensor_type.shape.dim
            if len(d) == 4 and all(x.HasField("dim_value") for x in d):
                shapes[vi.name] = (*(x.dim_value for x in d), vi.type.tensor_type.elem_type)
        found.append(shapes)
    return found


def _widen(model, channels: dict[str, int], block: int) -> int:
    """Pad every tensor of fewer than ``block`` channels whose layers all keep zero channels zero;
    returns how many tensors were widened."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    ends = {o.name for o in g.output} | {i.name for i in g.input}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def depthwise(n) -> bool:
        w = inits.get(n.input[1]) if n.op_type == "Conv" and len(n.input) > 1 else None
        return w is not None and _attr(n, "group", 1) == w.dims[0] > 1 and w.dims[1] == 1

    def dense(n) -> bool:
        return n.op_type == "Conv" and n.input[1] in inits and _attr(n, "group", 1) == 1

    sets = _Sets()
    for n in g.node:  # tensors that must be widened together
        if n.op_type in _PASS_THROUGH or depthwise(n):
            for i in n.input[: 2 if n.op_type == "Add" else 1]:
                sets.union(i, n.output[0])
    groups: dict[str, list[str]] = {}
    for name in channels:
        groups.setdefault(sets.find(name), []).append(name)

    def nearest(n) -> bool:
        return _attr(n, "mode", b"nearest") in (b"nearest", "nearest")

    def wideable(members: list[str]) -> bool:
        c = {channels[m] for m in members}
        if len(c) != 1 or not 0 < c.pop() < block or ends & set(members):
            return False
        producers = [n for n in g.node if n.output and n.output[0] in members]
        if not producers or any(not (dense(n) or depthwise(n) or n.op_type in _PASS_THROUGH) for n in producers):
            return False
        if any((n.op_type == "Resize" and not nearest(n))
               or (n.op_type == "Add" and not all(i in members for i in n.input)) for n in producers):
            return False  # an Add of a constant would put something into the new channels
        return all(dense(n) or depthwise(n) or (n.op_type in _PASS_THROUGH and n.output[0] in members)
                   for m in members for n in consumers.get(m, []))

    wide = {m for members in groups.values() if wideable(members) for m in members}

    def pad(arr: np.ndarray, axis: int) -> np.ndarray:
        shape = list(arr.shape)
        shape[axis] = block
        out = np.zeros(shape, arr.dtype)
        out[(slice(None),) * axis + (slice(0, arr.shape[axis]),)] = arr
        return out

    def put(name: str, arr: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(arr, name))

    for n in g.node:
        if n.op_type != "Conv" or not (n.output[0] in wide or n.input[0] in wide):
            continue
        weight = numpy_helper.to_array(inits[n.input[1]])
        bias = numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] else None
        if depthwise(n):  # widened in and out together, the new channels' filters zero
            put(n.input[1], pad(weight, 0))
            for a in n.attribute:
                if a.name == "group":
                    a.i = block
        else:
            if n.input[0] in wide:
                weight = pad(weight, 1)
            if n.output[0] in wide:
                weight = pad(weight, 0)
            put(n.input[1], weight)
        if bias is not None and n.output[0] in wide:
            put(n.input[2], pad(bias, 0))
    return len(wide)


def _state_add_shapes(model, first: dict, second: dict) -> int:
    """value_info for each Add whose inputs have the same shape at both sizes (so at any size the
    net takes): the same symbolic dims on both, which lets onnxruntime fuse the Add into a conv."""
    from onnx import helper

    g = model.graph
    batch = g.input[0].type.tensor_type.shape.dim[0]
    n_dim = batch.dim_param or batch.dim_value or 1
    ours: dict = {}
    count = 0
    for n in g.node:
        if n.op_type != "Add" or len(n.input) != 2:
            continue
        names = [*n.input, n.output[0]]
        if not all(x in first and x in second for x in names):
            continue
        shapes = {(first[x], second[x]) for x in names}
        if len(shapes) != 1:
            continue
        (a, b), = shapes
        dims = [n_dim, a[1], f"rtnst_h_{a[2]}_{b[2]}", f"rtnst_w_{a[3]}_{b[3]}"]
        for x in names:
            ours.setdefault(x, helper.make_tensor_value_info(x, a[4], dims))
        count += 1
    # in place of what the file says of these tensors (an exporter's unknown height and width)
    kept = [vi for vi in g.value_info if vi.name not in ours]
    del g.value_info[:]
    g.value_info.extend(kept + list(ours.values()))
    return count


def for_cpu(data: bytes) -> bytes | None:
    """``data`` (an ONNX model) in the form AVX-512's kernels run fastest, or None when nothing would
    change or the graph is not one this understands (the model is then run as it is): one NCHW image
    input of free height and width, weights inside the file."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load_from_string(data)
        g = model.graph
        dims = g.input[0].type.tensor_type.shape.dim if len(g.input) == 1 else []
        if (len(dims) != 4 or any(d.HasField("dim_value") for d in dims[2:])
                or any(i.data_location == onnx.TensorProto.EXTERNAL for i in g.initializer)):
            return None
        meta = {p.key: p.value for p in model.metadata_props}
        m = max(1, int(meta.get(META_PAD_MULTIPLE, DEFAULT_PAD_MULTIPLE)))
        sizes = ((8 * m, 12 * m), (12 * m, 20 * m))
        channels = {name: shape[1] for name, shape in _concrete_shapes(model, sizes[:1])[0].items()}
        widened = _widen(model, channels, WIDE_BLOCK)
        first, second = _concrete_shapes(model, sizes)  # after widening: the shapes stated below
        stated = _state_add_shapes(model, first, second)
        if not (widened or stated):
            return None
        out = model.SerializeToString()
    except Exception as exc:  # noqa: BLE001 - any surprise in a foreign graph: run it as it is
        log.debug("rtnst: the model's graph was left as it is (%s)", exc)
        return None
    log.debug("rtnst: %d tensors widened to %d channels, %d adds stated for fusion", widened, WIDE_BLOCK, stated)
    return out


def same_function(original, rewritten, *, side_px: int = 64) -> bool:
    """Whether two sessions give the same output (to float rounding) on a random image."""
    name = original.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, side_px, side_px * 3 // 2), dtype=np.float32)
    try:
        a = original.run(None, {name: x})[0]
        b = rewritten.run(None, {name: x})[0]
    except Exception:  # noqa: BLE001 - a size the model refuses: no evidence either way
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(a).max()))))
