"""Index updates from the web chat, run one at a time in a background thread.

The chat keeps answering from the committed index while a job runs; the retriever picks up
the new generation by itself as soon as the job commits it.
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.config import Config
from rag.errors import RagError
from rag.indexing import BuildReport, Indexer
from rag.indexing.changes import files_of
from rag.ingest.loading import display_path
from rag.store import Store
from rag.store.factory import open_store

log = logging.getLogger(__name__)
LOCK_WAIT_S = 600.0  # a build started from the command line may hold the index for a while


class JobState(str, enum.Enum):
    """Where a job stands."""

    QUEUED = "queued"
    LOADING = "loading"
    ENCODING = "encoding"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    """An index update: add files or remove documents."""

    id: int
    kind: str  # "add" or "remove"
    names: list[str]
    targets: list[str]  # file paths to add, or document ids to remove
    state: JobState = JobState.QUEUED
    done: int = 0
    total: int = 0
    report: BuildReport | None = None
    error: str = ""
    dropped: dict[str, str] = field(default_factory=dict)  # uploaded files not kept (not indexed): name -> why
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def over(self) -> bool:
        """True once the job has committed or failed."""
        return self.state in (JobState.DONE, JobState.FAILED)


class IndexJobs:
    """A queue of index updates and the thread that runs them.

    Parameters
    ----------
    config : Config
        Settings (index folder, model, limits).
    upload_folder : Path
        Where uploads are saved; a removed document's file there is deleted too.
    embedder_factory : callable, optional
        Returns the model used for indexing. By default a model instance of its own, so the
        tokenizer is never shared with the chat's query encoder across threads.
    """

    def __init__(self, config: Config, upload_folder: Path, embedder_factory: Callable | None = None):
        self.config = config
        self.upload_folder = upload_folder
        self._factory = embedder_factory
        self._indexer: Indexer | None = None
        self._store: Store | None = None  # used by the job thread only
        self._queue: queue.Queue[Job] = queue.Queue()
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="rag-index-jobs", daemon=True)
        self._thread.start()

    def add(self, paths: list[Path]) -> Job:
        """Queue the indexing of saved files."""
        job = Job(next(self._ids), "add", [p.name for p in paths], [str(p) for p in paths])
        self._queue.put(job)
        return job

    def add_addresses(self, urls: list[str]) -> Job:
        """Queue the fetching and indexing of web addresses."""
        job = Job(next(self._ids), "add", list(urls), list(urls))
        self._queue.put(job)
        return job

    def remove(self, doc_ids: list[str], names: list[str]) -> Job:
        """Queue the removal of documents by id."""
        job = Job(next(self._ids), "remove", names, list(doc_ids))
        self._queue.put(job)
        return job

    @property
    def busy(self) -> bool:
        """True while a job waits or runs."""
        return self._queue.unfinished_tasks > 0

    def _indexer_for_jobs(self) -> Indexer:
        if self._indexer is None:
            # without a factory, the indexer loads the index's own encoder (onnx-int8 or torch), shared with
            # the chat: its tokenizers are guarded, and questions go through their own one-thread session
            embedder = self._factory() if self._factory is not None else None
            self._indexer = Indexer(self.config, embedder=embedder)
        return self._indexer

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job.state = JobState.LOADING
                if job.kind == "add":
                    self._add(job)
                else:
                    self._remove(job)
                job.state = JobState.DONE
            except Exception as exc:  # the page shows it; the thread lives on
                log.exception("index job %s failed", job.id)
                # the index's own errors say what to do; anything else is named by its kind too
                job.error = str(exc) if isinstance(exc, RagError) and str(exc) else \
                    f"{type(exc).__name__}: {exc}".removesuffix(": ")
                job.state = JobState.FAILED
            finally:
                if job.kind == "add":
                    self._drop_unindexed(job)
                job.finished.set()
                self._queue.task_done()

    def _add(self, job: Job) -> None:
        def progress(done: int, total: int) -> None:
            job.state, job.done, job.total = JobState.ENCODING, done, total

        indexer = self._indexer_for_jobs()
        job.report = indexer.build(job.targets, prune=False, wait=LOCK_WAIT_S, progress=False, on_progress=progress)

    def _drop_unindexed(self, job: Job) -> None:
        """Delete the uploaded files of ``job`` that have no document in the index, saying why.

        A file skipped by the loader, or left out by a failed build, would otherwise stay in the
        upload folder unlisted (nothing in the page to remove it by) and be read again by every
        later build of that folder. A JSONL file of which some records were indexed is kept.
        """
        try:
            store = self._job_store()
            skipped = job.report.skipped if job.report is not None else []
            for target in job.targets:
                path = Path(target)
                if not path.exists() or store.has_documents_from(path.resolve()):
                    continue
                shown = display_path(path)
                reasons = [s.reason for s in skipped if s.path == shown or s.path.startswith(shown + ":")]
                self._delete_upload(path)
                job.dropped[path.name] = "; ".join(dict.fromkeys(reasons)) or job.error or "not indexed"
        except Exception:  # noqa: BLE001 - the job's own outcome is what the page shows
            log.exception("checking the uploads of job %s failed", job.id)

    def _job_store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    def _remove(self, job: Job) -> None:
        store = self._job_store()
        keys = [d["key"] for d in store.documents_by_id(job.targets)]
        job.report = self._indexer_for_jobs().remove(job.targets, wait=LOCK_WAIT_S)
        for f in files_of(keys):  # every file a key may come from (file names may hold '#')
            if not store.has_documents_from(f):
                self._delete_upload(Path(f))

    def _delete_upload(self, path: Path) -> None:
        try:
            path = path.resolve()
            if path.parent == self.upload_folder.resolve() and path.is_file():
                path.unlink()
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc)
