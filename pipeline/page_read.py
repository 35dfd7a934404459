"""One raster page cleaned and read: the turn checked against OSD and against the page as it came,
the raw page's surer blocks, the reading order of tables, the verdict on an unreadable page.

Split out of pipeline/document.py, which runs this in its page workers.
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from models import BoundingBox, OcrPage, OcrWord, PageReport
from pipeline import clean, fallback, ocr, pdf, preflight, qr, raster, tables
from pipeline.reader import RawPage

# Mean word confidence below which a page read without OSD is checked with OSD (and read again if
# OSD turns it). Synthetic rough pages: upright 90–93, upside down 41–42.
UPRIGHT_MIN_CONFIDENCE = 70.0
# A page with ink is unreadable (RESCAN) when no word reaches READABLE_WORD_CONFIDENCE, or the mean
# word confidence stays under UNREADABLE_MEAN_CONFIDENCE. Synthetic pages read 88–96 on average; an
# upside-down page 41–42 (turned and read again before this check); noise and smudges read as a few
# "words" at 0–40.
READABLE_WORD_CONFIDENCE = 60.0
UNREADABLE_MEAN_CONFIDENCE = 45.0
# A table cell with ink but no word (Tesseract leaves out a lone "1" or "2" in a narrow STT column:
# 19 of the 426 words real-tables missed) is read again on its own, as one text line, up to
# MAX_CELL_READS cells a page (a form's comb boxes could be dozens); a word found there is kept
# when it has a letter or digit and Tesseract's confidence reaches READABLE_WORD_CONFIDENCE.
MAX_CELL_READS = 12
CELL_INK_MIN_PX = 12  # dark pixels in the cell's copy: less is a speck or a rule's remains
CELL_PAD_PX = 12      # white added around the crop
# A page with ruled table cells (pipeline/tables.py) is read in parts: the page outside its tables,
# then each inked cell as one block of text (Tesseract --psm 6), up to MAX_CELLS cells (more is a
# grid of comb boxes or a spreadsheet: read as one page). Issue 19, the 21 real table pages (words
# missing against the transcription, order-free): one reading of the page 398, cell by cell 329
# (page segmentation inside a cell instead of one block: 380; the cells read in place, without
# the white border: 346), for ~5 % more Tesseract CPU.
MAX_CELLS = 150
# Only a table at least this wide is read cell by cell: pen scribbles close small loops that the
# rule finder takes for a table's cells (2-8 mm), and Tesseract reads such a crop, as a block,
# as a letter it is sure of ("2", "N" at 90-96), where the page's reading gave nothing believable.
CELL_TABLE_MIN_MM = 30.0
# Comb boxes, one letter or digit each, at most this wide and tall: read box by box, a citizen ID
# "001203004512" in 12 boxes came out as 12 one-digit words (search finds no ID), and read with the
# page, Tesseract left out some digits ("20 74775145" for "062074775145"); a run of at least
# COMB_MIN_BOXES side by side on a row is read as one line (see _comb_runs).
COMB_CELL_MAX_MM = 12.0
COMB_MIN_BOXES = 3


@dataclass
class PageOutcome:
    """A page after the whole pipeline: its report, what goes into the PDF, and its text."""

    raw: RawPage
    report: PageReport
    pdf_page: pdf.RasterPage | pdf.SourcePdfPage | None = None
    ocr: OcrPage | None = None
    text: str = ""
    qr: qr.QrFinding | None = None
    thumbnail: Path | None = None


def clean_and_ocr(o: PageOutcome, workdir: Path, *, ocr_blank: bool,
                   images: AbstractContextManager[object] | None = None) -> None:
    """Clean and OCR one raster page in place; blank pages are not OCR'd (nor shown to OSD).
    ``images``: held while the page's full-size images are worked on (not while Tesseract reads)."""
    images = images or nullcontext()
    if o.raw.path is None:
        o.pdf_page = pdf.SourcePdfPage(source_pdf=o.raw.source_pdf, index=o.raw.source_index)
        return
    started = time.perf_counter()
    blank = o.report.blank
    stem = f"{o.raw.number:04d}"
    # OSD only for pages that look sideways; an upside-down page shows itself by unreadable words.
    with images:
        cleaned = clean.clean_page(o.raw.path, dpi=o.raw.dpi, workdir=workdir, stem=stem,
                                   detect_orientation=not blank, osd_only_if_sideways=True)
    if blank and not ocr_blank:
        o.report.text_source = "none"
        o.ocr = None
    else:
        o.ocr = read_cleaned(cleaned)
        if not cleaned.osd_run and not blank and _reads_badly(o.ocr):
            # Upside down after all (or turned the wrong way by the marks' vote): ask OSD.
            with images:
                turned = clean.clean_page(o.raw.path, dpi=o.raw.dpi, workdir=workdir, stem=stem)
            if turned.rotation != cleaned.rotation:
                # OSD can be wrong too (a curled 75-dpi phone photo of a letter, bench/realscans'
                # th_tinhgia_p1, was turned upside down and read 1.5 % of its words against plain
                # Tesseract's 40 %): the turn is kept only when its words are surer.
                turned_ocr = read_cleaned(turned)
                if _confidence(turned_ocr) > _confidence(o.ocr):
                    cleaned, o.ocr = turned, turned_ocr
        if not blank and cleaned.rotation != 0 and fallback.needs_second_look(o.ocr):
            # Both the marks' vote and OSD can take a blurred, curled page for one upside down: an
            # unsure reading of a turned page is checked against the page as it came.
            with images:
                as_came = clean.clean_page(o.raw.path, dpi=o.raw.dpi, workdir=workdir, stem=f"{stem}-0",
                                           detect_orientation=False)
            as_came_ocr = read_cleaned(as_came)
            if _confidence(as_came_ocr) > _confidence(o.ocr) + fallback.MARGIN:
                cleaned, o.ocr = as_came, as_came_ocr
        if not blank and cleaned.rotation == 0 and fallback.needs_second_look(o.ocr):
            # Never worse than plain Tesseract: the raw page's surer blocks replace the cleaned ones.
            raw = ocr.recognise(o.raw.path, dpi=o.raw.dpi, single_line=cleaned.single_line)
            o.ocr, _ = fallback.better_of(o.ocr, fallback.to_cleaned_scale(raw, width=cleaned.width,
                                                                          height=cleaned.height))
        if cleaned.cells and cleaned.tesseract_image == cleaned.read_image and not cleaned.single_line:
            o.ocr = _read_empty_cells(o.ocr, cleaned, workdir / f"{stem}_cell.pgm")
        # a ruled table's words row by row, each row's cells left to right
        o.ocr = tables.reading_order(o.ocr, list(cleaned.cells), dpi=cleaned.dpi)
        o.ocr.rotation = cleaned.rotation
        o.text = o.ocr.text
        o.report.mean_confidence = o.ocr.mean_confidence
        o.report.word_count = len(o.ocr.words)
        if not blank and unreadable(o.ocr):
            # Ink but no text Tesseract believes in: a dark photo, a smudge, a page too blurred for
            # preflight to say so. Never stored as if it had been read.
            o.report.issues.append(preflight.unreadable_issue(len(o.ocr.words), o.ocr.mean_confidence))
    o.report.rotation = cleaned.rotation
    o.report.skew_degrees = round(cleaned.skew_degrees, 2)
    o.report.has_colour = cleaned.has_colour
    o.pdf_page = pdf.RasterPage(ocr_image=cleaned.ocr_image, colour_image=cleaned.colour_image,
                                dpi=cleaned.dpi, ocr=o.ocr)
    if not blank or ocr_blank:
        # Compress the page's images here, in the page's worker, not one page after another when
        # the PDF is assembled (a colour page's background and mask cost ~0.3 s of CPU).
        with images:
            o.pdf_page.encoded = pdf.encode_raster_page(o.pdf_page)
    o.report.seconds += time.perf_counter() - started


def read_cleaned(cleaned: clean.CleanedPage) -> OcrPage:
    """One Tesseract reading of the cleaned page's reading image (a low-resolution line crop as one
    text line, see clean.LINE_CROP_FACTOR; a fine page from its reduced copy, see clean.READ_MAX_DPI,
    its words then put back in the page's pixels; a page with a ruled table cell by cell, see
    ``_read_by_cells``)."""
    dpi = cleaned.read_dpi or cleaned.dpi
    wide = CELL_TABLE_MIN_MM * cleaned.dpi / tables.MM_PER_INCH
    ruled = [] if cleaned.single_line else tables.table_cells(list(cleaned.cells), min_width=wide)
    if ruled and len(ruled) <= MAX_CELLS:
        page = _read_by_cells(cleaned, ruled, dpi=dpi)
    else:
        page = ocr.recognise(cleaned.tesseract_image, dpi=dpi, single_line=cleaned.single_line)
    if cleaned.read_dpi:
        page = ocr.to_page_scale(page, width=cleaned.width, height=cleaned.height, dpi=cleaned.dpi)
    return page


def _comb_runs(cells: list[tables.Cell], dpi: float) -> list[tuple[tables.Cell, float]]:
    """The cells, with each run of at least COMB_MIN_BOXES comb boxes side by side on a row (each at
    most COMB_CELL_MAX_MM wide and tall) made one cell, with its boxes' pitch in pixels (0 for a
    cell): read as one line, the letters of neighbouring boxes one word (a citizen ID in a form)."""
    mm = tables.MM_PER_INCH / dpi
    near = max(2, round(2.0 / mm))  # the rule between two boxes (up to 1 mm) and the cells' margins inside it
    out: list[tuple[tables.Cell, float]] = []
    rows: list[list[tables.Cell]] = []
    for c in sorted(cells, key=lambda c: (c.table, c.top, c.left)):
        if (c.right - c.left) * mm > COMB_CELL_MAX_MM or (c.bottom - c.top) * mm > COMB_CELL_MAX_MM:
            out.append((c, 0.0))
        elif rows and rows[-1][0].table == c.table and abs(c.top - rows[-1][0].top) <= near:
            rows[-1].append(c)
        else:
            rows.append([c])
    for row in rows:
        row.sort(key=lambda c: c.left)
        runs = [[row[0]]]
        for c in row[1:]:
            if 0 <= c.left - runs[-1][-1].right <= near and abs(c.bottom - runs[-1][-1].bottom) <= near:
                runs[-1].append(c)
            else:
                runs.append([c])
        for run in runs:
            if len(run) >= COMB_MIN_BOXES:
                out.append((tables.Cell(run[0].left, min(c.top for c in run), run[-1].right,
                                        max(c.bottom for c in run), run[0].table), (run[-1].right - run[0].left) / len(run)))
            else:
                out.extend((c, 0.0) for c in run)
    return out


def _comb_words(words: list[OcrWord], pitch: float) -> list[OcrWord]:
    """A comb run's words with those in neighbouring boxes joined (Tesseract splits "001203004512"
    at its boxes' spacing); words an empty box apart stay apart."""
    out: list[OcrWord] = []
    for w in sorted(words, key=lambda w: w.box.left):
        last = out[-1] if out else None
        if last is not None and w.box.left - (last.box.left + last.box.width) < pitch:
            right = max(last.box.left + last.box.width, w.box.left + w.box.width)
            top, bottom = min(last.box.top, w.box.top), max(last.box.top + last.box.height, w.box.top + w.box.height)
            out[-1] = replace(last, text=last.text + w.text, confidence=min(last.confidence, w.confidence),
                              box=BoundingBox(last.box.left, top, right - last.box.left, bottom - top))
        else:
            out.append(w)
    return out


def _read_by_cells(cleaned: clean.CleanedPage, ruled: list[tables.Cell], *, dpi: float) -> OcrPage:
    """The page outside its tables read as a page, then each inked cell on its own as one block of
    text (in the reading image's pixels). Read as one page, with its rules painted out, a table's
    lines ran across the cells: Tesseract took a row's cells for one line, and a line whose cells'
    baselines differ was misread (see MAX_CELLS). A cell without ink costs no reading."""
    path = cleaned.tesseract_image
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return ocr.recognise(path, dpi=dpi)
    sx, sy = image.shape[1] / cleaned.width, image.shape[0] / cleaned.height
    ink = cv2.imread(str(cleaned.ocr_image), cv2.IMREAD_GRAYSCALE)  # the 1-bit page: ink is 0
    boxes = [(int(c.left * sx), int(c.top * sy), int(c.right * sx), int(c.bottom * sy), comb)
             for c, comb in _comb_runs(ruled, cleaned.dpi)
             if ink is None or np.count_nonzero(ink[c.top:c.bottom, c.left:c.right] == 0) >= CELL_INK_MIN_PX]
    rest = image.copy()
    for x0, y0, x1, y1, _ in boxes:
        rest[y0:y1, x0:x1] = 255
    rest_path = path.with_name(f"{path.stem}_rest.pgm")
    raster.write_image(rest_path, rest)
    page = ocr.recognise(rest_path, dpi=dpi)
    words, corrections = list(page.words), list(page.corrections)
    block = max((w.block for w in words), default=0) + 1
    cell_path = path.with_name(f"{path.stem}_cell.pgm")
    for x0, y0, x1, y1, comb in boxes:
        if image[y0:y1, x0:x1].size == 0:
            continue
        found = _read_crop(image, (x0, y0, x1, y1), cell_path, dpi=dpi, single_line=bool(comb), block=not comb)
        cell = _comb_words(found.words, comb * sx) if comb else found.words
        words.extend(replace(w, block=block + w.block) for w in cell)
        block += max((w.block for w in cell), default=0) + 1
        corrections.extend(found.corrections)
    return replace(page, words=words, corrections=corrections)


def _read_crop(image: np.ndarray, box: tuple[int, int, int, int], path: Path, *, dpi: float,
               single_line: bool = False, block: bool = False) -> OcrPage:
    """Tesseract's reading of ``box`` (left, top, right, bottom) of ``image``, written to ``path``
    with CELL_PAD_PX of white around it; the words' boxes in ``image``'s pixels."""
    x0, y0, x1, y1 = box
    raster.write_image(path, cv2.copyMakeBorder(image[y0:y1, x0:x1], CELL_PAD_PX, CELL_PAD_PX, CELL_PAD_PX,
                                                CELL_PAD_PX, cv2.BORDER_CONSTANT, value=255))
    found = ocr.recognise(path, dpi=dpi, single_line=single_line, block=block)
    dx, dy = x0 - CELL_PAD_PX, y0 - CELL_PAD_PX
    return replace(found, words=[replace(w, box=BoundingBox(max(0, w.box.left + dx), max(0, w.box.top + dy),
                                                            w.box.width, w.box.height)) for w in found.words])


def _read_empty_cells(page: OcrPage, cleaned: clean.CleanedPage, path: Path) -> OcrPage:
    """The page with the words of its inked but wordless table cells (see MAX_CELL_READS)."""
    # a cell no word's box reaches into (a comb run's ID word covers all its boxes)
    empty = [c for c in tables.table_cells(list(cleaned.cells))
             if not any(w.box.left < c.right and w.box.left + w.box.width > c.left
                        and w.box.top < c.bottom and w.box.top + w.box.height > c.top for w in page.words)]
    if not empty:
        return page
    image = cv2.imread(str(cleaned.tesseract_image), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return page
    sx, sy = image.shape[1] / cleaned.width, image.shape[0] / cleaned.height
    dpi = cleaned.read_dpi or cleaned.dpi
    block = max((w.block for w in page.words), default=0) + 1
    words = list(page.words)
    reads = 0
    for c in empty:
        x0, y0 = int(c.left * sx) + 2, int(c.top * sy) + 2
        x1, y1 = int(c.right * sx) - 2, int(c.bottom * sy) - 2
        crop = image[y0:y1, x0:x1]
        if crop.size == 0 or np.count_nonzero(crop < 128) < CELL_INK_MIN_PX:
            continue
        if reads >= MAX_CELL_READS:
            break
        reads += 1
        for w in _read_crop(image, (x0, y0, x1, y1), path, dpi=dpi, single_line=True).words:
            if w.confidence < READABLE_WORD_CONFIDENCE or not any(ch.isalnum() for ch in w.text):
                continue
            box = BoundingBox(round(w.box.left / sx), round(w.box.top / sy),
                              max(1, round(w.box.width / sx)), max(1, round(w.box.height / sy)))
            words.append(replace(w, box=box, block=block, paragraph=1, line=1))
        block += 1
    return replace(page, words=words) if len(words) > len(page.words) else page


def unreadable(page: OcrPage) -> bool:
    """True when a page with ink yields no word Tesseract is reasonably sure of, or only unsure ones."""
    sure = [w for w in page.words if w.confidence >= READABLE_WORD_CONFIDENCE and any(c.isalnum() for c in w.text)]
    confidence = page.mean_confidence
    return not sure or confidence is None or confidence < UNREADABLE_MEAN_CONFIDENCE


def _confidence(page: OcrPage) -> float:
    return page.mean_confidence or 0.0


def _reads_badly(page: OcrPage) -> bool:
    """True when the words look like an upside-down page's: few, or mostly unsure."""
    confidence = page.mean_confidence
    return confidence is None or confidence < UPRIGHT_MIN_CONFIDENCE
