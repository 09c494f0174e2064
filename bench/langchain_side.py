"""What a user would otherwise write: LangChain's FAISS over HuggingFaceEmbeddings, side by side.

Same model files, same chunk texts (read back from our PIAF index, title prefix included),
same questions, same process. LangChain's side is the recipe from its documentation:
``FAISS.from_documents(docs, HuggingFaceEmbeddings(model_name=...))`` then
``similarity_search(question, k=10)``. ``HuggingFaceEmbeddings`` comes from
``langchain-community`` (``langchain-huggingface`` would pin an older ``huggingface_hub``
than the rest of this project needs); it is the same sentence-transformers call.

Build time is ours, loading and chunking included, against theirs from ready-made chunks.
"""

from __future__ import annotations

from rag.config import Config
from rag.embedding import get_embedder, resolve_model
from rag.indexer import embed_text
from rag.retrieval import Retriever
from rag.store import Store

from .corpus import Piaf
from .measure import Timer, latencies, percentiles_ms, quiet, rank_metrics


def indexed_chunks(index_dir: str, title_tokens: int, clip) -> list[tuple[str, str]]:
    """(embedded text, document id) of every chunk of an index, in chunk order."""
    rows = Store(index_dir).db.execute(
        "SELECT d.title, c.text, c.doc_id FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid")
    return [(embed_text(clip(title, title_tokens), text), doc_id) for title, text, doc_id in rows]


def run(piaf: Piaf, ours: dict, questions: int) -> dict:
    """Build and query LangChain's FAISS; compare with our default-encoder run ``ours``.

    Parameters
    ----------
    piaf : Piaf
        The corpus and questions.
    ours : dict
        Our encoder run (see :func:`bench.build.encoder_run`): its index, build time, quality.
    questions : int
        Questions to ask.
    """
    with quiet():
        try:
            from langchain_community.embeddings import HuggingFaceEmbeddings
            from langchain_community.vectorstores import FAISS
            from langchain_core.documents import Document as LCDocument
        except ImportError as exc:
            return {"skipped": f"LangChain is not installed ({exc.name}): pip install 'rag[bench]'"}

        config = Config(index_dir=ours["index_dir"], encoder=ours["encoder"])
        retriever = Retriever(config, embedder=get_embedder(config.model, encoder=config.encoder))
        chunks = indexed_chunks(config.index_dir, config.title_tokens, retriever.embedder.clip)
        with Timer() as load:
            embeddings = HuggingFaceEmbeddings(model_name=resolve_model(config.model), model_kwargs={"device": "cpu"})
            embeddings.embed_query("Préchauffage du modèle.")
        docs = [LCDocument(page_content=text, metadata={"doc_id": doc_id}) for text, doc_id in chunks]
        with Timer() as build:
            store = FAISS.from_documents(docs, embeddings)
        qs = piaf.questions[:questions]
        texts = list(dict.fromkeys(q.text for q in qs))
        ranked: dict[str, list[str]] = {}
        times = latencies(lambda q: ranked.__setitem__(q, [d.metadata["doc_id"] for d in store.similarity_search(q, k=10)]),
                          texts)
    theirs = {"model_load_s": round(load.seconds, 2), "chunks": len(docs), "build_s": round(build.seconds, 2),
              "quality": rank_metrics([ranked[q.text] for q in qs], [q.gold for q in qs]),
              "latency_ms": percentiles_ms(times)}
    our_latency = percentiles_ms(latencies(lambda q: retriever.search(q, k=10), texts))
    mine = {"encoder": ours["encoder"], "chunks": ours["chunks"], "build_s": ours["build_s"],
            "quality": ours["quality"]["hybrid"], "latency_ms": our_latency}
    return {
        "langchain": theirs, "rag": mine,
        "build_time_ratio": round(mine["build_s"] / theirs["build_s"], 3),
        "query_latency_ratio": round(mine["latency_ms"]["p50"] / theirs["latency_ms"]["p50"], 3),
        "mrr@10_delta": round(mine["quality"]["mrr@10"] - theirs["quality"]["mrr@10"], 4),
        "note": "ratios are rag / langchain: below 1 means rag is faster",
    }
