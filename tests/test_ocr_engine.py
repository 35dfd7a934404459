"""The two Tesseract engines: in-process tesserocr (the default) and the command line (SOHOA_OCR_ENGINE=cli).

Both must give the same OcrPage shape (words, boxes, confidences, block/paragraph/line numbers).
Each test proves which engine ran by making the other one fail if it were called.
"""
from __future__ import annotations

import threading

import pytest
from PIL import Image, ImageDraw

from models import OcrFailed
from pipeline import ocr
from pipeline.sample import SAMPLE_PAGES, _font, typeset_page

pytest.importorskip("tesserocr")
from pipeline import ocr_engine  # noqa: E402

DPI = 300
LINES = ["ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG", "Căn cứ Luật Tổ chức chính quyền địa phương;",
         "Điều 1. Ban hành kèm theo Quyết định này"]


@pytest.fixture(scope="module")
def letter(tmp_path_factory):
    """Three typeset lines at 300 dpi, as a PGM (what the pipeline hands Tesseract)."""
    size = int(13 * DPI / 72)
    img = Image.new("L", (int(7.5 * DPI), int(1.1 * DPI)), 255)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(LINES):
        draw.text((120, 60 + i * int(1.5 * size)), text, font=_font(i == 0, size), fill=0)
    path = tmp_path_factory.mktemp("engine") / "letter.pgm"
    img.save(path)
    return path


def _no_cli(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the command line was called")
    monkeypatch.setattr(ocr.pytesseract, "image_to_data", refuse)
    monkeypatch.setattr(ocr.pytesseract, "image_to_osd", refuse)


def _no_in_process(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the in-process engine was called")
    monkeypatch.setattr(ocr_engine, "read_words", refuse)
    monkeypatch.setattr(ocr_engine, "orientation", refuse)


def test_the_in_process_engine_is_the_default_and_reads_words_with_boxes(letter, monkeypatch):
    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    _no_cli(monkeypatch)
    assert ocr.engine() == "tesserocr"
    assert ocr.engine_version().startswith("5.")
    page = ocr.recognise(letter, dpi=DPI)
    assert page.text.splitlines() == LINES
    assert all(60 <= w.confidence <= 100 for w in page.words)
    first = page.words[0]
    assert first.text == "ỦY" and 110 <= first.box.left <= 135 and 50 <= first.box.top <= 80
    assert len({w.line_key for w in page.words}) == 3


def test_the_command_line_engine_is_used_when_asked_and_gives_the_same_page(letter, monkeypatch):
    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    inside = ocr.recognise(letter, dpi=DPI)
    monkeypatch.setenv("SOHOA_OCR_ENGINE", "cli")
    _no_in_process(monkeypatch)
    assert ocr.engine() == "cli"
    outside = ocr.recognise(letter, dpi=DPI)
    assert outside.text == inside.text
    assert [w.line_key for w in outside.words] == [w.line_key for w in inside.words]
    for a, b in zip(outside.words, inside.words):  # the same boxes, give or take a pixel
        assert abs(a.box.left - b.box.left) <= 2 and abs(a.box.width - b.box.width) <= 3
        assert abs(a.confidence - b.confidence) < 15


def test_without_tesserocr_the_command_line_reads(letter, monkeypatch):
    import sys

    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    monkeypatch.setattr(ocr, "_ENGINE_MODULE", False)  # not looked for yet
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # "import tesserocr" raises ImportError
    monkeypatch.delitem(sys.modules, "pipeline.ocr_engine")
    assert ocr.engine() == "cli"
    assert ocr.recognise(letter, dpi=DPI).text.splitlines() == LINES


def test_in_process_orientation_and_a_single_line(tmp_path, monkeypatch):
    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    _no_cli(monkeypatch)
    page = typeset_page(SAMPLE_PAGES[1], dpi=150)
    turned = tmp_path / "turned.png"
    page.rotate(90, expand=True).save(turned)  # text running bottom to top: turn 90° clockwise to read
    found = ocr.detect_orientation(turned, dpi=150)
    assert found.rotate == 90 and found.confidence > 3
    line = tmp_path / "line.pgm"
    size = int(13 * DPI / 72)
    img = Image.new("L", (1500, int(1.6 * size)), 255)
    ImageDraw.Draw(img).text((20, 10), "thủ tục hành chính năm 2018", font=_font(False, size), fill=0)
    img.save(line)
    assert ocr.recognise(line, dpi=DPI, single_line=True).text == "thủ tục hành chính năm 2018"


def test_a_page_over_the_time_limit_is_a_plain_failure(letter, monkeypatch):
    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    monkeypatch.setattr(ocr, "PAGE_TIMEOUT", 0.001)
    with pytest.raises(OcrFailed) as err:
        ocr.recognise(letter, dpi=DPI)
    assert "giây" in err.value.message_vi


def test_workers_share_loaded_models_one_each(letter, monkeypatch):
    """Four readings on two threads at once: right text each time, and at most two models loaded."""
    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    monkeypatch.setattr(ocr_engine, "_idle", {})
    loaded = []
    real = ocr_engine.PyTessBaseAPI

    def counting(*a, **k):
        loaded.append(1)
        return real(*a, **k)
    monkeypatch.setattr(ocr_engine, "PyTessBaseAPI", counting)
    texts, barrier = [], threading.Barrier(2)

    def work():
        barrier.wait()
        for _ in range(2):
            texts.append(ocr.recognise(letter, dpi=DPI).text)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert texts == ["\n".join(LINES)] * 4
    assert 1 <= len(loaded) <= 2


def test_the_service_lowers_an_in_process_reading_thread_and_it_gets_its_priority_back(letter, monkeypatch):
    """While pages are checked the service lowers the OCR in flight (lower_ocr); with the in-process
    engine that is the worker thread inside Tesseract, not a child process."""
    import os

    from flows.ocr_priority import lower_ocr

    monkeypatch.delenv("SOHOA_OCR_ENGINE", raising=False)
    assert ocr.engine() == "tesserocr"
    inside, release, seen = threading.Event(), threading.Event(), {}
    real = ocr_engine._words

    def slow_words(api):  # hold the worker inside the reading until the test has looked
        seen["tid"] = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, seen["tid"])
        inside.set()
        release.wait(30)
        seen["during"] = os.getpriority(os.PRIO_PROCESS, seen["tid"])
        return real(api)
    monkeypatch.setattr(ocr_engine, "_words", slow_words)
    def work():
        seen["text"] = ocr.recognise(letter, dpi=DPI).text
        seen["after"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = threading.Thread(target=work)
    worker.start()
    assert inside.wait(30)
    assert ocr.reading_threads() == {seen["tid"]}
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert lower_ocr(seen["before"] + 3) == 1
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # this thread untouched
    release.set()
    worker.join(60)
    assert seen["during"] == seen["before"] + 3
    if os.geteuid() == 0:  # raising a priority back needs the privilege (RLIMIT_NICE) root has
        assert seen["after"] == seen["before"]
    assert seen["text"] == "\n".join(LINES)
    assert not ocr.reading_threads()


def test_a_dashed_rule_read_unsurely_stays_and_a_speck_goes():
    """Tesseract reads a "---------------" rule at 45; it was dropped with the specks (< 70)."""
    data = {"text": ["Độc", "-------------~-", "'", "Số:"], "conf": [96, 45, 45, 97],
            "left": [0, 200, 400, 500], "top": [0, 10, 10, 0], "width": [58, 178, 6, 43], "height": [31, 3, 8, 26],
            "block_num": [1] * 4, "par_num": [1] * 4, "line_num": [1] * 4}
    assert [w.text for w in ocr._words(data)] == ["Độc", "-------------~-", "Số:"]
