"""A small news site on a loopback address for the fetching tests and the ingest benchmark.

``NewsSite`` serves what its ``resources`` say, by path: article pages that look like a real
paper's (navigation, byline, side links, footer; title, author and publication date in
``<meta>`` tags and JSON-LD), and whatever a test needs besides — a redirect, an error status,
a slow or dripping response, a huge body, another content type, a gzip body. A resource with
an ``etag`` or ``last_modified`` answers 304 to a request that sends it back. Every request is
logged with its headers. It listens on 127.0.0.1 (or another loopback address) only.
"""

from __future__ import annotations

import gzip as gzip_module
import html
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Sequence


@dataclass
class Resource:
    """One path of the site: what it answers."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None      # for a 3xx status
    delay: float = 0.0               # seconds before the response
    drip: float = 0.0                # seconds between pieces of 200 bytes of the body
    length: bool = True              # send Content-Length (else the body ends when the connection closes)
    gzip: bool = False               # gzip the body when the client accepts it


@dataclass
class Request:
    """A request the site received."""

    path: str
    headers: dict[str, str]
    status: int = 0


def article_html(title: str, paragraphs: Sequence[str], date: str | None = None, author: str | None = None,
                 site: str = "Le Courrier de l'Ouest", url: str = "", escape: bool = True) -> str:
    """An article page as a news site writes it; ``escape=False`` puts title and author in raw (hostile tests)."""
    esc = html.escape if escape else (lambda s, quote=True: s)
    meta = [f'<meta property="og:title" content="{esc(title, quote=True)}">',
            f'<meta property="og:site_name" content="{html.escape(site)}">']
    if author:
        meta.append(f'<meta name="author" content="{esc(author, quote=True)}">')
    if date:
        meta.append(f'<meta property="article:published_time" content="{date}">')
    if url:
        meta.append(f'<link rel="canonical" href="{html.escape(url, quote=True)}">')
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title}
    if date:
        ld["datePublished"] = date
    if author:
        ld["author"] = {"@type": "Person", "name": author}
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    byline = f'<p class="byline">Par {esc(author)}</p>' if author else ""
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{esc(title)} | {html.escape(site)}</title>
{chr(10).join(meta)}
<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"page": "article"}});</script>
</head><body>
<header><a href="/">{html.escape(site)}</a><nav><ul><li><a href="/politique">Politique</a></li>
<li><a href="/economie">Économie</a></li><li><a href="/sport">Sport</a></li><li><a href="/culture">Culture</a></li>
</ul></nav></header>
<main><article><h1>{esc(title)}</h1>{byline}
{body}
</article>
<aside><h2>Les plus lus</h2><ul><li><a href="/a">Tempête sur la côte : les dégâts recensés</a></li>
<li><a href="/b">Le marché de Noël ouvre ses portes</a></li></ul></aside></main>
<footer><p>© {html.escape(site)} — Mentions légales — Contact — Abonnez-vous à la newsletter</p></footer>
</body></html>"""


class NewsSite:
    """The site, serving in a background thread; use as a context manager (or call :meth:`close`).

    Parameters
    ----------
    host : str
        A loopback address to listen on.
    """

    def __init__(self, host: str = "127.0.0.1"):
        self.resources: dict[str, Resource] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                site._serve(self)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> "NewsSite":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        """The address of ``path`` on this site."""
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, resource: Resource) -> str:
        """Serve ``resource`` at ``path``; returns its address."""
        self.resources[path] = resource
        return self.url(path)

    def add_article(self, path: str, title: str, paragraphs: Sequence[str], date: str | None = None,
                    author: str | None = None, etag: str | None = None, last_modified: str | None = None,
                    **kw) -> str:
        """Serve an article page at ``path``; returns its address."""
        body = article_html(title, paragraphs, date, author, url=self.url(path), **kw).encode("utf-8")
        return self.add(path, Resource(body, etag=etag, last_modified=last_modified))

    def hits(self, path: str) -> list[Request]:
        """The requests received for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        request = Request(path, {k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(request)
        res = self.resources.get(path)
        if res is None:
            request.status = 404
            body = b"<html><body><h1>404</h1><p>Page introuvable.</p></body></html>"
            h.send_response(404)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if res.delay:
            time.sleep(res.delay)
        if res.location:
            request.status = res.status
            h.send_response(res.status)
            h.send_header("Location", res.location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        fresh = (res.etag is not None and request.headers.get("if-none-match") == res.etag) or (
            res.etag is None and res.last_modified is not None
            and request.headers.get("if-modified-since") == res.last_modified)
        if fresh:
            request.status = 304
            h.send_response(304)
            if res.etag:
                h.send_header("ETag", res.etag)
            h.end_headers()
            return
        body = res.body
        zipped = res.gzip and "gzip" in request.headers.get("accept-encoding", "")
        if zipped:
            body = gzip_module.compress(body)
        request.status = res.status
        try:
            h.send_response(res.status)
            h.send_header("Content-Type", res.content_type)
            if res.etag:
                h.send_header("ETag", res.etag)
            if res.last_modified:
                h.send_header("Last-Modified", res.last_modified)
            if zipped:
                h.send_header("Content-Encoding", "gzip")
            if res.length:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if res.drip:
                for i in range(0, len(body), 200):
                    h.wfile.write(body[i:i + 200])
                    h.wfile.flush()
                    time.sleep(res.drip)
            else:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (too large, too slow)
            pass
