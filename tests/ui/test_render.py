"""The chat page's HTML: clickable markers, highlighted sentences, and nothing a document can run."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from rag.schema import Answer, Citation, Short
from ui.render import (
    Turn,
    answer_markdown,
    documents_html,
    escape_markdown,
    highlight_excerpt,
    message_list,
    sources_html,
    status_html,
)

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> [evil](javascript:alert(1))'
PAGE_TAGS = {"a", "details", "summary", "span", "div", "mark", "strong", "section", "h4", "p", "table", "thead", "tbody",
             "tr", "th", "td", "code"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(markup: str) -> list[tuple[str, dict]]:
    """Every element a browser would build from ``markup``."""
    parser = _Elements()
    parser.feed(markup)
    return parser.tags


def assert_inert(markup: str) -> None:
    """Only the page's own elements, no event handler, no script URL."""
    for tag, attrs in elements(markup):
        assert tag in PAGE_TAGS, f"unexpected <{tag}> in {markup[:200]}"
        assert not any(name.startswith("on") for name in attrs), f"event handler on <{tag}>"
        assert not any("javascript:" in (attrs.get(k) or "") for k in ("href", "src", "action"))


def citation(n: int = 1, excerpt: str = "Premier. Abbas Araghchi est ministre. Fin.", start: int = 100,
             sentence: tuple[int, int] | None = None, title: str = "Iran", source: str = "seeds/a.txt") -> Citation:
    s, e = sentence if sentence else (None, None)
    return Citation(n=n, doc_id="d1", source=source, title=title, chunk_id=f"c{n}", excerpt=excerpt, start=start,
                    end=start + len(excerpt), score=0.8, sentence_start=s, sentence_end=e)


def test_markers_become_links_to_the_sources_of_their_own_answer():
    ans = Answer("q", "Abbas Araghchi [1], à Mascate [2].", False, [citation(1), citation(2)])
    md = answer_markdown(ans, turn=3)
    links = [attrs["href"] for tag, attrs in elements(md) if tag == "a"]
    assert links == ["#rag-src-3-1", "#rag-src-3-2"]
    panel = sources_html([Turn(3, "q", ans)], "fr")
    ids = [attrs.get("id") for tag, attrs in elements(panel) if tag == "details"]
    assert ids == ["rag-src-3-1", "rag-src-3-2"]


def test_grouped_markers_link_each_number():
    ans = Answer("q", "Oman [1, 2].", False, [citation(1), citation(2)])
    links = [attrs["href"] for tag, attrs in elements(answer_markdown(ans, 1)) if tag == "a"]
    assert links == ["#rag-src-1-1", "#rag-src-1-2"]


def test_a_number_in_brackets_without_a_citation_stays_text():
    ans = Answer("q", "Voir l'article [7] et [1].", False, [citation(1)])
    md = answer_markdown(ans, 1)
    assert [a["href"] for tag, a in elements(md) if tag == "a"] == ["#rag-src-1-1"]
    assert r"\[7\]" in md


def test_hostile_document_text_is_inert_everywhere_it_shows():
    c = citation(excerpt=HOSTILE, title=HOSTILE, source="<img src=x onerror=alert(1)>.txt", sentence=(100, 140))
    ans = Answer(HOSTILE, HOSTILE + " [1]", False, [c], notice=HOSTILE)
    turn = Turn(1, HOSTILE, ans)
    for markup in (answer_markdown(ans, 1), sources_html([turn], "fr"),
                   documents_html([{"title": HOSTILE, "source": HOSTILE, "chunks": 1, "lang": "fr"}], "en"),
                   status_html({"documents": 1, "chunks": 2, "model": HOSTILE, "updated": HOSTILE}, "fr")):
        assert_inert(markup)
        assert "&lt;script&gt;" in markup


def test_markdown_in_documents_cannot_make_links_or_formatting():
    md = escape_markdown("[evil](javascript:alert(1)) **bold** `code` # title $x$")
    assert "](" not in md.replace(r"\](", "")
    assert "**" not in md and "`" not in md.replace(r"\`", "") and "$" not in md.replace(r"\$", "")


def test_the_supporting_sentence_is_highlighted_inside_the_excerpt():
    excerpt = "Premier. Abbas Araghchi est ministre. Fin."
    s = 100 + excerpt.index("Abbas")
    c = citation(excerpt=excerpt, sentence=(s, s + len("Abbas Araghchi est ministre.")))
    marks = highlight_excerpt(c)
    assert '<mark class="rag-support">Abbas Araghchi est ministre.</mark>' in marks
    assert marks.startswith("Premier. ") and marks.endswith(" Fin.")


@pytest.mark.parametrize("sentence", [None, (0, 50), (500, 600)])
def test_without_a_sentence_in_the_excerpt_nothing_is_highlighted(sentence):
    marks = highlight_excerpt(citation(sentence=sentence))
    assert "<mark" not in marks and marks == "Premier. Abbas Araghchi est ministre. Fin."


def test_a_sentence_straddling_the_excerpt_is_highlighted_within_it():
    c = citation(excerpt="Début de phrase. Suite", start=100, sentence=(109, 130))
    assert highlight_excerpt(c) == 'Début de <mark class="rag-support">phrase. Suite</mark>'


def test_only_the_latest_answer_sources_show_older_ones_stay_reachable():
    t1 = Turn(1, "q1", Answer("q1", "a [1]", False, [citation(1)]))
    t2 = Turn(2, "q2", Answer("q2", "b [1]", False, [citation(1)]))
    sections = [a for tag, a in elements(sources_html([t1, t2], "en")) if tag == "section"]
    assert [(s["data-turn"], "hidden" in s) for s in sections] == [("1", True), ("2", False)]


def test_an_answer_without_citations_says_so_in_the_panel():
    turn = Turn(1, "q", Answer("q", "Je ne trouve pas la réponse.", True, []))
    assert "Aucun extrait" in sources_html([turn], "fr")


def test_status_line_counts_documents_and_passages_in_the_interface_language():
    status = {"documents": 1, "chunks": 11, "model": "sentence-transformers/all-MiniLM-L6-v2",
              "updated": "2025-01-02T03:04:05+00:00"}
    fr = status_html(status, "fr")
    assert "1 document ·" in fr and "11 extraits" in fr and "all-MiniLM-L6-v2" in fr and "2025-01-02 03:04:05" in fr
    assert "2 documents" in status_html({**status, "documents": 2}, "en")


def test_chat_history_shows_questions_and_answers_in_order():
    turns = [Turn(1, "Qui ?", Answer("Qui ?", "Lui [1].", False, [citation(1)]))]
    msgs = message_list(turns)
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == "Qui ?" and 'href="#rag-src-1-1"' in msgs[1]["content"]


def test_the_short_answer_comes_first_in_bold_and_is_marked_in_its_sentence_and_excerpt():
    excerpt = "Premier. Abbas Araghchi est ministre. Fin."
    s = 100 + excerpt.index("Abbas")
    c = citation(excerpt=excerpt, sentence=(s, s + len("Abbas Araghchi est ministre.")))
    short = Short("Abbas Araghchi", 1, s, s + len("Abbas Araghchi"), 0.9)
    ans = Answer("Qui est ministre ?", "Abbas Araghchi est ministre. [1]", False, [c], short)
    md = answer_markdown(ans, 2)
    assert md.startswith('<strong class="rag-answer">Abbas Araghchi</strong> <a class="rag-cite"')
    assert '<mark class="rag-short">Abbas Araghchi</mark> est ministre\\.' in md
    card = sources_html([Turn(2, "q", ans)], "fr")
    assert ('<mark class="rag-support"><mark class="rag-short">Abbas Araghchi</mark> est ministre.</mark>' in card)


def test_a_hostile_short_answer_stays_text():
    excerpt = "Avant. " + HOSTILE + " Après."
    s = 100 + excerpt.index("<script>")
    c = citation(excerpt=excerpt, sentence=(100, 100 + len(excerpt)))
    short = Short(HOSTILE, 1, s, s + len(HOSTILE), 0.9)
    ans = Answer(HOSTILE, HOSTILE + " [1]", False, [c], short)
    for markup in (answer_markdown(ans, 1), sources_html([Turn(1, HOSTILE, ans)], "fr")):
        assert_inert(markup)
        assert "&lt;script&gt;" in markup and '<mark class="rag-short">' in markup


def test_an_answer_without_a_short_answer_starts_with_its_sentence():
    ans = Answer("q", "Abbas Araghchi est ministre. [1]", False, [citation(1)])
    assert answer_markdown(ans, 1).startswith("Abbas Araghchi est ministre")
