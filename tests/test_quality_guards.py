"""Guards for the speed and size work: whatever the pipeline does to go faster or smaller, a user
still gets every page, an invisible text layer that reads right, and a seal that stays red.

One small stack runs the whole pipeline once: a seal page (colour), a page fed sideways and a
clean page, all made here from ``pipeline.sample``'s text.
"""
from __future__ import annotations

import subprocess
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image

from pipeline.document import process_document
from pipeline.sample import SAMPLE_PAGES, degrade, typeset_page

DPI = 300
SEAL_CENTRE, SEAL_RADIUS = (1750, 2600), 230  # below the text: its colour is checked, not OCR under it
# The current pipeline reads these pages at ~1% CER; 4% leaves room for noise, not for a regression
# such as a language model or a syllable correction that rewrites correct words.
MAX_CER = 0.04


def _cer(truth: str, hyp: str) -> float:
    """Edit distance over truth length, NFC and white space folded (as the shared cer.py does)."""
    t = " ".join(unicodedata.normalize("NFC", truth).split())
    h = " ".join(unicodedata.normalize("NFC", hyp).split())
    prev = list(range(len(h) + 1))
    for i, ct in enumerate(t, 1):
        cur = [i]
        for j, ch in enumerate(h, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ct != ch)))
        prev = cur
    return prev[-1] / max(len(t), 1)


def _seal_page(grey: Image.Image) -> Image.Image:
    """The page in colour with a red round seal under the text, as a signed page carries it."""
    rgb = np.dstack([np.asarray(grey)] * 3).copy()
    ink = np.zeros(rgb.shape[:2], np.uint8)
    cv2.circle(ink, SEAL_CENTRE, SEAL_RADIUS, 255, 14)
    cv2.circle(ink, SEAL_CENTRE, int(SEAL_RADIUS * 0.7), 255, 5)
    rgb[ink > 0] = np.minimum(rgb[ink > 0], (200, 30, 40))
    return Image.fromarray(rgb)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> tuple[Path, list[Path], object]:
    """Three pages (seal, sideways, clean) through ``process_document``; returns (folder, inputs, result)."""
    folder = tmp_path_factory.mktemp("guards")
    pages = [
        _seal_page(degrade(typeset_page(SAMPLE_PAGES[0], dpi=DPI), seed=1)),
        degrade(typeset_page(SAMPLE_PAGES[1], dpi=DPI), seed=2, skew=1.5, rotate=90),
        degrade(typeset_page(SAMPLE_PAGES[2], dpi=DPI), seed=3),
    ]
    inputs = []
    for i, page in enumerate(pages, 1):
        path = folder / f"page-{i}.png"
        page.save(path, dpi=(DPI, DPI))
        inputs.append(path)
    result = process_document(inputs, workdir=folder / "work", out_pdf=folder / "out.pdf", jobs=2)
    return folder, inputs, result


def _render(pdf: Path, folder: Path, page: int, *, dpi: int = DPI, name: str = "render") -> np.ndarray:
    prefix = folder / f"{name}-{page}"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-png", str(pdf), str(prefix)],
                   check=True)
    [png] = sorted(folder.glob(f"{name}-{page}*.png"))
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def test_no_page_is_lost(stack):
    _, inputs, result = stack
    with pikepdf.open(result.searchable_pdf) as pdf:
        assert len(pdf.pages) == len(inputs)
    assert len(result.page_texts) == len(inputs)
    assert result.dropped_pages == []
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(result.searchable_pdf), "-"],
                          capture_output=True, check=True, text=True).stdout
    assert text.count("\f") == len(inputs)


def test_every_page_reads_within_the_cer_bound(stack):
    _, _, result = stack
    for number, (lines, text) in enumerate(zip(SAMPLE_PAGES, result.page_texts, strict=True), 1):
        assert _cer("\n".join(lines), text) < MAX_CER, (number, text[:300])


def test_text_layer_is_present_and_invisible(stack):
    folder, _, result = stack
    with pikepdf.open(result.searchable_pdf) as pdf:
        for page in pdf.pages:
            content = page.obj.Contents.read_bytes()
            assert b"BT" in content and b"3 Tr" in content
            # No other text rendering mode anywhere: nothing of the text layer is ever painted.
            assert b" Tr" not in content.replace(b"3 Tr", b"")
    # Rendering with and without the text layer gives the same pixels.
    stripped = folder / "stripped.pdf"
    with pikepdf.open(result.searchable_pdf) as pdf:
        contents = pdf.pages[2].obj.Contents
        pdf.pages[2].obj.Contents = pdf.make_stream(contents.read_bytes().split(b"BT", 1)[0])
        pdf.save(stripped)
    assert np.array_equal(_render(result.searchable_pdf, folder, 3, dpi=100, name="with-text"),
                          _render(stripped, folder, 3, dpi=100, name="without-text"))


def test_seal_stays_red_and_text_black(stack):
    folder, _, result = stack
    page = _render(result.searchable_pdf, folder, 1)
    cx, cy = SEAL_CENTRE
    reds = []
    for angle in range(0, 360, 20):
        x = round(cx + SEAL_RADIUS * np.cos(np.radians(angle)))
        y = round(cy + SEAL_RADIUS * np.sin(np.radians(angle)))
        r, g, b = page[y - 2: y + 3, x - 2: x + 3].reshape(-1, 3).mean(axis=0)
        reds.append(r > 140 and r - g > 60 and r - b > 50)
    assert sum(reds) >= 0.8 * len(reds), reds  # a glyph may cross the ring at a few points
    dark = page.sum(axis=2) < 200
    assert dark.sum() > 10_000  # the text is there …
    assert np.abs(page[dark][:, 0] - page[dark][:, 2]).mean() < 25  # … and black, not tinted
    assert result.searchable_pdf.stat().st_size / 3 < 150_000
