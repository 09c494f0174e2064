"""What a user would otherwise write: LangChain's FAISS over HuggingFaceEmbeddings, side by side.

Same model files, same chunk texts (read back from our PIAF index, title prefix included),
same questions, same process. LangChain's side is the recipe from its documentation:
``FAISS.from_documents(docs, HuggingFaceEmbeddings(model_name=...))`` then
``similarity_search(question, k=10)``. ``HuggingFaceEmbeddings`` comes from
``langchain-community`` (``langchain-huggingface`` would pin an older ``huggingface_hub``
than the rest of this project needs); it is the same sentence-transformers call.

Build time is ours, loading and chunking included, against theirs from ready-made chunks; the
two sides take turns, twice, and each keeps its best time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rag.config import DEFAULT_MODEL, Config
from rag.embedding import get_embedder, resolve_model
from rag.indexing.indexer import Indexer, embed_text
from rag.retrieval import Retriever
from rag.store import Store

from .corpus import Piaf
from .measure import Timer, latencies, percentiles_ms, quiet, rank_metrics


def indexed_chunks(index_dir: str, title_tokens: int, clip) -> list[tuple[str, str]]:
    """(embedded text, document id) of every chunk of an index, in chunk order."""
    rows = Store(index_dir).db.execute(
        "SELECT d.title, c.text, c.doc_id FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid")
    return [(embed_text(clip(title, title_tokens), text), doc_id) for title, text, doc_id in rows]


def _ranked_and_timed(search, qs) -> tuple[dict, dict]:
    """Rank metrics and latency of ``search(question) -> doc ids`` over the questions (one timed pass)."""
    texts = list(dict.fromkeys(q.text for q in qs))
    ranked: dict[str, list[str]] = {}
    times = latencies(lambda q: ranked.__setitem__(q, search(q)), texts)
    return rank_metrics([ranked[q.text] for q in qs], [q.gold for q in qs]), percentiles_ms(times)


def run(piaf: Piaf, workdir: Path, encoder: str, questions: int, rounds: int = 2) -> dict:
    """Build and query both sides, taking turns; each build time is the best of ``rounds``.

    Parameters
    ----------
    piaf : Piaf
        The corpus and questions.
    workdir : Path
        Where our indexes go.
    encoder : str
        Our encoder (the default one).
    questions : int
        Questions to ask.
    rounds : int
        Builds of each side.
    """
    with quiet():
        try:
            from langchain_community.embeddings import HuggingFaceEmbeddings
            from langchain_community.vectorstores import FAISS
            from langchain_core.documents import Document as LCDocument
        except ImportError as exc:
            return {"skipped": f"LangChain is not installed ({exc.name}): pip install 'rag[bench]'"}

        embedder = get_embedder(encoder=encoder)
        with Timer() as load:
            embeddings = HuggingFaceEmbeddings(model_name=resolve_model(DEFAULT_MODEL), model_kwargs={"device": "cpu"})
            embeddings.embed_query("Préchauffage du modèle.")
        ours_s, theirs_s = [], []
        for i in range(rounds):
            config = Config(index_dir=str(workdir / f"langchain-rag-{i}"), encoder=encoder)
            shutil.rmtree(config.index_dir, ignore_errors=True)
            with Timer() as t:
                report = Indexer(config, embedder).build([piaf.path], progress=False)
            ours_s.append(t.seconds)
            chunks = indexed_chunks(config.index_dir, config.title_tokens, embedder.clip)
            docs = [LCDocument(page_content=text, metadata={"doc_id": doc_id}) for text, doc_id in chunks]
            with Timer() as t:
                store = FAISS.from_documents(docs, embeddings)
            theirs_s.append(t.seconds)
        qs = piaf.questions[:questions]
        their_quality, their_latency = _ranked_and_timed(
            lambda q: [d.metadata["doc_id"] for d in store.similarity_search(q, k=10)], qs)
    retriever = Retriever(config, embedder=embedder)
    our_quality, our_latency = _ranked_and_timed(lambda q: [h.doc_id for h in retriever.search(q, k=10)], qs)
    theirs = {"model_load_s": round(load.seconds, 2), "chunks": len(docs), "build_s": round(min(theirs_s), 2),
              "builds_s": [round(x, 2) for x in theirs_s], "quality": their_quality, "latency_ms": their_latency}
    mine = {"encoder": encoder, "chunks": report.chunks_total, "build_s": round(min(ours_s), 2),
            "builds_s": [round(x, 2) for x in ours_s], "quality": our_quality, "latency_ms": our_latency}
    return {
        "langchain": theirs, "rag": mine,
        "build_time_ratio": round(mine["build_s"] / theirs["build_s"], 3),
        "query_latency_ratio": round(mine["latency_ms"]["p50"] / theirs["latency_ms"]["p50"], 3),
        "mrr@10_delta": round(mine["quality"]["mrr@10"] - theirs["quality"]["mrr@10"], 4),
        "note": "ratios are rag / langchain: below 1 means rag is faster",
    }
