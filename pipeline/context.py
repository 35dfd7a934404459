"""A tone mark or hat Tesseract hesitated over, chosen by the words around it.

Most of what sohoa still misreads on real pages is a valid syllable with the wrong tone mark or hat:
"bồ sung" for "bổ sung", "thành phó" for "thành phố", "thâm quyền" for "thẩm quyền". Each word is a
Vietnamese syllable, so pipeline/syllables.py leaves it alone. But Tesseract often hesitated: it
offered the right letter as its second choice. Where it did, with at least MIN_ALTERNATIVE
confidence, the neighbours decide. The alternative is taken when it forms, with the word before or
after it, a pair CONTEXT_FACTOR times commoner (by rank) than the word as read forms with either.

A word that is no Vietnamese syllable at all, where one change of a mark makes several
(``mend_by_neighbours``, after pipeline/syllables.py), is mended the same way. Last, a known
syllable Tesseract was sure of is changed only where the words on both sides of it vote against it
(``settle_by_neighbours``).

The pairs are those of Vietnamese text at large, not of our pages: ``data/vie_bigrams.txt.gz``,
the word bigrams of Tesseract's own langdata (Apache License 2.0), kept where both words are known
syllables, commonest first; regenerate with ``scripts/vie_bigrams.py``.

What is never touched:
- a word Tesseract offered no such alternative for (it was sure of it), unless both its
  neighbours vote against it;
- a word of one letter, or longer than MAX_LETTERS;
- a word with a digit or a symbol;
- a pair across punctuation, or across blocks and paragraphs.

Issue 19, the 62 pages of bench/realscans, words read by Tesseract (before this pass) against the
transcription:
- by Tesseract's confidences alone, swapping whenever the second choice came within 10 points of
  the first would have put 49 words right and 113 wrong;
- by the context, 283 right and 3 wrong (see PHRASE_END_FACTOR).
"""
from __future__ import annotations

import gzip
import math
import unicodedata
from functools import lru_cache
from pathlib import Path

from pipeline.syllables import PUNCT, may_mend, syllables, variants, well_formed, with_case_of

DATA = Path(__file__).with_name("data") / "vie_bigrams.txt.gz"
# Tesseract's confidence (0-100) in the alternative letter, at least. Its own pick has ~90-95; an
# alternative it did not consider has 0.
MIN_ALTERNATIVE = 20.0
# The alternative's pair must rank this many times higher than the best pair of the word as read
# (which may form none). 1: 296 right / 31 wrong on the real pages; 10: 284 / 6; 100: 263 / 3.
CONTEXT_FACTOR = 10
# A word that ends a phrase (punctuation after it, or nothing) has only the word before it to go by,
# and a pair there often continues a compound the phrase's end cuts: "phòng thi." read right was
# swapped for "phòng thí" ("phòng thí nghiệm", a laboratory, ranks 16x higher). There the alternative
# must rank PHRASE_END_FACTOR times higher again (the real pages: 283 right / 3 wrong, against
# 284 / 6 without it).
PHRASE_END_FACTOR = 10
# Words after which, on a line in capitals, a name follows (a commune, ward, district, province,
# city, village, school, company, person): ``settle_by_neighbours`` leaves those names as read.
# A surname at the start of its line starts a person's name the same way ("NGUYỄN THỊ HOA" under a
# signature or on a certificate: "thị hóa", as in "đô thị hóa", is a commoner pair than "thị hoa").
# Not "lý" nor "mai": "QUẢN LÝ", "ngày mai".
SURNAMES = frozenset({"nguyễn", "trần", "lê", "phạm", "hoàng", "huỳnh", "phan", "vũ", "võ", "đặng", "bùi",
                      "đỗ", "hồ", "ngô", "dương", "đinh", "trương"})
NAMING = frozenset({"xã", "phường", "trấn", "huyện", "quận", "tỉnh", "phố", "thôn", "ấp", "ông", "bà",
                    "tên", "trường", "ty", "viện"})
# At a phrase's edge (punctuation on one side, or nothing) a known syllable is changed only when
# it forms no known pair with its one neighbour and another spelling forms one of the commonest
# COMMON_PAIR_RANK pairs ("sửa đối," -> "đổi,", "ĐỎI, BỎ SUNG" -> "BỔ"; the pairs ranked to 3000
# are ~2 % of them). The real pages: 9 right, none wrong, 3 where the transcription has neither
# (each "trực tuyến" or "CHỦ TỊCH" put right); to 10,000: 10 right, 5 neither.
COMMON_PAIR_RANK = 3000
MAX_LETTERS = 7  # the longest Vietnamese syllable ("nghiêng", "khuỷu") has 7 letters
SAME_SHAPE = "cosuvwxz"  # letters whose capital is the small letter made taller (marks aside)
ENDS = ".,;:!?)”\"'…"  # a word ending in one of these pairs with nothing after it
OPENS = "(“\"'"        # nor a word starting with one of these with anything before it


@lru_cache(maxsize=1)
def pairs() -> dict[str, int]:
    """The known word pairs ("bổ sung") and their rank, 1 the commonest; empty without the data file."""
    try:
        with gzip.open(DATA, "rt", encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if not line.startswith("#")]
    except OSError:
        return {}
    return {pair: rank for rank, pair in enumerate(lines, 1)}


def _joinable(left: str | None, right: str | None) -> bool:
    """True when ``left`` and ``right`` can form a pair: both there, no punctuation between them."""
    return bool(left) and bool(right) and left[-1] not in ENDS and right[0] not in OPENS


def _rank(left: str | None, right: str | None) -> float:
    if not _joinable(left, right):
        return math.inf
    return pairs().get(f"{left.strip(PUNCT).lower()} {right.strip(PUNCT).lower()}", math.inf)


def choose(word: str, choices: list[list[tuple[str, float]]], before: str | None, after: str | None) -> str | None:
    """The word with one letter swapped for the alternative Tesseract offered, when the words
    ``before`` and ``after`` it make that reading far the likelier; None to leave it."""
    core = word.strip(PUNCT)
    if not pairs() or not 2 <= len(core) <= MAX_LETTERS or not core.isalpha() or len(choices) != len(word):
        return None
    start = word.index(core)
    as_read = min(_rank(before, word), _rank(word, after))
    factor = CONTEXT_FACTOR * (PHRASE_END_FACTOR if not after or word[-1] in ENDS else 1)
    best: tuple[float, str] | None = None
    for i in range(start, start + len(core)):
        for alt, conf in choices[i]:
            if (conf < MIN_ALTERNATIVE or not alt or len(alt) != 1 or alt == word[i]
                    or _base(alt) != _base(word[i]) or alt.isupper() != word[i].isupper()):
                continue
            fixed = word[:i] + alt + word[i + 1:]
            if fixed.strip(PUNCT).lower() not in syllables():
                continue
            rank = min(_rank(before, fixed), _rank(fixed, after))
            if rank * factor < as_read and (best is None or rank < best[0]):
                best = (rank, fixed)
    return best[1] if best else None


def small_letter(word: str, choices: list[list[tuple[str, float]]], before: str | None) -> str | None:
    """A capitalised word read mid-sentence written small, where its first letter looks alike in
    both cases but for its size (SAME_SHAPE), Tesseract offered it small with at least
    MIN_ALTERNATIVE confidence, and the word before pairs with it: "bổ Sung" for "bổ sung" (5 times
    on the real pages), "hồ Sơ", "cấp Xã", "giữa Các" (8 put right, none made wrong; on the
    synthetic sets 3 more right). A name mid-sentence seldom pairs with the word before it in
    Vietnamese text at large, and Tesseract is sure of its capital."""
    core = word.strip(PUNCT)
    if (not before or before[-1] in ".:;!?" or len(core) < 2 or not core.isalpha() or not core[0].isupper()
            or core[1:] != core[1:].lower() or len(choices) != len(word)):
        return None
    start = word.index(core)
    small = core[0].lower()
    if _base(small) not in SAME_SHAPE:
        return None  # "Kế hoạch", "Quyết định" mid-sentence name a document: their capital stays
    if max((conf for alt, conf in choices[start] if alt == small), default=0.0) < MIN_ALTERNATIVE:
        return None
    if _rank(before, word) == math.inf:
        return None
    return word[:start] + core.lower() + word[start + len(core):]


def correct_in_context(data: dict[str, list]) -> list[list[str]]:
    """Fix the words of an image_to_data-shaped reading in place (see ``choose``; the neighbours are
    the words as read, in the same block and paragraph); the corrections made, [as read, as written]."""
    choices_column = data.get("choices") or []
    made: list[list[str]] = []
    fixes: dict[int, str] = {}
    for i, word, before, after in _neighbours(data):
        choices = choices_column[i] if i < len(choices_column) else None
        if not choices:
            continue
        fixed = choose(word, choices, before, after) or small_letter(word, choices, before)
        if fixed is not None:
            fixes[i] = fixed
            made.append([word, fixed])
    for i, fixed in fixes.items():
        data["text"][i] = fixed
    return made


def mend_by_neighbours(data: dict[str, list]) -> list[list[str]]:
    """A word that is still no known syllable after pipeline/syllables.py, for which one change of a
    tone mark, hat or d's bar gives several ("câp": "cấp" or "cập", "bỗ": "bổ", "bộ", "bố", ...):
    the one whose pair with the word before or after it ranks CONTEXT_FACTOR times above every other
    candidate's. Such a word is no Vietnamese syllable, so it is mended, never a valid one. Issue
    19's 62 real pages, words read by Tesseract against the transcription: 31 put right, 2 made
    wrong (a receipt's unmarked "BACH", a transcribed typo "mòi"); the corrections made."""
    made: list[list[str]] = []
    for i, word, before, after in _neighbours(data):
        core = may_mend(word)
        found = variants(core.lower()) if core and pairs() else set()
        if len(found) < 2:
            continue
        start = word.index(core)
        scored = sorted((min(_rank(before, spelled), _rank(spelled, after)), spelled) for spelled in
                        (word[:start] + with_case_of(core, c) + word[start + len(core):] for c in found))
        (best, fixed), (second, _) = scored[0], scored[1]
        if best * CONTEXT_FACTOR < second:
            data["text"][i] = fixed
            made.append([word, fixed])
    return made


def settle_by_neighbours(data: dict[str, list]) -> list[list[str]]:
    """A known syllable that both its neighbours vote against: one change of its tone mark, hat or
    d's bar gives another known syllable that forms a commoner pair with the word before it AND with
    the word after it, CONTEXT_FACTOR times commoner (by rank) than the word as read at best: "thuộc
    thâm quyền" -> "thẩm", "thành phó Hải" -> "phố", "các tô chức" -> "tổ". Tesseract was sure of
    these (word confidence 90-97, no second choice offered), so ``choose`` cannot see them; the two
    neighbours are the evidence instead. Never a capitalised word (a name: "Văn Tám" would pair
    better as "Văn Tâm"), nor a word in capitals after a word that starts a name on its line ("XÃ ĐA
    TỐN" is a commune, not "xã đã"; see NAMING), nor a word of one letter. A word at a phrase's
    edge has one neighbour, which must then make one of the commonest pairs with the other spelling
    and none with the word as read (COMMON_PAIR_RANK).
    A word in capitals spelled as Vietnamese can be but missing from the word list ("ĐỎI", which
    pipeline/syllables.py leaves as a possible name) is weighed the same way.
    Issue 19's 62 real pages, every reading Tesseract made of them: 73 changes, 66 put right, none
    made wrong, 6 where the transcription has both spellings (one the page's own typo, "năng lực
    canh tranh"), 1 with neither; letting any one neighbour decide, as ``choose`` does with
    Tesseract's alternatives, would have made 93 right and 62 wrong. The corrections made."""
    made: list[list[str]] = []
    named = _after_a_naming_word(data)
    for i, word, before, after in _neighbours(data):
        core = word.strip(PUNCT)
        if (i in named or not pairs() or not 2 <= len(core) <= MAX_LETTERS or not core.isalpha()
                or not (core.islower() or core.isupper()) or not _spelled_right(core)):
            continue
        fixed = _settled(word, core, before, after)
        if fixed is not None:
            data["text"][i] = fixed
            made.append([word, fixed])
    return made


def _spelled_right(core: str) -> bool:
    """A known syllable, or one spelled as Vietnamese can be that the word list lacks (a heading's
    "ĐỎI" is no known syllable but could be a name, so pipeline/syllables.py leaves it)."""
    return core.lower() in syllables() or well_formed(core.lower())


def _settled(word: str, core: str, before: str | None, after: str | None) -> str | None:
    start = word.index(core)
    as_before, as_after = _rank(before, word), _rank(word, after)
    scored = []
    for spelled in variants(core.lower()) - {core.lower()}:
        fixed = word[:start] + with_case_of(core, spelled) + word[start + len(core):]
        scored.append((_rank(before, fixed), _rank(fixed, after), fixed))
    open_before, open_after = _joinable(before, word), _joinable(word, after)
    if open_before and open_after:
        as_read = min(as_before, as_after)
        best = min(((min(b, a), fixed) for b, a, fixed in scored
                    if b < as_before and a < as_after and min(b, a) * CONTEXT_FACTOR < as_read), default=None)
        return best[1] if best else None
    if open_before == open_after or min(as_before, as_after) != math.inf:
        return None  # no neighbour, or the word as read pairs with the one it has
    # a phrase's edge: one neighbour, with which the word as read forms no known pair at all
    ranked = sorted((min(b, a), fixed) for b, a, fixed in scored)
    if not ranked or ranked[0][0] >= COMMON_PAIR_RANK:
        return None
    if len(ranked) > 1 and ranked[1][0] < ranked[0][0] * CONTEXT_FACTOR:
        return None
    return ranked[0][1]


def _after_a_naming_word(data: dict[str, list]) -> set[int]:
    """The words in capitals that follow one of NAMING on the same line ("ỦY BAN NHÂN DÂN XÃ ĐA TỐN":
    ĐA and TỐN), or a surname that starts its line ("NGUYỄN THỊ HOA"; "PHẠM VI" inside a heading is
    no name): a heading's place, agency or person name, spelled as it is."""
    texts = data.get("text") or []
    line_of = places(data)
    out: set[int] = set()
    naming_on: set[tuple] = set()
    seen_lines: set[tuple] = set()
    for i, text in enumerate(texts):
        core = (text or "").strip(PUNCT)
        if not core:
            continue
        if line_of[i] in naming_on and core.isupper():
            out.add(i)
        lower = core.lower()
        if lower in NAMING or (lower in SURNAMES and line_of[i] not in seen_lines):
            naming_on.add(line_of[i])
        seen_lines.add(line_of[i])
    return out


def places(data: dict[str, list]) -> list[tuple[int, int, int]]:
    """Each word's (block, paragraph, line) in an image_to_data-shaped reading (0 where a column
    is missing or short)."""
    texts = data.get("text") or []
    columns = [data.get(k) or [] for k in ("block_num", "par_num", "line_num")]
    return [tuple(c[i] if i < len(c) else 0 for c in columns) for i in range(len(texts))]


def _neighbours(data: dict[str, list]) -> list[tuple[int, str, str | None, str | None]]:
    """Each word of the reading as it stands now: its index, its text, and the words before and
    after it in the same block and paragraph (None at the paragraph's edges)."""
    texts = data.get("text") or []
    paragraph = [place[:2] for place in places(data)]
    words = [(i, (t or "").strip()) for i, t in enumerate(texts) if (t or "").strip()]
    return [(i, word,
             words[k - 1][1] if k and paragraph[words[k - 1][0]] == paragraph[i] else None,
             words[k + 1][1] if k + 1 < len(words) and paragraph[words[k + 1][0]] == paragraph[i] else None)
            for k, (i, word) in enumerate(words)]


def _base(letter: str) -> str:
    """A letter without its tone mark and hat, lower case, d for đ ("Ầ" -> "a", "đ" -> "d")."""
    return unicodedata.normalize("NFD", letter.lower())[0].replace("đ", "d")
