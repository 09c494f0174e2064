"""The int8 graph rewrite: per-channel weights, per-token activations, int8 embedding rows."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rag.embedding.int8_graph import per_channel, quantize, signed_weights  # noqa: E402
from rag.embedding.onnx import cpu_has_vnni  # noqa: E402

K, N, VOCAB = 64, 48, 5000


def _graph(rng: np.random.Generator, opset: int = 17):
    """ids -> Gather(table) -> x; y1 = x @ W1, y2 = x @ W2 (one shared input), y3 = y1 @ y1ᵀ (no weight)."""
    table = rng.normal(size=(VOCAB, K)).astype(np.float32)
    w1, w2 = (rng.normal(size=(K, N)).astype(np.float32) for _ in range(2))
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["x"], axis=0),
        helper.make_node("MatMul", ["x", "w1"], ["y1"]),
        helper.make_node("MatMul", ["x", "w2"], ["y2"]),
        helper.make_node("Transpose", ["y1"], ["y1t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["y1", "y1t"], ["y3"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "t"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
         for n, shape in (("y1", ["b", "t", N]), ("y2", ["b", "t", N]), ("y3", ["b", "t", "t"]))],
        [numpy_helper.from_array(a, n) for a, n in ((table, "table"), (w1, "w1"), (w2, "w2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, table, w1, w2


def _run(model, ids: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})


def test_per_channel_gives_each_column_or_row_its_own_scale():
    w = np.array([[1.0, -100.0], [0.5, 50.0]], dtype=np.float32)
    q, s = per_channel(w, axis=0)
    assert q.dtype == np.int8 and s.tolist() == pytest.approx([1 / 127, 100 / 127])
    assert np.abs(q * s - w).max() <= s.max() / 2 + 1e-6 and q[:, 0].tolist() == [127, 64]
    q, s = per_channel(w, axis=1)
    assert s.tolist() == pytest.approx([100 / 127, 50 / 127])
    assert per_channel(np.zeros((2, 3)), axis=0)[0].tolist() == [[0, 0, 0], [0, 0, 0]]  # no division by zero


@pytest.mark.parametrize("opset", [17, 18])  # the export's; the first where reductions take axes as an input
def test_rewritten_graph_stays_close_to_float_and_keeps_products_of_activations(opset):
    rng = np.random.default_rng(0)
    model, table, w1, w2 = _graph(rng, opset)
    ids = rng.integers(0, VOCAB, size=(3, 7))
    done = quantize(model)
    assert done == (2, 1, 1)  # two weight products sharing one quantised input; one embedding table
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulInteger") == 2 and ops.count("QuantizeLinear") == 1 and ops.count("MatMul") == 1
    onnx.checker.check_model(model)
    y1, y2, y3 = _run(model, ids)
    x = table[ids]
    for got, want in ((y1, x @ w1), (y2, x @ w2)):
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 0.02 * np.abs(want).max()
        cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
        assert cos.min() > 0.999
    assert np.allclose(y3, y1 @ y1.transpose(0, 2, 1), rtol=1e-4, atol=1e-3)  # left in float


def test_a_token_row_is_quantised_alone_whatever_its_neighbours():
    rng = np.random.default_rng(1)
    model, *_ = _graph(rng)
    quantize(model)
    ids = rng.integers(0, VOCAB, size=(4, 5))
    together = _run(model, ids)[0]
    alone = np.concatenate([_run(model, ids[i:i + 1])[0] for i in range(len(ids))])
    assert np.array_equal(together, alone)
    # one huge activation in another row does not coarsen this one
    model2, table, w1, _ = _graph(np.random.default_rng(1))
    table[ids[0, 0]] *= 1000.0
    model2.graph.initializer[0].CopyFrom(numpy_helper.from_array(table, "table"))
    quantize(model2)
    y = _run(model2, ids)[0]
    assert np.abs(y[1:] - together[1:]).max() < 1e-4


def test_a_weight_another_node_reads_is_kept_and_old_opsets_are_refused():
    model, *_ = _graph(np.random.default_rng(2))
    extra = helper.make_node("ReduceSum", ["w1"], ["w1_sum"], keepdims=0)  # reads w1 too
    model.graph.node.append(extra)
    model.graph.output.append(helper.make_tensor_value_info("w1_sum", TensorProto.FLOAT, []))
    quantize(model)
    assert "w1" in {i.name for i in model.graph.initializer}
    onnx.checker.check_model(model)
    old, *_ = _graph(np.random.default_rng(2), opset=13)
    with pytest.raises(ValueError, match="opset 15 or newer.*13"):
        quantize(old)


def test_products_near_the_int16_limit_are_exact_on_every_cpu():
    """Full-scale activations times full-scale weights: the pairs of products that overflow int16 in
    onnxruntime's uint8 x int8 AVX2 kernel (CPUs without VNNI) come out right."""
    ones = np.ones((K, N), dtype=np.float32)
    ones[:, 1::2] = -1.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["t", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["t", N])], [numpy_helper.from_array(ones, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    quantize(model)
    x = np.stack([np.ones(K), -np.ones(K), np.linspace(-1, 1, K)]).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": x})[0]
    assert np.allclose(y, x @ ones, atol=0.02 * K / 127 + 1e-4)


def test_signed_weights_store_the_same_integers_as_int8_and_give_the_same_products_with_vnni():
    rng = np.random.default_rng(3)
    model, *_ = _graph(rng)
    quantize(model)
    ids = rng.integers(0, VOCAB, size=(3, 9))
    before = _run(model, ids)
    unsigned = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_wq")}
    assert signed_weights(model) == 2 and signed_weights(model) == 0  # a second pass finds nothing to do
    onnx.checker.check_model(model)
    signed = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name in unsigned}
    for name, values in unsigned.items():
        assert values.dtype == np.uint8 and signed[name].dtype == np.int8
        assert np.array_equal(signed[name].astype(np.int16) + 128, values.astype(np.int16))
    after = _run(model, ids)
    for a, b in zip(before, after):
        if cpu_has_vnni():  # exact int32 sums both ways: the same bits
            assert np.array_equal(a, b)
        else:  # uint8 x int8 may saturate without VNNI: close only
            assert np.abs(a - b).max() < 0.05 * np.abs(a).max()


def test_vnni_is_read_from_the_cpu_flags(tmp_path):
    for flags, expected in (("fpu sse avx2 avx512f avx512_vnni", True), ("fpu avx2 avx_vnni", True),
                            ("fpu sse avx2 fma", False)):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n", encoding="utf-8")
        assert cpu_has_vnni(str(info)) is expected
    assert cpu_has_vnni(str(tmp_path / "missing")) is False
