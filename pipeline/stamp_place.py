"""Where the visible signatures go on page 1: on free paper, never over the scan's ink.

Decree 30/2020 (Annex I) and Circular 01/2023 put the agency's signature at the top right of page 1
and the operator's at the top left. A scan's top margin may be tight (a cropped scan, a phone photo,
a form whose heading starts at the edge), so the place is found by looking: page 1 is rendered
(poppler's ``pdftoppm``, 1 px = 1 pt), inked pixels are grown by a small clearance, and the top of the
page is searched for a free rectangle the size of the stamp's text, from 10 pt down to 6 pt. When no
size fits, the page gets a white band above the scan (its MediaBox grows upwards: the scan keeps its
100 % scale and position) and the stamp goes into the band.

Also the stamp texts and their font (Liberation Serif, metric-compatible with Times New Roman).
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import SohoaError
from models.clock import VIETNAM

FONT_SOURCE = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")
FONT_SIZE = 10  # Decree 30/2020 Annex I
MIN_FONT_SIZE = 6  # below this the result code cannot be read on a print-out
FONT_STEPS = (10, 9, 8, 7, 6)  # whole points: pyHanko lays text out in exact fractions
MARGIN = 6.0  # pt between a stamp and the page edge
CLEARANCE = 3.0  # pt of free paper kept between a stamp and the nearest ink
PAD = 2.0  # the stamp box's inner margin (sign.py's text box layout)
INK_LEVEL = 200  # a rendered grey below this is ink (paper of a cleaned scan renders at ~250)
TOP_SHARE = 0.08  # a stamp's top edge lies this near the top (67 pt on A4): it stays in the header, never amid the text
SIDE_SHARE = 0.62  # a stamp keeps to its side: it spans at most this share of the width from its edge
COPY_KIND = "SAO Y – Bản sao điện tử từ bản giấy"
TEST_LABEL = "KHÓA THỬ NGHIỆM (TEST) – KHÔNG CÓ GIÁ TRỊ PHÁP LÝ"


class PlacementFailed(SohoaError):
    """Page 1 could not be rendered to look for free paper."""

    exit_code = 6
    retryable = True


# ---------------------------------------------------------------------------------------- texts
def operator_text(name: str, when: dt.datetime, *, test: bool) -> str:
    """The operator's visible signature: who digitized, and when."""
    lines = [f"Người số hóa: {name}", f"Thời gian số hóa: {when.astimezone(VIETNAM).isoformat(timespec='seconds')}"]
    return "\n".join(lines + ([TEST_LABEL] if test else []))


def agency_text(agency: str, when: dt.datetime, result_code: str | None, *, test: bool) -> str:
    """The agency's visible signature, text only: kind of copy, agency, ISO 8601 time (+07:00), result code."""
    lines = [COPY_KIND, f"Cơ quan: {agency}", f"Thời gian ký: {when.astimezone(VIETNAM).isoformat(timespec='seconds')}"]
    if result_code:
        lines.append(f"Mã kết quả số hóa: {result_code}")
    return "\n".join(lines + ([TEST_LABEL] if test else []))


# ----------------------------------------------------------------------------------------- font
_FONT_LOCK = threading.Lock()
_ADVANCES: dict[int, float] = {}


def stamp_font(cache_dir: Path | None = None) -> Path:
    """Liberation Serif rescaled to 1000 units per em (pyHanko spaces 2048-unit fonts about twice too wide).

    Cut down to Latin and Vietnamese, so each signature parses a ~60 KB font instead of ~400 KB.
    """
    from pipeline.keyring import KeyConfigError

    cache_dir = cache_dir or Path(tempfile.gettempdir()) / "sohoa-fonts"
    target = cache_dir / "LiberationSerif-Regular-1000upem-vi.ttf"
    with _FONT_LOCK:
        if target.exists():
            return target
        from fontTools import subset
        from fontTools.ttLib import TTFont
        from fontTools.ttLib.scaleUpem import scale_upem

        if not FONT_SOURCE.exists():
            raise KeyConfigError(f"{FONT_SOURCE} is missing: apt-get install fonts-liberation2.",
                                 f"Thiếu phông {FONT_SOURCE}: hãy cài fonts-liberation2.")
        font = TTFont(str(FONT_SOURCE))
        options = subset.Options()
        options.layout_features = ["*"]
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=[*range(0x20, 0x17F), *range(0x1A0, 0x1B1), *range(0x300, 0x324),
                                     *range(0x1EA0, 0x1EFA), *range(0x2010, 0x2027), 0x20AB])
        subsetter.subset(font)
        scale_upem(font, 1000)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        font.save(str(tmp))
        os.replace(tmp, target)
        return target


def _advances() -> dict[int, float]:
    """Advance width (1/1000 em) of every character of the stamp font."""
    if not _ADVANCES:
        from fontTools.ttLib import TTFont

        font = TTFont(str(stamp_font()))
        hmtx = font["hmtx"]
        table = {code: float(hmtx[glyph][0]) for code, glyph in font.getBestCmap().items()}
        with _FONT_LOCK:
            _ADVANCES.update(table)
    return _ADVANCES


def stamp_size(text: str, font_size: float) -> tuple[float, float]:
    """Width and height (pt) of the box that holds ``text`` at ``font_size`` (leading font size + 1)."""
    adv = _advances()
    widest = max(sum(adv.get(ord(c), 1000.0) for c in line) for line in text.splitlines())
    lines = len(text.splitlines())
    return widest * font_size / 1000 + 2 * PAD + 2, lines * (font_size + 1) + 2 * PAD + 1


# -------------------------------------------------------------------------------------- placing
@dataclass(frozen=True)
class Placement:
    """One stamp: its box in page-1 user space (x0, y0, x1, y1, after the band), its font size."""

    role: str
    box: tuple[float, float, float, float]
    font_size: float
    in_band: bool = False


@dataclass(frozen=True)
class PagePlan:
    """The stamps of page 1, and the height of the white band added above the scan (0: none)."""

    media_box: tuple[float, float, float, float]
    band: float
    stamps: dict[str, Placement]


def render_page_one(pdf: bytes | Path, *, dpi: int = 72) -> np.ndarray:
    """Page 1 as an 8-bit grey array (poppler's pdftoppm, which also draws the signature stamps)."""
    with tempfile.TemporaryDirectory(prefix="sohoa-stamp-") as tmp:
        src = Path(pdf) if isinstance(pdf, Path) else Path(tmp) / "page.pdf"
        if not isinstance(pdf, Path):
            src.write_bytes(pdf)
        try:
            subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-gray", "-aa", "no",
                                  "-aaVector", "no", str(src), str(Path(tmp) / "p")],
                           capture_output=True, timeout=120, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PlacementFailed(f"Page 1 could not be rendered to place the signature ({type(exc).__name__}).",
                                  f"Không dựng được trang 1 để đặt chữ ký ({type(exc).__name__}).") from None
        [pgm] = list(Path(tmp).glob("p*.pgm"))
        return _read_pgm(pgm.read_bytes())


def _read_pgm(data: bytes) -> np.ndarray:
    parts, pos = [], 0
    while len(parts) < 4:  # magic, width, height, maxval, separated by whitespace (no comments from poppler)
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        parts.append(data[start:pos])
    width, height = int(parts[1]), int(parts[2])
    return np.frombuffer(data, dtype=np.uint8, count=width * height, offset=pos + 1).reshape(height, width)


def _points_grid(grey: np.ndarray) -> np.ndarray:
    """A 144-dpi render as 1 px = 1 pt, each pixel the darkest of its 2×2 (a thin stroke is never averaged away)."""
    h, w = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    return grey[:h, :w].reshape(h // 2, 2, w // 2, 2).min(axis=(1, 3))


def _blocked(grey: np.ndarray) -> np.ndarray:
    """Ink grown by CLEARANCE (1 px = 1 pt), as an integral image for O(1) rectangle sums."""
    import cv2

    ink = (grey < INK_LEVEL).astype(np.uint8)
    k = int(np.ceil(CLEARANCE)) * 2 + 1
    grown = cv2.dilate(ink, np.ones((k, k), np.uint8))
    return np.pad(grown.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def _free_spot(integral: np.ndarray, w: int, h: int, *, left: bool, page_w: int, page_h: int,
               taken: list[tuple[int, int, int, int]], least: bool = False) -> tuple[int, int] | None:
    """Top-left pixel (x, y from the top) of the highest free w×h rectangle on this side, else None.

    ``least``: when none is free, the spot with the least ink instead of None.
    """
    m = int(MARGIN)
    ys = np.arange(m, max(m, int(page_h * TOP_SHARE)) + 1)
    span = int(page_w * SIDE_SHARE)
    xs = np.arange(m, span - w + 1) if left else np.arange(page_w - span, page_w - m - w + 1)
    if not len(xs) or not len(ys) or ys[-1] + h > page_h:
        return None
    y0, x0 = ys[:, None], xs[None, :]
    sums = integral[y0 + h, x0 + w] - integral[y0, x0 + w] - integral[y0 + h, x0] + integral[y0, x0]
    free = sums == 0
    for tx0, ty0, tx1, ty1 in taken:  # never on top of the other stamp
        free &= ~((x0 < tx1) & (x0 + w > tx0) & (y0 < ty1) & (y0 + h > ty0))
    rows = np.flatnonzero(free.any(axis=1))
    if not len(rows):
        if not least:
            return None
        y, x = np.unravel_index(np.argmin(sums), sums.shape)
        return int(xs[x]), int(ys[y])
    row = free[rows[0]]
    cols = np.flatnonzero(row)
    col = cols[0] if left else cols[-1]  # as far into its corner as it goes
    return int(xs[col]), int(ys[rows[0]])


def plan_stamps(pdf: bytes | Path, texts: dict[str, str], *, media_box: tuple[float, float, float, float],
                may_extend: bool = True, grey: np.ndarray | None = None) -> PagePlan:
    """Boxes for the stamps (``{"agency": text, "operator": text}``) on page 1, agency first.

    ``may_extend`` is False once the file carries a signature: the page can no longer grow, so a stamp
    that finds no free paper takes the spot with the least ink at the smallest size.
    """
    grey = _points_grid(render_page_one(pdf, dpi=144)) if grey is None else grey
    page_h, page_w = grey.shape
    x_left, y_bottom, _, y_top = media_box
    integral = _blocked(grey)
    found: dict[str, tuple[int, int, int, int, float]] = {}  # role -> x, y (from top), w, h, font size
    taken: list[tuple[int, int, int, int]] = []
    for role in ("agency", "operator"):
        if role not in texts:
            continue
        for size in FONT_STEPS:
            w, h = (int(np.ceil(v)) for v in stamp_size(texts[role], size))
            spot = _free_spot(integral, w, h, left=role == "operator", page_w=page_w, page_h=page_h, taken=taken)
            if spot is not None:
                found[role] = (*spot, w, h, size)
                taken.append((spot[0], spot[1], spot[0] + w, spot[1] + h))
                break
    missing = [r for r in ("agency", "operator") if r in texts and r not in found]
    stamps: dict[str, Placement] = {}
    band = 0.0
    if missing and may_extend:
        band = max(stamp_size(texts[r], FONT_SIZE)[1] for r in missing) + 2 * MARGIN
        band = float(np.ceil(band))
        for r in missing:
            w, h = stamp_size(texts[r], FONT_SIZE)
            x0 = x_left + MARGIN if r == "operator" else x_left + page_w - MARGIN - w
            top = y_top + band - MARGIN
            stamps[r] = Placement(r, (x0, top - h, x0 + w, top), FONT_SIZE, in_band=True)
    elif missing:
        for r in missing:  # no free paper and the page may not grow: the least inked spot, smallest size
            w, h = (int(np.ceil(v)) for v in stamp_size(texts[r], MIN_FONT_SIZE))
            spot = _free_spot(integral, w, h, left=r == "operator", page_w=page_w, page_h=page_h, taken=taken,
                              least=True)
            x, y = spot if spot is not None else (int(MARGIN) if r == "operator" else page_w - int(MARGIN) - w,
                                                  int(MARGIN))
            found[r] = (x, y, w, h, MIN_FONT_SIZE)
    for r, (x, y, w, h, size) in found.items():
        # Pixel rows count from the top of the page as rendered (1 px = 1 pt); PDF y counts from the bottom.
        stamps[r] = Placement(r, (x_left + x, y_top - y - h, x_left + x + w, y_top - y), size)
    new_box = (x_left, y_bottom, media_box[2], y_top + band)
    return PagePlan(media_box=new_box, band=band, stamps=stamps)
