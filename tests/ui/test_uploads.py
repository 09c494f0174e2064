"""Uploaded files: accepted types, size limit, and names that cannot leave the upload folder."""

from __future__ import annotations

import pytest

from rag.config import Config
from ui.uploads import UploadRefused, safe_name, save_upload, upload_dir


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
    dest = save_upload(src, "../../../outside.txt", folder, max_mb=1)
    assert dest == (folder / "outside.txt").resolve()
    assert dest.read_text(encoding="utf-8") == "Un article."
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["outside.txt"]  # no temporary file left


def test_uploading_a_name_again_replaces_the_file(tmp_path):
    folder = tmp_path / "uploads"
    for text in ("v1", "v2"):
        src = tmp_path / "in.txt"
        src.write_text(text, encoding="utf-8")
        dest = save_upload(src, "note.txt", folder, max_mb=1)
    assert dest.read_text(encoding="utf-8") == "v2"


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
