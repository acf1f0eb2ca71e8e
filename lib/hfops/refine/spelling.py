"""Spelling correction of queries with symspellpy and the English frequency dictionary it ships.

``waht is teh captial of frnace`` -> ``what is the capital of france``. Words are corrected one at a time
(edit distance 1: a transposed, missing, extra or wrong letter), so each fix is local and explainable.
Left as typed: words the dictionary or the question bank knows, words with digits or inner punctuation
(``qwen2.5``, ``gpt-4``), words written in capitals (``NP``, ``TCP``), and words of 3 letters or fewer
unless the fix only swaps letters (``teh`` -> ``the``, but ``tcp`` stays ``tcp``, not ``top``).
Loading the dictionary takes 1-2 s (once per process, during warm-up); a lookup takes microseconds.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

DICTIONARY = "frequency_dictionary_en_82_765.txt"  # word<space>count, shipped inside the symspellpy wheel
MAX_EDIT_DISTANCE = 1
PREFIX_LENGTH = 7
SHORT_WORD = 3  # at most this long: only letter swaps are corrected (short words are often acronyms)
_WORD = re.compile(r"(?<![\w.'-])[A-Za-z]+(?![\w.'-]*\w)")


class Speller:
    """Word-by-word correction against the shipped frequency dictionary plus ``known_words``."""

    def __init__(self, known_words: Iterable[str] = ()) -> None:
        from symspellpy import SymSpell

        started = time.perf_counter()
        self._symspell: Any = SymSpell(
            max_dictionary_edit_distance=MAX_EDIT_DISTANCE, prefix_length=PREFIX_LENGTH
        )
        path = importlib.resources.files("symspellpy") / DICTIONARY
        with importlib.resources.as_file(path) as dictionary:
            if not self._symspell.load_dictionary(
                str(dictionary), term_index=0, count_index=1, encoding="utf-8"
            ):
                raise FileNotFoundError(f"symspellpy dictionary {DICTIONARY} not found")
        self._known = {w.lower() for w in known_words}
        self.load_seconds = time.perf_counter() - started

    def correct_word(self, word: str) -> str:
        """``word`` corrected, or unchanged when it is known, an acronym or no single fix applies."""
        from symspellpy import Verbosity

        lower = word.lower()
        if lower in self._known or lower in self._symspell.words or (word.isupper() and len(word) > 1):
            return word
        if not word.islower() and not word[1:].islower():  # mixed case such as iPhone, McDonald
            return word
        found = self._symspell.lookup(lower, Verbosity.TOP, MAX_EDIT_DISTANCE, include_unknown=False)
        if not found:
            return word
        fixed = str(found[0].term)
        if len(lower) <= SHORT_WORD and sorted(fixed) != sorted(lower):
            return word
        return fixed.capitalize() if word[0].isupper() else fixed

    def correct(self, text: str) -> str:
        """Every plain word of ``text`` through :meth:`correct_word`; spacing and punctuation kept."""
        return _WORD.sub(lambda match: self.correct_word(match.group(0)), text)


_speller: Speller | None = None
_speller_lock = threading.Lock()
_load_failed = False


def get_speller(known_words: Iterable[str] = ()) -> Speller | None:
    """This process's speller (loaded on first use, with ``known_words``); None if it cannot load."""
    global _speller, _load_failed
    with _speller_lock:
        if _speller is None and not _load_failed:
            try:
                _speller = Speller(known_words)
            except Exception as exc:  # the refiner works without it: no spelling correction
                _load_failed = True
                log.warning("spelling correction unavailable: %s", exc)
        return _speller
