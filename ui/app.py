"""The web chat (Gradio): a streamed, cited chat beside its sources, with uploads and settings.

The UI calls the library, never the other way round. All document text is HTML-escaped
(see :mod:`ui.render`). Run it with ``rag serve`` or :func:`serve`.
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import gradio as gr
import uvicorn

from rag.chats import ChatStore
from rag.cli.common import explain
from rag.config import Config
from rag.dates import day_range
from rag.errors import IndexProblem
from rag.ingest.fetch import is_address
from rag.pipeline import RAG

from .api import create_app
from .auth import Logins
from .conversations import ConversationPanel, feedback_options, render_feedback, render_panel, wire
from .doclist import DocumentList, document_panel, relabel_panel, restrict_search_box, wire_document_panel
from .i18n import EXAMPLES, LANGS, pick_lang, t
from .jobs import IndexJobs
from .notes import NoteBoard, Update
from .render import Turn, answer_markdown, escape_markdown, message_list, question_markdown, sources_html, status_html
from .security import Guards
from .uploads import ACCEPTED, MB, ReceivedCopies, UploadRefused, discard_received, save_upload, upload_dir

log = logging.getLogger(__name__)
ASSETS = Path(__file__).parent
INDEX_EVENTS = 4        # upload/remove events at once; they only wait on the single job thread
REFRESH_S = 15          # how often an open page checks for an index updated elsewhere
POLL_S = 0.4            # progress refresh while a job runs


class ChatApp:
    """The page's behaviour: each public method is an event handler of the Gradio app.

    Parameters
    ----------
    config : Config
        Settings; ``index_dir`` must hold a built index.
    rag : RAG, optional
        The pipeline to answer with (default: ``RAG(config)``).
    jobs : IndexJobs, optional
        The index update queue (default: one of its own, uploads in :func:`ui.uploads.upload_dir`).
    """

    def __init__(self, config: Config, rag: RAG | None = None, jobs: IndexJobs | None = None):
        self.config = config
        self.rag = rag or RAG(config)
        self.store = self.rag.retriever.store
        self.folder = upload_dir(config)
        self.jobs = jobs or IndexJobs(config, self.folder)
        self.docs = DocumentList(self.store)
        self.llm = config.llm_configured
        self.received = gr.utils.get_upload_folder()  # where Gradio keeps what browsers send
        self.board = NoteBoard()  # each page's upload notes
        self.copies = ReceivedCopies()  # Gradio's copies already kept

    def warm_up(self) -> None:
        """Load the query model and search once, so the first user does not wait for it."""
        try:
            self.rag.ask("warm-up")
        except IndexProblem as exc:
            log.warning("index not ready: %s", explain(exc))

    # -- index views ------------------------------------------------------------------------
    def _status(self) -> tuple[dict | None, str]:
        try:
            return self.store.status(), ""
        except IndexProblem as exc:
            return None, explain(exc)

    def header(self, lang: str, loaded: bool = True) -> str:
        """Title, subtitle and the index status line (``data-lang`` once the session has loaded)."""
        status, error = self._status()
        ready = f' data-lang="{lang}"' if loaded else ""
        return (f'<div id="rag-head"{ready}><h1>{html.escape(t(lang, "title"))}</h1>'
                f'<p class="rag-sub">{html.escape(t(lang, "subtitle"))}</p>'
                f"{status_html(status, lang, error)}</div>")

    def generation(self) -> int:
        """The committed generation of the index (0 when unreadable)."""
        status, _ = self._status()
        return int(status["generation"]) if status else 0

    def document_views(self, lang: str, restrict: Sequence[str] | None = None, *view):
        """Updates of the document table (one page) and the two document pickers (bounded).

        ``view``: the list's search, page and restriction search (:attr:`ui.doclist.DocumentPanel.view`).
        """
        return self.docs.views(lang, restrict, *view)

    # -- language ---------------------------------------------------------------------------
    def on_load(self, request: gr.Request) -> tuple:
        """First paint of a session: the browser's language (or the configured one)."""
        header = request.headers.get("accept-language") if request is not None else None
        lang = self.config.ui_lang or pick_lang(header)
        return (lang, lang, self.generation(), *self.relabel(lang, []))

    def relabel(self, lang: str, turns: Sequence[Turn], restrict: Sequence[str] | None = None, *view) -> tuple:
        """Every translated label of the page, in ``lang``, and the document list and pickers as they are now."""
        lang = lang if lang in LANGS else "fr"
        modes = [(t(lang, "mode_extractive"), "extractive"), (t(lang, "mode_llm"), "llm")]
        table, restrict_pick, remove_pick = self.document_views(lang, restrict, *view)
        return (
            self.header(lang),
            gr.update(label=t(lang, "chat"), placeholder=_placeholder(lang),
                      examples=[{"text": q} for q in EXAMPLES[lang]]),
            gr.update(placeholder=t(lang, "placeholder")),
            gr.update(value=t(lang, "send")),
            gr.update(value=t(lang, "clear")),
            gr.update(label=t(lang, "settings")),
            gr.update(label=t(lang, "k")),
            gr.update(label=t(lang, "mode"), choices=modes, info=None if self.llm else t(lang, "mode_llm_off")),
            {**restrict_pick, "label": t(lang, "restrict"), "info": t(lang, "restrict_info")},
            gr.update(label=t(lang, "documents")),
            gr.update(label=t(lang, "upload", mb=f"{self.config.upload_max_mb:g}")),
            {**remove_pick, "label": t(lang, "remove_pick")},
            gr.update(value=t(lang, "remove")),
            f'<h3 class="rag-h">{html.escape(t(lang, "sources"))}</h3>',
            sources_html(turns, lang),
            table,
            gr.update(label=t(lang, "since"), info=t(lang, "dates_info")),
            gr.update(label=t(lang, "until")),
            gr.update(label=t(lang, "addresses")),
            gr.update(value=t(lang, "fetch")),
            *relabel_panel(lang),
        )

    # -- chat -------------------------------------------------------------------------------
    def start_turn(self, question: str, turns: list[Turn], busy: bool) -> tuple:
        """Show the question at once and clear the box; the answer streams in :meth:`respond`.

        While an answer streams, Enter does nothing (the typed question stays in the box), so
        two answers of one conversation never race.
        """
        q = (question or "").strip()
        if not q or busy:
            return gr.skip(), gr.skip(), "", busy
        return "", message_list(turns) + [{"role": "user", "content": question_markdown(q)}], q, True

    def pick_example(self, turns: list[Turn], busy: bool, evt: gr.SelectData) -> tuple:
        """An example question was clicked: ask it."""
        value = evt.value if isinstance(evt.value, dict) else {"text": str(evt.value)}
        return self.start_turn(value.get("text", ""), turns, busy)

    def respond(self, question: str, turns: list[Turn], k: float, mode: str, restrict: list[str] | None,
                since: str | None, until: str | None, lang: str) -> Iterator[tuple]:
        """Stream the answer to ``question`` into the chat, then show its sources.

        ``since`` and ``until`` (ISO days, either empty) keep only the documents dated in the range.
        """
        if not question:
            return
        number = turns[-1].number + 1 if turns else 1
        history = [(tr.question, tr.answer.answer) for tr in turns]
        shown = message_list(turns) + [{"role": "user", "content": question_markdown(question)}]
        try:
            since, until = day_range(since, until)
        except ValueError as exc:
            error = escape_markdown(t(lang, "bad_date", error=str(exc)))
            yield (shown + [{"role": "assistant", "content": error}], sources_html(turns, lang), gr.skip(), "", False)
            return
        answer, cited = None, None
        try:
            for answer in self.rag.ask_stream(question, k=int(k), docs=restrict or None, history=history,
                                              mode=mode if self.llm else "extractive", since=since, until=until):
                key = [(c.n, c.chunk_id, c.sentence_start, c.sentence_end) for c in answer.citations]
                growing = [*turns, Turn(number, question, answer)]
                panel = gr.skip() if key == cited else sources_html(growing, lang, complete=False)
                cited = key
                yield (shown + [{"role": "assistant", "content": answer_markdown(answer, number)}], panel,
                       gr.skip(), "", gr.skip())
        except Exception as exc:  # the user sees what went wrong; the page keeps working
            log.exception("answering %r failed", question)
            error = escape_markdown(t(lang, "error", error=str(exc) or type(exc).__name__))
            yield (shown + [{"role": "assistant", "content": error}], sources_html(turns, lang), gr.skip(), "",
                   False)
            return
        if answer is None:
            yield gr.skip(), gr.skip(), gr.skip(), "", False
            return
        turns = [*turns, Turn(number, question, answer)]
        yield message_list(turns), sources_html(turns, lang), turns, "", False

    def ask_api(self, question: str, k: int = 5, since: str = "", until: str = "") -> dict:
        """The ``/ask`` API endpoint: one question, the Answer JSON of the design (``since``/``until``:
        ISO days, empty for none)."""
        return self.rag.ask(str(question), k=max(1, min(int(k), 20)), since=since or None,
                            until=until or None).to_json()

    def clear(self, lang: str) -> tuple:
        """Empty chat, no sources, a fresh conversation."""
        return [], sources_html([], lang), [], "", False

    # -- index updates ----------------------------------------------------------------------
    def upload(self, request: gr.Request, files: list[str] | None, lang: str, restrict: list[str] | None,
               *view) -> Iterator[tuple]:
        """Save uploaded files, index them in the background and show the progress.

        Gradio's own copy of each file is deleted once it is saved (or refused): the upload
        folder holds the only copy, which removing the document deletes.
        """
        if not files:
            return
        notes: list[str] = []
        saved: list[Path] = []
        for f in files:
            if self.copies.taken(f):  # still listed by the file box while its own update runs
                continue
            try:
                kept = save_upload(f, Path(f).name, self.folder, self.config.upload_max_mb)
            except UploadRefused as r:
                notes.append(t(lang, "upload_skipped", name=r.name, reason=t(lang, r.key, **r.values)))
                continue
            finally:
                discard_received(f, self.received)
                self.copies.mark(f)
            if not kept.created:
                notes.append(t(lang, "upload_same", name=kept.name, stored=kept.path.name))
            elif kept.path.name != kept.name:
                notes.append(t(lang, "upload_renamed", name=kept.name, stored=kept.path.name))
            saved.append(kept.path)
        page = _page(request)
        if notes or saved:  # nothing new (only files the box still lists): the notes stay as they are
            update = self.board.start(page, notes, self.jobs.add(list(dict.fromkeys(saved))) if saved else None)
            yield from self._follow(update, page, lang)
        yield (self.board.html(page, lang), self.header(lang), *self.document_views(lang, restrict, *view), None,
               self.generation())

    def add_addresses(self, request: gr.Request, text: str | None, lang: str, restrict: list[str] | None,
                      *view) -> Iterator[tuple]:
        """Fetch and index the web addresses typed in the upload panel (one a line), showing the progress."""
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip() and not ln.strip().startswith("#")]
        bad = [ln for ln in lines if not is_address(ln)]
        urls = list(dict.fromkeys(ln for ln in lines if is_address(ln)))
        notes = [t(lang, "address_bad", value=ln[:200]) for ln in bad]
        page = _page(request)
        if not urls:
            self.board.start(page, notes or [t(lang, "addresses_none")])
            yield self._notes_only(page, lang)
            return
        update = self.board.start(page, notes, self.jobs.add_addresses(urls))
        yield from self._follow(update, page, lang)
        yield (self.board.html(page, lang), self.header(lang), *self.document_views(lang, restrict, *view),
               "\n".join(bad), self.generation())

    def remove(self, request: gr.Request, doc_id: str | None, lang: str, restrict: list[str] | None,
               *view) -> Iterator[tuple]:
        """Remove the chosen document from the index (and its uploaded file)."""
        page = _page(request)
        if not doc_id:
            self.board.start(page, [t(lang, "remove_none")])
            yield self._notes_only(page, lang)
            return
        update = self.board.start(page, [], self.jobs.remove([doc_id], [self.docs.label(doc_id) or doc_id]))
        yield from self._follow(update, page, lang)
        yield (self.board.html(page, lang), self.header(lang),
               *self.document_views(lang, restrict, *view), gr.skip(), self.generation())

    def _follow(self, update: Update, page: str, lang: str) -> Iterator[tuple]:
        """The page's notes, every :data:`POLL_S` seconds while the update's job runs."""
        while update.job is not None and not update.job.finished.wait(POLL_S):
            yield self._notes_only(page, lang)

    def _notes_only(self, page: str, lang: str) -> tuple:
        """An update of an index event's outputs that changes the page's notes and nothing else."""
        return (self.board.html(page, lang), *(gr.skip(),) * 6)

    def refresh(self, seen: int, lang: str, restrict: list[str] | None, *view) -> tuple:
        """Timer tick: bring the status and document lists up to date if the index changed."""
        gen = self.generation()
        if gen == seen:
            return (gr.skip(),) * 5
        return (self.header(lang), *self.document_views(lang, restrict, *view), gen)


def _placeholder(lang: str) -> str:
    return f"### {t(lang, 'welcome')}\n\n{t(lang, 'examples')}"


def _page(request: gr.Request | None) -> str:
    """The page (browser tab) an event comes from, whose notes it shows."""
    return getattr(request, "session_hash", None) or ""


def build_app(rag: RAG | ChatApp, config: Config | None = None, chats: ChatStore | None = None):
    """The Gradio Blocks app (call :func:`launch` to serve it).

    Parameters
    ----------
    rag : RAG or ChatApp
        The pipeline (a :class:`ChatApp` is made around it) or a ready :class:`ChatApp`.
    config : Config, optional
        Settings (default: the pipeline's).
    chats : ChatStore, optional
        Where conversations are saved (default: :func:`rag.chats.chats_dir` of the settings).
    """
    app = rag if isinstance(rag, ChatApp) else ChatApp(config or rag.config, rag=rag)
    cfg = app.config
    chats = chats or ChatStore.from_config(cfg)
    panel = ConversationPanel(chats, app.respond)
    lang0 = cfg.ui_lang or "fr"
    with gr.Blocks(title=t(lang0, "title"), fill_width=True, delete_cache=(3600, 3600),
                   analytics_enabled=False) as demo:  # offline: Gradio reports nothing anywhere
        conv = render_panel(lang0)
        lang = gr.State(lang0)
        turns = gr.State([])
        pending = gr.State("")
        busy = gr.State(False)
        seen_gen = gr.State(0)
        with gr.Row(elem_id="rag-top"):
            header = gr.HTML(app.header(lang0, loaded=False), elem_id="rag-header")
            lang_pick = gr.Radio([("Français", "fr"), ("English", "en")], value=lang0, show_label=False,
                                 container=False, scale=0, min_width=200, elem_id="rag-lang")
        with gr.Row(equal_height=False, elem_id="rag-main"):
            with gr.Column(scale=3, min_width=380):
                chat = gr.Chatbot(label=t(lang0, "chat"), height=560, elem_id="rag-chat", latex_delimiters=[],
                                  placeholder=_placeholder(lang0), examples=[{"text": q} for q in EXAMPLES[lang0]],
                                  feedback_options=feedback_options(lang0), buttons=["copy"], autoscroll=True)
                with gr.Row(elem_id="rag-ask"):
                    box = gr.Textbox(show_label=False, placeholder=t(lang0, "placeholder"), scale=8, lines=1,
                                     max_lines=4, autofocus=True, elem_id="rag-question", container=False)
                    send = gr.Button(t(lang0, "send"), variant="primary", scale=1, min_width=90, elem_id="rag-send")
                conv.update(render_feedback(lang0))
                clear = gr.Button(t(lang0, "clear"), size="sm", variant="secondary", elem_id="rag-clear")
                with gr.Accordion(t(lang0, "settings"), open=False, elem_id="rag-settings") as acc_settings:
                    k = gr.Slider(1, 10, value=min(cfg.top_k, 10), step=1, label=t(lang0, "k"), elem_id="rag-k")
                    mode = gr.Radio([(t(lang0, "mode_extractive"), "extractive"), (t(lang0, "mode_llm"), "llm")],
                                    value="llm" if app.llm else "extractive", label=t(lang0, "mode"),
                                    interactive=app.llm, info=None if app.llm else t(lang0, "mode_llm_off"),
                                    elem_id="rag-mode")
                    restrict_search = restrict_search_box(lang0)
                    restrict = gr.Dropdown(app.docs.choices(), value=[], multiselect=True,
                                           label=t(lang0, "restrict"), info=t(lang0, "restrict_info"),
                                           elem_id="rag-restrict")
                    with gr.Row():
                        since = gr.Textbox(label=t(lang0, "since"), info=t(lang0, "dates_info"), max_lines=1,
                                           placeholder="2026-01-01", elem_id="rag-since")
                        until = gr.Textbox(label=t(lang0, "until"), max_lines=1, placeholder="2026-12-31",
                                           elem_id="rag-until")
                with gr.Accordion(t(lang0, "documents"), open=False, elem_id="rag-documents") as acc_docs:
                    files = gr.File(file_count="multiple", file_types=list(ACCEPTED), elem_id="rag-upload",
                                    label=t(lang0, "upload", mb=f"{cfg.upload_max_mb:g}"), height=120)
                    with gr.Row(equal_height=True):
                        addr_box = gr.Textbox(label=t(lang0, "addresses"), lines=2, max_lines=8, scale=4,
                                              placeholder="https://…", elem_id="rag-addresses")
                        addr_btn = gr.Button(t(lang0, "fetch"), scale=1, min_width=120, elem_id="rag-fetch")
                    notes = gr.HTML("", elem_id="rag-upload-status")
                    doc_panel = document_panel(app.docs, lang0, restrict_search)
                    doc_table = doc_panel.table
                    with gr.Row():
                        remove_pick = gr.Dropdown(app.docs.choices(), value=None,
                                                  label=t(lang0, "remove_pick"), scale=4, elem_id="rag-remove-pick")
                        remove_btn = gr.Button(t(lang0, "remove"), variant="stop", scale=1, min_width=120,
                                               elem_id="rag-remove")
            with gr.Column(scale=2, min_width=320, elem_id="rag-side"):
                sources_head = gr.HTML(f'<h3 class="rag-h">{html.escape(t(lang0, "sources"))}</h3>')
                sources = gr.HTML(sources_html([], lang0), elem_id="rag-sources")

        labelled = [header, chat, box, send, clear, acc_settings, k, mode, restrict, acc_docs, files, remove_pick,
                    remove_btn, sources_head, sources, doc_table, since, until, addr_box, addr_btn,
                    *doc_panel.labelled]
        view = doc_panel.view  # the document list's search and page, and the restriction's search: kept by updates
        loaded = demo.load(app.on_load, None, [lang, lang_pick, seen_gen, *labelled], queue=False)
        relabelled = lang_pick.input(lambda v, tr, r, *vw: (v, *app.relabel(v, tr, r, *vw)),
                                     [lang_pick, turns, restrict, *view], [lang, *labelled], queue=False)
        wire_document_panel(app.docs, doc_panel, lang, restrict, remove_pick)

        answer_io = dict(fn=panel.respond, inputs=[pending, turns, k, mode, restrict, since, until, lang,
                                                   conv["conv_id"]],
                         outputs=[chat, sources, turns, pending, busy, *conv["saved"]], concurrency_id="chat",
                         concurrency_limit=cfg.answer_concurrency, show_progress="minimal",
                         trigger_mode="always_last")  # a question asked while the last answer is saved waits
        answering = []
        for trigger in (box.submit, send.click):
            answering.append(trigger(app.start_turn, [box, turns, busy], [box, chat, pending, busy], queue=False)
                             .then(**answer_io))
        answering.append(chat.example_select(app.pick_example, [turns, busy], [box, chat, pending, busy],
                                             queue=False).then(**answer_io))
        page = dict(chat=chat, sources=sources, turns=turns, pending=pending, busy=busy, lang=lang)
        wire(panel, conv, page, answering)
        loaded.then(panel.on_load, [conv["stored"], lang], conv["shown"], queue=False).then(**conv["exports"])
        relabelled.then(panel.relabel, [lang, conv["conv_id"]], conv["relabelled"], queue=False)
        for trigger in (clear.click, chat.clear):
            trigger(app.clear, [lang], [chat, sources, turns, pending, busy], queue=False, cancels=answering).then(
                panel.detach, [lang], conv["shown"], queue=False).then(**conv["exports"])

        index_out = [notes, header, doc_table, restrict, remove_pick]
        # each upload, address list or removal is its own job, also while an earlier one runs (never dropped)
        updating = dict(concurrency_id="index", concurrency_limit=INDEX_EVENTS, show_progress="hidden",
                        trigger_mode="multiple")
        files.upload(app.upload, [files, lang, restrict, *view], [*index_out, files, seen_gen], **updating)
        addr_btn.click(app.add_addresses, [addr_box, lang, restrict, *view], [*index_out, addr_box, seen_gen],
                       **updating)
        remove_btn.click(app.remove, [remove_pick, lang, restrict, *view], [*index_out, files, seen_gen], **updating)
        gr.Timer(REFRESH_S).tick(app.refresh, [seen_gen, lang, restrict, *view],
                                 [header, doc_table, restrict, remove_pick, seen_gen],
                                 concurrency_id="tick", concurrency_limit=None, show_progress="hidden")
        gr.api(app.ask_api, api_name="ask", concurrency_id="chat", concurrency_limit=cfg.answer_concurrency,
               api_description="Answer one question; returns the Answer JSON (answer, abstained, citations). "
                               "since / until (YYYY-MM-DD, optional): only articles dated in that range.")
    demo.rag_app, demo.rag_chats = app, chats
    return demo


def launch(demo, config: Config, logins: Logins | None = None, block: bool = True):
    """Serve ``demo`` and the HTTP API on ``config.host:config.port`` (127.0.0.1 unless told otherwise).

    The API (:func:`ui.api.create_app`) answers ``/api`` and ``/v1``; the chat is mounted beside it at ``/``.

    The server answers only requests naming one of its hosts, refuses cross-origin requests,
    and slows down failed sign-ins (:mod:`ui.security`); ``answer_concurrency`` answers are
    computed at once and up to ``queue_size`` events wait their turn.

    Parameters
    ----------
    demo : gradio.Blocks
        From :func:`build_app`.
    config : Config
        ``host``, ``port``, ``upload_max_mb``, ``allowed_hosts``, ``answer_concurrency``, ``queue_size``.
    logins : Logins, optional
        The accounts that may open the page and call the API, and the API's tokens (default: none, open).
    block : bool
        Serve until interrupted (False: return once listening, for tests and benchmarks).

    Returns
    -------
    (FastAPI app, local URL, uvicorn.Server)
        Set ``server.should_exit = True`` to stop a server started with ``block=False``.
    """
    logins = logins or Logins()
    guards = Guards.for_config(config, login=bool(logins.passwords))
    css = (ASSETS / "style.css").read_text(encoding="utf-8")
    js = (ASSETS / "chat.js").read_text(encoding="utf-8")
    demo.queue(default_concurrency_limit=config.answer_concurrency, max_size=config.queue_size)
    root = create_app(demo.rag_app, demo.rag_chats, logins)
    gr.mount_gradio_app(root, demo, path="/", auth=logins.check if logins.passwords else None,
                        auth_message="Questions sur vos articles — connexion / sign in", show_error=False,
                        max_file_size=int(config.upload_max_mb * MB), css=css, head=f"<script>{js}</script>",
                        footer_links=["api", "settings"], server_name=config.host, server_port=config.port)
    guards.install(root)  # outermost: before the API, Gradio and Gradio's own CORS middleware
    server = uvicorn.Server(uvicorn.Config(root, host=config.host, port=config.port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    url = f"http://{config.host}:{config.port}/"
    if block:
        log.warning("serving the chat on %s, the API on %sapi/docs", url, url)
        server.run()
        return root, url, server
    thread = threading.Thread(target=server.run, name="rag-serve", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    return root, url, server


def serve(config: Config, auth: str | None = None, auth_file: str | None = None) -> int:
    """Serve the chat and its API on ``config.host:config.port`` until interrupted (``rag serve``).

    ``auth``: logins ``user:password`` (``RAG_AUTH`` or ``--auth``, several separated by ``,``);
    ``auth_file``: a file of them, one a line; ``RAG_API_TOKEN``: bearer tokens of the API
    (:meth:`ui.auth.Logins.load`).
    """
    logins = Logins.load(auth, auth_file, os.environ.get("RAG_API_TOKEN"))  # bad values fail before the model loads
    chats = ChatStore.from_config(config)
    app = ChatApp(config)
    app.warm_up()
    demo = build_app(app, chats=chats)
    launch(demo, config, logins=logins, block=True)
    return 0
