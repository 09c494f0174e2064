"""Regular expressions compiled with character classes cached compile to the same code, faster for spaCy."""

import re
from re import _compiler, _parser

import pytest

from rag.regex_cache import charsets_cached

LETTERS = "a-zà-öø-ÿœæß" + "".join(chr(c) for c in range(0x100, 0x250))


def code(pattern: str, flags: int = 0) -> list[int]:
    """The compiled code of ``pattern`` as ``re`` makes it (what a Pattern object runs)."""
    return _compiler._code(_parser.parse(pattern, flags), flags)


def test_a_pattern_repeating_a_large_class_compiles_to_the_same_code_and_matches_the_same():
    pattern = "(?iu)" + "|".join(f"(?:^w{i}[-‐][{LETTERS}]+$)" for i in range(40))
    plain = code(pattern)
    with charsets_cached():
        cached = code(pattern)
        compiled = re.compile(pattern + "|(?:^z+$)")  # a new pattern: not in re's own cache
    assert cached == plain
    assert compiled.match("W7-Étienne") and compiled.match("w39-ŧest") and not compiled.match("w7 étienne")


def test_the_standard_compiler_is_itself_again_after_the_block():
    before = _compiler._optimize_charset
    with charsets_cached():
        assert _compiler._optimize_charset is not before
    assert _compiler._optimize_charset is before


def test_spacys_french_token_pattern_compiles_to_the_same_code():
    exceptions = pytest.importorskip("spacy.lang.fr.tokenizer_exceptions",
                                     reason="spaCy is not installed (pip install 'rag[syntax]')")
    pattern = exceptions.TOKEN_MATCH.__self__
    with charsets_cached():
        cached = code(pattern.pattern, pattern.flags)
    assert cached == code(pattern.pattern, pattern.flags)
