"""Bad input: every file of a hostile corpus is skipped or indexed with a clear message, in bounded time and memory."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT, SEEDS

from rag.indexing import verify
from rag.pipeline import RAG

BAD = ROOT / "tests" / "data" / "bad-corpus"

EXPECTED_SKIPS = {
    "empty.txt": "empty file",
    "whitespace.md": "empty file",
    "binary.txt": "binary file",
    "latin1.txt": "not valid UTF-8",
    "notes.docx": "not a valid Word file",
    "scan.pdf": "no text layer",
    "malformed.pdf": "malformed PDF",
    "data.json": "not a SQuAD-format file",
    "feed.jsonl:2": "invalid JSON",
    "feed.jsonl:3": 'no "text"',
    "feed.jsonl:4": 'no "text"',
    "blob.txt": "does not look like text",
}


@pytest.fixture(scope="module")
def bad_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    corpus = root / "corpus"
    shutil.copytree(BAD, corpus)
    seed = SEEDS.joinpath("000_7bf8fbc2ce84b06f.txt").read_text(encoding="utf-8").replace("\n", " ")
    (corpus / "huge-line.txt").write_text((seed + " ") * 18, encoding="utf-8")  # ~100 KB, one line
    (corpus / "blob.txt").write_text(base64.b64encode(os.urandom(150_000)).decode(), encoding="utf-8")
    (corpus / "new\nline.txt").write_text("Une dépêche au nom étrange : le musée de Nantes rouvre jeudi.", encoding="utf-8")
    index = root / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    # `rag index build`, telling its own memory peak (VmHWM) last: ru_maxrss of children would carry
    # the largest process this test process ever forked
    script = ("import re, runpy, sys\n"
              f"sys.argv = ['rag', 'index', 'build', {str(corpus)!r}, '--index', {str(index)!r}, '-q']\n"
              "try:\n    runpy.run_module('rag', run_name='__main__')\nfinally:\n"
              "    sys.stderr.write('peak_kb ' + re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())"
              ".group(1) + '\\n')\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    seconds = time.perf_counter() - t0
    peak_mb = int(res.stderr.rsplit("peak_kb ", 1)[1].split()[0]) / 1024
    return res, index, seconds, peak_mb


def test_each_bad_file_is_skipped_with_its_reason(bad_build):
    res, *_ = bad_build
    skipped = [ln for ln in res.stderr.splitlines() if ln.startswith("skipped: ")]
    for name, reason in EXPECTED_SKIPS.items():
        line = next((ln for ln in skipped if name in ln), None)
        assert line is not None, f"{name} not reported: {res.stderr}"
        assert reason in line, line
    assert len(skipped) == len(EXPECTED_SKIPS)


def test_the_good_files_are_indexed_and_the_exit_code_says_some_were_skipped(bad_build):
    res, index, *_ = bad_build
    assert res.returncode == 2
    added = {ln.split("/")[-1] for ln in res.stdout.splitlines() if ln.startswith("added: ")}
    assert {"good.pdf", "hostile.html", "l'été à Paris – «copie» (1) [final] ✓.txt", "huge-line.txt",
            "new\\nline.txt"} <= added
    assert sum(1 for ln in res.stdout.splitlines() if "feed.jsonl#" in ln) == 2
    assert verify(index) == []


def test_bounded_time_and_memory(bad_build):
    _, _, seconds, peak_mb = bad_build
    assert seconds < 300 and peak_mb < 3000


def test_hostile_html_keeps_its_text_not_its_scripts(bad_build):
    _, index, *_ = bad_build
    from rag.config import Config

    ans = RAG(Config(index_dir=str(index))).ask("Quel budget le conseil municipal de Rennes a-t-il voté ?")
    top = ans.citations[0]
    assert top.source.endswith("hostile.html") and "12 millions" in top.excerpt
    text = " ".join(c.excerpt for c in ans.citations)
    assert "__pwned" not in text and "SCRIPT-RAN" not in text and "IFRAME-RAN" not in text
