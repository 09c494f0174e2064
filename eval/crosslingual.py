"""English questions about French articles: a check of cross-language answers on PIAF-dev.

``eval/piaf_en_questions.jsonl`` holds English translations (by hand, one each) of 52 PIAF-dev
questions: the first question of every seventh paragraph, in file order, none left out. This
script joins them with PIAF's answers and paragraphs (read from ``../shared/data``, never
copied here) into a SQuAD-format file whose corpus is every PIAF-dev paragraph, and runs
``rag eval`` on it::

    python eval/crosslingual.py                          # prints the table
    python eval/crosslingual.py --out eval/piaf_en_report.json --markdown eval/piaf_en_report.md

The seed set's English questions are too few (6) to tell a rule from luck; this set is what
cross-language changes to the answerer are checked on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rag.cli import main as rag_main  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.text.normalize import jsonl_lines  # noqa: E402

QUESTIONS = ROOT / "eval" / "piaf_en_questions.jsonl"


def english_squad(piaf: dict, english: dict[str, str]) -> dict:
    """PIAF with every paragraph kept and only the translated questions, in English."""
    data = []
    for article in piaf["data"]:
        paragraphs = [{"context": p["context"],
                       "qas": [{**q, "question": english[q["id"]]} for q in p.get("qas", []) if q["id"] in english]}
                      for p in article["paragraphs"]]
        data.append({**article, "paragraphs": paragraphs})
    return {"version": piaf.get("version", ""), "data": data}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--piaf", default=str(ROOT.parent / "shared" / "data" / "piaf-dev.json"), metavar="FILE")
    p.add_argument("--out", metavar="FILE.json", help="write the rag eval report here")
    p.add_argument("--markdown", metavar="FILE.md", help="and a Markdown table here")
    args = p.parse_args(argv)
    piaf_path = Path(args.piaf)
    if not piaf_path.is_file():
        print(f"crosslingual: {piaf_path} not found; PIAF-dev comes from "
              "https://huggingface.co/datasets/etalab-ia/piaf (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    english = {}
    for _, line in jsonl_lines(QUESTIONS.read_text(encoding="utf-8")):
        row = json.loads(line)
        english[row["id"]] = row["question"]
    squad = english_squad(json.loads(piaf_path.read_text(encoding="utf-8")), english)
    found = sum(len(p["qas"]) for a in squad["data"] for p in a["paragraphs"])
    if found != len(english):
        print(f"crosslingual: {len(english) - found} question ids of {QUESTIONS} are not in {piaf_path}",
              file=sys.stderr)
        return 2
    folder = load_config().cache_path / "crosslingual"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "piaf-dev-en.json"
    text = json.dumps(squad, ensure_ascii=False)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: its index is reused
        path.write_text(text, encoding="utf-8")
    extra = (["--out", args.out] if args.out else []) + (["--markdown", args.markdown] if args.markdown else [])
    return rag_main(["eval", str(path), *extra])


if __name__ == "__main__":
    sys.exit(main())
