"""Page cleaning on synthetic counter scans with known skew and rotation (pipeline.sample.synthetic_scans).

The pages are made here from the project's own sample text: no shared data is needed.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import ocr
from pipeline.clean import (
    LINE_CROP_FACTOR,
    READ_INK_MARGIN_PX,
    READ_MAX_DPI,
    READ_MIN_LETTER_PX,
    CleanedPage,
    clean_page,
    ink_in_grey,
    is_line_crop,
    read_scale,
)
from pipeline.despeckle import despeckle
from pipeline.orient import marks_above_and_below, way_up
from pipeline.sample import synthetic_scans

DPI = 300


def synth(out: Path, *, pages: int, profile: str, stamp: bool = False, fmt: str = "png") -> list[dict[str, str]]:
    """Synthetic scanned pages and their manifest rows (true skew, rotation, truth file)."""
    return synthetic_scans(out, pages=pages, profile=profile, stamp=stamp, fmt=fmt, dpi=DPI)


@pytest.fixture(scope="module")
def rough(tmp_path_factory) -> list[tuple[dict[str, str], CleanedPage]]:
    """Four rough pages (rotated 180, upright, 270 and 90; skew up to 4°), cleaned with OSD."""
    out = tmp_path_factory.mktemp("rough")
    rows = synth(out, pages=4, profile="rough")
    return [(row, clean_page(Path(row["dir"]) / row["page"], dpi=DPI, workdir=out / "work", stem=f"p{n}"))
            for n, row in enumerate(rows, start=1)]


@pytest.fixture(scope="module")
def stamped(tmp_path_factory) -> tuple[Path, Path]:
    """A colour JPEG with a red seal, and the same kind of page in grey saved as colour JPEG."""
    out = tmp_path_factory.mktemp("stamp")
    row = synth(out, pages=1, profile="office", stamp=True, fmt="jpg")[0]
    seal = Path(row["dir"]) / row["page"]
    grey = cv2.cvtColor(cv2.imread(str(seal)), cv2.COLOR_BGR2GRAY)
    grey[grey.shape[0] // 2:] = 225  # no seal: the lower half is plain paper
    rng = np.random.default_rng(3)
    # A colour scanner's grey page: channel noise, then JPEG chroma subsampling noise.
    bgr = np.clip(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) + rng.normal(0, 4, (*grey.shape, 3)), 0, 255)
    plain = out / "grey.jpg"
    cv2.imwrite(str(plain), bgr.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 75])
    return seal, plain


def words_of(text: str) -> set[str]:
    return {w.strip(".,;:()") for w in unicodedata.normalize("NFC", text).split() if len(w) > 3}


def test_deskew_within_0_3_degrees(rough):
    for row, page in rough:
        assert abs(page.skew_degrees - float(row["skew_deg"])) <= 0.3, row


def test_rotation_found(rough):
    assert [page.rotation for _, page in rough] == [int(row["rotation"]) for row, _ in rough]
    assert {page.rotation for _, page in rough} == {0, 90, 180, 270}


def test_way_up_comes_from_the_marks_without_tesseract(rough, tmp_path, monkeypatch):
    """Issue 14 (speed): the pipeline's path (OSD only when needed) finds all four turns of the rough
    pages from where the tone marks sit, and never runs Tesseract's OSD for them."""
    def no_osd(*args, **kwargs):
        raise AssertionError("Tesseract's OSD was run")

    monkeypatch.setattr(ocr, "detect_orientation", no_osd)
    for n, (row, _) in enumerate(rough):
        page = clean_page(Path(row["dir"]) / row["page"], dpi=DPI, workdir=tmp_path, stem=f"q{n}",
                          osd_only_if_sideways=True)
        assert page.rotation == int(row["rotation"]), row


def test_marks_sit_above_letters_on_an_upright_page(rough):
    _, page = rough[1]
    binary = cv2.imread(str(page.ocr_image), cv2.IMREAD_GRAYSCALE)  # upright and deskewed
    above, below = marks_above_and_below(binary, dpi=DPI)
    assert above >= 2 * below and below > 0
    assert marks_above_and_below(cv2.rotate(binary, cv2.ROTATE_180), dpi=DPI) == pytest.approx((below, above), rel=0.2)
    assert way_up(binary, dpi=DPI) == 0 and way_up(cv2.rotate(binary, cv2.ROTATE_180), dpi=DPI) == 180
    assert way_up(cv2.rotate(binary, cv2.ROTATE_90_COUNTERCLOCKWISE), dpi=DPI, sideways=True) == 90
    assert way_up(cv2.rotate(binary, cv2.ROTATE_90_CLOCKWISE), dpi=DPI, sideways=True) == 270
    blank = np.full_like(binary, 255)
    assert way_up(blank, dpi=DPI) is None  # nothing to tell from: the caller decides


def test_an_upright_page_the_profile_took_for_sideways_stays_upright(rough):
    # A ruled table's column rules can make an upright page's column profile the sharper one (7 of
    # bench/realscans' 58 upright pages); its marks still sit above its letters as it stands.
    _, page = rough[1]
    binary = cv2.imread(str(page.ocr_image), cv2.IMREAD_GRAYSCALE)
    assert way_up(binary, dpi=DPI, sideways=True) == 0
    # really sideways, the page as it stands has fewer marks than turned: still 90 / 270
    assert way_up(cv2.rotate(binary, cv2.ROTATE_90_COUNTERCLOCKWISE), dpi=DPI, sideways=True) == 90


@pytest.mark.parametrize("rotation", [180, 90])
def test_rotated_page_reads_upright(rough, rotation, tmp_path):
    row, page = next((r, p) for r, p in rough if int(r["rotation"]) == rotation)
    truth = (Path(row["dir"]) / row["truth"]).read_text(encoding="utf-8").splitlines()
    ocr_image = cv2.imread(str(page.ocr_image), cv2.IMREAD_GRAYSCALE)
    assert ocr_image.shape[0] > ocr_image.shape[1]  # portrait again
    # OCR only the top fifth: the first lines of the truth must read, not the whole page.
    top = tmp_path / "top.pbm"
    cv2.imwrite(str(top), ocr_image[: ocr_image.shape[0] // 5])
    found = words_of(ocr.recognise(top, dpi=DPI).text)
    expected = words_of(" ".join(truth[:5]))
    assert len(found & expected) >= 0.6 * len(expected), (found, expected)


def test_ocr_image_is_one_bit_and_named_after_the_page(rough):
    _, page = rough[1]
    assert page.ocr_image.name == "p2_ocr.pbm"
    with Image.open(page.ocr_image) as im:
        assert im.mode == "1"
        assert im.size == (page.width, page.height)


def test_scanner_border_removed(rough):
    row, page = rough[1]  # upright; synthetic_scans paints a dark band down the left and along the top
    raw = cv2.imread(str(Path(row["dir"]) / row["page"]), cv2.IMREAD_GRAYSCALE)
    assert raw[:, :8].mean() < 80 and raw[:4].mean() < 80
    cleaned = cv2.imread(str(page.ocr_image), cv2.IMREAD_GRAYSCALE)
    strip = int(3 / 25.4 * DPI)  # no ink left in the first 3 mm along those edges
    assert (cleaned[:, :strip] == 0).mean() < 0.001
    assert (cleaned[:strip] == 0).mean() < 0.001
    # … while the text is still there.
    assert 0.02 < (cleaned == 0).mean() < 0.15


def test_colour_page_keeps_a_colour_image(stamped, tmp_path):
    seal, _ = stamped
    page = clean_page(seal, dpi=DPI, workdir=tmp_path, stem="seal", detect_orientation=False)
    assert page.has_colour and page.colour_image == tmp_path / "seal_colour.ppm"
    colour = cv2.imread(str(page.colour_image))
    assert colour.shape[:2] == (page.height, page.width)
    b, g, r = (colour[..., i].astype(int) for i in range(3))
    assert ((r - g > 80) & (r - b > 80)).sum() > 1000  # the red seal survived


def test_grey_page_with_jpeg_chroma_noise_has_no_colour_image(stamped, tmp_path):
    _, plain = stamped
    page = clean_page(plain, dpi=DPI, workdir=tmp_path, stem="grey", detect_orientation=False)
    assert not page.has_colour and page.colour_image is None
    assert not (tmp_path / "grey_colour.ppm").exists()


def test_isolated_speckle_removed_but_diacritics_kept():
    page = np.full((600, 900), 255, np.uint8)
    cv2.putText(page, "Hoa", (100, 200), cv2.FONT_HERSHEY_SIMPLEX, 3, 0, 12)
    cv2.circle(page, (160, 218), 4, 0, -1)   # a dot below a letter (dấu nặng), ~1 mm under it
    cv2.circle(page, (700, 500), 3, 0, -1)   # speckle far from any letter
    cv2.circle(page, (500, 80), 2, 0, -1)
    out = despeckle(page, dpi=300)[0]
    assert out[218, 160] == 0
    assert out[500, 700] == 255 and out[80, 500] == 255
    assert (out[100:220, 80:400] == page[100:220, 80:400]).all()


def test_speckle_marks_are_removed_whole_and_dotted_leaders_kept():
    page = np.full((600, 900), 255, np.uint8)
    for x in range(100, 400, 12):             # a dotted leader "......" far from any letter
        cv2.circle(page, (x, 300), 3, 0, -1)
    cv2.circle(page, (700, 500), 4, 0, 1)      # a small isolated ring: no pixel of it may stay
    cv2.line(page, (600, 100), (604, 160), 0, 1)  # a thin stroke of ~60 px, under the speckle area
    out = despeckle(page, dpi=300)[0]
    assert (out[290:310, 90:410] == page[290:310, 90:410]).all()
    assert (out[490:510, 690:710] == 255).all()
    assert (out[95:165, 595:610] == 255).all()


def test_dust_dots_near_words_go_but_full_stops_colons_and_diacritic_dots_stay():
    """Issue 14, rough pages: a dust dot beside a word was read as punctuation glued to it
    ("phủ. ban.", "Nghị:"). A round dot near letters stays only where a full stop, a colon or a
    diacritic dot sits."""
    page = np.full((600, 900), 255, np.uint8)
    for y in (200, 400, 560):                  # three lines "Hoa", letters' bottoms at y - 1
        cv2.putText(page, "Hoa", (100, y), cv2.FONT_HERSHEY_SIMPLEX, 3, 0, 12)
    cv2.circle(page, (270, 170), 4, 0, -1)     # dust at mid-height right after the first word
    cv2.circle(page, (180, 226), 3, 0, -1)     # dust 2 mm under the first line, between lines
    cv2.circle(page, (160, 218), 4, 0, -1)     # a dot below a letter (dấu nặng)
    cv2.circle(page, (270, 395), 4, 0, -1)     # a full stop on the baseline of the second line
    cv2.circle(page, (270, 555), 4, 0, -1)     # a colon after the third word
    cv2.circle(page, (270, 525), 4, 0, -1)
    out = despeckle(page, dpi=300)[0]
    assert out[170, 270] == 255 and out[226, 180] == 255
    assert out[218, 160] == 0 and out[395, 270] == 0 and out[555, 270] == 0 and out[525, 270] == 0
    # an enlarged low-resolution page keeps the distance rule only (its dots are interpolated blurs)
    assert despeckle(page, dpi=300, place_dots=False)[0][170, 270] == 0


def test_tesseract_reads_grey_ink_on_white_paper(rough):
    """Issue 14: the 1-bit image lost thin accents Tesseract reads in grey; the reading image keeps the
    grey of the glyphs (and of nothing else: paper, noise and removed speckle are white)."""
    _row, page = rough[1]
    read = cv2.imread(str(page.read_image), cv2.IMREAD_GRAYSCALE)
    binary = cv2.imread(str(page.ocr_image), cv2.IMREAD_GRAYSCALE)
    assert page.tesseract_image == page.read_image and not page.single_line
    k = 2 * READ_INK_MARGIN_PX + 1
    near_ink = cv2.dilate((binary == 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if read.shape != binary.shape:  # a 300-dpi page of 13-pt text is read from a 225-dpi copy
        near_ink = cv2.resize(near_ink * 255, (read.shape[1], read.shape[0]), interpolation=cv2.INTER_AREA)
        near_ink = cv2.dilate(near_ink, np.ones((3, 3), np.uint8))  # a reduced pixel touched by any ink
    assert (read[near_ink == 0] == 255).all()
    edges = read[near_ink > 0]
    assert np.mean((edges > 0) & (edges < 255)) > 0.3  # grey, not thresholded


def test_fine_page_is_read_from_a_reduced_copy_with_words_in_page_pixels(rough):
    """A 300-dpi page of body text is read from a smaller copy (down to 225 dpi (Tesseract ~20 % cheaper, same
    accuracy); the words come back in the full page's pixels, over the page's ink."""
    from pipeline.document import read_cleaned

    row, page = rough[1]
    read = cv2.imread(str(page.read_image), cv2.IMREAD_GRAYSCALE)
    assert READ_MAX_DPI - 1 <= page.read_dpi < DPI - 10  # this generator's 12-pt letters: ~280 dpi
    assert read.shape[1] == pytest.approx(page.width * page.read_dpi / DPI, abs=1)
    result = read_cleaned(page)
    assert (result.width, result.height, result.dpi) == (page.width, page.height, page.dpi)
    binary = cv2.imread(str(page.ocr_image), cv2.IMREAD_GRAYSCALE)
    over_ink = [(binary[w.box.top:w.box.top + w.box.height, w.box.left:w.box.left + w.box.width] == 0).mean()
                for w in result.words if len(w.text) >= 3]
    assert len(over_ink) > 100 and np.mean([share > 0.05 for share in over_ink]) > 0.95
    truth = (Path(row["dir"]) / row["truth"]).read_text("utf-8")
    assert len(words_of(result.text) & words_of(truth)) > 0.9 * len(words_of(truth))


def test_small_print_and_coarse_pages_are_read_at_their_own_resolution():
    """9-pt text lost accuracy from a 225-dpi copy (0.57 -> 0.94 % CER): the copy is never so
    small that the page's typical letter drops under READ_MIN_LETTER_PX."""
    assert read_scale(300, 35) == pytest.approx(READ_MAX_DPI / 300)
    assert read_scale(300, 30) == pytest.approx(READ_MIN_LETTER_PX / 30)
    assert read_scale(300, 24) == 1.0 and read_scale(300, None) == 1.0
    assert read_scale(200, 24) == 1.0 and read_scale(600, 70) == pytest.approx(READ_MAX_DPI / 600)
    # letters far too large on a coarse page (a receipt photographed and enlarged as if it were A4):
    # read with its letters at READ_MIN_LETTER_PX whatever the page's resolution says
    assert read_scale(225, 40) == pytest.approx(READ_MIN_LETTER_PX / 40)
    assert read_scale(200, 35) == 1.0 and read_scale(225, 1000) == 1.0  # large print; no letter at all
    page = np.full((800, 1200), 255, np.uint8)
    for y in range(100, 800, 100):
        cv2.putText(page, "HANOI THANG", (50, y), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 3)
    cv2.putText(page, ".", (1100, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 3)  # a small mark: not a letter
    _, letter_px = despeckle(page, dpi=300)
    rows = np.flatnonzero((page[40:110] == 0).any(axis=1))  # the first line's ink, top to bottom
    assert letter_px == pytest.approx(rows[-1] - rows[0] + 1, abs=1)  # O overshoots H by a pixel


def test_ink_in_grey_keeps_the_grey_around_ink_only():
    grey = np.full((40, 40), 200, np.uint8)
    grey[10:20, 10:12] = 40   # a stroke
    grey[30, 30] = 60         # noise the 1-bit cleaning removed
    binary = np.full_like(grey, 255)
    binary[10:20, 10:12] = 0
    out = ink_in_grey(binary, grey, margin=1)
    assert (out[10:20, 10:12] == 40).all()
    assert out[15, 12] == 200 and out[15, 13] == 255  # one pixel of the stroke's grey edge, then paper
    assert out[30, 30] == 255


def _text_rows(width: int, rows: list[tuple[int, int]], height: int) -> np.ndarray:
    """A grey strip with a "text line" of letter-sized blocks in each (top, bottom) row range."""
    strip = np.full((height, width), 235, np.uint8)
    for top, bottom in rows:
        for x in range(10, width - 20, 14):
            strip[top:bottom, x:x + 9] = 30
    return strip


def test_a_line_crop_is_one_band_of_ink_rows():
    """Issue 14's real line crops: one text line, with the slivers of the accents and descenders of
    the lines above and below that a tight crop catches; a strip of two lines is not one."""
    assert is_line_crop(_text_rows(600, [(5, 19)], 24))
    assert is_line_crop(_text_rows(600, [(0, 2), (6, 20), (22, 24)], 24))  # slivers of the next lines
    assert not is_line_crop(_text_rows(600, [(4, 18), (26, 40)], 44))      # two lines
    assert not is_line_crop(_text_rows(80, [(5, 19)], 24))                 # a word, not a strip
    assert not is_line_crop(np.full((24, 600), 235, np.uint8))              # nothing written


def test_a_low_resolution_line_crop_is_enlarged_more_and_read_as_1_bit(tmp_path):
    path = tmp_path / "line.png"
    Image.fromarray(_text_rows(600, [(0, 2), (6, 20)], 24)).save(path, dpi=(96, 96))
    page = clean_page(path, dpi=96, workdir=tmp_path, stem="line", detect_orientation=False)
    assert page.single_line and (page.width, page.height) == (600 * LINE_CROP_FACTOR, 24 * LINE_CROP_FACTOR)
    read = cv2.imread(str(page.tesseract_image), cv2.IMREAD_UNCHANGED)
    assert read.ndim == 2 and set(np.unique(read)) <= {0, 255}
    # the same strip as a page at 300 dpi, or a low-resolution page, is no line crop
    Image.fromarray(_text_rows(600, [(0, 2), (6, 20)], 24)).save(path, dpi=(300, 300))
    assert not clean_page(path, dpi=300, workdir=tmp_path, stem="hi", detect_orientation=False).single_line
    block = _text_rows(600, [(10, 24), (34, 48), (58, 72)], 200)
    Image.fromarray(block).save(path, dpi=(96, 96))
    assert not clean_page(path, dpi=96, workdir=tmp_path, stem="lo", detect_orientation=False).single_line


def test_a_line_crop_is_never_shown_to_osd_as_sideways(tmp_path, monkeypatch):
    """One horizontal band of ink is upright or upside down, never sideways: no OSD run for it, even
    where the profile test would take it for sideways (one of the 38 real crops did)."""
    from pipeline import clean

    asked = []
    monkeypatch.setattr(clean, "_sideways", lambda binary, dpi: (True, None))
    monkeypatch.setattr(clean, "_orientation", lambda *a, **kw: asked.append(1) or 0)
    path = tmp_path / "line.png"
    Image.fromarray(_text_rows(600, [(5, 19)], 24)).save(path, dpi=(96, 96))
    clean_page(path, dpi=96, workdir=tmp_path, stem="line", osd_only_if_sideways=True)
    assert asked == []
    clean_page(path, dpi=96, workdir=tmp_path, stem="line")  # asked outright (a page read badly): OSD runs
    assert asked == [1]


def test_unreadable_file_is_a_typed_error(tmp_path):
    from models import CorruptFile

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(CorruptFile):
        clean_page(bad, dpi=DPI, workdir=tmp_path, stem="bad")
