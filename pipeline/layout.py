"""Reading order of a page's OCR words: a two-column block is read one column after the other.

A Vietnamese official letter (Decree 30/2020/NĐ-CP, Appendix I) opens with two columns side by
side, the issuing body, number and summary on the left and the national motto, place and date on
the right, and closes with two more, "Nơi nhận" on the left and the signer on the right. Tesseract
often takes such a block for one column and reads each text line across both ("UBND THÀNH PHỐ
ĐÀ NẴNG CỘNG HOÀ XÃ HỘI …"), which scrambles the text a reader or a search sees. Here the words
Tesseract found are regrouped, with their boxes and texts unchanged: no second reading.
"""
from __future__ import annotations

import statistics
import unicodedata
from dataclasses import replace

from models import OcrPage, OcrWord

MM_PER_INCH = 25.4
# A gutter is an empty vertical strip at least this wide that words sit on both sides of. Word
# spaces of justified body text are 1-3 mm; on the two real letters of shared/realdata the header's
# gutter is 5.6 mm wide where its columns come closest ("ĐÀ NẴNG" / "CỘNG HOÀ"), the closing
# block's 23 mm. A punctuation "word" narrower than this (a speck, a hyphen, the "_" Tesseract
# reads between the header's columns) does not fill a gutter; a dotted leader or a rule does.
GUTTER_MIN_MM = 4.0
# The gutter runs through the middle of the block: its centre lies within this share of the
# block's width either side of the block's centre (the real letters: header 43 %, closing 55 % of
# the way across); a gap beside a narrow first column (a table's "STT") is not a letter's column.
GUTTER_MAX_OFF_CENTRE = 0.25
# A two-column block is at least this many lines with words on both sides of one gutter (one line
# with a wide gap is a tab stop, not a layout) …
MIN_TWO_SIDED_LINES = 2
# … and goes on through lines that leave the gutter empty, as long as no blank line (a gap taller
# than this share of the page's median word height) separates them: on the real letter 4_1 the
# header's lines are 0-13 px apart, the "Kính gửi" after it 37 px below, words ~24 px tall (164 dpi).
BLOCK_MAX_LINE_GAP = 1.0
# Issue 19: a centred heading set in spaced capitals ("ĐẠI HỌC QUỐC GIA THÀNH PHỐ HỒ CHÍ MINH" over
# "TRƯỜNG ĐẠI HỌC BÁCH KHOA", "ỦY BAN NHÂN DÂN" over "THÀNH PHỐ ĐÀ NẴNG") has word spaces as wide as
# a narrow gutter, and two of them can line up: the block was split there, mid-heading. A gutter is
# a gap at least this many times the line's typical word space (its other gaps' median); a line
# whose gaps are all alike (a centred title, a spaced heading) has no gutter. Of the gaps that make
# blocks equally long, the widest is the gutter.
GUTTER_OVER_WORD_SPACE = 2.0
# The number/date line ("Số: …" left, "Đà Nẵng, ngày … tháng …" right) often stands further below the
# motto than the block's line spacing (a blank line on real letters: 1.5-2.5 word heights on
# shared/realdata's 4_1 and the project's real set, bench/realscans). A line that far down still
# belongs to the block when it has words on both sides of a gutter where the block's runs; without
# this the header was read "agency, motto, Số: … Đà Nẵng, ngày …" with the summary after the date.
HEADER_MAX_LINE_GAP = 3.0
# The header's third line (number on the left, place and date on the right) is often wider than the
# lines above and crosses their gutter: it still splits at a gutter of its own when that lies within
# this distance of the one above.
GUTTER_MAX_SHIFT_MM = 20.0
# A two-column block whose left column is at least this share of labels is a form's rows (see _form_rows).
FORM_LABEL_SHARE = 0.75


def reading_order(page: OcrPage) -> OcrPage:
    """The page with every two-column block's words read left column first, then right column.

    Each column of such a block becomes lines of its own (new block numbers, after Tesseract's);
    the rest of the page keeps Tesseract's order and numbering. This is the order Tesseract itself
    gives when its layout analysis does see the two columns.
    """
    lines = page.lines
    heights = [w.box.height for w in page.words if _is_text(w)]
    if len(lines) < MIN_TWO_SIDED_LINES or not heights or not page.dpi:
        return page
    max_gap = BLOCK_MAX_LINE_GAP * statistics.median(heights)
    lines = _right_lines_in_their_rows(lines, max_gap)
    min_gutter = GUTTER_MIN_MM * page.dpi / MM_PER_INCH
    words: list[OcrWord] = []
    next_block = max(w.block for w in page.words) + 1
    i = 0
    while i < len(lines):
        found = _block_from(lines, i, min_gutter=min_gutter, max_gap=max_gap)
        if found is None:
            words.extend(lines[i])
            i += 1
            continue
        end, splits = found
        if _form_rows(lines[i:end], splits):
            words.extend(w for line in lines[i:end] for w in line)
            i = end
            continue
        for left_column in (True, False):
            number = 0
            for line, gutter in zip(lines[i:end], splits):
                part = [w for w in line if (w.box.left + w.box.width / 2 < gutter) == left_column]
                if part:
                    number += 1
                    words.extend(replace(w, block=next_block, paragraph=1, line=number) for w in part)
            next_block += 1
        i = end
    return replace(page, words=words)


def _form_rows(lines: list[list[OcrWord]], splits: list[float]) -> bool:
    """Whether a two-column block is a form's rows instead: most of its left column's lines are
    labels, ending in ":" or in a leader's dots ("Họ và tên: ……… Ngày sinh: ………" over "Mã sinh
    viên: ……… Điện thoại: ………", read label by label then, bench/realscans' epu_tbd15_p3), or most
    of its two-sided lines are a "label: value" pair on each side ("Họ và tên: Phạm Đức Bình  Giới
    tính: Nam"). A letter's header and closing are no such thing: "Nơi nhận:" opens a list of
    "- Như trên;", and no "label:" stands right of the gutter ("KT. CHỦ TỊCH", "Hà Nội, ngày …")."""
    halves = [([w for w in line if w.box.left + w.box.width / 2 < gutter],
               [w for w in line if w.box.left + w.box.width / 2 >= gutter]) for line, gutter in zip(lines, splits)]
    lefts = [left[-1].text.rstrip(".…_") for left, _ in halves if left]
    labels = sum(1 for text in lefts if text.endswith(":") or not text)
    if len(lefts) >= MIN_TWO_SIDED_LINES and labels >= FORM_LABEL_SHARE * len(lefts):
        return True
    pairs = [(left, right) for left, right in halves if left and right]
    fields = sum(1 for left, right in pairs if any(":" in w.text for w in left) and any(":" in w.text for w in right))
    return fields >= MIN_TWO_SIDED_LINES and fields >= FORM_LABEL_SHARE * len(pairs)


def _right_lines_in_their_rows(lines: list[list[OcrWord]], max_gap: float) -> list[list[OcrWord]]:
    """Tesseract's lines with each right-hand line it gave too early moved down to its row.

    The signer's name stands far below "KT. CHỦ TỊCH" (the signature and seal between), level with
    the end of the "Nơi nhận" list on the left; Tesseract gives it before the rest of that list
    (bench/realscans' bl_qd209_p2), and the closing block ended there. A line is moved when the
    lines after it go back up the page, and a later line on its row lies wholly to its left with
    everything in between on that later line's side: a right column's line, never a left column's
    (a two-column page read left column first keeps its order).
    """
    lines = list(lines)
    i = 0
    while i < len(lines) - 1:
        line = lines[i]
        if _top(line) <= _bottom(lines[i + 1]) + max_gap:
            i += 1
            continue
        left_edge = min(w.box.left for w in line)
        target = None
        for j in range(i + 1, len(lines)):
            other = lines[j]
            if max(w.box.left + w.box.width for w in other) >= left_edge:
                break  # something between reaches under the line: not a column beside it
            if _top(other) <= _bottom(line) and _bottom(other) >= _top(line):
                target = j  # on the line's row, to its left
                break
            if _top(other) > _bottom(line):
                break  # past the line's row without meeting it
        if target is None:
            i += 1
            continue
        lines.insert(target, lines.pop(i))
    return lines


def _block_from(lines: list[list[OcrWord]], start: int, *, min_gutter: float,
                max_gap: float) -> tuple[int, list[float]] | None:
    """(end, each line's gutter x) of the longest two-column block that starts at line ``start``."""
    best: tuple[int, float, list[float]] | None = None
    max_shift = GUTTER_MAX_SHIFT_MM / GUTTER_MIN_MM * min_gutter
    for lo, hi in _gaps(lines[start], min_gutter):
        # splits: each line's gutter x; lines under one straight gutter share the middle of the strip
        # all of them leave free (a speck or a hyphen near one line's edge of it stays on its side)
        two_sided, end, splits, narrowest, run = 1, start + 1, [(lo + hi) / 2], hi - lo, start
        while end < len(lines):
            gap = _top(lines[end]) - _bottom(lines[end - 1])
            if gap > max_gap and not (gap <= HEADER_MAX_LINE_GAP * max_gap
                                      and _two_sided_near(lines[end], lo, hi, min_gutter, max_shift)):
                break
            free = _widest_free(lines[end], lo, hi, min_gutter)
            if free is None or free[1] - free[0] < min_gutter:
                # the line crosses the gutter above: a gutter of its own close by, or the block ends
                own = [g for g in _gaps(lines[end], min_gutter)
                       if abs((g[0] + g[1]) / 2 - splits[-1]) <= max_shift]
                if not own:
                    break
                free = min(own, key=lambda g: abs((g[0] + g[1]) / 2 - splits[-1]))
                run = end
            lo, hi = free
            narrowest = min(narrowest, hi - lo)
            splits[run - start:] = [(lo + hi) / 2] * (end - run)
            splits.append((lo + hi) / 2)
            xs = [w.box.left + w.box.width / 2 for w in lines[end] if _fills(w, min_gutter)]
            two_sided += any(x < lo for x in xs) and any(x > hi for x in xs)
            end += 1
        spans = [_span(w) for line in lines[start:end] for w in line if _fills(w, min_gutter)]
        left, right = min(a for a, _ in spans), max(b for _, b in spans)
        centre = statistics.fmean(splits)
        centred = abs(centre - (left + right) / 2) <= GUTTER_MAX_OFF_CENTRE * (right - left)
        if two_sided >= MIN_TWO_SIDED_LINES and centred and (best is None or (end, narrowest) > best[:2]):
            best = (end, narrowest, splits)
    return None if best is None else (best[0], best[2])


def _two_sided_near(line: list[OcrWord], lo: float, hi: float, min_gutter: float, max_shift: float) -> bool:
    """Whether a line has words on both sides of a gutter at (or close to) the strip lo..hi."""
    middle = (lo + hi) / 2
    for a, b in _gaps(line, min_gutter):
        if abs((a + b) / 2 - middle) <= max_shift:
            xs = [w.box.left + w.box.width / 2 for w in line if _fills(w, min_gutter)]
            if any(x < a for x in xs) and any(x > b for x in xs):
                return True
    return False


def _gaps(line: list[OcrWord], min_width: float) -> list[tuple[float, float]]:
    """Empty strips at least ``min_width`` wide between a line's words, and clearly wider than the
    line's word spaces (see GUTTER_OVER_WORD_SPACE)."""
    spans = sorted(_span(w) for w in line if _fills(w, min_width))
    gaps = []
    reach = spans[0][1] if spans else 0
    for left, right in spans[1:]:
        if left > reach:
            gaps.append((float(reach), float(left)))
        reach = max(reach, right)
    wide = []
    for k, (a, b) in enumerate(gaps):
        others = [y - x for j, (x, y) in enumerate(gaps) if j != k]
        if b - a >= min_width and (not others or b - a >= GUTTER_OVER_WORD_SPACE * statistics.median(others)):
            wide.append((a, b))
    return wide


def _widest_free(line: list[OcrWord], lo: float, hi: float, min_width: float) -> tuple[float, float] | None:
    """The widest part of the strip lo..hi that none of the line's words covers."""
    free = [(lo, hi)]
    for w in line:
        if _fills(w, min_width):
            left, right = _span(w)
            free = [piece for a, b in free
                    for piece in ((a, min(b, left)), (max(a, right), b)) if piece[1] > piece[0]]
    return max(free, key=lambda ab: ab[1] - ab[0], default=None)


def _span(word: OcrWord) -> tuple[int, int]:
    return word.box.left, word.box.left + word.box.width


def _top(line: list[OcrWord]) -> int:
    return min(w.box.top for w in line)


def _bottom(line: list[OcrWord]) -> int:
    return max(w.box.top + w.box.height for w in line)


def _is_text(word: OcrWord) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in word.text)


def _fills(word: OcrWord, gutter: float) -> bool:
    """Whether a word takes room a gutter needs: any word with a letter or digit, and punctuation
    at least as wide as a gutter (a dotted leader, a rule), not a speck or a hyphen."""
    return _is_text(word) or word.box.width >= gutter
