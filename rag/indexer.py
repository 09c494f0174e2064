"""Indexing: load, chunk, embed (through the cache) and store, incrementally and atomically.

Incremental: a file whose size, modification and change times and inode are those recorded
when it was last read is not read again (:class:`rag.files.FileStamp`, which says what that
misses); a file read is compared by the hash of its text, so only changed text is chunked and
only text never seen is encoded. ``rebuild`` reads every file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from .changes import BuildReport, compare, orphans
from .config import Config
from .embedding import Embedder, Encoder, cache_key, canonical_model_name, encoder_recipe, get_embedder, stale_recipe
from .fetch import Fetcher, Validators, is_address
from .files import FileStamp, key_files
from .loading import LoadResult, load_paths, loader_version
from .ocr import OcrSettings, ocr_settings
from .schema import Chunk, Document
from .store import FORMAT_VERSION, IndexCorrupt, IndexError_, IndexMismatch, Manifest, Store, now_iso
from .web import entries_for, entry_of_key, fetcher_for, load_pages, web_version

if TYPE_CHECKING:
    from .vectors import VectorIndex

log = logging.getLogger(__name__)
# what the BM25 index needs of each stored chunk: id, terms, document, language
_LEXICAL_ROWS = "SELECT c.rowid, c.terms, c.doc_id, d.lang FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid"
ENCODE_STEP = 256  # chunks encoded (and cached) per step: a crash loses at most one step


CRASH_POINTS = ("encoded", "written", "in-transaction", "committed")


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: ``RAG_CRASH_AT=name`` kills the process (SIGKILL) here."""
    if os.environ.get("RAG_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def embed_text(title: str, chunk_text: str) -> str:
    """What is embedded and BM25-indexed for a chunk: its document's title, then its text."""
    return f"{title}\n{chunk_text}" if title else chunk_text


def text_hash(text: str) -> str:
    """Cache key of an embedded text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    An index keeps the encoder (``onnx-int8`` or ``torch``) it was first built with; the
    configured ``encoder`` applies to new indexes and to ``rebuild``. Setting it explicitly
    (``RAG_ENCODER``, ``rag.toml``) to another encoder than the index's is an error. An index
    whose vectors an earlier int8 export made (:func:`rag.embedding.encoder_recipe`) has all of
    its documents encoded again, from their stored text, by its next build: vectors of two
    recipes never share an index.
    """

    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self._embedder = embedder
        self.model = canonical_model_name(config.model)
        self.encoder = Encoder(embedder.encoder if embedder is not None else config.encoder)

    @property
    def cache_key(self) -> str:
        """The name this model and encoder's vectors are cached under."""
        return cache_key(self.model, self.encoder)

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (an unchanged rebuild never loads it)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.config.model, self.config.batch_size, self.encoder,
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
        except IndexError_:
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
    def _check_manifest(self, store: Store, rebuild: bool) -> Manifest | None:
        if rebuild:
            try:
                return store.manifest()
            except IndexCorrupt:  # starting over: a damaged manifest does not matter
                return None
        manifest = store.manifest()
        if manifest is None:
            return manifest
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatch(f"{store.folder}/ has index format {manifest.format_version}, this version reads "
                                f"{FORMAT_VERSION}; rebuild it: rag index build --rebuild --index {store.folder}")
        wanted = (self.model, self.config.chunk_tokens, self.config.chunk_overlap, self.config.title_tokens)
        have = (manifest.model, manifest.chunk_tokens, manifest.chunk_overlap, manifest.title_tokens)
        if wanted != have:
            raise IndexMismatch(
                f"{store.folder}/ was built with model={have[0]} chunk_tokens={have[1]} chunk_overlap={have[2]} "
                f"title_tokens={have[3]}, but the configuration says model={wanted[0]} chunk_tokens={wanted[1]} "
                f"chunk_overlap={wanted[2]} title_tokens={wanted[3]}; rebuild with: "
                f"rag index build --rebuild --index {store.folder} (or set RAG_MODEL={have[0]})")
        self._follow_encoder(store, manifest)
        return manifest

    def _follow_encoder(self, store: Store, manifest: Manifest) -> None:
        """Use the index's encoder, unless the configuration explicitly asks for another one."""
        try:
            have = Encoder(manifest.encoder)
        except ValueError:
            raise IndexMismatch(f"{store.folder}/ was built with encoder={manifest.encoder}, which this version does "
                                f"not know; rebuild with: rag index build --rebuild --index {store.folder}") from None
        if have is self.encoder:
            return
        asked = self.config.sources.get("encoder") or ("the given embedder" if self._embedder is not None else None)
        if asked:
            raise IndexMismatch(
                f"{store.folder}/ was built with encoder={have.value}, but {asked} says encoder={self.encoder.value}; "
                f"rebuild with: rag index build --rebuild --index {store.folder} (or set RAG_ENCODER={have.value})")
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
        gen_ok = manifest is not None and store.gen_dir(manifest.generation).is_dir()
        if report.changed or not gen_ok or rebuild:
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
        from .chunking import Chunker  # here: a build with nothing to chunk does not import langchain

        emb = self.embedder
        chunker = Chunker(emb.count_tokens, self.config.chunk_tokens, self.config.chunk_overlap,
                          spans=getattr(emb, "token_spans", None))
        budget = self.config.chunk_tokens + self.config.title_tokens + 1
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
            vecs = emb.encode([texts[h] for h in step])
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
        """Write the next generation and switch to it in one transaction (which also drops the cached
        vectors of ``drop_cache``, a cache key that will never be read again)."""
        from . import term_table
        from .lexical import LexicalIndex, index_terms  # imported when a generation is written (bm25s, FAISS)
        from .vectors import VectorIndex

        dim = self._dim(manifest)
        gen = max([manifest.generation if manifest else 0, *self._gen_numbers(store)]) + 1
        gone_ids = [d["id"] for d in gone]
        all_gone = store.rowids_of_docs(gone_ids)
        # vectors: previous generation minus what goes, plus what comes
        if manifest is not None and gen_ok and not rebuild:
            vindex = VectorIndex.load(store.gen_dir(manifest.generation) / "vectors.faiss",
                                     self.config.exact_search_limit)
            if vindex.dim != dim:
                raise IndexCorrupt(f"{store.gen_dir(manifest.generation)}/vectors.faiss has dimension {vindex.dim}, "
                                   f"manifest says {dim}")
            vindex.remove(all_gone)
            kept_rows, table = term_table.rows_and_table(store.db, _LEXICAL_ROWS,
                                                         store.gen_dir(manifest.generation) / "lexical")
        elif rebuild:
            vindex, kept_rows, table = VectorIndex(dim, exact_limit=self.config.exact_search_limit), [], None
        else:  # search files lost: rebuild them from SQLite and the cache
            (vindex, kept_rows), table = self._vectors_from_rows(store, dim), None
        gone_set = set(all_gone.tolist())
        kept = np.array([row[0] not in gone_set for row in kept_rows], dtype=bool)
        kept_rows = [row for row, k in zip(kept_rows, kept.tolist()) if k]
        next_id = int(store.db.execute("SELECT COALESCE(MAX(rowid), 0) FROM chunks").fetchone()[0]) + 1
        rows, new_ids, new_vecs, new_terms = [], [], [], []
        for offset, (doc, c, text, h) in enumerate(items):
            rowid = next_id + offset
            new_terms.append(index_terms(text, doc.lang))
            rows.append((rowid, c.id, c.doc_id, c.ordinal, c.start, c.end, c.text, h, " ".join(new_terms[-1])))
            new_ids.append(rowid)
            new_vecs.append(vectors[h])
        if new_ids:
            vindex.add(np.array(new_ids, dtype=np.int64), np.vstack(new_vecs))
        all_rows = kept_rows + [(r[0], None, r[2], doc.lang) for r, (doc, *_) in zip(rows, items)]
        table = (term_table.keep(table, kept) if table is not None  # numbered by the previous generation
                 else term_table.table_of([r[1].split() for r in kept_rows]))
        lexical = LexicalIndex().build([r[0] for r in all_rows], term_table.extend(table, new_terms),
                                       [r[2] for r in all_rows], [r[3] for r in all_rows])
        tmp = store.folder / f"gen-{gen:06d}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        vindex.save(tmp / "vectors.faiss")
        lexical.save(tmp / "lexical")
        _fsync_tree(tmp)
        os.replace(tmp, store.gen_dir(gen))
        crash_point("written")
        # the vectors' recipe: the current one once anything was encoded, else the index's (a removal encodes nothing)
        recipe = manifest.encoder_recipe if manifest is not None and not items else encoder_recipe(self.encoder)
        new_manifest = Manifest(FORMAT_VERSION, self.model, dim, self.config.chunk_tokens, self.config.chunk_overlap,
                                self.config.title_tokens, gen, now_iso(), self.encoder.value, recipe)
        counts: dict[str, int] = {}
        for _, c, _, _ in items:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        with store.transaction() as db:
            if rebuild:
                db.execute("DELETE FROM chunks")
                db.execute("DELETE FROM documents")
            store.forget_files(None if rebuild else (f for d in gone for f in key_files(d["key"])))
            store.record_files(stamps or {}, self.reader)
            store.forget_pages(None if rebuild else (d["key"] for d in gone))
            store.record_pages(pages or {}, self.page_reader)
            for i in range(0, len(gone_ids), 500):
                part = gone_ids[i:i + 500]
                marks = ",".join("?" * len(part))
                db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", part)
                db.execute(f"DELETE FROM documents WHERE id IN ({marks})", part)
            stamp = now_iso()
            db.executemany(
                "INSERT INTO documents(id, key, source, title, lang, sha256, text, meta, chunks, indexed, date, "
                "date_source, url, author) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(d.id, d.key, d.source, d.title, d.lang, d.sha256, d.text, _json(d.meta), counts.get(d.id, 0), stamp,
                  d.date, d.date_source, d.url, d.author) for d in new_docs])
            db.executemany('INSERT INTO chunks(rowid, id, doc_id, ordinal, start, "end", text, hash, terms) '
                           "VALUES (?,?,?,?,?,?,?,?,?)", rows)
            crash_point("in-transaction")
            if drop_cache:
                db.execute("DELETE FROM embedding_cache WHERE model=?", (drop_cache,))
            db.execute("DELETE FROM manifest")
            db.executemany("INSERT INTO manifest(key, value) VALUES (?,?)", new_manifest.to_rows().items())
        crash_point("committed")
        store.remove_stale_generations({gen, gen - 1})

    def _dim(self, manifest: Manifest | None) -> int:
        if manifest is not None and manifest.model == self.model:
            return manifest.dimensions
        return self.embedder.dim

    @staticmethod
    def _gen_numbers(store: Store) -> list[int]:
        nums = []
        for p in store.folder.glob("gen-*"):
            try:
                nums.append(int(p.name.removesuffix(".tmp").split("-", 1)[1]))
            except ValueError:
                pass
        return nums

    def _vectors_from_rows(self, store: Store, dim: int) -> tuple[VectorIndex, list[tuple[int, str, str, str]]]:
        from .vectors import VectorIndex

        rows = store.db.execute(_LEXICAL_ROWS.replace("c.terms", "c.hash, c.terms")).fetchall()
        cached = store.cached_vectors(self.cache_key, [h for _, h, *_ in rows], dim)
        missing = [h for _, h, *_ in rows if h not in cached]
        if missing:
            raise IndexCorrupt(f"{store.folder}/: search files are missing and {len(missing)} chunk vectors are not "
                               f"in the cache; rebuild: rag index build --rebuild --index {store.folder} PATH ...")
        vindex = VectorIndex(dim, exact_limit=self.config.exact_search_limit)
        if rows:
            vindex.add(np.array([r for r, *_ in rows], dtype=np.int64), np.vstack([cached[h] for _, h, *_ in rows]))
        return vindex, [(r, t, d, lang) for r, _, t, d, lang in rows]


def _json(obj: object) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
