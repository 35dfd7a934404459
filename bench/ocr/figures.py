"""Before/after crops of one seal page and one phone page (synthetic, from bench/work/corpus).

``python bench/ocr/figures.py`` after ``bench/ocr/compare.py`` has built the corpus; writes small PNGs to
bench/ocr/figures/: the seal region as scanned, as the OCR image was before issue 14 (plain grey,
thresholded) and as it is now (stamp ink lifted); the phone photo, the rectified page, a text block
of it as the PDF's 1-bit image and as the grey copy Tesseract reads.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import background, camera, clean  # noqa: E402
from pipeline.raster import binarise  # noqa: E402

CORPUS = ROOT / "bench" / "work" / "corpus"
OUT = ROOT / "bench" / "ocr" / "figures"


def seal_figures(page: Path) -> None:
    bgr = cv2.imread(str(page), cv2.IMREAD_COLOR)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    # Where the seal is: the biggest red region.
    b, g, r = (bgr[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((r - g > 60) & (r - b > 50))
    cy, cx = int(np.median(ys)), int(np.median(xs))
    half = 330
    box = (slice(max(0, cy - half), cy + half), slice(max(0, cx - 2 * half), cx + half))
    before = binarise(background.flatten_background(grey, dpi=300))
    after = binarise(background.flatten_background(background.without_stamp_ink(bgr, grey, dpi=300), dpi=300))
    for name, image in (("seal-scan", bgr), ("seal-ocr-before", before), ("seal-ocr-after", after)):
        crop = image[box]
        small = cv2.resize(crop, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            _small_png(OUT / f"{name}.png", small)
        else:
            cv2.imwrite(str(OUT / f"{name}.png"), small)


def _small_png(path: Path, bgr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).quantize(64).save(path, optimize=True)


def phone_figures(page: Path) -> None:
    photo = cv2.imread(str(page), cv2.IMREAD_COLOR)
    found = camera.find_page(photo)
    assert found is not None, page
    flat = camera.rectify(photo, found)
    marked = photo.copy()
    cv2.polylines(marked, [found.corners.astype(np.int32)], True, (0, 160, 0), 12)
    # Whole-page views, small: a 64-colour palette PNG (a photo's noise makes a full-colour PNG huge).
    _small_png(OUT / "phone-photo.png", cv2.resize(marked, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA))
    scale = 450 / flat.shape[1]
    _small_png(OUT / "phone-rectified.png", cv2.resize(flat, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    # Detail at full resolution: a text block of the rectified page, thresholded as OCR sees it.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.ppm"
        cv2.imwrite(str(path), flat)
        cleaned = clean.clean_page(path, dpi=found.dpi, workdir=Path(tmp), stem="p", detect_orientation=False)
        binary = cv2.imread(str(cleaned.ocr_image), cv2.IMREAD_GRAYSCALE)
        read = cv2.imread(str(cleaned.tesseract_image), cv2.IMREAD_GRAYSCALE)  # what Tesseract reads
    for name, image in (("phone-ocr-detail", binary), ("phone-read-detail", read)):
        h, w = image.shape
        cv2.imwrite(str(OUT / f"{name}.png"), image[int(0.08 * h):int(0.2 * h), int(0.1 * w):int(0.7 * w)])


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    seal_figures(CORPUS / "office-stamp-8" / "pages" / "001.jpg")
    phone_figures(CORPUS / "phone-stamp-8" / "pages" / "001.jpg")
    print("\n".join(str(p) for p in sorted(OUT.glob("*.png"))))
