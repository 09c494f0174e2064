"""The on-disk index format, in one place: file names, generations, the manifest, compatibility.

An index folder holds ``rag.sqlite`` (documents, chunks, the embedding cache, the manifest, the
stamps of the files read) and one folder of search files per generation, ``gen-NNNNNN/``:
``vectors.faiss`` (with its ``vectors.json`` description) and ``lexical/`` (BM25 postings and
the numbered terms of every row). The manifest names the current generation. An update writes
a complete ``gen-NNNNNN.tmp/``, renames it, then switches the manifest in one SQLite
transaction: a crash at any point leaves the previous generation in use. Nothing is pickled.

This module is the only one that knows these names, and it checks whether an index can be read
(:func:`check_readable`) or updated (:func:`check_updatable`) with given settings.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from ..errors import DiskFull, IndexCorrupt, IndexMismatch, Remedy
from ..ingest.files import file_sha256
from ..search.lexical import LexicalIndex
from ..search.vectors import VectorIndex

FORMAT_VERSION = 2  # 2: BM25 terms with exact and prefix forms, document-level BM25
DB_NAME = "rag.sqlite"
LOCK_NAME = "build.lock"
VECTORS = "vectors.faiss"
LEXICAL = "lexical"
_GEN_PREFIX = "gen-"
_TMP = ".tmp"


def index_exists(folder: Path) -> bool:
    """True when ``folder`` holds an index (its SQLite file)."""
    return (Path(folder) / DB_NAME).exists()


def now_iso() -> str:
    """Current UTC time, ISO 8601, seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Manifest:
    """What an index was built with, and its current generation."""

    format_version: int
    model: str
    dimensions: int
    chunk_tokens: int
    chunk_overlap: int
    title_tokens: int
    generation: int
    updated: str
    encoder: str = "torch"  # how the model ran (rag.embedding.Encoder); indexes made before encoders: torch
    encoder_recipe: int = 0  # which export made the vectors (rag.embedding.encoder_recipe); int8 before it: 1
    checksums: str = ""  # JSON {file of the generation folder: sha256}; empty for indexes made before them
    query_prompt: str = ""  # put before questions (the model's "query" prompt); indexes made before prompts: none
    passage_prompt: str = ""  # put before chunks (the model's "passage" prompt)

    def to_rows(self) -> dict[str, str]:
        """Key/value rows of the manifest table."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def files(self) -> dict[str, str]:
        """The generation's files (paths relative to its folder) and their SHA-256, as written at commit."""
        try:
            out = json.loads(self.checksums) if self.checksums else {}
        except ValueError:
            raise IndexCorrupt("manifest is damaged: its checksums are not valid JSON", Remedy.REPAIR) from None
        if not isinstance(out, dict) or not all(isinstance(v, str) for v in out.values()):
            raise IndexCorrupt("manifest is damaged: bad checksums", Remedy.REPAIR)
        return out

    @classmethod
    def from_rows(cls, rows: dict[str, str]) -> "Manifest":
        """Parse the manifest table; raises :class:`IndexCorrupt` when a key is missing or bad."""
        try:
            encoder = rows.get("encoder", "torch")
            return cls(int(rows["format_version"]), rows["model"], int(rows["dimensions"]),
                       int(rows["chunk_tokens"]), int(rows["chunk_overlap"]), int(rows["title_tokens"]),
                       int(rows["generation"]), rows["updated"], encoder,
                       int(rows.get("encoder_recipe", 0 if encoder == "torch" else 1)), rows.get("checksums", ""),
                       rows.get("query_prompt", ""), rows.get("passage_prompt", ""))
        except (KeyError, ValueError) as exc:
            raise IndexCorrupt(f"manifest is damaged: bad or missing {exc}", Remedy.REPAIR) from None


class BuildSettings(NamedTuple):
    """The settings an index's chunks and vectors depend on (an index keeps them for good)."""

    model: str
    chunk_tokens: int
    chunk_overlap: int
    title_tokens: int


def settings_of(manifest: Manifest) -> BuildSettings:
    """The build settings recorded in ``manifest``."""
    return BuildSettings(manifest.model, manifest.chunk_tokens, manifest.chunk_overlap, manifest.title_tokens)


def _check_format(manifest: Manifest, where: str) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatch(f"{where}/ has index format {manifest.format_version}, this version reads "
                            f"{FORMAT_VERSION}", Remedy.REBUILD, where)


def check_readable(manifest: Manifest | None, model: str, where: str) -> Manifest:
    """The manifest of an index that can answer questions encoded by ``model``.

    Raises
    ------
    IndexCorrupt
        No build was ever committed.
    IndexMismatch
        Another format, or another model.
    """
    if manifest is None:
        raise IndexCorrupt(f"{where}/ has no committed build yet", Remedy.BUILD, where)
    _check_format(manifest, where)
    if manifest.model != model:
        raise IndexMismatch(f"{where}/ was built with model {manifest.model}, but the configuration says {model} "
                            f"(set RAG_MODEL={manifest.model} to use it as it is)", Remedy.REBUILD, where)
    return manifest


def follow_index(manifest: Manifest | None, wanted: BuildSettings, chosen: set[str]) -> BuildSettings:
    """The build settings to use on an index: the index's own, except those the user ``chosen`` explicitly.

    An index built with another default (all-MiniLM-L6-v2, 200-token chunks) keeps answering and
    growing with it; only a setting given in ``rag.toml``, ``RAG_*`` or as an argument, or a
    rebuild, moves it (:func:`check_updatable` then says so).
    """
    if manifest is None:
        return wanted
    have = settings_of(manifest)
    return BuildSettings(*(w if name in chosen else h for name, w, h in zip(BuildSettings._fields, wanted, have)))


def check_prompts(manifest: Manifest, prompts: dict[str, str], model: str, where: str) -> None:
    """Raise :class:`IndexMismatch` unless ``model``'s prompts are those the index was built with."""
    have = (manifest.query_prompt, manifest.passage_prompt)
    now = (prompts.get("query", ""), prompts.get("passage", ""))
    if have != now:
        raise IndexMismatch(f"{where}/ was built with the prompts query={have[0]!r} passage={have[1]!r}, but model "
                            f"{model} now has query={now[0]!r} passage={now[1]!r}", Remedy.REBUILD, where)


def check_updatable(manifest: Manifest, wanted: BuildSettings, where: str) -> None:
    """Raise :class:`IndexMismatch` unless ``manifest``'s index can be updated with the ``wanted`` settings."""
    _check_format(manifest, where)
    have = settings_of(manifest)
    if have != wanted:
        said = " ".join(f"{k}={v}" for k, v in have._asdict().items())
        asked = " ".join(f"{k}={v}" for k, v in wanted._asdict().items())
        raise IndexMismatch(f"{where}/ was built with {said}, but the configuration says {asked} "
                            f"(or set RAG_MODEL={have.model})", Remedy.REBUILD, where)


# -- generations ---------------------------------------------------------------------------------
def gen_dir(folder: Path, generation: int) -> Path:
    """Folder of the search files of ``generation``."""
    return Path(folder) / f"{_GEN_PREFIX}{generation:06d}"


def gen_numbers(folder: Path) -> list[int]:
    """Numbers of the generation folders present, finished or not."""
    nums = []
    for p in Path(folder).glob(f"{_GEN_PREFIX}*"):
        try:
            nums.append(int(p.name.removesuffix(_TMP)[len(_GEN_PREFIX):]))
        except ValueError:
            pass
    return nums


def next_generation(folder: Path, manifest: Manifest | None) -> int:
    """A generation number above the current one and above every folder left by a crash."""
    return max([manifest.generation if manifest else 0, *gen_numbers(folder)]) + 1


def remove_stale_generations(folder: Path, keep: set[int]) -> None:
    """Delete generation folders not in ``keep`` (and unfinished ones)."""
    for p in Path(folder).glob(f"{_GEN_PREFIX}*"):
        try:
            gen = int(p.name.removesuffix(_TMP)[len(_GEN_PREFIX):])
        except ValueError:
            continue
        if p.name.endswith(_TMP) or gen not in keep:
            shutil.rmtree(p, ignore_errors=True)


def has_search_files(folder: Path, manifest: Manifest | None) -> bool:
    """True when the manifest's generation folder is there with every file as written (checksums)."""
    if manifest is None or not gen_dir(folder, manifest.generation).is_dir():
        return False
    try:
        return not check_search_files(folder, manifest)
    except IndexCorrupt:
        return False


def vectors_path(folder: Path, generation: int) -> Path:
    """The FAISS file of ``generation``."""
    return gen_dir(folder, generation) / VECTORS


def lexical_path(folder: Path, generation: int) -> Path:
    """The BM25 folder of ``generation``."""
    return gen_dir(folder, generation) / LEXICAL


def load_vectors(folder: Path, manifest: Manifest, exact_limit: int | None = None) -> VectorIndex:
    """The vectors of the manifest's generation, checked against its dimension.

    Raises
    ------
    IndexCorrupt
        The file is missing, unreadable or of another dimension.
    """
    path = vectors_path(folder, manifest.generation)
    try:
        vectors = VectorIndex.load(path) if exact_limit is None else VectorIndex.load(path, exact_limit)
    except Exception as exc:  # FAISS says RuntimeError; a damaged file may raise anything: it is damage
        raise IndexCorrupt(f"{path} unreadable ({short(exc)})", Remedy.REPAIR, str(folder)) from None
    if vectors.dim != manifest.dimensions:
        raise IndexCorrupt(f"{path} has dimension {vectors.dim}, manifest says {manifest.dimensions}",
                           Remedy.REPAIR, str(folder))
    return vectors


def load_lexical(folder: Path, manifest: Manifest, mmap: bool = False) -> LexicalIndex:
    """The BM25 index of the manifest's generation.

    Raises
    ------
    IndexMismatch
        It was written by another text analysis (rebuild).
    IndexCorrupt
        Its files are missing or unreadable.
    """
    path = lexical_path(folder, manifest.generation)
    try:
        return LexicalIndex.load(path, mmap=mmap)
    except IndexMismatch as exc:
        raise IndexMismatch(str(exc), Remedy.REBUILD, str(folder)) from None
    except Exception as exc:  # a damaged array or JSON file may raise anything: it is damage
        raise IndexCorrupt(f"{path}/ unreadable ({short(exc)})", Remedy.REPAIR, str(folder)) from None


def write_generation(folder: Path, generation: int, vectors: VectorIndex, lexical: LexicalIndex) -> dict[str, str]:
    """Write the search files of ``generation`` completely, on disk (fsync), then move them in place.

    Returns the SHA-256 of each file written (by path relative to the generation folder), for
    the manifest. A failure (a full disk) removes the unfinished folder and raises
    :class:`rag.errors.DiskFull` or the ``OSError``; the index stays at its previous generation.
    """
    final = gen_dir(folder, generation)
    tmp = final.with_name(final.name + _TMP)
    try:
        shutil.rmtree(tmp, ignore_errors=True)  # left by an earlier failure
        tmp.mkdir(parents=True, exist_ok=True)
        vectors.save(tmp / VECTORS)
        lexical.save(tmp / LEXICAL)
        sums = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                sums[p.relative_to(tmp).as_posix()] = file_sha256(p)
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            raise DiskFull(f"disk full: the new search files of {folder}/ could not be written ({short(exc)}); "
                           f"the index is unchanged, at its previous state; free some space and run it again",
                           where=str(folder)) from None
        raise
    return sums


LOW_SPACE = 1_000_000  # bytes free below which an I/O error is taken for a full disk


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """True when ``exc`` says the disk (or the file size limit, or a quota) is full.

    FAISS reports a short write as a ``RuntimeError`` ("... requested and ... written"), SQLite
    as ``OperationalError`` ("database or disk is full", or a bare "disk I/O error" when its
    journal cannot grow), the rest as ``OSError`` ENOSPC/EFBIG/EDQUOT. With ``folder``, any I/O
    error while less than :data:`LOW_SPACE` bytes are free there counts too.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    text = str(exc).lower()
    if ("disk is full" in text or "no space left" in text or "file too large" in text
            or ("requested and" in text and "written" in text)):
        return True
    return folder is not None and ("i/o error" in text or isinstance(exc, OSError)) and low_on_space(folder)


def low_on_space(folder: Path) -> bool:
    """True when less than :data:`LOW_SPACE` bytes are free on ``folder``'s file system."""
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE
    except OSError:
        return False


def short(exc: BaseException) -> str:
    """The first line of an exception's message, cut to 200 characters."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def check_search_files(folder: Path, manifest: Manifest) -> list[str]:
    """What is wrong with the manifest's generation files against the checksums written at commit.

    Returns an empty list when every file is there with its checksum (or the manifest, made
    before checksums, has none: then only the folder is looked for).
    """
    gen = gen_dir(folder, manifest.generation)
    if not gen.is_dir():
        return [f"generation folder {gen} is missing (manifest generation {manifest.generation})"]
    problems = []
    for name, want in manifest.files().items():
        path = gen / name
        try:
            have = file_sha256(path)
        except OSError as exc:
            problems.append(f"{path} unreadable ({exc.strerror or exc})")
            continue
        if have != want:
            problems.append(f"{path} is damaged (its checksum is not the one written at commit)")
    return problems


def check_sound(folder: Path, manifest: Manifest) -> None:
    """Raise :class:`IndexCorrupt` (remedy: repair) when :func:`check_search_files` finds a problem."""
    problems = check_search_files(folder, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IndexCorrupt(f"{folder}/ search files are damaged: {problems[0]}{more}", Remedy.REPAIR, str(folder))


def vector_search_kind(folder: Path, generation: int) -> str:
    """How the vectors of ``generation`` are searched, from the description saved beside them."""
    info = VectorIndex.description(vectors_path(folder, generation))
    if info.get("kind") == "ivf":
        return f"approximate (IVF, {info.get('nprobe')} of {info.get('nlist')} cells per query)"
    return "exact (flat)"
