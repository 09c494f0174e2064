"""The upload notes of a page: every update it started, with its progress or outcome."""

from __future__ import annotations

from rag.indexing import BuildReport
from ui.jobs import Job, JobState
from ui.notes import NoteBoard, file_names


def running(job_id: int, name: str, done: int = 0, total: int = 0) -> Job:
    state = JobState.ENCODING if total else JobState.QUEUED
    return Job(job_id, "add", [name], [f"/up/{name}"], state=state, done=done, total=total)


def finish(job: Job, report: BuildReport) -> None:
    job.report, job.state = report, JobState.DONE
    job.finished.set()


def test_upload_notes_name_files_and_not_records():
    sources = ["/up/notes#1.txt", "/up/set.jsonl#12", "/up/set.jsonl#13", "/up/piaf.json#3-1"]
    assert file_names(sources) == "notes#1.txt, set.jsonl, piaf.json"


def test_an_update_started_while_another_runs_keeps_the_first_ones_outcome_in_view():
    board = NoteBoard()
    first, second = running(1, "conseil.md", 30, 300), running(2, "concarneau.md")
    board.start("tab", ["conseil.md a été enregistré sous conseil-1.md"], first)
    board.start("tab", [], second)
    shown = board.html("tab", "en")
    assert "conseil-1.md" in shown and "30/300" in shown and "concarneau.md" in shown and "rag-busy" in shown
    finish(first, BuildReport(added=["/up/conseil.md"], chunks_new=300))
    shown = board.html("tab", "en")
    assert "conseil.md" in shown and "300" in shown and "concarneau.md" in shown and "rag-busy" in shown
    finish(second, BuildReport(added=["/up/concarneau.md"], chunks_new=1))
    shown = board.html("tab", "en")
    assert shown.index("conseil.md") < shown.index("concarneau.md") and "rag-busy" not in shown


def test_a_page_starts_afresh_once_its_updates_are_over():
    board = NoteBoard()
    first = running(1, "a.md")
    board.start("tab", [], first)
    finish(first, BuildReport(added=["/up/a.md"], chunks_new=1))
    board.start("tab", [], running(2, "b.md"))
    shown = board.html("tab", "en")
    assert "b.md" in shown and "a.md" not in shown


def test_a_page_sees_only_its_own_updates():
    board = NoteBoard()
    board.start("mine", [], running(1, "mine.md"))
    board.start("theirs", [], running(2, "theirs.md"))
    assert "theirs.md" not in board.html("mine", "en") and "mine.md" in board.html("mine", "en")
    assert board.html("nobody", "en") == ""


def test_notes_are_escaped_and_bounded():
    board = NoteBoard(pages=2, per_page=3)
    board.start("tab", ['<img src=x onerror="alert(1)">'], running(1, "<b>x</b>.md"))
    shown = board.html("tab", "en")
    assert "<img" not in shown and "<b>" not in shown and "&lt;img" in shown
    for n in range(2, 8):
        board.start("tab", [f"note {n}"], running(n, f"f{n}.md"))
    assert board.html("tab", "en").count("<li>") == 3 * 2  # three updates kept, a note and a progress line each
    board.start("other", [], running(9, "o.md"))
    board.start("third", [], running(10, "t.md"))
    assert board.html("tab", "en") == ""  # the least recently updated page is forgotten
