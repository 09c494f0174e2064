"""Saved conversations: a SQLite store of their own.

The store lives in ``chats_dir`` (default: ``chats/`` beside the index folder, never inside it),
so rebuilding or repairing an index cannot touch it. Each turn keeps the question, the answer,
its short answer, its citations with the excerpts as they were shown, the mode and the time: a
later re-index does not rewrite history. Every turn is written in one transaction of a WAL
database, so a process killed while saving leaves the database readable with the turn either
whole or absent.

Conversations belong to a user (the login name; :data:`LOCAL_USER` without logins). Every read
and write of the store names the user, and a conversation of another user is "not found".

Examples
--------
>>> store = ChatStore("chats")                                                 # doctest: +SKIP
>>> conv, turn = store.add_turn(LOCAL_USER, RAG(cfg).ask("Qui ?").to_json())   # doctest: +SKIP
>>> print(to_markdown(store.get(conv.id, LOCAL_USER)))                          # doctest: +SKIP
"""

from __future__ import annotations

import enum
import json
import os
import re
import secrets
import sqlite3
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..config import Config
from ..errors import BadInput
from ..schema import Answer, Citation, Short

LOCAL_USER = "local"          # the one user of a chat served without logins
DB_NAME = "chats.sqlite"
SCHEMA_VERSION = 1
MAX_TITLE = 200               # characters of a conversation title
MAX_COMMENT = 4000            # characters of a feedback comment
AUTO_TITLE = 80               # a new conversation is titled by its first question, cut to this
_ID = re.compile(r"^[0-9a-f]{16}$")
_ANSWER_KEYS = ("question", "answer", "abstained", "short", "citations", "mode", "lang")

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (user, updated);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    short TEXT,                 -- JSON {text, n, start, end}, or NULL
    citations TEXT NOT NULL,    -- JSON list of the citations as shown (excerpt text included)
    mode TEXT NOT NULL,
    lang TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    extra TEXT NOT NULL,        -- JSON: the other keys of the Answer JSON (latency_ms, notice, ...)
    created TEXT NOT NULL,
    UNIQUE (conversation_id, number)
);
CREATE TABLE IF NOT EXISTS feedback (
    turn_id INTEGER PRIMARY KEY REFERENCES turns (id) ON DELETE CASCADE,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL,
    not_in_articles INTEGER NOT NULL,
    updated TEXT NOT NULL
);
"""


class ChatError(BadInput):
    """Bad input to the conversations store (a title, a rating, a damaged file); the message names it."""


class ChatNotFound(ChatError):
    """No conversation (or turn) of that id for this user."""


class Rating(str, enum.Enum):
    """A thumbs-up or a thumbs-down on an answer."""

    UP = "up"
    DOWN = "down"


@dataclass
class Feedback:
    """What a user said of one answer.

    ``not_in_articles`` marks a thumbs-down whose question the articles cannot answer (it
    becomes an unanswerable question of the feedback Q&A set).
    """

    rating: Rating
    comment: str = ""
    not_in_articles: bool = False
    updated: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{rating, comment, not_in_articles, updated}``."""
        return {"rating": self.rating.value, "comment": self.comment, "not_in_articles": self.not_in_articles,
                "updated": self.updated}


@dataclass
class Turn:
    """One saved exchange: the question and the answer as it was shown.

    ``citations`` are the Answer JSON's citations (excerpt text included); ``short`` is its
    short answer (``{text, n, start, end}``) or None; ``extra`` holds its other keys.
    """

    number: int
    question: str
    answer: str
    citations: list[dict[str, Any]]
    short: dict[str, Any] | None = None
    mode: str = "extractive"
    lang: str = ""
    abstained: bool = False
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    feedback: Feedback | None = None

    def answer_json(self) -> dict[str, Any]:
        """The Answer JSON as it was saved."""
        return {"question": self.question, "answer": self.answer, "abstained": self.abstained, "short": self.short,
                "citations": self.citations, "mode": self.mode, "lang": self.lang, **self.extra}

    def to_answer(self) -> Answer:
        """The saved answer as an :class:`~rag.schema.Answer` (keys the dataclasses lack are left out)."""
        return answer_from_json(self.answer_json())

    def to_json(self) -> dict[str, Any]:
        """``{number, created, answer: <Answer JSON>, feedback}``."""
        return {"number": self.number, "created": self.created, "answer": self.answer_json(),
                "feedback": self.feedback.to_json() if self.feedback else None}


@dataclass
class Conversation:
    """A saved conversation; ``turns`` is filled by :meth:`ChatStore.get`, ``n_turns`` always."""

    id: str
    user: str
    title: str
    created: str
    updated: str
    n_turns: int = 0
    turns: list[Turn] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """``{id, title, created, updated, turns}`` (the number of turns), as listed."""
        return {"id": self.id, "title": self.title, "created": self.created, "updated": self.updated,
                "turns": self.n_turns}

    def to_json(self) -> dict[str, Any]:
        """The JSON export: the conversation and every turn with its Answer JSON and feedback."""
        return {"format": "rag-conversation", "version": SCHEMA_VERSION, "id": self.id, "user": self.user,
                "title": self.title, "created": self.created, "updated": self.updated,
                "turns": [t.to_json() for t in self.turns]}


def answer_from_json(data: dict[str, Any]) -> Answer:
    """An :class:`~rag.schema.Answer` from its JSON, keeping only the keys the dataclasses know."""
    known = {f.name for f in fields(Answer)}
    cited = {f.name for f in fields(Citation)}
    values = {k: v for k, v in data.items() if k in known and k != "citations"}
    values["citations"] = [Citation(**{k: v for k, v in c.items() if k in cited}) for c in data.get("citations", [])]
    short = data.get("short")
    values["short"] = Short(**{f.name: short[f.name] for f in fields(Short) if f.name in short}) if short else None
    return Answer(**values)


def now() -> str:
    """The time as saved: ISO 8601, UTC, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def chats_dir(config: Config) -> Path:
    """The conversations folder: ``config.chats_dir``, else ``chats/`` beside the index folder.

    Raises
    ------
    ChatError
        When the folder is the index folder or inside it.
    """
    index = str(config.index_dir)
    if "://" in index:  # a database index: no folder to sit beside
        return Path(config.chats_dir or "chats").resolve()
    index_path = Path(index).resolve()
    folder = Path(config.chats_dir).resolve() if config.chats_dir else index_path.parent / "chats"
    if folder == index_path or index_path in folder.parents:
        raise ChatError(f"chats_dir={config.chats_dir!r} is inside the index folder {index_path}; "
                        f"conversations must live outside it (a rebuild or repair could remove them)")
    return folder


def _clean_title(title: str, limit: int = MAX_TITLE) -> str:
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in str(title))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _check_answer(data: Any) -> dict[str, Any]:
    """The Answer JSON to save, checked: a question, an answer text, citations as objects with ``n``."""
    if not isinstance(data, dict):
        raise ChatError("a turn needs the Answer JSON (an object)")
    for key in ("question", "answer"):
        if not isinstance(data.get(key), str):
            raise ChatError(f"the Answer JSON needs a {key!r} string")
    if not data["question"].strip():
        raise ChatError("the question of a turn is empty")
    citations = data.get("citations", [])
    if not isinstance(citations, list) or not all(isinstance(c, dict) and isinstance(c.get("n"), int)
                                                  for c in citations):
        raise ChatError("the Answer JSON's citations must be a list of objects with a number 'n'")
    short = data.get("short")
    if short is not None and not isinstance(short, dict):
        raise ChatError("the Answer JSON's 'short' must be an object or null")
    return data


class ChatStore:
    """The conversations of every user, in ``folder/chats.sqlite``.

    Parameters
    ----------
    folder : path-like
        The conversations folder (created if missing); see :func:`chats_dir`.

    Raises
    ------
    ChatError
        When the file is not a conversations database this version can read.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.folder.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ChatError(f"{self.path}: made by a newer version of rag (format {version})")
            self.db.executescript(SCHEMA)  # idempotent: CREATE ... IF NOT EXISTS
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise ChatError(f"{self.path}: not a readable conversations database ({exc})") from None

    @classmethod
    def from_config(cls, config: Config) -> "ChatStore":
        """The store of :func:`chats_dir` for ``config``."""
        return cls(chats_dir(config))

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as exc:
                raise ChatError(f"{self.path}: not a readable conversations database ({exc})") from None
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One writer transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on any exception."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- conversations ----------------------------------------------------------------------
    def create(self, user: str, title: str = "") -> Conversation:
        """A new, empty conversation of ``user``."""
        with self._write() as db:
            return self._insert_conversation(db, user, _clean_title(title) or "…")

    def _insert_conversation(self, db: sqlite3.Connection, user: str, title: str, when: str = "") -> Conversation:
        when = when or now()
        conv = Conversation(secrets.token_hex(8), user, title, when, when)
        db.execute("INSERT INTO conversations (id, user, title, created, updated) VALUES (?, ?, ?, ?, ?)",
                   (conv.id, conv.user, conv.title, conv.created, conv.updated))
        return conv

    def conversations(self, user: str | None, limit: int = 500) -> list[Conversation]:
        """The conversations of ``user`` (None: every user's), most recently active first, without turns."""
        where, args = ("WHERE c.user=?", (user,)) if user is not None else ("", ())
        rows = self.db.execute(
            "SELECT c.id, c.user, c.title, c.created, c.updated, "
            "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id=c.id) "
            f"FROM conversations c {where} ORDER BY c.updated DESC, c.rowid DESC LIMIT ?", (*args, limit)).fetchall()
        return [Conversation(*r) for r in rows]

    def _owned(self, conv_id: str, user: str | None, db: sqlite3.Connection | None = None) -> tuple:
        """The conversation's row, or :class:`ChatNotFound` (unknown id, or another user's)."""
        row = None
        if isinstance(conv_id, str) and _ID.match(conv_id):
            row = (db or self.db).execute("SELECT id, user, title, created, updated FROM conversations WHERE id=?",
                                          (conv_id,)).fetchone()
        if row is None or (user is not None and row[1] != user):
            raise ChatNotFound(f"no conversation {str(conv_id)[:64]!r}"
                               + (f" for user {user!r}" if user is not None else ""))
        return row

    def get(self, conv_id: str, user: str | None) -> Conversation:
        """A conversation with its turns and their feedback (``user`` None: whoever owns it)."""
        conv = Conversation(*self._owned(conv_id, user))
        rows = self.db.execute(
            "SELECT t.number, t.question, t.answer, t.citations, t.short, t.mode, t.lang, t.abstained, t.created, "
            "t.extra, f.rating, f.comment, f.not_in_articles, f.updated FROM turns t "
            "LEFT JOIN feedback f ON f.turn_id = t.id WHERE t.conversation_id=? ORDER BY t.number", (conv.id,))
        conv.turns = [_turn(r) for r in rows]
        conv.n_turns = len(conv.turns)
        return conv

    def rename(self, conv_id: str, user: str | None, title: str) -> Conversation:
        """Give a conversation a new title (control characters and runs of spaces are cleaned)."""
        clean = _clean_title(title, limit=10**6)
        if not clean:
            raise ChatError("a conversation title cannot be empty")
        if len(clean) > MAX_TITLE:
            raise ChatError(f"a conversation title holds at most {MAX_TITLE} characters (got {len(clean)})")
        with self._write() as db:
            self._owned(conv_id, user, db)
            db.execute("UPDATE conversations SET title=? WHERE id=?", (clean, conv_id))
        return self.conversation(conv_id, user)

    def conversation(self, conv_id: str, user: str | None) -> Conversation:
        """A conversation without its turns (``n_turns`` set)."""
        conv = Conversation(*self._owned(conv_id, user))
        conv.n_turns = self.db.execute("SELECT COUNT(*) FROM turns WHERE conversation_id=?", (conv.id,)).fetchone()[0]
        return conv

    def delete(self, conv_id: str, user: str | None) -> None:
        """Delete a conversation with its turns and feedback."""
        with self._write() as db:
            self._owned(conv_id, user, db)
            db.execute("DELETE FROM conversations WHERE id=?", (conv_id,))

    # -- turns ------------------------------------------------------------------------------
    def add_turn(self, user: str, answer: dict[str, Any], conv_id: str | None = None) -> tuple[Conversation, Turn]:
        """Save a completed answer as the next turn, in one transaction.

        Parameters
        ----------
        user : str
            Who asked.
        answer : dict
            The Answer JSON (``Answer.to_json()``), saved as it is: excerpts, short answer and all.
        conv_id : str, optional
            The conversation to append to; None starts a new one, titled by the question.

        Returns
        -------
        (Conversation, Turn)
            The conversation (without its turns) and the saved turn.
        """
        data = _check_answer(answer)
        rest = {k: v for k, v in data.items() if k not in _ANSWER_KEYS}
        created = now()
        with self._write() as db:
            if conv_id is None:
                conv = self._insert_conversation(db, user, _clean_title(data["question"], AUTO_TITLE), created)
            else:
                conv = Conversation(*self._owned(conv_id, user, db))
            number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM turns WHERE conversation_id=?",
                                (conv.id,)).fetchone()[0]
            turn = Turn(number, data["question"], data["answer"], list(data.get("citations", [])), data.get("short"),
                        str(data.get("mode") or "extractive"), str(data.get("lang") or ""),
                        bool(data.get("abstained")), created, rest)
            db.execute("INSERT INTO turns (conversation_id, number, question, answer, short, citations, mode, lang, "
                       "abstained, extra, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (conv.id, number, turn.question, turn.answer, _dump(turn.short), _dump(turn.citations),
                        turn.mode, turn.lang, int(turn.abstained), _dump(rest), created))
            db.execute("UPDATE conversations SET updated=? WHERE id=?", (created, conv.id))
        conv.updated, conv.n_turns = created, number
        return conv, turn

    def rate(self, conv_id: str, number: int, user: str | None, rating: Rating | str | None, comment: str = "",
             not_in_articles: bool = False) -> Feedback | None:
        """Record (or, with ``rating`` None, remove) the feedback on turn ``number``.

        Raises
        ------
        ChatError
            An unknown rating, a comment too long, or "not in the articles" on a thumbs-up.
        ChatNotFound
            No such conversation for this user, or no such turn.
        """
        if rating is not None:
            try:
                rating = Rating(rating)
            except ValueError:
                raise ChatError(f"rating {rating!r}: expected 'up' or 'down'") from None
        comment = str(comment or "").strip()
        if len(comment) > MAX_COMMENT:
            raise ChatError(f"a comment holds at most {MAX_COMMENT} characters (got {len(comment)})")
        if not_in_articles and rating is not Rating.DOWN:
            raise ChatError("'not in the articles' goes with a thumbs-down")
        with self._write() as db:
            self._owned(conv_id, user, db)
            row = db.execute("SELECT id FROM turns WHERE conversation_id=? AND number=?",
                             (conv_id, int(number))).fetchone()
            if row is None:
                raise ChatNotFound(f"conversation {conv_id!r} has no turn {number}")
            if rating is None:
                db.execute("DELETE FROM feedback WHERE turn_id=?", (row[0],))
                return None
            fb = Feedback(rating, comment, bool(not_in_articles), now())
            db.execute("INSERT INTO feedback (turn_id, rating, comment, not_in_articles, updated) "
                       "VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (turn_id) DO UPDATE SET rating=excluded.rating, comment=excluded.comment, "
                       "not_in_articles=excluded.not_in_articles, updated=excluded.updated",
                       (row[0], fb.rating.value, fb.comment, int(fb.not_in_articles), fb.updated))
            return fb

    def rated(self, user: str | None = None) -> list[Conversation]:
        """The conversations holding rated turns, each with only its rated turns, oldest first."""
        where, args = ("AND c.user=?", (user,)) if user is not None else ("", ())
        rows = self.db.execute(
            "SELECT c.id, c.user, c.title, c.created, c.updated, t.number, t.question, t.answer, t.citations, "
            "t.short, t.mode, t.lang, t.abstained, t.created, t.extra, f.rating, f.comment, f.not_in_articles, "
            "f.updated FROM feedback f JOIN turns t ON t.id = f.turn_id "
            "JOIN conversations c ON c.id = t.conversation_id "
            f"WHERE 1=1 {where} ORDER BY c.created, c.id, t.number", args)
        out: dict[str, Conversation] = {}
        for r in rows:
            conv = out.setdefault(r[0], Conversation(*r[:5]))
            conv.turns.append(_turn(r[5:]))
            conv.n_turns = len(conv.turns)
        return list(out.values())


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _turn(r: tuple) -> Turn:
    """A :class:`Turn` from a row (number, question, answer, citations, short, mode, lang, abstained, created,
    extra, rating, comment, not_in_articles, updated)."""
    fb = Feedback(Rating(r[10]), r[11], bool(r[12]), r[13]) if r[10] else None
    return Turn(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]) if r[4] else None, r[5], r[6], bool(r[7]), r[8],
                json.loads(r[9]), fb)
