#!/usr/bin/env python3
"""Make synthetic Vietnamese administrative forms with known ground truth (the bench's ``forms`` set).

Each page is a form ("TỜ KHAI ...", "ĐƠN ĐỀ NGHỊ ...") drawn at 300 dpi on A4 with, varying by
page: the Decree 30 two-column header (agency left, national motto right); label/value rows with
dotted leaders, some with two fields per row, values typed in or left blank; a row of 12 comb
boxes holding a citizen ID, one digit per box; a small ruled table (STT | Họ và tên | Số định danh
| Quan hệ) of 2-4 rows; a statement; a closing on the right ("..., ngày ... tháng ... năm ...",
"NGƯỜI KHAI", "(Ký, ghi rõ họ tên)", the name), optionally under a red round seal and a blue
signature. Then it is degraded like an office scan: paper tone, noise, slight blur, a skew of at
most 0.4°, JPEG for some pages. Names, IDs and addresses are made up.

Ground truth, one line per row in reading order: the header's left block, then its right block;
a two-field row is one line ("Họ và tên: Nguyễn Văn An Ngày sinh: 12/03/1985"); a blank value
gives the label alone; leaders, empty boxes, rules, the seal and the signature are not text; the
ID is one word after its label; a table row by row, cells left to right.

Output folder (the layout of ../shared/bench/synth_scans.py, so corpus.synth_set's reader fits):
  pages/NNN.png|jpg   truth/NNN.txt   manifest.tsv (page, truth, profile, skew_deg, rotation, dpi)

Usage: python bench/forms/make_forms.py OUT_DIR [--pages 8] [--seed 30] [--dpi 300]
The same arguments always give the same pages. Fonts: pipeline.sample._font (Liberation Serif).
"""
from __future__ import annotations

import argparse
import random
import sys
import unicodedata
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipeline.sample import _font  # noqa: E402

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
MIDDLE_M = ["Văn", "Minh", "Đức", "Quang", "Hữu", "Công", "Xuân", "Thanh"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hồng", "Kim"]
GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Hùng", "Khánh", "Long", "Nam", "Quân", "Sơn", "Tuấn", "Việt"]
GIVEN_F = ["Dung", "Hà", "Hạnh", "Lan", "Linh", "Mai", "Nga", "Phương", "Thảo", "Trang", "Yến", "Huyền"]
# (district, commune, province) triples used as made-up addresses
PLACES = [("Yên Sơn", "Lang Quán", "Tuyên Quang"), ("Hàm Yên", "Thái Sơn", "Tuyên Quang"),
          ("Văn Giang", "Phụng Công", "Hưng Yên"), ("Gia Lâm", "Đa Tốn", "Hà Nội"),
          ("Thủy Nguyên", "Lập Lễ", "Hải Phòng"), ("Diễn Châu", "Diễn Kỷ", "Nghệ An"),
          ("Đức Trọng", "Hiệp Thạnh", "Lâm Đồng"), ("Châu Thành", "Tân Phú", "Bến Tre")]
HAMLETS = ["thôn Đồng Cháy", "thôn Trung Tâm", "xóm 4", "tổ dân phố số 7", "ấp Phú Hòa", "thôn Cầu Trì"]
JOBS = ["Giáo viên", "Nông dân", "Kỹ sư xây dựng", "Công nhân", "Kế toán", "Buôn bán", "Hưu trí"]
WORKPLACES = ["Trường Tiểu học Lang Quán", "Công ty TNHH Minh Phát", "Hợp tác xã Thái Sơn",
              "Bệnh viện đa khoa huyện", "Tự do"]
RELATIONS = {False: ["Chồng", "Con", "Bố", "Anh", "Em", "Con"], True: ["Vợ", "Con", "Mẹ", "Chị", "Em", "Con"]}
FORMS = [
    ("TỜ KHAI THAY ĐỔI THÔNG TIN CƯ TRÚ", "Kính gửi: Công an xã {commune}"),
    ("ĐƠN ĐỀ NGHỊ CẤP BẢN SAO TRÍCH LỤC HỘ TỊCH", "Kính gửi: Ủy ban nhân dân xã {commune}"),
    ("TỜ KHAI ĐĂNG KÝ THƯỜNG TRÚ", "Kính gửi: Công an huyện {district}"),
    ("ĐƠN ĐỀ NGHỊ XÁC NHẬN TÌNH TRẠNG HÔN NHÂN", "Kính gửi: Ủy ban nhân dân xã {commune}"),
    ("TỜ KHAI ĐỀ NGHỊ CẤP THẺ BẢO HIỂM Y TẾ", "Kính gửi: Bảo hiểm xã hội huyện {district}"),
    ("ĐƠN ĐỀ NGHỊ HỖ TRỢ HỌC PHÍ", "Kính gửi: Phòng Giáo dục và Đào tạo huyện {district}"),
]
STATEMENT = ("Tôi xin cam đoan những nội dung khai trên đây là đúng sự thật và chịu trách nhiệm "
             "trước pháp luật về lời khai của mình.")


def person(rng: random.Random, female: bool | None = None) -> tuple[str, bool]:
    female = rng.random() < 0.5 if female is None else female
    mid = rng.choice(MIDDLE_F if female else MIDDLE_M)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    return f"{rng.choice(SURNAMES)} {mid} {given}", female


def citizen_id(rng: random.Random, year: int, female: bool) -> str:
    """12 digits shaped like a citizen ID: province code, century/sex digit, year, serial (made up)."""
    century = (1 if female else 0) + (2 if year >= 2000 else 0)
    return f"0{rng.randrange(1, 96):02d}{century}{year % 100:02d}{rng.randrange(0, 10**6):06d}"


def date(rng: random.Random, lo: int, hi: int) -> tuple[int, int, int]:
    return rng.randrange(1, 29), rng.randrange(1, 13), rng.randrange(lo, hi)


class Page:
    """An A4 page being drawn, with its truth lines."""

    def __init__(self, dpi: int, rng: random.Random):
        self.dpi, self.rng = dpi, rng
        self.w, self.h = int(8.27 * dpi), int(11.69 * dpi)
        self.img = Image.new("L", (self.w, self.h), 255)
        self.draw = ImageDraw.Draw(self.img)
        self.left, self.right = int(30 / 25.4 * dpi), self.w - int(18 / 25.4 * dpi)  # Decree 30 margins
        self.y = int(18 / 25.4 * dpi)
        self.size = int(13 * dpi / 72)
        self.font, self.bold = _font(False, self.size), _font(True, self.size)
        self.small, self.small_bold = _font(False, int(12 * dpi / 72)), _font(True, int(12 * dpi / 72))
        self.row = int(self.size * 1.75)
        self.lines: list[str] = []
        self.closing_box: tuple[int, int, int, int] | None = None

    def text(self, x: float, y: float, s: str, font) -> float:
        self.draw.text((x, y), s, font=font, fill=0)
        return x + font.getlength(s)

    def centred(self, s: str, font, cx: float, y: float) -> tuple[float, float]:
        x = cx - font.getlength(s) / 2
        return x, self.text(x, y, s, font)

    def leader(self, x0: float, x1: float, y: float) -> None:
        """Dotted leader from x0 to x1 as typed dots, on the text's baseline."""
        dot = self.font.getlength(".")
        n = int((x1 - x0) // dot)
        if n > 2:
            self.text(x1 - n * dot, y, "." * n, self.font)

    # ---------------------------------------------------------------- parts of a form
    def header(self, agency: list[str]) -> None:
        cx_l = self.left + 0.22 * (self.right - self.left)
        cx_r = self.left + 0.70 * (self.right - self.left)
        y = self.y
        lh = int(self.small.size * 1.45)
        for i, s in enumerate(agency):
            x0, x1 = self.centred(s, self.small_bold if i else self.small, cx_l, y + i * lh)
        self.draw.line([(cx_l - 0.2 * (x1 - x0), y + len(agency) * lh + 4),
                        (cx_l + 0.2 * (x1 - x0), y + len(agency) * lh + 4)], fill=0, width=3)
        motto = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
        self.centred(motto[0], self.small_bold, cx_r, y)
        x0, x1 = self.centred(motto[1], self.small_bold, cx_r, y + lh)
        self.draw.line([(x0, y + 2 * lh + 4), (x1, y + 2 * lh + 4)], fill=0, width=3)
        self.lines += [*agency, *motto]
        self.y += max(len(agency), 2) * lh + int(0.35 * self.size * 4)

    def title(self, title: str, to: str) -> None:
        self.y += int(self.size * 0.6)
        self.centred(title, self.bold, (self.left + self.right) / 2, self.y)
        self.y += int(self.size * 2.0)
        self.centred(to, self.font, (self.left + self.right) / 2, self.y)
        self.y += int(self.size * 2.2)
        self.lines += [title, to]

    def fields(self, pairs: list[tuple[str, str]]) -> None:
        """One row of one or two 'Label: value ......' fields; an empty value is left blank."""
        split = self.left + 0.58 * (self.right - self.left)
        if len(pairs) == 2:  # the second field starts at 58 % of the line, earlier if it would not fit
            need = self.font.getlength(f"{pairs[1][0]}: {pairs[1][1]} ....")
            split = min(split, self.right - need)
        ends = [split, self.right] if len(pairs) == 2 else [self.right]
        x, words = self.left, []
        for (label, value), end in zip(pairs, ends):
            x = self.text(x, self.y, f"{label}:", self.font)
            words.append(f"{label}:")
            if value:
                x = self.text(x + self.font.getlength(" "), self.y, value, self.font)
                words.append(value)
            stop = end - (self.size if end != self.right else 0)  # a gap before the next label
            self.leader(x + self.font.getlength(" "), stop, self.y)
            x = end
        self.lines.append(" ".join(words))
        self.y += self.row

    def comb(self, label: str, digits: str) -> None:
        """'Label:' then 12 boxes side by side, one digit per box."""
        x = self.text(self.left, self.y, f"{label}:", self.font) + self.font.getlength("  ")
        bw, bh = int(5.2 / 25.4 * self.dpi), int(6.4 / 25.4 * self.dpi)
        top = self.y + self.size * 0.55 - bh / 2
        for i, d in enumerate(digits):
            x0 = int(x + i * bw)
            self.draw.rectangle([x0, int(top), x0 + bw, int(top + bh)], outline=0, width=3)
            self.centred(d, self.font, x0 + bw / 2, self.y)
        self.lines.append(f"{label}: {digits}")
        self.y += int(self.row * 1.3)

    def table(self, intro: str, rows: list[list[str]]) -> None:
        self.text(self.left, self.y, intro, self.font)
        self.lines.append(intro)
        self.y += self.row
        width = self.right - self.left
        cols = [0.09, 0.39, 0.29, 0.23]
        xs = [self.left + int(width * sum(cols[:i])) for i in range(len(cols) + 1)]
        rh = int(self.size * 1.6)
        head = ["STT", "Họ và tên", "Số định danh", "Quan hệ"]
        top = self.y
        for r, cells in enumerate([head, *rows]):
            y = top + r * rh
            for c, cell in enumerate(cells):
                font = self.bold if r == 0 else self.font
                ty = y + (rh - self.size) / 2 - self.size * 0.1
                if r == 0 or c == 0:
                    self.centred(cell, font, (xs[c] + xs[c + 1]) / 2, ty)
                else:
                    self.text(xs[c] + int(self.size * 0.3), ty, cell, font)
            self.lines.append(" ".join(cells))
        bottom = top + rh * (len(rows) + 1)
        for r in range(len(rows) + 2):
            self.draw.line([(xs[0], top + r * rh), (xs[-1], top + r * rh)], fill=0, width=3)
        for x in xs:
            self.draw.line([(x, top), (x, bottom)], fill=0, width=3)
        self.y = bottom + int(self.size * 0.9)

    def paragraph(self, s: str) -> None:
        indent = int(self.size * 1.2)
        for i, seg in enumerate(_wrap(s, self.font, self.right - self.left - indent)):
            self.text(self.left + (indent if i == 0 else 0), self.y, seg, self.font)
            self.lines.append(seg)
            self.y += int(self.size * 1.5)
        self.y += int(self.size * 0.8)

    def closing(self, place: str, when: tuple[int, int, int] | None, name: str) -> None:
        cx = self.left + 0.72 * (self.right - self.left)
        if when:
            d, m, yr = when
            line = f"{place}, ngày {d:02d} tháng {m:02d} năm {yr}"
            self.centred(line, self.font, cx, self.y)
            truth = line
        else:  # a date left for the hand: its dots are leaders, not text
            parts, x = [f"{place}, ngày", "tháng", "năm"], None
            gap = self.font.getlength("." * 10)
            total = sum(self.font.getlength(p) for p in parts) + 3 * gap + 3 * self.font.getlength(" ")
            x = cx - total / 2
            for p in parts:
                x = self.text(x, self.y, p, self.font) + self.font.getlength(" ")
                x = self.text(x, self.y, "." * 10, self.font)
            truth = " ".join(parts)
        y0 = self.y
        self.y += int(self.size * 1.6)
        self.centred("NGƯỜI KHAI", self.bold, cx, self.y)
        self.y += int(self.size * 1.4)
        self.centred("(Ký, ghi rõ họ tên)", self.font, cx, self.y)
        self.y += int(self.size * 4.2)
        x0, x1 = self.centred(name, self.bold, cx, self.y)
        self.lines += [truth, "NGƯỜI KHAI", "(Ký, ghi rõ họ tên)", name]
        self.closing_box = (int(cx), int(y0), int(self.y), int(x1 - x0))
        self.y += self.row


def _wrap(s: str, font, max_px: float) -> list[str]:
    out, cur = [], ""
    for word in s.split():
        trial = f"{cur} {word}" if cur else word
        if cur and font.getlength(trial) > max_px:
            out.append(cur)
            cur = word
        else:
            cur = trial
    return out + [cur] if cur else out


# -------------------------------------------------------------------- ink over the page, then the scan
def seal(rgb: np.ndarray, rng: random.Random, cx: int, cy: int, dpi: int) -> None:
    """A red round seal (two rings, a star, tick marks for its lettering) over (cx, cy), in place."""
    h, w = rgb.shape[:2]
    ink = np.zeros((h, w), np.uint8)
    r = int(0.72 * dpi)
    cv2.circle(ink, (cx, cy), r, 255, max(4, dpi // 45))
    cv2.circle(ink, (cx, cy), int(r * 0.68), 255, max(2, dpi // 110))
    for k in range(36):  # the seal's lettering, as short strokes between the rings (not text)
        a = 2 * np.pi * k / 36
        p0 = (int(cx + r * 0.76 * np.cos(a)), int(cy + r * 0.76 * np.sin(a)))
        p1 = (int(cx + r * 0.9 * np.cos(a + 0.05)), int(cy + r * 0.9 * np.sin(a + 0.05)))
        cv2.line(ink, p0, p1, 255, max(3, dpi // 90))
    rad = [r * (0.3 if k % 2 == 0 else 0.12) for k in range(10)]  # a five-pointed star
    pts = [(int(cx + rad[k] * np.cos(np.pi / 2 + k * np.pi / 5)),
            int(cy - rad[k] * np.sin(np.pi / 2 + k * np.pi / 5))) for k in range(10)]
    cv2.fillPoly(ink, [np.array(pts, np.int32)], 255)
    _ink(rgb, ink, (200.0, 35.0, 45.0), rng.uniform(0.55, 0.8))


def signature(rgb: np.ndarray, rng: random.Random, cx: int, cy: int, span: int) -> None:
    """A blue pen scribble centred at (cx, cy), about span px wide, in place."""
    h, w = rgb.shape[:2]
    ink = np.zeros((h, w), np.uint8)
    n = 60
    t = np.linspace(0, 1, n)
    xs = cx - span / 2 + span * t + 25 * np.sin(t * rng.uniform(14, 22))
    ys = cy + 45 * np.sin(t * rng.uniform(9, 15) + rng.uniform(0, 3)) * (1 - 0.5 * t)
    cv2.polylines(ink, [np.stack([xs, ys], 1).astype(np.int32)], False, 255, 5, cv2.LINE_AA)
    _ink(rgb, ink, (30.0, 50.0, 170.0), 0.9)


def _ink(rgb: np.ndarray, ink: np.ndarray, colour: tuple[float, float, float], strength: float) -> None:
    alpha = ink.astype(np.float32) / 255.0 * strength
    for c in range(3):
        rgb[..., c] = rgb[..., c] * (1 - alpha) + np.minimum(rgb[..., c], colour[c]) * alpha


def scan(a: np.ndarray, rng: random.Random, skew: float) -> np.ndarray:
    """An office scanner's copy: skew, grey uneven paper, sensor noise, a little blur."""
    h, w = a.shape[:2]
    a = a.astype(np.float32)
    if skew:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0)
        a = cv2.warpAffine(a, m, (w, h), borderValue=(255.0,) * (a.shape[2] if a.ndim == 3 else 1),
                           flags=cv2.INTER_LINEAR)
    xs, ys = np.arange(w, dtype=np.float32)[None, :] / w, np.arange(h, dtype=np.float32)[:, None] / h
    tone = 236 - 16 * xs - 8 * ys
    a = np.minimum(a, tone[..., None] if a.ndim == 3 else tone)
    a += np.random.default_rng(rng.randrange(1 << 30)).standard_normal(a.shape, dtype=np.float32) * 6.0
    a = cv2.GaussianBlur(a, (3, 3), 0)
    return np.clip(a, 0, 255).astype(np.uint8)


# -------------------------------------------------------------------- one page
def make_page(rng: random.Random, dpi: int, n: int) -> tuple[np.ndarray, list[str], dict]:
    district, commune, province = rng.choice(PLACES)
    title, to = FORMS[(n + rng.randrange(len(FORMS))) % len(FORMS)]
    p = Page(dpi, rng)
    if rng.random() < 0.75:
        agency = rng.choice([[f"UBND HUYỆN {district.upper()}", f"ỦY BAN NHÂN DÂN XÃ {commune.upper()}"],
                             [f"CÔNG AN TỈNH {province.upper()}", f"CÔNG AN HUYỆN {district.upper()}"],
                             [f"UBND TỈNH {province.upper()}", f"SỞ TƯ PHÁP"]])
        p.header(agency)
    p.title(title, to.format(commune=commune, district=district))

    def maybe(v: str) -> str:  # a value typed in, or left for the hand
        return "" if rng.random() < 0.18 else v

    name, female = person(rng)
    d, m, year = date(rng, 1950, 2004)
    p.fields([("Họ và tên", name), ("Ngày sinh", f"{d:02d}/{m:02d}/{year}")])
    folk = maybe(rng.choice(["Kinh", "Tày", "Nùng", "Mường"]))
    p.fields([("Giới tính", "Nữ" if female else "Nam"), ("Dân tộc", folk)])
    pid = citizen_id(rng, year, female)
    p.comb("Số định danh cá nhân", pid)
    rows = [
        [("Quê quán", maybe(f"xã {rng.choice(PLACES)[1]}, huyện {rng.choice(PLACES)[0]}"))],
        [("Nơi thường trú", maybe(f"{rng.choice(HAMLETS)}, xã {commune}, huyện {district}, "
                                  f"tỉnh {province}"))],
        [("Nghề nghiệp", maybe(rng.choice(JOBS))), ("Nơi làm việc", maybe(rng.choice(WORKPLACES)))],
        [("Số điện thoại", maybe(f"09{rng.randrange(10**8):08d}")), ("Email", "")],
        [("Nội dung đề nghị", maybe(rng.choice(["Đăng ký thường trú tại địa chỉ mới", "Cấp bản sao trích lục",
                                                "Xác nhận để bổ sung hồ sơ", "Cấp lại do bị mất"])))],
    ]
    rng.shuffle(rows)
    for r in rows[: rng.randrange(3, len(rows) + 1)]:
        p.fields(r)
    if rng.random() < 0.8:
        members = []
        for i in range(rng.randrange(2, 5)):
            who, fem = person(rng)
            members.append([str(i + 1), who, citizen_id(rng, rng.randrange(1950, 2020), fem),
                            rng.choice(RELATIONS[fem])])
        p.table(rng.choice(["Những thành viên trong hộ gia đình:", "Những người cùng thay đổi:"]), members)
    p.paragraph(STATEMENT)
    when = None
    if rng.random() < 0.8:
        when = (rng.randrange(1, 29), rng.randrange(1, 13), rng.choice([2023, 2024, 2025]))
    p.closing(commune, when, name)

    with_seal, with_sig = rng.random() < 0.4, rng.random() < 0.6
    a = np.asarray(p.img)
    if with_seal or with_sig:
        a = np.dstack([a, a, a]).astype(np.float32)
        cx, y0, y_name, span = p.closing_box
        if with_sig:
            signature(a, rng, cx, (y0 + y_name) // 2 + int(p.size * 1.6), max(span, int(0.9 * dpi)))
        if with_seal:
            seal(a, rng, cx - int(0.9 * dpi) + rng.randrange(-40, 40), y0 + int(p.size * 2.5), dpi)
    skew = round(rng.uniform(-0.4, 0.4), 2)
    return scan(a, rng, skew), [unicodedata.normalize("NFC", s) for s in p.lines], dict(skew=skew)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--seed", type=int, default=30)
    ap.add_argument("--dpi", type=int, default=300)
    ap.add_argument("--format", choices=["mixed", "png", "jpg"], default="mixed",
                    help="mixed: odd pages PNG, even pages JPEG (quality 80)")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    (a.out / "pages").mkdir(parents=True, exist_ok=True)
    (a.out / "truth").mkdir(parents=True, exist_ok=True)
    rows = ["page\ttruth\tprofile\tskew_deg\trotation\tdpi"]
    for n in range(1, a.pages + 1):
        arr, lines, info = make_page(rng, a.dpi, n)
        ext = a.format if a.format != "mixed" else ("jpg" if n % 2 == 0 else "png")
        name = f"{n:03d}.{ext}"
        img = Image.fromarray(arr)
        if ext == "jpg":
            img.save(a.out / "pages" / name, quality=80, dpi=(a.dpi, a.dpi))
        else:
            img.save(a.out / "pages" / name, dpi=(a.dpi, a.dpi))
        (a.out / "truth" / f"{n:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows.append(f"pages/{name}\ttruth/{n:03d}.txt\tform\t{info['skew']:.2f}\t0\t{a.dpi}")
    (a.out / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows) - 1} form pages written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
