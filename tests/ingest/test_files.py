"""Which files a document key comes from, when file names may hold '#'."""

from pathlib import Path

from rag.ingest.files import key_files, key_under


def test_every_cut_at_a_hash_is_a_candidate_file():
    assert key_files("/x/notes#1.txt") == ["/x/notes#1.txt", "/x/notes"]
    assert key_files("/x/set.jsonl#7") == ["/x/set.jsonl#7", "/x/set.jsonl"]


def test_a_key_is_under_its_file_or_its_folders_only():
    x, a, notes = Path("/x"), Path("/x/a"), Path("/x/notes#1.txt")
    assert key_under("/x/notes#1.txt", {notes}, [])
    assert key_under("/x/set.jsonl#7", {Path("/x/set.jsonl")}, [])
    assert key_under("/x/a#b/c.txt", set(), [x])
    assert not key_under("/x/a#b/c.txt", set(), [a])  # folder a#b is not folder a
    assert not key_under("/x/notes#1.txt", {Path("/x/notes#2.txt")}, [a])
