"""Searchable PDF/A building and incoming-PDF inspection, checked the way a user would notice.

Pages are drawn by the tests (Liberation Serif, Vietnamese sentences); pdftotext and pdftoppm
(poppler) read the results back. One small page goes through a real Tesseract run.
"""
from __future__ import annotations

import hashlib
import re
import struct
import subprocess
import unicodedata
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models import BoundingBox, CorruptFile, EmptyFile, EncryptedPdf, OcrPage, OcrWord
from pipeline.ocr import recognise
from pipeline.pdf import (
    PdfMetadata,
    RasterPage,
    SourcePdfPage,
    build_searchable_pdf,
    encode_raster_page,
    extract_text,
    inspect_pdf,
    merge_pdfs,
    pdf_outline,
    pdfa_problems,
)

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
DPI = 300
LINES = [
    "Ủy ban nhân dân tỉnh Tuyên Quang",
    "Quyết định về việc số hóa hồ sơ",
    "Đơn đề nghị cấp giấy phép xây dựng",
]
SEAL_RED = (205, 30, 40)
META = PdfMetadata(
    title="Đơn đề nghị cấp giấy phép xây dựng",
    case_id="000.00.14.H56-200203-0118",
    source_sha256="ab" * 32,
    software_version="0.1.0",
    operator="Nguyễn Thị Hoa",
    kind="Đơn đề nghị",
    created=datetime(2025, 3, 4, 8, 30, tzinfo=timezone.utc),
)


# ---------------------------------------------------------------------------------------------
# Pages drawn by the tests


def draw_page(*, size: tuple[int, int] = (1500, 460), colour: Image.Image | None = None,
              ink: tuple[int, int, int] = (0, 0, 0)) -> tuple[Image.Image, list[OcrWord]]:
    """Draw LINES in 13 pt at 300 dpi; return the image and each word's drawn box."""
    image = colour if colour is not None else Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 54)
    words: list[OcrWord] = []
    for n, line in enumerate(LINES):
        x, y = 80, 60 + n * 120
        for text in line.split():
            left, top, right, bottom = draw.textbbox((x, y), text, font=font)
            draw.text((x, y), text, font=font, fill=ink)
            words.append(OcrWord(text=text, box=BoundingBox(left, top, right - left, bottom - top),
                                 confidence=96.0, line=n))
            x = right + 14
    return image, words


def binarise(image: Image.Image, path: Path) -> Path:
    """What the cleaner hands over: a 1-bit image (a red seal turns black too)."""
    image.convert("L").point(lambda v: 255 if v > 160 else 0).convert("1").save(path, dpi=(DPI, DPI))
    return path


def render(pdf: Path, tmp_path: Path, *, dpi: int, page: int = 1, gray: bool = False) -> np.ndarray:
    """pdftoppm's picture of one page."""
    prefix = tmp_path / f"render-{pdf.stem}-{page}-{dpi}"
    args = ["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile"]
    subprocess.run([*args, "-gray" if gray else "-png", str(pdf), str(prefix)], check=True)
    out = prefix.with_suffix(".pgm" if gray else ".png")
    return np.asarray(Image.open(out).convert("L" if gray else "RGB"))


def pdftotext_bbox(pdf: Path) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) in points from the top left, as pdftotext -bbox gives them."""
    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, check=True,
                          text=True).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in re.findall(pattern, html)]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pdf")


@pytest.fixture(scope="module")
def text_page(work: Path) -> tuple[Path, list[OcrWord]]:
    """A black-and-white page as the cleaner writes it, with the words' drawn boxes."""
    image, words = draw_page()
    return binarise(image, work / "text_ocr.png"), words


@pytest.fixture(scope="module")
def ocr_pdf(work: Path, text_page: tuple[Path, list[OcrWord]]) -> Path:
    """The text page read by a real Tesseract run and built into a PDF."""
    ocr_image, _ = text_page
    ocr = recognise(ocr_image, dpi=DPI)
    return build_searchable_pdf([RasterPage(ocr_image=ocr_image, colour_image=None, dpi=DPI, ocr=ocr)],
                                work / "ocr.pdf", metadata=META)


@pytest.fixture(scope="module")
def known_box_pdf(work: Path, text_page: tuple[Path, list[OcrWord]]) -> Path:
    """The text page with words placed at the boxes they were drawn in."""
    ocr_image, words = text_page
    ocr = OcrPage(width=1500, height=460, dpi=DPI, words=words)
    return build_searchable_pdf([RasterPage(ocr_image=ocr_image, colour_image=None, dpi=DPI, ocr=ocr)],
                                work / "known.pdf", metadata=META)


@pytest.fixture(scope="module")
def seal_page(work: Path) -> tuple[Path, Path, list[OcrWord]]:
    """A page with black text and a red round seal drawn over part of it."""
    image = Image.new("RGB", (1500, 460), (248, 246, 240))
    ImageDraw.Draw(image).ellipse((1080, 60, 1440, 420), outline=SEAL_RED, width=16)
    image, words = draw_page(colour=image, ink=(20, 20, 25))
    colour_path = work / "seal_colour.png"
    image.save(colour_path)
    return binarise(image, work / "seal_ocr.png"), colour_path, words


# ---------------------------------------------------------------------------------------------
# The text layer


def test_pdftotext_gives_the_vietnamese_words_nfc(ocr_pdf: Path) -> None:
    text = extract_text(ocr_pdf)[0]
    assert unicodedata.is_normalized("NFC", text)
    for phrase in ("Ủy ban nhân dân", "Quyết định", "Đơn đề nghị", "Tuyên Quang"):
        assert phrase in text
    # One line of the page is one line of the text, with its words separated by spaces.
    assert any(line.strip() == LINES[1] for line in text.splitlines())


def test_word_boxes_lie_over_the_drawn_words(known_box_pdf: Path,
                                             text_page: tuple[Path, list[OcrWord]]) -> None:
    _, words = text_page
    found = pdftotext_bbox(known_box_pdf)
    assert [w for w, *_ in found] == [w.text for w in words]
    scale = 72 / DPI
    for word, (_, x_min, y_min, x_max, y_max) in zip(words, found):
        box = word.box
        assert x_min == pytest.approx(box.left * scale, abs=1.0)
        assert x_max == pytest.approx((box.left + box.width) * scale, abs=1.0)
        # One font size per line: the word's text box spans its line, a few points at most beyond it.
        assert y_min == pytest.approx(box.top * scale, abs=4.0)
        assert y_max == pytest.approx((box.top + box.height) * scale, abs=4.0)
        assert y_min <= (box.top + box.height / 2) * scale <= y_max


def test_tesseract_words_lie_over_the_drawn_words(ocr_pdf: Path,
                                                  text_page: tuple[Path, list[OcrWord]]) -> None:
    _, drawn = text_page
    found = {w: (a, b, c, d) for w, a, b, c, d in pdftotext_bbox(ocr_pdf)}
    scale = 72 / DPI
    for word in (w for w in drawn if w.text in ("Quyết", "nghị", "Tuyên")):
        x_min, y_min, x_max, y_max = found[word.text]
        box = word.box
        assert x_min == pytest.approx(box.left * scale, abs=3)
        assert x_max == pytest.approx((box.left + box.width) * scale, abs=3)
        assert y_min <= (box.top + box.height / 2) * scale <= y_max
        assert y_max - y_min == pytest.approx(box.height * scale, abs=4)


def test_text_layer_is_invisible(work: Path, known_box_pdf: Path,
                                 text_page: tuple[Path, list[OcrWord]]) -> None:
    ocr_image, _ = text_page
    without_text = build_searchable_pdf(
        [RasterPage(ocr_image=ocr_image, colour_image=None, dpi=DPI, ocr=None)],
        work / "no_text.pdf", metadata=META)
    # The page looks exactly the same with and without its text layer ...
    assert np.array_equal(render(known_box_pdf, work, dpi=72, gray=True),
                          render(without_text, work, dpi=72, gray=True))
    # ... yet only the page with the layer has text.
    assert extract_text(without_text) == [""]
    assert extract_text(known_box_pdf)[0].splitlines() == LINES


def test_content_stream_uses_render_mode_3(work: Path, text_page: tuple[Path, list[OcrWord]]) -> None:
    ocr_image, words = text_page
    pdf = build_searchable_pdf(
        [RasterPage(ocr_image=ocr_image, colour_image=None, dpi=DPI,
                    ocr=OcrPage(width=1500, height=460, dpi=DPI, words=words))],
        work / "mode3.pdf", metadata=META)
    streams = [zlib.decompress(m) for m in _flate_streams(pdf.read_bytes())]
    text_streams = [s for s in streams if b" Tj" in s]
    assert text_streams and all(b"3 Tr" in s for s in text_streams)
    assert all(b" Tr" not in s.replace(b"3 Tr", b"") for s in text_streams)


def _flate_streams(raw: bytes) -> list[bytes]:
    """The data of every FlateDecode stream that decompresses (crude, good enough for a test)."""
    out = []
    for match in re.finditer(rb"stream\r?\n", raw):
        start = match.end()
        end = raw.find(b"endstream", start)
        try:
            zlib.decompress(raw[start:end].rstrip(b"\r\n"))
        except zlib.error:
            continue
        out.append(raw[start:end].rstrip(b"\r\n"))
    return out


# ---------------------------------------------------------------------------------------------
# Page images


def test_g4_page_renders_black_text_on_white(known_box_pdf: Path, work: Path,
                                             text_page: tuple[Path, list[OcrWord]]) -> None:
    ocr_image, _ = text_page
    original = np.asarray(Image.open(ocr_image).convert("L")) < 128
    rendered = render(known_box_pdf, work, dpi=DPI, gray=True)[: original.shape[0], : original.shape[1]]
    assert rendered.shape == original.shape
    assert (rendered[~original] > 200).mean() > 0.99  # paper stays white
    assert (rendered[original] < 128).mean() > 0.85   # text stays black (poppler smooths edges)
    assert ((rendered < 128) == original).mean() > 0.99
    # The embedded image is the cleaner's bitmap, bit for bit (G4 is lossless).
    subprocess.run(["pdfimages", "-png", str(known_box_pdf), str(work / "extracted")], check=True)
    extracted = np.asarray(Image.open(work / "extracted-000.png").convert("L")) < 128
    assert np.array_equal(extracted, original)
    # Compact: a G4 strip, not a raw bitmap.
    assert known_box_pdf.stat().st_size < 30_000


def test_colour_page_keeps_the_seal_red_and_the_text_black(
        work: Path, seal_page: tuple[Path, Path, list[OcrWord]]) -> None:
    ocr_image, colour_image, words = seal_page
    pdf = build_searchable_pdf(
        [RasterPage(ocr_image=ocr_image, colour_image=colour_image, dpi=DPI,
                    ocr=OcrPage(width=1500, height=460, dpi=DPI, words=words))],
        work / "seal.pdf", metadata=META)
    page = render(pdf, work, dpi=DPI).astype(int)
    r, g, b = page[..., 0], page[..., 1], page[..., 2]
    # Points on the seal ring (centre 1260, 240, radius 180, ring 16 px wide), away from the text.
    for angle in (0, 60, 200, 270, 320):
        x = round(1260 + 172 * np.cos(np.radians(angle)))
        y = round(240 + 172 * np.sin(np.radians(angle)))
        patch = page[y - 2: y + 3, x - 2: x + 3].reshape(-1, 3).mean(axis=0)
        assert patch[0] > 150 and patch[1] < 90 and patch[2] < 100, (angle, patch)
    # The text is black: the darkest pixels of each word are dark and grey, not tinted.
    for word in words[:8]:
        box = word.box
        region = (slice(box.top, box.top + box.height), slice(box.left, box.left + box.width))
        dark = (r[region] + g[region] + b[region]) < 150
        assert dark.sum() > 50
        assert r[region][dark].mean() < 40 and abs(r[region][dark] - b[region][dark]).mean() < 15
    assert extract_text(pdf)[0].splitlines()[0] == LINES[0]
    assert pdf.stat().st_size < 150_000


def test_page_compressed_by_its_worker_is_not_compressed_again(
        work: Path, seal_page: tuple[Path, Path, list[OcrWord]], monkeypatch: pytest.MonkeyPatch) -> None:
    import pikepdf

    from pipeline import pdf_compress as pdf_module

    ocr_image, colour_image, words = seal_page
    page = RasterPage(ocr_image=ocr_image, colour_image=colour_image, dpi=DPI,
                      ocr=OcrPage(width=1500, height=460, dpi=DPI, words=words))
    built_here = build_searchable_pdf([page], work / "here.pdf", metadata=META)
    page.encoded = encode_raster_page(page)

    def refuse(*args, **kwargs):
        raise AssertionError("the page was compressed again while the PDF was assembled")

    monkeypatch.setattr(pdf_module, "_separate_layers", refuse)
    monkeypatch.setattr(pdf_module, "_g4_bytes", refuse)
    built_before = build_searchable_pdf([page], work / "before.pdf", metadata=META)

    def images(path: Path) -> dict[str, bytes]:
        with pikepdf.open(path) as doc:
            return {str(k): bytes(v.read_raw_bytes()) for k, v in doc.pages[0].Resources.XObject.items()}

    assert images(built_before) == images(built_here)
    assert set(images(built_here)) == {"/Bg0", "/Mask0"}


def test_blank_page_has_no_text_layer(work: Path) -> None:
    blank = work / "blank.png"
    Image.new("1", (600, 800), 1).save(blank)
    pdf = build_searchable_pdf(
        [RasterPage(ocr_image=blank, colour_image=None, dpi=200, ocr=OcrPage(600, 800, 200))],
        work / "blank.pdf", metadata=META)
    info = inspect_pdf(pdf)
    assert info.pages[0].has_text is False
    assert info.pages[0].width_pt == pytest.approx(600 / 200 * 72)
    assert info.pages[0].height_pt == pytest.approx(800 / 200 * 72)
    assert info.pages[0].image_dpi == pytest.approx(200, abs=1)


# ---------------------------------------------------------------------------------------------
# PDF/A and metadata


def test_pdfa_markers_and_metadata(known_box_pdf: Path) -> None:
    assert pdfa_problems(known_box_pdf) == []
    xmp = subprocess.run(["pdfinfo", "-meta", str(known_box_pdf)], capture_output=True, text=True,
                         check=True).stdout
    assert re.search(r"<pdfaid:part[^>]*>2</pdfaid:part>", xmp)
    assert re.search(r"<pdfaid:conformance[^>]*>B</pdfaid:conformance>", xmp)
    assert "Đơn đề nghị cấp giấy phép xây dựng" in xmp
    assert "2025-03-04T08:30:00+00:00" in xmp
    assert re.search(r"<sohoa:caseId[^>]*>000.00.14.H56-200203-0118</sohoa:caseId>", xmp)
    assert re.search(r"<sohoa:sourceSha256[^>]*>(ab){32}</sohoa:sourceSha256>", xmp)
    assert re.search(r"<sohoa:operator[^>]*>Nguyễn Thị Hoa</sohoa:operator>", xmp)
    # Our own properties are described, as PDF/A requires for a schema it does not know.
    assert "<pdfaSchema:prefix>sohoa</pdfaSchema:prefix>" in xmp
    info = subprocess.run(["pdfinfo", str(known_box_pdf)], capture_output=True, text=True,
                          check=True).stdout
    assert re.search(r"Encrypted:\s+no", info)
    assert "000.00.14.H56-200203-0118" in info  # Keywords
    assert re.search(r"Producer:\s+sohoa 0.1.0", info)


def test_pdfa_problems_reports_a_plain_pdf(work: Path) -> None:
    plain = work / "plain.pdf"
    Image.new("RGB", (200, 300), "white").save(plain, resolution=100)
    problems = pdfa_problems(plain)
    assert any("PDF/A-2b" in p for p in problems)
    assert any("output intent" in p for p in problems)


def test_write_is_atomic(work: Path, known_box_pdf: Path) -> None:
    out = work / "atomic" / "doc.pdf"
    out.parent.mkdir()
    with pytest.raises(ValueError):
        build_searchable_pdf([SourcePdfPage(source_pdf=known_box_pdf, index=5)], out, metadata=META)
    assert list(out.parent.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Pages of incoming PDFs that already have text


def test_source_pdf_pages_are_copied_with_their_text(work: Path, known_box_pdf: Path,
                                                     text_page: tuple[Path, list[OcrWord]]) -> None:
    ocr_image, _ = text_page
    scanned = work / "scanned_only.png"
    Image.new("1", (800, 1000), 1).save(scanned)
    out = build_searchable_pdf(
        [RasterPage(ocr_image=scanned, colour_image=None, dpi=DPI, ocr=None),
         SourcePdfPage(source_pdf=known_box_pdf, index=0),
         SourcePdfPage(source_pdf=known_box_pdf, index=0)],
        work / "mixed.pdf", metadata=META)
    info = inspect_pdf(out)
    assert info.page_count == 3
    assert [p.has_text for p in info.pages] == [False, True, True]
    texts = extract_text(out)
    assert texts[1] == texts[2] == extract_text(known_box_pdf)[0]
    assert pdfa_problems(out) == []


# ---------------------------------------------------------------------------------------------
# inspect_pdf on what counters send


def test_inspect_image_pdf_reports_its_resolution(work: Path) -> None:
    scan = work / "scan200.pdf"
    Image.new("L", (1654, 2339), 255).save(scan, resolution=200)  # A4 at 200 dpi, no text
    info = inspect_pdf(scan)
    assert info.page_count == 1
    page = info.pages[0]
    assert page.image_dpi == pytest.approx(200, abs=2)
    assert page.width_pt == pytest.approx(595.4, abs=1) and page.height_pt == pytest.approx(842, abs=1)
    assert page.has_text is False


def test_image_dpi_follows_the_drawing_matrix(work: Path) -> None:
    # A 100-pixel-wide image drawn 72 pt (one inch) wide on a larger, rotated page whose
    # resources and size are inherited from the page tree.
    pixels = b"\xff" * (100 * 50)
    content = b"q 72 0 0 36 10 10 cm /Im1 Do Q"
    small = work / "inherited.pdf"
    small.write_bytes(_minimal_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 200 100] /Rotate 90"
        b" /Resources << /XObject << /Im1 5 0 R >> >> >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width 100 /Height 50 /ColorSpace /DeviceGray"
        b" /BitsPerComponent 8 /Length %d >>\nstream\n" % len(pixels) + pixels + b"\nendstream",
    ], trailer=b""))
    page = inspect_pdf(small).pages[0]
    assert page.image_dpi == pytest.approx(100)
    assert (page.width_pt, page.height_pt) == (100, 200)  # as displayed, after /Rotate 90


def test_inspect_pdf_with_text(ocr_pdf: Path) -> None:
    info = inspect_pdf(ocr_pdf)
    assert info.page_count == 1
    assert info.pages[0].has_text is True
    assert info.pages[0].image_dpi == pytest.approx(DPI, abs=1)


def test_encrypted_pdf_is_refused(work: Path) -> None:
    locked = work / "locked.pdf"
    locked.write_bytes(_password_protected_pdf(user_password=b"matkhau"))
    with pytest.raises(EncryptedPdf) as err:
        inspect_pdf(locked)
    assert "locked.pdf" in err.value.user_message()
    with pytest.raises(EncryptedPdf):
        extract_text(locked)


def test_garbage_is_corrupt(work: Path) -> None:
    garbage = work / "garbage.pdf"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CorruptFile):
        inspect_pdf(garbage)


def test_truncated_pdf_is_corrupt(work: Path, known_box_pdf: Path) -> None:
    truncated = work / "truncated.pdf"
    truncated.write_bytes(known_box_pdf.read_bytes()[:400])
    with pytest.raises(CorruptFile):
        inspect_pdf(truncated)


def test_empty_file_is_empty(work: Path) -> None:
    empty = work / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFile):
        inspect_pdf(empty)


def test_pdf_without_pages_is_corrupt(work: Path) -> None:
    no_pages = work / "no_pages.pdf"
    no_pages.write_bytes(_minimal_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                                       b"<< /Type /Pages /Kids [] /Count 0 >>"], trailer=b""))
    with pytest.raises(CorruptFile):
        inspect_pdf(no_pages)


# ---------------------------------------------------------------------------------------------
# Hand-written PDFs (pikepdf is imported only by pipeline/pdf.py)

_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _password_protected_pdf(*, user_password: bytes, owner_password: bytes = b"chu-so-huu") -> bytes:
    """A one-page PDF locked with a user password (standard security handler, revision 2)."""
    def padded(pw: bytes) -> bytes:
        return (pw + _PAD)[:32]

    doc_id = hashlib.md5(b"sohoa-test").digest()
    owner = _rc4(hashlib.md5(padded(owner_password)).digest()[:5], padded(user_password))
    permissions = -4
    key = hashlib.md5(padded(user_password) + owner + struct.pack("<i", permissions) + doc_id).digest()[:5]
    user = _rc4(key, _PAD)
    content = b"0 0 m 100 100 l S"
    object_key = hashlib.md5(key + (4).to_bytes(3, "little") + (0).to_bytes(2, "little")).digest()[:10]
    encrypted = _rc4(object_key, content)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(encrypted) + encrypted + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + owner.hex().encode() + b"> /U <"
        + user.hex().encode() + b"> /P %d >>" % permissions,
    ]
    trailer = b"/Encrypt 5 0 R /ID [<" + doc_id.hex().encode() + b"> <" + doc_id.hex().encode() + b">]"
    return _minimal_pdf(objects, trailer=trailer)


def _minimal_pdf(objects: list[bytes], *, trailer: bytes) -> bytes:
    """Objects 1..n with a correct cross-reference table; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + trailer + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# One PDF for a whole case (issue 9 item 6, issue 11: "the whole case as one merged PDF")


def test_merge_pdfs_one_bookmark_per_document(work: Path, known_box_pdf: Path,
                                              text_page: tuple[Path, list[OcrWord]]) -> None:
    ocr_image, _ = text_page
    other = [OcrWord(text=t, box=BoundingBox(80 + 200 * i, 60, 180, 60), confidence=95.0)
             for i, t in enumerate("Biên bản bàn giao".split())]
    second = build_searchable_pdf(
        [RasterPage(ocr_image=ocr_image, colour_image=None, dpi=DPI, ocr=OcrPage(1500, 460, DPI, other))] * 2,
        work / "second.pdf", metadata=META)
    merged = merge_pdfs([(known_box_pdf, "Đơn đề nghị — đơn.pdf"), (second, "Biên bản — bb.pdf")],
                        work / "case.pdf", title="Hồ sơ 000.00.14.H56-200203-0118",
                        case_id="000.00.14.H56-200203-0118")
    assert pdf_outline(merged) == [("Đơn đề nghị — đơn.pdf", 0), ("Biên bản — bb.pdf", 1)]
    pages = [subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(merged), "-"], capture_output=True,
                            text=True, check=True).stdout for n in (1, 2, 3)]
    assert "Quyết định" in pages[0] and "Biên bản" in pages[1] and "Biên bản" in pages[2]
    assert "Biên" not in pages[0]
    assert pdfa_problems(merged) == [], "PDF/A-2b parts make a PDF/A-2b whole"
    info = subprocess.run(["pdfinfo", str(merged)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+3$", info, re.M) and "Hồ sơ 000.00.14.H56-200203-0118" in info


def test_merge_pdfs_does_not_claim_pdfa_for_a_plain_part(work: Path, known_box_pdf: Path) -> None:
    plain = work / "plain.pdf"
    Image.new("RGB", (200, 200), "white").save(plain, format="PDF", resolution=72.0)
    merged = merge_pdfs([(known_box_pdf, "A"), (plain, "B")], work / "mixed.pdf", title="Hồ sơ")
    assert pdf_outline(merged) == [("A", 0), ("B", 1)]
    assert any("PDF/A-2b" in p for p in pdfa_problems(merged))
