"""Ruled tables and forms: their rules kept out of what Tesseract reads, their cells read in order.

Vietnamese administrative annexes are ruled tables (a procedure list: STT, name, time limit, place,
fee, legal basis) and forms with dotted leaders ("Họ và tên: ……………") and comb boxes for ID numbers.
Tesseract reads a rule crossing or touching a word as a letter ("|01", "[Mã", "IRnnnrnnn"), a
dotted leader as junk ("......", "“..."), and, once the rules are gone, a ruled table's text lines
straight across the cells. Here:

* ``rules`` finds the long thin horizontal and vertical rules on the cleaned 1-bit page, and
  ``read_copy`` paints them and the dotted leaders white in the copy Tesseract reads (the stored
  page image keeps them), keeping the pixels of strokes that cross a rule;
* ``cells`` finds the cells the rules enclose, and ``reading_order`` puts the words of each table
  row by row, each row's cells left to right, each cell's words line by line.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from models import OcrPage, OcrWord
from pipeline.scale import LETTER_MM

MM_PER_INCH = 25.4
# A horizontal rule is a run of ink at least this long on one pixel row. The longest horizontal
# run in text is a bold capital's bar or an underscore-like stroke, under 4 mm at 20 pt; the short
# rule under the motto of a letter is 30-50 mm, a table cell's top 8 mm or more (a comb box's
# top runs across all its boxes). The synthetic pages' "--------" under headers are separate
# hyphens (gaps of 0.5 mm) and stay.
RULE_MIN_MM = 8.0
# A vertical rule: a run of ink at least this long on one pixel column, or this many times the
# page's typical letter height (the tallest text stroke is a capital with a tone mark over it,
# under 1.6 letter heights), whichever is longer. Table rows one line high are 6-9 mm apart, and a
# column's rule runs through all of them.
VRULE_MIN_MM = 8.0
VRULE_MIN_LETTERS = 2.0
# A comb box's walls and a narrow cell's sides are shorter: a thin vertical run of ink at least
# CELL_MIN_MM long from a horizontal rule to another (its ends within RULE_JOIN_PX of them) is a
# rule too (a letter in a cell does not touch both its top and bottom).
RULE_JOIN_PX = 3
# A rule is painted out with this much around it (its grey edge), besides what lies within a pixel
# of other ink. Measured when the grey Tesseract reads kept 3 px around the 1-bit ink; it keeps
# clean.READ_INK_MARGIN_PX (1 px) now, and the enlarged low-resolution pages keep all their grey.
RULE_EDGE_PX = 3
# A rule a light scan broke into pieces (150-dpi annexes: dashes of 2-10 mm with gaps of 1-15 mm)
# is found as its long pieces; the ink on its line between two of them at most this far apart is
# rule too.
RULE_BRIDGE_MM = 25.0
# Rules are thin: ink thicker than this (a filled box, a black bar) is not a rule.
RULE_MAX_MM = 1.0
# The page's typical letter height (despeckle's upper-quartile mark height) is used only within
# this range of mm at the stated resolution: on a ruled page the grid is one big mark, and on
# bench/realscans' qng_qd237_p5 the "letter" came out 984 px (83 mm) tall.
LETTER_MM_RANGE = (1.5, 8.0)
# Dotted leaders: at least LEADER_MIN_DOTS small marks (at most LEADER_DOT_MM across) in a row,
# centres within LEADER_ROW_MM of one height, each at most LEADER_GAP_MM from the next (a 13 pt
# leader's dots are 1.1-1.4 mm apart; dots under "ị", "ạ" of one word stand a letter apart, 2 mm
# and more, and seldom five in a row). An ellipsis "..." is three.
LEADER_DOT_MM = 0.8
LEADER_MIN_DOTS = 5
LEADER_ROW_MM = 0.4
LEADER_GAP_MM = 2.0
# A cell is a white region the rules enclose: at least CELL_MIN_MM wide and high (a comb box of a
# digit is 4-6 mm), filling at least CELL_MIN_FILL of its bounding box (a rectangle), and not the
# page's background (it touches the page's edge) nor a frame around most of the page
# (CELL_MAX_PAGE_SHARE of its area).
CELL_MIN_MM = 3.0
CELL_MIN_FILL = 0.8
CELL_MAX_PAGE_SHARE = 0.5
# Cells whose tops lie within this distance of one another start one table row.
ROW_TOLERANCE_MM = 1.5


@dataclass(frozen=True)
class Cell:
    """A table cell, in the cleaned page's pixels; ``table`` numbers the tables of the page."""

    left: int
    top: int
    right: int
    bottom: int
    table: int = 0

    def holds(self, x: float, y: float) -> bool:
        return self.left <= x < self.right and self.top <= y < self.bottom


def _px(mm: float, dpi: float) -> int:
    """A length in pixels, odd: OpenCV's opening with an even kernel shifts what it keeps by a pixel."""
    return max(1, int(round(mm * dpi / MM_PER_INCH))) | 1


def _plausible(letter_px: float | None, dpi: float) -> float | None:
    """The page's letter height when it is one (see LETTER_MM_RANGE), else None."""
    if not letter_px or not LETTER_MM_RANGE[0] <= letter_px * MM_PER_INCH / dpi <= LETTER_MM_RANGE[1]:
        return None
    return letter_px


def rules(binary: np.ndarray, *, dpi: float, letter_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical): masks (uint8 0/1) of the page's rule pixels, ink of 1-bit ``binary``."""
    ink = (binary == 0).astype(np.uint8)
    thick = _px(RULE_MAX_MM, dpi)
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (_px(RULE_MIN_MM, dpi), 1)))
    horizontal = _thin(horizontal, thick, axis=0)
    if not horizontal.any():  # no table without a horizontal rule (cells are what is used)
        return horizontal, np.zeros_like(horizontal)
    v_len = max(_px(VRULE_MIN_MM, dpi), int(VRULE_MIN_LETTERS * (_plausible(letter_px, dpi) or 0)) | 1)
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, v_len)))
    vertical = _thin(vertical, thick, axis=1)
    vertical |= _walls(ink & (1 - horizontal), horizontal, dpi=dpi)
    # a rule the scan broke into pieces: the ink between two pieces on its line is rule too
    bridge = _px(RULE_BRIDGE_MM, dpi)
    h_line = cv2.morphologyEx(horizontal, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (bridge, 1)))
    v_line = cv2.morphologyEx(vertical, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, bridge)))
    horizontal |= _thin(ink & cv2.dilate(h_line, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3))), thick, axis=0)
    vertical |= _thin(ink & cv2.dilate(v_line, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 1))), thick, axis=1)
    return horizontal, vertical


def _thin(mask: np.ndarray, thick: int, *, axis: int) -> np.ndarray:
    """The mask without its parts thicker than ``thick`` across the rule (axis 0: vertically)."""
    size = (1, thick + 2) if axis == 0 else (thick + 2, 1)  # odd: thick is
    fat = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, size))
    if not fat.any():
        return mask
    # the whole of a thick run goes (its edges too), not only its thick middle
    fat = cv2.dilate(fat, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    return mask & (1 - fat)


def _walls(ink: np.ndarray, horizontal: np.ndarray, *, dpi: float) -> np.ndarray:
    """Short vertical runs of ink that join a horizontal rule above to one below (see RULE_JOIN_PX)."""
    out = np.zeros_like(ink)
    if not horizontal.any():
        return out
    min_len = _px(CELL_MIN_MM, dpi)
    thick = _px(RULE_MAX_MM, dpi)
    # only the rows between the first and last horizontal rule matter (a run cut off at the band's
    # edge ends too far from any rule to be a wall)
    rows = np.flatnonzero(horizontal.any(axis=1))
    y0, y1 = max(0, int(rows[0]) - 2 * RULE_JOIN_PX - 2), int(rows[-1]) + 2 * RULE_JOIN_PX + 3
    ink, horizontal = ink[y0:y1], horizontal[y0:y1]
    near = cv2.dilate(horizontal, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 2 * RULE_JOIN_PX + 1)))
    # vertical runs of ink at least min_len long, as (column, top, bottom)
    tall = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, min_len)))
    tall = _thin(tall, thick, axis=1)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(tall, connectivity=8)
    walls = []
    for i in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[i])
        if w > thick + 1:
            continue
        # its top end and its bottom end each at a horizontal rule
        if near[y, x:x + w].any() and near[y + h - 1, x:x + w].any():
            walls.append(i)
    if walls:
        out[y0:y1][np.isin(labels, walls)] = 1
    return out


def leaders(binary: np.ndarray, *, dpi: float, letter_px: float | None = None) -> np.ndarray:
    """Mask (uint8 0/1) of the dots of dotted leaders (see LEADER_MIN_DOTS). Measured against the
    page's letters when known (``letter_px``: a file's stated resolution can be wrong, bench/realscans'
    epu_tbd15_p3 is a 300-dpi scan read as 200 dpi, and its leaders' dots were too big to be dots)."""
    letter_px = _plausible(letter_px, dpi)
    if letter_px:
        dpi = letter_px / LETTER_MM * MM_PER_INCH
    ink = (binary == 0).astype(np.uint8)
    out = np.zeros_like(ink)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    dot = _px(LEADER_DOT_MM, dpi)
    small = [i for i in range(1, n) if stats[i, 2] <= dot and stats[i, 3] <= dot]
    if len(small) < LEADER_MIN_DOTS:
        return out
    row, gap = LEADER_ROW_MM * dpi / MM_PER_INCH, LEADER_GAP_MM * dpi / MM_PER_INCH
    # chains: dots of one height band left to right; a chain goes on while the next dot is close
    by_y = sorted(small, key=lambda i: centroids[i, 1])
    used: set[int] = set()
    ys = np.array([centroids[i, 1] for i in by_y])
    for k, i in enumerate(by_y):
        if i in used:
            continue
        lo, hi = np.searchsorted(ys, ys[k] - row), np.searchsorted(ys, ys[k] + row, side="right")
        band = sorted((by_y[j] for j in range(lo, hi) if by_y[j] not in used), key=lambda j: centroids[j, 0])
        chain: list[int] = []
        for j in band:
            if chain and (centroids[j, 0] - centroids[chain[-1], 0] > gap
                          or abs(centroids[j, 1] - centroids[chain[-1], 1]) > row):
                if len(chain) >= LEADER_MIN_DOTS:
                    used.update(chain)
                chain = []
            chain.append(j)
        if len(chain) >= LEADER_MIN_DOTS:
            used.update(chain)
    if used:
        out[np.isin(labels, np.fromiter(used, dtype=labels.dtype))] = 1
    return out


def without_crossings(horizontal: np.ndarray, vertical: np.ndarray, ink: np.ndarray, *, dpi: float) -> np.ndarray:
    """The rule pixels to paint white: all of them but where a stroke crosses the rule (ink that is
    no rule's within RULE_MAX_MM on both sides of it, above and below a horizontal rule, left and
    right of a vertical one), so a letter written across a rule keeps its strokes."""
    rule = horizontal | vertical
    other = ink & (1 - rule)
    reach = _px(RULE_MAX_MM, dpi) + 1
    keep = np.zeros_like(rule)
    for mask, axis in ((horizontal, 0), (vertical, 1)):
        if not mask.any():
            continue
        before, after = np.zeros_like(other), np.zeros_like(other)
        for k in range(1, reach + 1):
            before |= np.roll(other, k, axis=axis)   # other ink k px above (left)
            after |= np.roll(other, -k, axis=axis)   # other ink k px below (right)
        keep |= mask & before & after
    return rule & (1 - keep)


def read_copy(image: np.ndarray, binary: np.ndarray, *, dpi: float,
              letter_px: float | None = None) -> tuple[np.ndarray, list[Cell]]:
    """``image`` (what Tesseract reads, the geometry of 1-bit ``binary``) with the rules and dotted
    leaders painted white, and the page's table cells."""
    horizontal, vertical = rules(binary, dpi=dpi, letter_px=letter_px)
    ink = (binary == 0).astype(np.uint8)
    found = cells(horizontal | vertical, dpi=dpi)
    # only a table's rules: a lone rule (a receipt's separator, the line under a letter's motto)
    # is no letter to Tesseract and parts its blocks
    in_table = np.zeros_like(ink)
    grow = RULE_JOIN_PX + RULE_EDGE_PX + _px(RULE_MAX_MM, dpi)
    for table, (left, top, right, bottom) in _table_boxes(found).items():
        in_table[max(0, top - grow):bottom + grow, max(0, left - grow):right + grow] = 1
    paint = (without_crossings(horizontal, vertical, ink, dpi=dpi) & in_table) | leaders(binary, dpi=dpi, letter_px=letter_px)
    if not paint.any():
        return image, found
    # the rule's grey edge goes too (it would be read as a faint line), not the other ink's
    other = cv2.dilate(ink & (1 - paint), cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    edge = 2 * RULE_EDGE_PX + 1
    grown = cv2.dilate(paint, cv2.getStructuringElement(cv2.MORPH_RECT, (edge, edge))) & (1 - other)
    out = image.copy()
    out[grown > 0] = 255
    return out, found


def table_cells(found: list[Cell], *, min_width: float = 0) -> list[Cell]:
    """The cells of tables of at least two cells (one cell is a frame around a paragraph), and at
    least ``min_width`` pixels wide."""
    boxes = _table_boxes(found)
    return [c for c in found if c.table in boxes and boxes[c.table][2] - boxes[c.table][0] >= min_width]


def _table_boxes(found: list[Cell]) -> dict[int, tuple[int, int, int, int]]:
    """Each table of at least two cells: the box around its cells."""
    boxes: dict[int, tuple[int, int, int, int]] = {}
    sizes: dict[int, int] = {}
    for c in found:
        sizes[c.table] = sizes.get(c.table, 0) + 1
        b = boxes.get(c.table, (c.left, c.top, c.right, c.bottom))
        boxes[c.table] = (min(b[0], c.left), min(b[1], c.top), max(b[2], c.right), max(b[3], c.bottom))
    return {t: b for t, b in boxes.items() if sizes[t] >= 2}


def cells(rule: np.ndarray, *, dpi: float) -> list[Cell]:
    """The cells the rules enclose (see CELL_MIN_MM), or the rules and the box around them (a
    table continued from the page before has no rule above its first row), numbered by table
    (cells that touch across a rule are one table)."""
    if not rule.any():
        return []
    page_h, page_w = rule.shape
    # worked on the box around the rules, a white margin around it (what lies outside is no cell)
    ys, xs = np.flatnonzero(rule.any(axis=1)), np.flatnonzero(rule.any(axis=0))
    oy, ox = max(0, int(ys[0]) - RULE_JOIN_PX - 2), max(0, int(xs[0]) - RULE_JOIN_PX - 2)
    rule = cv2.copyMakeBorder(rule[oy:int(ys[-1]) + RULE_JOIN_PX + 3, ox:int(xs[-1]) + RULE_JOIN_PX + 3],
                              1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    oy, ox = oy - 1, ox - 1
    closed = cv2.dilate(rule, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * RULE_JOIN_PX + 1, 2 * RULE_JOIN_PX + 1)))
    h, w = rule.shape
    least = _px(CELL_MIN_MM, dpi)
    # a table cut by the page's end (no rule above its first row, or below its last) or drawn
    # without side rules is closed by the box around its rules
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    for i in range(1, n):
        x, y, bw, bh, _area = (int(v) for v in stats[i])
        if bw >= 2 * least and bh >= 2 * least:
            cv2.rectangle(closed, (x, y), (x + bw - 1, y + bh - 1), 1, 1)
    n, _labels, stats, _ = cv2.connectedComponentsWithStats((1 - closed).astype(np.uint8), connectivity=4)
    boxes = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue
        if bw < least or bh < least or area < CELL_MIN_FILL * bw * bh or area > CELL_MAX_PAGE_SHARE * page_w * page_h:
            continue
        boxes.append((x + ox, y + oy, x + bw + ox, y + bh + oy))
    # tables: cells whose boxes come within the rules' width of one another
    join = 2 * RULE_JOIN_PX + _px(RULE_MAX_MM, dpi) + 2
    parent = list(range(len(boxes)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            pa, pb = boxes[a], boxes[b]
            if pa[0] - join <= pb[2] and pb[0] - join <= pa[2] and pa[1] - join <= pb[3] and pb[1] - join <= pa[3]:
                parent[find(a)] = find(b)
    roots = {r: k for k, r in enumerate(sorted({find(a) for a in range(len(boxes))}))}
    return [Cell(*box, table=roots[find(a)]) for a, box in enumerate(boxes)]


def reading_order(page: OcrPage, found: list[Cell], *, dpi: float) -> OcrPage:
    """The page with each table's words row by row, cells left to right, each cell's words line by
    line. A table's words go after the last word above it or left of its first row in the page's
    order (Tesseract may give a table before the title over it); the rest stay as they are. A word inside a table but in no
    cell (a cell whose rules the scan lost) is read with its Tesseract line, a cell of its own. A table of one cell (a frame
    around a paragraph) is left alone."""
    boxes = _table_boxes(found)
    cells_ = [c for c in found if c.table in boxes]
    if not cells_ or not page.words:
        return page
    where: dict[int, Cell] = {}
    orphans: dict[tuple[int, tuple[int, int, int]], list[int]] = {}
    for k, w in enumerate(page.words):
        x, y = w.box.left + w.box.width / 2, w.box.top + w.box.height / 2
        cell = next((c for c in cells_ if c.holds(x, y)), None)
        if cell is not None:
            where[k] = cell
            continue
        table = next((t for t, b in boxes.items() if b[0] <= x < b[2] and b[1] <= y < b[3]), None)
        if table is not None:
            orphans.setdefault((table, w.line_key), []).append(k)
    for (table, _), ks in orphans.items():
        # a Tesseract line in no cell is a cell of its own
        line = [page.words[k].box for k in ks]
        cell = Cell(min(b.left for b in line), min(b.top for b in line),
                    max(b.left + b.width for b in line), max(b.top + b.height for b in line), table)
        where.update((k, cell) for k in ks)
    if not where:
        return page
    tolerance = ROW_TOLERANCE_MM * dpi / MM_PER_INCH
    next_block = max(w.block for w in page.words) + 1
    ordered: dict[int, list[OcrWord]] = {}
    for table in sorted({c.table for c in where.values()}):
        ruled = [c for c in cells_ if c.table == table]
        loose = list(dict.fromkeys(c for c in where.values() if c.table == table and c not in ruled))
        words: list[OcrWord] = []
        for cell in _row_order(ruled, loose, tolerance):
            mine = [page.words[k] for k, c in where.items() if c == cell]
            for number, line in enumerate(_lines(mine), start=1):
                words.extend(replace(w, block=next_block, paragraph=1, line=number) for w in line)
            if mine:
                next_block += 1
        ordered[table] = words
    rest = [w for k, w in enumerate(page.words) if k not in where]
    first = {}  # table -> where in page.words its first word was
    for k, c in where.items():
        first.setdefault(c.table, k)
    out: list[list[OcrWord]] = [[w] for w in rest]
    places: list[tuple[int, int, int]] = []  # (index into rest to insert after, order, table)
    for table, top in ((t, boxes[t][1]) for t in ordered):
        # above it, or left of its first row (a form's label before its comb boxes)
        left, row_bottom = boxes[table][0], min(c.bottom for c in cells_ if c.table == table)
        above = [i for i, w in enumerate(rest) if w.box.top + w.box.height <= top
                 or (w.box.left + w.box.width <= left and w.box.top + w.box.height / 2 < row_bottom)]
        if above:
            places.append((max(above) + 1, first[table], table))
        else:
            # where Tesseract gave its first word; a table read after the page (cell by cell,
            # pipeline/page_read.py) before the first word under its top
            at = sum(1 for k in range(first[table]) if k not in where)
            if at == len(rest):
                at = min((i for i, w in enumerate(rest) if w.box.top >= top), default=len(rest))
            places.append((at, first[table], table))
    for at, _, table in sorted(places, reverse=True):
        out.insert(at, ordered[table])
    return replace(page, words=[w for part in out for w in part])


def _row_order(ruled: list[Cell], loose: list[Cell], tolerance: float) -> list[Cell]:
    """Cells row by row (tops within ``tolerance`` of the row's first), left to right in a row. A
    loose line (in no ruled cell) joins the row whose shortest cell spans its middle height (a
    header cell whose bottom rule the scan lost, its text centred in the row), or is a row of its own."""
    rows: list[list[Cell]] = []
    for c in sorted(ruled, key=lambda c: (c.top, c.left)):
        if rows and c.top - rows[-1][0].top <= tolerance:
            rows[-1].append(c)
        else:
            rows.append([c])
    for c in sorted(loose, key=lambda c: (c.top, c.left)):
        middle = (c.top + c.bottom) / 2
        row = next((r for r in rows
                    if r[0].top <= middle < min((x.bottom for x in r if x not in loose), default=-1)), None)
        if row is not None:
            row.append(c)
            continue
        at = next((i for i, r in enumerate(rows) if r[0].top > c.top + tolerance), len(rows))
        rows.insert(at, [c])
    return [c for row in rows for c in _columns(row)]


def _columns(row: list[Cell]) -> list[Cell]:
    """A row's cells left to right; cells one above the other (lines in no ruled cell, a ruled
    cell split in two) top to bottom."""
    columns: list[list[Cell]] = []
    for c in sorted(row, key=lambda c: c.left):
        column = next((col for col in columns if c.left < max(x.right for x in col)), None)
        if column is None:
            columns.append([c])
        else:
            column.append(c)
    return [c for col in columns for c in sorted(col, key=lambda c: c.top)]


def _lines(words: list[OcrWord]) -> list[list[OcrWord]]:
    """A cell's words as the lines Tesseract gave them, top to bottom: its line finding holds a
    cell's line together better than boxes do (a short "sơ" beside a tall "Nộp"), but its blocks
    can cut across cells, so a cell's second line may come in an earlier block than its first
    ("(nếu có)" before "Phí, lệ phí" in a header cell)."""
    lines: dict[tuple[int, int, int], list[OcrWord]] = {}
    for w in words:
        lines.setdefault(w.line_key, []).append(w)
    return sorted(lines.values(), key=lambda line: sorted(w.box.top + w.box.height / 2 for w in line)[len(line) // 2])
