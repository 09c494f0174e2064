"""The rag command as a user runs it: build, status, ask, exit codes and messages."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT


def rag(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    index = tmp_path_factory.mktemp("cli") / "index"
    res = rag("index", "build", str(ROOT / "seeds"), "--index", str(index), "-q")
    assert res.returncode == 0, res.stderr
    return index, res


def test_build_prints_what_it_did(built):
    _, res = built
    assert "added: " in res.stdout and "000_7bf8fbc2ce84b06f.txt" in res.stdout
    assert "1 added, 0 updated, 0 removed, 0 unchanged" in res.stdout


def test_status_json_has_the_contract_keys(built):
    index, _ = built
    res = rag("index", "status", "--index", str(index), "--json")
    status = json.loads(res.stdout)
    assert {"documents", "chunks", "model", "dimensions", "updated"} <= status.keys()
    assert status["documents"] == 1 and status["chunks"] > 5 and status["dimensions"] == 384
    assert status["model"] == "intfloat/multilingual-e5-small"
    assert status["prompts"] == {"query": "query: ", "passage": "passage: "}
    text = rag("index", "status", "--index", str(index)).stdout
    assert "intfloat/multilingual-e5-small" in text and "'passage: '" in text


def test_ask_json_is_the_answer_contract(built):
    index, _ = built
    res = rag("ask", "Qui est le ministre iranien des Affaires étrangères ?", "--index", str(index), "--json", "-k", "3")
    assert res.returncode == 0, res.stderr
    ans = json.loads(res.stdout)
    assert {"question", "answer", "abstained", "citations", "latency_ms"} <= ans.keys()
    assert not ans["abstained"] and 1 <= len(ans["citations"]) <= 3
    c = ans["citations"][0]
    assert {"n", "doc_id", "source", "title", "chunk_id", "excerpt", "start", "end", "score"} <= c.keys()
    assert "Araghchi" in ans["answer"]
    text = (ROOT / "seeds" / "000_7bf8fbc2ce84b06f.txt").read_text(encoding="utf-8")
    assert text.strip()[c["start"]:c["end"]] == c["excerpt"]


def test_ask_questions_file_gives_one_json_line_each(built, tmp_path):
    index, _ = built
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"question": "Où ont eu lieu les discussions ?"}\n{"question": "Who is Steve Witkoff?"}\n',
                     encoding="utf-8")
    res = rag("ask", "--questions", str(qfile), "--index", str(index), "--json")
    lines = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert [a["question"] for a in lines] == ["Où ont eu lieu les discussions ?", "Who is Steve Witkoff?"]


def test_missing_path_is_exit_2_naming_it(tmp_path):
    res = rag("index", "build", str(tmp_path / "nope"), "--index", str(tmp_path / "idx"))
    assert res.returncode == 2 and "nope" in res.stderr
    assert not (tmp_path / "idx").exists() or not any((tmp_path / "idx").glob("gen-*"))


def test_skipped_files_give_exit_2_but_the_rest_is_indexed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("Un nouveau pont a été inauguré à Lyon samedi.", encoding="utf-8")
    (docs / "empty.txt").write_text("", encoding="utf-8")
    res = rag("index", "build", str(docs), "--index", str(tmp_path / "idx"), "-q")
    assert res.returncode == 2
    assert "empty.txt: empty file" in res.stderr and "1 added" in res.stdout


def test_ask_without_index_says_how_to_build(tmp_path):
    res = rag("ask", "Qui ?", "--index", str(tmp_path / "none"))
    assert res.returncode == 2 and "rag index build" in res.stderr


def test_help_explains_the_commands():
    res = rag("--help")
    assert res.returncode == 0
    for word in ("index", "ask", "eval", "serve", "RAG_"):
        assert word in res.stdout


def test_ask_prints_the_answer_then_each_source_around_its_sentence(built):
    index, _ = built
    res = rag("ask", "Quelle est la capitale d'Oman ?", "--index", str(index))
    assert res.returncode == 0, res.stderr
    answer, sources = res.stdout.split("\n\n", 1)
    assert "Mascate" in answer and answer.rstrip().endswith("[1]")
    assert sources.startswith("[1] ") and "000_7bf8fbc2ce84b06f.txt, chars " in sources and "Mascate" in sources


def test_ask_llm_mode_without_endpoint_is_a_usage_error_naming_the_settings(built):
    index, _ = built
    env_free = rag("ask", "Qui ?", "--index", str(index), "--mode", "llm")
    assert env_free.returncode == 2 and "RAG_LLM_BASE_URL" in env_free.stderr and "Traceback" not in env_free.stderr


def test_ask_restricted_to_a_document_by_path_from_anywhere_or_refused_by_name(built, tmp_path):
    index, _ = built
    article = ROOT / "seeds" / "000_7bf8fbc2ce84b06f.txt"
    for doc in (str(article), str(article.parent)):  # absolute paths, asked from another folder
        res = rag("ask", "Qui est Alissa Pavia ?", "--index", str(index), "--doc", doc, "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "Atlantic Council" in json.loads(res.stdout)["answer"]
    res = rag("ask", "Qui est Alissa Pavia ?", "--index", str(index), "--doc", "seeds/nothing-here.txt")
    assert res.returncode == 2 and "--doc 'seeds/nothing-here.txt' matches no indexed document" in res.stderr
    assert "rag index list" in res.stderr
