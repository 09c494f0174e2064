"""Benchmark corpora: PIAF-dev as documents and questions, and synthetic French corpora made from it.

Synthetic chunks honestly cost what real ones cost to store and search, but encoding 100,000
of them would take most of an hour on 2 cores. So every PIAF sentence and title is encoded
once, for real, with the encoder under test (cached in ``bench/.cache/``, git-ignored), and a
synthetic chunk's vector is the normalised mean of the vectors of the sentences it is made
of (:class:`ComposedEmbedder`). The chunks themselves go through the real loader, chunker,
store, BM25 and FAISS code; only the model call is replaced.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.embedding import PASSAGE, Embedder
from rag.indexing.chunking import SENTENCE_END
from rag.ingest.loading import doc_id_for, make_document, squad_key
from rag.schema import Document

CACHE = Path(__file__).resolve().parent / ".cache"
_PIECES = re.compile(r"\n+|" + SENTENCE_END)


@dataclass
class Question:
    """A PIAF question and the document id of its paragraph."""

    text: str
    gold: str


@dataclass
class Piaf:
    """PIAF-dev: paragraphs as documents (as ``rag index build`` loads them) and questions."""

    path: Path
    documents: list[Document]
    questions: list[Question]

    @property
    def sentences(self) -> list[str]:
        """Distinct sentences of the paragraphs, in order."""
        return list(dict.fromkeys(p for d in self.documents for p in split_pieces(d.text)))

    @property
    def titles(self) -> list[str]:
        """Distinct article titles."""
        return list(dict.fromkeys(d.title for d in self.documents))


def split_pieces(text: str) -> list[str]:
    """A text cut at line breaks and sentence ends (the chunker's own sentence rule)."""
    return [p.strip() for p in _PIECES.split(text) if p and p.strip()]


def load_piaf(path: Path, limit_docs: int | None = None) -> Piaf:
    """Read a SQuAD-format file: one document per paragraph (as the loader makes them), questions with gold ids.

    Parameters
    ----------
    path : Path
        The SQuAD-format JSON file.
    limit_docs : int, optional
        Keep only the first paragraphs (and their questions), for quick runs.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    docs, questions = [], []
    for ai, article in enumerate(data["data"]):
        for pi, para in enumerate(article["paragraphs"]):
            if limit_docs is not None and len(docs) >= limit_docs:
                break
            key = squad_key(path, ai, pi)
            docs.append(make_document(key, f"{path.name}#{ai}-{pi}", article.get("title", ""), para["context"]))
            gold = doc_id_for(key)
            questions.extend(Question(q["question"], gold) for q in para.get("qas", []) if q.get("question"))
    return Piaf(path, docs, questions)


def cached_vectors(embedder: Embedder, texts: Sequence[str], name: str,
                   prompt: str | None = PASSAGE) -> np.ndarray:
    """Encode ``texts`` (with the model's ``prompt``) once per model and encoder; later calls read
    ``bench/.cache``.

    The cache is a ``.npy`` array plus a ``.json`` list of the texts (no pickle); it is used
    only if the texts are the same.
    """
    texts = list(texts)
    parts = [embedder.key, embedder.prompt(prompt), *texts]
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
    stem = CACHE / f"{name}-{digest}"
    if stem.with_suffix(".npy").is_file():
        return np.load(stem.with_suffix(".npy"), allow_pickle=False)
    vectors = embedder.encode(texts, prompt=prompt)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(stem.with_suffix(".npy"), vectors, allow_pickle=False)
    stem.with_suffix(".json").write_text(json.dumps({"key": embedder.key, "texts": texts}, ensure_ascii=False),
                                         encoding="utf-8")
    return vectors


class ComposedEmbedder:
    """Stands in for the model on synthetic chunks: the mean of the real vectors of their pieces.

    Pieces (sentences and titles) seen before are looked up; a piece never seen (a sentence cut
    by the chunker) is encoded for real and remembered. Tokens are counted by the real model.

    Parameters
    ----------
    real : Embedder
        The encoder under test.
    pieces : sequence of str
        Texts whose vectors are known.
    vectors : np.ndarray
        Their vectors, row for row.
    """

    def __init__(self, real: Embedder, pieces: Sequence[str], vectors: np.ndarray):
        self.real = real
        self.known = dict(zip(pieces, vectors))
        self.name, self.encoder, self.key = real.name, real.encoder, real.key
        self.dim, self.max_tokens, self.batch_size = real.dim, real.max_tokens, real.batch_size
        self.count_tokens, self.clip = real.count_tokens, real.clip
        self.prompts, self.prompt = real.prompts, real.prompt
        self.encoded_for_real = 0

    def encode(self, texts: Sequence[str], progress: bool = False, prompt: str | None = PASSAGE) -> np.ndarray:
        """Composed unit vectors for ``texts``, shape ``(len(texts), dim)`` (pieces known as passages)."""
        split = [split_pieces(t) or [t] for t in texts]
        unknown = list(dict.fromkeys(p for pieces in split for p in pieces if p not in self.known))
        if unknown:
            self.known.update(zip(unknown, self.real.encode(unknown, prompt=prompt)))
            self.encoded_for_real += len(unknown)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, pieces in enumerate(split):
            v = np.mean([self.known[p] for p in pieces], axis=0)
            out[row] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out


def synthetic_texts(piaf: Piaf, n: int, seed: int, first: int = 0) -> list[tuple[str, str]]:
    """``n`` synthetic French articles (title, text): 3 to 9 PIAF sentences drawn at random.

    ``first`` numbers them, so that successive calls make different articles.
    """
    rng = np.random.default_rng([seed, first])
    sentences, titles = piaf.sentences, piaf.titles
    out = []
    for _ in range(n):
        k = int(rng.integers(3, 10))
        picks = rng.choice(len(sentences), size=k, replace=False)
        out.append((titles[int(rng.integers(len(titles)))], " ".join(sentences[i] for i in picks)))
    return out


def synthetic_documents(piaf: Piaf, n: int, seed: int = 0, first: int = 0) -> list[Document]:
    """Synthetic articles as in-memory documents (sources ``synthetic/NNNNNNN``)."""
    return [make_document(f"synthetic://{first + i}", f"synthetic/{first + i:07d}", title, text)
            for i, (title, text) in enumerate(synthetic_texts(piaf, n, seed, first))]


def write_synthetic_files(piaf: Piaf, folder: Path, n: int, seed: int = 0) -> list[Path]:
    """Synthetic articles as ``.txt`` files (title on the first line) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (title, text) in enumerate(synthetic_texts(piaf, n, seed)):
        path = folder / f"{i:06d}.txt"
        path.write_text(f"{title}\n\n{text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def piece_vectors(embedder: Embedder, piaf: Piaf) -> tuple[list[str], np.ndarray]:
    """Every PIAF sentence and title with its real vector (cached)."""
    pieces = list(dict.fromkeys(piaf.sentences + piaf.titles))
    return pieces, cached_vectors(embedder, pieces, "pieces")
