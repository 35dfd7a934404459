"""Vietnamese syllable correction: a misread tone mark or vowel hat, fixed from Tesseract's own
alternatives for one letter, when the word as read is not a Vietnamese syllable and the fix is.

Vietnamese is written in syllables from a closed set; most misreadings leave one syllable with a
wrong tone mark or hat ("hê" for "hệ", "tât" for "tất"). ``data/vie_syllables.txt`` is the word list
of the ``vie`` traineddata (``combine_tessdata -u``, ``dawg2wordlist``: 7 181 entries), split into
syllables, lower case, kept only where they are well formed (``well_formed``); regenerate with
``scripts/vie_syllables.py``. A word is touched only when it is a lower-case word of letters (no
digit, not a capitalised name mid-sentence), it is not in the set, and swapping one letter for an
alternative Tesseract gave with some confidence makes it one; the likeliest such swap wins. A word
still not in the set is mended without Tesseract's alternatives only where a single change of a hat
(``repair_hat``), or of the tone mark, a hat or d's bar (``repair_mark``), makes one known syllable
and no other.
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


# Tesseract's vie model sometimes writes the Icelandic eth (U+00D0) for the Vietnamese Đ (U+0110),
# alone or doubled ("/QĐÐ-UBND", "GD&ĐÐT" on real decisions): the eth never occurs in Vietnamese.
# Likewise the fraction slash (U+2044) for the slash of a document number ("443⁄QĐ-BYT",
# "24/11⁄2022": 11 times on bench/realscans' 62 pages) and Y with diaeresis for a Y with a speck
# above it (7 times); none of the three is in any page's transcription.
ETH = {"ĐÐ": "Đ", "ÐĐ": "Đ", "ÐÐ": "Đ", "Ð": "Đ", "đð": "đ", "ðđ": "đ", "ð": "đ",
       "\u2044": "/", "Ÿ": "Y", "ÿ": "y"}
# A vowel's hat (and đ's bar) as Tesseract can lose or add it; the tone mark is kept as read.
HATS = {"a": "aăâ", "ă": "aăâ", "â": "aăâ", "e": "eê", "ê": "eê", "o": "oôơ", "ô": "oôơ", "ơ": "oôơ",
        "u": "uư", "ư": "uư", "d": "dđ", "đ": "dđ"}


def without_eth(word: str) -> str:
    for wrong, right in ETH.items():
        word = word.replace(wrong, right)
    return word


def inner_capital(word: str) -> str | None:
    """A lower-case word with one capital letter inside it, where the word in lower case is a known
    syllable: Tesseract sometimes writes a marked vowel as its capital ("khẨn", "nghiỆp", "triỂn",
    "cẮm": 4 times on bench/realscans' 62 pages, never in a transcription); no Vietnamese word has a
    capital inside it. Codes and mixed-case names ("iPhone", "TTHC") are no known syllable."""
    core = word.strip(PUNCT)
    if (len(core) < 2 or not core.isalpha() or not core[0].islower()
            or sum(ch.isupper() for ch in core) != 1 or core.lower() not in syllables()):
        return None
    start = word.index(core)
    return word[:start] + core.lower() + word[start + len(core):]


# Marks that are no punctuation and no letter, which Tesseract glues to a word from a rule's end, a
# speck or a seal's edge: "cấp_", "_PHÓ", "ngày£", "{tạo", "\\THUỘC", "nhận®" (bench/realscans).
JUNK = "_{}|\\£†‡®©¬~^`#@+=<>«»¿¡¶°•"  # not § nor $: they stand for an S ("§ở", "$ố")


def without_junk(word: str) -> str | None:
    """The word without the marks of JUNK at its ends (inside its own punctuation: "nhận®," ->
    "nhận,"), when what remains is a known syllable; None when there is nothing to strip or no
    syllable remains."""
    core = word.strip(PUNCT)
    if not core:
        return None
    start = word.index(core)
    inner = core.strip(JUNK).strip(PUNCT)
    if inner == core or not inner.isalpha() or inner.lower() not in syllables():
        return None
    if inner[1:] != inner[1:].lower() and not inner.isupper():
        return None
    return word[:start] + inner + word[start + len(core):]


def with_case_of(model: str, word: str) -> str:
    if model.isupper():
        return word.upper()
    return word[:1].upper() + word[1:] if model[:1].isupper() else word


def repair_hat(word: str) -> str | None:
    """A word that is no Vietnamese syllable at all, with the one known syllable that a single hat
    (or đ's bar) changed gives: "QUYÉT" -> "QUYẾT", "quyét," -> "quyết," (the hat lost under a tone mark, the
    commonest error on the real set's 150-300 dpi decisions, bench/realscans). Capitals too: headings
    are set in capitals, and a name is always a valid syllable, so it never gets here. Nothing when
    no change, or more than one, makes a known syllable."""
    known = syllables()
    core = word.strip(PUNCT)
    lower = core.lower()
    if not known or not core.isalpha() or lower in known or well_formed(lower):
        return None  # a well-formed syllable the word list lacks ("gôm" for "gồm") is no hat error
    if core[1:] != core[1:].lower() and not core.isupper():
        return None  # mixed case inside a word ("iPhone", a stutter): not a syllable this fixes
    decomposed = unicodedata.normalize("NFD", lower)
    tones = "".join(c for c in decomposed if c in TONES)
    bare = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in TONES))
    found = set()
    for i, ch in enumerate(bare):
        for other in HATS.get(ch, ""):
            if other == ch:
                continue
            variant = bare[:i] + other + bare[i + 1:]
            for candidate in _toned(variant, tones):
                if candidate in known and well_formed(candidate):
                    found.add(candidate)
    if len(found) != 1:
        return None
    fixed = with_case_of(core, found.pop())
    start = word.index(core)
    return word[:start] + fixed + word[start + len(core):]


def could_be_a_name(syllable: str) -> bool:
    """True when a lower-case syllable is spelled as Vietnamese can be and carries the tone its
    ending asks for: a syllable ending in c, ch, p or t is spoken with sắc or nặng, so "quyêt" is a
    mark Tesseract lost, never a name (``well_formed`` lets it pass: the word list has unmarked
    spellings such as "quoc", "hop" from receipts and addresses)."""
    bare, tones = _split_tone(syllable)
    return well_formed(syllable) and not (bare.endswith(STOPS) and not tones)


def repair_mark(word: str) -> str | None:
    """A word that is no known syllable, with the one known syllable that a single change of its
    tone mark, of one letter's hat or of d's bar gives: "triên" -> "triển", "xuât" -> "xuất",
    "đưỡng" -> "dưỡng", "Quyêt" -> "Quyết". Nothing when more than one can be meant ("câp": "cấp"
    or "cập"; pipeline/context.py then lets the neighbouring words choose). Capitals and capitalised words only when they cannot be a name (``could_be_a_name``);
    a lower-case syllable the word list lacks is touched only when a single change makes a known
    one (issue 19's 62 real pages: 18 such words put right, none made wrong)."""
    core = may_mend(word)
    if core is None:
        return None
    found = variants(core.lower())
    if len(found) != 1:
        return None
    start = word.index(core)
    return word[:start] + with_case_of(core, found.pop()) + word[start + len(core):]


def may_mend(word: str) -> str | None:
    """The word without its punctuation when it is one ``repair_mark`` may change (no known
    syllable, letters only, lower case or unable to be a name), else None."""
    core = word.strip(PUNCT)
    lower = core.lower()
    if not syllables() or len(core) < 2 or not core.isalpha() or lower in syllables():
        return None
    if core != lower and (could_be_a_name(lower) or core[1:] != core[1:].lower() and not core.isupper()):
        return None
    return core


def variants(lower: str) -> set[str]:
    """The known syllables one change of a lower-case word's tone mark, of one letter's hat or of
    d's bar makes (each spelled as Vietnamese can be and able to be a name)."""
    bare, tones = _split_tone(lower)
    found = {c for tone in ("", *sorted(TONES)) for c in _toned(bare, tone)}
    for i, ch in enumerate(bare):
        for other in HATS.get(ch, ""):
            found |= _toned(bare[:i] + other + bare[i + 1:], "".join(tones))
    return {c for c in found if c != lower and c in syllables() and could_be_a_name(c)}


def _toned(bare: str, tones: str) -> set[str]:
    """The spellings of a toneless syllable with the tone mark put on each of its vowels."""
    if not tones:
        return {bare}
    return {unicodedata.normalize("NFC", bare[:i + 1] + tones + bare[i + 1:])
            for i, ch in enumerate(bare) if _base(ch) in VOWELS}


def correct_words(data: dict[str, list]) -> list[list[str]]:
    """Fix the words of an image_to_data-shaped reading in place: letters Vietnamese never uses (the
    eth for Đ, see ETH), a capital inside a word, a doubled vowel or a letter Tesseract offered an alternative for (its
    "choices" column, when the engine gave one), a lost or added hat, a lost tone mark or d's bar
    where one syllable alone can be meant; the corrections made, [as read, as written]. A capitalised word after a word
    that does not end a sentence is a name and is left alone (``correct`` already skips it)."""
    made: list[list[str]] = []
    choices_column = data.get("choices") or []
    for i, raw in enumerate(data.get("text") or []):
        text = (raw or "").strip()
        if not text:
            continue
        fixed = without_eth(text)
        fixed = without_junk(fixed) or fixed
        fixed = inner_capital(fixed) or fixed
        choices = choices_column[i] if i < len(choices_column) else None
        if choices and fixed == text:
            fixed = correct(text, choices) or fixed
        fixed = repair_hat(fixed) or repair_mark(fixed) or fixed
        if fixed != text:
            made.append([text, fixed])
            data["text"][i] = fixed
    return made
