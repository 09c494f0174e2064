"""Uploaded files: accepted types, size limit, and names that cannot leave the upload folder."""

from __future__ import annotations

import pytest

from rag.config import Config
from ui.uploads import ReceivedCopies, UploadRefused, discard_received, safe_name, save_upload, upload_dir


@pytest.mark.parametrize("name, safe", [
    ("article.txt", "article.txt"),
    ("Élection à Lyon.MD", "Élection à Lyon.md"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\Windows\\evil.html", "evil.html"),
    ("/abs/path/news.pdf", "news.pdf"),
    ("a;rm -rf ~|x.jsonl", "a_rm -rf _x.jsonl"),
    ("...hidden.txt", "hidden.txt"),
    ("nul\x00byte.txt", "nulbyte.txt"),
])
def test_uploaded_names_keep_their_readable_part_and_no_path(name, safe):
    assert safe_name(name) == safe


@pytest.mark.parametrize("name", ["..", ".txt", "", "noextension", "../"])
def test_names_with_nothing_usable_are_refused(name):
    with pytest.raises(UploadRefused):
        safe_name(name)


def test_a_file_is_saved_inside_the_upload_folder_whatever_its_name(tmp_path):
    src = tmp_path / "incoming"
    src.write_text("Un article.", encoding="utf-8")
    folder = tmp_path / "uploads"
    saved = save_upload(src, "../../../outside.txt", folder, max_mb=1)
    assert saved.path == (folder / "outside.txt").resolve() and saved.created
    assert saved.path.read_text(encoding="utf-8") == "Un article."
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["outside.txt"]  # no temporary file left


def _send(tmp_path, text: str, name: str, folder):
    src = tmp_path / "incoming"
    src.write_text(text, encoding="utf-8")
    return save_upload(src, name, folder, max_mb=1)


@pytest.mark.parametrize("second_name", ["notes.txt", "notes:.txt", "sub/notes.txt"])
def test_a_second_file_of_the_same_name_never_replaces_the_first(tmp_path, second_name):
    folder = tmp_path / "uploads"
    first = _send(tmp_path, "Premier article, de la première personne.", "notes.txt", folder)
    second = _send(tmp_path, "Second article, d'une autre personne.", second_name, folder)
    assert first.path != second.path and second.created
    assert first.path.read_text(encoding="utf-8") == "Premier article, de la première personne."
    assert second.path.read_text(encoding="utf-8") == "Second article, d'une autre personne."
    assert second.path.parent == folder.resolve() and second.path.suffix == ".txt"
    assert len(list(folder.iterdir())) == 2


def test_the_same_content_uploaded_again_is_one_file_whatever_its_name(tmp_path):
    folder = tmp_path / "uploads"
    first = _send(tmp_path, "Le même article.", "notes.txt", folder)
    again = _send(tmp_path, "Le même article.", "notes.txt", folder)
    renamed = _send(tmp_path, "Le même article.", "copie.txt", folder)
    assert first.created and not again.created and not renamed.created
    assert again.path == first.path == renamed.path and renamed.name == "copie.txt"
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_third_different_notes_txt_gets_its_own_name_too(tmp_path):
    folder = tmp_path / "uploads"
    paths = {_send(tmp_path, f"Article numéro {i}.", "notes.txt", folder).path for i in range(3)}
    assert len(paths) == 3 and all(p.name.startswith("notes") and p.suffix == ".txt" for p in paths)


def test_saves_at_the_same_moment_under_one_name_keep_every_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path / "uploads"
    sources = []
    for i in range(8):
        src = tmp_path / f"in{i}"
        src.write_text(f"Article {i % 4}.", encoding="utf-8")  # 4 contents, each sent twice
        sources.append(src)
    with ThreadPoolExecutor(8) as pool:
        saved = list(pool.map(lambda s: save_upload(s, "notes.txt", folder, max_mb=1), sources))
    contents = sorted(p.read_text(encoding="utf-8") for p in folder.iterdir())
    assert contents == [f"Article {i}." for i in range(4)]  # each content once, none lost
    assert {s.path.read_text(encoding="utf-8") for s in saved} == set(contents)


def test_the_servers_own_copy_is_deleted_and_nothing_outside_its_cache(tmp_path):
    cache = tmp_path / "gradio"
    received = cache / "0f3a" / "notes.txt"
    received.parent.mkdir(parents=True)
    received.write_text("x", encoding="utf-8")
    outside = tmp_path / "keep.txt"
    outside.write_text("y", encoding="utf-8")
    assert discard_received(received, cache) and not received.exists() and not received.parent.exists()
    assert not discard_received(outside, cache) and outside.exists()
    assert not discard_received(cache / ".." / "keep.txt", cache) and outside.exists()


@pytest.mark.parametrize("name, content, key", [
    ("tool.exe", b"MZ", "upload_bad_type"),
    ("page.php", b"<?php", "upload_bad_type"),
    ("empty.txt", b"", "upload_empty"),
    ("big.txt", b"x" * (1024 * 1024 + 1), "upload_too_big"),
])
def test_wrong_type_empty_or_too_large_files_are_refused_with_their_name(tmp_path, name, content, key):
    src = tmp_path / "incoming"
    src.write_bytes(content)
    with pytest.raises(UploadRefused) as err:
        save_upload(src, name, tmp_path / "uploads", max_mb=1)
    assert err.value.key == key and name in str(err.value)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_uploads_go_beside_the_index_unless_configured(tmp_path):
    assert upload_dir(Config(index_dir=str(tmp_path / "idx"))) == tmp_path / "uploads"
    assert upload_dir(Config(index_dir="idx", upload_dir=str(tmp_path / "u"))) == tmp_path / "u"


def test_a_copy_already_kept_is_passed_over_but_the_same_file_sent_again_is_new(tmp_path):
    copies = ReceivedCopies(keep=2)
    copy = tmp_path / "cache" / "abc" / "notes.txt"
    copy.parent.mkdir(parents=True)
    copy.write_text("Le conseil a voté.", encoding="utf-8")
    assert not copies.taken(copy)
    copies.mark(copy)
    assert not copies.taken(copy)  # still there: not yet deleted, or sent again
    copy.unlink()
    assert copies.taken(copy)  # kept, deleted, listed again by the file box
    copies.mark(tmp_path / "a")
    copies.mark(tmp_path / "b")
    assert not copies.taken(copy)  # forgotten past ``keep``: refused as gone, as any missing copy
