"""Int8 rewriting of an ONNX transformer graph: weights per output channel, activations per token.

onnxruntime's ``quantize_dynamic`` gives a whole batch of activations one scale: a token with
large values coarsens every other token of the batch, so a text's vector moved with the texts it
was encoded with (by up to 0.03 in one coordinate on PIAF-dev chunks), and the vectors of
all-MiniLM-L6-v2 sat at a mean cosine of 0.991 from torch's. Here each token row of each matrix
product gets its own scale, computed on the fly: the vectors sit at 0.997 from torch's, and a
text's vector does not depend on its batch at all, so an index built in one go and one grown
file by file hold the same vectors.

Every ``MatMul`` whose second input is a constant 2-D weight ``W`` (K x N) becomes::

    a2    = Reshape(A, [-1, K])                      # one row per token
    scale = max(|a2|, axis=1) / 127                  # one scale per token
    aq    = QuantizeLinear(a2, scale, 128, axis=0)   # uint8, zero point 128: symmetric
    y     = DequantizeLinear(MatMulInteger(aq, Wq, 128, 128), scale, axis=0) * w_scale
    out   = Reshape(y, A.shape[:-1] + [N])

with ``Wq`` the symmetric int8 weights stored as uint8 around 128 (``wq + 128``, zero point
128) and ``w_scale`` one scale per output column. Products that share an input (a layer's query,
key and value projections) share its quantisation. Word-embedding tables are stored as int8 rows
with one scale each.

Why uint8 weights: with int8 weights (uint8 x int8), onnxruntime's AVX2 kernel on CPUs without
VNNI multiplies with ``vpmaddubsw``, which adds pairs of products into int16 and saturates
(two products of 255 x 127 overflow 32767), so some outputs come out wrong. uint8 x uint8 is
computed exactly on every CPU (widened to int16 before multiplying, or by VNNI where present):
the vectors of all-MiniLM-L6-v2 measured at a mean cosine of 0.9969 (minimum 0.9941) from
torch's, where uint8 x int8 gave 0.9955 (0.9880) on an AVX2 machine.

On CPUs with VNNI, uint8 x int8 is exact too (``vpdpbusd`` adds four products into int32 without
saturating) and much faster than uint8 x uint8, which has no VNNI instruction: multilingual-e5-small
encoded PIAF-dev chunks 1.8 times faster, to the same bits. :func:`signed_weights` rewrites a
graph's weights that way; :mod:`rag.embedding.onnx` uses it where the CPU has VNNI.

These are plain ONNX operators, no pickle and no custom kernels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ZERO_POINT = 128  # uint8 activations and weights centred on 128: symmetric int8 values, run as uint8 x uint8


class Rewritten(NamedTuple):
    """What :func:`quantize` changed."""

    matmuls: int
    activations: int
    embeddings: int


def per_channel(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 values and float32 scales of ``weight``, one scale per slice along ``axis``.

    Parameters
    ----------
    weight : numpy.ndarray
        A float 2-D array.
    axis : int
        The axis reduced to find each scale: 0 gives one scale per column, 1 one per row.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        int8 values (-127..127) and scales, with ``values * scales ≈ weight``.
    """
    weight = np.asarray(weight, dtype=np.float32)
    scales = (np.maximum(np.abs(weight).max(axis=axis), 1e-12) / 127.0).astype(np.float32)
    shaped = scales[None, :] if axis == 0 else scales[:, None]
    return np.clip(np.round(weight / shaped), -127, 127).astype(np.int8), scales


class _Graph:
    """Collects the new nodes and initializers of the rewritten graph."""

    def __init__(self, graph, opset: int):
        from onnx import numpy_helper

        self.graph = graph
        self.opset = opset
        self.numpy_helper = numpy_helper
        self.weights = {i.name: i for i in graph.initializer}
        self.nodes: list = []
        self.added: list = []
        self.used: set[str] = set()
        self.quantized: dict[str, str] = {}  # activation name -> prefix of its quantised form
        self.const("q_eps", np.array(1e-8, np.float32))
        self.const("q_inv127", np.array(1 / 127.0, np.float32))
        self.const("q_zero", np.array(0.0, np.float32))
        self.const("q_zp_f", np.array(float(ZERO_POINT), np.float32))
        self.const("q_zp", np.array(ZERO_POINT, np.uint8))

    def const(self, name: str, value: np.ndarray) -> str:
        if all(i.name != name for i in self.added):
            self.added.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def weight(self, name: str) -> np.ndarray | None:
        """The constant 2-D float array ``name``, or None."""
        init = self.weights.get(name)
        if init is None or len(init.dims) != 2:
            return None
        array = self.numpy_helper.to_array(init)
        return array if array.dtype in (np.float32, np.float64) else None

    def per_token(self, activation: str, k: int) -> str:
        """Quantise ``activation`` (..., K) per token once; returns the prefix of its ``aq``/``scale``/``shape``."""
        from onnx import TensorProto

        if activation in self.quantized:
            return self.quantized[activation]
        p = f"q_act{len(self.quantized)}_"
        self.quantized[activation] = p
        self.node("Shape", [activation], p + "shape", start=0, end=-1)
        rows = self.node("Reshape", [activation, self.const(p + "flat", np.array([-1, k], np.int64))], p + "rows")
        absolute = self.node("Abs", [rows], p + "abs")
        if self.opset >= 18:  # reduction axes became an input
            peak = self.node("ReduceMax", [absolute, self.const("q_axis1", np.array([1], np.int64))], p + "peak",
                             keepdims=0)
        else:
            peak = self.node("ReduceMax", [absolute], p + "peak", axes=[1], keepdims=0)
        scale = self.node("Mul", [self.node("Max", [peak, "q_eps"], p + "peak_eps"), "q_inv127"], p + "scale")
        # a zero point per row (QuantizeLinear per axis wants one), all 128, shaped like the scales
        zp = self.node("Cast", [self.node("Add", [self.node("Mul", [scale, "q_zero"], p + "z0"), "q_zp_f"], p + "z")],
                       p + "zp", to=TensorProto.UINT8)
        self.node("QuantizeLinear", [rows, scale, zp], p + "aq", axis=0)
        return p

    def matmul(self, node, index: int) -> bool:
        """Replace a ``MatMul`` by a constant weight with its per-token int8 form; False to keep it."""
        w = self.weight(node.input[1])
        if w is None:
            return False
        k, n = w.shape
        wq, ws = per_channel(w, axis=0)
        p = f"q_mm{index}_"
        self.used.add(node.input[1])
        a = self.per_token(node.input[0], k)
        wu = (wq.astype(np.int16) + ZERO_POINT).astype(np.uint8)  # uint8 x uint8: exact on every CPU (module doc)
        yi = self.node("MatMulInteger", [a + "aq", self.const(p + "wq", wu), "q_zp", "q_zp"], p + "yi")
        y = self.node("DequantizeLinear", [yi, a + "scale"], p + "y", axis=0)
        y = self.node("Mul", [y, self.const(p + "ws", ws)], p + "yw")
        shape = self.node("Concat", [a + "shape", self.const(f"q_n{n}", np.array([n], np.int64))], p + "oshape", axis=0)
        self.node("Reshape", [y, shape], node.output[0])
        return True

    def gather(self, node, index: int) -> bool:
        """Replace a lookup in a large float table (word embeddings) by int8 rows and their scales."""
        from onnx import TensorProto

        table = self.weight(node.input[0])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if table is None or axis != 0 or table.shape[0] < 4096:
            return False
        tq, ts = per_channel(table, axis=1)
        p = f"q_emb{index}_"
        self.used.add(node.input[0])
        rows = self.node("Cast", [self.node("Gather", [self.const(p + "tq", tq), node.input[1]], p + "rows_q")],
                         p + "rows", to=TensorProto.FLOAT)
        scales = self.node("Unsqueeze", [self.node("Gather", [self.const(p + "ts", ts), node.input[1]], p + "s"),
                                         self.const("q_last", np.array([-1], np.int64))], p + "scales")
        self.node("Mul", [rows, scales], node.output[0])
        return True


def signed_weights(model) -> int:
    """Store the uint8 weights of every ``MatMulInteger`` of ``model`` as int8, in place.

    Each weight ``wq + 128`` with zero point 128 becomes ``wq`` with zero point 0: the integer
    products are the same numbers, run by onnxruntime's uint8 x int8 kernels (exact and fast with
    VNNI only; see the module doc).

    Parameters
    ----------
    model : onnx.ModelProto
        A graph made by :func:`quantize`.

    Returns
    -------
    int
        How many weights were rewritten (0 when they were already int8).
    """
    from onnx import numpy_helper

    initializers = {i.name: i for i in model.graph.initializer}
    zero = "q_zp_s8"
    count = 0
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or len(node.input) < 4:
            continue
        weight, point = initializers.get(node.input[1]), initializers.get(node.input[3])
        if weight is None or point is None or numpy_helper.to_array(point).dtype != np.uint8:
            continue
        values = numpy_helper.to_array(weight)
        if values.dtype != np.uint8 or int(numpy_helper.to_array(point)) != ZERO_POINT:
            continue
        weight.CopyFrom(numpy_helper.from_array((values.astype(np.int16) - ZERO_POINT).astype(np.int8), weight.name))
        if zero not in initializers:
            initializers[zero] = numpy_helper.from_array(np.array(0, np.int8), zero)
            model.graph.initializer.append(initializers[zero])
        node.input[3] = zero
        count += 1
    return count


def quantize(model) -> Rewritten:
    """Rewrite ``model`` (an ``onnx.ModelProto``, opset 15 or newer) in place to int8; see the module doc.

    A weight that another node still reads (a table shared by a lookup and a product) stays too.

    Returns
    -------
    Rewritten
        How many matrix products, activations and embedding tables were quantised.
    """
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 15:
        raise ValueError(f"int8 rewrite needs ONNX opset 15 or newer, the graph has {opset}")
    g = _Graph(model.graph, opset)
    counts = {"matmuls": 0, "embeddings": 0}
    for i, node in enumerate(model.graph.node):
        if node.op_type == "MatMul" and g.matmul(node, i):
            counts["matmuls"] += 1
        elif node.op_type == "Gather" and g.gather(node, i):
            counts["embeddings"] += 1
        else:
            g.nodes.append(node)
    read = {name for node in g.nodes for name in node.input}
    kept = [i for i in model.graph.initializer if i.name not in g.used or i.name in read]
    del model.graph.node[:]
    model.graph.node.extend(g.nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + g.added)
    return Rewritten(counts["matmuls"], len(g.quantized), counts["embeddings"])
