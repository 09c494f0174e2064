"""Fetching web addresses: bounded, off private networks unless allowed, and read like a news reader would.

A real HTTP server on 127.0.0.1 (tests/news_site.py) serves article pages and the ways a web
server can go wrong; the fetcher is the product's, with ``allow_private`` set where it must
reach that loopback server.
"""

from __future__ import annotations

import json

import pytest
from conftest import make_pdf
from news_site import NewsSite, Resource, article_html

from rag.ingest.fetch import AddressRefused, Fetcher, FetchError, address_problem, is_address
from rag.ingest.web import Entry, entries_for, load_pages, read_url_list

PONT = ["Un nouveau pont piéton a été inauguré samedi à Lyon, au-dessus de la Saône, après trois ans "
        "de travaux.",
        "Il mesure 180 mètres et a coûté 25 millions d'euros, a précisé la métropole dans un communiqué.",
        "La maire a salué « un lien entre les deux rives » devant plusieurs centaines d'habitants venus à pied."]


@pytest.fixture
def site():
    with NewsSite() as s:
        yield s


def fetcher(**kw) -> Fetcher:
    return Fetcher(**{"allow_private": True, "timeout": 2.0, **kw})


def load(site: NewsSite, *paths: str, known=None, **kw):
    entries = [Entry(site.url(p), site.url(p), site.url(p)) for p in paths]
    return load_pages(entries, fetcher(**kw), known)


# -- what is fetched -----------------------------------------------------------------------------
def test_article_page_gives_main_text_title_date_author_and_address(site):
    url = site.add_article("/metropole/pont.html", "Un pont piéton relie les deux rives de la Saône", PONT,
                           date="2026-01-17T09:30:00+01:00", author="Claire Martin")
    res = load(site, "/metropole/pont.html")
    assert not res.skipped and len(res.documents) == 1
    doc = res.documents[0]
    assert doc.title == "Un pont piéton relie les deux rives de la Saône"
    assert (doc.date, doc.date_source, doc.author) == ("2026-01-17", "published", "Claire Martin")
    assert doc.url == url and doc.source == url and doc.key == url
    assert "180 mètres" in doc.text and doc.lang == "fr"
    assert "Les plus lus" not in doc.text and "Mentions légales" not in doc.text and "dataLayer" not in doc.text


def test_redirects_are_followed_and_the_final_address_recorded(site):
    final = site.add_article("/2026/01/pont.html", "Le pont de Lyon", PONT, date="2026-01-17")
    site.add("/p/123", Resource(status=301, location="/2026/01/pont-redirect"))
    site.add("/2026/01/pont-redirect", Resource(status=302, location=final))
    res = load(site, "/p/123")
    doc = res.documents[0]
    assert doc.source == site.url("/p/123") and doc.url == final
    assert res.pages[doc.key].final_url == final


def test_a_page_without_a_stated_date_takes_the_servers_then_the_fetch_day(site):
    site.add("/a.html", Resource(article_html("Sans date A", PONT).encode(),
                                 last_modified="Tue, 03 Feb 2026 10:00:00 GMT"))
    site.add("/b.html", Resource(article_html("Sans date B", PONT).encode()))
    a, b = load(site, "/a.html", "/b.html").documents
    assert (a.date, a.date_source) == ("2026-02-03", "server")
    assert b.date_source == "fetched" and len(b.date) == 10


def test_a_pdf_address_is_read_like_a_pdf_file(site, tmp_path):
    pdf = make_pdf(tmp_path / "r.pdf", ["Le rapport annuel compte 412 interventions des pompiers de Brest."])
    site.add("/rapport.pdf", Resource(pdf.read_bytes(), content_type="application/pdf"))
    doc = load(site, "/rapport.pdf").documents[0]
    assert "412 interventions" in doc.text


def test_gzip_body_is_decoded_and_a_gzip_bomb_refused(site):
    site.add("/z.html", Resource(article_html("Compressé", PONT).encode(), gzip=True))
    assert "180 mètres" in load(site, "/z.html").documents[0].text
    assert site.hits("/z.html")[0].headers["accept-encoding"] == "gzip"
    site.add("/bomb.html", Resource(b"<html><body><p>" + b"a " * 3_000_000 + b"</p></body></html>", gzip=True))
    with pytest.raises(FetchError, match="too large"):  # 6 MB once inflated, a few kB on the wire
        fetcher(max_bytes=1_000_000).fetch(site.url("/bomb.html"))


# -- what is refused -------------------------------------------------------------------------------
@pytest.mark.parametrize("path,resource,reason", [
    ("/gone.html", None, "HTTP 404 Not Found"),
    ("/error.html", Resource(b"oops", status=500), "HTTP 500"),
    ("/photo.png", Resource(b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png"),
     "content type image/png not accepted"),
    ("/data.json", Resource(b'{"a": 1}', content_type="application/json"), "content type application/json"),
    ("/slow.html", Resource(article_html("Lent", PONT).encode(), delay=3.0), "timed out after 1 s"),
    ("/drip.html", Resource(article_html("Goutte", PONT).encode() * 5, drip=0.2), "timed out after 1 s"),
    ("/huge.html", Resource(b"<html><body>" + b"<p>mot </p>" * 200_000 + b"</body></html>"), "too large"),
    ("/huge-stream.html", Resource(b"<html><body>" + b"<p>mot </p>" * 200_000 + b"</body></html>", length=False),
     "too large"),
    ("/loop", Resource(status=302, location="/loop"), "more than 5 redirects"),
    ("/empty.html", Resource(b"<html><head><title>Rien</title></head><body><script>var a = 1;</script></body></html>"),
     "no main text"),
])
def test_bad_pages_are_skipped_with_a_reason_naming_the_address(site, ok_page, path, resource, reason):
    if resource is not None:
        site.add(path, resource)
    res = load(site, path, "/ok.html", timeout=1.0, max_bytes=1_000_000)
    assert [s.path for s in res.skipped] == [site.url(path)]
    assert reason in res.skipped[0].reason
    assert res.failed_keys == [site.url(path)]


@pytest.fixture
def ok_page(site):
    site.add_article("/ok.html", "Une page correcte", PONT, date="2026-01-02")


def test_bad_pages_do_not_stop_the_others(site, ok_page):
    site.add("/photo.png", Resource(b"x", content_type="image/png"))
    res = load(site, "/photo.png", "/ok.html", "/nowhere")
    assert [d.title for d in res.documents] == ["Une page correcte"] and len(res.skipped) == 2


@pytest.mark.parametrize("url,why", [
    ("http://127.0.0.1:{port}/ok.html", "loopback"),
    ("http://localhost:{port}/ok.html", "loopback"),
    ("http://[::1]:{port}/ok.html", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/ok.html", "loopback"),
    ("http://0.0.0.0:{port}/ok.html", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.20.30.40/intranet", "private-range"),
    ("http://192.168.1.1/admin", "private-range"),
])
def test_private_addresses_are_refused_before_any_connection(site, ok_page, url, why):
    with pytest.raises(AddressRefused, match=why) as err:
        Fetcher(allow_private=False, timeout=2).fetch(url.format(port=site.port))
    assert "RAG_ALLOW_PRIVATE_URLS=1" in str(err.value)
    assert site.requests == []


@pytest.mark.parametrize("url,why", [
    ("ftp://example.org/file.html", "only http:// and https://"),
    ("file:///etc/passwd", "only http:// and https://"),
    ("javascript:alert(1)", "only http:// and https://"),
    ("http://user:secret@127.0.0.1/", "user name or password"),
])
def test_other_schemes_and_credentials_are_refused(url, why):
    with pytest.raises(AddressRefused, match=why) as err:
        Fetcher(allow_private=True).fetch(url)
    assert "secret" not in str(err.value)


class PublicLoopback(Fetcher):
    """A fetcher that takes one loopback address, 127.0.0.2, for a public one (the tests' stand-in for the
    internet: nothing else can be reached here); every other address goes through the product's own check."""

    def refusal(self, ip: str) -> str | None:
        return None if ip == "127.0.0.2" else super().refusal(ip)


def test_each_redirect_hop_is_checked_again():
    with NewsSite("127.0.0.2") as public, NewsSite("127.0.0.1") as internal:
        internal.add_article("/admin.html", "Interne", PONT)
        public.add("/to-ip", Resource(status=302, location=internal.url("/admin.html")))
        public.add("/to-name", Resource(status=307, location=f"http://localhost:{internal.port}/admin.html"))
        public.add("/to-mapped", Resource(status=301, location=f"http://[::ffff:127.0.0.1]:{internal.port}/a"))
        public.add_article("/fine.html", "Publique", PONT)
        hop = PublicLoopback(allow_private=False, timeout=2)
        assert hop.fetch(public.url("/fine.html")).status == 200
        with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is 127\.0\.0\.1, a loopback address"):
            hop.fetch(public.url("/to-ip"))
        with pytest.raises(AddressRefused, match=r"localhost is 127\.0\.0\.1, a loopback address"):
            hop.fetch(public.url("/to-name"))
        with pytest.raises(AddressRefused, match="loopback"):
            hop.fetch(public.url("/to-mapped"))
        assert internal.requests == []  # never connected to
        assert len(public.hits("/to-ip")) == 1


def test_the_connection_goes_to_the_address_checked_with_the_host_name_sent(site, ok_page):
    calls = []

    class Counting(Fetcher):
        def checked_addresses(self, host, port, url):
            got = super().checked_addresses(host, port, url)
            calls.append((host, got))
            return got

    site.add("/hop", Resource(status=302, location=f"http://localhost:{site.port}/ok.html"))
    page = Counting(allow_private=True, timeout=2).fetch(site.url("/hop"))
    assert page.status == 200
    assert calls == [("127.0.0.1", ["127.0.0.1"]), ("localhost", ["127.0.0.1"])]  # one resolution per hop
    assert site.hits("/ok.html")[0].headers["host"] == f"localhost:{site.port}"


@pytest.mark.parametrize("ip,problem", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private-range"), ("172.16.5.4", "private-range"), ("192.168.0.10", "private-range"),
    ("fc00::1", "private-range"), ("fd12:3456::1", "private-range"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("::ffff:10.1.2.3", "private-range"), ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("100.64.1.1", "non-public"), ("192.0.2.1", "private-range"), ("240.0.0.1", "reserved"),
    ("93.184.216.34", None), ("2606:4700:4700::1111", None), ("8.8.8.8", None),
])
def test_address_classification(ip, problem):
    got = address_problem(ip)
    assert (got is None) if problem is None else (problem in got)


def test_is_address_accepts_only_http_and_https_with_a_host():
    assert is_address("https://lemonde.fr/a") and is_address("http://127.0.0.1:8000/x?y=1")
    for bad in ("javascript:alert(1)", "data:text/html,hi", "ftp://x/y", "https://", "seeds/a.txt",
                "https://a b/", "http://x/\nSet-Cookie: a", "", None, 3):
        assert not is_address(bad), bad


# -- .urls files -----------------------------------------------------------------------------------
def test_url_list_takes_addresses_and_comments_and_names_bad_lines(tmp_path):
    listing = tmp_path / "veille.urls"
    listing.write_text("# ma veille\n\nhttps://example.org/a.html   # le pont\nhttps://example.org/b.html#top\n"
                       "ftp://example.org/c\nexample.org/d\n", encoding="utf-8")
    entries, bad = read_url_list(str(listing), str(listing.resolve()), 1_000_000)
    assert [e.url for e in entries] == ["https://example.org/a.html", "https://example.org/b.html"]
    assert entries[0].key == f"{listing.resolve()}#https://example.org/a.html"
    assert [b.path.rsplit(":", 1)[1] for b in bad] == ["5", "6"] and "not an http" in bad[0].reason
    both, _ = entries_for(["https://example.org/a.html#x"], [(str(listing), str(listing.resolve()))], 1_000_000)
    assert [e.key for e in both][0] == "https://example.org/a.html" and len(both) == 3


def test_jsonl_url_that_is_not_http_is_dropped(tmp_path):
    from rag.ingest import load_paths

    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r) for r in [
        {"title": "A", "text": " ".join(PONT), "url": "javascript:alert(document.cookie)"},
        {"title": "B", "text": " ".join(PONT[::-1]), "url": "https://example.org/b"}]) + "\n", encoding="utf-8")
    a, b = load_paths([feed]).documents
    assert a.url == "" and b.url == "https://example.org/b"


def test_hostile_title_and_author_lose_their_markup(site):
    site.add_article("/h.html", '<img src=x onerror="window.__pwned=1">Le port de Brest', PONT,
                     author='<b onmouseover="x()">Jean</b> Dupont<script>alert(1)</script>')
    doc = load(site, "/h.html").documents[0]
    assert "<" not in doc.title and "onerror" not in doc.title and "Le port de Brest" in doc.title
    assert "<" not in doc.author and "onmouseover" not in doc.author
