"""Sources in the chat page: the date beside the title, the title a link to the article — only an http(s) one."""

from __future__ import annotations

import pytest
from test_render import assert_inert, elements

from rag.schema import Citation
from ui.render import citation_html, documents_html


def cited(url: str = "", title: str = "Le pont de Lyon", date: str = "2026-01-17",
          date_source: str = "published") -> Citation:
    return Citation(n=1, doc_id="d", source="https://journal.example/p/1", title=title, chunk_id="c",
                    excerpt="Le pont mesure 180 mètres.", start=0, end=26, score=0.7, date=date,
                    date_source=date_source, url=url, author="Claire Martin")


def links(markup: str) -> list[dict]:
    return [attrs for tag, attrs in elements(markup) if tag == "a"]


def test_the_title_links_to_the_article_in_a_new_tab():
    card = citation_html(cited("https://journal.example/2026/01/pont.html?x=1&y=2"), 1, "fr")
    (link,) = links(card)
    assert link["href"] == "https://journal.example/2026/01/pont.html?x=1&y=2"
    assert link["target"] == "_blank" and "noopener" in link["rel"] and "noreferrer" in link["rel"]
    assert ">Le pont de Lyon</a>" in card


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "JavaScript:alert(1)",
                                 "data:text/html,<script>alert(1)</script>", "vbscript:msgbox", "//evil.example/x",
                                 "ftp://files.example/a", ""])
def test_an_address_that_is_not_http_makes_no_link(url):
    card = citation_html(cited(url), 1, "fr")
    assert links(card) == [] and "Le pont de Lyon" in card
    assert_inert(card)


def test_hostile_titles_and_addresses_stay_inert():
    card = citation_html(cited('https://x.example/a"onmouseover="alert(1)', title='<img src=x onerror="alert(1)">'),
                         1, "fr")
    assert_inert(card)
    (link,) = links(card)
    assert link["href"] == 'https://x.example/a"onmouseover="alert(1)' and "&lt;img" in card


def test_the_date_shows_beside_the_title_and_a_file_date_says_so():
    card = citation_html(cited(), 1, "fr")
    date = next(attrs for tag, attrs in elements(card) if tag == "span" and attrs.get("class") == "rag-date")
    assert date["data-source"] == "published" and date["title"] == "date de publication"
    assert "2026-01-17</span>" in card
    filed = citation_html(cited(date_source="file"), 1, "en")
    assert "2026-01-17 (file)" in filed and "modification date" in filed
    assert "rag-date" not in citation_html(cited(date=""), 1, "fr")


def test_the_document_table_has_dates_and_links():
    docs = [{"id": "a", "title": "Le pont", "source": "https://journal.example/p/1", "chunks": 2, "lang": "fr",
             "date": "2026-01-17", "date_source": "published", "url": "https://journal.example/2026/pont"},
            {"id": "b", "title": "<b>Note</b>", "source": "notes/a.txt", "chunks": 1, "lang": "fr",
             "date": "2026-01-25", "date_source": "file", "url": "javascript:alert(1)"}]
    table = documents_html(docs, "fr")
    assert_inert(table)
    assert [a["href"] for a in links(table)] == ["https://journal.example/2026/pont"]
    assert "2026-01-25 (fichier)" in table and "&lt;b&gt;Note&lt;/b&gt;" in table
