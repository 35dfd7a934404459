#!/usr/bin/env python3
"""Precision and recall of the field extraction (models/extraction.py) on a labelled set of scans.

The set (made on the fly, cached in --work): documents of varied layout and quality with known
fields, and the two real pages in ../shared/realdata/pages (labelled here by hand):
  - "two-column" pages typeset here like Decree 30/2020 documents (issuer and national motto side by
    side, number and dated place line, centred title), lightly degraded;
  - "synth" pages typeset by ../shared/bench/synth_scans.py from our texts (single column, profiles
    clean/office/rough, serif/sans, PNG/JPEG, some with a red seal);
  - forms (Đơn đề nghị, Tờ khai) with one or two citizen IDs and distractor numbers (phone, bank
    account, invalid 12-digit numbers).
Every page goes through the real pipeline (clean → Tesseract vie) and the extraction; a field's
precision = right values / values given, recall = right values / values in the labels.

    python bench/signing/extract_eval.py [--docs 44] [--work /tmp/sohoa-extract-eval] [--jobs 2]

Needs ../shared (or SOHOA_SHARED) for synth_scans.py and the real pages; skips what is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models import OcrPage  # noqa: E402
from models.extraction import FIELDS, PROVINCE_CODES, extract_fields  # noqa: E402

FONT_DIR = Path("/usr/share/fonts/truetype/liberation2")
ISSUERS = [("UỶ BAN NHÂN DÂN", "TỈNH TUYÊN QUANG"), ("UBND TỈNH TUYÊN QUANG", "SỞ TƯ PHÁP"),
           ("UBND HUYỆN YÊN SƠN", "PHÒNG TÀI NGUYÊN VÀ MÔI TRƯỜNG"), ("BỘ TƯ PHÁP", "CỤC HỘ TỊCH, QUỐC TỊCH"),
           ("UBND THÀNH PHỐ ĐÀ NẴNG", "SỞ XÂY DỰNG"), ("UBND XÃ LANG QUÁN", "CÔNG AN XÃ")]
SYMBOLS = {"Quyết định": "QĐ", "Công văn": "", "Thông báo": "TB", "Giấy chứng nhận": "GCN", "Biên bản": "BB",
           "Kế hoạch": "KH"}
PLACES = ["Tuyên Quang", "Yên Sơn", "Đà Nẵng", "Hà Nội", "Lang Quán"]
NAMES = ["Nguyễn Văn Hùng", "Trần Thị Lan", "Lê Minh Tuấn", "Phạm Thu Hà", "Hoàng Văn Nam", "Đỗ Thị Mai"]
BODY = ("Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015; căn cứ Nghị định số "
        "61/2018/NĐ-CP của Chính phủ về thực hiện cơ chế một cửa, một cửa liên thông trong giải quyết thủ tục "
        "hành chính; xét đề nghị của Trưởng phòng, cán bộ tiếp nhận kiểm tra hồ sơ và trình lãnh đạo xem xét.")


def shared_dir() -> Path | None:
    env = os.environ.get("SOHOA_SHARED")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared", ROOT.parent.parent / "shared"]:
        if cand.is_dir():
            return cand
    return None


def citizen_id(rng: random.Random) -> str:
    year = rng.randrange(1950, 2008)
    century = (year // 100 - 19) * 2 + rng.randrange(2)
    return f"{rng.choice(sorted(PROVINCE_CODES))}{century}{year % 100:02d}{rng.randrange(10**6):06d}"


def fake_id(rng: random.Random) -> str:
    """A 12-digit number that is not a citizen ID (unknown province code)."""
    return f"{rng.choice(['003', '005', '013', '099'])}{rng.randrange(10**9):09d}"


def official(rng: random.Random, kind: str) -> tuple[dict, dict]:
    parent, issuer = rng.choice(ISSUERS)
    short = "".join(w[0] for w in issuer.split() if w[0].isalpha())[:5].upper()
    sym = SYMBOLS[kind]
    number = f"{rng.randrange(1, 3000)}/{sym + '-' if sym else ''}{short or 'UBND'}"
    day, month, year = rng.randrange(1, 29), rng.randrange(1, 13), rng.randrange(2015, 2026)
    place = rng.choice(PLACES)
    title = kind.upper() if kind != "Công văn" else None
    doc = {"parent": parent, "issuer": issuer, "number": number, "place": place,
           "date": f"ngày {day:02d} tháng {month} năm {year}" if rng.random() < 0.5 else
           f"ngày {day} tháng {month:02d} năm {year}", "title": title,
           "subject": "V/v triển khai số hóa hồ sơ thủ tục hành chính" if kind == "Công văn" else
           "Về việc ban hành quy chế tiếp nhận hồ sơ", "body": BODY}
    truth = {"document_number": [number], "document_date": [f"{year}-{month:02d}-{day:02d}"],
             "document_kind": [kind], "issuing_body": [issuer], "citizen_id": []}
    if rng.random() < 0.4:  # a decision about a person names their ID
        cid = citizen_id(rng)
        doc["body"] += f" Cấp cho ông/bà {rng.choice(NAMES)}, số định danh cá nhân {cid}."
        truth["citizen_id"] = [cid]
    return doc, truth


def form(rng: random.Random, kind: str) -> tuple[dict, dict]:
    ids = [citizen_id(rng) for _ in range(rng.choice([1, 1, 2]))]
    day, month, year = rng.randrange(1, 29), rng.randrange(1, 13), rng.randrange(2018, 2026)
    lines = [f"Họ và tên: {rng.choice(NAMES)}", f"Số định danh cá nhân/CCCD: {ids[0]}",
             f"Số điện thoại: 09{rng.randrange(10**8):08d}. Số tài khoản: {fake_id(rng)}"]
    if len(ids) > 1:
        lines.append(f"Người được ủy quyền: {rng.choice(NAMES)}, căn cước công dân số {ids[1]}")
    lines.append("Kính đề nghị cơ quan có thẩm quyền xem xét, giải quyết theo quy định của pháp luật.")
    title = {"Đơn đề nghị": "ĐƠN ĐỀ NGHỊ CẤP BẢN SAO TRÍCH LỤC HỘ TỊCH",
             "Tờ khai": "TỜ KHAI ĐĂNG KÝ KHAI SINH", "Giấy đề nghị": "GIẤY ĐỀ NGHỊ CẤP PHÉP XÂY DỰNG"}[kind]
    doc = {"title": title, "lines": lines, "place": rng.choice(PLACES),
           "date": f"ngày {day} tháng {month} năm {year}"}
    truth = {"document_number": [], "document_date": [f"{year}-{month:02d}-{day:02d}"], "document_kind": [kind],
             "issuing_body": [], "citizen_id": ids}
    return doc, truth


def render_two_column(doc: dict, path: Path, rng: random.Random) -> None:
    """A4 at 300 dpi in the Decree 30 layout, lightly degraded, saved as PNG."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    W, H, dpi = 2480, 3508, 300
    reg = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Regular.ttf"), 54)
    bold = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Bold.ttf"), 54)
    ital = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Italic.ttf"), 54)
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)

    def centre(text, x_mid, y, font):
        d.text((x_mid - d.textlength(text, font=font) / 2, y), text, font=font, fill=0)

    left_mid, right_mid, y = 620, 1650, 240
    if "issuer" in doc:
        centre(doc["parent"], left_mid, y, reg)
        centre(doc["issuer"], left_mid, y + 75, bold)
        centre(f"Số: {doc['number']}", left_mid, y + 190, reg)
        if doc.get("subject") and doc["title"] is None:
            centre(doc["subject"][:40], left_mid, y + 265, reg)
    centre("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", right_mid if "issuer" in doc else W / 2, y, bold)
    centre("Độc lập - Tự do - Hạnh phúc", right_mid if "issuer" in doc else W / 2, y + 75, bold)
    y = 640
    if "issuer" in doc:
        centre(f"{doc['place']}, {doc['date']}", right_mid, y - 250, ital)
    if doc.get("title"):
        centre(doc["title"], W / 2, y, bold)
        y += 160
    text = doc.get("body") or ""
    lines = doc.get("lines") or []
    words, cur, out = text.split(), "", []
    for w in words:
        if d.textlength(cur + " " + w, font=reg) > W - 400:
            out.append(cur)
            cur = w
        else:
            cur = (cur + " " + w).strip()
    if cur:
        out.append(cur)
    for line in out + lines:
        d.text((200, y), line, font=reg, fill=0)
        y += 85
    if "issuer" not in doc:
        centre(f"{doc['place']}, {doc['date']}", 1650, y + 120, ital)
    a = np.asarray(img, dtype=np.float32)
    a = np.minimum(a, 240) + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, a.shape)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, dpi=(dpi, dpi))


def text_for_synth(doc: dict) -> str:
    """The same document as plain paragraphs for synth_scans.py (single column)."""
    if "issuer" in doc:
        paras = [doc["parent"], doc["issuer"], f"Số: {doc['number']}", f"{doc['place']}, {doc['date']}"]
        if doc["title"]:
            paras.append(doc["title"])
        else:
            paras.append(doc["subject"])
        paras.append(doc["body"])
    else:
        paras = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", doc["title"], *doc["lines"],
                 f"{doc['place']}, {doc['date']}"]
    return "\n".join(paras) + "\n"


def build_set(work: Path, n_docs: int, shared: Path | None, seed: int = 13) -> list[dict]:
    """The labelled set: [{"image": path, "truth": {...}, "layout": ...}], cached in work/set.json."""
    cache = work / "set.json"
    if cache.exists():
        return json.loads(cache.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    synth = shared / "bench" / "synth_scans.py" if shared else None
    kinds_official = list(SYMBOLS)
    kinds_form = ["Đơn đề nghị", "Tờ khai", "Giấy đề nghị"]
    items = []
    (work / "docs").mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        is_form = i % 3 == 2
        doc, truth = form(rng, rng.choice(kinds_form)) if is_form else official(rng, rng.choice(kinds_official))
        use_synth = synth is not None and synth.exists() and i % 2 == 1
        if use_synth:
            text = work / "docs" / f"{i:03d}.txt"
            text.write_text(text_for_synth(doc), encoding="utf-8")
            profile = ["clean", "office", "office", "rough"][i % 4]
            fmt = "jpg" if i % 4 == 3 else "png"
            font = "sans" if i % 5 == 0 else "serif"
            out = work / "docs" / f"{i:03d}-synth"
            cmd = [sys.executable, str(synth), str(text), str(out), "--pages", "1", "--seed", str(i),
                   "--profile", profile, "--format", fmt, "--font", font]
            if i % 7 == 0:
                cmd.append("--stamp")
            subprocess.run(cmd, check=True, capture_output=True)
            image = out / "pages" / f"001.{fmt}"
            layout = f"synth-{profile}-{font}{'-seal' if i % 7 == 0 else ''}"
        else:
            image = work / "docs" / f"{i:03d}.png"
            render_two_column(doc, image, rng)
            layout = "two-column" if not is_form else "form"
        items.append({"image": str(image), "truth": truth, "layout": layout})
    if shared and (shared / "realdata" / "pages" / "4_1.jpg").exists():
        pages = shared / "realdata" / "pages"
        items.append({"image": str(pages / "4_1.jpg"), "layout": "real", "truth": {
            "document_number": ["1906/SGDĐT-CTrTT"], "document_date": ["2020-07-26"], "document_kind": ["Công văn"],
            "issuing_body": ["SỞ GIÁO DỤC VÀ ĐÀO TẠO"], "citizen_id": []}})
        items.append({"image": str(pages / "4_2.jpg"), "layout": "real", "truth": {
            "document_number": [], "document_date": [], "document_kind": [], "issuing_body": [], "citizen_id": []}})
    cache.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    return items


def ocr_page(image: Path, work: Path) -> tuple[OcrPage, float]:
    """The real pipeline on one page (clean + Tesseract), cached as JSON; returns (page, seconds)."""
    import hashlib

    cache = work / "ocr" / (hashlib.sha256(str(image).encode()).hexdigest()[:16] + ".json")
    if cache.exists():
        data = json.loads(cache.read_text(encoding="utf-8"))
        return OcrPage.from_dict(data["ocr"]), data["seconds"]
    from pipeline.document import process_document

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sohoa-eval-") as tmp:
        result = process_document([image], workdir=Path(tmp), jobs=1)
        data = json.loads(result.ocr_json.read_text(encoding="utf-8"))["pages"][0]
    seconds = time.perf_counter() - started
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"ocr": data["ocr"], "seconds": seconds}, ensure_ascii=False), encoding="utf-8")
    return OcrPage.from_dict(data["ocr"]), seconds


def norm(value: str) -> str:
    return " ".join(unicodedata.normalize("NFC", value).upper().split())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=44, help="generated documents (plus the 2 real pages)")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "sohoa-extract-eval"))
    ap.add_argument("--show-errors", action="store_true")
    args = ap.parse_args()
    shared = shared_dir()
    if shared is None:
        print("SKIP: ../shared (or SOHOA_SHARED) not found: synth_scans.py and the real pages are needed.")
        return 0
    work = Path(args.work)
    items = build_set(work, args.docs, shared)
    counts = {f: {"tp": 0, "fp": 0, "fn": 0} for f in FIELDS}
    errors = []
    started = time.perf_counter()
    for item in items:
        page, _ = ocr_page(Path(item["image"]), work)
        got: dict[str, set[str]] = {f: set() for f in FIELDS}
        for f in extract_fields([(1, page)]):
            got[f.name].add(norm(f.value))
        for name in FIELDS:
            truth = {norm(v) for v in item["truth"].get(name, [])}
            tp = len(got[name] & truth)
            counts[name]["tp"] += tp
            counts[name]["fp"] += len(got[name] - truth)
            counts[name]["fn"] += len(truth - got[name])
            if got[name] != truth:
                errors.append((Path(item["image"]).name, item["layout"], name, sorted(truth), sorted(got[name])))
    layouts = sorted({i["layout"].split("-")[0] for i in items})
    mix = ", ".join(f"{sum(i['layout'].startswith(k) for i in items)} {k}" for k in layouts)
    print(f"{len(items)} documents ({mix}), {time.perf_counter() - started:.0f} s")
    print(f"{'field':<16} {'labelled':>8} {'found':>6} {'right':>6} {'precision':>9} {'recall':>7}")
    for name in FIELDS:
        c = counts[name]
        found, labelled = c["tp"] + c["fp"], c["tp"] + c["fn"]
        p = c["tp"] / found if found else 1.0
        r = c["tp"] / labelled if labelled else 1.0
        print(f"{name:<16} {labelled:>8} {found:>6} {c['tp']:>6} {p:>9.3f} {r:>7.3f}")
    if args.show_errors:
        for e in errors:
            print("  ", *e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
