"""What the web server accepts: its own host names, same-origin requests, known accounts.

:class:`RequestGuard` is an ASGI middleware put in front of everything Gradio serves (its CORS
middleware included), so that:

- a request whose ``Host`` is not one of the server's names is refused (403) before Gradio sees
  it. That stops DNS rebinding: a page of ``evil.example`` whose name is made to point at
  127.0.0.1 can reach the server, but its requests say ``Host: evil.example``. The names
  accepted are ``localhost``, ``127.0.0.1``, ``::1``, the ``--host`` value, the machine's own
  name when listening on every interface (``0.0.0.0``; then any IP address too, as an address
  cannot be rebound), and the names of the ``allowed_hosts`` setting (``RAG_ALLOWED_HOSTS``:
  names separated by commas, ``.example.org`` for a domain and its subdomains, ``*`` for any);
- a request carrying an ``Origin`` other than the server's own (same scheme-less host and port
  as its ``Host``, or a name of ``allowed_hosts``) is refused (403), whatever its method; so is
  a state-changing request (POST, PUT, PATCH, DELETE) a browser marks ``Sec-Fetch-Site:
  cross-site``. Another site can therefore neither upload (``/gradio_api/upload``), ask, remove
  nor read the answers through a visitor's browser. Clients that are not browsers send no
  ``Origin`` and are not affected.

Failed sign-ins are throttled by :mod:`ui.throttle`; the accounts themselves are :mod:`ui.auth`'s.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from rag.config import Config

from .throttle import LoginThrottle, LoginThrottleMiddleware, Receive, Scope, Send

log = logging.getLogger(__name__)
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
EVERY_INTERFACE = frozenset({"", "0.0.0.0", "::"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- hosts and origins -------------------------------------------------------------------------
def _hostname(netloc: str) -> str:
    """The host name of ``host[:port]`` (``[v6]:port`` too), lower case, without a final dot."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        name = netloc[1:].split("]", 1)[0]
    elif netloc.count(":") == 1:
        name = netloc.split(":", 1)[0]
    else:
        name = netloc
    return name.rstrip(".")


def _netloc(netloc: str, scheme: str = "") -> str:
    """``host:port`` in lower case, the scheme's default port dropped."""
    netloc = netloc.strip().lower()
    for default in ((":80",) if scheme == "http" else (":443",) if scheme == "https" else (":80", ":443")):
        if netloc.endswith(default):
            return netloc[: -len(default)]
    return netloc


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """The host names a server answers to, and the other names its pages may come from.

    Parameters
    ----------
    names : frozenset of str
        Host names accepted in ``Host``.
    configured : frozenset of str
        Names of ``allowed_hosts`` (``.domain`` entries match subdomains); also accepted as origins.
    any_ip : bool
        Accept any IP address as host (the server listens on every interface).
    any_host : bool
        Accept any host (``allowed_hosts = "*"``).
    """

    names: frozenset[str]
    configured: frozenset[str] = frozenset()
    any_ip: bool = False
    any_host: bool = False

    @classmethod
    def from_config(cls, config: Config) -> "HostPolicy":
        """The policy of a server listening on ``config.host`` with ``config.allowed_hosts``."""
        listen = _hostname(config.host) if config.host not in EVERY_INTERFACE else config.host
        names = set(LOOPBACK)
        every = listen in EVERY_INTERFACE
        if every:
            for own in (socket.gethostname(), socket.getfqdn()):
                if own:
                    names.add(own.lower().rstrip("."))
        else:
            names.add(listen)
        configured = frozenset(_hostname(h) if not h.startswith(".") else h.lower()
                               for h in _split(config.allowed_hosts) if h != "*")
        return cls(frozenset(names | {h for h in configured if not h.startswith(".")}), configured,
                   any_ip=every, any_host="*" in _split(config.allowed_hosts))

    def _configured_match(self, name: str) -> bool:
        return name in self.configured or any(
            d.startswith(".") and (name.endswith(d) or name == d[1:]) for d in self.configured)

    def host_allowed(self, host: str | None) -> bool:
        """Whether a ``Host`` header names this server."""
        if self.any_host:
            return True
        if not host:
            return False
        name = _hostname(host)
        return name in self.names or (self.any_ip and _is_ip(name)) or self._configured_match(name)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """Whether a request from a page of ``origin`` is the server's own (same host and port) or configured."""
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (a sandboxed or local file page) included
        if host and _netloc(parts.netloc, parts.scheme) == _netloc(host, parts.scheme):
            return True
        return self._configured_match(_hostname(parts.netloc))


def _split(value: str) -> list[str]:
    return [h.strip() for h in (value or "").replace(" ", ",").split(",") if h.strip()]


class RequestGuard:
    """ASGI middleware refusing requests for other hosts and cross-origin requests (see the module).

    Parameters
    ----------
    app : ASGI application
        The application behind it.
    policy : HostPolicy
        Which hosts and origins are accepted.
    """

    def __init__(self, app, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host")
        why = ""
        if not self.policy.host_allowed(host):
            why = (f"host {_hostname(host or '')!r} is not one of this server's names "
                   f"(add it to allowed_hosts / RAG_ALLOWED_HOSTS)")
        elif "origin" in headers and not self.policy.origin_allowed(headers["origin"], host):
            why = "cross-origin request refused"
        elif (scope.get("method") in UNSAFE_METHODS and "origin" not in headers
              and headers.get("sec-fetch-site") == "cross-site"):
            why = "cross-site request refused"
        if not why:
            await self.app(scope, receive, send)
            return
        log.warning("refused %s %s from %s: %s", scope.get("method", "WS"), scope.get("path"),
                    (scope.get("client") or ("?",))[0], why)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = why.encode("utf-8")
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# -- installation --------------------------------------------------------------------------------
class Guards:
    """The middleware a server gets: :class:`RequestGuard` and, with logins, the sign-in throttle.

    Parameters
    ----------
    policy : HostPolicy
        Hosts and origins accepted.
    throttle : LoginThrottle, optional
        Sign-in throttling (only when a login is required).
    """

    def __init__(self, policy: HostPolicy, throttle: LoginThrottle | None = None):
        self.policy = policy
        self.throttle = throttle

    @classmethod
    def for_config(cls, config: Config, login: bool) -> "Guards":
        """The guards of a server listening on ``config.host``, throttling sign-ins when ``login``."""
        return cls(HostPolicy.from_config(config), LoginThrottle() if login else None)

    def install(self, app) -> None:
        """Put the guards in front of every middleware of ``app`` (a Starlette/FastAPI app not yet serving).

        Added last, they run first: before the API, the mounted Gradio app and its CORS middleware
        (which echoes an ``Origin`` it accepts).
        """
        if self.throttle is not None:
            app.add_middleware(LoginThrottleMiddleware, throttle=self.throttle)
        app.add_middleware(RequestGuard, policy=self.policy)
