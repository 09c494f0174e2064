"""Who may sign in: logins from ``--auth`` / ``RAG_AUTH`` and from an account file."""

from __future__ import annotations

import os

import pytest

from rag.errors import BadInput
from ui.auth import Logins, parse_logins, read_auth_file


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_accounts_come_from_one_value_and_a_file(tmp_path):
    f = tmp_path / "users"
    f.write_text("# accounts\nalice:s3:cret\n\n bob :pw with spaces \n", encoding="utf-8")
    f.chmod(0o600)
    assert read_auth_file(f) == {"alice": "s3:cret", "bob": "pw with spaces "}
    logins = Logins.load("carol:x,dave:y", f)
    assert logins.passwords == {"carol": "x", "dave": "y", "alice": "s3:cret", "bob": "pw with spaces "}
    assert logins.check("alice", "s3:cret") and not logins.check("alice", "s3") and logins.required
    assert not Logins.load(None, None).required and parse_logins("alice:s3:cret") == {"alice": "s3:cret"}


@pytest.mark.parametrize("text, where", [
    ("alice:pw\nbob\n", ":2:"),
    ("alice:\n", ":1:"),
    (":pw\n", ":1:"),
    ("# nothing\n\n", "no USER:PASSWORD"),
])
def test_a_bad_account_file_names_the_file_and_line(tmp_path, text, where):
    f = tmp_path / "users"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match=where) as err:
        read_auth_file(f)
    assert str(f) in str(err.value)


def test_a_user_given_twice_or_a_missing_file_is_an_error(tmp_path):
    f = tmp_path / "users"
    f.write_text("alice:a\n", encoding="utf-8")
    with pytest.raises(BadInput, match="twice"):
        read_auth_file(_write(tmp_path / "again", "bob:a\nbob:b\n"))
    with pytest.raises(BadInput, match="twice"):
        Logins.load("alice:b", f)
    with pytest.raises(BadInput, match="cannot read"):
        read_auth_file(tmp_path / "missing")


def test_an_account_file_others_can_read_is_warned_about(tmp_path, caplog):
    f = tmp_path / "users"
    f.write_text("alice:a\n", encoding="utf-8")
    os.chmod(f, 0o644)
    read_auth_file(f)
    assert "can be read by other users" in caplog.text
