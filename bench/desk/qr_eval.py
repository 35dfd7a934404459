#!/usr/bin/env python3
"""Measure case-ID QR detection and stack splitting on a mixed, scanner-like stack of pages.

Builds a stack of at least 40 pages: cover sheets printed and "scanned" with mixed degradations
(200/300 dpi, 90/180/270 rotation, ±3° skew, blur, noise, grey paper, JPEG 60–85), Vietnamese
text pages typeset from /work/shared/seed/*.txt, receipts ("Giấy tiếp nhận hồ sơ và hẹn trả kết
quả") with a small QR in a corner, and the two real scanned letters in /work/shared/realdata.
Then runs ``detect_case_qr`` on every page and ``split_stack`` on the findings, and prints missed
sheets, false splits and ms/page for pages with and without a QR.

The page makers here are also what tests/test_qr.py builds its pages with, so the test suite and
the benchmark degrade pages the same way.

Usage:  .venv/bin/python bench/desk/qr_eval.py [--seed 7] [--sheets 8] [--pages 44] [--save DIR]
"""
from __future__ import annotations

import os

import argparse
import random
import sys
import textwrap
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models import CaseId  # noqa: E402
from pipeline.qr import encode_qr, render_coversheet  # noqa: E402

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo

SEED_DIR = SHARED / "seed"
REAL_PAGES = SHARED / "realdata" / "pages"
FONT_DIR = Path("/usr/share/fonts/truetype/liberation2")
PRINT_DPI = 300  # the "paper": everything is rendered at this resolution, then scanned

FALLBACK_TEXT = (
    "Căn cứ Nghị định số 61/2018/NĐ-CP ngày 23/4/2018 của Chính phủ về thực hiện cơ chế một cửa, "
    "một cửa liên thông trong giải quyết thủ tục hành chính. Bộ phận Một cửa tiếp nhận hồ sơ, kiểm tra "
    "thành phần hồ sơ, số hóa hồ sơ và chuyển cho cơ quan có thẩm quyền giải quyết."
)


@dataclass(frozen=True)
class Degradation:
    """How one simulated counter scan spoils a printed page."""

    scan_dpi: int = 200
    rotate: int = 0  # 0, 90, 180, 270 (fed sideways or upside down)
    skew_deg: float = 0.0
    blur_sigma: float = 0.6  # printer dot gain plus scanner optics
    noise_sigma: float = 6.0
    paper_grey: int = 235  # what white paper becomes; photocopies are darker
    jpeg_quality: int | None = 80
    colour: bool = False  # BGR output, as a colour-mode scanner writes

    def label(self) -> str:
        q = f"q{self.jpeg_quality}" if self.jpeg_quality else "png"
        return (f"{self.scan_dpi}dpi rot{self.rotate} skew{self.skew_deg:+.1f} blur{self.blur_sigma:.1f} "
                f"noise{self.noise_sigma:.0f} paper{self.paper_grey} {q}{' bgr' if self.colour else ''}")


def scan(page: Image.Image, deg: Degradation, *, seed: int = 0, print_dpi: int = PRINT_DPI) -> np.ndarray:
    """Print ``page`` (rendered at ``print_dpi``) and scan it back the way ``deg`` says."""
    rng = np.random.default_rng(seed)
    a = np.asarray(page.convert("L"), dtype=np.float32)
    if deg.blur_sigma:
        a = cv2.GaussianBlur(a, (0, 0), deg.blur_sigma * print_dpi / 200)
    scale = deg.scan_dpi / print_dpi
    if scale != 1:
        a = cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    # Paper is never white and toner never black; an uneven lamp adds a slow gradient.
    h, w = a.shape
    ramp = np.linspace(0, 12, w, dtype=np.float32)[None, :]
    a = 25 + (a / 255.0) * (deg.paper_grey - 25 - ramp)
    if deg.skew_deg:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), deg.skew_deg, 1.0)
        a = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=float(deg.paper_grey))
    if deg.noise_sigma:
        a = a + rng.normal(0, deg.noise_sigma, a.shape).astype(np.float32)
    # The dark strip a sheet-fed scanner leaves where the paper did not cover the glass.
    a[:, : max(4, deg.scan_dpi // 20)] = 30
    a = np.clip(a, 0, 255).astype(np.uint8)
    if deg.rotate:
        a = np.ascontiguousarray(np.rot90(a, k=deg.rotate // 90))
    if deg.colour:
        a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
        a[..., 0] = cv2.subtract(a[..., 0], 6)  # a slightly warm paper tone
    if deg.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, deg.jpeg_quality])
        a = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return a


def random_degradation(rng: random.Random) -> Degradation:
    """A counter scan within the brief's limits: 200/300 dpi, any quarter turn, ±3°, JPEG 60–85."""
    return Degradation(
        scan_dpi=rng.choice([200, 300]),
        rotate=rng.choice([0, 0, 90, 180, 270]),
        skew_deg=round(rng.uniform(-3, 3), 1),
        blur_sigma=round(rng.uniform(0.3, 1.2), 1),
        noise_sigma=round(rng.uniform(3, 14), 0),
        paper_grey=rng.randrange(185, 245),
        jpeg_quality=rng.choice([60, 70, 75, 85]),
        colour=rng.random() < 0.3,
    )


def seed_paragraphs() -> list[str]:
    """Vietnamese paragraphs from the provincial plan in the shared seed folder (NFC)."""
    paras: list[str] = []
    for path in sorted(SEED_DIR.glob("*.txt")):
        for raw in unicodedata.normalize("NFC", path.read_text(encoding="utf-8")).splitlines():
            line = " ".join(raw.split())
            if len(line) > 3:
                paras.append(line)
    return paras or [FALLBACK_TEXT] * 40


def _a4(dpi: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    page = Image.new("L", (int(8.27 * dpi), int(11.69 * dpi)), 255)
    return page, ImageDraw.Draw(page)


def text_page(paras: list[str], *, start: int, dpi: int = PRINT_DPI) -> Image.Image:
    """An A4 page of Times-like 13 pt text, from paragraph ``start`` on."""
    page, draw = _a4(dpi)
    font = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Regular.ttf"), int(13 * dpi / 72))
    bold = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Bold.ttf"), int(13 * dpi / 72))
    y, leading = int(0.9 * dpi), int(13 * dpi / 72 * 1.45)
    i = start
    while y < page.height - int(1.2 * dpi):
        para = paras[i % len(paras)]
        f = bold if para.isupper() else font
        for line in textwrap.wrap(para, width=78) or [""]:
            draw.text((int(1.2 * dpi), y), line, font=f, fill=0)
            y += leading
        i += 1
    return page


def receipt_page(case_text: str, *, dpi: int = PRINT_DPI, qr_mm: float = 22.0) -> Image.Image:
    """A one-stop-shop receipt with the case ID in print and as a small QR in the top right corner."""
    page, draw = _a4(dpi)
    font = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Regular.ttf"), int(13 * dpi / 72))
    bold = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Bold.ttf"), int(14 * dpi / 72))
    left, y, leading = int(0.9 * dpi), int(0.8 * dpi), int(13 * dpi / 72 * 1.5)
    for line, f in [("UBND TỈNH TUYÊN QUANG", font), ("BỘ PHẬN MỘT CỬA", bold), ("", font),
                    ("GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", bold), (f"Mã hồ sơ: {case_text}", bold),
                    ("", font), ("Bộ phận tiếp nhận và trả kết quả: Văn phòng UBND tỉnh Tuyên Quang.", font),
                    ("Tiếp nhận hồ sơ của: Ông/Bà Nguyễn Văn An", font),
                    ("Địa chỉ: Tổ 5, phường Phan Thiết, thành phố Tuyên Quang", font),
                    ("Số điện thoại: 0207 3822 xxx          Thư điện tử: (không có)", font),
                    ("Nội dung yêu cầu giải quyết: Cấp giấy chứng nhận quyền sử dụng đất", font),
                    ("1. Thành phần hồ sơ và số lượng mỗi loại giấy tờ gồm:", font),
                    ("   - Đơn đề nghị (bản chính): 01", font), ("   - Bản sao giấy tờ tùy thân: 01", font),
                    ("   - Hợp đồng chuyển nhượng (bản chính): 01", font),
                    ("2. Số lượng hồ sơ: 01 (bộ)", font),
                    ("3. Thời gian giải quyết hồ sơ theo quy định là: 10 ngày làm việc", font),
                    ("4. Thời gian nhận hồ sơ: 08 giờ 30 phút, ngày 10/10/2018", font),
                    ("5. Thời gian trả kết quả: 14 giờ 00 phút, ngày 24/10/2018", font),
                    ("6. Đăng ký nhận kết quả tại: Bộ phận Một cửa", font), ("", font),
                    ("NGƯỜI NỘP HỒ SƠ                              NGƯỜI TIẾP NHẬN HỒ SƠ", bold)]:
        draw.text((left, y), line, font=f, fill=0)
        y += leading
    module_px = max(2, round(qr_mm / 25.4 * dpi / 29))
    symbol = encode_qr(case_text, module_px=module_px)
    margin = int(0.6 * dpi)
    page.paste(Image.fromarray(symbol), (page.width - margin - symbol.shape[1], margin))
    return page


def real_pages() -> list[np.ndarray]:
    """The two real scanned letters (~70 dpi, red seal, signature): pages that must stay QR-free."""
    return [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sorted(REAL_PAGES.glob("*.jpg"))]


def main() -> int:
    from pipeline.qr import detect_case_qr, split_stack

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sheets", type=int, default=8)
    ap.add_argument("--pages", type=int, default=44, help="total pages in the stack")
    ap.add_argument("--save", type=Path, help="write every page as a JPEG/PNG here for inspection")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    paras = seed_paragraphs()
    case_ids = [CaseId.parse(f"000.{rng.randrange(100):02d}.{rng.randrange(100):02d}.H56-"
                             f"18{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}-{n + 1:04d}")
                for n in range(args.sheets)]
    # Stack: each dossier = a sheet then 3–5 pages (one is sometimes its receipt); a few loose pages
    # at the front, as when the operator forgets the first sheet.
    stack: list[tuple[str, np.ndarray, CaseId | None, Degradation | None]] = []
    text_budget = args.pages - args.sheets
    lead = 2
    for _ in range(lead):
        deg = random_degradation(rng)
        stack.append(("text", scan(text_page(paras, start=rng.randrange(len(paras))), deg,
                                   seed=rng.randrange(1 << 30)), None, deg))
    for real in real_pages():
        stack.append(("real", real, None, None))
    text_budget -= len(stack)
    per_case = [text_budget // args.sheets + (1 if n < text_budget % args.sheets else 0)
                for n in range(args.sheets)]
    for case_id, n_pages in zip(case_ids, per_case):
        deg = random_degradation(rng)
        stack.append(("sheet", scan(render_coversheet(case_id, dpi=PRINT_DPI), deg,
                                    seed=rng.randrange(1 << 30)), case_id, deg))
        for k in range(n_pages):
            deg = random_degradation(rng)
            if k == 0 and rng.random() < 0.4:
                page = receipt_page(str(case_id))
                kind = "receipt"
            else:
                page = text_page(paras, start=rng.randrange(len(paras)))
                kind = "text"
            stack.append((kind, scan(page, deg, seed=rng.randrange(1 << 30)), case_id, deg))

    findings = []
    times: dict[str, list[float]] = {}
    for i, (kind, image, _case, deg) in enumerate(stack):
        dpi = deg.scan_dpi if deg else None
        t0 = time.perf_counter()
        finding = detect_case_qr(image, dpi=dpi)
        times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        findings.append(finding)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.save / f"{i:03d}_{kind}.jpg"), image)

    print(f"stack: {len(stack)} pages, {args.sheets} cover sheets, "
          f"{sum(k == 'receipt' for k, *_ in stack)} receipts (small QR), "
          f"{sum(k in ('text', 'real') for k, *_ in stack)} pages without QR")
    missed = [(i, deg) for i, ((kind, _, _, deg), f) in enumerate(zip(stack, findings))
              if kind == "sheet" and (f is None or not f.valid)]
    receipts_missed = [i for i, ((kind, *_), f) in enumerate(zip(stack, findings))
                       if kind == "receipt" and (f is None or not f.valid)]
    false_hits = [(i, kind, f.text) for i, ((kind, *_), f) in enumerate(zip(stack, findings))
                  if kind in ("text", "real") and f is not None]
    print(f"missed cover sheets: {len(missed)} / {args.sheets}")
    for i, deg in missed:
        print(f"  page {i}: {deg.label()}")
    print(f"missed receipt QRs: {len(receipts_missed)} / {sum(k == 'receipt' for k, *_ in stack)}")
    print(f"QR found on pages without QR (false positives): {len(false_hits)} / "
          f"{sum(k in ('text', 'real') for k, *_ in stack)}")
    for i, kind, text in false_hits:
        print(f"  page {i} ({kind}): {text!r}")

    # The split the operator would get: only cover sheets are meant to split; a receipt QR carries
    # the same case ID, so it opens a segment for the same case, which counts as a false split.
    split = split_stack(findings, default_case=None)
    expected_sheets = {i for i, (kind, *_) in enumerate(stack) if kind == "sheet"}
    got_sheets = {s.sheet_page for s in split.segments if s.sheet_page is not None}
    false_splits = sorted(got_sheets - expected_sheets)
    print(f"false splits: {len(false_splits)} (pages {false_splits}) of {len(stack)} pages")
    wrong = 0
    for i, (_kind, _img, case, _deg) in enumerate(stack):
        seg = next((s for s in split.segments if i in s.pages), None)
        if seg is not None and case is not None and seg.case_id != case:
            wrong += 1
    print(f"pages filed under the wrong case: {wrong}; segments: {len(split.segments)}; "
          f"empty segments: {len(split.empty_segments)}; invalid QRs: {len(split.invalid_qr)}")
    for kind, ms in sorted(times.items()):
        arr = np.array(ms)
        print(f"ms/page {kind:8s} n={len(arr):2d}  median {np.median(arr):7.1f}  mean {arr.mean():7.1f}  "
              f"max {arr.max():7.1f}")
    with_qr = np.array(times.get("sheet", []) + times.get("receipt", []))
    without = np.array(times.get("text", []) + times.get("real", []))
    print(f"ms/page with QR: median {np.median(with_qr):.1f}, mean {with_qr.mean():.1f}; "
          f"without QR: median {np.median(without):.1f}, mean {without.mean():.1f}")
    return 1 if missed or false_hits else 0


if __name__ == "__main__":
    raise SystemExit(main())
