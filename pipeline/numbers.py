"""Dates and document numbers Tesseract split in two, joined again.

A narrow "1" makes Tesseract see a word space where there is none: "23/1 1/2018", "92/201 7/NĐ-CP",
"16/ 12/2021", and a leading "1" is read as "l" or "I" standing alone: "l 07/2021/NĐ-CP". The hyphen
of a document's code goes the same way: "02/2017/TT VPCP". Search for "23/11/2018" or
"107/2021/NĐ-CP" then finds nothing, and a document number is exactly what a case handler types.

Two neighbouring words of one line are joined only when together they make a date or a document
number (Decree 30/2020/NĐ-CP, Appendix I: number/year/code) and neither is one alone; nothing else
in a line is touched. Issue 19's 62 real pages: 5 numbers and dates found that were lost
("92/2017/NĐ-CP", "107/2021/NĐ-CP", "23/11/2018", "16/12/2021", "14/11/2024"), none lost.
"""
from __future__ import annotations

import re

from pipeline.context import places

END = ".,;:)"
DATE = re.compile(r"\d{1,2}/\d{1,2}/\d{4}")
CODE = r"[A-ZĐ][A-ZĐ0-9&]*(?:-[A-ZĐ][A-ZĐ0-9&]*)*"
DOCUMENT_NUMBER = re.compile(rf"\d{{1,5}}/(?:\d{{4}}/)?{CODE}")
# a code cut at its hyphen: "02/2017/TT" + "VPCP". Only with a year: such a code always has two
# parts (NĐ-CP, TT-BTC, QĐ-TTg), a law's has digits (59/2020/QH14).
CODE_HEAD = re.compile(r"\d{1,5}/\d{4}/[A-ZĐ]{2,}")
CODE_TAIL = re.compile(r"[A-ZĐ]{2,8}|TTg")
ONE = {"l": "1", "I": "1", "|": "1"}
# a left part that is no word on its own: a number cut after its slash or inside its year ("92/201")
PART = re.compile(r"\d{1,5}/\d{0,3}")


def _whole(text: str) -> bool:
    core = text.rstrip(END)
    return bool(DATE.fullmatch(core) or DOCUMENT_NUMBER.fullmatch(core))


def joined(left: str, right: str) -> str | None:
    """The one word ``left`` and ``right`` were, or None when they are two."""
    if CODE_HEAD.fullmatch(left) and CODE_TAIL.fullmatch(right.rstrip(END)):
        return left + "-" + right
    if _whole(left) or left[-1:] in END:
        return None
    head = ONE.get(left, left)
    if head[-1:].isdigit() or head[-1:] == "/":
        # "7/NĐ-CP" is a number of its own, but not after "92/201" or a lone "l"
        cut = left in ONE or PART.fullmatch(left)
        if right[:1].isdigit() and _whole(head + right) and (not _whole(right) or cut):
            return head + right
    return None


def number_word(word: str, following: str | None) -> str | None:
    """"số" (number) for "sô", the syllable Tesseract reads when it loses the acute over a hat, when
    a number follows it ("văn bản sô 2637/BGDĐT-VP", "Sô: 54"): "sô" is no word that stands before
    a number; None otherwise. Six times on issue 19's 62 real pages, every time "số"."""
    core = word.rstrip(END)
    if core.lower() != "sô" or not following or not following.lstrip("(")[:1].isdigit():
        return None
    return ("SỐ" if core.isupper() else "Số" if core[0].isupper() else "số") + word[len(core):]


def join_split_numbers(data: dict[str, list]) -> list[list[str]]:
    """Write "số" for "sô" before a number (``number_word``), and join in place the dates and
    document numbers of an image_to_data-shaped reading that were read as two words (the second
    word's text becomes empty, the first one's box covers both); the corrections made, [as read,
    as written]."""
    texts = data.get("text") or []
    place = places(data)
    words = [i for i, t in enumerate(texts) if (t or "").strip()]
    made: list[list[str]] = []
    for a, b in zip(words, words[1:]):
        fixed = number_word(texts[a].strip(), texts[b].strip()) if place[a][:2] == place[b][:2] else None
        if fixed:
            made.append([texts[a].strip(), fixed])
            texts[a] = fixed
    k = 0
    while k + 1 < len(words):
        a, b = words[k], words[k + 1]
        left, right = texts[a].strip(), texts[b].strip()
        whole = joined(left, right) if place[a] == place[b] else None
        if whole is None:
            k += 1
            continue
        texts[a], texts[b] = whole, ""
        if all(key in data for key in ("left", "top", "width", "height")):
            x0, y0 = min(data["left"][a], data["left"][b]), min(data["top"][a], data["top"][b])
            x1 = max(data["left"][a] + data["width"][a], data["left"][b] + data["width"][b])
            y1 = max(data["top"][a] + data["height"][a], data["top"][b] + data["height"][b])
            data["left"][a], data["top"][a], data["width"][a], data["height"][a] = x0, y0, x1 - x0, y1 - y0
        if "conf" in data:
            data["conf"][a] = min(float(data["conf"][a]), float(data["conf"][b]))
        made.append([f"{left} {right}", whole])
        k += 2
    return made
