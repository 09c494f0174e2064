"""Encoders, on all-MiniLM-L6-v2: the int8 export agrees with torch, is made offline once, never mixes vectors."""

import numpy as np
import pytest
from conftest import ARTICLE_FR_2

from rag.config import ConfigError, load_config
from rag.config import MINILM_MODEL as MODEL
from rag.embedding import Encoder, cache_key, get_embedder
from rag.errors import IndexMismatch, Remedy
from rag.indexing import Indexer
from rag.embedding.onnx import RECIPE, SIGNED_MODEL, OnnxEmbedder, cpu_has_vnni
from rag.store import Store

FRENCH = [
    "Un nouveau pont piéton a été inauguré samedi à Lyon, au-dessus de la Saône.",
    "Les contrôleurs aériens français ont entamé jeudi une grève de deux jours.",
    "Quelle est la longueur du pont ?",
    "La DGAC a demandé aux compagnies de réduire de moitié leurs vols à l’aéroport de Nantes.",
    "Le syndicat réclame des embauches.",
    "Qui a salué « un lien entre les deux rives » ?",
]


@pytest.fixture(scope="session")
def int8_cache(tmp_path_factory):
    """A fresh cache folder: the export below is made from the packaged model, offline."""
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="session")
def int8(int8_cache):
    return get_embedder(MODEL, encoder="onnx-int8", cache_dir=int8_cache)


@pytest.fixture(scope="session")
def torch_embedder():
    return get_embedder(MODEL, encoder="torch")


def test_int8_export_is_made_offline_into_the_cache_folder_and_reused(int8, int8_cache):
    folder = int8.folder
    assert folder.parent == int8_cache / "encoders"
    # the int8-weight copy is made beside the export on CPUs with VNNI only (see the test below)
    assert sorted(p.name for p in folder.iterdir() if p.name != SIGNED_MODEL) == \
        ["meta.json", "model.onnx", "tokenizer.json"]
    assert not list(int8_cache.glob("encoders/*.tmp-*"))
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    again = OnnxEmbedder(MODEL, cache_dir=int8_cache)
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp
    assert np.allclose(again.encode(FRENCH[:2]), int8.encode(FRENCH[:2]), atol=1e-6)


def test_int8_vectors_agree_with_torch_on_french_sentences(int8, torch_embedder):
    a, b = int8.encode(FRENCH), torch_embedder.encode(FRENCH)
    assert a.shape == b.shape == (len(FRENCH), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.98 and cos.mean() >= 0.99
    # the nearest sentence of each sentence is the same under both encoders
    assert ((a @ a.T) - 2 * np.eye(len(a))).argmax(1).tolist() == ((b @ b.T) - 2 * np.eye(len(b))).argmax(1).tolist()


def test_int8_counts_tokens_like_the_model_without_truncating(int8, torch_embedder):
    long = " ".join(FRENCH * 10)
    for text in [*FRENCH, long, "l’État", ""]:
        assert int8.count_tokens(text) == torch_embedder.count_tokens(text)
    assert int8.count_tokens(long) > int8.max_tokens == torch_embedder.max_tokens


def test_int8_keeps_input_order_and_a_text_does_not_depend_on_its_batch(int8):
    texts = ["Oui.", " ".join(FRENCH * 6), FRENCH[2], FRENCH[0], *FRENCH[3:], "Pont."]
    together = int8.encode(texts)
    alone = np.vstack([int8.encode([t]) for t in texts])
    # activations are scaled per token: a long text or a short one beside it changes nothing
    assert np.abs(together - alone).max() < 1e-5
    assert int8.encode([]).shape == (0, 384)


def test_int8_batches_spread_over_sessions_keep_each_vector_in_its_place(int8_cache):
    texts = [f"{FRENCH[i % len(FRENCH)]} " * (1 + i % 9) for i in range(60)]  # many batches of mixed lengths
    alone = np.vstack([OnnxEmbedder(MODEL, cache_dir=int8_cache, workers=1).encode([t]) for t in texts[:8]])
    for workers in (1, 3):
        together = OnnxEmbedder(MODEL, cache_dir=int8_cache, workers=workers).encode(texts)
        assert together.shape == (60, 384)
        assert np.abs(together[:8] - alone).max() < 1e-5
        if workers == 1:
            one_session = together
    assert np.array_equal(together, one_session)


def test_an_encoder_given_its_cores_keeps_only_those_busy(int8_cache):
    texts = [f"{FRENCH[i % len(FRENCH)]} " * (1 + i % 9) for i in range(40)]  # a long encoding: batch sessions
    for cores, sessions, threads in ((1, 1, 1), (2, 2, 1), (8, 4, 2)):  # a Ray actor's share of its node
        embedder = get_embedder(MODEL, encoder="onnx-int8", cache_dir=int8_cache, cores=cores)
        embedder.encode(texts)
        batch = embedder._sessions["batch"]
        assert len(batch) == sessions
        assert {s.get_session_options().intra_op_num_threads for s in batch} == {threads}


@pytest.mark.skipif(not cpu_has_vnni(), reason="this CPU has no VNNI: the encoder keeps the uint8 weights")
def test_int8_weights_run_as_int8_on_a_vnni_cpu_to_the_same_vectors(int8_cache, tmp_path, caplog):
    texts = [*FRENCH, " ".join(FRENCH * 5)]
    plain = OnnxEmbedder(MODEL, cache_dir=int8_cache, signed=False)
    signed = OnnxEmbedder(MODEL, cache_dir=int8_cache)
    assert signed.signed and not plain.signed
    assert np.array_equal(signed.encode(texts), plain.encode(texts))
    assert np.array_equal(signed.encode(texts[:1]), plain.encode(texts[:1]))  # the question session too
    copy = signed.folder / SIGNED_MODEL
    assert copy.is_file() and not list(signed.folder.glob("*.tmp-*"))
    stamp = copy.stat().st_mtime_ns
    OnnxEmbedder(MODEL, cache_dir=int8_cache).encode(texts)
    assert copy.stat().st_mtime_ns == stamp  # made once
    # a damaged copy: a warning, and the export itself answers with the same vectors
    import shutil

    moved = tmp_path / "encoders" / signed.folder.name
    shutil.copytree(signed.folder, moved)
    (moved / SIGNED_MODEL).write_bytes(b"not a model")
    damaged = OnnxEmbedder(MODEL, cache_dir=tmp_path)
    assert damaged.folder == moved
    assert np.array_equal(damaged.encode(texts), plain.encode(texts))
    assert SIGNED_MODEL in caplog.text and "does not load" in caplog.text


def test_int8_graph_quantises_every_weight_product_per_token(int8):
    import onnx

    graph = onnx.load(str(int8.folder / "model.onnx"))
    ops = [n.op_type for n in graph.graph.node]
    layers = 6  # all-MiniLM-L6-v2: query, key, value, output, two feed-forward products a layer
    assert ops.count("MatMulInteger") == 6 * layers and "MatMul" in ops  # attention's own products stay float
    assert ops.count("QuantizeLinear") == 4 * layers  # one per distinct input: q, k and v share theirs
    assert not {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "QAttention"} & set(ops)
    sizes = {t: sum(int(np.prod(i.dims)) for i in graph.graph.initializer if i.data_type == t)
             for t in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.FLOAT)}
    # weights in uint8 around 128 (exact products on every CPU), word embeddings in int8;
    # float32 left for position embeddings, biases and norms
    assert sizes[onnx.TensorProto.UINT8] > 0 and sizes[onnx.TensorProto.INT8] > 0
    assert sizes[onnx.TensorProto.FLOAT] < 0.02 * (sizes[onnx.TensorProto.INT8] + sizes[onnx.TensorProto.UINT8])
    assert (int8.folder / "model.onnx").stat().st_size < 30e6


def test_int8_export_keeps_layer_norms_plain_for_speed(int8):
    import onnx

    ops = [n.op_type for n in onnx.load(str(int8.folder / "model.onnx")).graph.node]
    layers = 6
    # onnxruntime's fused SkipLayerNormalization is a fifth of an encoding on one thread; Add + LayerNormalization
    assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") == 2 * layers + 1
    assert ops.count("BiasGelu") == layers  # GELU stays fused with its bias


def test_cache_keys_keep_encoders_apart():
    assert cache_key("all-MiniLM-L6-v2", "torch") == MODEL  # caches from before encoders stay valid
    # int8 vectors change with the export's recipe: recipe 1's kept the plain key, later ones add it
    assert cache_key(MODEL, Encoder.ONNX_INT8, recipe=1) == f"{MODEL}#onnx-int8"
    assert cache_key(MODEL, Encoder.ONNX_INT8) == f"{MODEL}#onnx-int8/{RECIPE}" != \
        cache_key(MODEL, Encoder.ONNX_INT8, recipe=1)


def test_an_unknown_encoder_is_a_clear_error():
    with pytest.raises(ValueError, match="'gpu' is not one of onnx-int8, torch"):
        get_embedder(encoder="gpu")
    with pytest.raises(ConfigError, match="RAG_ENCODER"):
        load_config(env={"RAG_ENCODER": "openvino"})


def test_index_records_its_encoder_and_the_cache_does_not_mix_encoders(tmp_path, corpus, int8, torch_embedder):
    config = load_config(env={}).replace(index_dir=str(tmp_path / "idx"))
    first = Indexer(config, torch_embedder).build([corpus], progress=False)
    store = Store(config.index_dir)
    assert store.manifest().encoder == "torch" and store.status()["encoder"] == "torch"
    # rebuilt with int8: nothing may come from the torch vectors in the cache
    again = Indexer(config, int8).build([corpus], rebuild=True, progress=False)
    assert again.encoded == again.chunks_new == first.chunks_new and again.cached == 0
    assert store.manifest().encoder == "onnx-int8"
    keys = {k for (k,) in store.db.execute("SELECT DISTINCT model FROM embedding_cache")}
    assert keys == {MODEL, f"{MODEL}#onnx-int8/{RECIPE}"}
    assert store.manifest().encoder_recipe == RECIPE and store.status()["encoder_recipe"] == RECIPE


def test_an_index_keeps_its_encoder_unless_another_is_asked_for(tmp_path, corpus, torch_embedder):
    index = str(tmp_path / "idx")
    Indexer(load_config(env={"RAG_ENCODER": "torch", "RAG_INDEX_DIR": index}), torch_embedder).build([corpus], progress=False)
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    # the default configuration (onnx-int8 for new indexes) follows the existing torch index
    follower = Indexer(load_config(env={"RAG_INDEX_DIR": index}))
    report = follower.build([corpus], progress=False)
    assert follower.encoder is Encoder.TORCH and report.added and report.encoded >= 1
    assert Store(index).manifest().encoder == "torch"
    # and questions are encoded the way its vectors were, whatever the configured default
    from rag.retrieval import Retriever

    retriever = Retriever(load_config(env={"RAG_INDEX_DIR": index, "RAG_ENCODER": "onnx-int8"}))
    assert retriever.embedder.encoder is Encoder.TORCH
    assert retriever.search("grève des contrôleurs aériens", mode="dense")[0].title
    # asking explicitly for another encoder says how to switch
    with pytest.raises(IndexMismatch, match=r"encoder=torch.*RAG_ENCODER says encoder=onnx-int8") as err:
        Indexer(load_config(env={"RAG_ENCODER": "onnx-int8", "RAG_INDEX_DIR": index})).build([corpus], progress=False)
    assert err.value.remedy is Remedy.REBUILD


def _as_recipe_1_index(index: str) -> None:
    """Make a torch-built index look like one an int8 export of recipe 1 made (as the release before wrote it)."""
    store = Store(index)
    with store.transaction() as db:
        db.execute("UPDATE manifest SET value='onnx-int8' WHERE key='encoder'")
        db.execute("DELETE FROM manifest WHERE key='encoder_recipe'")  # that release wrote no such row
        db.execute("UPDATE embedding_cache SET model=?", (f"{MODEL}#onnx-int8",))
    store.close()


def test_an_index_of_an_earlier_int8_recipe_is_encoded_again_once(tmp_path, corpus, int8, torch_embedder, caplog):
    from rag.retrieval import Retriever

    config = load_config(env={}).replace(index_dir=str(tmp_path / "idx"), cache_dir=str(int8.folder.parents[1]))
    first = Indexer(config, torch_embedder).build([corpus], progress=False)
    _as_recipe_1_index(config.index_dir)
    store = Store(config.index_dir)
    assert (store.manifest().encoder, store.manifest().encoder_recipe) == ("onnx-int8", 1)
    chunks_before = store.db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
    with caplog.at_level("WARNING", logger="rag.retrieval"):
        Retriever(config, embedder=int8)
    assert "earlier onnx-int8 export (recipe 1)" in caplog.text and "next build encodes them again" in caplog.text

    # nothing changed on disk, yet the next build encodes every chunk again with this recipe
    report = Indexer(config, int8).build([corpus], progress=False)
    assert sorted(report.reencoded) == sorted(first.added) and not report.added and not report.updated
    assert report.encoded == first.chunks_new and report.cached == 0
    assert "encoded again by the new encoder recipe" in report.summary()
    assert store.manifest().encoder_recipe == RECIPE
    assert store.db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall() == chunks_before
    keys = {k for (k,) in store.db.execute("SELECT DISTINCT model FROM embedding_cache")}
    assert keys == {f"{MODEL}#onnx-int8/{RECIPE}"}  # the old recipe's vectors are never read again
    # the index now holds exactly what this recipe makes of each chunk
    question = "grève des contrôleurs aériens"
    top = Retriever(config, embedder=int8).search(question, k=1, mode="dense")[0]
    title = store.db.execute("SELECT title FROM documents WHERE id=?", (top.doc_id,)).fetchone()[0]
    from rag.indexing.indexer import embed_text

    expected = float(int8.encode([question])[0] @ int8.encode([embed_text(int8.clip(title, config.title_tokens),
                                                                           top.text)])[0])
    assert top.dense == pytest.approx(expected, abs=1e-5)
    again = Indexer(config, int8).build([corpus], progress=False)
    assert not again.reencoded and not again.changed and again.encoded == 0


def test_exports_abandoned_by_dead_processes_are_removed(tmp_path):
    import os

    from rag.embedding.onnx import _remove_abandoned, export_dir

    folder = export_dir(MODEL, tmp_path)
    folder.parent.mkdir(parents=True)
    dead, alive = folder.with_name(f"{folder.name}.tmp-999999999"), folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    for d in (dead, alive):
        d.mkdir()
        (d / "fp32.onnx").write_bytes(b"x" * 1000)
    _remove_abandoned(folder)
    assert not dead.exists() and alive.exists()


def test_exports_of_earlier_recipes_of_the_same_model_files_are_removed(tmp_path):
    import json

    from rag.embedding.onnx import remove_older_recipes

    def export(name, **meta):
        folder = tmp_path / f"{name}-onnx-int8"
        folder.mkdir()
        (folder / "meta.json").write_text(json.dumps({"model": "m", "source": "/models/m", **meta}))
        return folder

    current = export("m-new", recipe=RECIPE)
    older = export("m-old", recipe=RECIPE - 1)
    other_files = export("m-elsewhere", recipe=RECIPE - 1, source="/other/venv/m")
    other_model = export("n-old", recipe=RECIPE - 1, model="n")
    unfinished = tmp_path / "m-x-onnx-int8"
    unfinished.mkdir()
    damaged = tmp_path / "m-y-onnx-int8"
    damaged.mkdir()
    (damaged / "meta.json").write_text("[]")
    assert remove_older_recipes(current) == [older]
    assert not older.exists() and current.exists() and other_files.exists() and other_model.exists()
    assert unfinished.exists() and damaged.exists()
