"""Chunking: exact offsets, the model's token limit, cuts at sentence ends."""

import pytest
from conftest import SEEDS

from rag.indexing.chunking import Chunker
from rag.ingest import load_paths, make_document


@pytest.fixture(scope="module")
def seed():
    return load_paths([SEEDS]).documents[0]


def test_offsets_point_at_the_chunk_text(embedder, seed):
    chunks = Chunker(embedder.count_tokens, 120, 20).run(seed)
    assert len(chunks) > 3
    for c in chunks:
        assert seed.text[c.start:c.end] == c.text


def test_no_chunk_exceeds_the_limit_or_the_model(embedder, seed):
    for limit in (40, 120, 200):
        for c in Chunker(embedder.count_tokens, limit, limit // 6).run(seed):
            assert embedder.count_tokens(c.text) <= limit <= embedder.max_tokens - 2


def test_chunks_cover_the_whole_text(embedder, seed):
    chunks = Chunker(embedder.count_tokens, 60, 10).run(seed)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    missing = "".join(ch for i, ch in enumerate(seed.text) if i not in covered)
    assert missing.strip() == ""


def test_cuts_fall_at_sentence_ends(embedder):
    sentences = [f"Phrase numéro {i} : le ministre l’a dit à Téhéran, selon l’agence." for i in range(40)]
    doc = make_document("k", "s", "", " ".join(sentences))
    chunks = Chunker(embedder.count_tokens, 80, 0).run(doc)
    assert len(chunks) > 2
    assert all(c.text.endswith(".") for c in chunks)


def test_a_giant_word_is_still_cut_to_the_limit(embedder):
    doc = make_document("k", "s", "", "x" * 5000 + " fin.")
    chunks = Chunker(embedder.count_tokens, 50, 5).run(doc)
    assert all(embedder.count_tokens(c.text) <= 50 for c in chunks)
    assert all(doc.text[c.start:c.end] == c.text for c in chunks)


def test_batched_documents_give_the_chunks_of_one_by_one(embedder, seed, monkeypatch):
    from rag.indexing import chunking

    docs = [seed] + [make_document(f"k{i}", f"s{i}", "", f"Courte dépêche numéro {i}. " * (i + 1)) for i in range(9)]
    asked: list[list[str]] = []

    def spans(texts):
        asked.append(list(texts))
        return embedder.token_spans(texts)

    monkeypatch.setattr(chunking, "GROUP", 4)
    monkeypatch.setattr(chunking, "GROUP_CHARS", 600)  # the seed is longer: measured piece by piece
    plain = Chunker(embedder.count_tokens, 60, 10)
    batched = Chunker(embedder.count_tokens, 60, 10, spans=spans).run_all(docs)
    assert batched == [plain.run(d) for d in docs]
    assert all(len(group) <= 4 and sum(map(len, group)) <= 600 for group in asked)
    assert sorted(t for group in asked for t in group) == sorted(d.text for d in docs[1:])


REPEATED = "Le ministre a rencontre les delegues a Mascate pour des discussions."


@pytest.mark.parametrize("limit, overlap", [(200, 32), (40, 8)])
@pytest.mark.parametrize("joiner, times", [("\n\n", 100), (" ", 200), ("\n", 150)])
def test_repeated_text_gets_the_offsets_of_its_own_cut(embedder, joiner, times, limit, overlap):
    doc = make_document("k", "s", "", joiner.join([REPEATED] * times))
    chunks = Chunker(embedder.count_tokens, limit, overlap).run(doc)
    assert len(chunks) > 5
    assert all(doc.text[c.start:c.end] == c.text for c in chunks)
    assert all(a.start < b.start and b.start <= a.end + len(joiner) for a, b in zip(chunks, chunks[1:]))
    assert chunks[-1].end == len(doc.text)


def test_the_cut_is_langchains_recursive_split(embedder, seed):
    """On ordinary text the chunks are exactly those of LangChain's RecursiveCharacterTextSplitter."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.indexing.chunking import SEPARATORS

    texts = [seed, make_document("k", "s", "", "\n".join([REPEATED + " Puis : il part; encore, oui !"] * 30))]
    for limit, overlap in ((200, 32), (60, 10)):
        theirs = RecursiveCharacterTextSplitter(separators=SEPARATORS, is_separator_regex=True, keep_separator="end",
                                                chunk_size=limit, chunk_overlap=overlap,
                                                length_function=embedder.count_tokens, strip_whitespace=True)
        for doc in texts:
            ours = Chunker(embedder.count_tokens, limit, overlap).run(doc)
            assert [c.text for c in ours] == theirs.split_text(doc.text)
