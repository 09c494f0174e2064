"""Who may use the server: the chat's logins and the API's tokens (``RAG_API_TOKEN``).

Logins come from ``RAG_AUTH`` or ``--auth`` (``user:password``, several separated by ``,``; a
value given with ``--auth`` is visible to every local user in ``ps``, so prefer the variable or
a file) and ``--auth-file FILE`` (one ``user:password`` a line; ``#`` comments).

The page asks for a login; the HTTP API takes the same logins as HTTP basic auth, or a bearer
token: one of ``RAG_API_TOKEN``'s, or ``USER:PASSWORD`` of a login (so an OpenAI client, which
sends only a bearer key, can act as a login). Conversations belong to the login; a token acts
as the user :data:`API_USER`; without logins there is one user, :data:`rag.chats.LOCAL_USER`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rag.chats import LOCAL_USER
from rag.errors import BadInput

log = logging.getLogger(__name__)
API_USER = "api"          # the owner of conversations saved with an API token, when logins are set
MIN_TOKEN = 16            # characters of an API token


def parse_logins(auth: str | None) -> dict[str, str]:
    """``"alice:pw1,bob:pw2"`` -> ``{"alice": "pw1", "bob": "pw2"}`` (a password may hold ``:``, not ``,``).

    Raises
    ------
    BadInput
        An entry without ``:``, with an empty part, or a user named twice.
    """
    out: dict[str, str] = {}
    if not auth or not auth.strip():
        return out
    for entry in auth.split(","):
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise BadInput("--auth / RAG_AUTH: expected USER:PASSWORD (both non-empty), several separated by ','")
        if user in out:
            raise BadInput(f"--auth / RAG_AUTH: user {user!r} is given twice")
        out[user] = password
    return out


def read_auth_file(path: str | os.PathLike) -> dict[str, str]:
    """The logins of a file: one ``user:password`` a line; blank lines and ``#`` comments ignored.

    Raises
    ------
    BadInput
        The file cannot be read, a line is not ``user:password``, a user appears twice, or there is no login.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--auth-file {path}: cannot read it ({exc})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("--auth-file %s can be read by other users of this machine (chmod 600 %s)", path, path)
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.rstrip("\r\n").partition(":")
        user = user.strip()
        if not sep or not user or not password:
            raise BadInput(f"--auth-file {path}:{lineno}: expected USER:PASSWORD (both non-empty)")
        if user in out:
            raise BadInput(f"--auth-file {path}:{lineno}: user {user!r} is given twice")
        out[user] = password
    if not out:
        raise BadInput(f"--auth-file {path}: no USER:PASSWORD line")
    return out


def parse_tokens(tokens: str | None) -> tuple[str, ...]:
    """``RAG_API_TOKEN``: one token or several separated by ``,``, each at least :data:`MIN_TOKEN` characters."""
    out = tuple(t.strip() for t in (tokens or "").split(",") if t.strip())
    for token in out:
        if len(token) < MIN_TOKEN:
            raise BadInput(f"RAG_API_TOKEN: a token needs at least {MIN_TOKEN} characters (make one with: "
                             "python -c 'import secrets; print(secrets.token_urlsafe(24))')")
    return out


@dataclass(frozen=True)
class Logins:
    """The server's logins and API tokens.

    Parameters
    ----------
    passwords : dict
        User name -> password, from ``--auth`` / ``RAG_AUTH``.
    tokens : tuple of str
        API bearer tokens, from ``RAG_API_TOKEN``.
    """

    passwords: dict[str, str] = field(default_factory=dict)
    tokens: tuple[str, ...] = ()

    @classmethod
    def load(cls, auth: str | None = None, auth_file: str | os.PathLike | None = None,
             tokens: str | None = None) -> "Logins":
        """Logins from the ``--auth`` / ``RAG_AUTH`` value and ``--auth-file``, tokens from ``RAG_API_TOKEN``.

        Raises
        ------
        BadInput
            A bad value or file (the message names it), or one user given in both.
        """
        passwords = parse_logins(auth)
        for user, password in (read_auth_file(auth_file) if auth_file else {}).items():
            if user in passwords:
                raise BadInput(f"user {user!r} is given twice (--auth / RAG_AUTH and --auth-file)")
            passwords[user] = password
        return cls(passwords, parse_tokens(tokens))

    @property
    def required(self) -> bool:
        """True when the API needs credentials."""
        return bool(self.passwords or self.tokens)

    def check(self, user: str, password: str) -> bool:
        """True for a known login (compared in constant time); Gradio's login form calls it."""
        known = self.passwords.get(user)
        return known is not None and hmac.compare_digest(known.encode(), str(password).encode())

    def owner(self, user: str | None) -> str:
        """The owner of conversations made by ``user``: the login itself, or the one local user without logins."""
        return user if self.passwords and user else LOCAL_USER

    def user_for(self, authorization: str | None) -> str | None:
        """The owner named by an ``Authorization`` header, or None when it does not authenticate.

        Without logins or tokens every request is the local user's.
        """
        if not self.required:
            return LOCAL_USER
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return self.owner(user) if self.check(user, password) else None
        if scheme.lower() == "bearer" and value:
            if any(hmac.compare_digest(value.encode(), t.encode()) for t in self.tokens):
                return self.owner(API_USER)
            user, sep, password = value.partition(":")
            if sep and self.check(user, password):
                return self.owner(user)
        return None
