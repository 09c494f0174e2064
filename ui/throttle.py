"""Failed sign-ins slow down, then lock out, per client address and per user name.

Gradio checks passwords at ``POST /login`` as fast as they come (100 wrong passwords took
0.2 s). :class:`LoginThrottle` keeps, for each client address and each user name, the failures
since the last success: the first :data:`CLIENT_FREE` (per client) or :data:`USER_FREE` (per
user, from all clients together) are answered at once; each failure after that locks the
client or the user out for twice as long as the one before (1 s, 2 s, 4 s, ... at most
:data:`MAX_LOCK_S`), and one attempt at a time is checked for a client or a user (the others
are refused, not queued). While locked, every attempt, the right password included, is
answered ``429 Too Many Requests`` with ``Retry-After`` and is not checked. A success, or
:data:`FORGET_S` without failure, clears the count.

The per-user count is what stops guessing from many addresses; its price is that someone
failing on purpose can keep one user waiting (at most :data:`MAX_LOCK_S` per attempt they
make). Behind a reverse proxy every client has the proxy's address, so the per-client count
is then shared by everyone.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, MutableMapping
from urllib.parse import parse_qs

from starlette.datastructures import FormData
from starlette.requests import Request

CLIENT_FREE = 5        # failures from one address answered at once
USER_FREE = 10         # failures for one user name (all addresses) answered at once
FIRST_LOCK_S = 1.0     # the lock after the first failure beyond those
MAX_LOCK_S = 300.0     # the longest lock
FORGET_S = 900.0       # failures older than this (and no lock running) are forgotten
MAX_TRACKED = 100_000  # addresses and names remembered at most (the oldest are forgotten first)
MAX_BODY = 64 * 1024   # a sign-in form is tiny; larger bodies are refused unread
LOGIN_PATHS = ("/login", "/login/")

Scope = MutableMapping[str, object]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass
class _Count:
    failures: int = 0
    last: float = 0.0          # time of the last failure
    locked_until: float = 0.0
    busy: bool = False         # an attempt is being checked


class LoginThrottle:
    """Failure counts and locks of sign-ins, per client address and per user name.

    Parameters
    ----------
    client_free, user_free : int
        Failures answered at once, per client and per user.
    first_lock_s, max_lock_s : float
        The first lock, and the longest; each failure beyond the free ones doubles it.
    forget_s : float
        Failures older than this are forgotten.
    clock : callable
        Returns the time in seconds (``time.monotonic``; a test may pass its own).
    """

    def __init__(self, client_free: int = CLIENT_FREE, user_free: int = USER_FREE,
                 first_lock_s: float = FIRST_LOCK_S, max_lock_s: float = MAX_LOCK_S,
                 forget_s: float = FORGET_S, clock: Callable[[], float] = time.monotonic):
        self.free = {"client": client_free, "user": user_free}
        self.first_lock_s, self.max_lock_s, self.forget_s = first_lock_s, max_lock_s, forget_s
        self.clock = clock
        self._counts: dict[tuple[str, str], _Count] = {}
        self._lock = threading.Lock()

    def begin(self, client: str, user: str) -> float:
        """Claim the right to check one attempt; returns 0.0, or the seconds to wait before trying again."""
        now = self.clock()
        with self._lock:
            keys = [("client", client), ("user", user)]
            counts = [self._get(k, now) for k in keys]
            wait = max(c.locked_until - now for c in counts)
            if wait > 0:
                return wait
            if any(c.busy for c in counts):
                return 1.0
            for c in counts:
                c.busy = True
            return 0.0

    def end(self, client: str, user: str, ok: bool | None) -> None:
        """The attempt claimed by :meth:`begin` is over: ``ok`` True (signed in), False (refused), None (neither)."""
        now = self.clock()
        with self._lock:
            for kind, key in (("client", client), ("user", user)):
                c = self._get((kind, key), now)
                c.busy = False
                if ok:
                    self._counts.pop((kind, key), None)
                elif ok is False:
                    c.failures += 1
                    c.last = now
                    beyond = c.failures - self.free[kind]
                    if beyond >= 0:
                        c.locked_until = now + min(self.first_lock_s * 2 ** min(beyond, 30), self.max_lock_s)
            self._prune(now)

    def failures(self, kind: str, key: str) -> int:
        """Failures counted for a client (``kind`` "client") or a user ("user")."""
        with self._lock:
            c = self._counts.get((kind, key))
            return c.failures if c else 0

    def _get(self, key: tuple[str, str], now: float) -> _Count:
        c = self._counts.get(key)
        if c is None or (not c.busy and c.locked_until <= now and now - c.last > self.forget_s):
            c = self._counts[key] = _Count()
        return c

    def _prune(self, now: float) -> None:
        if len(self._counts) <= MAX_TRACKED:
            return
        stale = [k for k, c in self._counts.items()
                 if not c.busy and c.locked_until <= now and now - c.last > self.forget_s]
        for k in stale:
            del self._counts[k]
        if len(self._counts) > MAX_TRACKED:
            for k, _ in sorted(self._counts.items(), key=lambda kv: kv[1].last)[: len(self._counts) - MAX_TRACKED]:
                del self._counts[k]


class LoginThrottleMiddleware:
    """ASGI middleware applying a :class:`LoginThrottle` to ``POST /login``.

    It reads the sign-in form (at most :data:`MAX_BODY` bytes) for the user name, refuses a
    locked or busy client or user with 429, and otherwise passes the request on unchanged and
    counts its answer: 200 a success, 400 or 401 a failure.

    Parameters
    ----------
    app : ASGI application
        The application behind it.
    throttle : LoginThrottle
        The counts.
    """

    def __init__(self, app, throttle: LoginThrottle):
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, MAX_BODY)
        if body is None:
            await _reply(send, 413, {"detail": "sign-in form too large"})
            return
        client = str((scope.get("client") or ("unknown",))[0])
        user = await _form_user(scope, body)
        wait = self.throttle.begin(client, user)
        if wait > 0:
            await _reply(send, 429, {"detail": f"Too many failed sign-ins: try again in {math.ceil(wait)} s."},
                         retry_after=math.ceil(wait))
            return
        status: list[int] = []
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only a disconnect can come now

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[:] = [int(message["status"])]
            await send(message)

        outcome: bool | None = None
        try:
            await self.app(scope, replay, watch)
            code = status[0] if status else 0
            outcome = True if code == 200 else False if code in (400, 401) else None
        finally:
            self.throttle.end(client, user, outcome)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _form_user(scope: Scope, body: bytes) -> str:
    """The user name of a sign-in form (urlencoded or multipart), stripped as Gradio strips it."""
    kind = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1").lower()
    if kind.startswith("application/x-www-form-urlencoded") or not kind:
        values = parse_qs(body.decode("utf-8", "replace"))
        return (values.get("username") or [""])[0].strip()
    sent = False

    async def once() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form: FormData = await Request(scope, once).form(max_files=0, max_fields=16)
        value = form.get("username")
        return value.strip() if isinstance(value, str) else ""
    except Exception:  # noqa: BLE001 - an unreadable form is Gradio's to refuse; it counts for no user
        return ""


async def _reply(send: Send, status: int, payload: dict, retry_after: int | None = None) -> None:
    body = json.dumps(payload).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
