"""A small sample dossier for ``sohoa demo`` and the tests: Vietnamese administrative text,
typeset and degraded like a counter scanner's output (grey paper, noise, a little blur, one page
skewed, one fed upside down)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/liberation2", "/usr/share/fonts/truetype/liberation",
             "/usr/share/fonts/truetype/dejavu")
FONT_FILES = ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf")

SAMPLE_PAGES = [
    [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "ĐƠN ĐỀ NGHỊ CẤP GIẤY PHÉP XÂY DỰNG",
        "Kính gửi: Ủy ban nhân dân huyện Yên Sơn, tỉnh Tuyên Quang.",
        "Tên chủ đầu tư: Nguyễn Văn Hùng. Địa chỉ liên hệ: thôn Đồng Cháy, xã Lang Quán.",
        "Số điện thoại: 0912 345 678. Căn cước công dân số 008085001234 cấp ngày 12 tháng 3 năm 2021.",
        "Địa điểm xây dựng: lô đất số 15, tờ bản đồ số 7, thôn Đồng Cháy, xã Lang Quán.",
        "Nội dung đề nghị cấp phép: xây dựng nhà ở riêng lẻ hai tầng, diện tích xây dựng 96 mét vuông.",
        "Tôi xin cam kết làm theo đúng giấy phép được cấp, nếu sai tôi xin hoàn toàn chịu trách nhiệm",
        "và bị xử lý theo quy định của pháp luật.",
    ],
    [
        "ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG",
        "QUYẾT ĐỊNH về việc ban hành Kế hoạch cải cách thủ tục hành chính năm 2018",
        "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;",
        "Căn cứ Nghị định số 61/2018/NĐ-CP ngày 23 tháng 4 năm 2018 của Chính phủ về thực hiện",
        "cơ chế một cửa, một cửa liên thông trong giải quyết thủ tục hành chính;",
        "Điều 1. Ban hành kèm theo Quyết định này Kế hoạch số hóa hồ sơ, kết quả giải quyết",
        "thủ tục hành chính tại Bộ phận Một cửa các cấp trên địa bàn tỉnh.",
        "Điều 2. Quyết định này có hiệu lực kể từ ngày ký. Chánh Văn phòng Ủy ban nhân dân tỉnh,",
        "Giám đốc các sở, Thủ trưởng các ban, ngành chịu trách nhiệm thi hành Quyết định này.",
    ],
    [
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        "Bộ phận tiếp nhận và trả kết quả huyện Yên Sơn đã tiếp nhận hồ sơ của ông Nguyễn Văn Hùng.",
        "Nội dung yêu cầu giải quyết: cấp giấy phép xây dựng nhà ở riêng lẻ.",
        "Thành phần hồ sơ gồm: đơn đề nghị, bản sao giấy chứng nhận quyền sử dụng đất,",
        "bản vẽ thiết kế xây dựng, bản sao căn cước công dân.",
        "Thời gian giải quyết hồ sơ theo quy định là mười lăm ngày làm việc.",
        "Thời gian nhận hồ sơ: 9 giờ 30 phút, ngày 10 tháng 10 năm 2018.",
        "Người nộp hồ sơ và người tiếp nhận hồ sơ ký và ghi rõ họ tên.",
    ],
]


def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    names = FONT_FILES[1::2] if bold else FONT_FILES[0::2]
    for d in FONT_DIRS:
        for n in names:
            p = Path(d) / n
            if p.exists():
                return ImageFont.truetype(str(p), size)
    raise FileNotFoundError("no Vietnamese-capable font: apt-get install fonts-liberation2 fonts-dejavu-core")


def typeset_page(lines: list[str], *, dpi: int = 300, font_pt: float = 13.0) -> Image.Image:
    """One clean A4 page of text in Times-like Liberation Serif, first line bold."""
    w, h = int(8.27 * dpi), int(11.69 * dpi)
    size = int(font_pt * dpi / 72)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    y, left = int(0.9 * dpi), int(1.1 * dpi)
    for i, line in enumerate(lines):
        for seg in textwrap.wrap(line, width=80) or [""]:
            draw.text((left, y), seg, font=_font(i == 0, size), fill=0)
            y += int(size * 1.5)
        y += int(size * 0.3)
    return img


def degrade(img: Image.Image, *, seed: int, skew: float = 0.0, rotate: int = 0) -> Image.Image:
    """Grey uneven paper, sensor noise, slight blur, optional skew and 90° turns (clockwise)."""
    rng = np.random.default_rng(seed)
    a = np.asarray(img, dtype=np.float32)
    h, w = a.shape
    if skew:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0)
        a = cv2.warpAffine(a, m, (w, h), borderValue=255.0, flags=cv2.INTER_LINEAR)
    tone = 238 - 15 * (np.arange(w, dtype=np.float32)[None, :] / w)
    a = np.minimum(a, tone) + rng.normal(0, 6.0, a.shape)
    a = cv2.GaussianBlur(a, (3, 3), 0)
    if rotate:
        a = np.rot90(a, k=-(rotate // 90)).copy()
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def make_sample_dossier(out_dir: Path, *, dpi: int = 300) -> list[Path]:
    """Write three scanned-looking pages (page 2 skewed 2.5°, page 3 upside down) as a multi-page TIFF
    and as single JPEGs; returns [tiff, jpeg1, jpeg2, jpeg3]."""
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = [dict(skew=0.0, rotate=0), dict(skew=2.5, rotate=0), dict(skew=-0.8, rotate=180)]
    pages = [degrade(typeset_page(lines, dpi=dpi), seed=i, **v)
             for i, (lines, v) in enumerate(zip(SAMPLE_PAGES, variants, strict=True))]
    tiff = out_dir / "ho-so-mau.tif"
    pages[0].save(tiff, save_all=True, append_images=pages[1:], compression="tiff_lzw", dpi=(dpi, dpi))
    jpegs = []
    for i, p in enumerate(pages, 1):
        path = out_dir / f"trang-{i}.jpg"
        p.save(path, quality=85, dpi=(dpi, dpi))
        jpegs.append(path)
    return [tiff, *jpegs]


def sample_truth() -> list[str]:
    """The text of each sample page, for checking OCR."""
    return ["\n".join(p) for p in SAMPLE_PAGES]




# ------------------------------------------------------------------ synthetic scans for tests and benches
# Paragraph text for full pages, from the sample dossier's own sentences (the project's own text).
SYNTH_TEXT = [line for page in SAMPLE_PAGES for line in page]

SYNTH_PROFILES = {
    # skew (max abs degrees), noise sigma, blur kernel, speckles per page, JPEG quality, scanner border
    "clean": dict(skew=0.0, noise=0.0, blur=0, speckle=0, quality=95, border=False),
    "office": dict(skew=2.0, noise=8.0, blur=3, speckle=300, quality=80, border=True),
    "rough": dict(skew=4.0, noise=16.0, blur=3, speckle=1500, quality=60, border=True),
}
# Rough pages are fed every way round, in this order (degrees counter-clockwise, as np.rot90 turns them).
ROUGH_ROTATIONS = (180, 0, 270, 90)


def _full_page_lines(start: int, count: int) -> list[str]:
    return [SYNTH_TEXT[(start + i) % len(SYNTH_TEXT)] for i in range(count)]


def _scanner(a: np.ndarray, rng: np.random.Generator, prof: dict, skew: float) -> np.ndarray:
    """What a counter scanner does to a clean page: skew, uneven paper, noise, speckle, blur, dark border."""
    h, w = a.shape
    if skew:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0)
        a = cv2.warpAffine(a, m, (w, h), borderValue=255.0, flags=cv2.INTER_LINEAR)
    if prof["noise"]:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = np.minimum(a, 235 - 20 * (xx / w) - 10 * (yy / h))
        a = a + rng.normal(0, prof["noise"], a.shape)
        for _ in range(prof["speckle"]):
            cx, cy, r = int(rng.integers(w)), int(rng.integers(h)), int(rng.choice([1, 1, 2, 3]))
            cv2.circle(a, (cx, cy), r, float(rng.integers(0, 90)), -1)
    if prof["blur"]:
        a = cv2.GaussianBlur(a, (prof["blur"], prof["blur"]), 0)
    if prof["border"]:
        bw = int(rng.integers(10, 60))
        a[:, :bw] = float(rng.integers(10, 60))
        a[: bw // 2, :] = float(rng.integers(10, 60))
    return a


def add_seal(grey: np.ndarray, rng: np.random.Generator, dpi: int) -> np.ndarray:
    """A red round official seal (rings and a star) over the lower half; returns RGB."""
    h, w = grey.shape
    rgb = np.dstack([grey, grey, grey]).astype(np.float32)
    ink = np.zeros((h, w), np.uint8)
    r = int(0.8 * dpi)
    cx, cy = int(rng.integers(w // 2, w - r - 10)), int(rng.integers(h // 2, h - r - 10))
    cv2.circle(ink, (cx, cy), r, 255, max(4, dpi // 40))
    cv2.circle(ink, (cx, cy), int(r * 0.72), 255, max(2, dpi // 100))
    pts = [(int(cx + r * (0.3 if k % 2 == 0 else 0.12) * np.cos(np.pi / 2 + k * np.pi / 5)),
            int(cy - r * (0.3 if k % 2 == 0 else 0.12) * np.sin(np.pi / 2 + k * np.pi / 5))) for k in range(10)]
    cv2.fillPoly(ink, [np.array(pts, np.int32)], 255)
    alpha = (ink.astype(np.float32) / 255.0) * float(rng.uniform(0.55, 0.85))
    red = (200.0, 30.0, 40.0)
    for c in range(3):
        rgb[..., c] = rgb[..., c] * (1 - alpha) + np.minimum(rgb[..., c], red[c]) * alpha
    return np.clip(rgb, 0, 255).astype(np.uint8)


def synthetic_scans(out_dir: Path, *, pages: int = 4, profile: str = "office", seed: int = 61, dpi: int = 300,
                    stamp: bool = False, fmt: str = "png", lines_per_page: int = 24) -> list[dict[str, str]]:
    """Full pages of Vietnamese text degraded like counter scans, with their truth: one row per page.

    Each row: ``page`` and ``truth`` (paths relative to ``dir``), ``profile``, ``skew_deg`` (the skew
    applied), ``rotation`` (0/90/180/270, counter-clockwise; rough pages cycle through
    ``ROUGH_ROTATIONS``), ``dpi`` and ``dir``. ``stamp`` adds a red seal and writes colour pages.
    Deterministic for a given seed. Also written as ``manifest.tsv`` in ``out_dir``.
    """
    prof = SYNTH_PROFILES[profile]
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "pages").mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(1, pages + 1):
        lines = _full_page_lines((n - 1) * lines_per_page, lines_per_page)
        clean = typeset_page(lines, dpi=dpi, font_pt=12.0)
        skew = float(rng.uniform(-prof["skew"], prof["skew"])) if prof["skew"] else 0.0
        a = _scanner(np.asarray(clean, dtype=np.float32), rng, prof, skew)
        rotation = ROUGH_ROTATIONS[(n - 1) % len(ROUGH_ROTATIONS)] if profile == "rough" else 0
        if rotation:
            a = np.rot90(a, k=rotation // 90).copy()
        arr = np.clip(a, 0, 255).astype(np.uint8)
        if stamp:
            arr = add_seal(arr, rng, dpi)
        name = f"{n:03d}.{fmt}"
        image = Image.fromarray(arr)
        if fmt == "jpg":
            image.save(out_dir / "pages" / name, quality=prof["quality"], dpi=(dpi, dpi))
        elif fmt == "tif":
            image.save(out_dir / "pages" / name, compression="tiff_lzw", dpi=(dpi, dpi))
        else:
            image.save(out_dir / "pages" / name, dpi=(dpi, dpi))
        # The truth is what typeset_page drew: each line wrapped as it wraps them.
        truth = [seg for line in lines for seg in (textwrap.wrap(line, width=80) or [""])]
        (out_dir / "truth" / f"{n:03d}.txt").write_text("\n".join(truth) + "\n", encoding="utf-8")
        rows.append({"page": f"pages/{name}", "truth": f"truth/{n:03d}.txt", "profile": profile,
                     "skew_deg": f"{skew:.2f}", "rotation": str(rotation), "dpi": str(dpi), "dir": str(out_dir)})
    header = ["page", "truth", "profile", "skew_deg", "rotation", "dpi"]
    (out_dir / "manifest.tsv").write_text(
        "\n".join(["\t".join(header)] + ["\t".join(r[k] for k in header) for r in rows]) + "\n", encoding="utf-8")
    return rows
