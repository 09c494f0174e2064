"""Property-based tests (hypothesis): chunker offsets, lengths and coverage; the text normaliser."""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.indexing.chunking import Chunker
from rag.ingest.loading import clean_text, make_document
from rag.text.analysis import analyze
from rag.text.normalize import detect_language, normalize_answer
from rag.text.tokens import count_between

WORDS = ["l’État", "aujourd'hui", "États‑Unis", "ministre", "Téhéran", "a", "dit", "«", "»", "—", "12,5", "%",
         "qu’il", "Mascate", "Oman.", "Fin!", "Vraiment?", "…", "\n", "\n\n", "  ", "x" * 40, "🙂", "\u00a0"]
texts = st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=12), min_size=1, max_size=300).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, limit=st.integers(min_value=16, max_value=120))
@example(text="x" * 40, limit=16)  # repetitive text: offsets must move forward
def test_chunks_are_exact_slices_within_the_limit_and_lose_no_text(embedder, text, limit):
    doc = make_document("k", "s", "t", text)
    chunks = Chunker(embedder.count_tokens, limit, limit // 5).run(doc)
    covered = set()
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert embedder.count_tokens(c.text) <= limit
        covered.update(range(c.start, c.end))
    lost = "".join(ch for i, ch in enumerate(doc.text) if i not in covered)
    assert lost.strip() == ""
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, limit=st.integers(min_value=16, max_value=120))
@example(text="x" * 40 + " é" + "\u0301" * 3 + " fin", limit=16)  # giant word cut mid-way; combining accents
def test_lengths_read_off_token_spans_give_the_same_chunks(embedder, text, limit):
    doc = make_document("k", "s", "t", text)
    plain = Chunker(embedder.count_tokens, limit, limit // 5).run(doc)
    assert Chunker(embedder.count_tokens, limit, limit // 5, spans=embedder.token_spans).run_all([doc]) == [plain]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, cut=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_a_span_count_is_the_tokenizers_or_none(minilm, text, cut):
    # MiniLM's tokenizer splits at punctuation, so spans can be read off it; e5's gives none (chunks then
    # count each piece, which the chunk properties above check)
    a, b = sorted(int(f * len(text)) for f in cut)
    n = count_between(minilm.token_spans([text])[0], a, b)
    assert n is None or n == minilm.count_tokens(text[a:b])


@pytest.fixture(scope="module")
def minilm():
    """The English MiniLM, whose tokenizer gives token spans."""
    from rag.embedding import get_embedder

    return get_embedder("sentence-transformers/all-MiniLM-L6-v2")


@given(st.text(max_size=200))
def test_normalised_answers_are_idempotent_and_plain(text):
    n = normalize_answer(text)
    assert normalize_answer(n) == n
    assert n == n.strip() and "  " not in n
    assert all(c.isdigit() or ("a" <= c <= "z") or c == " " for c in n)


@given(st.sampled_from(["États‑Unis", "Etats-Unis", "ÉTATS UNIS", "états–unis", "Etats\u2011Unis", "etats_unis"]))
def test_case_accents_and_hyphens_do_not_matter(variant):
    assert normalize_answer(variant) == "etats unis"


@given(st.text(max_size=300))
def test_language_is_always_french_or_english(text):
    assert detect_language(text) in {"fr", "en"}


@given(st.text(max_size=300), st.sampled_from(["fr", "en"]))
def test_analysis_gives_folded_terms_for_any_text(text, lang):
    for term in analyze(text, lang):
        assert term and term == term.lower() and " " not in term


@given(st.text(max_size=300))
def test_clean_text_is_stable(text):
    assert clean_text(clean_text(text)) == clean_text(text)


# -- evaluation parsers ------------------------------------------------------------------------
from rag.evaluation import QAFormatError, load_qa  # noqa: E402

words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)
records = st.lists(st.fixed_dictionaries({"question": words, "answers": st.lists(words, max_size=3)}),
                   min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(records)
@example([{"question": "0\x85", "answers": []}, {"question": "a\u2028b", "answers": ["c\x1cd"]}])
def test_jsonl_sets_round_trip(tmp_path_factory, recs):
    import json

    path = tmp_path_factory.mktemp("qa") / "set.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    qa = load_qa(path)
    assert qa.kind == "jsonl" and len(qa.items) == len(recs)
    for item, rec in zip(qa.items, recs):
        assert item.question == rec["question"].strip() and item.answers == rec["answers"]
        assert item.answerable == bool(rec["answers"])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_any_bytes_either_parse_or_fail_with_a_message_naming_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("qa") / "junk.jsonl"
    path.write_bytes(data)
    try:
        qa = load_qa(path)
    except QAFormatError as exc:
        assert str(path) in str(exc)
    else:
        assert qa.items and all(i.question for i in qa.items)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.fixed_dictionaries({"question": words, "answers": st.lists(
    st.fixed_dictionaries({"text": words}), max_size=2)}), max_size=3), min_size=1, max_size=4))
def test_squad_sets_give_one_item_per_question_with_its_paragraph(tmp_path_factory, paragraphs):
    import json

    data = {"data": [{"title": "T", "paragraphs": [{"context": f"Paragraphe {i}.", "qas": qas}
                                                   for i, qas in enumerate(paragraphs)]}]}
    path = tmp_path_factory.mktemp("qa") / "set.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    total = sum(len(q) for q in paragraphs)
    if not total:
        with pytest.raises(QAFormatError, match="no question"):
            load_qa(path)
        return
    qa = load_qa(path)
    assert qa.kind == "squad" and len(qa.items) == total
    assert all(i.doc.endswith(f"#0-{int(i.where.split('paragraph ')[1].split(',')[0])}") for i in qa.items if i.answers)
