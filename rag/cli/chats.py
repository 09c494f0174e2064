"""``rag chats list|export|feedback``: the saved conversations of the web chat, from the command line.

Bad input (an unknown conversation id, a folder inside the index) raises :class:`rag.chats.ChatError`,
a bad-input :class:`rag.errors.RagError` that ``rag``'s main turns into exit code 2 with the message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..chats import ChatError, ChatStore, chats_dir, export, export_name, feedback_sets, write_jsonl
from ..chats.store import DB_NAME
from .common import EXIT_OK, config_of


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``rag chats`` and its actions to ``rag``'s subcommands; each action sets ``handler``."""
    p = subparsers.add_parser(
        "chats", help="saved conversations of the web chat: list, export, feedback",
        description="The conversations saved by the web chat (chats_dir, default chats/ beside the index folder).")
    sub = p.add_subparsers(dest="chats_command", required=True, metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--index", metavar="DIR", help="index folder whose chats/ sits beside it (default: index/)")
        q.add_argument("--chats", metavar="DIR", help="conversations folder (default: chats_dir, or RAG_CHATS_DIR)")
        q.add_argument("--user", metavar="NAME", help="only this login's conversations (default: every user's)")

    ls = sub.add_parser("list", help="conversations, most recently active first")
    common(ls)
    ls.add_argument("--json", action="store_true", help="print JSON lines (id, user, title, created, updated, turns)")
    ls.set_defaults(handler=cmd_list)

    ex = sub.add_parser("export", help="one conversation as Markdown or JSON",
                        description="Export a conversation: every question, answer and source (title, date, URL "
                                    "or file, excerpt as shown at the time).")
    ex.add_argument("id", metavar="ID", help="conversation id (see: rag chats list)")
    ex.add_argument("--format", choices=["md", "json"], default="md", help="md (default) or json")
    ex.add_argument("--out", metavar="FILE", help="write here (default: print; a folder: a file named after the title)")
    common(ex)
    ex.set_defaults(handler=cmd_export)

    fb = sub.add_parser("feedback", help="rated answers as a Q&A set for rag eval",
                        description="Write the rated turns as a JSONL Q&A set that rag eval reads: a thumbs-up answer "
                                    "becomes a gold answer (its short answer, else its cited sentences) with its "
                                    "document; a thumbs-down marked 'not in the articles' becomes an unanswerable "
                                    "question (answers: []); other thumbs-down go to the review file.")
    fb.add_argument("--jsonl", required=True, metavar="FILE", help="the Q&A set to write")
    fb.add_argument("--review", metavar="FILE",
                    help="thumbs-down answers to look at (default: FILE with .review.jsonl in place of .jsonl)")
    common(fb)
    fb.set_defaults(handler=cmd_feedback)
    return p


def _store(args: argparse.Namespace) -> ChatStore:
    cfg = config_of(args).replace(chats_dir=args.chats)
    folder = chats_dir(cfg)
    if not (folder / DB_NAME).is_file():
        raise ChatError(f"no saved conversations in {folder}/ (rag serve saves them there; "
                        "another folder: --chats DIR)")
    return ChatStore(folder)


def cmd_list(args: argparse.Namespace) -> int:
    """``rag chats list``."""
    convs = _store(args).conversations(args.user)
    for c in convs:
        if args.json:
            print(json.dumps({"user": c.user, **c.summary()}, ensure_ascii=False))
        else:
            print(f"{c.id}  {c.updated[:16].replace('T', ' ')}  {c.n_turns:3d} turns  {c.user}  {c.title}")
    if not convs and not args.json:
        print("no saved conversations", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``rag chats export``."""
    conv = _store(args).get(args.id, args.user)
    text = export(conv, args.format)
    if not args.out:
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out)
    if out.is_dir():
        out = out / export_name(conv, args.format)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(conv.turns)} turns)")
    return EXIT_OK


def cmd_feedback(args: argparse.Namespace) -> int:
    """``rag chats feedback``."""
    sets = feedback_sets(_store(args).rated(args.user))
    jsonl = Path(args.jsonl)
    review = Path(args.review) if args.review else jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".review.jsonl")
    n_qa = write_jsonl(jsonl, sets.qa)
    n_review = write_jsonl(review, sets.review)
    unanswerable = sum(1 for line in sets.qa if not line["answers"])
    print(f"wrote {jsonl}: {n_qa} questions ({n_qa - unanswerable} with a gold answer, {unanswerable} not in the "
          f"articles); {review}: {n_review} to review")
    return EXIT_OK
