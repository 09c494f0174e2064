"""Evaluation: Q&A parsers, metrics on hand-checkable cases, reports, --compare, --fail-under, real runs."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from rag.config import Config, default_cache_dir
from rag.evaluation import (
    EvalRun,
    QAFormatError,
    QASet,
    QuestionResult,
    contains_answer,
    first_gold_rank,
    judge_answer,
    load_qa,
    retrieval_metrics,
    summarize,
    token_f1,
)
from rag.evaluation.reports import check_thresholds, compare_table, parse_thresholds
from rag.retrieval import Mode
from rag.schema import Answer, Citation

SEED_QA = ROOT / "eval" / "seed_qa.jsonl"


def rag(*args, cache, cwd=ROOT):
    """``rag ARGS`` with its own cache folder for the indexes ``--docs`` builds; the converted model and its
    int8 export are shared with the rest of the run (they take a minute to make)."""
    cache.mkdir(parents=True, exist_ok=True)
    for shared in ("models", "encoders"):
        (default_cache_dir() / shared).mkdir(parents=True, exist_ok=True)
        if not (cache / shared).exists():
            (cache / shared).symlink_to(default_cache_dir() / shared)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "RAG_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


# -- parsers ---------------------------------------------------------------------------------
def test_jsonl_set_is_read_with_ids_answers_and_gold_sources(tmp_path):
    f = tmp_path / "qa.jsonl"
    f.write_text('{"id": "a", "question": "Qui ?", "answers": ["Lui"], "doc": "seeds/x.txt"}\n\n'
                 '{"question": "Où ?", "answers": []}\n', encoding="utf-8")
    qa = load_qa(f)
    assert qa.kind == "jsonl" and [i.id for i in qa.items] == ["a", "line3"]
    assert qa.items[0].answerable and qa.items[0].doc == "seeds/x.txt" and not qa.items[1].answerable


@pytest.mark.parametrize("line, message", [
    ('{"question": "Qui ?", "answers": ["x"]', "qa.jsonl:2: invalid JSON"),
    ('{"answers": ["x"]}', 'qa.jsonl:2: "question" must be a non-empty string'),
    ('{"question": "Qui ?", "answers": "x"}', 'qa.jsonl:2: "answers" must be a list'),
    ('{"question": "Qui ?"}', 'qa.jsonl:2: "answers" must be a list'),
    ('{"question": "Qui ?", "answers": [], "doc": 3}', 'qa.jsonl:2: "doc" must be a string'),
    ('{"id": "a", "question": "Qui ?", "answers": []}', "qa.jsonl:2: duplicate id 'a' (first on line 1)"),
    ('["Qui ?"]', "qa.jsonl:2: expected an object"),
])
def test_bad_jsonl_lines_are_named_by_file_and_line(tmp_path, line, message):
    f = tmp_path / "qa.jsonl"
    f.write_text('{"id": "a", "question": "Quoi ?", "answers": ["x"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(QAFormatError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_qa(f)


def test_missing_and_empty_files_are_clear_errors(tmp_path):
    with pytest.raises(QAFormatError, match="nope.jsonl: no such Q&A file"):
        load_qa(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(QAFormatError, match="empty.jsonl: empty Q&A file"):
        load_qa(tmp_path / "empty.jsonl")


def _squad(tmp_path, data):
    f = tmp_path / "set.json"
    f.write_text(json.dumps({"data": data}), encoding="utf-8")
    return f


def test_squad_paragraphs_are_the_gold_documents_and_impossible_questions_unanswerable(tmp_path):
    f = _squad(tmp_path, [{"title": "Lyon", "paragraphs": [
        {"context": "Le pont mesure 180 mètres.", "qas": [
            {"id": "q1", "question": "Combien mesure le pont ?", "answers": [{"text": "180 mètres", "answer_start": 15}]},
            {"id": "q2", "question": "Qui l'a payé ?", "answers": [], "is_impossible": True}]}]}])
    qa = load_qa(f)
    assert qa.kind == "squad" and [i.id for i in qa.items] == ["q1", "q2"]
    assert qa.items[0].answers == ["180 mètres"] and qa.items[0].context_sha256 and qa.items[0].squad_id
    assert not qa.items[1].answerable and not qa.items[1].squad_id


@pytest.mark.parametrize("data, message", [
    ({"data": {"title": "x"}}, '"data" must be a list'),
    ({"data": [{"title": "x"}]}, 'article 0 has no "paragraphs" list'),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, 'article 0, paragraph 0: no "context" text'),
    ({"data": [{"paragraphs": [{"context": "Texte.", "qas": [{"answers": []}]}]}]}, 'question 0: no "question"'),
])
def test_bad_squad_files_name_the_article_and_paragraph(tmp_path, data, message):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(QAFormatError, match=message):
        load_qa(f)


# -- metrics ---------------------------------------------------------------------------------
def test_contains_matches_whole_words_after_normalisation_and_ignores_markers():
    assert contains_answer("Le ministre est Abbas Araghchi [1].", ["abbas ARAGHCHI"])
    assert contains_answer("beau‑fils du président [2]", ["beau-fils"])
    assert not contains_answer("Les Mascates [1]", ["Mascate"])
    assert not contains_answer("Voir le passage [1].", ["1"])


def test_token_f1_is_the_squad_f1_of_the_best_gold():
    assert token_f1("le président Trump", ["Donald Trump"]) == pytest.approx(0.4)   # p 1/3, r 1/2
    assert token_f1("Donald Trump", ["Trump", "Donald Trump"]) == 1.0
    assert token_f1("rien", ["Trump"]) == 0.0


def test_hit_at_k_and_mrr_on_four_ranks():
    m = retrieval_metrics([0, 2, None, 5])
    assert m == {"hit@1": 0.25, "hit@3": 0.5, "hit@5": 0.5, "hit@10": 0.75, "mrr@10": pytest.approx(0.375)}
    assert first_gold_rank(["x", "g", "g"], ["g"]) == 1 and first_gold_rank(["x"], ["g"]) is None


def _cit(n, doc, excerpt="..."):
    return Citation(n, doc, f"{doc}.txt", doc, f"{doc}-0", excerpt, 0, len(excerpt), 0.5)


def test_citations_count_when_in_the_gold_document_or_holding_the_answer():
    res = QuestionResult("1", "Qui ?", ["Araghchi"], ["gold"])
    judge_answer(res, Answer("Qui ?", "Araghchi [1] [2]", False, [_cit(1, "gold"), _cit(2, "other")]))
    assert (res.contains, res.f1, res.citations, res.citations_ok) == (True, 1.0, 2, 1)
    nodoc = QuestionResult("2", "Qui ?", ["Araghchi"], [])
    judge_answer(nodoc, Answer("Qui ?", "Araghchi [1]", False, [_cit(1, "a", "dit Araghchi"), _cit(2, "b", "rien")]))
    assert (nodoc.citations, nodoc.citations_ok) == (2, 1)
    abst = QuestionResult("3", "Qui ?", ["Araghchi"], ["gold"])
    judge_answer(abst, Answer("Qui ?", "Je ne trouve pas Araghchi.", True, []))
    assert (abst.contains, abst.f1, abst.abstained) == (False, 0.0, True)


def test_summary_shares_for_answers_and_abstention(tmp_path):
    def res(i, answers, abstained, contains):
        r = QuestionResult(str(i), "q", answers, ["g"] if answers else [], ranks={"hybrid": 0 if contains else None},
                           latency_ms={"hybrid": 10.0 * (i + 1), "answer": 20.0 * (i + 1)})
        r.abstained, r.contains, r.f1 = abstained, contains if answers else None, 1.0 if contains else 0.0
        r.short_exact, r.short_f1 = contains, 0.5 if contains else 0.0  # only the first answer has a short span
        r.citations, r.citations_ok = (1, 1 if contains else 0) if answers else (0, 0)
        return r

    THIRD = pytest.approx(1 / 3, abs=1e-4)
    results = [res(0, ["a"], False, True), res(1, ["a"], True, False), res(2, ["a"], False, False),
               res(3, [], True, False), res(4, [], False, False)]
    qa = QASet(tmp_path / "t.jsonl", "jsonl", [])
    report = summarize(qa, results, EvalRun([Mode.HYBRID], 5), Config(), {"documents": 1, "chunks": 2})
    assert report["questions"] == 5 and report["answerable"] == 3
    assert report["retrieval"]["hit@1"] == THIRD
    assert report["answer"] == {"contains": THIRD, "f1": THIRD, "citation_precision": THIRD, "short_exact": THIRD,
                                "short_f1": pytest.approx(1 / 6, abs=1e-4)}
    assert report["abstention"] == {"unanswerable": 2, "abstained": 0.5, "false_abstention": THIRD}
    assert report["latency_ms"] == {"p50": 60.0, "p95": 96.0}


# -- thresholds and comparison ---------------------------------------------------------------
def test_thresholds_accept_short_names_and_refuse_unknown_or_lower_is_better_metrics():
    assert parse_thresholds(["mrr@10=0.8", "answer.f1=0.2", "modes.bm25.hit@5=0.5"]) == \
        {"retrieval.mrr@10": 0.8, "answer.f1": 0.2, "modes.bm25.hit@5": 0.5}
    for bad, why in (("mrr=0.8", "unknown metric 'mrr'"), ("hit@5", "expected METRIC=VALUE"),
                     ("latency_ms.p95=100", "not a score where higher is better")):
        with pytest.raises(ValueError, match=why):
            parse_thresholds([bad])


def test_a_metric_under_its_threshold_or_unmeasured_fails():
    report = {"retrieval": {"mrr@10": 0.7, "hit@5": 0.9}, "answer": {"f1": None}, "modes": {}}
    failed = check_thresholds(report, {"retrieval.mrr@10": 0.8, "retrieval.hit@5": 0.85, "answer.f1": 0.1})
    assert failed == ["retrieval.mrr@10 = 0.7000 is under the threshold 0.8",
                      "answer.f1 was not measured in this run (threshold 0.1)"]


def test_compare_prints_each_metric_with_its_difference():
    old = {"dataset": "d", "created": "then", "retrieval": {"mrr@10": 0.80}, "latency_ms": {"p50": 30.0}}
    new = {"dataset": "d", "created": "now", "retrieval": {"mrr@10": 0.85}, "latency_ms": {"p50": 40.0}}
    lines = compare_table(old, new).splitlines()
    assert lines[0] == "against d of then:"
    assert any(ln.split() == ["retrieval.mrr@10", "0.800", "0.850", "+0.050", "better"] for ln in lines)
    assert any(ln.split() == ["latency_ms.p50", "30.0", "40.0", "+10.0", "worse"] for ln in lines)


# -- real runs -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed-eval")
    res = rag("eval", str(SEED_QA), "--docs", "seeds/", "--mode", "all", "--out", str(out / "r.json"),
              "--markdown", str(out / "r.md"), cache=out / "cache")
    assert res.returncode == 0, res.stderr
    return out, res


def test_seed_run_writes_the_contract_report_and_details(seed_run):
    out, res = seed_run
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert {"dataset", "questions", "answerable", "retrieval", "answer", "abstention", "latency_ms", "config"} <= report.keys()
    assert set(report["retrieval"]) == {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"}
    assert set(report["answer"]) == {"contains", "f1", "citation_precision", "short_exact", "short_f1"}
    assert set(report["abstention"]) == {"unanswerable", "abstained", "false_abstention"}
    assert set(report["modes"]) == {"hybrid", "bm25", "dense"}
    lines = (out / "r.questions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == report["questions"] == 50 and report["abstention"]["unanswerable"] == 8
    assert report["retrieval"]["hit@5"] == 1.0  # one article: every answerable question finds it
    assert "hybrid" in res.stdout and "mrr@10" in res.stdout


def test_seed_run_markdown_shows_tables_and_real_png_plots(seed_run):
    out, _ = seed_run
    md = (out / "r.md").read_text(encoding="utf-8")
    assert "| retriever | hit@1 |" in md
    for png in ("r_hits.png", "r_latency.png"):
        assert f"]({png})" in md
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png).stat().st_size > 10_000


def test_second_run_reuses_the_cached_index_and_compare_and_thresholds_work(seed_run):
    out, _ = seed_run
    res = rag("eval", str(SEED_QA), "--docs", "seeds/", "--retrieval-only", "--out", str(out / "r2.json"),
              "--compare", str(out / "r.json"), "--fail-under", "retrieval.mrr@10=0.9", cache=out / "cache")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "r2.json").read_text())["index"]["cached"] is True
    assert "against seed_qa.jsonl" in res.stdout and "retrieval.mrr@10" in res.stdout
    res = rag("eval", str(SEED_QA), "--docs", "seeds/", "--retrieval-only", "--limit", "5",
              "--fail-under", "retrieval.mrr@10=1.01", cache=out / "cache")
    assert res.returncode == 1 and "retrieval.mrr@10 = 1.0000 is under the threshold 1.01" in res.stderr


def test_bad_input_exits_2_naming_the_fault(seed_run, tmp_path):
    out, _ = seed_run
    res = rag("eval", str(SEED_QA), "--docs", "seeds/", "--fail-under", "recall=0.5", cache=out / "cache")
    assert res.returncode == 2 and "unknown metric 'recall'" in res.stderr
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Qui ?", "answers": ["x"], "doc": "seeds/absent.txt"}\n', encoding="utf-8")
    res = rag("eval", str(qa), "--docs", "seeds/", cache=out / "cache")
    assert res.returncode == 2 and "seeds/absent.txt" in res.stderr and "not in the index" in res.stderr
    qa.write_text('{"question": "Qui ?"}\n', encoding="utf-8")
    res = rag("eval", str(qa), "--docs", "seeds/", cache=out / "cache")
    assert res.returncode == 2 and "qa.jsonl:1" in res.stderr


@pytest.mark.piaf
def test_piaf_slice_retrieval_stays_above_its_floor(piaf_slice, tmp_path):
    squad, index = piaf_slice
    res = rag("eval", str(squad), "--index", str(index), "--mode", "hybrid", "--retrieval-only",
              "--out", str(tmp_path / "r.json"), "--fail-under", "retrieval.mrr@10=0.80",
              "--fail-under", "retrieval.hit@5=0.88", cache=tmp_path / "cache")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((tmp_path / "r.json").read_text())["questions"] == 128
