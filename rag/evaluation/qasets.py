"""Q&A sets for ``rag eval``: JSONL or SQuAD-format files in, questions with gold documents out.

JSONL: one object a line, ``{"id", "question", "answers": [...], "doc": "optional source"}``;
an empty ``answers`` list marks a question the corpus cannot answer. SQuAD format (PIAF,
FQuAD): each paragraph is a document titled by its article and the question's own paragraph
is its gold document. Every error names the file and line (or question) at fault.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import BadInput
from ..ingest.files import key_files
from ..ingest.loading import clean_text, doc_id_for, squad_key
from ..store.sqlite import Store, docs_under
from ..text.normalize import jsonl_lines, text_hash


class QAFormatError(BadInput):
    """A Q&A file cannot be read; the message names the file and line."""


@dataclass
class QAItem:
    """One question of a Q&A set.

    ``doc`` is the gold document as the file names it (a source path for JSONL); ``gold`` holds
    the ids of the indexed documents it resolves to (filled by :func:`resolve_gold`).
    """

    id: str
    question: str
    answers: list[str]
    doc: str = ""
    where: str = ""                       # "file:line" or "file: article a, paragraph p"
    context_sha256: str = ""              # SQuAD: hash of the paragraph, to find it in any index
    squad_id: str = ""                    # SQuAD: doc id the paragraph gets when this file is indexed
    gold: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        """True when the set gives at least one answer."""
        return bool(self.answers)


@dataclass
class QASet:
    """A loaded Q&A set."""

    path: Path
    kind: str  # "jsonl" or "squad"
    items: list[QAItem]

    @property
    def name(self) -> str:
        """The dataset name shown in reports (the file name)."""
        return self.path.name


def load_qa(path: str | os.PathLike) -> QASet:
    """Read a Q&A set, JSONL or SQuAD format (told apart by content, not extension).

    Raises
    ------
    QAFormatError
        For a missing, empty or malformed file; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise QAFormatError(f"{path}: no such Q&A file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QAFormatError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise QAFormatError(f"{path}: empty Q&A file")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "data" in whole:
        items = list(_squad_items(path, whole))
        kind = "squad"
    else:
        items = list(_jsonl_items(path, text))
        kind = "jsonl"
    if not items:
        raise QAFormatError(f"{path}: no question found")
    return QASet(path, kind, items)


def _jsonl_items(path: Path, text: str) -> Iterable[QAItem]:
    seen: dict[str, int] = {}
    for lineno, line in jsonl_lines(text):
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAFormatError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise QAFormatError(f"{where}: expected an object with \"question\" and \"answers\"")
        question, answers, doc = obj.get("question"), obj.get("answers", None), obj.get("doc", "")
        if not isinstance(question, str) or not question.strip():
            raise QAFormatError(f'{where}: "question" must be a non-empty string')
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            raise QAFormatError(f'{where}: "answers" must be a list of non-empty strings ([] for unanswerable)')
        if doc is None:
            doc = ""
        if not isinstance(doc, str):
            raise QAFormatError(f'{where}: "doc" must be a string (the source of the gold document)')
        ident = str(obj.get("id") or f"line{lineno}")
        if ident in seen:
            raise QAFormatError(f"{where}: duplicate id {ident!r} (first on line {seen[ident]})")
        seen[ident] = lineno
        yield QAItem(ident, question.strip(), answers, doc.strip(), where)


def _squad_items(path: Path, obj: dict) -> Iterable[QAItem]:
    if not isinstance(obj["data"], list):
        raise QAFormatError(f'{path}: "data" must be a list of articles (SQuAD format)')
    for ai, article in enumerate(obj["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise QAFormatError(f'{path}: article {ai} has no "paragraphs" list')
        for pi, para in enumerate(paragraphs):
            where = f"{path}: article {ai}, paragraph {pi}"
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                raise QAFormatError(f'{where}: no "context" text')
            digest = text_hash(clean_text(context))
            for qi, qa in enumerate(para.get("qas", [])):
                question = qa.get("question") if isinstance(qa, dict) else None
                if not isinstance(question, str) or not question.strip():
                    raise QAFormatError(f'{where}, question {qi}: no "question" text')
                answers = [] if qa.get("is_impossible") else [
                    a["text"] for a in qa.get("answers", []) if isinstance(a, dict) and str(a.get("text", "")).strip()]
                yield QAItem(str(qa.get("id") or f"{ai}-{pi}-{qi}"), question.strip(), answers,
                             f"{path}#{ai}-{pi}" if answers else "", f"{where}, question {qi}",
                             digest if answers else "", doc_id_for(squad_key(path, ai, pi)) if answers else "")


def resolve_gold(qa: QASet, store: Store) -> list[QAItem]:
    """Fill each item's ``gold`` with the ids of the indexed documents it names.

    JSONL ``doc`` values match a document id, source, title or folder, or a file path (relative
    to the current folder, the Q&A file's folder or its parent) that was indexed. SQuAD
    paragraphs match by the id this file gives them, else by their text.

    Returns
    -------
    list of QAItem
        Items whose gold document is not in the index (empty when all resolve).
    """
    docs = store.documents()
    ids = {d["id"] for d in docs}
    by_sha: dict[str, list[str]] = {}
    for d in docs:
        by_sha.setdefault(d["sha256"], []).append(d["id"])
    cache: dict[str, list[str]] = {}
    missing = []
    for item in qa.items:
        if item.context_sha256:
            item.gold = [item.squad_id] if item.squad_id in ids else by_sha.get(item.context_sha256, [])
        elif item.doc:
            if item.doc not in cache:
                cache[item.doc] = _match_doc(item.doc, qa.path, docs, store)
            item.gold = cache[item.doc]
        if (item.doc or item.context_sha256) and not item.gold:
            missing.append(item)
    return missing


def _match_doc(ref: str, qa_path: Path, docs: list[dict], store: Store) -> list[str]:
    found = store.resolve_docs([ref])
    if found:
        return found
    bases = [Path.cwd(), qa_path.resolve().parent, qa_path.resolve().parent.parent]
    hits = docs_under(docs, {str((b / ref).resolve()) for b in bases})
    if hits:
        return hits
    tail = "/" + ref.lstrip("./")
    return sorted({d["id"] for d in docs
                   if d["source"].endswith(tail) or any(f.endswith(tail) for f in key_files(d["key"]))})
