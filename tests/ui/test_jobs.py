"""Index updates from the web chat: run in the background, searchable as soon as they commit."""

from __future__ import annotations

import shutil

import pytest

from rag.indexing import Indexer
from rag.retrieval import Retriever
from rag.store import Store
from tests.conftest import ARTICLE_FR_2, SEEDS
from ui.jobs import IndexJobs, JobState


@pytest.fixture
def seeded(config, embedder, tmp_path):
    """An index of the seeds, a retriever on it, and a job queue sharing the model."""
    Indexer(config, embedder=embedder).build([SEEDS], progress=False)
    folder = tmp_path / "uploads"
    folder.mkdir()
    return Retriever(config, embedder=embedder), IndexJobs(config, folder, embedder_factory=lambda: embedder), folder


def test_an_added_file_is_searchable_once_its_job_commits(seeded):
    retriever, jobs, folder = seeded
    assert all("contrôleurs" not in h.text for h in retriever.search("grève des contrôleurs aériens à Nantes", 3))
    path = folder / "greve.txt"
    path.write_text(ARTICLE_FR_2, encoding="utf-8")
    seen = []
    job = jobs.add([path])
    while not job.finished.wait(0.05):
        seen.append(job.state)
    assert job.state is JobState.DONE, job.error
    assert job.report.added and job.report.chunks_new >= 1 and job.done == job.total >= 1
    hits = retriever.search("grève des contrôleurs aériens à Nantes", 3)  # same retriever: reloads by itself
    assert hits[0].source.endswith("greve.txt")


@pytest.mark.parametrize("name", ["greve.txt", "greve #2.txt"])
def test_a_removed_upload_leaves_the_index_and_the_upload_folder(seeded, name):
    retriever, jobs, folder = seeded
    path = folder / name
    path.write_text(ARTICLE_FR_2, encoding="utf-8")
    assert jobs.add([path]).finished.wait(60)
    store = Store(retriever.store.folder)
    doc = next(d for d in store.documents() if d["source"].endswith(name))
    job = jobs.remove([doc["id"]], [name])
    assert job.finished.wait(60) and job.state is JobState.DONE, job.error
    assert not any(d["source"].endswith(name) for d in store.documents())
    assert not path.exists()
    assert all(not h.source.endswith(name) for h in retriever.search("grève des contrôleurs aériens", 3))


def test_a_file_the_loader_cannot_read_is_reported_and_not_kept(seeded):
    retriever, jobs, folder = seeded
    path = folder / "scan.pdf"
    path.write_bytes(b"%PDF-1.4 not really a pdf")
    job = jobs.add([path])
    assert job.finished.wait(60) and job.state is JobState.DONE, job.error
    assert [s.path.endswith("scan.pdf") for s in job.report.skipped] == [True]
    assert not path.exists()


def test_a_failing_job_reports_its_error_and_the_queue_keeps_working(seeded, tmp_path):
    retriever, jobs, folder = seeded
    job = jobs.add([folder / "vanished.txt"])  # deleted before its turn: the loader names it
    assert job.finished.wait(60) and job.state is JobState.FAILED and "vanished.txt" in job.error
    path = folder / "greve.txt"
    shutil.copy(SEEDS / next(p.name for p in SEEDS.iterdir()), path)
    assert jobs.add([path]).finished.wait(60)
    assert any(d["source"].endswith("greve.txt") for d in Store(retriever.store.folder).documents())


def test_an_upload_of_one_sentence_repeated_is_indexed_kept_and_a_later_build_of_the_folder_works(
        seeded, config, embedder):
    retriever, jobs, folder = seeded
    repeated = folder / "repeated.txt"  # the same sentence 100 times: chunk offsets come from the split itself
    repeated.write_text("\n\n".join(["Le ministre a rencontre les delegues a Mascate pour des discussions."] * 100),
                        encoding="utf-8")
    job = jobs.add([repeated])
    assert job.finished.wait(120) and job.state is JobState.DONE, job.error
    assert repeated.exists() and not job.dropped and job.report.added
    report = Indexer(config, embedder=embedder).build([folder], progress=False)  # `rag index build uploads/`
    assert not report.skipped


def test_a_jsonl_upload_with_some_bad_records_is_kept_with_its_good_ones(seeded):
    retriever, jobs, folder = seeded
    path = folder / "lot.jsonl"
    path.write_text('{"title": "Bon", "text": "Le port de Brest accueille un nouveau remorqueur."}\n'
                    "{not json\n", encoding="utf-8")
    job = jobs.add([path])
    assert job.finished.wait(60) and job.state is JobState.DONE, job.error
    assert path.exists() and not job.dropped and [s.path.endswith(":2") for s in job.report.skipped] == [True]
    assert Store(retriever.store.folder).has_documents_from(path.resolve())
