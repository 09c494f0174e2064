"""``rag index build|status|list|remove|verify|repair``."""

from __future__ import annotations

import argparse
import json
import sys

from ..indexing.copy import copy_index
from ..indexing.distributed import RayEmbedder
from ..indexing.indexer import Indexer
from ..indexing.verify import Problem, repair, verify
from ..ingest.fetch import is_address
from ..ingest.loading import SUPPORTED
from ..store.factory import is_database_url, open_store
from ..store.postgres import public_url
from .common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    config_of,
    index_arg,
    printable,
)

CONFIRM_OVER = 5  # rag index remove asks before removing more documents than this


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rag index`` and its actions."""
    p_index = sub.add_parser("index", help="build and inspect the index", description="Build and inspect the index.")
    isub = p_index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="add new, re-index changed and remove deleted articles",
                        description=f"Index the articles under PATH (files or folders, recursively): "
                                    f"{' '.join(SUPPORTED)} (.json: a SQuAD-format set; scanned PDFs are read by "
                                    f"OCR when tesseract is installed); web addresses (http:// or https://) and "
                                    f".urls files (one address a line, # comments) are fetched. Incremental: "
                                    f"unchanged articles are not encoded again (except once, from their stored "
                                    f"text, when the index's vectors were made by an earlier int8 encoder recipe), "
                                    f"and a page is asked again with If-None-Match / If-Modified-Since. Exit 2 if a "
                                    f"file or address was skipped (the rest is indexed).")
    b.add_argument("paths", nargs="*", metavar="PATH", help="files, folders or web addresses (default: seeds/)")
    index_arg(b)
    b.add_argument("--rebuild", action="store_true", help="start over (after changing the model or chunking)")
    b.add_argument("--no-prune", action="store_true", help="keep indexed articles whose file is gone")
    b.add_argument("--follow-links", action="store_true",
                   help="follow links to files outside the folders given (by default they are skipped, said so)")
    b.add_argument("--wait", type=float, default=0.0, metavar="SEC",
                   help="wait up to SEC seconds for another build to finish (default: refuse at once)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar, summary only")
    b.add_argument("--ray", metavar="ADDRESS", help="encode on a Ray cluster: 'auto' (RAY_ADDRESS or this "
                   "machine's cluster) or HOST:PORT of its head; every node needs rag installed (rag[ray])")
    b.add_argument("--ray-actors", type=int, metavar="N", help="encoders on the cluster (default: one per CPU)")
    b.set_defaults(handler=cmd_build)
    s = isub.add_parser("status", help="documents, chunks, model, dimensions, last update")
    index_arg(s)
    s.add_argument("--json", action="store_true", help="print JSON (keys: documents, chunks, model, dimensions, updated)")
    s.set_defaults(handler=cmd_status)
    ls = isub.add_parser("list", help="the indexed documents")
    index_arg(ls)
    ls.add_argument("--json", action="store_true",
                    help="print JSON lines (id, source, title, lang, chunks, indexed, date, date_source, url, author)")
    ls.set_defaults(handler=cmd_list)
    vf = isub.add_parser("verify", help="check the index and say what is damaged",
                         description="Check the SQLite file, manifest, search files (against the checksums "
                                     "written at commit, and their values), chunk offsets and cache. "
                                     "Exit 0 when sound, 1 when damaged (run rag index repair).")
    index_arg(vf)
    vf.add_argument("--json", action="store_true", help="print the problems as JSON")
    vf.set_defaults(handler=cmd_verify)
    rp = isub.add_parser("repair", help="rebuild damaged search files and manifest",
                         description="Rebuild the search files and manifest from the documents kept in SQLite "
                                     "(vectors from the cache). If the SQLite file itself is lost, it is moved "
                                     "aside and the articles under PATH are indexed again.")
    rp.add_argument("paths", nargs="*", metavar="PATH", help="article folders (needed only if SQLite is lost)")
    index_arg(rp)
    rp.set_defaults(handler=cmd_repair)
    rm = isub.add_parser("remove", help="remove documents by source, folder, id or title",
                         description=f"Remove documents: NAME is a source, a file (a JSONL file: all its "
                                     f"articles), a folder, an id or a title. Removing more than "
                                     f"{CONFIRM_OVER} documents asks first (--yes does not).")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.add_argument("-y", "--yes", action="store_true", help=f"remove without asking, even more than {CONFIRM_OVER}")
    index_arg(rm)
    rm.set_defaults(handler=cmd_remove)
    cp = isub.add_parser("copy", help="copy an index between a folder and a PostgreSQL database, without encoding",
                         description="Copy the index at SRC into DST (an index folder or a postgresql:// address, "
                                     "either way; DST new or empty): documents, chunks, the embedding cache and the "
                                     "file stamps; DST makes its own search indexes. Nothing is encoded again.")
    cp.add_argument("source", metavar="SRC", help="index folder or postgresql://user@host:port/database")
    cp.add_argument("target", metavar="DST", help="index folder or postgresql://user@host:port/database")
    cp.add_argument("--wait", type=float, default=0.0, metavar="SEC", help="wait up to SEC seconds for DST's lock")
    cp.set_defaults(handler=cmd_copy)


def cmd_build(args: argparse.Namespace) -> int:
    """``rag index build``."""
    cfg = config_of(args)
    paths = args.paths or ["seeds"]
    distribute = None
    if args.ray:
        def distribute(local):  # the cluster is reached only when something must be encoded
            remote = RayEmbedder(local, args.ray, cfg.model, local.encoder, str(cfg.cache_path),
                                 actors=args.ray_actors)
            if not args.quiet:
                print(f"encoding on {remote.actors} Ray actors over {remote.nodes} nodes, {remote.cores} cores",
                      file=sys.stderr)
            return remote
    report = Indexer(cfg, distribute=distribute).build(paths, rebuild=args.rebuild, prune=not args.no_prune,
                                                       wait=args.wait, progress=not args.quiet,
                                                       follow_links=args.follow_links)
    limit = None if args.verbose else 10
    for label, names in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        for name in names[:limit]:
            print(f"{label}: {printable(name)}")
        if limit and len(names) > limit:
            print(f"{label}: ... and {len(names) - limit} more (-v lists all)")
    if report.unchanged:
        shown = ", ".join(report.unchanged[:5]) + (f" and {len(report.unchanged) - 5} more" if len(report.unchanged) > 5 else "")
        print(f"unchanged: {len(report.unchanged)} ({shown})")
    if report.uploads_kept:
        print(f"kept: {len(report.uploads_kept)} document(s) uploaded in the chat, under {cfg.upload_path} "
              f"(indexed again from their stored text; rag index remove takes them out)")
        for name in report.uploads_kept[:limit]:
            print(f"kept upload: {printable(name)}")
    for name in report.kept:
        what = "address could not be fetched" if is_address(name) else "file could not be read"
        print(f"kept previous version: {printable(name)} (its {what} this time)")
    for s in report.skipped:
        print(f"skipped: {printable(s.path)}: {s.reason}", file=sys.stderr)
    for w in report.warnings:
        print(f"warning: {printable(w.path)}: {w.reason}", file=sys.stderr)
    print(report.summary())
    if report.skipped:
        print(f"rag: {len(report.skipped)} file(s), address(es) or record(s) skipped, see above; the rest is indexed",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """``rag index status``."""
    status = open_store(config_of(args)).status()
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    else:
        if status["encoder"] != "torch":
            status["encoder"] = f"{status['encoder']} (recipe {status['encoder_recipe']})"
        prompts = status.get("prompts") or {}
        status["prompts"] = ", ".join(f"{k} {v!r}" for k, v in prompts.items() if v) or "none"
        for key in ("index", "documents", "chunks", "model", "prompts", "encoder", "dimensions", "vector_search",
                    "lexical_search", "updated", "languages"):
            if key in status:  # lexical_search: a database's
                print(f"{key + ':':14} {status[key]}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """``rag index list``."""
    for d in open_store(config_of(args)).documents():
        if args.json:
            keys = ("id", "source", "title", "lang", "chunks", "indexed", "date", "date_source", "url", "author")
            print(json.dumps({k: d[k] for k in keys}, ensure_ascii=False))
        else:
            day = f"{d['date'] or '?':10}{'*' if d['date_source'] == 'file' else ' '}"
            url = f"  <{d['url']}>" if d["url"] and d["url"] != d["source"] else ""
            print(f"{d['id']}  {day} {d['lang']}  {d['chunks']:4d} chunks  {printable(d['source'])}  "
                  f"{printable(d['title'])}{url}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    """``rag index remove``: asks before removing more than :data:`CONFIRM_OVER` documents (unless ``--yes``)."""
    cfg = config_of(args)
    if any(not n.strip() for n in args.names):
        print("rag: an empty NAME matches nothing: name a file, folder, id or title (see: rag index list)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    store = open_store(cfg)
    try:
        matched = store.resolve_docs(args.names)
        sources = {d["id"]: d["source"] for d in store.documents()} if len(matched) > CONFIRM_OVER else {}
    finally:
        store.close()
    if len(matched) > CONFIRM_OVER and not args.yes:
        names = ", ".join(repr(n) for n in args.names)
        shown = ", ".join(printable(sources[i]) for i in matched[:3])
        if not sys.stdin.isatty():
            print(f"rag: {names} matches {len(matched)} documents ({shown}, ...); not removed: add --yes to remove "
                  f"them all", file=sys.stderr)
            return EXIT_BAD_INPUT
        reply = input(f"{names} matches {len(matched)} documents ({shown}, ...). Remove them all? [y/N] ")
        if reply.strip().lower() not in ("y", "yes", "o", "oui"):
            print("rag: nothing removed", file=sys.stderr)
            return EXIT_FAILED
    report = Indexer(cfg).remove(args.names)
    if not report.removed:
        print(f"rag: no indexed document matches {', '.join(args.names)} (see: rag index list)", file=sys.stderr)
        return EXIT_BAD_INPUT
    for name in report.removed:
        print(f"removed: {name}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """``rag index verify``."""
    cfg = config_of(args)
    problems = _verify(cfg)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [p._asdict() for p in problems]}, ensure_ascii=False))
    elif problems:
        for p in problems:
            print(f"{p.part}: {p.message}")
        where = _shown(cfg.index_dir)
        print(f"rag: {where} is damaged; repair with: rag index repair --index {where}", file=sys.stderr)
    else:
        print(f"{_shown(cfg.index_dir)}: ok")
    return EXIT_FAILED if problems else EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    """``rag index repair``."""
    cfg = config_of(args)
    if is_database_url(cfg.index_dir):
        open_store(cfg).repair()
        print("repaired: term frequencies and totals recounted from the postings")
    else:
        report = repair(cfg.index_dir, cfg, args.paths)
        print(f"repaired: {len(report.updated) + len(report.added)} documents re-indexed, "
              f"{report.encoded} chunks encoded, {report.cached} from cache")
    left = _verify(cfg)
    for p in left:
        print(f"still wrong: {p.part}: {p.message}", file=sys.stderr)
    return EXIT_FAILED if left else EXIT_OK


def _shown(index: str) -> str:
    """An index as messages name it: a folder with its slash, a database without its password."""
    return public_url(index) if is_database_url(index) else f"{index}/"


def _verify(cfg) -> list[Problem]:
    """The problems of the configured index, a folder or a database."""
    if is_database_url(cfg.index_dir):
        return [Problem(*p) for p in open_store(cfg).verify()]
    return verify(cfg.index_dir, cfg)


def cmd_copy(args: argparse.Namespace) -> int:
    """``rag index copy``."""
    report = copy_index(args.source, args.target, config_of(args), wait=args.wait)
    print(f"copied: {report.documents} documents, {report.chunks} chunks, {report.vectors} cached vectors "
          f"in {report.seconds:.1f} s (nothing encoded)")
    return EXIT_OK
