"""Tesseract: page orientation and words with boxes and confidences.

Two engines give the same OcrPage: in-process Tesseract 5.5 through tesserocr (pipeline/ocr_engine.py,
the default: no process and no model load per page) and the ``tesseract`` command line through
pytesseract (``SOHOA_OCR_ENGINE=cli``, and whenever tesserocr cannot be imported). This is the only
module that imports pytesseract. Tesseract always gets a file path (an
uncompressed or quickly written image): handing pytesseract a PIL image costs ~2 s of PNG
encoding per page. One single-threaded Tesseract per core is ~3x faster here than letting
each process use OpenMP threads, so OMP_THREAD_LIMIT=1 is set for every child process.
"""
from __future__ import annotations

import importlib
import os
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import pytesseract

from models import BoundingBox, OcrFailed, OcrPage, OcrWord
from pipeline import context, layout, numbers, syllables

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

DEFAULT_LANG = os.environ.get("SOHOA_OCR_LANG", "vie")
# A "word" of punctuation only, read with less confidence than this, is a speck of dust or toner
# (Tesseract reads them as - ' . | „ `). Dropping them, on 8 synthetic pages per profile (CER):
# office 1.85 -> 1.55 %, rough 3.81 -> 3.17 %, clean 1.16 -> 1.18 %; real dashes and bullets are
# read at 85-93 and stay.
SPECK_MAX_CONFIDENCE = 70.0
RULE_MIN_CHARS = 5  # … except a dashed or dotted rule (see _is_rule)
# Misread tone marks and hats fixed from Tesseract's per-letter alternatives (in-process engine only;
# see pipeline/context.py, then pipeline/syllables.py). SOHOA_SYLLABLES=0 turns it off.
SYLLABLE_CORRECTION = os.environ.get("SOHOA_SYLLABLES", "1") != "0"
# Seconds one page may take before Tesseract is stopped (a pathological page must not hang a run).
PAGE_TIMEOUT = float(os.environ.get("SOHOA_OCR_TIMEOUT", "180"))


def engine() -> str:
    """Which Tesseract reads: "tesserocr" (in-process, the default) or "cli" (SOHOA_OCR_ENGINE=cli,
    or tesserocr missing). Asked at every call, so the setting can change while a process runs."""
    if os.environ.get("SOHOA_OCR_ENGINE", "").strip().lower() == "cli":
        return "cli"
    return "tesserocr" if _in_process() is not None else "cli"


def _in_process():
    """pipeline.ocr_engine, or None when tesserocr (or its Tesseract) cannot be loaded here."""
    global _ENGINE_MODULE
    if _ENGINE_MODULE is False:
        try:
            ocr_engine = importlib.import_module("pipeline.ocr_engine")
            ocr_engine.tessdata_dir()
            _ENGINE_MODULE = ocr_engine
        except (ImportError, OSError, RuntimeError):
            _ENGINE_MODULE = None
    return _ENGINE_MODULE


_ENGINE_MODULE = False  # not looked for yet


@dataclass(frozen=True)
class Orientation:
    """How far to turn a page clockwise to make it upright, and Tesseract's confidence in that."""

    rotate: int  # 0, 90, 180 or 270
    confidence: float


def detect_orientation(image_path: Path, *, dpi: int = 300) -> Orientation:
    """Run Tesseract's OSD; a page with too little text is taken as upright with confidence 0."""
    if engine() == "tesserocr":
        eng = _in_process()
        try:
            rotate, conf = eng.orientation(image_path, dpi=dpi)
        except eng.EngineError as exc:
            _raise(exc, image_path)
        return Orientation(rotate=rotate, confidence=conf)
    try:
        osd = pytesseract.image_to_osd(
            str(image_path), config=f"--psm 0 --dpi {int(dpi)}", timeout=PAGE_TIMEOUT
        )
    except pytesseract.TesseractError as exc:
        # "Too few characters" / "Invalid resolution" are Tesseract's way of saying "cannot tell".
        return Orientation(rotate=0, confidence=0.0) if _is_harmless(exc) else _raise(exc, image_path)
    except RuntimeError as exc:  # timeout
        raise OcrFailed(f"orientation detection timed out on {image_path.name}: {exc}") from exc
    rotate = int(re.search(r"Rotate:\s*(\d+)", osd).group(1)) % 360
    conf = float(re.search(r"Orientation confidence:\s*([\d.]+)", osd).group(1))
    return Orientation(rotate=rotate, confidence=conf)


def recognise(image_path: Path, *, dpi: float, lang: str = DEFAULT_LANG, single_line: bool = False,
              block: bool = False) -> OcrPage:
    """One Tesseract run on one page image: words in reading order with boxes and confidences.

    Reading order is Tesseract's, except that a two-column block (an official letter's header or
    closing) is read one column after the other (see ``layout.reading_order``). ``single_line``:
    the image is one text line (a line crop), read as such (``--psm 7``), without layout analysis;
    ``block``: the image is one block of text (a table cell), read as such (``--psm 6``).
    """
    from PIL import Image  # only to read the size without decoding the pixels

    with Image.open(image_path) as im:
        width, height = im.size
    if engine() == "tesserocr":
        data = _read_in_process(image_path, dpi=dpi, lang=lang, single_line=single_line, block=block)
    else:
        data = _read_cli(image_path, dpi=dpi, lang=lang, single_line=single_line, block=block)
    if data is None:
        return OcrPage(width=width, height=height, dpi=dpi)
    corrections = []
    if SYLLABLE_CORRECTION:
        corrections = context.correct_in_context(data)
        corrections += syllables.correct_words(data)
        corrections += context.mend_by_neighbours(data)
        corrections += context.settle_by_neighbours(data)
    corrections += numbers.join_split_numbers(data)
    return layout.reading_order(OcrPage(width=width, height=height, dpi=dpi, words=_words(data),
                                        corrections=corrections))


def _read_in_process(image_path: Path, *, dpi: float, lang: str, single_line: bool, block: bool) -> dict:
    eng = _in_process()
    try:
        return eng.read_words(image_path, dpi=dpi, lang=lang, single_line=single_line, block=block,
                              timeout_s=PAGE_TIMEOUT)
    except TimeoutError as exc:
        _timed_out(exc, image_path)
    except eng.EngineError as exc:
        _raise(exc, image_path)


def _read_cli(image_path: Path, *, dpi: float, lang: str, single_line: bool, block: bool) -> dict | None:
    try:
        return pytesseract.image_to_data(
            str(image_path),
            lang=lang,
            config=f"--dpi {round(dpi)}" + (" --psm 7" if single_line else " --psm 6" if block else ""),
            output_type=pytesseract.Output.DICT,
            timeout=PAGE_TIMEOUT,
        )
    except pytesseract.TesseractError as exc:
        if _is_harmless(exc):
            return None
        _raise(exc, image_path)
    except RuntimeError as exc:  # pytesseract raises RuntimeError on timeout
        _timed_out(exc, image_path)


def _timed_out(exc: Exception, image_path: Path):
    raise OcrFailed(
        f"OCR took longer than {PAGE_TIMEOUT:.0f} s on {image_path.name} and was stopped: {exc}",
        f"Nhận dạng chữ trang {image_path.name} quá {PAGE_TIMEOUT:.0f} giây và đã dừng.",
    ) from exc


def _words(data: dict) -> list[OcrWord]:
    """OcrWords from image_to_data's columns, without empty boxes and low-confidence specks."""
    words: list[OcrWord] = []
    for i, text in enumerate(data["text"]):
        conf = float(data["conf"][i])
        text = (text or "").strip()
        if conf < 0 or not text or data["width"][i] <= 0 or data["height"][i] <= 0:
            continue
        if conf < SPECK_MAX_CONFIDENCE and _is_punctuation(text) and not _is_rule(text, data, i):
            continue
        words.append(
            OcrWord(
                text=text,
                box=BoundingBox(int(data["left"][i]), int(data["top"][i]),
                                int(data["width"][i]), int(data["height"][i])),
                confidence=conf,
                block=int(data["block_num"][i]),
                paragraph=int(data["par_num"][i]),
                line=int(data["line_num"][i]),
            )
        )
    return words


def to_page_scale(page: OcrPage, *, width: int, height: int, dpi: float) -> OcrPage:
    """A reading of a reduced copy of a page, its boxes in the full page's pixels."""
    sx, sy = width / page.width, height / page.height
    words = [replace(w, box=BoundingBox(round(w.box.left * sx), round(w.box.top * sy),
                                        max(1, round(w.box.width * sx)), max(1, round(w.box.height * sy))))
             for w in page.words]
    return replace(page, width=width, height=height, dpi=dpi, words=words)


def _is_rule(text: str, data: dict, i: int) -> bool:
    """A dashed or dotted rule ("---------", "……"): at least RULE_MIN_CHARS marks in a long thin box.
    Tesseract reads one at 40-50 ("-------------~-"), a speck never gets that long."""
    return len(text) >= RULE_MIN_CHARS and data["width"][i] >= 4 * max(1, data["height"][i])


def _is_punctuation(text: str) -> bool:
    """True for a word made only of punctuation and symbols (no letter, no digit)."""
    return all(unicodedata.category(ch)[0] in "PS" for ch in text)


def reading_threads() -> set[int]:
    """Native ids of this process's threads reading a page in-process now (empty with the CLI engine,
    whose readings are ``tesseract`` child processes)."""
    eng = _ENGINE_MODULE or None
    return eng.reading_threads() if eng is not None else set()


def available_languages() -> list[str]:
    """The traineddata Tesseract can load here."""
    if engine() == "tesserocr":
        return _in_process().languages()
    return pytesseract.get_languages(config="")


def engine_version() -> str:
    """Tesseract's version, or a short reason when it cannot be run."""
    if engine() == "tesserocr":
        return _in_process().version()
    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        return f"unavailable ({type(exc).__name__})"


def _is_harmless(exc: Exception) -> bool:
    msg = str(exc)
    return any(s in msg for s in ("Too few characters", "Empty page", "Invalid resolution"))


def _raise(exc: Exception, image_path: Path):
    raise OcrFailed(
        f"Tesseract failed on {image_path.name}: {exc}",
        f"Tesseract lỗi khi nhận dạng {image_path.name}: {exc}",
    ) from exc
