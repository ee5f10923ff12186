"""Words as ADK's InMemoryMemoryService matches them, and the index terms built from them.

ADK (google/adk/memory/in_memory_memory_service.py) matches a query word `q` (a `\\w+`
token of the NFC query, lowercased) against an event when `q` is one of the event's
words (its lowercased `\\w+` tokens, plus the Latin and non-Latin runs of a token that
mixes scripts) or, for a non-ASCII `q` only, when `q` is a substring of the event's
NFC text lowercased. An index that answers this without reading every event:

- `w:<word>` for every ASCII word of the event: an ASCII query word matches exactly them;
- `g:<gram>` for every non-ASCII character and every two-character window holding one,
  of the lowercased text and of its non-ASCII words: a non-ASCII query word can only
  match an event that has all of its grams, and `verify` settles each such candidate.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"\w+")
MAX_WORD_KEY_CHARS = 200
"""ASCII words longer than this are indexed by their SHA-1 (`h:<hex>`), keys stay short."""


def event_text(content: Any) -> str:
    """The text ADK searches in an event's content: its parts' texts joined by spaces."""
    if content is None or not content.parts:
        return ""
    return " ".join(part.text for part in content.parts if part.text)


def words_lower(text: str) -> set[str]:
    """The lowercased `\\w+` tokens of the NFC text (ADK's `_extract_words_lower`)."""
    return {word.lower() for word in _WORD.findall(unicodedata.normalize("NFC", text))}


def _is_latin(c: str) -> bool:
    if c.isascii():
        return c.isalnum() or c == "_"
    return unicodedata.name(c, "").startswith("LATIN")


def searchable_words(text: str) -> set[str]:
    """An event's words: tokens plus single-script runs of mixed tokens (ADK's rule)."""
    words = words_lower(text)
    for word in list(words):
        if not word.isascii():
            for _, group in itertools.groupby(word, _is_latin):
                words.add("".join(group))
    return words


def lowered(text: str) -> str:
    """The NFC text lowercased, in which ADK looks for non-ASCII query words."""
    return unicodedata.normalize("NFC", text).lower()


def word_key(word: str) -> str:
    if len(word) > MAX_WORD_KEY_CHARS:
        return "h:" + hashlib.sha1(word.encode()).hexdigest()
    return "w:" + word


def _gram_char(c: str) -> bool:
    """Characters a lowercased query word can hold (no spaces, no ASCII punctuation)."""
    if c.isascii():
        return c.isalnum() or c == "_"
    return not c.isspace()


def grams(text: str) -> set[str]:
    """Non-ASCII characters of `text`, and its two-character windows holding one."""
    found: set[str] = set()
    previous = ""
    for c in text:
        if not _gram_char(c):
            previous = ""
            continue
        if not c.isascii():
            found.add(c)
        if previous and not (previous.isascii() and c.isascii()):
            found.add(previous + c)
        previous = c
    return found


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the index needs of one entry's text."""

    terms: tuple[str, ...]
    """Sorted index terms (`w:`, `h:`, `g:`)."""
    text_lower: str | None
    """The NFC lowercased text when it holds non-ASCII characters (else None)."""
    extras: tuple[str, ...]
    """Non-ASCII words that are not substrings of `text_lower` (Greek final sigma...)."""


def analyze(text: str) -> Analysis | None:
    """The index terms of `text`, or None if it has no word (it could never be found)."""
    words = searchable_words(text)
    if not words:
        return None
    lower = lowered(text)
    terms = {word_key(w) for w in words if w.isascii()}
    extras: list[str] = []
    if not lower.isascii():
        terms.update("g:" + g for g in grams(lower))
        extras = sorted(w for w in words if not w.isascii() and w not in lower)
        for extra in extras:
            terms.update("g:" + g for g in grams(extra))
    return Analysis(tuple(sorted(terms)), None if lower.isascii() else lower, tuple(extras))


def verify(word: str, text_lower: str | None, extras: Iterable[str]) -> bool:
    """Whether the non-ASCII query word `word` matches (ADK: a word of it, or in its text)."""
    if text_lower is None:
        return False
    return word in text_lower or word in extras


@dataclass(frozen=True, slots=True)
class QueryTerm:
    """One query word and how to find the entries it matches."""

    word: str
    keys: tuple[str, ...]
    """Index terms every match holds; for an ASCII word, exactly one, held by the matches only."""

    @property
    def exact(self) -> bool:
        """True when the postings of `keys[0]` are the matches (no `verify` needed)."""
        return self.word.isascii()


def query_terms(query: str) -> list[QueryTerm]:
    """The distinct words of a query, in a fixed order (ADK counts each once)."""
    terms = []
    for word in sorted(words_lower(query)):
        if word.isascii():
            terms.append(QueryTerm(word, (word_key(word),)))
            continue
        if len(word) == 1:
            keys = {word}
        else:
            keys = {g for g in grams(word) if len(g) == 2} or {c for c in word if not c.isascii()}
        terms.append(QueryTerm(word, tuple(sorted("g:" + k for k in keys))))
    return terms
