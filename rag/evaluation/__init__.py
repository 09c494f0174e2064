"""Evaluation: retrieval and answer quality on a Q&A set (``rag eval``), as the design's contract says.

:mod:`.qasets` reads Q&A sets (JSONL or SQuAD), :mod:`.metrics` scores, :mod:`.runner` asks and
summarises, :mod:`.reports` writes JSON and Markdown (with :mod:`.plots`).
"""

from .metrics import (
           contains_answer,
           first_gold_rank,
           hit_curve,
           percentiles,
           retrieval_metrics,
           token_f1,
)
from .qasets import QAFormatError, QAItem, QASet, load_qa, resolve_gold
from .runner import (
           EvalRun,
           QuestionResult,
           docs_index,
           evaluate,
           judge_answer,
           summarize,
)

__all__ = ["EvalRun", "QAFormatError", "QAItem", "QASet", "QuestionResult", "contains_answer", "docs_index",
           "evaluate", "first_gold_rank", "hit_curve", "judge_answer", "load_qa", "percentiles", "resolve_gold",
           "retrieval_metrics", "summarize", "token_f1"]
