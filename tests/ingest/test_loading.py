"""Loading: every supported format gives a titled, language-tagged document; bad files are skipped with a reason."""

import json

import pytest
from conftest import ARTICLE_EN, ARTICLE_FR, SEEDS, make_pdf

from rag.errors import PathNotFound
from rag.ingest import load_paths


def _one(tmp_path, name, data, **kw):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return load_paths([path], **kw)


def test_seed_article_is_french_with_first_line_title():
    res = load_paths([SEEDS])
    assert len(res.documents) == 1 and not res.skipped
    doc = res.documents[0]
    assert doc.lang == "fr"
    assert doc.title.startswith("Il s'agit de la première rencontre diplomatique")
    assert "Abbas Araghchi" in doc.text and len(doc.sha256) == 64


def test_text_and_markdown_titles_and_languages(tmp_path):
    fr = _one(tmp_path, "pont.txt", ARTICLE_FR).documents[0]
    en = _one(tmp_path, "solar.md", "# " + ARTICLE_EN).documents[0]
    assert (fr.title, fr.lang) == ("Un nouveau pont à Lyon", "fr")
    assert (en.title, en.lang) == ("Solar farm opens in Nevada", "en")


def test_html_main_text_without_menus_or_scripts(tmp_path):
    html = """<html><head><title>Un pont à Lyon</title><script>var tracker = "SCRIPT-TEXT";</script></head>
    <body><nav><ul><li>Accueil</li><li>MENU-ITEM Sport</li></ul></nav>
    <article><h1>Un nouveau pont à Lyon</h1><p>""" + ARTICLE_FR.replace("\n", " ") * 3 + """</p></article>
    <footer>Mentions légales FOOTER-TEXT</footer></body></html>"""
    doc = _one(tmp_path, "page.html", html).documents[0]
    assert doc.title == "Un nouveau pont à Lyon"  # the article heading wins over the <title>
    assert "180 mètres" in doc.text
    assert "SCRIPT-TEXT" not in doc.text and "MENU-ITEM" not in doc.text
    assert doc.lang == "fr"


def test_pdf_text_layer_is_read(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", ["The largest solar farm in the state opened on Monday.",
                                         "It can power 120,000 homes, the operator said."])
    res = load_paths([path])
    assert not res.skipped
    assert "120,000 homes" in res.documents[0].text and res.documents[0].lang == "en"


def test_jsonl_articles_and_broken_lines(tmp_path):
    lines = [json.dumps({"title": "Pont", "text": ARTICLE_FR, "url": "https://ex.fr/pont", "date": "2026-01-02"}),
             "{not json", json.dumps({"title": "Sans texte"}),
             json.dumps({"title": "Solar", "text": ARTICLE_EN})]
    res = _one(tmp_path, "feed.jsonl", "\n".join(lines) + "\n")
    assert [d.title for d in res.documents] == ["Pont", "Solar"]
    pont, solar = res.documents
    assert (pont.url, pont.date, pont.date_source) == ("https://ex.fr/pont", "2026-01-02", "published")
    assert solar.url == "" and solar.date_source == "file" and len(solar.date) == 10
    assert [s.path.rsplit(":", 1)[1] for s in res.skipped] == ["2", "3"]
    assert "invalid JSON" in res.skipped[0].reason and '"text"' in res.skipped[1].reason


def test_jsonl_record_with_unicode_line_separators_stays_whole(tmp_path):
    # json.dumps(ensure_ascii=False) writes U+2028 and U+0085 raw; they are not record breaks.
    text = ARTICLE_FR.replace(". ", ".\u2028", 1).replace(". ", ".\x85", 1)
    res = _one(tmp_path, "feed.jsonl", json.dumps({"title": "Pont", "text": text}, ensure_ascii=False) + "\n")
    assert not res.skipped and [d.title for d in res.documents] == ["Pont"]


def test_squad_json_gives_one_document_per_paragraph_with_clean_titles(tmp_path):
    data = {"data": [{"title": "<i>Le Monde</i>", "paragraphs": [
        {"context": "Le Monde est un quotidien français fondé en 1944.", "qas": []},
        {"context": "Il est publié à Paris.", "qas": []}]}]}
    res = _one(tmp_path, "set.json", json.dumps(data))
    assert [d.title for d in res.documents] == ["Le Monde", "Le Monde"]
    assert res.documents[0].key.endswith("#0-0") and res.documents[1].key.endswith("#0-1")


@pytest.mark.parametrize("name,data,reason", [
    ("empty.txt", b"", "empty file"),
    ("blank.txt", b"  \n\n ", "empty file"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR" + bytes(range(256)), "binary file"),
    ("latin1.txt", "Les États-Unis et l'Iran".encode("latin-1"), "not valid UTF-8"),
    ("report.docx", b"PK\x03\x04 whatever", "not a valid Word file"),
    ("report.doc", b"\xd0\xcf\x11\xe0 old Word", "unsupported extension '.doc'"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "malformed PDF"),
    ("list.json", b'["not", "squad"]', "not a SQuAD-format file"),
])
def test_bad_files_are_skipped_with_a_reason_naming_them(tmp_path, name, data, reason):
    good = tmp_path / "good.txt"
    good.write_text(ARTICLE_FR, encoding="utf-8")
    (tmp_path / name).write_bytes(data)
    res = load_paths([tmp_path])
    assert [d.title for d in res.documents] == ["Un nouveau pont à Lyon"]
    assert len(res.skipped) == 1
    assert res.skipped[0].path.endswith(name) and reason in res.skipped[0].reason


def test_pdf_without_text_layer_is_skipped(tmp_path):
    res = load_paths([make_pdf(tmp_path / "scan.pdf", None)])
    assert not res.documents and "no text layer" in res.skipped[0].reason


def test_file_over_the_size_limit_is_skipped(tmp_path):
    res = _one(tmp_path, "big.txt", ARTICLE_FR * 3000, max_file_mb=0.1)
    assert not res.documents and "too large" in res.skipped[0].reason


def test_missing_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(PathNotFound, match="nowhere"):
        load_paths([tmp_path / "nowhere"])


def test_folders_are_walked_recursively_and_hidden_files_ignored(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.txt").write_text(ARTICLE_FR, encoding="utf-8")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    res = load_paths([tmp_path])
    assert len(res.documents) == 1 and not res.skipped


def test_a_jsonl_record_read_again_with_the_same_bytes_is_not_analysed_again(tmp_path):
    feed = tmp_path / "feed.jsonl"
    records = [json.dumps({"title": f"Article {i}", "url": f"https://example.org/{i}",
                           "text": f"Le conseil municipal a voté le budget numéro {i}."}, ensure_ascii=False)
               for i in range(4)]
    feed.write_text("\n".join(records) + "\n", encoding="utf-8")
    first = load_paths([feed])
    digests = {d.key: d.meta["record_sha256"] for d in first.documents}
    assert len(digests) == 4 and not first.unchanged_records
    records[1] = records[1].replace("budget", "plan")
    feed.write_text("\n".join(records[:3] + [records[0]]) + "\n", encoding="utf-8")  # record 0 twice, 3 gone
    again = load_paths([feed], known_records=digests)
    assert [d.key.rsplit("#", 1)[1] for d in again.documents] == ["https://example.org/1"]
    assert "plan" in again.documents[0].text
    assert sorted(k.rsplit("#", 1)[1] for k in again.unchanged_records) == ["https://example.org/0",
                                                                            "https://example.org/2"]
    assert len(load_paths([feed]).documents) == 3  # without digests: every record analysed
