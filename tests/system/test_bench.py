"""The benchmark runs end to end at tiny sizes and writes its JSON, Markdown table and plot."""

import json

import pytest
from conftest import PIAF


@pytest.mark.piaf
def test_quick_benchmark_writes_results_table_and_plot(tmp_path):
    if not PIAF.is_file():
        pytest.skip(f"{PIAF} is absent (PIAF-dev is not shipped with the project)")
    from bench.run import main

    out = tmp_path / "results.json"
    code = main(["--quick", "--workdir", str(tmp_path / "work"), "--out", str(out), "--encoders", "onnx-int8",
                 "--sections", "build", "update", "scale", "ann", "--sizes", "60", "150", "--update-docs", "30",
                 "--no-cli"])
    assert code == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    run = results["build"]["encoders"]["onnx-int8"]
    assert run["same_chunks_as_raw"] and run["chunks"] > 0 and run["unchanged_encoded"] == 0
    assert 0 <= run["quality"]["hybrid"]["mrr@10"] <= 1
    assert results["update"]["unchanged_encoded"] == 0 and results["update"]["one_changed_encoded"] >= 1
    sizes = results["scale"]["sizes"]
    assert [s["chunks"] >= s["target_chunks"] for s in sizes] == [True, True]
    assert all(s["retrieval_ms"]["p50"] > 0 and s["memory_per_chunk_kb"] == s["memory_per_chunk_kb"] for s in sizes)
    assert 0 <= results["ann"]["real"]["recall@10"] <= 1
    sections = {row["section"] for row in results["summary"]}
    assert {"build", "rebuild", "latency", "memory", "ann"} <= sections
    table = out.with_suffix(".md").read_text(encoding="utf-8")
    assert table.startswith("| section | measure | value | goal | met |")
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
