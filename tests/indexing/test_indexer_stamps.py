"""Rebuilds pass over files whose size, times and inode are unchanged, and still see every change."""

import os
import time

from rag.indexing import Indexer
from rag.retrieval import Retriever
from rag.store import Store

HOUR_NS = 3600 * 10**9


def _age(*paths, hours: float = 1.0) -> None:
    """Set the files' modification time in the past, as for articles saved a while ago."""
    then = time.time_ns() - int(hours * HOUR_NS)
    for path in paths:
        os.utime(path, ns=(then, then))


def _built(config, corpus, embedder) -> Indexer:
    files = list(corpus.iterdir())
    _age(*files)
    indexer = Indexer(config, embedder)
    first = indexer.build([corpus], progress=False)
    assert (first.files_read, first.unchanged_files, len(first.added)) == (len(files), 0, len(files))
    return indexer


def test_unchanged_files_are_not_read_again(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    again = indexer.build([corpus], progress=False)
    assert (again.files_read, again.unchanged_files) == (0, 3)
    assert sorted(s.rsplit("/", 1)[1] for s in again.unchanged) == ["pont.txt", "seed.txt", "solar.md"]
    assert not again.changed and again.encoded == 0
    assert "(3 files not read again)" in again.summary()


def test_a_touched_but_identical_file_is_read_and_unchanged(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    generation = Store(config.index_dir).manifest().generation
    os.utime(corpus / "pont.txt")                                   # touch: same text, new time
    report = indexer.build([corpus], progress=False)
    assert (report.files_read, report.unchanged_files) == (1, 2)
    assert len(report.unchanged) == 3 and not report.changed and report.encoded == 0
    assert report.generation == generation


def test_a_file_read_again_and_unchanged_is_passed_over_next_time(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    _age(corpus / "pont.txt", hours=2)          # another time: read once more, then its new stamp is kept
    assert indexer.build([corpus], progress=False).files_read == 1
    assert indexer.build([corpus], progress=False).files_read == 0


def test_a_modified_file_is_reindexed(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    (corpus / "pont.txt").write_text("Un nouveau pont à Lyon\n\nIl mesure 200 mètres.", encoding="utf-8")
    report = indexer.build([corpus], progress=False)
    assert [s.rsplit("/", 1)[1] for s in report.updated] == ["pont.txt"]
    assert (report.files_read, report.unchanged_files, len(report.unchanged)) == (1, 2, 2)
    assert report.encoded >= 1
    assert "200 mètres" in Retriever(config, embedder=embedder).search("pont Lyon", 1)[0].text


def test_a_rewrite_keeping_size_and_modification_time_is_still_seen(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    path = corpus / "pont.txt"
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Lyon", "Lyom"), encoding="utf-8")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))        # the old time put back: ctime moves
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    report = indexer.build([corpus], progress=False)
    assert [s.rsplit("/", 1)[1] for s in report.updated] == ["pont.txt"]


def test_a_removed_file_still_removes_its_documents(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    (corpus / "solar.md").unlink()
    report = indexer.build([corpus], progress=False)
    assert [s.rsplit("/", 1)[1] for s in report.removed] == ["solar.md"]
    assert (report.files_read, report.unchanged_files, len(report.unchanged)) == (0, 2, 2)
    assert Store(config.index_dir).counts()[0] == 2


def test_rebuild_reads_every_file(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    report = indexer.build([corpus], rebuild=True, progress=False)
    assert (report.files_read, report.unchanged_files, len(report.updated)) == (3, 0, 3)
    assert indexer.build([corpus], progress=False).files_read == 0  # the rebuild recorded the stamps again


def test_documents_removed_by_hand_come_back_though_their_file_is_unchanged(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    source = next(d["source"] for d in Store(config.index_dir).documents() if d["source"].endswith("pont.txt"))
    indexer.remove([source])
    report = indexer.build([corpus], progress=False)
    assert report.added == [source] and report.files_read == 1


def test_files_modified_just_before_the_build_are_read_again_next_time(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)           # written just now: their times may not have ticked yet
    report = indexer.build([corpus], progress=False)
    assert (report.files_read, len(report.unchanged), report.encoded) == (3, 3, 0)


def test_other_reading_settings_read_every_file_again(config, corpus, embedder):
    _built(config, corpus, embedder)
    report = Indexer(config.replace(max_file_mb=10.0), embedder).build([corpus], progress=False)
    assert (report.files_read, report.unchanged_files, len(report.unchanged)) == (3, 0, 3)


def test_a_file_with_a_skipped_record_is_read_every_time(config, corpus, embedder):
    feed = corpus / "feed.jsonl"
    feed.write_text('{"title": "Un pont", "text": "Le pont de Lyon mesure 180 mètres."}\n{broken\n', encoding="utf-8")
    indexer = _built(config, corpus, embedder)
    report = indexer.build([corpus], progress=False)
    assert len(report.skipped) == 1 and report.skipped[0].path.endswith("feed.jsonl:2")  # still said each time
    assert (report.files_read, report.unchanged_files) == (1, 3)


def test_an_index_made_before_file_stamps_still_works(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    store = Store(config.index_dir)
    store.db.execute("DROP TABLE files")                    # as indexes made by earlier versions are
    store.close()
    assert Retriever(config, embedder=embedder).search("pont Lyon", 1)[0].source.endswith("pont.txt")
    report = indexer.build([corpus], progress=False)
    assert (report.files_read, report.unchanged_files, len(report.unchanged)) == (3, 0, 3)
    assert not report.changed
    assert indexer.build([corpus], progress=False).files_read == 0


def test_an_unchanged_file_whose_documents_are_missing_is_read_after_all(config, corpus, embedder):
    indexer = _built(config, corpus, embedder)
    store = Store(config.index_dir)
    stamps = store.file_stamps(indexer.reader)
    source = next(d["source"] for d in store.documents() if d["source"].endswith("pont.txt"))
    indexer.remove([source])
    with store.transaction():   # the stamps a build waiting for the lock read before the removal
        store.record_files(stamps, indexer.reader)
    report = indexer.build([corpus], progress=False)
    assert report.added == [source] and (report.files_read, report.unchanged_files) == (1, 2)
