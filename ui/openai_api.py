"""An OpenAI-compatible chat API over the articles: ``POST /v1/chat/completions``, ``GET /v1/models``.

Any OpenAI-compatible chat client can use the articles as a model: point it at
``http://HOST:PORT/v1`` with an API key (a token of ``RAG_API_TOKEN``, or ``USER:PASSWORD`` of a
login; anything when the server has neither). The reply text carries the ``[n]`` markers and the
sources follow it as a list; the full citations (excerpts, offsets, scores) go in the extra
field ``citations`` of the completion (of the last chunk when streaming), with ``abstained`` and
``short``. The last user message is the question, the earlier user/assistant pairs its history.
Extra request fields ``k`` and ``docs`` work as in ``/api/ask``; other OpenAI parameters
(temperature, max_tokens, ...) are accepted and ignored.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any, AsyncIterator, Callable, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from rag.chats import source_line
from rag.schema import Answer

log = logging.getLogger(__name__)
MODELS = {"rag": None, "rag-extractive": "extractive", "rag-llm": "llm"}  # model id -> answer mode (None: default)
SOURCES_HEAD = {"fr": "Sources :", "en": "Sources:"}
_SOURCES_BLOCK = re.compile(r"\n\nSources ?:\n.*\Z", re.S)
MAX_MESSAGES = 200
MAX_QUESTION = 2000
STARTED = int(time.time())


class ContentPart(BaseModel):
    """A part of a message's content (only ``text`` parts are read)."""

    model_config = ConfigDict(extra="allow")
    type: str = "text"
    text: str | None = None


class Message(BaseModel):
    """A chat message."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class CompletionRequest(BaseModel):
    """OpenAI's chat completion request; ``k`` and ``docs`` are this server's extras."""

    model_config = ConfigDict(extra="allow")
    model: str = Field("rag", max_length=100)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    k: int | None = Field(None, ge=1, le=20, description="passages to retrieve")
    docs: list[str] | None = Field(None, max_length=100, description="restrict to these documents")


def text_of(message: Message) -> str:
    """The text of a message (its text parts joined)."""
    if isinstance(message.content, list):
        return "\n".join(p.text for p in message.content if p.text)
    return message.content or ""


def question_and_history(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and the earlier (user, assistant) pairs with their sources lists cut off.

    Raises
    ------
    HTTPException
        400 when the last message is not a user's question.
    """
    talk = [m for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user" or not text_of(talk[-1]).strip():
        raise HTTPException(400, "the last message must be the user's question (role user, non-empty content)")
    question = text_of(talk[-1])
    if len(question) > MAX_QUESTION:
        raise HTTPException(400, f"the question holds {len(question)} characters; at most {MAX_QUESTION}")
    history: list[tuple[str, str]] = []
    for i, m in enumerate(talk[:-1]):
        if m.role == "user":
            nxt = talk[i + 1] if i + 1 < len(talk) - 1 else None
            reply = text_of(nxt) if nxt is not None and nxt.role == "assistant" else ""
            history.append((text_of(m), _SOURCES_BLOCK.sub("", reply)))
    return question, history


def sources_block(answer: Answer | dict) -> str:
    """The sources list that follows the reply text (empty without citations)."""
    data = answer if isinstance(answer, dict) else answer.to_json()
    if not data["citations"]:
        return ""
    head = SOURCES_HEAD.get(data.get("lang", ""), SOURCES_HEAD["en"])
    return f"\n\n{head}\n" + "\n".join(source_line(c, offsets=False) for c in data["citations"])


def extras(data: dict[str, Any]) -> dict[str, Any]:
    """The fields this server adds to a completion: citations, abstained, short."""
    return {"citations": data["citations"], "abstained": data["abstained"], "short": data.get("short")}


def add_openai_routes(app: FastAPI, chat: Any, answering: Any, user: Callable) -> None:
    """Add ``/v1/models`` and ``/v1/chat/completions`` to ``app``.

    Parameters
    ----------
    app : FastAPI
        The API application (:func:`ui.api.create_app`).
    chat : ui.app.ChatApp
        The pipeline to answer with.
    answering : ui.api.Answering
        Runs answers off the event loop, a few at a time; checks modes and document names.
    user : callable
        The dependency that authenticates a request.
    """

    def model_ids() -> list[str]:
        return [m for m, mode in MODELS.items() if mode != "llm" or chat.llm]

    def card(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": STARTED, "owned_by": "rag"}

    @app.get("/v1/models", tags=["openai"])
    def models(who: str = Depends(user)) -> dict[str, Any]:
        """The models: ``rag`` (the server's default answer mode), ``rag-extractive``, ``rag-llm`` when configured."""
        return {"object": "list", "data": [card(m) for m in model_ids()]}

    @app.get("/v1/models/{model}", tags=["openai"])
    def model(model: str, who: str = Depends(user)) -> dict[str, Any]:
        """One model."""
        if model not in model_ids():
            raise HTTPException(404, f"model {model[:100]!r} does not exist; models: {', '.join(model_ids())}")
        return card(model)

    @app.post("/v1/chat/completions", tags=["openai"], response_model=None)
    async def completions(body: CompletionRequest, who: str = Depends(user)) -> Response:
        """Answer the last user message from the articles, OpenAI-style (``stream`` for server-sent chunks)."""
        if body.model not in model_ids():
            raise HTTPException(404, f"model {body.model[:100]!r} does not exist; models: {', '.join(model_ids())}")
        mode = answering.mode(MODELS[body.model])
        docs = answering.docs(body.docs)
        question, history = question_and_history(body.messages)
        args = (question, body.k, docs, history, mode)
        ident, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        if not body.stream:
            data = (await answering.run(chat.rag.ask, *args)).to_json()
            message = {"role": "assistant", "content": data["answer"] + sources_block(data)}
            return JSONResponse({
                "id": ident, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, **extras(data)})

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
            payload = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **more}
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            stream = chat.rag.ask_stream(*args)
            sent, last = "", None
            try:
                while (item := await answering.run(next, stream, None)) is not None:
                    last = item
                    if item.answer.startswith(sent) and len(item.answer) > len(sent):
                        yield chunk({"content": item.answer[len(sent):]})
                        sent = item.answer
                if last is None:
                    raise RuntimeError("no answer")
            except Exception:  # the stream has started: say it failed, in the stream
                log.exception("streaming a completion for %r failed", question[:200])
                yield chunk({"content": "\n\n(answering failed; see the server log)"}, "stop")
                yield "data: [DONE]\n\n"
                return
            data = last.to_json()
            rest = data["answer"][len(sent):] if data["answer"].startswith(sent) else "\n\n" + data["answer"]
            if rest or sources_block(data):
                yield chunk({"content": rest + sources_block(data)})
            yield chunk({}, "stop", **extras(data))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
