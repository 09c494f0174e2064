"""Indexing: load, chunk, embed (through the cache) and store, incrementally and atomically.

Incremental: a file whose size, modification and change times and inode are those recorded
when it was last read is not read again (:class:`rag.files.FileStamp`, which says what that
misses); a file read is compared by the hash of its text, so only changed text is chunked and
only text never seen is encoded. ``rebuild`` reads every file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sqlite3
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from ..config import Config
from ..embedding import (
    PASSAGE,
    Embedder,
    Encoder,
    cache_key,
    canonical_model_name,
    encoder_recipe,
    get_embedder,
    stale_recipe,
)
from ..errors import BadInput, DiskFull, IndexCorrupt, IndexMismatch, IndexProblem, RagError, Remedy
from ..ingest.base import Skipped, Unreadable, error_text, guarded
from ..ingest.fetch import Fetcher, Validators, is_address
from ..ingest.files import FileStamp, key_files, key_under
from ..ingest.loading import RECORD_DIGEST, LoadResult, load_paths, loader_version
from ..ingest.ocr import OcrSettings, ocr_settings
from ..ingest.web import entries_for, entry_of_key, fetcher_for, load_pages, web_version
from ..schema import Chunk, Document
from ..search import term_table
from ..search.lexical import LexicalIndex
from ..search.vectors import VectorIndex
from ..store import layout
from ..store.base import DocumentChange, StoredChunk, is_database_url
from ..store.factory import open_store
from ..store.layout import FORMAT_VERSION, BuildSettings, Manifest
from ..store.sqlite import ChunkRow, Commit, Store
from ..text.analysis import index_terms
from ..text.normalize import text_hash
from .changes import BuildReport, compare, orphans
from .chunking import Chunker

log = logging.getLogger(__name__)
ENCODE_STEP = 256  # chunks encoded (and cached) per step: a crash loses at most one step


CRASH_POINTS = ("encoded", "written", "in-transaction", "committed")  # in a database, "document-committed", "packing"


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: ``RAG_CRASH_AT=name`` kills the process (SIGKILL) here."""
    if os.environ.get("RAG_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def stored_digest(row: dict) -> str | None:
    """The record digest (``meta["record_sha256"]``) of an indexed document's row, if it has one."""
    meta = row.get("meta")
    if not meta or RECORD_DIGEST not in meta:
        return None
    try:
        digest = (json.loads(meta) if isinstance(meta, str) else meta).get(RECORD_DIGEST)
    except (ValueError, AttributeError):
        return None
    return digest if isinstance(digest, str) else None


def record_digests(rows: Iterable[dict], stamps: dict[str, FileStamp]) -> dict[str, str]:
    """The record digest of each indexed document read from a stamped file, by key: a record read again
    with those bytes, by the same reader, is the document as indexed."""
    out = {}
    for row in rows:
        digest = stored_digest(row)
        if digest is not None and any(f in stamps for f in key_files(row["key"])[1:]):
            out[row["key"]] = digest
    return out


def embed_text(title: str, chunk_text: str) -> str:
    """What is embedded and BM25-indexed for a chunk: its document's title, then its text."""
    return f"{title}\n{chunk_text}" if title else chunk_text


@contextmanager
def disk_full_said(folder: Path) -> Iterator[None]:
    """Turn a full disk, whichever layer finds it (SQLite, FAISS, numpy, a write), into :class:`DiskFull`.

    The index is left at its last committed state (the transaction rolled back): the search files
    written for a generation that was not committed are removed, so the next try starts clean.
    """
    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        if not layout.is_disk_full(exc, folder if folder.is_dir() else folder.parent):
            raise
        _drop_uncommitted(folder)
        raise DiskFull(f"disk full while updating {folder}/ ({layout.short(exc)}): nothing was changed, the index is "
                       f"at its previous state; free some space and run it again", where=str(folder)) from None


def disk_guard(location: str | os.PathLike):
    """:func:`disk_full_said` for an index folder; nothing for a database (its server says when it is full)."""
    return nullcontext() if is_database_url(location) else disk_full_said(Path(location))


def _drop_uncommitted(folder: Path) -> None:
    """Remove the generation folders newer than the committed one (a failed update's)."""
    try:
        store = Store(folder)
        try:
            manifest = store.manifest()
        finally:
            store.close()
    except (RagError, sqlite3.Error):
        return
    if manifest is not None:
        layout.remove_stale_generations(folder, {manifest.generation, manifest.generation - 1})


class Indexer:
    """Builds and updates an index folder.

    Parameters
    ----------
    config : Config
        Model, chunking and limits.
    embedder : Embedder, optional
        Reuse a loaded model; otherwise one is loaded when something must be chunked.
    distribute : callable, optional
        Given the loaded embedder, returns the one that encodes (e.g. ``rag.indexing.distributed.
        RayEmbedder`` around it); called when the model is first needed (something to chunk).

    Notes
    -----
    An index keeps the model, chunking and encoder (``onnx-int8`` or ``torch``) it was first
    built with, and the model's prompts (recorded in its manifest); the configured ones apply to
    new indexes and to ``rebuild``, which commits in one transaction (the old index answers
    until then). A model or chunking setting given explicitly and unlike the index's is an error. Setting it explicitly
    (``RAG_ENCODER``, ``rag.toml``) to another encoder than the index's is an error. An index
    whose vectors an earlier int8 export made (:func:`rag.embedding.encoder_recipe`) has all of
    its documents encoded again, from their stored text, by its next build: vectors of two
    recipes never share an index.
    """

    def __init__(self, config: Config, embedder: Embedder | None = None,
                 distribute: Callable[[Embedder], Embedder] | None = None):
        self.config = config
        self._embedder = embedder
        self._distribute = distribute
        self.model = embedder.name if embedder is not None else canonical_model_name(config.model)
        self.encoder = Encoder(embedder.encoder if embedder is not None else config.encoder)

    @property
    def cache_key(self) -> str:
        """The name this model and encoder's vectors are cached under."""
        return cache_key(self.model, self.encoder)

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (an unchanged rebuild never loads it)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.model, self.config.batch_size, self.encoder,
                                          self.config.cache_dir or None)
        if self._distribute is not None:
            self._embedder, self._distribute = self._distribute(self._embedder), None
        return self._embedder

    @property
    def reader(self) -> str:
        """What file stamps are recorded under: the loader's code and the settings it reads with."""
        ocr = self.ocr
        read = f"ocr={ocr.lang}/{ocr.max_pages}/{ocr.max_seconds:g}" if ocr else "ocr=off"
        cfg = self.config
        return (f"{loader_version()} max_file_mb={cfg.max_file_mb} default_lang={cfg.default_lang} {read} "
                f"max_articles={cfg.max_articles_per_file}")

    @property
    def page_reader(self) -> str:
        """What page validators are recorded under: the web reader's code and the settings it reads with."""
        return f"{web_version()} {self.reader} fetch_max_mb={self.config.fetch_max_mb}"

    @property
    def ocr(self) -> OcrSettings | None:
        """How PDF pages without a text layer are read (None: OCR is off)."""
        return ocr_settings(self.config)

    @property
    def fetcher(self) -> Fetcher:
        """How web addresses are fetched (the ``fetch_*`` and ``allow_private_urls`` settings)."""
        return fetcher_for(self.config)

    def build(self, paths: Iterable[str | os.PathLike], index_dir: str | os.PathLike | None = None,
              rebuild: bool = False, prune: bool = True, wait: float = 0.0,
              progress: bool = True, on_progress: Callable[[int, int], None] | None = None,
              follow_links: bool = False) -> BuildReport:
        """Bring the index in step with the files under ``paths``.

        Parameters
        ----------
        paths : iterable of path-like
            Files and folders to index (recursively), and web addresses (``https://…``); a
            ``.urls`` file found lists more addresses, one a line.
        index_dir : path-like, optional
            Index folder (default: ``config.index_dir``).
        rebuild : bool
            Start over (needed after changing the model or chunking), reading every file and
            fetching every page; the cache is kept. Otherwise a file is read only if its stamp
            changed, and a page parsed only if the server sends a new version.
        prune : bool
            Remove indexed documents under ``paths`` whose file is gone.
        wait : float
            Seconds to wait for another build's lock before giving up.
        progress : bool
            Show a progress bar while encoding.
        on_progress : callable, optional
            Called with (chunks encoded, chunks to encode).
        follow_links : bool
            Follow links to files outside ``paths`` (otherwise they are skipped, said so).

        Returns
        -------
        BuildReport
        """
        given = [str(p) if is_address(str(p)) else Path(p) for p in paths]
        addresses = [p for p in given if isinstance(p, str)]
        paths = [p for p in given if isinstance(p, Path)]
        t0 = time.perf_counter()
        known, pages, records = ({}, {}, {}) if rebuild else self._known(index_dir)
        loaded = load_paths(paths, self.config.max_file_mb, self.config.default_lang, known, self.ocr,
                            self.config.max_articles_per_file, follow_links, records)
        entries, bad = entries_for(addresses, loaded.address_lists, int(self.config.max_file_mb * 1_000_000))
        loaded.skipped.extend(bad)
        if entries:
            loaded.add(load_pages(entries, self.fetcher, pages, self.config.default_lang, self.ocr, progress))
        return self._run(index_dir, wait, t0, loaded, paths, rebuild, prune, progress, on_progress)

    def add_documents(self, docs: Sequence[Document], index_dir: str | os.PathLike | None = None,
                      wait: float = 0.0, progress: bool = False) -> BuildReport:
        """Index documents made in memory (no file walk, nothing pruned)."""
        return self._run(index_dir, wait, time.perf_counter(), LoadResult(list(docs)), [], False, False, progress)

    def reindex(self, docs: Sequence[Document], index_dir: str | os.PathLike | None = None,
                wait: float = 0.0, progress: bool = True) -> BuildReport:
        """Start the index over with exactly ``docs`` (vectors come from the cache where present)."""
        return self._run(index_dir, wait, time.perf_counter(), LoadResult(list(docs)), [], True, False, progress)

    def _known(self, index_dir: str | os.PathLike | None
               ) -> tuple[dict[str, FileStamp], dict[str, Validators], dict[str, str]]:
        """Stamps of the files and validators of the pages indexed so far, and the record digests of the
        JSONL documents read from those files (none for a missing or damaged index: the build says what)."""
        try:
            store = open_store(index_dir or self.config.index_dir)
        except IndexProblem:
            return {}, {}, {}
        try:
            stamps = {path: FileStamp(*stamp) for path, stamp in store.file_stamps(self.reader).items()}
            return stamps, store.page_validators(self.page_reader), record_digests(store.documents(), stamps)
        finally:
            store.close()

    def _run(self, index_dir, wait: float, t0: float, loaded: LoadResult, roots: Sequence[Path], rebuild: bool,
             prune: bool, progress: bool, on_progress: Callable[[int, int], None] | None = None) -> BuildReport:
        location = index_dir or self.config.index_dir
        with disk_guard(location):
            store = open_store(location, create=True)
            with store.build_lock(wait):
                report = self._build_locked(store, loaded, roots, rebuild, prune, progress, on_progress)
        report.seconds = time.perf_counter() - t0
        return report

    def remove(self, names: Sequence[str], index_dir: str | os.PathLike | None = None, wait: float = 0.0) -> BuildReport:
        """Remove documents by id, source (a JSONL file's: its articles), folder prefix or title.

        Raises
        ------
        BadInput
            For an empty name (an unset variable, most likely: it is never taken for "everything").
        """
        blank = [n for n in names if not n.strip()]
        if blank or not names:
            raise BadInput("an empty document name matches nothing: name a file, folder, id or title "
                           "(rag index list shows them)")
        store = open_store(index_dir or self.config.index_dir)
        with disk_guard(store.folder), store.build_lock(wait):
            doc_ids = store.resolve_docs(names)
            report = BuildReport()
            manifest = self._check_manifest(store, rebuild=False)
            existing = {d["id"]: d for d in store.documents()}
            gone = [existing[i] for i in doc_ids]
            report.removed = [d["source"] for d in gone]
            if gone:
                self._commit(store, manifest, [], gone, [], {}, report)
            report.chunks_total = store.counts()[1]
        return report

    # -- steps ------------------------------------------------------------------------------
    @property
    def settings(self) -> BuildSettings:
        """The settings the chunks and vectors of an index built now depend on."""
        cfg = self.config
        return BuildSettings(self.model, cfg.chunk_tokens, cfg.chunk_overlap, cfg.title_tokens)

    def _check_manifest(self, store: Store, rebuild: bool) -> Manifest | None:
        if rebuild:
            try:
                return store.manifest()
            except IndexProblem:  # starting over: a damaged manifest does not matter
                return None
        manifest = store.manifest()
        if manifest is None:
            return manifest
        self._follow_settings(manifest)
        layout.check_updatable(manifest, self.settings, str(store.folder))
        self._follow_encoder(store, manifest)
        return manifest

    def _follow_settings(self, manifest: Manifest) -> None:
        """Use the index's model and chunking, unless the configuration gives them explicitly."""
        chosen = set(self.config.sources) | ({"model"} if self._embedder is not None else set())
        followed = layout.follow_index(manifest, self.settings, chosen)
        if followed.model != self.model:
            self.model = followed.model
            self._embedder = None
        sources = self.config.sources
        self.config = dataclasses.replace(self.config, chunk_tokens=followed.chunk_tokens,
                                          chunk_overlap=followed.chunk_overlap, title_tokens=followed.title_tokens)
        self.config.sources = dict(sources)

    def _follow_encoder(self, store: Store, manifest: Manifest) -> None:
        """Use the index's encoder, unless the configuration explicitly asks for another one."""
        try:
            have = Encoder(manifest.encoder)
        except ValueError:
            raise IndexMismatch(f"{store.folder}/ was built with encoder={manifest.encoder}, which this version does "
                                f"not know", Remedy.REBUILD, str(store.folder)) from None
        if have is self.encoder:
            return
        asked = self.config.sources.get("encoder") or ("the given embedder" if self._embedder is not None else None)
        if asked:
            raise IndexMismatch(
                f"{store.folder}/ was built with encoder={have.value}, but {asked} says encoder={self.encoder.value} "
                f"(or set RAG_ENCODER={have.value})", Remedy.REBUILD, str(store.folder))
        self.encoder = have

    def _build_locked(self, store: Store, loaded: LoadResult, roots: Sequence[Path], rebuild: bool,
                      prune: bool, progress: bool, on_progress) -> BuildReport:
        manifest = self._check_manifest(store, rebuild)
        existing = {d["key"]: d for d in store.documents()}
        lost = orphans(loaded, existing)
        if lost:  # their documents went while this build waited for the lock: read them after all
            loaded.add(load_paths(lost, self.config.max_file_mb, self.config.default_lang, ocr=self.ocr,
                                  max_articles=self.config.max_articles_per_file, follow_links=True), lost)
        lost_pages = [k for k in loaded.unchanged_keys if k not in existing]
        if lost_pages:  # likewise for pages found unchanged: fetched again, unconditionally
            loaded.add(load_pages([entry_of_key(k) for k in lost_pages], self.fetcher, {}, self.config.default_lang,
                                  self.ocr), lost_pages)
        report = BuildReport(skipped=loaded.skipped, files_read=loaded.files_read,
                             unchanged_files=len(loaded.unchanged_files), warnings=loaded.warnings,
                             pages_fetched=loaded.pages_fetched, pages_unchanged=len(loaded.unchanged_keys))
        changes = compare(loaded, existing, [r.resolve() for r in roots], rebuild, prune, report)
        changed = {d.key for d in changes.new_docs}  # before any is dropped (failed, kept at its old version)
        if rebuild:
            self._keep_on_rebuild(store, existing, changes, report)
        # vectors of an earlier int8 export: all encoded again (or, with rebuild, anew), its cache dropped on commit
        stale = (manifest is not None and manifest.encoder == self.encoder.value
                 and stale_recipe(manifest.encoder, manifest.encoder_recipe))
        old_key = cache_key(manifest.model, manifest.encoder, manifest.encoder_recipe) if stale else None
        if stale and not rebuild:
            self._encode_again(store, existing, changes, report, manifest)
        gen_ok = self._search_files_sound(store, manifest)
        report.search_files_rebuilt = manifest is not None and not gen_ok and not rebuild
        # a database whose first build was killed after its last batch: its indexes and manifest still to make
        unfinished = not store.local and manifest is None and bool(existing)
        if report.changed or not gen_ok or rebuild or unfinished:
            if manifest is not None and not rebuild and changes.new_docs:  # new vectors beside the index's
                layout.check_prompts(manifest, self.embedder.prompts, self.model, str(store.folder))
            chunks, vectors, dropped = self._embed(store, changes.new_docs, report, progress, on_progress)
            if dropped:
                self._drop_failed(changes, report, dropped, existing, loaded.stamps)
            self._commit(store, manifest if not rebuild else None, changes.new_docs, changes.gone,
                         chunks, vectors, report, rebuild=rebuild, gen_ok=gen_ok, stamps=loaded.stamps,
                         drop_cache=old_key, pages=loaded.pages)
        elif loaded.stamps or loaded.pages:  # files read again (touched, or not stamped before), pages sent
            with store.transaction():        # again: found unchanged
                store.record_files(loaded.stamps, self.reader)
                store.record_pages(loaded.pages, self.page_reader)
        if not store.local and not report.changed and manifest is not None:  # packed postings due (a killed
            store.pack(lambda: crash_point("packing"), force=False)          # packing, or a repair's removals)
        self._keep_digests(store, loaded, existing, changed)
        report.chunks_total = store.counts()[1]
        current = store.manifest()
        report.generation = current.generation if current else 0
        return report

    @staticmethod
    def _keep_digests(store: Store, loaded: LoadResult, existing: dict[str, dict], changed: set[str]) -> None:
        """Record the digest of the JSONL records found unchanged (their key not in ``changed``) whose bytes
        were not those indexed (an index made before digests, a record rewritten to the same article), so
        the next build passes them over."""
        digests = {}
        for doc in loaded.documents:
            old = existing.get(doc.key)
            digest = doc.meta.get(RECORD_DIGEST)
            if old is not None and digest and doc.key not in changed and stored_digest(old) != digest:
                digests[old["id"]] = digest
        if digests:
            with store.transaction():
                store.record_digests(digests)

    def _keep_on_rebuild(self, store: Store, existing: dict[str, dict], changes, report: BuildReport) -> None:
        """On ``rebuild``, index again from their stored text the documents that must not go: those uploaded
        in the web chat (under ``config.upload_path``) and those whose file could not be read this time."""
        uploads = [self.config.upload_path]
        kept = set(report.kept)
        keys = {d["key"] for d in changes.gone if key_under(d["key"], set(), uploads)}
        keys |= {d["key"] for d in existing.values() if d["source"] in kept}
        keys -= {d.key for d in changes.new_docs}
        if not keys:
            return
        ids = [existing[k]["id"] for k in keys]
        again = store.stored_documents(ids)
        changes.new_docs.extend(again)
        changes.gone[:] = [d for d in changes.gone if d["key"] not in keys]
        sources = {existing[k]["source"] for k in keys}
        report.removed[:] = [s for s in report.removed if s not in sources]
        report.uploads_kept = sorted(d.source for d in again if d.source not in kept)

    def _search_files_sound(self, store: Store, manifest: Manifest | None) -> bool:
        """Whether the committed generation's search files are there and as written (else they are
        rebuilt from the stored chunks and the cache). An index made before checksums is tried by loading;
        a database keeps its search indexes with its rows."""
        if not store.local:
            return True
        if not layout.has_search_files(store.folder, manifest):
            return False
        if manifest.files():
            return True
        try:
            layout.load_vectors(store.folder, manifest)
            layout.load_lexical(store.folder, manifest)
        except IndexCorrupt:
            return False
        return True

    @staticmethod
    def _encode_again(store: Store, existing: dict[str, dict], changes, report: BuildReport,
                      manifest: Manifest) -> None:
        """Queue every indexed document not already re-indexed or removed, rebuilt from its stored text."""
        log.info("%s/: its vectors were made by %s recipe %d; encoding all documents again with recipe %d (once)",
                 store.folder, manifest.encoder, manifest.encoder_recipe, encoder_recipe(manifest.encoder))
        taken = {d.key for d in changes.new_docs} | {d["key"] for d in changes.gone}
        for doc in store.stored_documents():
            if doc.key not in taken:
                changes.new_docs.append(doc)
                changes.gone.append(existing[doc.key])
                report.reencoded.append(doc.source)

    def chunk(self, docs: Sequence[Document],
              skipped: list[Skipped] | None = None) -> list[tuple[Document, Chunk, str]]:
        """Each chunk of ``docs`` with its document and the text that is embedded for it (:func:`embed_text`).

        With ``skipped``, a document whose chunking fails, or whose texts could not be embedded,
        is left out and told there (:func:`rag.ingest.base.guarded`); without, the error is raised.
        """
        return self._chunk_each(docs, skipped)[0]

    def _chunk_each(self, docs: Sequence[Document], skipped: list[Skipped] | None
                    ) -> tuple[list[tuple[Document, Chunk, str]], list[Document]]:
        """:meth:`chunk`, and the documents left out."""
        emb = self.embedder
        chunker = Chunker(emb.count_tokens, self.config.chunk_tokens, self.config.chunk_overlap,
                          spans=getattr(emb, "token_spans", None))
        budget = self.config.chunk_tokens + self.config.title_tokens + 1 + emb.count_tokens(emb.prompt(PASSAGE))
        if budget > emb.max_tokens - 2:
            raise IndexMismatch(f"chunk_tokens + title_tokens = {budget} exceeds the model's limit "
                                f"{emb.max_tokens - 2}; lower chunk_tokens")
        out, failed = [], []
        for doc, spans in chunker.with_spans(docs):
            if skipped is None:
                out.extend(self._doc_chunks(chunker, doc, spans))
                continue
            told = len(skipped)
            with guarded(skipped, doc.source):
                out.extend(self._doc_chunks(chunker, doc, spans))
            if len(skipped) > told:
                failed.append(doc)
        return out, failed

    def _doc_chunks(self, chunker: Chunker, doc: Document, spans) -> list[tuple[Document, Chunk, str]]:
        """One document's chunks and embedded texts, checked fit for the encoder."""
        title = self.embedder.clip(doc.title, self.config.title_tokens)
        out = [(doc, c, embed_text(title, c.text)) for c in chunker.run(doc, spans)]
        for _, c, text in out:
            if not isinstance(text, str) or not text.strip():
                raise Unreadable(f"chunk {c.ordinal} is empty")
            text.encode("utf-8")  # a lone surrogate: refused here, not by the tokenizer in the middle of a batch
        return out

    def _embed(self, store: Store, docs: Sequence[Document], report: BuildReport, progress: bool,
               on_progress) -> tuple[list[tuple[Document, Chunk, str, str]], dict[str, np.ndarray], list[Document]]:
        """The chunks of ``docs`` and their vectors, and the documents that could not be chunked or encoded
        (told in ``report.skipped``)."""
        if not docs:
            return [], {}, []
        emb = self.embedder
        failed: list[Skipped] = []
        chunked, dropped = self._chunk_each(docs, failed)
        items = [(doc, c, text, text_hash(text)) for doc, c, text in chunked]
        hashes = list(dict.fromkeys(h for *_, h in items))
        vectors = store.cached_vectors(self.cache_key, hashes, emb.dim)
        texts = {h: t for _, _, t, h in items}
        # longest first, as the encoders batch within a call: steps of similar lengths pad little
        todo = sorted((h for h in hashes if h not in vectors), key=lambda h: -len(texts[h]))
        to_encode = set(todo)
        t0 = time.perf_counter()
        bar = tqdm(total=len(todo), desc="encoding", unit="chunk", disable=not progress or not todo)
        refused: dict[str, str] = {}  # text hash -> why the encoder refused it
        for i in range(0, len(todo), ENCODE_STEP):
            step = todo[i:i + ENCODE_STEP]
            done = self._encode_step(step, texts, refused)
            store.cache_vectors(self.cache_key, done)
            vectors.update(done)
            crash_point("encoded")
            bar.update(len(step))
            if on_progress:
                on_progress(min(i + ENCODE_STEP, len(todo)), len(todo))
        bar.close()
        refused_docs = set()
        for doc, _, _, h in items:
            if h in refused and doc.id not in refused_docs:
                refused_docs.add(doc.id)
                dropped.append(doc)
                failed.append(Skipped(doc.source, f"could not be encoded ({refused[h]})"))
        items = [it for it in items if it[0].id not in refused_docs]
        report.skipped.extend(failed)
        report.chunks_new = len(items)
        report.cached = sum(1 for *_, h in items if h not in to_encode)
        report.encoded = len(items) - report.cached
        report.encode_seconds = time.perf_counter() - t0
        return items, vectors, dropped

    def _encode_step(self, step: list[str], texts: dict[str, str],
                     refused: dict[str, str]) -> list[tuple[str, np.ndarray]]:
        """Vectors of one step of texts (by hash); if the encoder fails on the step, text by text, the
        texts it still refuses left out and told in ``refused``."""
        emb = self.embedder
        try:
            return list(zip(step, emb.encode([texts[h] for h in step], prompt=PASSAGE)))
        except RagError:  # the encoder itself failed (a lost Ray cluster, say): no text is at fault
            raise
        except Exception:  # noqa: BLE001 - one text at fault: find it, encode the others
            pass
        done = []
        for h in step:
            try:
                done.append((h, emb.encode([texts[h]], prompt=PASSAGE)[0]))
            except RagError:
                raise
            except Exception as exc:  # noqa: BLE001 - this text's document is skipped with the reason
                refused[h] = error_text(exc)
        return done

    @staticmethod
    def _drop_failed(changes, report: BuildReport, dropped: Sequence[Document], existing: dict[str, dict],
                     stamps: dict[str, FileStamp]) -> None:
        """Take the documents that could not be chunked or encoded out of the build: a new one is not
        added, a changed one keeps its previous version; their files will be read again next time."""
        keys = {d.key for d in dropped}
        sources = {d.source for d in dropped}
        changes.new_docs[:] = [d for d in changes.new_docs if d.key not in keys]
        changes.gone[:] = [g for g in changes.gone if g["key"] not in keys]
        report.added[:] = [s for s in report.added if s not in sources]
        report.updated[:] = [s for s in report.updated if s not in sources]
        report.reencoded[:] = [s for s in report.reencoded if s not in sources]
        report.kept += [existing[k]["source"] for k in keys if k in existing]
        for key in keys:
            for f in key_files(key):
                stamps.pop(f, None)

    def _commit(self, store: Store, manifest: Manifest | None, new_docs: Sequence[Document],
                gone: Sequence[dict], items, vectors: dict[str, np.ndarray], report: BuildReport,
                rebuild: bool = False, gen_ok: bool = True, stamps: dict[str, FileStamp] | None = None,
                drop_cache: str | None = None, pages: dict[str, Validators] | None = None) -> None:
        """Write the next generation's search files, then switch to it in one transaction (which also
        drops the cached vectors of ``drop_cache``, a cache key that will never be read again); a database
        commits each document's change in its own transaction instead (:meth:`_apply`)."""
        if not store.local:
            return self._apply(store, manifest, new_docs, gone, items, vectors, rebuild, stamps, drop_cache, pages)
        dim = self._dim(manifest)
        gen = layout.next_generation(store.folder, manifest)
        gone_rows = store.rowids_of_docs([d["id"] for d in gone])
        vindex, kept_rows, table = self._previous(store, manifest, dim, rebuild, gen_ok)
        vindex.remove(gone_rows)
        kept = ~np.isin(np.array([r.rowid for r in kept_rows], dtype=np.int64), gone_rows)
        kept_rows = [row for row, k in zip(kept_rows, kept.tolist()) if k]
        next_id = store.next_rowid()
        rows, new_terms = [], []
        words: dict[str, str] = {}  # one string per distinct term: a long text's term lists then share them
        for rowid, (doc, c, text, h) in enumerate(items, next_id):
            new_terms.append([words.setdefault(t, t) for t in index_terms(text, doc.lang)])
            rows.append(ChunkRow(rowid, c.id, c.doc_id, c.ordinal, c.start, c.end, c.text, h, " ".join(new_terms[-1])))
        if rows:
            vindex.add(np.array([r.rowid for r in rows], dtype=np.int64), np.vstack([vectors[r.hash] for r in rows]))
        table = (term_table.keep(table, kept) if table is not None  # numbered by the previous generation
                 else term_table.table_of([r.terms.split() for r in kept_rows]))
        lexical = LexicalIndex().build([r.rowid for r in kept_rows] + [r.rowid for r in rows],
                                       term_table.extend(table, new_terms),
                                       [r.doc_id for r in kept_rows] + [r.doc_id for r in rows],
                                       [r.lang for r in kept_rows] + [doc.lang for doc, *_ in items])
        sums = layout.write_generation(store.folder, gen, vindex, lexical)
        crash_point("written")
        new_manifest = self._new_manifest(manifest, dim, gen, bool(items), json.dumps(sums, sort_keys=True))
        store.commit(Commit(new_manifest, new_docs, rows, [d["id"] for d in gone], [d["key"] for d in gone],
                            stamps or {}, self.reader, rebuild, drop_cache, pages or {}, self.page_reader),
                     inside=lambda: crash_point("in-transaction"))
        crash_point("committed")
        layout.remove_stale_generations(store.folder, {gen, gen - 1})

    def _apply(self, store, manifest: Manifest | None, new_docs: Sequence[Document], gone: Sequence[dict], items,
               vectors: dict[str, np.ndarray], rebuild: bool, stamps: dict[str, FileStamp] | None,
               drop_cache: str | None, pages: dict[str, Validators] | None) -> None:
        """Hand a store that writes per document (PostgreSQL) one change per document, then the manifest."""
        chunks: dict[str, list[StoredChunk]] = {}
        for doc, c, text, h in items:
            chunks.setdefault(doc.id, []).append(StoredChunk(None, c.id, c.ordinal, c.start, c.end, c.text, h,
                                                             index_terms(text, doc.lang), vectors[h]))
        replaced = {d["key"]: d["id"] for d in gone}
        changes = [DocumentChange(replaced.pop(doc.key, None), doc, chunks.get(doc.id, ())) for doc in new_docs]
        changes += [DocumentChange(doc_id, None) for doc_id in replaced.values()]
        new_manifest = self._new_manifest(manifest, self._dim(manifest), (manifest.generation if manifest else 0) + 1,
                                          bool(items))
        store.apply(changes, new_manifest, reader=self.reader, stamps=stamps or {}, pages=pages or {},
                    page_reader=self.page_reader, forget_keys=[d["key"] for d in gone], forget_all=rebuild,
                    drop_cache=drop_cache, inside=lambda: crash_point("in-transaction"),
                    committed=lambda: crash_point("document-committed"), packing=lambda: crash_point("packing"),
                    batch=self.config.pg_bulk_batch)
        crash_point("committed")

    def _new_manifest(self, manifest: Manifest | None, dim: int, generation: int, encoded: bool,
                      checksums: str = "") -> Manifest:
        """The manifest a build commits: its settings, and the recipe and prompts of its vectors (the
        current ones once anything was encoded, else the index's: a removal encodes nothing)."""
        cfg = self.config
        keep = manifest is not None and not encoded
        recipe = manifest.encoder_recipe if keep else encoder_recipe(self.encoder)
        prompts = {"query": manifest.query_prompt, "passage": manifest.passage_prompt} if keep \
            else self.embedder.prompts
        return Manifest(FORMAT_VERSION, self.model, dim, cfg.chunk_tokens, cfg.chunk_overlap, cfg.title_tokens,
                        generation, layout.now_iso(), self.encoder.value, recipe,
                        query_prompt=prompts.get("query", ""), passage_prompt=prompts.get("passage", ""),
                        checksums=checksums)

    def _previous(self, store: Store, manifest: Manifest | None, dim: int, rebuild: bool,
                  gen_ok: bool) -> tuple[VectorIndex, list, term_table.TermTable | None]:
        """The vectors, BM25 rows and numbered terms the next generation starts from."""
        limit = self.config.exact_search_limit
        if rebuild:
            return VectorIndex(dim, exact_limit=limit), [], None
        if manifest is not None and gen_ok:
            vindex = layout.load_vectors(store.folder, manifest, limit)
            rows, table = store.lexical_rows(layout.lexical_path(store.folder, manifest.generation))
            return vindex, rows, table
        # search files lost: rebuild them from SQLite and the cache
        hashes = store.chunk_hashes()
        cached = store.cached_vectors(self.cache_key, [h for _, h in hashes], dim)
        missing = [h for _, h in hashes if h not in cached]
        if missing:
            raise IndexCorrupt(f"{store.folder}/: search files are missing and {len(missing)} chunk vectors are not "
                               f"in the cache", Remedy.REBUILD, str(store.folder))
        vindex = VectorIndex(dim, exact_limit=limit)
        if hashes:
            vindex.add(np.array([r for r, _ in hashes], dtype=np.int64), np.vstack([cached[h] for _, h in hashes]))
        return vindex, store.lexical_rows()[0], None

    def _dim(self, manifest: Manifest | None) -> int:
        if manifest is not None and manifest.model == self.model:
            return manifest.dimensions
        return self.embedder.dim
