"""Curled pages: text lines straightened (and the sheet's curved edges followed), flat pages untouched.

Every page is made here: the project's sample text typeset, then bent the way a sheet bulging off
the desk looks from above (the middle of the page nearer the camera, so its lines bow away from the
centre, most at the top and bottom). One OCR run in the whole file.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import replace

import cv2
import numpy as np
from PIL import Image

from pipeline import camera, dewarp
from pipeline.document import check_pages, process_document
from pipeline.sample import SYNTH_TEXT, degrade, typeset_page

DPI = 200


def _bulge(page: np.ndarray, amount: float, *, fill: float = 255.0) -> np.ndarray:
    """``page`` with its middle columns magnified by up to ``amount`` about the page's centre row,
    as a sheet raised in the middle looks from above: lines bow up above the centre, down below."""
    h, w = page.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bump = np.sin(np.pi * xx / w) ** 2
    src_y = h / 2 + (yy - h / 2) / (1 + amount * bump)
    return cv2.remap(page, xx, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def _page(dpi: int = DPI, *, seed: int = 4) -> np.ndarray:
    return np.asarray(degrade(typeset_page(SYNTH_TEXT, dpi=dpi), seed=seed))


def _recall(truth: str, text: str) -> float:
    """Share of the truth's words found anywhere in the text (order-free, what a search needs)."""
    want = Counter(unicodedata.normalize("NFC", truth).split())
    got = Counter(unicodedata.normalize("NFC", text).split())
    return sum((want & got).values()) / sum(want.values())


def test_flat_pages_are_not_touched():
    page = _page()
    skewed = np.asarray(degrade(typeset_page(SYNTH_TEXT, dpi=DPI), seed=5, skew=1.5))
    sideways = np.asarray(degrade(typeset_page(SYNTH_TEXT, dpi=DPI), seed=6, rotate=90))
    for flat in (page, skewed, sideways, np.dstack([page] * 3)):
        assert dewarp.straighten(flat, dpi=DPI) is None
    bend = dewarp.measure(page, dpi=DPI)
    assert bend is not None and bend.lines >= 20 and not bend.curved


def test_a_flat_page_goes_through_preflight_pixel_for_pixel(tmp_path):
    page = _page()
    path = tmp_path / "flat.png"
    Image.fromarray(page).save(path, dpi=(DPI, DPI))
    [outcome] = check_pages([path], workdir=tmp_path / "w", jobs=1)
    assert np.array_equal(cv2.imread(str(outcome.raw.path), cv2.IMREAD_GRAYSCALE), page)


def test_curled_lines_are_found_curved_and_come_out_straight():
    page = _page()
    curled = _bulge(page, 0.05)
    bend = dewarp.measure(curled, dpi=DPI)
    assert bend.curved, bend
    out = dewarp.straighten(curled, dpi=DPI)
    assert out is not None and out.shape == curled.shape
    after = dewarp.measure(out, dpi=DPI)
    # Straight again: about the jitter of a flat page's line centres (0.02-0.03 of a line spacing).
    assert after.straight_rms < 0.4 * bend.straight_rms and not after.curved, (bend, after)
    # A colour page is straightened the same way (a seal stays where its page moved).
    colour = dewarp.straighten(np.dstack([curled] * 3), dpi=DPI)
    assert np.abs(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY).astype(int) - out).max() <= 1


def test_a_photographed_sheet_with_bowed_edges_is_rectified_to_its_edges():
    # A sheet raised in the middle: its top and bottom edges bow outwards in the photo, beyond the
    # straight lines between its corners; rectified by its corners alone, its lines stay bowed.
    page = np.asarray(typeset_page(SYNTH_TEXT, dpi=100)).astype(np.float32)
    desk = np.full((page.shape[0] + 240, page.shape[1] + 200), 60, np.float32)
    desk[120:-120, 100:-100] = page
    photo = np.clip(_bulge(desk, 0.06, fill=60.0), 0, 255).astype(np.uint8)
    found = camera.find_page(photo)
    assert found is not None
    flat = camera.rectify(photo, found)
    bend = dewarp.measure(flat, dpi=found.dpi)
    assert not bend.curved and bend.straight_rms < 0.04, bend
    # The paper that bulged beyond the corners' lines is in the page, and no desk came in with it.
    top = flat[: flat.shape[0] // 40]
    assert np.percentile(top, 5) > 150


def test_a_curled_page_reads_its_words(tmp_path):
    # A close-up photo of a sheet bulging in the middle: no desk around it, so only its text lines
    # say how it is bent. Measured: 87.2 % of the words without dewarping, 96.0 % with it.
    curled = _bulge(_page(), 0.06)
    path = tmp_path / "curled.png"
    Image.fromarray(curled).save(path, dpi=(DPI, DPI))
    result = process_document([path], workdir=tmp_path / "w", out_pdf=tmp_path / "out.pdf", jobs=1)
    recall = _recall("\n".join(SYNTH_TEXT), result.page_texts[0])
    assert recall >= 0.93, result.page_texts[0]


def test_a_scrap_of_paper_against_the_sheet_is_not_taken_for_a_bowed_edge():
    # The outline then has a bump, not a bow (as real receipts on a patterned desk have): following
    # it would stretch the page's edge towards the scrap. The corners' rectification is kept.
    page = np.asarray(typeset_page(SYNTH_TEXT, dpi=100)).astype(np.float32)
    desk = np.full((page.shape[0] + 240, page.shape[1] + 200), 60, np.float32)
    desk[120:-120, 100:-100] = page
    h, w = desk.shape
    cv2.ellipse(desk, (w - 100, h // 2), (60, 140), 0, 0, 360, 225, -1)
    photo = desk.astype(np.uint8)
    found = camera.find_page(photo)
    assert found is not None
    by_corners = camera.rectify(photo, replace(found, outline=None))
    assert np.array_equal(camera.rectify(photo, found), by_corners)
