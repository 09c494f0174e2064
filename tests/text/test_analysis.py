"""Text analysis is the lexical index's, without the BM25 library: same stopwords, no bm25s import."""

import subprocess
import sys

from conftest import ROOT

from rag.text.stopwords import LUCENE_ENGLISH, SNOWBALL_FRENCH


def test_the_stopword_lists_are_the_ones_bm25s_ships():
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

    assert SNOWBALL_FRENCH == frozenset(STOPWORDS_FRENCH)
    assert LUCENE_ENGLISH == frozenset(STOPWORDS_EN)


def test_analysis_questions_retrieval_and_answering_load_neither_bm25s_nor_gradio():
    code = ("import sys, rag.text.analysis, rag.text.questions, rag.answering, rag.retrieval, rag.pipeline\n"
            "from types import ModuleType\n"
            "loaded = [m for m in ('bm25s', 'scipy', 'gradio', 'faiss', 'langchain_text_splitters')\n"
            "          if type(sys.modules.get(m)) is ModuleType]\n"
            "print(' '.join(loaded))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split() == []  # heavy modules are imported on first use only (rag.lazy)
