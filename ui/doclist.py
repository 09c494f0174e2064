"""The document list of the page and its two pickers, bounded whatever the size of the index.

An index may hold a million documents: the page never receives them all. The table shows one
page of :data:`PAGE` documents (most recently indexed first, or those whose title or source
holds the text of its search box, searched in the index), and each picker offers at most
:data:`CHOICES` documents at a time: "Document to remove" those of the table's search, "Restrict
to documents" those of its own search box (and the documents already chosen in it). Every
label is the document's title and source, shown by the page as text.
"""

from __future__ import annotations

import html
from typing import NamedTuple, Sequence

import gradio as gr

from rag.store import Store

from .i18n import t
from .render import document_choices, documents_html

PAGE = 50      # documents in one page of the table
CHOICES = 50   # documents a picker offers at once (besides those already chosen)


class DocumentPage(NamedTuple):
    """One page of the document list."""

    rows: list[dict]
    total: int      # documents matching the query
    offset: int     # rows before this page
    query: str


class DocumentList:
    """Pages and picker choices read from an index, a bounded number at a time.

    Parameters
    ----------
    store : Store
        The index's records.
    page_size : int
        Documents in one page of the table.
    choices : int
        Documents a picker offers at once.
    """

    def __init__(self, store: Store, page_size: int = PAGE, choices: int = CHOICES):
        self.store = store
        self.page_size = page_size
        self.max_choices = choices

    def page(self, query: str = "", offset: int = 0) -> DocumentPage:
        """The page starting at ``offset`` of the documents matching ``query`` (clamped to the last page)."""
        query = (query or "").strip()
        offset = max(0, int(offset or 0))
        rows, total = self.store.find_documents(query, self.page_size, offset)
        if not rows and offset and total:
            offset = (total - 1) // self.page_size * self.page_size
            rows, total = self.store.find_documents(query, self.page_size, offset)
        return DocumentPage(rows, total, offset, query)

    def table_html(self, page: DocumentPage, lang: str) -> str:
        """The table of one page, with which documents it shows out of how many."""
        if page.total:
            shown = t(lang, "doc_range", first=_n(page.offset + 1, lang),
                      last=_n(page.offset + len(page.rows), lang), total=_n(page.total, lang))
        else:
            shown = t(lang, "doc_none_match" if page.query else "doc_none")
        caption = (f'<p class="rag-doc-range" data-total="{page.total}" data-offset="{page.offset}" '
                   f'data-query="{html.escape(page.query)}">{html.escape(shown)}</p>')
        return documents_html(page.rows, lang) + caption

    def choices(self, query: str = "", keep: Sequence[str] = ()) -> list[tuple[str, str]]:
        """(label, id) of the documents matching ``query`` (at most ``choices``), after those in ``keep``."""
        kept = {d["id"]: d for d in self.store.documents_by_id(keep)} if keep else {}
        rows, _ = self.store.find_documents((query or "").strip(), self.max_choices, 0, count=False)
        ordered = [kept[i] for i in keep if i in kept] + [d for d in rows if d["id"] not in kept]
        return document_choices(ordered)

    def label(self, doc_id: str) -> str | None:
        """The picker label of one document (None when it is not indexed)."""
        found = document_choices(self.store.documents_by_id([doc_id]))
        return found[0][0] if found else None

    # -- updates of the page's components -----------------------------------------------------
    def views(self, lang: str, restrict: Sequence[str] | None = None, query: str = "", offset: int = 0,
              restrict_query: str = "") -> tuple:
        """Updates of the table, the restriction picker (its choice kept) and the removal picker.

        ``query`` and ``offset`` are the table's search and page (the removal picker offers the same
        search's documents); ``restrict_query`` the restriction picker's search.
        """
        page = self.page(query, offset)
        kept = list(restrict or [])
        restrict_choices = self.choices(restrict_query, kept)
        known = {value for _, value in restrict_choices}
        return (self.table_html(page, lang),
                gr.update(choices=restrict_choices, value=[d for d in kept if d in known]),
                gr.update(choices=self.choices(page.query), value=None))

    def search(self, query: str, lang: str) -> tuple:
        """The list's search box changed: the first page of its matches, the removal picker offering them."""
        page = self.page(query, 0)
        return self.table_html(page, lang), gr.update(choices=self.choices(page.query), value=None), 0

    def search_restrict(self, query: str, restrict: list[str] | None) -> dict:
        """The restriction's search box changed: the picker offers its matches, keeping those already chosen."""
        return gr.update(choices=self.choices(query, list(restrict or [])))

    def turn(self, query: str, offset: int, step: int, lang: str) -> tuple:
        """Previous (``step`` -1) or next (+1) page of the table; the new offset."""
        page = self.page(query, max(0, int(offset or 0) + step * self.page_size))
        return self.table_html(page, lang), page.offset


def _n(n: int, lang: str) -> str:
    """A count with the language's thousands separator (1 000 000 / 1,000,000)."""
    return f"{n:,}".replace(",", "\u202f" if lang == "fr" else ",")


class DocumentPanel(NamedTuple):
    """The components of the document list (made by :func:`document_panel` and :func:`restrict_search_box`)."""

    search: gr.Textbox
    table: gr.HTML
    offset: gr.State
    previous: gr.Button
    following: gr.Button
    restrict_search: gr.Textbox

    @property
    def view(self) -> list:
        """What every update of the list reads: its search, its page, the restriction picker's search."""
        return [self.search, self.offset, self.restrict_search]

    @property
    def labelled(self) -> list:
        """The components :func:`relabel_panel` updates, in its order."""
        return [self.search, self.restrict_search, self.previous, self.following]


def restrict_search_box(lang: str) -> gr.Textbox:
    """Make the search box of the restriction picker (put it just above the picker)."""
    return gr.Textbox(show_label=False, placeholder=t(lang, "doc_search"), elem_id="rag-restrict-search",
                      container=False, max_lines=1)


def document_panel(docs: DocumentList, lang: str, restrict_search: gr.Textbox) -> DocumentPanel:
    """Make the list's search box, the table and its page buttons in the current Gradio layout."""
    search = gr.Textbox(show_label=False, placeholder=t(lang, "doc_search"), elem_id="rag-doc-search",
                        container=False, max_lines=1)
    table = gr.HTML(docs.table_html(docs.page(), lang), elem_id="rag-doc-list")
    offset = gr.State(0)
    with gr.Row(elem_id="rag-doc-pages"):
        previous = gr.Button(t(lang, "doc_previous"), size="sm", elem_id="rag-doc-prev", min_width=60)
        following = gr.Button(t(lang, "doc_next"), size="sm", elem_id="rag-doc-next", min_width=60)
    return DocumentPanel(search, table, offset, previous, following, restrict_search)


def wire_document_panel(docs: DocumentList, panel: DocumentPanel, lang: gr.State, restrict: gr.Dropdown,
                        remove_pick: gr.Dropdown) -> None:
    """Connect the search boxes and the page buttons.

    Searches run as one types ("always_last": the text searched is the box's latest). The pickers
    offer what their search box finds and filter those as one types in them; searching from the
    picker itself (its key_up event) is not used, as Gradio 6 sends the first key's text again
    with "always_last", and its choices then show an older search's documents.
    """
    quick = dict(queue=False, show_progress="hidden", trigger_mode="always_last")
    for typed in (panel.search.input, panel.search.submit):
        typed(docs.search, [panel.search, lang], [panel.table, remove_pick, panel.offset], **quick)
    for typed in (panel.restrict_search.input, panel.restrict_search.submit):
        typed(docs.search_restrict, [panel.restrict_search, restrict], [restrict], **quick)
    panel.previous.click(lambda q, o, lg: docs.turn(q, o, -1, lg), [panel.search, panel.offset, lang],
                         [panel.table, panel.offset], **quick)
    panel.following.click(lambda q, o, lg: docs.turn(q, o, 1, lg), [panel.search, panel.offset, lang],
                          [panel.table, panel.offset], **quick)


def relabel_panel(lang: str) -> tuple:
    """Updates of the panel's own labels in ``lang``, for :attr:`DocumentPanel.labelled`."""
    return (gr.update(placeholder=t(lang, "doc_search")), gr.update(placeholder=t(lang, "doc_search")),
            gr.update(value=t(lang, "doc_previous")), gr.update(value=t(lang, "doc_next")))
