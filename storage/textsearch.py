"""The text side of catalog search: diacritic folding, query and case-ID words, snippets, BM25."""
from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

HIGHLIGHT = ("«", "»")
BM25_K1, BM25_B = 1.2, 0.75

_WORD = re.compile(r"[^\W_]+")
# A case ID is <ddd.dd.dd.Xdd>-<yymmdd>-<nnnn>; a word of the query that fits somewhere in that
# shape (and has a separator, so "2018" stays a word) is taken as (part of) a case ID.
_CASE_ID_SHAPE = "ddd.dd.dd.Xdd-dddddd-dddd"


# ------------------------------------------------------------------------------------ folding
@functools.lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if ch in "đĐ":
        return "d"
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)).lower()
    return base[:1] if base else " "


def fold(text: str) -> str:
    """Search form of a text: NFC, diacritics removed, đ→d, lower case; one character per character."""
    return "".join(_fold_char(c) for c in unicodedata.normalize("NFC", text))


def query_words(query: str) -> tuple[list[str], list[str]]:
    """(folded words, exact lower-case NFC words) of what the user typed."""
    nfc = unicodedata.normalize("NFC", query)
    return _WORD.findall(fold(nfc)), _WORD.findall(nfc.lower())


def _fits_case_id(word: str) -> bool:
    w = word.upper()
    # An agency part (has a dot), a unit letter and number (H56-), or yymmdd-nnnn; so that "2018-10"
    # or a decree number stays text.
    if len(w) < 5 or not ("." in w or re.search(r"[HG]\d\d-", w) or re.fullmatch(r"\d{6}-\d{1,4}", w)):
        return False
    for start in range(len(_CASE_ID_SHAPE) - len(w) + 1):
        if all((s == "d" and c.isdigit()) or (s == "X" and c in "HG") or (s in ".-" and c == s)
               for s, c in zip(_CASE_ID_SHAPE[start:], w)):
            return True
    return False


def split_case_id_words(query: str) -> tuple[str, list[str]]:
    """(the text words, the case-ID words) of a search box: ``"000.00.14.H56 quyết định"`` →
    (``"quyết định"``, [``"000.00.14.H56"``])."""
    text, ids = [], []
    for word in unicodedata.normalize("NFC", query).split():
        bare = word.strip(",;()[]\"'")
        if _fits_case_id(bare):
            ids.append(bare.upper())
        else:
            text.append(word)
    return " ".join(text), ids


def make_snippet(text: str, words: Sequence[str], *, width: int = 160) -> str:
    """A window of the original text around the first match, matched words marked «like this»."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)  # same length as text, so positions carry over
    spans: list[tuple[int, int]] = []
    for w in set(words):
        spans += [(m.start(), m.end()) for m in re.finditer(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", folded)]
    spans.sort()
    first = spans[0][0] if spans else 0
    start = max(0, first - width // 3)
    if start:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and start - space < 20 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.find(" ", end)
        end = space if 0 <= space < end + 20 else end
    out, pos = [], start
    for a, b in spans:
        if a < pos or b > end:
            continue
        out += [text[pos:a], HIGHLIGHT[0], text[a:b], HIGHLIGHT[1]]
        pos = b
    out.append(text[pos:end])
    snippet = " ".join("".join(out).split())
    return ("… " if start else "") + snippet + (" …" if end < len(text) else "")


class Bm25:
    """Okapi BM25 of a page for the query words, with Lucene's idf ln(1 + (N − n + 0.5)/(n + 0.5)) > 0.

    ``words`` are lower-case (folded or exact) words; ``df`` their page counts; ``total`` the pages.
    A page's length is its number of words; the average is taken over the pages being ranked.
    """

    def __init__(self, words: Sequence[str], df: dict[str, int], total: int, *, k1: float = BM25_K1,
                 b: float = BM25_B) -> None:
        self.k1, self.b = k1, b
        self.idf = {w: math.log(1 + (total - min(df.get(w, 0), total) + 0.5) / (min(df.get(w, 0), total) + 0.5))
                    for w in set(words)}

    def score(self, length: int, counts: Mapping[str, int], avg_length: float) -> float:
        """The page's score from its number of words and how often each word occurs (lower case)."""
        norm = self.k1 * (1 - self.b + self.b * length / (avg_length or 1.0))
        total = 0.0
        for w, idf in self.idf.items():
            tf = counts.get(w, 0)
            if tf:
                total += idf * tf * (self.k1 + 1) / (tf + norm)
        return total


def fts_words(text: str) -> str:
    """What the SQLite FTS table stores: the words, lower case, one space apart (scored by splitting)."""
    return " ".join(_WORD.findall(text.lower()))


def fts_counts(stored: str | None) -> tuple[int, Counter[str]]:
    """(number of words, occurrences of each word) of a stored FTS column."""
    if not stored:
        return 0, Counter()
    if "  " in stored or not stored.replace(" ", "").isalnum():  # written before fts_words: tokenise here
        tokens = _WORD.findall(stored.lower())
    else:  # (isalnum is what the word pattern takes: letters and digits, no "_")
        tokens = stored.split(" ")
    return len(tokens), Counter(tokens)


def relative_score(raw: float, top: float) -> float:
    return round(float(raw) / float(top), 4) if top and top > 0 else 1.0
