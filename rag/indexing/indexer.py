"""Indexing: load, chunk, embed (through the cache) and store, incrementally and atomically.

Incremental: a file whose size, modification and change times and inode are those recorded
when it was last read is not read again (:class:`rag.files.FileStamp`, which says what that
misses); a file read is compared by the hash of its text, so only changed text is chunked and
only text never seen is encoded. ``rebuild`` reads every file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

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
from ..errors import IndexCorrupt, IndexMismatch, IndexProblem, Remedy
from ..ingest.fetch import Fetcher, Validators, is_address
from ..ingest.files import FileStamp
from ..ingest.loading import LoadResult, load_paths, loader_version
from ..ingest.ocr import OcrSettings, ocr_settings
from ..ingest.web import entries_for, entry_of_key, fetcher_for, load_pages, web_version
from ..schema import Chunk, Document
from ..search import term_table
from ..search.lexical import LexicalIndex
from ..search.vectors import VectorIndex
from ..store import layout
from ..store.layout import FORMAT_VERSION, BuildSettings, Manifest
from ..store.sqlite import ChunkRow, Commit, Store
from ..text.analysis import index_terms
from ..text.normalize import text_hash
from .changes import BuildReport, compare, orphans
from .chunking import Chunker

log = logging.getLogger(__name__)
ENCODE_STEP = 256  # chunks encoded (and cached) per step: a crash loses at most one step


CRASH_POINTS = ("encoded", "written", "in-transaction", "committed")


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: ``RAG_CRASH_AT=name`` kills the process (SIGKILL) here."""
    if os.environ.get("RAG_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def embed_text(title: str, chunk_text: str) -> str:
    """What is embedded and BM25-indexed for a chunk: its document's title, then its text."""
    return f"{title}\n{chunk_text}" if title else chunk_text


class Indexer:
    """Builds and updates an index folder.

    Parameters
    ----------
    config : Config
        Model, chunking and limits.
    embedder : Embedder, optional
        Reuse a loaded model; otherwise one is loaded when something must be chunked.

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

    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self._embedder = embedder
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
        return self._embedder

    @property
    def reader(self) -> str:
        """What file stamps are recorded under: the loader's code and the settings it reads with."""
        ocr = self.ocr
        read = f"ocr={ocr.lang}/{ocr.max_pages}/{ocr.max_seconds:g}" if ocr else "ocr=off"
        cfg = self.config
        return f"{loader_version()} max_file_mb={cfg.max_file_mb} default_lang={cfg.default_lang} {read}"

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
              progress: bool = True, on_progress: Callable[[int, int], None] | None = None) -> BuildReport:
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

        Returns
        -------
        BuildReport
        """
        given = [str(p) if is_address(str(p)) else Path(p) for p in paths]
        addresses = [p for p in given if isinstance(p, str)]
        paths = [p for p in given if isinstance(p, Path)]
        t0 = time.perf_counter()
        known, pages = ({}, {}) if rebuild else self._known(index_dir)
        loaded = load_paths(paths, self.config.max_file_mb, self.config.default_lang, known, self.ocr)
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

    def _known(self, index_dir: str | os.PathLike | None) -> tuple[dict[str, FileStamp], dict[str, Validators]]:
        """Stamps of the files and validators of the pages indexed so far (none for a missing or damaged
        index: the build says what)."""
        try:
            store = Store(index_dir or self.config.index_dir)
        except IndexProblem:
            return {}, {}
        try:
            stamps = {path: FileStamp(*stamp) for path, stamp in store.file_stamps(self.reader).items()}
            return stamps, store.page_validators(self.page_reader)
        finally:
            store.close()

    def _run(self, index_dir, wait: float, t0: float, loaded: LoadResult, roots: Sequence[Path], rebuild: bool,
             prune: bool, progress: bool, on_progress: Callable[[int, int], None] | None = None) -> BuildReport:
        store = Store(index_dir or self.config.index_dir, create=True)
        with store.build_lock(wait):
            report = self._build_locked(store, loaded, roots, rebuild, prune, progress, on_progress)
        report.seconds = time.perf_counter() - t0
        return report

    def remove(self, names: Sequence[str], index_dir: str | os.PathLike | None = None, wait: float = 0.0) -> BuildReport:
        """Remove documents by id, source, folder prefix or title."""
        store = Store(index_dir or self.config.index_dir)
        with store.build_lock(wait):
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
            loaded.add(load_paths(lost, self.config.max_file_mb, self.config.default_lang, ocr=self.ocr), lost)
        lost_pages = [k for k in loaded.unchanged_keys if k not in existing]
        if lost_pages:  # likewise for pages found unchanged: fetched again, unconditionally
            loaded.add(load_pages([entry_of_key(k) for k in lost_pages], self.fetcher, {}, self.config.default_lang,
                                  self.ocr), lost_pages)
        report = BuildReport(skipped=loaded.skipped, files_read=loaded.files_read,
                             unchanged_files=len(loaded.unchanged_files), warnings=loaded.warnings,
                             pages_fetched=loaded.pages_fetched, pages_unchanged=len(loaded.unchanged_keys))
        changes = compare(loaded, existing, [r.resolve() for r in roots], rebuild, prune, report)
        # vectors of an earlier int8 export: all encoded again (or, with rebuild, anew), its cache dropped on commit
        stale = (manifest is not None and manifest.encoder == self.encoder.value
                 and stale_recipe(manifest.encoder, manifest.encoder_recipe))
        old_key = cache_key(manifest.model, manifest.encoder, manifest.encoder_recipe) if stale else None
        if stale and not rebuild:
            self._encode_again(store, existing, changes, report, manifest)
        gen_ok = layout.has_search_files(store.folder, manifest)
        if report.changed or not gen_ok or rebuild:
            if manifest is not None and not rebuild and changes.new_docs:  # new vectors beside the index's
                layout.check_prompts(manifest, self.embedder.prompts, self.model, str(store.folder))
            chunks, vectors = self._embed(store, changes.new_docs, report, progress, on_progress)
            self._commit(store, manifest if not rebuild else None, changes.new_docs, changes.gone,
                         chunks, vectors, report, rebuild=rebuild, gen_ok=gen_ok, stamps=loaded.stamps,
                         drop_cache=old_key, pages=loaded.pages)
        elif loaded.stamps or loaded.pages:  # files read again (touched, or not stamped before), pages sent
            with store.transaction():        # again: found unchanged
                store.record_files(loaded.stamps, self.reader)
                store.record_pages(loaded.pages, self.page_reader)
        report.chunks_total = store.counts()[1]
        current = store.manifest()
        report.generation = current.generation if current else 0
        return report

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

    def chunk(self, docs: Sequence[Document]) -> list[tuple[Document, Chunk, str]]:
        """Each chunk of ``docs`` with its document and the text that is embedded for it (:func:`embed_text`)."""
        emb = self.embedder
        chunker = Chunker(emb.count_tokens, self.config.chunk_tokens, self.config.chunk_overlap,
                          spans=getattr(emb, "token_spans", None))
        budget = self.config.chunk_tokens + self.config.title_tokens + 1 + emb.count_tokens(emb.prompt(PASSAGE))
        if budget > emb.max_tokens - 2:
            raise IndexMismatch(f"chunk_tokens + title_tokens = {budget} exceeds the model's limit "
                                f"{emb.max_tokens - 2}; lower chunk_tokens")
        out = []
        for doc, chunks in zip(docs, chunker.run_all(docs)):
            title = emb.clip(doc.title, self.config.title_tokens)
            out.extend((doc, c, embed_text(title, c.text)) for c in chunks)
        return out

    def _embed(self, store: Store, docs: Sequence[Document], report: BuildReport, progress: bool,
               on_progress) -> tuple[list[tuple[Document, Chunk, str, str]], dict[str, np.ndarray]]:
        if not docs:
            return [], {}
        emb = self.embedder
        items = [(doc, c, text, text_hash(text)) for doc, c, text in self.chunk(docs)]
        report.chunks_new = len(items)
        hashes = list(dict.fromkeys(h for *_, h in items))
        vectors = store.cached_vectors(self.cache_key, hashes, emb.dim)
        texts = {h: t for _, _, t, h in items}
        # longest first, as the encoders batch within a call: steps of similar lengths pad little
        todo = sorted((h for h in hashes if h not in vectors), key=lambda h: -len(texts[h]))
        report.cached = len(items) - sum(1 for *_, h in items if h not in vectors)
        t0 = time.perf_counter()
        bar = tqdm(total=len(todo), desc="encoding", unit="chunk", disable=not progress or not todo)
        for i in range(0, len(todo), ENCODE_STEP):
            step = todo[i:i + ENCODE_STEP]
            vecs = emb.encode([texts[h] for h in step], prompt=PASSAGE)
            store.cache_vectors(self.cache_key, zip(step, vecs))
            vectors.update(zip(step, vecs))
            crash_point("encoded")
            bar.update(len(step))
            if on_progress:
                on_progress(min(i + ENCODE_STEP, len(todo)), len(todo))
        bar.close()
        report.encoded = len(items) - report.cached
        report.encode_seconds = time.perf_counter() - t0
        return items, vectors

    def _commit(self, store: Store, manifest: Manifest | None, new_docs: Sequence[Document],
                gone: Sequence[dict], items, vectors: dict[str, np.ndarray], report: BuildReport,
                rebuild: bool = False, gen_ok: bool = True, stamps: dict[str, FileStamp] | None = None,
                drop_cache: str | None = None, pages: dict[str, Validators] | None = None) -> None:
        """Write the next generation's search files, then switch to it in one transaction (which also
        drops the cached vectors of ``drop_cache``, a cache key that will never be read again)."""
        dim = self._dim(manifest)
        gen = layout.next_generation(store.folder, manifest)
        gone_rows = store.rowids_of_docs([d["id"] for d in gone])
        vindex, kept_rows, table = self._previous(store, manifest, dim, rebuild, gen_ok)
        vindex.remove(gone_rows)
        kept = ~np.isin(np.array([r.rowid for r in kept_rows], dtype=np.int64), gone_rows)
        kept_rows = [row for row, k in zip(kept_rows, kept.tolist()) if k]
        next_id = store.next_rowid()
        rows, new_terms = [], []
        for rowid, (doc, c, text, h) in enumerate(items, next_id):
            new_terms.append(index_terms(text, doc.lang))
            rows.append(ChunkRow(rowid, c.id, c.doc_id, c.ordinal, c.start, c.end, c.text, h, " ".join(new_terms[-1])))
        if rows:
            vindex.add(np.array([r.rowid for r in rows], dtype=np.int64), np.vstack([vectors[r.hash] for r in rows]))
        table = (term_table.keep(table, kept) if table is not None  # numbered by the previous generation
                 else term_table.table_of([r.terms.split() for r in kept_rows]))
        lexical = LexicalIndex().build([r.rowid for r in kept_rows] + [r.rowid for r in rows],
                                       term_table.extend(table, new_terms),
                                       [r.doc_id for r in kept_rows] + [r.doc_id for r in rows],
                                       [r.lang for r in kept_rows] + [doc.lang for doc, *_ in items])
        layout.write_generation(store.folder, gen, vindex, lexical)
        crash_point("written")
        # the vectors' recipe: the current one once anything was encoded, else the index's (a removal encodes nothing)
        recipe = manifest.encoder_recipe if manifest is not None and not items else encoder_recipe(self.encoder)
        cfg = self.config
        prompts = self.embedder.prompts if items or manifest is None else {
            "query": manifest.query_prompt, "passage": manifest.passage_prompt}
        new_manifest = Manifest(FORMAT_VERSION, self.model, dim, cfg.chunk_tokens, cfg.chunk_overlap,
                                cfg.title_tokens, gen, layout.now_iso(), self.encoder.value, recipe,
                                prompts.get("query", ""), prompts.get("passage", ""))
        store.commit(Commit(new_manifest, new_docs, rows, [d["id"] for d in gone], [d["key"] for d in gone],
                            stamps or {}, self.reader, rebuild, drop_cache, pages or {}, self.page_reader),
                     inside=lambda: crash_point("in-transaction"))
        crash_point("committed")
        layout.remove_stale_generations(store.folder, {gen, gen - 1})

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
