"""Saved conversations in the chat page: the list (new, open, rename, delete), exports, feedback.

Every answer is saved as it completes (:meth:`ConversationPanel.respond` wraps the chat's own
answer stream). The browser keeps the id of the open conversation (``localStorage``), so a reload
reopens it; the server checks it belongs to the login first. An opened conversation shows its
answers and sources exactly as they were saved, its markers linked to its sources. Document text
goes through :mod:`ui.render` as everywhere else on the page.
"""

from __future__ import annotations

import atexit
import html
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import gradio as gr

from rag.chats import LOCAL_USER, ChatError, ChatNotFound, ChatStore, Conversation, Rating, export, export_name

from .i18n import LANGS, t
from .render import MAX_TURNS_SHOWN, Turn, message_list, sources_html

log = logging.getLogger(__name__)
STORAGE_KEY = "rag-conversation"
# The browser keeps only the id of the open conversation; the server checks its owner on every use,
# so this key only keeps the value from being read at a glance.
STORAGE_SECRET = "rag-open-conversation"
LISTED = 200  # conversations in the list
LIKE, DISLIKE = "Like", "Dislike"  # Gradio's thumb feedback values


def owner(request: gr.Request | None) -> str:
    """The owner of the session's conversations: its login, or the one local user without logins."""
    return (getattr(request, "username", None) if request is not None else None) or LOCAL_USER


def feedback_options(lang: str) -> tuple[str, str, str]:
    """The chat's feedback choices: thumbs up, thumbs down, and "not in the articles" (a thumbs-down)."""
    return LIKE, DISLIKE, t(lang, "not_in_articles")


def _flag_values() -> set[str]:
    return {t(lang, "not_in_articles") for lang in LANGS}


class ConversationPanel:
    """The conversations side of the page: its event handlers (the section "events") and the views they return.

    Parameters
    ----------
    chats : ChatStore
        Where conversations are saved.
    answer_stream : callable
        The chat's answer stream, :meth:`ui.app.ChatApp.respond`; :meth:`respond` saves what it answers.
    export_dir : Path, optional
        Where export files are written for download (default: a temporary folder of this server,
        removed when it exits).
    """

    def __init__(self, chats: ChatStore, answer_stream: Callable[..., Iterator[tuple]],
                 export_dir: Path | None = None):
        self.chats = chats
        self.answer_stream = answer_stream
        if export_dir is None:
            export_dir = Path(tempfile.mkdtemp(prefix="rag-exports-"))
            atexit.register(shutil.rmtree, export_dir, ignore_errors=True)
        self.export_dir = export_dir

    # -- views ------------------------------------------------------------------------------
    def choices(self, user: str) -> list[tuple[str, str]]:
        """(label, id) of the user's conversations, most recently active first."""
        return [(f"{c.title} · {c.updated[:16].replace('T', ' ')}", c.id)
                for c in self.chats.conversations(user, limit=LISTED)]

    def list_update(self, user: str, lang: str, current: str = "") -> dict:
        """The conversation list, ``current`` selected."""
        choices = self.choices(user)
        return gr.update(choices=choices, value=current or None,
                         info=None if choices else t(lang, "conv_none"), label=t(lang, "conversations"))

    def exports(self, conv: Conversation | None) -> tuple[dict, dict]:
        """The two download buttons, holding the conversation's Markdown and JSON (inactive without one)."""
        if conv is None or not conv.turns:
            return gr.update(value=None, interactive=False), gr.update(value=None, interactive=False)
        folder = self.export_dir / conv.id
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in ("md", "json"):
            path = folder / export_name(conv, fmt)
            for old in folder.glob(f"*.{fmt}"):
                if old != path:
                    old.unlink(missing_ok=True)
            path.write_text(export(conv, fmt), encoding="utf-8")
            paths.append(gr.update(value=str(path), interactive=True))
        return paths[0], paths[1]

    def feedback_values(self, conv: Conversation | None, lang: str) -> list[str | None]:
        """The chat's feedback marks, one per answer shown (the last :data:`MAX_TURNS_SHOWN`), as saved."""
        out: list[str | None] = []
        for turn in conv.turns[-MAX_TURNS_SHOWN:] if conv else []:
            fb = turn.feedback
            if fb is None:
                out.append(None)
            elif fb.rating is Rating.UP:
                out.append(LIKE)
            else:
                out.append(t(lang, "not_in_articles") if fb.not_in_articles else DISLIKE)
        return out

    def _shown(self, conv: Conversation | None, user: str, lang: str) -> tuple:
        """Every output of opening ``conv`` (None: an empty new conversation)."""
        turns = [Turn(tr.number, tr.question, tr.to_answer()) for tr in conv.turns] if conv else []
        chat = gr.update(value=message_list(turns), feedback_value=self.feedback_values(conv, lang),
                         feedback_options=feedback_options(lang))
        conv_id = conv.id if conv else ""
        return (chat, sources_html(turns, lang), turns, conv_id, conv_id, self.list_update(user, lang, conv_id),
                self.title_update(conv, lang), gr.update(visible=False), 0, "", False)

    def export_files(self, conv_id: str, request: gr.Request) -> tuple[dict, dict]:
        """The download buttons of the open conversation, once it is shown (they are not needed to paint it)."""
        try:
            conv = self.chats.get(conv_id, owner(request)) if conv_id else None
        except ChatNotFound:
            conv = None
        return self.exports(conv)

    def title_update(self, conv: Conversation | None, lang: str) -> dict:
        """The title box: the open conversation's title; for a long one, a note that the page shows its end."""
        if conv is None:
            return gr.update(value="", interactive=False, info=None)
        long = conv.n_turns > MAX_TURNS_SHOWN
        return gr.update(value=conv.title, interactive=True,
                         info=t(lang, "conv_window", n=conv.n_turns, shown=MAX_TURNS_SHOWN) if long else None)

    # -- events -----------------------------------------------------------------------------
    def on_load(self, stored: str, lang: str, request: gr.Request) -> tuple:
        """First paint: reopen the conversation this browser had open, if it is the login's."""
        user = owner(request)
        conv = None
        if stored:
            try:
                conv = self.chats.get(stored, user)
            except ChatNotFound:
                conv = None
        return self._shown(conv, user, lang)

    def open(self, conv_id: str | None, lang: str, request: gr.Request) -> tuple:
        """A conversation was picked in the list: show its answers and sources as saved."""
        user = owner(request)
        try:
            conv = self.chats.get(conv_id, user) if conv_id else None
        except ChatNotFound:  # deleted meanwhile (another tab): the refreshed list no longer holds it
            conv = None
        return self._shown(conv, user, lang)

    def detach(self, lang: str, request: gr.Request) -> tuple:
        """*New conversation*: the saved one stays in the list; the next answer starts another."""
        return self._shown(None, owner(request), lang)

    def rename(self, conv_id: str, title: str, lang: str, request: gr.Request) -> tuple:
        """Rename the open conversation."""
        user = owner(request)
        if not conv_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            self.chats.rename(conv_id, user, title)
        except ChatError as exc:
            gr.Warning(html.escape(str(exc)))
        conv = self.chats.get(conv_id, user)
        return (self.list_update(user, lang, conv_id), self.title_update(conv, lang), *self.exports(conv))

    def delete(self, conv_id: str, lang: str, request: gr.Request) -> tuple:
        """Delete the open conversation, then show an empty one."""
        user = owner(request)
        if conv_id:
            try:
                self.chats.delete(conv_id, user)
            except ChatNotFound:
                pass
            shutil.rmtree(self.export_dir / conv_id, ignore_errors=True)
        return self._shown(None, user, lang)

    def respond(self, question: str, turns: list[Turn], k: float, mode: str, restrict: list[str] | None,
                since: str | None, until: str | None, lang: str, conv_id: str, request: gr.Request) -> Iterator[tuple]:
        """The chat's answer stream, then the answer saved as the conversation's next turn.

        The chat's outputs come first, then the conversation id (state and browser), the list,
        the title and the two exports.
        """
        skip = (gr.skip(),) * 6
        last: tuple | None = None
        for out in self.answer_stream(question, turns, k, mode, restrict, since, until, lang):
            last = out
            yield (*out, *skip)
        done = last[2] if last is not None else None
        if not isinstance(done, list) or len(done) <= len(turns):
            return  # no answer completed (blank question, or it failed and said so)
        user = owner(request)
        try:
            try:
                conv, _ = self.chats.add_turn(user, done[-1].answer.to_json(), conv_id or None)
            except ChatNotFound:  # deleted meanwhile (another tab): the answer starts a new conversation
                conv, _ = self.chats.add_turn(user, done[-1].answer.to_json(), None)
            conv = self.chats.get(conv.id, user)
        except (ChatError, OSError) as exc:
            log.exception("saving the answer to %r failed", question[:200])
            gr.Warning(html.escape(t(lang, "save_failed", error=str(exc))))
            return
        chat = gr.update(feedback_value=self.feedback_values(conv, lang))  # the shown answers may have moved up
        yield (chat, *(gr.skip(),) * (len(last) - 1), conv.id, conv.id, self.list_update(user, lang, conv.id),
               self.title_update(conv, lang), *self.exports(conv))

    def rate(self, conv_id: str, turns: list[Turn], lang: str, evt: gr.LikeData, request: gr.Request) -> tuple:
        """A thumb (or "not in the articles") on an answer: save it, offer a comment box for it."""
        user = owner(request)
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        shown = turns[-MAX_TURNS_SHOWN:]
        if not conv_id or not 0 <= int(index) // 2 < len(shown):
            return (gr.skip(),) * 6
        number = shown[int(index) // 2].number
        liked = evt.liked
        if liked is True:
            rating, flag = Rating.UP, False
        elif liked is False:
            rating, flag = Rating.DOWN, False
        elif isinstance(liked, str) and liked in _flag_values():
            rating, flag = Rating.DOWN, True
        else:
            rating, flag = None, False
        try:
            conv = self.chats.get(conv_id, user)
            comment = next((tr.feedback.comment for tr in conv.turns if tr.number == number and tr.feedback), "")
            self.chats.rate(conv_id, number, user, rating, comment, flag)
            conv = self.chats.get(conv_id, user)
        except ChatError as exc:
            gr.Warning(html.escape(str(exc)))
            return (gr.skip(),) * 6
        box = gr.update(visible=rating is not None)
        label = gr.update(label=t(lang, "comment_on", n=number), value=comment)
        return (gr.update(feedback_value=self.feedback_values(conv, lang)), box, label, number,
                *self.exports(conv))

    def comment(self, conv_id: str, number: int, text: str, lang: str, request: gr.Request) -> tuple:
        """Save the comment on the answer last rated."""
        user = owner(request)
        if not conv_id or not number:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            conv = self.chats.get(conv_id, user)
            fb = next((tr.feedback for tr in conv.turns if tr.number == number), None)
            if fb is None:
                gr.Warning(t(lang, "comment_needs_rating"))
                return gr.skip(), gr.skip(), gr.skip()
            self.chats.rate(conv_id, number, user, fb.rating, text, fb.not_in_articles)
            conv = self.chats.get(conv_id, user)
        except ChatError as exc:
            gr.Warning(html.escape(str(exc)))
            return gr.skip(), gr.skip(), gr.skip()
        gr.Info(t(lang, "comment_saved", n=number))
        return (*self.exports(conv), gr.update(value=text))

    def relabel(self, lang: str, conv_id: str, request: gr.Request) -> tuple:
        """The panel's labels in ``lang``."""
        user = owner(request)
        try:
            conv = self.chats.get(conv_id, user) if conv_id else None
        except ChatNotFound:
            conv = None
        return (gr.update(feedback_options=feedback_options(lang), feedback_value=self.feedback_values(conv, lang)),
                self.list_update(user, lang, conv_id if conv else ""),
                gr.update(label=t(lang, "conv_title")), gr.update(value=t(lang, "rename")),
                gr.update(value=t(lang, "delete_conv")), gr.update(label=t(lang, "export_md")),
                gr.update(label=t(lang, "export_json")), gr.update(value=t(lang, "comment_save")),
                _head(lang))


def _head(lang: str) -> str:
    return f'<h3 class="rag-h">{html.escape(t(lang, "conversations"))}</h3>'


def render_panel(lang: str) -> dict[str, Any]:
    """The sidebar's components and the panel's states (call inside the page's ``gr.Blocks``), by name.

    ``saved`` lists the outputs :meth:`ConversationPanel.respond` adds to the chat's own.
    """
    c: dict[str, Any] = {"conv_id": gr.State(""), "rated": gr.State(0),
                         "stored": gr.BrowserState("", storage_key=STORAGE_KEY, secret=STORAGE_SECRET)}
    with gr.Sidebar(open=True, elem_id="rag-sidebar", width=300):
        c["head"] = gr.HTML(_head(lang))
        c["list"] = gr.Radio([], value=None, show_label=False, container=False, elem_id="rag-convs",
                             label=t(lang, "conversations"))
        c["title"] = gr.Textbox(label=t(lang, "conv_title"), lines=1, max_lines=1, interactive=False,
                                elem_id="rag-conv-title")
        with gr.Row():
            c["rename"] = gr.Button(t(lang, "rename"), size="sm", elem_id="rag-rename")
            c["delete"] = gr.Button(t(lang, "delete_conv"), size="sm", variant="stop", elem_id="rag-delete")
        c["export_md"] = gr.DownloadButton(t(lang, "export_md"), size="sm", interactive=False, elem_id="rag-export-md")
        c["export_json"] = gr.DownloadButton(t(lang, "export_json"), size="sm", interactive=False,
                                             elem_id="rag-export-json")
    c["saved"] = [c["conv_id"], c["stored"], c["list"], c["title"], c["export_md"], c["export_json"]]
    return c


def render_feedback(lang: str) -> dict[str, Any]:
    """The comment box shown under the chat once an answer is rated."""
    c: dict[str, Any] = {}
    with gr.Group(visible=False, elem_id="rag-feedback") as c["box"]:
        c["comment"] = gr.Textbox(label=t(lang, "comment_on", n=1), lines=2, max_lines=6, elem_id="rag-comment")
        c["save"] = gr.Button(t(lang, "comment_save"), size="sm", elem_id="rag-comment-save")
    return c


def wire(panel: ConversationPanel, ui: dict[str, Any], page: dict[str, Any], answering: Sequence[Any]) -> None:
    """Connect the panel's events (call inside the page's ``gr.Blocks``).

    ``ui`` is :func:`render_panel` and :func:`render_feedback` merged; ``page`` holds the chat's own
    components and states (chat, sources, turns, pending, busy, lang); ``answering`` the answer
    events that opening or deleting a conversation cancels. Adds ``shown`` (the outputs of opening
    a conversation) and ``relabelled`` (of a language change) to ``ui``.
    """
    quick = dict(concurrency_id="conversations", concurrency_limit=None, show_progress="hidden")
    conv_id, rated = ui["conv_id"], ui["rated"]
    shown = [page["chat"], page["sources"], page["turns"], conv_id, ui["stored"], ui["list"], ui["title"], ui["box"],
             rated, page["pending"], page["busy"]]
    ui["shown"] = shown
    ui["exports"] = dict(fn=panel.export_files, inputs=[conv_id], outputs=[ui["export_md"], ui["export_json"]],
                         queue=False, show_progress="hidden")
    lang = page["lang"]
    ui["list"].input(panel.open, [ui["list"], lang], shown, cancels=list(answering), queue=False,
                     show_progress="hidden").then(**ui["exports"])
    renamed = [ui["list"], ui["title"], ui["export_md"], ui["export_json"]]
    ui["rename"].click(panel.rename, [conv_id, ui["title"], lang], renamed, **quick)
    ui["title"].submit(panel.rename, [conv_id, ui["title"], lang], renamed, **quick)
    ui["delete"].click(panel.delete, [conv_id, lang], shown, cancels=list(answering), **quick).then(**ui["exports"])
    page["chat"].like(panel.rate, [conv_id, page["turns"], lang],
                      [page["chat"], ui["box"], ui["comment"], rated, ui["export_md"], ui["export_json"]], **quick)
    ui["save"].click(panel.comment, [conv_id, rated, ui["comment"], lang],
                     [ui["export_md"], ui["export_json"], ui["comment"]], **quick)
    ui["relabelled"] = [page["chat"], ui["list"], ui["title"], ui["rename"], ui["delete"], ui["export_md"],
                        ui["export_json"], ui["save"], ui["head"]]
