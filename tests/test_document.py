"""The whole pipeline on the sample dossier: rotation and skew fixed, text read, PDF searchable."""
from __future__ import annotations

import json
import re
import subprocess
import threading
import unicodedata

import pytest

from models import PageNeedsRescan
from pipeline.document import check_pages, document_id_for, process_document
from pipeline.sample import sample_truth

EXPECTED = ["Ủy ban nhân dân", "Quyết định", "Tuyên Quang", "hồ sơ", "Nghị định"]


@pytest.fixture(scope="module")
def processed(sample_dossier, tmp_path_factory):
    work = tmp_path_factory.mktemp("doc")
    return process_document([sample_dossier[0]], workdir=work, case_id="000.00.01.H56-181010-0001",
                            kind="Đơn đề nghị", operator="tester", jobs=2)


def _cer(truth: str, hyp: str) -> float:
    import difflib

    t, h = " ".join(truth.split()), " ".join(hyp.split())
    return 1 - difflib.SequenceMatcher(None, t, h, autojunk=False).ratio()


def test_every_page_read_upright_and_deskewed(processed):
    pages = processed.report.pages
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[2].rotation == 180  # fed upside down
    assert abs(pages[1].skew_degrees - 2.5) < 0.3
    for page, truth in zip(processed.page_texts, sample_truth(), strict=True):
        assert _cer(truth, page) < 0.05, page[:200]
    # Read pages, the upside-down one included (turned, then read again), are not sent back for rescan.
    assert not any(i.code == "no_text" for p in pages for i in p.issues)


def test_pdftotext_returns_the_vietnamese_text_in_nfc(processed):
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(processed.searchable_pdf), "-"],
                          capture_output=True, check=True, text=True).stdout
    assert text == unicodedata.normalize("NFC", text)
    folded = " ".join(text.split())
    for phrase in EXPECTED:
        assert phrase.lower() in folded.lower(), phrase
    assert text.count("\f") >= 2  # three pages


def test_ocr_json_and_report_carry_words_and_checksums(processed):
    data = json.loads(processed.ocr_json.read_text("utf-8"))
    assert data["document_id"] == document_id_for(data["source_sha256"]) == processed.report.document_id
    assert len(data["pages"]) == 3
    words = data["pages"][0]["ocr"]["words"]
    assert any(w[0] == "Tuyên" for w in words)
    assert processed.report.mean_confidence > 80
    assert processed.sidecar_text.count("\f") == 2


def test_pdf_metadata_names_the_case_and_source(processed):
    info = subprocess.run(["pdfinfo", "-meta", str(processed.searchable_pdf)], capture_output=True, text=True,
                          check=True).stdout
    assert "000.00.01.H56-181010-0001" in info
    assert processed.report.source_sha256 in info
    assert "pdfaid:part" in info or "pdfaid" in info


def test_blank_back_pages_are_dropped_and_reported(tmp_path, sample_dossier):
    from PIL import Image

    page1 = Image.open(sample_dossier[1])
    blank = Image.new("L", page1.size, 235)
    stack = tmp_path / "duplex.tif"
    page1.save(stack, save_all=True, append_images=[blank], dpi=(300, 300))
    result = process_document([stack], workdir=tmp_path / "w", jobs=2)
    assert result.dropped_pages == [2]
    assert len(result.page_texts) == 1
    assert result.report.pages[1].blank
    pdfinfo = subprocess.run(["pdfinfo", str(result.searchable_pdf)], capture_output=True, text=True,
                             check=True).stdout
    assert re.search(r"^Pages:\s+1$", pdfinfo, re.MULTILINE)


def test_strict_refuses_a_blurred_page_before_ocr(tmp_path, sample_dossier):
    import cv2

    img = cv2.imread(str(sample_dossier[1]), cv2.IMREAD_GRAYSCALE)
    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(img, (0, 0), 6))
    with pytest.raises(PageNeedsRescan) as err:
        process_document([blurred], workdir=tmp_path / "w", strict=True, jobs=1)
    assert err.value.pages == [1] and err.value.exit_code == 4
    assert not (tmp_path / "w" / "searchable.pdf").exists()


def test_a_pdf_with_text_is_not_ocrd_twice(tmp_path, processed):
    result = process_document([processed.searchable_pdf], workdir=tmp_path / "w", jobs=2)
    assert [p.text_source for p in result.report.pages] == ["pdf-text"] * 3
    assert "Tuyên Quang" in " ".join(result.sidecar_text.split())


def test_every_page_is_read_once_and_a_low_resolution_line_crop_as_one_line(tmp_path, sample_dossier,
                                                                            monkeypatch):
    """The time budget: a page gets one Tesseract reading (its ink in grey at 300 dpi, its enlarged
    grey at low resolution); a low-resolution line crop too, as one text line (its enlarged 1-bit
    image; before, it was read twice, grey and 1-bit, the surer reading kept)."""
    from PIL import Image

    from pipeline import ocr

    calls = []
    real = ocr.recognise

    def counting(path, **kw):
        calls.append((path.name, kw.get("single_line", False)))
        return real(path, **kw)

    monkeypatch.setattr(ocr, "recognise", counting)
    page = Image.open(sample_dossier[1])
    top = page.crop((0, 0, page.width, page.height // 3))  # a cheaper OCR
    scan, low = tmp_path / "scan.png", tmp_path / "low.png"
    top.save(scan, dpi=(300, 300))
    top.resize((top.width // 4, top.height // 4), Image.Resampling.LANCZOS).save(low, dpi=(75, 75))
    process_document([scan], workdir=tmp_path / "a", jobs=1)
    assert calls == [("0001_read.pgm", False)]
    calls.clear()
    process_document([low], workdir=tmp_path / "b", jobs=1)
    assert calls == [("0001_read.pgm", False)]
    calls.clear()
    line = tmp_path / "line.png"
    strip = page.crop((0, 250, page.width, 350))  # the first text line, 25 times wider than tall
    strip.resize((strip.width // 4, strip.height // 4), Image.Resampling.LANCZOS).save(line, dpi=(75, 75))
    result = process_document([line], workdir=tmp_path / "c", jobs=1)
    assert calls == [("0001_read.pgm", True)]
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in result.page_texts[0]


def test_a_low_resolution_page_is_enlarged_before_thresholding(tmp_path, sample_dossier):
    from PIL import Image

    page = Image.open(sample_dossier[1])
    # 75 dpi, like a phone photo or fax: thresholded at its own size it reads at ~5.5% CER, enlarged ~0.3%.
    low = tmp_path / "fax.jpg"
    page.resize((page.width * 75 // 300, page.height * 75 // 300), Image.Resampling.LANCZOS).save(
        low, dpi=(75, 75), quality=80)
    result = process_document([low], workdir=tmp_path / "w", jobs=1)
    assert _cer(sample_truth()[0], result.page_texts[0]) < 0.02, result.page_texts[0][:300]
    info = subprocess.run(["pdfinfo", str(result.searchable_pdf)], capture_output=True, text=True, check=True).stdout
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert abs(width - 595) < 3 and abs(height - 842) < 3  # still A4: enlarged pixels, same paper


def test_the_first_page_s_verdict_does_not_wait_for_the_reading_of_the_next_pages(tmp_path, sample_dossier,
                                                                                  monkeypatch):
    """The desk shows page 1's verdict while page 2 is still being read (a big TIFF frame, a PDF page)."""
    from pipeline import document

    real_read = document.read_pages
    first_out = threading.Event()

    def slow_after_page_1(source, workdir):  # page 2 is "still being read" until page 1's verdict is out
        pages = real_read(source, workdir)
        yield next(pages)
        if not first_out.wait(120):  # a guard against hanging, not a timing assertion
            raise AssertionError("page 1's verdict waited for page 2 to be read")
        yield from pages

    monkeypatch.setattr(document, "read_pages", slow_after_page_1)
    seen: list[int] = []

    def on_outcome(outcome) -> None:
        seen.append(outcome.raw.number)
        first_out.set()

    outcomes = check_pages([sample_dossier[0]], workdir=tmp_path / "w", jobs=2, on_outcome=on_outcome)
    assert len(outcomes) == 3 and seen == [o.raw.number for o in outcomes] == [1, 2, 3]


def test_a_page_turned_the_wrong_way_by_the_marks_is_turned_back_by_osd(tmp_path, sample_dossier, monkeypatch):
    """The marks' vote (clean.way_up) is cheap but not Tesseract: when it turns an upright page
    upside down, the unreadable words send the page to OSD, and it is read upright."""
    from pipeline import clean

    real = clean.way_up
    monkeypatch.setattr(clean, "way_up", lambda binary, **kw: {0: 180, 180: 0}.get(real(binary, **kw)))
    result = process_document([sample_dossier[1]], workdir=tmp_path / "w", jobs=1)
    page = json.loads(result.ocr_json.read_text("utf-8"))["pages"][0]
    assert page["ocr"]["rotation"] == 0
    assert _cer(sample_truth()[0], result.page_texts[0]) < 0.05


def test_a_page_turned_the_wrong_way_by_the_marks_and_by_osd_is_read_as_it_came(tmp_path, sample_dossier,
                                                                              monkeypatch):
    """Issue 19: a blurred, curled phone photo was taken for one upside down by both the marks' vote
    and OSD, and read as nothing. An unsure reading of a turned page is checked against the page as
    it came, and the surer one is kept."""
    from pipeline import clean

    real = clean.way_up
    monkeypatch.setattr(clean, "way_up", lambda binary, **kw: {0: 180, 180: 0}.get(real(binary, **kw)))
    monkeypatch.setattr(clean, "_orientation", lambda binary, **kw: 180)
    result = process_document([sample_dossier[1]], workdir=tmp_path / "w", jobs=1)
    page = json.loads(result.ocr_json.read_text("utf-8"))["pages"][0]
    assert page["ocr"]["rotation"] == 0
    assert _cer(sample_truth()[0], result.page_texts[0]) < 0.05


def test_page_1_is_read_by_ocr_while_the_last_page_is_still_being_checked(tmp_path, sample_dossier, monkeypatch):
    """Issue 14 (speed): OCR does not wait for the check of every page; page 1 is cleaned and read
    while page 3 is still being read from the file. A blank page still waits for every verdict."""
    from pipeline import document

    real_read, real_ocr = document.read_pages, document._clean_and_ocr
    ocr_started = threading.Event()

    def last_page_late(source, workdir):
        pages = real_read(source, workdir)
        yield next(pages)
        yield next(pages)
        if not ocr_started.wait(120):  # a guard against hanging, not a timing assertion
            raise AssertionError("OCR waited for the last page to be checked")
        yield from pages

    def ocr(o, workdir, **kwargs):
        ocr_started.set()
        return real_ocr(o, workdir, **kwargs)

    monkeypatch.setattr(document, "read_pages", last_page_late)
    monkeypatch.setattr(document, "_clean_and_ocr", ocr)
    result = process_document([sample_dossier[0]], workdir=tmp_path / "w", jobs=2)
    assert [p.number for p in result.report.pages] == [1, 2, 3]
    assert all(len(t.split()) > 20 for t in result.page_texts)


def test_at_most_jobs_page_images_are_worked_on_at_once(tmp_path, sample_dossier, monkeypatch):
    """Checks run beside cleaning; together they hold at most ``jobs`` full-page images (memory stays
    flat in the number of pages), while Tesseract's readings are not counted."""
    import time

    from pipeline import clean, preflight

    lock = threading.Lock()
    busy, most = [0], [0]

    def counted(fn):
        def run(*args, **kwargs):
            with lock:
                busy[0] += 1
                most[0] = max(most[0], busy[0])
            try:
                time.sleep(0.05)  # widen the window in which another stage could overlap
                return fn(*args, **kwargs)
            finally:
                with lock:
                    busy[0] -= 1
        return run

    monkeypatch.setattr(preflight, "preflight", counted(preflight.preflight))
    monkeypatch.setattr(clean, "clean_page", counted(clean.clean_page))
    result = process_document(sample_dossier, workdir=tmp_path / "w", jobs=2)
    assert len(result.report.pages) == 6 and all(len(t.split()) > 20 for t in result.page_texts)
    assert most[0] == 2


def test_check_pages_takes_a_place_in_the_gate_for_each_page_it_reads_and_checks(tmp_path, sample_dossier):
    from contextlib import contextmanager

    places: list[int] = []
    lock = threading.Lock()

    @contextmanager
    def gate(k: int):
        with lock:
            places.append(k)
        yield

    outcomes = check_pages([sample_dossier[0]], workdir=tmp_path / "w", jobs=2, gate=gate)
    assert len(outcomes) == 3
    # Pages 1-3 each once to be read and once to be checked, plus the read that finds no page 4.
    assert sorted(places) == [1, 1, 2, 2, 3, 3, 4]
