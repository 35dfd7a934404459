"""Vietnamese syllable correction: a misread tone mark or vowel hat, fixed from Tesseract's own
alternatives for one letter, when the word as read is not a Vietnamese syllable and the fix is.

Vietnamese is written in syllables from a closed set; most misreadings leave one syllable with a
wrong tone mark or hat ("hê" for "hệ", "tât" for "tất"). ``data/vie_syllables.txt`` is the word list
of the ``vie`` traineddata (``combine_tessdata -u``, ``dawg2wordlist``: 7 181 entries), split into
syllables, lower case, kept only where they are well formed (``well_formed``); regenerate with
``scripts/vie_syllables.py``. A word is touched only when it is a lower-case word of letters (no
digit, not a capitalised name mid-sentence), it is not in the set, and swapping one letter for an
alternative Tesseract gave with some confidence makes it one; the likeliest such swap wins.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).with_name("data") / "vie_syllables.txt"
# An alternative letter counts when Tesseract gave it at least this confidence (0-100; the letter
# it chose has ~90-95, the others mostly 0). Measured on the real lines and pages (see issue 19's notes).
MIN_ALTERNATIVE = 5.0
# A word not in the set but well formed (a rare syllable the word list lacks: "chông") is left alone
# unless the alternative is at least this confident.
MIN_ALTERNATIVE_WELL_FORMED = 20.0

TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền, sắc, ngã, hỏi, nặng
ONSETS = ("ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr", "b", "c", "d", "đ", "g", "h",
          "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "")
RHYMES = set("""a ac ach ai am an ang anh ao ap at au ay ăc ăm ăn ăng ăp ăt âc âm ân âng âp ât âu ây
e ec em en eng eo ep et ê êch êm ên ênh êp êt êu i ia ich iêc iêm iên iêng iêp iêt iêu im in inh ip it iu
o oa oac oach oai oam oan oang oanh oao oap oat oay oăc oăm oăn oăng oăt oc oe oen oeo oet oi om on ong
ooc oong op ot ô ôc ôi ôm ôn ông ôp ôt ơ ơi ơm ơn ơp ơt u ua uân uâng uât uây uc uê uêch uênh uy uya uych
uyên uyêt uynh uyt uyu ui um un ung uôc uôi uôm uôn uông uôt up ut uơ ư ưa ưc ưi ưm ưn ưng ươc ươi ươm
ươn ương ươp ươt ươu ưt ưu y yêm yên yêt yêu""".split())
STOPS = ("c", "ch", "p", "t")
PUNCT = ".,;:!?()[]\"'“”…-–"


def _split_tone(syllable: str) -> tuple[str, set[str]]:
    """The syllable without its tone mark (hats kept), and the tone marks it had."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tones = {c for c in decomposed if c in TONES}
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in TONES)), tones


def well_formed(syllable: str) -> bool:
    """True when a lower-case syllable is spelled as Vietnamese can be: onset, rhyme, at most one tone
    (only sắc or nặng after a stop), c/k, g/gh and ng/ngh as the spelling rules place them."""
    bare, tones = _split_tone(syllable)
    if len(tones) > 1 or not bare:
        return False
    for onset in ONSETS:
        if not bare.startswith(onset):
            continue
        rhyme = bare[len(onset):]
        spelled = rhyme in RHYMES and not (onset == "qu" and rhyme[0] == "u") or onset == "gi" and rhyme == ""
        if not spelled:
            continue
        front = rhyme[:1] in ("i", "e", "ê", "y")  # k, gh, ngh before these; c, g, ng elsewhere
        if onset in ("k", "gh", "ngh") and not front or onset in ("c", "g", "ng") and front:
            continue
        if rhyme.endswith(STOPS) and tones and not tones <= {"\u0301", "\u0323"}:
            continue
        return True
    return False


@lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """The known syllables (lower case, NFC); empty when the data file is missing."""
    try:
        text = DATA.read_text("utf-8")
    except OSError:
        return frozenset()
    return frozenset(s for s in text.split() if s)


VOWELS = set("aăâeêioôơuưy")


def _base(letter: str) -> str:
    """A letter without its tone mark and hat, lower case ("Ầ" -> "a", "ổ" -> "o")."""
    return unicodedata.normalize("NFD", letter.lower())[0]


def _letter_confidence(choices: list[list[tuple[str, float]]], i: int, letter: str) -> float:
    return max((c for t, c in choices[i] if t == letter), default=0.0) if i < len(choices) else 0.0


def unstutter(word: str, choices: list[list[tuple[str, float]]]) -> str | None:
    """Tesseract's LSTM sometimes writes one vowel twice, with two readings of its marks ("cầẦn",
    "Đỗổi"; seen on real 200-dpi letters, not on the raw reading of the same page): the word with
    the less confident of the two dropped, when that makes a known syllable and the word as read is
    none. Vietnamese doubles a vowel letter only in a few loan rhymes ("xoong", "soóc"), which are
    well formed and so never touched."""
    known = syllables()
    core = word.strip(PUNCT)
    if not known or len(core) < 2 or not core.isalpha() or core.lower() in known or well_formed(core.lower()):
        return None
    start = word.index(core)
    best: tuple[float, str] | None = None
    for i in range(len(core) - 1):
        a, b = core[i], core[i + 1]
        if _base(a) != _base(b) or _base(a) not in VOWELS:
            continue
        for drop, keep in ((i + 1, i), (i, i + 1)):
            fixed = core[:drop] + core[drop + 1:]
            if fixed[1:] != fixed[1:].lower() or fixed.lower() not in known:
                continue  # still a capital mid-word: not a word this fixes
            conf = _letter_confidence(choices, start + keep, core[keep])
            if best is None or conf > best[0]:
                best = (conf, fixed)
    if best is None:
        return None
    return word[:start] + best[1] + word[start + len(core):]


def correct(word: str, choices: list[list[tuple[str, float]]]) -> str | None:
    """The corrected word, or None to leave it. ``choices``: per letter of the word as read, Tesseract's
    alternatives (text, confidence), its own pick among them."""
    known = syllables()
    stutter = unstutter(word, choices)
    if stutter is not None:
        return stutter
    core = word.strip(PUNCT)
    if not known or not core or not core.isalpha() or core.lower() != core:
        return None  # names, capitals, numbers and codes are left alone
    if core in known:
        return None
    if len(choices) != len(word):
        return None  # letters and symbols do not line up (a ligature, a combining mark alone)
    start = word.index(core)
    floor = MIN_ALTERNATIVE_WELL_FORMED if well_formed(core) else MIN_ALTERNATIVE
    best: tuple[float, str] | None = None
    for i in range(start, start + len(core)):
        for alt, conf in choices[i]:
            if conf < floor or alt == word[i] or len(alt) != 1 or not alt.isalpha() or alt.lower() != alt:
                continue
            fixed = core[:i - start] + alt + core[i - start + 1:]
            if fixed in known and (best is None or conf > best[0]):
                best = (conf, fixed)
    if best is None:
        return None
    return word[:start] + best[1] + word[start + len(core):]


def correct_words(data: dict[str, list]) -> list[list[str]]:
    """Fix the words of an image_to_data-shaped reading in place (its "choices" column, when the
    engine gave one); the corrections made, [as read, as written]. A capitalised word after a word
    that does not end a sentence is a name and is left alone (``correct`` already skips it)."""
    made: list[list[str]] = []
    for i, choices in enumerate(data.get("choices") or []):
        text = (data["text"][i] or "").strip()
        if not choices or not text:
            continue
        fixed = correct(text, choices)
        if fixed is not None:
            made.append([text, fixed])
            data["text"][i] = fixed
    return made
