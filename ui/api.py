"""The HTTP API, served beside the chat by the same server: ask, status, documents, saved conversations.

:func:`create_app` makes the FastAPI application that serves ``/api/...`` and the OpenAI-compatible
``/v1/...`` (:mod:`ui.openai_api`); the Gradio chat is mounted on it at ``/`` (:func:`ui.app.launch`).
The schema is at ``/api/openapi.json`` and its pages at ``/api/docs``. Requests need the chat's
login (HTTP basic auth) or a bearer token (:mod:`ui.auth`) when the server has any. Errors are
JSON ``{"status": 404, "error": "message"}`` (a 422 adds ``details``), never a stack trace. See
``docs/api.md``.
"""

from __future__ import annotations

import enum
import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.routing import Match

from rag import __version__
from rag.chats import ChatError, ChatNotFound, ChatStore, Rating, export, export_name
from rag.chats.store import MAX_COMMENT, MAX_TITLE
from rag.errors import IndexProblem

from .auth import Logins
from .jobs import Job
from .openai_api import add_openai_routes
from .uploads import MB, UploadRefused, check_upload, safe_name, save_upload

log = logging.getLogger(__name__)
MAX_QUESTION = 2000       # characters of a question
MAX_ANSWER = 20_000       # characters of an earlier answer given as history
MAX_HISTORY = 50          # earlier turns given as history
MAX_K = 20                # passages per answer
MAX_FILES = 20            # files per upload request
WAIT_S = 600.0            # longest ?wait=true for an index job
KEPT_JOBS = 200           # finished jobs the API remembers
UNAUTHORIZED = ("a login is needed: HTTP basic auth with a login of --auth / RAG_AUTH, or "
                "Authorization: Bearer <a token of RAG_API_TOKEN>")


# -- request and response bodies (they make the schema) -----------------------------------------
class Mode(str, enum.Enum):
    """How the answer is written."""

    EXTRACTIVE = "extractive"
    LLM = "llm"


class HistoryTurn(BaseModel):
    """An earlier exchange of the conversation, for follow-up questions."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=MAX_QUESTION)
    answer: str = Field("", max_length=MAX_ANSWER)


class AskRequest(BaseModel):
    """A question and how to answer it."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION, description="the question")
    k: int | None = Field(None, ge=1, le=MAX_K, description="passages to retrieve (default: the server's top_k)")
    docs: list[str] | None = Field(None, max_length=100,
                                   description="restrict to these documents: ids, sources, folders or titles")
    history: list[HistoryTurn] | None = Field(None, max_length=MAX_HISTORY,
                                              description="earlier turns, oldest first (default: the saved turns "
                                                          "of `conversation`, else none)")
    mode: Mode | None = Field(None, description="extractive, or llm when the server has an LLM endpoint")
    stream: bool = Field(False, description="answer as server-sent events (`partial`, then `answer`)")
    conversation: str | None = Field(None, max_length=64,
                                     description='save the turn: a conversation id, or "new" to start one')

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is blank")
        return value


class CitationOut(BaseModel):
    """The excerpt behind a marker ``[n]``."""

    model_config = ConfigDict(extra="allow")
    n: int
    doc_id: str
    source: str
    title: str
    chunk_id: str
    excerpt: str
    start: int
    end: int
    score: float
    sentence_start: int | None = None
    sentence_end: int | None = None


class SavedRef(BaseModel):
    """Where an answer was saved."""

    id: str
    number: int


class AnswerOut(BaseModel):
    """The Answer JSON (see the design's contract), and where it was saved when asked to."""

    model_config = ConfigDict(extra="allow")
    question: str
    answer: str
    abstained: bool
    short: dict[str, Any] | None = None
    citations: list[CitationOut]
    latency_ms: float
    lang: str
    mode: str
    notice: str = ""
    conversation: SavedRef | None = None


class ErrorOut(BaseModel):
    """Every error: its HTTP status and a message for people (``details`` for a 422)."""

    status: int
    error: str
    details: list[dict[str, Any]] | None = None


class TitleIn(BaseModel):
    """A conversation title."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=MAX_TITLE)


class NewChatIn(BaseModel):
    """A new conversation (titled by its first question when no title is given)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field("", max_length=MAX_TITLE)


class FeedbackIn(BaseModel):
    """Feedback on one answer."""

    model_config = ConfigDict(extra="forbid")
    rating: Rating
    comment: str = Field("", max_length=MAX_COMMENT)
    not_in_articles: bool = Field(False, description="a thumbs-down: the articles cannot answer this question")


ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 404, 413, 422)}


def chat_links(conv_id: str, number: str | None = None) -> dict[str, Any]:
    """OpenAPI links from a response naming a conversation (``conv_id``: a runtime expression) to its operations."""
    links = {op: {"operationId": op, "parameters": {"conv_id": conv_id}}
             for op in ("get_chat", "rename_chat", "export_chat", "delete_chat")}
    if number:
        links.update({op: {"operationId": op, "parameters": {"conv_id": conv_id, "number": number}}
                      for op in ("rate", "unrate")})
    return links


# -- errors -----------------------------------------------------------------------------------
def error_response(request: Request, status: int, message: str, details: list | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """The JSON error body: ``{"status", "error"}`` under ``/api``, OpenAI's ``{"error": {...}}`` under ``/v1``."""
    if request.url.path.startswith("/v1"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    else:
        body = {"status": status, "error": message}
        if details:
            body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """JSON errors with the right status for every failure of an API route; a 500 says only that it failed."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(request, 400, "the request body is not valid JSON")
        details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        first = details[0] if details else {"field": "", "message": "invalid request"}
        return error_response(request, 422, f"{first['field']}: {first['message']}", jsonable_encoder(details))

    @app.exception_handler(ChatNotFound)
    async def _missing(request: Request, exc: ChatNotFound) -> JSONResponse:
        return error_response(request, 404, str(exc))

    @app.exception_handler(ChatError)
    async def _bad(request: Request, exc: ChatError) -> JSONResponse:
        return error_response(request, 400, str(exc))

    @app.exception_handler(IndexProblem)
    async def _index(request: Request, exc: IndexProblem) -> JSONResponse:
        return error_response(request, 503, f"the index is not available: {exc}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "the server failed to handle this request (see its log)")


# -- shared pieces ----------------------------------------------------------------------------
class Answering:
    """Answers computed for the API, ``answer_concurrency`` at a time (the chat's setting), off the event loop.

    Parameters
    ----------
    chat : ui.app.ChatApp
        The chat's pipeline, index and jobs (shared with the page).
    """

    def __init__(self, chat: Any):
        self.chat = chat
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable, *args: Any) -> Any:
        """``fn(*args)`` in a worker thread, waiting for a free slot."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.chat.config.answer_concurrency)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def mode(self, mode: str | None) -> str:
        """The answer mode to use (``extractive`` or ``llm``; None: llm when configured); llm without an endpoint
        is a 400."""
        mode = getattr(mode, "value", mode)
        if mode is not None and mode not in {m.value for m in Mode}:
            raise HTTPException(400, f"mode {str(mode)[:40]!r}: expected extractive or llm")
        if mode == Mode.LLM and not self.chat.llm:
            raise HTTPException(400, "mode llm needs an LLM endpoint on the server (llm_base_url and llm_model)")
        return Mode(mode).value if mode else (Mode.LLM.value if self.chat.llm else Mode.EXTRACTIVE.value)

    def docs(self, names: list[str] | None) -> list[str] | None:
        """Document ids for the ``docs`` restriction; a name matching nothing is a 400."""
        if not names:
            return None
        ids: list[str] = []
        for name in names:
            found = self.chat.store.resolve_docs([name])
            if not found:
                raise HTTPException(400, f"docs: {name[:200]!r} matches no indexed document (see GET /api/documents)")
            ids.extend(found)
        return sorted(set(ids))


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def job_json(job: Job) -> dict[str, Any]:
    """An index job as JSON: state, progress, and what it did once over."""
    out: dict[str, Any] = {"id": job.id, "kind": job.kind, "names": job.names, "state": job.state.value,
                           "done": job.done, "total": job.total, "error": job.error or None, "report": None}
    r = job.report
    if r is not None:
        out["report"] = {"added": r.added, "updated": r.updated, "removed": r.removed, "unchanged": r.unchanged,
                         "skipped": [{"path": s.path, "reason": s.reason} for s in r.skipped],
                         "chunks_new": r.chunks_new, "chunks_total": r.chunks_total}
    return out


DOC_KEYS = ("id", "source", "title", "lang", "chunks", "indexed")
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": MAX_FILES,
                             "description": "articles: .txt .md .html .pdf .jsonl"}}}}}}}


def create_app(chat: Any, chats: ChatStore, logins: Logins) -> FastAPI:
    """The FastAPI application of the HTTP API (``/api``) and the OpenAI-compatible API (``/v1``).

    Parameters
    ----------
    chat : ui.app.ChatApp
        The chat's pipeline, index, upload folder and index jobs, shared with the page.
    chats : ChatStore
        Saved conversations.
    logins : Logins
        Who may call (no logins and no tokens: everyone on the loopback, as the local user).

    Returns
    -------
    FastAPI
        Mount the Gradio chat on it at ``/`` (:func:`ui.app.launch` does).
    """
    app = FastAPI(title="rag — questions on your articles", version=__version__, openapi_url="/api/openapi.json",
                  docs_url="/api/docs", redoc_url=None, generate_unique_id_function=lambda route: route.name,
                  description="Answers with cited excerpts from the indexed articles, the index's documents, and "
                              "the saved conversations of the chat. See docs/api.md.")
    install_error_handlers(app)
    answering = Answering(chat)
    jobs: dict[int, Job] = {}
    jobs_lock = threading.Lock()

    async def user(request: Request) -> str:
        who = logins.user_for(request.headers.get("authorization"))
        if who is None:
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": 'Basic realm="rag", charset="UTF-8"'})
        return who

    def keep(job: Job) -> Job:
        with jobs_lock:
            jobs[job.id] = job
            for old in sorted(jobs)[:-KEPT_JOBS]:
                if jobs[old].over:
                    del jobs[old]
        return job

    async def settle(job: Job, wait: bool) -> JSONResponse:
        if wait:
            await anyio.to_thread.run_sync(job.finished.wait, WAIT_S)
        return JSONResponse(job_json(job), status_code=200 if job.over else 202)

    # -- ask -----------------------------------------------------------------------------------
    @app.post("/api/ask", tags=["answers"], response_model=None, responses={
        200: {"model": AnswerOut, "description": "the Answer JSON; with stream=true, server-sent events "
                                                 "`partial` (the answer so far) and then `answer`",
              "content": {"text/event-stream": {"schema": {"type": "string"}}},
              "links": chat_links("$response.body#/conversation/id", "$response.body#/conversation/number")},
        **ERRORS})
    async def ask(body: AskRequest, who: str = Depends(user)) -> Response:
        """Answer one question with cited excerpts; optionally save the turn in a conversation."""
        mode = answering.mode(body.mode)
        docs = answering.docs(body.docs)
        history = [(h.question, h.answer) for h in body.history] if body.history is not None else None
        conv_id = None
        if body.conversation and body.conversation != "new":
            conv = await anyio.to_thread.run_sync(chats.get, body.conversation, who)
            conv_id = conv.id
            if history is None:
                history = [(t.question, t.answer) for t in conv.turns]
        args = (body.question, body.k, docs, history, mode)

        def save(out: dict[str, Any]) -> dict[str, Any]:
            if body.conversation:
                conv, turn = chats.add_turn(who, out, conv_id)
                out = {**out, "conversation": {"id": conv.id, "number": turn.number}}
            return out

        if not body.stream:
            out = (await answering.run(chat.rag.ask, *args)).to_json()
            return JSONResponse(await anyio.to_thread.run_sync(save, out) if body.conversation else out)

        async def events() -> AsyncIterator[str]:
            stream = chat.rag.ask_stream(*args)
            last = None
            try:
                while (item := await answering.run(next, stream, None)) is not None:
                    if last is not None:
                        yield sse("partial", last.to_json())
                    last = item
                if last is None:
                    raise RuntimeError("no answer")
                yield sse("answer", await anyio.to_thread.run_sync(save, last.to_json()))
            except Exception:  # the stream has started: the error goes as an event
                log.exception("streaming an answer to %r failed", body.question[:200])
                yield sse("error", {"status": 500, "error": "answering failed (see the server log)"})

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/api/status", tags=["index"], responses=ERRORS)
    def status(who: str = Depends(user)) -> dict[str, Any]:
        """The index (documents, chunks, model, last update), whether an update runs, the answer modes."""
        try:
            index, error = chat.store.status(), None
        except IndexProblem as exc:
            index, error = None, str(exc)
        return {"ready": index is not None, "index": index, "error": error, "indexing": chat.jobs.busy,
                "modes": ["extractive", "llm"] if chat.llm else ["extractive"], "version": __version__, "user": who}

    # -- documents -----------------------------------------------------------------------------
    @app.get("/api/documents", tags=["index"], responses=ERRORS)
    def documents(who: str = Depends(user)) -> dict[str, Any]:
        """The indexed documents (id, source, title, language, passages, when indexed)."""
        return {"documents": [{k: d.get(k) for k in DOC_KEYS} for d in chat.store.documents()]}

    @app.post("/api/documents", tags=["index"], status_code=202, openapi_extra=UPLOAD_BODY, responses={
        200: {"description": "indexed (with wait=true)"},
        202: {"description": "queued for indexing", "links": {"job": {"operationId": "job", "parameters": {
            "job_id": "$response.body#/id"}}}}, **ERRORS})
    async def upload(request: Request, wait: bool = Query(False, description="answer once indexed"),
                     who: str = Depends(user)) -> JSONResponse:
        """Add articles (multipart field ``files``); all are refused when one is (type, size, empty)."""
        max_mb = chat.config.upload_max_mb
        limit = int(max_mb * MB) * MAX_FILES + MB
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise HTTPException(413, f"request too large: {int(length) / MB:.1f} MB (files of {max_mb:g} MB at most, "
                                f"{MAX_FILES} a request)")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(400, "send the files as multipart/form-data in the field 'files'")
        form = await _read_form(request, limit)
        try:
            files = [f for f in form.getlist("files") if hasattr(f, "filename")]
            if not files:
                raise HTTPException(400, "no file in the field 'files'")
            if len(files) > MAX_FILES:
                raise HTTPException(413, f"{len(files)} files: at most {MAX_FILES} a request")
            with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
                staged = []
                for i, f in enumerate(files):
                    path = Path(tmp) / f"{i}.part"
                    with path.open("wb") as out:
                        while block := await f.read(1 << 20):
                            out.write(block)
                    staged.append((path, f.filename or ""))
                try:
                    for path, name in staged:
                        check_upload(path, safe_name(name), max_mb)
                    saved = list(dict.fromkeys(save_upload(path, name, chat.folder, max_mb).path
                                               for path, name in staged))
                except UploadRefused as r:
                    raise HTTPException(413 if r.key == "upload_too_big" else 400, str(r)) from None
        finally:
            await form.close()
        return await settle(keep(chat.jobs.add(saved)), wait)

    @app.delete("/api/documents/{doc_id}", tags=["index"], status_code=202, responses={
        200: {"description": "removed (with wait=true)"}, 202: {"description": "queued for removal"}, **ERRORS})
    async def remove(doc_id: str, wait: bool = Query(False, description="answer once removed"),
                     who: str = Depends(user)) -> JSONResponse:
        """Remove a document from the index (and its uploaded file)."""
        docs = {d["id"]: d for d in await anyio.to_thread.run_sync(chat.store.documents)}
        if doc_id not in docs:
            raise HTTPException(404, f"no indexed document {doc_id[:64]!r} (see GET /api/documents)")
        d = docs[doc_id]
        return await settle(keep(chat.jobs.remove([doc_id], [d.get("title") or d.get("source") or doc_id])), wait)

    @app.get("/api/jobs/{job_id}", tags=["index"], responses=ERRORS)
    def job(job_id: int, who: str = Depends(user)) -> dict[str, Any]:
        """An index update started by ``POST`` or ``DELETE /api/documents``: state, progress, report."""
        with jobs_lock:
            found = jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no index job {job_id}")
        return job_json(found)

    # -- conversations -------------------------------------------------------------------------
    @app.get("/api/chats", tags=["conversations"], responses=ERRORS)
    def list_chats(who: str = Depends(user)) -> dict[str, Any]:
        """Your conversations, most recently active first."""
        return {"conversations": [c.summary() for c in chats.conversations(who)]}

    @app.post("/api/chats", tags=["conversations"], status_code=201, responses={
        201: {"description": "the new conversation", "links": chat_links("$response.body#/id")}, **ERRORS})
    def new_chat(body: NewChatIn | None = None, who: str = Depends(user)) -> dict[str, Any]:
        """Start an empty conversation (ask into it with ``conversation`` = its id)."""
        return chats.create(who, body.title if body else "").summary()

    @app.get("/api/chats/{conv_id}", tags=["conversations"], responses=ERRORS)
    def get_chat(conv_id: str, who: str = Depends(user)) -> dict[str, Any]:
        """A conversation with every turn: the Answer JSON as it was shown, and its feedback."""
        return chats.get(conv_id, who).to_json()

    @app.patch("/api/chats/{conv_id}", tags=["conversations"], responses=ERRORS)
    def rename_chat(conv_id: str, body: TitleIn, who: str = Depends(user)) -> dict[str, Any]:
        """Rename a conversation."""
        return chats.rename(conv_id, who, body.title).summary()

    @app.delete("/api/chats/{conv_id}", tags=["conversations"], status_code=204, responses=ERRORS)
    def delete_chat(conv_id: str, who: str = Depends(user)) -> Response:
        """Delete a conversation with its turns and feedback."""
        chats.delete(conv_id, who)
        return Response(status_code=204)

    @app.get("/api/chats/{conv_id}/export", tags=["conversations"], responses={
        200: {"content": {"text/markdown": {}, "application/json": {}}}, **ERRORS})
    def export_chat(conv_id: str, format: str = Query("md", pattern="^(md|json)$"),
                    who: str = Depends(user)) -> Response:
        """The conversation as Markdown (questions, answers, every source and excerpt) or JSON."""
        conv = chats.get(conv_id, who)
        media = "text/markdown; charset=utf-8" if format == "md" else "application/json"
        return Response(export(conv, format), media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{export_name(conv, format)}"'})

    @app.put("/api/chats/{conv_id}/turns/{number}/feedback", tags=["conversations"], responses=ERRORS)
    def rate(conv_id: str, number: int, body: FeedbackIn, who: str = Depends(user)) -> dict[str, Any]:
        """Thumbs up or down on answer ``number``, with an optional comment."""
        fb = chats.rate(conv_id, number, who, body.rating, body.comment, body.not_in_articles)
        return fb.to_json() if fb else {}

    @app.delete("/api/chats/{conv_id}/turns/{number}/feedback", tags=["conversations"], status_code=204,
                responses=ERRORS)
    def unrate(conv_id: str, number: int, who: str = Depends(user)) -> Response:
        """Remove the feedback on answer ``number``."""
        chats.rate(conv_id, number, who, None)
        return Response(status_code=204)

    add_openai_routes(app, chat, answering, user)

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(request: Request, rest: str) -> None:
        allowed = sorted({m for r in app.routes if "{rest:path}" not in getattr(r, "path", "{rest:path}")
                          and r.matches(request.scope)[0] is Match.PARTIAL for m in getattr(r, "methods", ())})
        if allowed:
            raise HTTPException(405, f"{request.method} is not allowed on {request.url.path} "
                                     f"(allowed: {', '.join(allowed)})",
                           headers={"Allow": ", ".join(allowed)})
        raise HTTPException(404, f"no such endpoint: {request.method} {request.url.path} (see /api/docs)")

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = {
                "basic": {"type": "http", "scheme": "basic", "description": "a login of --auth / RAG_AUTH"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a token of RAG_API_TOKEN, or USER:PASSWORD of a login"}}
            if logins.required:
                spec["security"] = [{"basic": []}, {"bearer": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
    return app


async def _read_form(request: Request, limit: int):
    """The multipart form, reading at most ``limit`` bytes of body (413 beyond)."""
    seen = 0

    async def bounded() -> AsyncIterator[bytes]:
        nonlocal seen
        async for block in request.stream():
            seen += len(block)
            if seen > limit:
                raise HTTPException(413, f"request too large (more than {limit / MB:.0f} MB)")
            yield block

    parser = MultiPartParser(request.headers, bounded(), max_files=MAX_FILES + 1, max_fields=10)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"the multipart body could not be read: {exc.message}") from None
