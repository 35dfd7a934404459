"""Tesseract in-process, through tesserocr: the model is loaded once and kept, no process per page.

This is the only module that imports tesserocr (pipeline/ocr.py chooses between it and the
``tesseract`` command line). The PyPI wheel bundles its own Tesseract (5.5) and reads Debian's
traineddata from /usr/share/tesseract-ocr/5/tessdata. A loaded API is used by one thread at a
time: a worker takes an idle one (or loads a new one when all are busy) and puts it back after the
page, so a pool of N workers loads the model N times for the life of the process, not once a page
(~0.18 s of CPU each time the command line starts). Recognition releases the GIL.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # before Tesseract is loaded: see pipeline/ocr.py

import tesserocr  # noqa: E402
from tesserocr import PSM, RIL, PyTessBaseAPI  # noqa: E402

TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata", "/usr/local/share/tessdata")


class EngineError(RuntimeError):
    """The in-process Tesseract could not start or read an image."""


def tessdata_dir() -> str:
    """Where the traineddata are: $TESSDATA_PREFIX if set, else the first system folder that has them."""
    env = os.environ.get("TESSDATA_PREFIX")
    if env:
        return env
    for folder in TESSDATA_DIRS:
        if Path(folder, "osd.traineddata").exists() or any(Path(folder).glob("*.traineddata")):
            return folder
    raise EngineError("no tessdata folder found (set TESSDATA_PREFIX)")


def version() -> str:
    """The bundled Tesseract's version, e.g. "5.5.4"."""
    return tesserocr.tesseract_version().split()[1]


def languages() -> list[str]:
    """The traineddata this engine can load."""
    return sorted(tesserocr.get_languages(tessdata_dir())[1])


_idle: dict[str, list[PyTessBaseAPI]] = {}
_lock = threading.Lock()
_reading: set[int] = set()  # native ids of the threads inside Tesseract now


def reading_threads() -> set[int]:
    """Native thread ids reading a page right now (what the service lowers while pages are checked)."""
    with _lock:
        return set(_reading)


@contextmanager
def _api(lang: str) -> Iterator[PyTessBaseAPI]:
    """A loaded API for ``lang`` that only this thread uses until the block ends."""
    with _lock:
        pool = _idle.setdefault(lang, [])
        api = pool.pop() if pool else None
    if api is None:
        try:
            api = PyTessBaseAPI(path=tessdata_dir(), lang=lang, psm=PSM.AUTO)
            # every letter's alternatives with their confidences (pipeline/syllables.py); the reading
            # itself is the same
            api.SetVariable("lstm_choice_mode", "2")
        except RuntimeError as exc:  # tesserocr's "Failed to init API, possibly an invalid tessdata path"
            raise EngineError(f"cannot load Tesseract language {lang!r} "
                              f"from {tessdata_dir()}: {exc}") from exc
    tid = threading.get_native_id()
    nice = _niceness(tid)
    with _lock:
        _reading.add(tid)
    try:
        yield api
    finally:
        with _lock:
            _reading.discard(tid)
        api.Clear()  # the page's image and results go; the model stays
        with _lock:
            _idle[lang].append(api)
        _restore_niceness(tid, nice)


def _niceness(tid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, tid)
    except (OSError, AttributeError):
        return None


def _restore_niceness(tid: int, nice: int | None) -> None:
    """A worker lowered while it read (the service's page checks) gets its priority back for the
    next page, as the command line's next process would start at it; without the privilege to
    raise it again (RLIMIT_NICE) it stays lowered."""
    if nice is not None and _niceness(tid) not in (None, nice):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass


def read_words(image_path: Path, *, dpi: float | None, lang: str, single_line: bool = False,
               block: bool = False, timeout_s: float = 0.0) -> dict[str, list]:
    """Words with boxes, confidences and block/paragraph/line numbers, in the shape of
    ``pytesseract.image_to_data(..., output_type=DICT)`` (the numbering of Tesseract's TSV output).
    ``dpi`` None: the file's own resolution, as the command line without ``--dpi``; ``single_line``
    and ``block``: the image is one text line (``--psm 7``) or one block of text (``--psm 6``)."""
    with _api(lang) as api:
        api.SetPageSegMode(PSM.SINGLE_LINE if single_line else PSM.SINGLE_BLOCK if block else PSM.AUTO)
        try:
            api.SetImageFile(str(image_path))
        except RuntimeError as exc:
            raise EngineError(f"cannot read image {image_path.name}: {exc}") from exc
        if dpi:
            api.SetSourceResolution(max(1, round(dpi)))
        started = time.monotonic()
        if not api.Recognize(timeout=int(timeout_s * 1000)):
            if timeout_s and time.monotonic() - started >= 0.9 * timeout_s:
                raise TimeoutError(f"Tesseract stopped after {timeout_s:.0f} s on {image_path.name}")
            raise EngineError(f"Tesseract could not recognise {image_path.name}")
        return _words(api)


def _words(api: PyTessBaseAPI) -> dict[str, list]:
    """Walk the result letter by letter, numbering blocks, paragraphs and lines as the TSV does; each
    word also gets its letters' alternatives (text, confidence) for the syllable correction."""
    out: dict[str, list] = {k: [] for k in ("text", "conf", "left", "top", "width", "height",
                                            "block_num", "par_num", "line_num", "choices")}
    it = api.GetIterator()
    if it is None:
        return out
    block = par = line = 0
    letters: list | None = None
    while True:
        if not it.Empty(RIL.SYMBOL):
            if it.IsAtBeginningOf(RIL.WORD):
                letters = None
                if it.IsAtBeginningOf(RIL.BLOCK):
                    block, par, line = block + 1, 0, 0
                if it.IsAtBeginningOf(RIL.PARA):
                    par, line = par + 1, 0
                if it.IsAtBeginningOf(RIL.TEXTLINE):
                    line += 1
                box = it.BoundingBox(RIL.WORD)
                if box is not None:
                    x0, y0, x1, y1 = box
                    letters = []
                    for key, value in (("text", it.GetUTF8Text(RIL.WORD) or ""),
                                       ("conf", float(it.Confidence(RIL.WORD))), ("left", x0), ("top", y0),
                                       ("width", x1 - x0), ("height", y1 - y0), ("block_num", block),
                                       ("par_num", par), ("line_num", line), ("choices", letters)):
                        out[key].append(value)
            if letters is not None:
                letters.append([(c.GetUTF8Text(), float(c.Confidence())) for c in it.GetChoiceIterator()])
        if not it.Next(RIL.SYMBOL):
            return out


def orientation(image_path: Path, *, dpi: float) -> tuple[int, float]:
    """(clockwise turn that makes the page upright, confidence); (0, 0.0) when OSD cannot tell."""
    with _api("osd") as api:
        api.SetPageSegMode(PSM.OSD_ONLY)
        try:
            api.SetImageFile(str(image_path))
        except RuntimeError as exc:
            raise EngineError(f"cannot read image {image_path.name}: {exc}") from exc
        api.SetSourceResolution(max(1, round(dpi)))
        found = api.DetectOrientationScript()
    if not found:
        return 0, 0.0
    # orient_deg is how far the text is turned; the turn back is the rest of the circle (the CLI's "Rotate").
    return (360 - int(found["orient_deg"])) % 360, float(found["orient_conf"])
