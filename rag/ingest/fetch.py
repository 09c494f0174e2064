"""Fetching a web address, bounded, and never on a private network unless allowed.

Each fetch has a deadline (``timeout`` seconds for the whole of it, redirects included), a size
limit (a larger page is refused: from its ``Content-Length``, or as soon as more arrives; a
gzip body is decompressed within the same limit), accepts only HTML and PDF, follows at most
``max_redirects`` redirects and speaks only ``http``/``https``. Every hop is checked again:
its host is resolved once, every address it resolves to (IPv4 and IPv6) must be public —
no loopback, link-local, private-range, multicast, unspecified or otherwise reserved address,
an IPv4 address inside an IPv6 one included — and the connection goes to one of the addresses
checked, so the name cannot resolve elsewhere between the check and the connection (DNS
rebinding). ``allow_private`` lifts the address check (setting ``allow_private_urls``,
``RAG_ALLOW_PRIVATE_URLS=1``), for an intranet or the tests' loopback server.

Why the standard library (``http.client``) and not urllib's opener or httpx: the check needs
the connection made to an address chosen beforehand, each redirect handled by us rather than
followed inside the client, and the body read a piece at a time against the deadline and the
limit; ``http.client`` gives each of these directly (a connection whose ``connect`` is ours,
TLS verified against the host name), and adds no dependency. Proxy settings (``http_proxy``)
are not used: a fetch goes to the page's server.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit

from ..errors import BadInput

ACCEPTED_TYPES = {"text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf"}
REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "rag/0.1 (offline article indexer)"
READ_STEP = 65536


class FetchError(BadInput):
    """An address could not be fetched; the message says why (and names the address)."""


class AddressRefused(FetchError):
    """An address that may not be fetched: not http(s), or on a non-public network."""


class Validators(NamedTuple):
    """What a rebuild asks a page again with, and recognises an unchanged page by.

    ``url`` is the address asked, ``final_url`` where the redirects led; ``etag`` and
    ``last_modified`` the server's validators (empty when it sent none); ``body_sha256`` the
    hash of the body as received, so a page sent again byte for byte is not parsed again.
    """

    url: str
    final_url: str
    etag: str
    last_modified: str
    body_sha256: str


@dataclass
class Page:
    """A fetched page: ``status`` 200 with its body, or 304 (not modified: no body)."""

    url: str
    final_url: str
    status: int
    kind: str = ""  # "html" or "pdf"
    charset: str = ""
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""


def is_address(text: object) -> bool:
    """True for an ``http://`` or ``https://`` address with a host (and no spaces or control characters)."""
    if not isinstance(text, str) or not text or any(c.isspace() or ord(c) < 32 for c in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def without_fragment(url: str) -> str:
    """``url`` without its ``#fragment`` (not sent to servers; two fragments are one page)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ""))


def address_problem(ip: str) -> str | None:
    """Why ``ip`` may not be fetched from (``"a loopback address"``...), or None for a public address."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is not None:
            return address_problem(str(embedded))
    for kind, flag in (("loopback", addr.is_loopback), ("link-local", addr.is_link_local),
                       ("multicast", addr.is_multicast), ("unspecified", addr.is_unspecified),
                       ("reserved", addr.is_reserved), ("private-range", addr.is_private)):
        if flag:
            return f"a {kind} address"
    if not addr.is_global:
        return "a non-public address"
    return None


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection to addresses checked beforehand; TLS is verified against the host name."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float, tls: bool):
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses
        self.tls = tls
        if tls:
            self.default_port = 443  # so that the Host header carries no ":443"

    def connect(self) -> None:
        error: OSError | None = None
        for ip in self.addresses:
            try:
                sock = socket.create_connection((ip, self.port), self.timeout)
                break
            except OSError as exc:
                error = exc
        else:
            raise error or OSError("no address")
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


class Fetcher:
    """Fetches addresses within bounds (see the module's description).

    Parameters
    ----------
    timeout : float
        Seconds for a whole fetch, redirects included.
    max_bytes : int
        Largest body accepted (after decompression).
    max_redirects : int
        Redirects followed; one more is an error.
    allow_private : bool
        Fetch from loopback, private and other non-public addresses too.
    user_agent : str
        Sent as ``User-Agent``.
    """

    def __init__(self, timeout: float = 20.0, max_bytes: int = 10_000_000, max_redirects: int = 5,
                 allow_private: bool = False, user_agent: str = USER_AGENT):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        self.user_agent = user_agent

    def fetch(self, url: str, etag: str = "", last_modified: str = "") -> Page:
        """GET ``url``, asking with ``If-None-Match`` / ``If-Modified-Since`` when validators are given.

        Returns
        -------
        Page
            Status 200 with the body, or 304 when the server says the page has not changed.

        Raises
        ------
        AddressRefused
            For a scheme other than http(s), credentials in the address, or a hop to a
            non-public address (unless ``allow_private``).
        FetchError
            For anything else that goes wrong: an HTTP error status, a type other than HTML
            or PDF, a body over the limit, too many redirects, the deadline, the network.
        """
        deadline = time.monotonic() + self.timeout
        current = without_fragment(url)
        for _ in range(self.max_redirects + 1):
            page_or_next = self._hop(url, current, etag, last_modified, deadline)
            if isinstance(page_or_next, Page):
                return page_or_next
            current = page_or_next
        raise FetchError(f"more than {self.max_redirects} redirects (last to {current})")

    # -- one request ------------------------------------------------------------------------
    def _hop(self, url: str, current: str, etag: str, last_modified: str, deadline: float) -> Page | str:
        """One request: the page, or the address it redirects to."""
        parts = urlsplit(current)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise AddressRefused(f"{current}: only http:// and https:// addresses are fetched")
        if parts.username is not None or parts.password is not None:
            raise AddressRefused(f"{_safe(current)}: addresses holding a user name or password are not fetched")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise AddressRefused(f"{current}: bad port") from None
        host = parts.hostname
        addresses = self.checked_addresses(host, port, current)
        conn = _Connection(host, port, addresses, self._left(deadline, current), scheme == "https")
        headers = {"User-Agent": self.user_agent, "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9",
                   "Accept-Encoding": "gzip", "Connection": "close"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            if resp.status in REDIRECTS:
                location = resp.getheader("Location")
                if not location:
                    raise FetchError(f"{current}: HTTP {resp.status} redirect without a Location")
                return without_fragment(urljoin(current, location.strip()))
            if resp.status == 304:
                return Page(url, current, 304, etag=resp.getheader("ETag") or etag,
                            last_modified=resp.getheader("Last-Modified") or last_modified)
            if resp.status != 200:
                raise FetchError(f"{current}: HTTP {resp.status} {resp.reason}".rstrip())
            kind, charset = self._content_type(resp, current)
            body = self._body(resp, conn, deadline, current)
            return Page(url, current, 200, kind, charset, body, resp.getheader("ETag") or "",
                        resp.getheader("Last-Modified") or "")
        except (socket.timeout, TimeoutError):
            raise FetchError(f"{current}: timed out after {self.timeout:g} s (fetch_timeout)") from None
        except ssl.SSLError as exc:
            raise FetchError(f"{current}: TLS error ({exc.reason or exc})") from None
        except http.client.HTTPException as exc:
            raise FetchError(f"{current}: bad HTTP response ({type(exc).__name__}: {exc})") from None
        except OSError as exc:
            raise FetchError(f"{current}: cannot connect ({exc.strerror or exc})") from None
        finally:
            conn.close()

    def checked_addresses(self, host: str, port: int, url: str) -> list[str]:
        """The addresses ``host`` resolves to, every one checked (:meth:`refusal`).

        Raises
        ------
        AddressRefused
            When any of them may not be fetched from: a name that resolves to a public and a
            private address is refused too.
        FetchError
            When the name does not resolve.
        """
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"{url}: cannot resolve {host} ({getattr(exc, 'strerror', None) or exc})") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for ip in addresses:
            why = self.refusal(ip)
            if why:
                raise AddressRefused(f"{url}: {host} is {ip}, {why}; not fetched (set allow_private_urls = true, "
                                     f"or RAG_ALLOW_PRIVATE_URLS=1, to fetch from such addresses)")
        return addresses

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` may not be fetched from, or None (always None with ``allow_private``)."""
        return None if self.allow_private else address_problem(ip)

    def _left(self, deadline: float, url: str) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(f"{url}: timed out after {self.timeout:g} s (fetch_timeout)")
        return left

    def _content_type(self, resp: http.client.HTTPResponse, url: str) -> tuple[str, str]:
        value = resp.getheader("Content-Type") or ""
        mime, _, params = value.partition(";")
        kind = ACCEPTED_TYPES.get(mime.strip().lower())
        if kind is None:
            raise FetchError(f"{url}: content type {mime.strip() or '(none)'} not accepted (HTML or PDF only)")
        charset = ""
        for param in params.split(";"):
            name, _, val = param.strip().partition("=")
            if name.strip().lower() == "charset":
                charset = val.strip().strip('"').lower()
        length = resp.getheader("Content-Length")
        if length and length.strip().isdigit() and int(length) > self.max_bytes:
            raise FetchError(f"{url}: page too large ({int(length) / 1e6:.1f} MB > limit "
                             f"{self.max_bytes / 1e6:.1f} MB; raise fetch_max_mb)")
        return kind, charset

    def _body(self, resp: http.client.HTTPResponse, conn: _Connection, deadline: float, url: str) -> bytes:
        """The body, read a piece at a time within the deadline and the size limit."""
        gzip = (resp.getheader("Content-Encoding") or "").strip().lower() in ("gzip", "x-gzip")
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        out = bytearray()
        received = 0
        too_large = FetchError(f"{url}: page too large (> limit {self.max_bytes / 1e6:.1f} MB; raise fetch_max_mb)")
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(self._left(deadline, url))
            piece = resp.read1(READ_STEP)
            if not piece:
                break
            received += len(piece)
            if received > self.max_bytes:
                raise too_large
            if inflate is None:
                out += piece
            else:
                try:
                    out += inflate.decompress(piece, self.max_bytes + 1 - len(out))
                except zlib.error as exc:
                    raise FetchError(f"{url}: damaged gzip body ({exc})") from None
                if inflate.unconsumed_tail:
                    raise too_large
            if len(out) > self.max_bytes:
                raise too_large
            self._left(deadline, url)
        if inflate is not None:
            out += inflate.flush()
            if len(out) > self.max_bytes:
                raise too_large
        return bytes(out)


def _safe(url: str) -> str:
    """``url`` with its user name and password left out (they are not repeated in messages)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
