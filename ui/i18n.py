"""Interface strings in French and English, and the choice of language from the browser.

Only the interface is translated; answers are in the question's language and document text
is shown as it is.
"""

from __future__ import annotations

LANGS = ("fr", "en")
DEFAULT_LANG = "fr"

STRINGS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Questions sur vos articles",
        "subtitle": "Posez une question : la réponse cite les extraits des articles indexés. "
                    "Cliquez sur un numéro [n] pour voir sa source.",
        "chat": "Conversation",
        "placeholder": "Votre question… (Entrée pour envoyer)",
        "send": "Envoyer",
        "clear": "Nouvelle conversation",
        "welcome": "Posez une question sur les articles indexés",
        "examples": "Par exemple (cliquez pour demander) :",
        "sources": "Sources",
        "sources_empty": "Les extraits cités par la réponse s’afficheront ici.",
        "sources_for": "Sources de la réponse à : « {question} »",
        "no_sources": "Aucun extrait ne répond à cette question.",
        "score": "score",
        "chars": "caractères {start}–{end}",
        "by": "par {author}",
        "settings": "Réglages",
        "k": "Nombre d’extraits",
        "mode": "Mode de réponse",
        "mode_extractive": "Extractive (phrases des articles)",
        "mode_llm": "Modèle de langue (LLM)",
        "mode_llm_off": "Le mode LLM demande un serveur configuré (llm_base_url).",
        "restrict": "Limiter aux documents",
        "restrict_info": "Vide : tous les documents. Tapez un mot du titre pour chercher.",
        "documents": "Documents",
        "status": "{documents} · {chunks} · modèle {model} · mis à jour le {updated}",
        "n_documents": "{n} document|{n} documents",
        "n_chunks": "{n} extrait|{n} extraits",
        "status_missing": "Index indisponible : {error}",
        "upload": "Ajouter des articles (.txt, .md, .html, .pdf, .docx, .jsonl ; {mb} Mo au plus)",
        "addresses": "Ou des adresses web (une par ligne)",
        "fetch": "Ajouter les pages",
        "addresses_none": "Donnez au moins une adresse web.",
        "address_bad": "{value} : pas une adresse http:// ou https://",
        "since": "Depuis le (AAAA-MM-JJ)",
        "until": "Jusqu’au (AAAA-MM-JJ)",
        "dates_info": "Vide : toutes les dates. Les deux jours sont inclus.",
        "bad_date": "Date invalide : {error}",
        "date_published": "date de publication",
        "date_document": "date de création du document",
        "date_server": "date de dernière modification donnée par le serveur",
        "date_file": "date de modification du fichier (l’article n’en donne pas)",
        "date_fetched": "jour où la page a été téléchargée",
        "date_file_short": "fichier",
        "doc_col_date": "Date",
        "upload_queued": "{name} : en attente d’indexation…",
        "upload_loading": "Indexation de {names} : lecture et découpage…",
        "upload_encoding": "Indexation de {names} : {done}/{total} extraits encodés…",
        "upload_done": "Ajouté : {names} ({chunks}). Déjà interrogeable.",
        "upload_unchanged": "Inchangé : {names} (déjà indexé à l’identique).",
        "upload_skipped": "Refusé : {name} — {reason}",
        "upload_bad_type": "type de fichier non accepté ({ext}) ; acceptés : {exts}",
        "upload_too_big": "fichier trop gros ({size:.1f} Mo > {mb:g} Mo)",
        "upload_empty": "fichier vide",
        "upload_failed": "Échec de l’indexation : {error}",
        "doc_list": "Documents indexés",
        "doc_col_title": "Titre",
        "doc_col_source": "Source",
        "doc_col_chunks": "Extraits",
        "doc_col_lang": "Langue",
        "doc_search": "Chercher un document (mot du titre ou du fichier)…",
        "doc_range": "Documents {first} à {last} sur {total}",
        "doc_none": "Aucun document indexé.",
        "doc_none_match": "Aucun document ne correspond à cette recherche.",
        "doc_previous": "◀ Précédents",
        "doc_next": "Suivants ▶",
        "upload_not_kept": "Non gardé : {name} — {reason}",
        "upload_renamed": "{name} existe déjà avec un autre contenu : gardé sous le nom {stored}.",
        "upload_same": "{name} : même contenu que {stored}, déjà reçu.",
        "upload_gone": "la copie reçue a disparu ; envoyez le fichier à nouveau",
        "remove_pick": "Document à retirer",
        "remove": "Retirer de l’index",
        "remove_done": "Retiré : {names}.",
        "remove_none": "Choisissez d’abord un document.",
        "error": "Erreur : {error}",
        "conversations": "Conversations",
        "conv_none": "Aucune conversation enregistrée pour l’instant.",
        "conv_title": "Titre de la conversation",
        "rename": "Renommer",
        "delete_conv": "Supprimer",
        "export_md": "Exporter (Markdown)",
        "export_json": "Exporter (JSON)",
        "not_in_articles": "Pas dans les articles",
        "comment_on": "Commentaire sur la réponse {n} (facultatif)",
        "comment_save": "Enregistrer le commentaire",
        "comment_saved": "Commentaire enregistré sur la réponse {n}.",
        "comment_needs_rating": "Notez d’abord la réponse (pouce levé ou baissé).",
        "save_failed": "La réponse n’a pas pu être enregistrée : {error}",
        "conv_window": "{n} questions : la page montre les {shown} dernières (toutes sont dans les exports).",
    },
    "en": {
        "title": "Ask your articles",
        "subtitle": "Ask a question: the answer cites excerpts of the indexed articles. "
                    "Click a number [n] to see its source.",
        "chat": "Conversation",
        "placeholder": "Your question… (Enter to send)",
        "send": "Send",
        "clear": "New conversation",
        "welcome": "Ask a question about the indexed articles",
        "examples": "For example (click to ask):",
        "sources": "Sources",
        "sources_empty": "The excerpts the answer cites will show here.",
        "sources_for": "Sources of the answer to: “{question}”",
        "no_sources": "No excerpt answers this question.",
        "score": "score",
        "chars": "characters {start}–{end}",
        "by": "by {author}",
        "settings": "Settings",
        "k": "Number of passages",
        "mode": "Answer mode",
        "mode_extractive": "Extractive (sentences from the articles)",
        "mode_llm": "Language model (LLM)",
        "mode_llm_off": "The LLM mode needs a configured server (llm_base_url).",
        "restrict": "Restrict to documents",
        "restrict_info": "Empty: all documents. Type a word of the title to search.",
        "documents": "Documents",
        "status": "{documents} · {chunks} · model {model} · updated {updated}",
        "n_documents": "{n} document|{n} documents",
        "n_chunks": "{n} passage|{n} passages",
        "status_missing": "Index unavailable: {error}",
        "upload": "Add articles (.txt, .md, .html, .pdf, .docx, .jsonl; up to {mb} MB)",
        "addresses": "Or web addresses (one a line)",
        "fetch": "Add the pages",
        "addresses_none": "Give at least one web address.",
        "address_bad": "{value}: not an http:// or https:// address",
        "since": "From (YYYY-MM-DD)",
        "until": "Until (YYYY-MM-DD)",
        "dates_info": "Empty: any date. Both days are included.",
        "bad_date": "Invalid date: {error}",
        "date_published": "publication date",
        "date_document": "the document's creation date",
        "date_server": "last modification date given by the server",
        "date_file": "the file's modification date (the article gives none)",
        "date_fetched": "day the page was downloaded",
        "date_file_short": "file",
        "doc_col_date": "Date",
        "upload_queued": "{name}: waiting to be indexed…",
        "upload_loading": "Indexing {names}: reading and chunking…",
        "upload_encoding": "Indexing {names}: {done}/{total} passages encoded…",
        "upload_done": "Added: {names} ({chunks}). Searchable now.",
        "upload_unchanged": "Unchanged: {names} (already indexed as is).",
        "upload_skipped": "Refused: {name} — {reason}",
        "upload_bad_type": "file type not accepted ({ext}); accepted: {exts}",
        "upload_too_big": "file too large ({size:.1f} MB > {mb:g} MB)",
        "upload_empty": "empty file",
        "upload_failed": "Indexing failed: {error}",
        "doc_list": "Indexed documents",
        "doc_col_title": "Title",
        "doc_col_source": "Source",
        "doc_col_chunks": "Passages",
        "doc_col_lang": "Language",
        "doc_search": "Search a document (a word of its title or file)…",
        "doc_range": "Documents {first} to {last} of {total}",
        "doc_none": "No document indexed.",
        "doc_none_match": "No document matches this search.",
        "doc_previous": "◀ Previous",
        "doc_next": "Next ▶",
        "upload_not_kept": "Not kept: {name} — {reason}",
        "upload_renamed": "{name} already exists with other content: kept as {stored}.",
        "upload_same": "{name}: same content as {stored}, already received.",
        "upload_gone": "the received copy disappeared; upload the file again",
        "remove_pick": "Document to remove",
        "remove": "Remove from the index",
        "remove_done": "Removed: {names}.",
        "remove_none": "Pick a document first.",
        "error": "Error: {error}",
        "conversations": "Conversations",
        "conv_none": "No saved conversation yet.",
        "conv_title": "Conversation title",
        "rename": "Rename",
        "delete_conv": "Delete",
        "export_md": "Export (Markdown)",
        "export_json": "Export (JSON)",
        "not_in_articles": "Not in the articles",
        "comment_on": "Comment on answer {n} (optional)",
        "comment_save": "Save the comment",
        "comment_saved": "Comment saved on answer {n}.",
        "comment_needs_rating": "Rate the answer first (thumbs up or down).",
        "save_failed": "The answer could not be saved: {error}",
        "conv_window": "{n} questions: the page shows the last {shown} (all of them are in the exports).",
    },
}

# Questions about the shipped seed article (seeds/, in French), shown as examples; each finds its
# answer there (the English ones were checked to retrieve the passage holding it).
EXAMPLES: dict[str, list[str]] = {
    "fr": [
        "Qui est le ministre iranien des Affaires étrangères ?",
        "Dans quelle ville se sont déroulées les discussions entre Iraniens et Américains ?",
        "Qui est l'envoyé spécial des États-Unis ?",
        "Quel porte-avions les États-Unis ont-ils envoyé dans la région ?",
    ],
    "en": [
        "Who is the Iranian foreign minister?",
        "Who is the White House press secretary?",
        "Who is Karoline Leavitt?",
        "What did the Iran Human Rights organisation count?",
    ],
}


def t(lang: str, key: str, **values: object) -> str:
    """The interface string ``key`` in ``lang`` (English when unknown), formatted with ``values``."""
    table = STRINGS.get(lang, STRINGS["en"])
    text = table.get(key, STRINGS["en"][key])
    return text.format(**values) if values else text


def tn(lang: str, key: str, n: int) -> str:
    """A count with its noun: ``"singular|plural"`` strings, singular for 0 and 1 in French, 1 in English."""
    one, _, many = t(lang, key).partition("|")
    single = n in (0, 1) if lang == "fr" else n == 1
    return (one if single or not many else many).format(n=n)


def pick_lang(accept_language: str | None, default: str = DEFAULT_LANG) -> str:
    """The interface language for an HTTP ``Accept-Language`` header.

    Parameters
    ----------
    accept_language : str or None
        E.g. ``"fr-FR,fr;q=0.9,en;q=0.8"``.
    default : str
        Returned when the header names neither French nor English.

    Returns
    -------
    str
        ``"fr"`` or ``"en"``: the supported language the browser prefers most.
    """
    best, best_q = default, -1.0
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        if base not in LANGS:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= order * 1e-6  # equal weights: the first listed wins
        if q > best_q:
            best, best_q = base, q
    return best
