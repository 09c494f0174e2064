"""Fit how the extractive answerer weighs meaning across languages, on English questions about PIAF-dev.

Usage (from the project root; a few minutes on 2 cores, the indexes come from ``eval/fit_answerer.py``)::

    python eval/fit_crosslingual.py ../shared/data/piaf-dev.json           # fit and print the check table
    python eval/fit_crosslingual.py ../shared/data/piaf-dev.json --write   # ... and write the "crosslingual" values

Each question of ``eval/piaf_en_questions.jsonl`` (English translations of PIAF-dev questions) is
asked, as in :mod:`fit_answerer`, of the index of every context (answerable), of the index of
the other half's articles (a far miss) and, for a question about an odd-numbered paragraph, of
the index of even-numbered paragraphs (a near miss). The real answerer ranks the sentences, with
the cosines of :func:`rag.answering.extractive.weigh_meaning` for every value tried of
:class:`~rag.answering.extractive.Crosslingual` (``weight``, ``hits``, ``gate``).

Questions of the even-numbered articles fit, the odd-numbered ones check. The values kept give
the most right answers on the fitting half while refusing misses at least as often as the French
answerer does on its own fitting half (far misses ``FAR_MIN``, near misses ``NEAR_MIN``:
docs/evaluation.md, "Answers").
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_answerer import K, article_of, build_indexes  # noqa: E402

from rag.answering import extractive as ex  # noqa: E402
from rag.answering.base import Request  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.evaluation import contains_answer, load_qa  # noqa: E402
from rag.ingest import load_paths  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.text.normalize import jsonl_lines  # noqa: E402

QUESTIONS = Path(__file__).resolve().parent / "piaf_en_questions.jsonl"
FAR_MIN, NEAR_MIN = 0.85, 0.65
WEIGHTS = (0.0, 10.0, 20.0, 50.0, 100.0)
HITS = (1, 2, 3, 5)
GATES = (0.76, 0.78, 0.79, 0.8, 0.81, 0.82, 0.83, 0.84)


@dataclass
class Ask:
    """One English question asked of one index, with its request and the cosines it may need."""

    half: str     # "tune" or "check"
    role: str     # "answerable", "near" or "far"
    request: Request
    answers: list[str]


def collect(piaf: str) -> list[Ask]:
    """Ask every English question of its indexes; the sentences' cosines are computed once and kept."""
    english = {json.loads(line)["id"]: json.loads(line)["question"]
               for _, line in jsonl_lines(QUESTIONS.read_text(encoding="utf-8"))}
    items = {item.id: item for item in load_qa(piaf).items}
    where = {d.id: article_of(d.key) for d in load_paths([piaf]).documents}  # document id -> (article, paragraph)
    rags = {name: RAG(load_config(), folder) for name, (folder, _) in build_indexes(piaf).items()}
    asks = []
    for qid, question in english.items():
        article, paragraph = where[items[qid].squad_id]
        half = "tune" if article % 2 == 0 else "check"
        roles = [("full", "answerable"), ("odd" if article % 2 == 0 else "even", "far")]
        if paragraph % 2 == 1:
            roles.append(("para", "near"))
        for name, role in roles:
            request = rags[name].retrieve(question, K)
            asks.append(Ask(half, role, _remembered(request), items[qid].answers))
    return asks


def _remembered(request: Request) -> Request:
    """``request`` whose similarity encodes each sentence once, whatever the values tried."""
    seen: dict[str, float] = {}
    encode = request.similarity

    def similarity(texts):
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            seen.update(zip(new, encode(new).tolist()))
        return np.array([seen[t] for t in texts], dtype=np.float32)

    return replace(request, similarity=similarity)


def outcome(ask: Ask, params: ex.Crosslingual, threshold: float) -> tuple[bool, bool]:
    """(answered right, abstained) for ``ask`` with ``params``."""
    answerer = ex.ExtractiveAnswerer(threshold)
    query_lang = ask.request.lang
    candidates = answerer.rank(ask.request, meaning=False)
    ex.weigh_meaning(candidates, ask.request, query_lang, params)
    choice = ex.choose(candidates, ask.request.hits, gate=params.gate)
    if choice is None or choice.evidence < threshold:
        return False, True
    return bool(contains_answer(" ".join(c.text for c in choice.sentences), ask.answers)), False


def rates(asks: list[Ask], params: ex.Crosslingual, threshold: float, half: str) -> dict[str, tuple[float, float]]:
    """Per role of ``half``: (share answered right, share abstained)."""
    out: dict[str, list[tuple[bool, bool]]] = {}
    for ask in asks:
        if ask.half == half:
            out.setdefault(ask.role, []).append(outcome(ask, params, threshold))
    return {role: tuple(np.mean(v, axis=0).round(3).tolist()) for role, v in out.items()}


def print_rates(label: str, r: dict[str, tuple[float, float]]) -> None:
    """One line of the check table."""
    a, f, n = r["answerable"], r.get("far", (0, 0)), r.get("near", (0, 0))
    print(f"{label:<28} contains {a[0]:.3f}  false abstention {a[1]:.3f}  "
          f"far misses refused {f[1]:.3f}  near misses refused {n[1]:.3f}")


def main(argv: list[str] | None = None) -> int:
    """Collect, fit on the even articles' questions, check on the odd ones'; ``--write`` saves the values."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("piaf", help="PIAF-dev (SQuAD-format JSON)")
    parser.add_argument("--write", action="store_true", help=f"write the values into {ex.WEIGHTS_FILE}")
    args = parser.parse_args(argv)
    config = load_config()
    asks = collect(args.piaf)
    print(f"{len(asks)} asks ({sum(a.half == 'tune' for a in asks)} to fit)", file=sys.stderr)
    model = asks[0].request.model
    off = ex.Crosslingual(model, 0.0, 0, 1.0)  # hits = 0: never by meaning, the lexical answerer alone
    best = None
    for weight, hits, gate in itertools.product(WEIGHTS, HITS, GATES):
        params = ex.Crosslingual(model, weight, hits, gate)
        r = rates(asks, params, config.abstain_threshold, "tune")
        if r["far"][1] >= FAR_MIN and r["near"][1] >= NEAR_MIN:
            key = (r["answerable"][0], -r["answerable"][1], r["far"][1], -hits)
            if best is None or key > best[0]:
                best = (key, params)
    if best is None:
        print("no values refuse misses as often as the French answerer; nothing fitted", file=sys.stderr)
        return 1
    params = best[1]
    print(f"kept: weight {params.weight}, hits {params.hits}, gate {params.gate}")
    for half in ("tune", "check"):
        print_rates(f"{half}, lexical alone", rates(asks, off, config.abstain_threshold, half))
        print_rates(f"{half}, by meaning", rates(asks, params, config.abstain_threshold, half))
    if args.write:
        data = json.loads(ex.WEIGHTS_FILE.read_text(encoding="utf-8"))
        data["crosslingual"] = {"fitted": f"eval/fit_crosslingual.py {Path(args.piaf).name}: "
                                          "eval/piaf_en_questions.jsonl, questions of even-numbered articles",
                                **params._asdict()}
        ex.WEIGHTS_FILE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {ex.WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
