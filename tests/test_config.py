"""Configuration: defaults, rag.toml, RAG_* variables, clear errors."""

import pytest

from rag.config import Config, ConfigError, load_config


def test_defaults_without_file_or_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg == Config()
    assert cfg.host == "127.0.0.1"


def test_toml_then_environment_override(tmp_path):
    path = tmp_path / "rag.toml"
    path.write_text('top_k = 7\nbm25_weight = 0.6\n[unused]\n', encoding="utf-8")
    path.write_text('[rag]\ntop_k = 7\nbm25_weight = 0.6\n', encoding="utf-8")
    cfg = load_config(path, env={"RAG_TOP_K": "3"})
    assert cfg.top_k == 3 and cfg.bm25_weight == 0.6
    assert cfg.sources == {"top_k": "RAG_TOP_K", "bm25_weight": str(path)}


def test_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="RAG_TOP_K"):
        load_config(env={"RAG_TOP_K": "many"})
    with pytest.raises(ConfigError, match="bm25_weight"):
        load_config(env={"RAG_BM25_WEIGHT": "1.5"})


def test_unknown_setting_in_file_is_an_error(tmp_path):
    path = tmp_path / "rag.toml"
    path.write_text("topk = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'topk'"):
        load_config(path, env={})


def test_api_key_is_masked_in_reports():
    assert Config(llm_api_key="sk-secret").as_dict()["llm_api_key"] == "***"
