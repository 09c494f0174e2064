"""A folder or a file that cannot be read (chmod 000) is named in a warning or a skip, never passed over in silence.

The tests run as root, who reads a ``chmod 000`` file all the same: the load runs in a forked
child that has dropped to the user ``nobody`` (the interpreter and rag already loaded, so no
file outside the corpus needs reading). Skipped when not root, or without a ``nobody`` user.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import ARTICLE_FR

from rag.indexing.changes import BuildReport, compare
from rag.ingest import load_paths


def load_as_nobody(folder: Path) -> dict:
    """``load_paths([folder])`` run by the user nobody, in a forked child: what it found, as JSON."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody to read the files as")
    if os.geteuid() != 0:
        pytest.skip("needs root, to become nobody")
    load_paths([folder])  # as root first: every module and codec the load needs is imported before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, load, report
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            res = load_paths([folder])
            out = {"documents": [d.source for d in res.documents], "skipped": [list(s) for s in res.skipped],
                   "warnings": [list(w) for w in res.warnings], "unreadable": res.unreadable_folders}
            os.write(write, json.dumps(out).encode())
        except BaseException as exc:  # noqa: BLE001 - told to the parent, which fails the test with it
            os.write(write, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    found = json.loads(b"".join(chunks) or b"{}")
    assert "error" not in found, found["error"]
    return found


@pytest.fixture
def locked_corpus():
    """A corpus nobody may walk (outside pytest's 0700 tmp), with a chmod 000 folder and a chmod 000 file."""
    root = Path(tempfile.mkdtemp(prefix="rag-locked-"))
    root.chmod(0o755)
    (root / "pont.txt").write_text(ARTICLE_FR, encoding="utf-8")
    (root / "locked.txt").write_text("Un article que personne ne peut lire.", encoding="utf-8")
    (root / "locked.txt").chmod(0o000)
    (root / "private").mkdir()
    (root / "private" / "inside.txt").write_text("Un article dans un dossier fermé.", encoding="utf-8")
    (root / "private").chmod(0o000)
    yield root
    (root / "private").chmod(0o755)
    shutil.rmtree(root)


def test_an_unreadable_folder_and_file_are_named(locked_corpus):
    found = load_as_nobody(locked_corpus)
    assert [Path(d).name for d in found["documents"]] == ["pont.txt"], found
    assert [(Path(p).name, why) for p, why in found["skipped"]] == [("locked.txt", "unreadable (Permission denied)")]
    (where, why), = found["warnings"]
    assert Path(where).name == "private" and "folder not readable (Permission denied)" in why
    assert found["unreadable"] == [str(locked_corpus / "private")]


def test_the_documents_of_an_unreadable_folder_are_kept_not_pruned(locked_corpus):
    loaded = load_paths([locked_corpus])
    loaded.documents = [d for d in loaded.documents if "private" not in d.key]  # as nobody sees it
    loaded.unreadable_folders = [str(locked_corpus / "private")]
    existing = {str(locked_corpus / "private" / "inside.txt"): {"key": str(locked_corpus / "private" / "inside.txt"),
                                                                 "source": "private/inside.txt", "sha256": "x"}}
    report = BuildReport()
    changes = compare(loaded, existing, [locked_corpus], rebuild=False, prune=True, report=report)
    assert changes.gone == [] and report.kept == ["private/inside.txt"]
