"""One document's way through the pipeline: read → preflight → clean → OCR → searchable PDF/A.

This is the short orchestrator; each stage lives in its own module. Pages are independent, so
they go through a thread pool, one single-threaded Tesseract process per worker (OpenCV and the
Tesseract subprocess release the GIL). Preflight runs for every page before any OCR starts, so
the operator hears "page 3 is blurred" within a second or two, not after the whole stack.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from models import DocumentReport, EmptyFile, PageNeedsRescan, PageReport, PreflightIssue, Severity
from pipeline import camera, dewarp, pdf, preflight, qr, scale
from pipeline.page_read import PageOutcome, read_cleaned, unreadable  # noqa: F401 (imported from here by flows and tests)
from pipeline.page_read import clean_and_ocr as _clean_and_ocr
from pipeline.reader import RawPage, read_pages, sha256_of

SOFTWARE = "sohoa"


def software_version() -> str:
    """The installed package version, for the PDF metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(SOFTWARE)
    except PackageNotFoundError:  # running from a source tree that was not pip-installed
        return "source"


def document_id_for(source_sha256: str, pages: Collection[int] | None = None) -> str:
    """Document IDs derive from the source's SHA-256: the same file twice is one document.

    A segment of a stack split by cover sheets (``pages``: its 1-based page numbers) is a document
    of its own, derived from the file's hash and those pages, so re-splitting the same stack the
    same way finds the same documents again.
    """
    if pages is None:
        return source_sha256[:20]
    return hashlib.sha256(f"{source_sha256}:{tuple(sorted(pages))}".encode()).hexdigest()[:20]


def default_jobs() -> int:
    """All cores, as Tesseract runs single-threaded per page."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass
class ProcessedDocument:
    """The result of ``process_document``: the report, the files written, the text per output page."""

    report: DocumentReport
    searchable_pdf: Path
    ocr_json: Path
    page_texts: list[str] = field(default_factory=list)
    dropped_pages: list[int] = field(default_factory=list)

    @property
    def sidecar_text(self) -> str:
        """Pages separated by form feeds, like OCRmyPDF's ``--sidecar``."""
        return "\f".join(self.page_texts)


def check_pages(
    sources: Sequence[Path],
    *,
    workdir: Path,
    jobs: int | None = None,
    thresholds: preflight.PreflightThresholds | None = None,
    on_page: Callable[[PageReport], None] | None = None,
    pages: Collection[int] | None = None,
    detect_qr: bool = False,
    thumbnails: Path | None = None,
    on_outcome: Callable[[PageOutcome], None] | None = None,
    gate: Callable[[int], AbstractContextManager[object]] | None = None,
) -> list[PageOutcome]:
    """Read every page and run preflight on it; fast, no OCR. Calls ``on_page`` as each verdict is ready.

    ``pages`` keeps only those page numbers (1-based across all sources); ``detect_qr`` also looks
    for a case-ID QR code on each page (cover sheets, receipts). ``thumbnails``: write a small JPEG
    of each page there (``page-0003.jpg``); ``on_outcome`` gets each page's whole outcome in order,
    as soon as that page and the ones before it are done. ``gate(k)``: a context entered around the
    reading and around the check of the k-th page this call checks (the desk service's check lane,
    which lets every upload's first page go before any upload's second page).
    """
    gate = gate or (lambda _k: nullcontext())
    def raws() -> Iterator[RawPage]:
        number = 0
        for index, src in enumerate(sources):
            for raw in read_pages(src, workdir / f"src{index:03d}"):
                number += 1
                if pages is None or number in pages:
                    yield _renumber(raw, number)
                elif raw.path is not None:
                    raw.path.unlink(missing_ok=True)

    def one(k: int, raw: RawPage) -> PageOutcome:
        with gate(k):
            return check_one(raw)

    def check_one(raw: RawPage) -> PageOutcome:
        started = time.perf_counter()
        finding = None
        thumb = None
        report = PageReport(number=raw.number, width=raw.width, height=raw.height, dpi=raw.dpi,
                            dpi_estimated=raw.dpi_estimated)
        if raw.path is None:
            report.text_source = "pdf-text"
            stripped = pdf.active_content(raw.source_pdf, raw.source_index) if raw.source_pdf else []
            if stripped:
                what = ", ".join(dict.fromkeys(stripped))
                report.issues = [PreflightIssue(
                    code="active_content_removed", severity=Severity.INFO,
                    message_vi=f"Đã gỡ bỏ nội dung chủ động không được phép trong PDF/A: {what}.",
                    message_en=f"Removed active content PDF/A forbids: {what}.")]
        else:
            # Read once (the colour page too, for a photo to rectify): the same grey as IMREAD_GRAYSCALE.
            image = cv2.imread(str(raw.path), cv2.IMREAD_UNCHANGED)
            grey = image if image is None or image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            photo = camera.find_page(grey)
            if photo is not None:
                # A phone photo: preflight, cleaning and OCR see the flattened sheet, not the desk.
                raw, grey = _rectify_photo(raw, photo, image)
                report.width, report.height, report.dpi = raw.width, raw.height, round(raw.dpi, 1)
                report.dpi_estimated = True
            elif raw.dpi_estimated or scale.doubtful(raw.dpi):
                # No resolution in the file (or software's default 72/96): the A4 guess or the
                # header, unless the letters say otherwise.
                raw = _scale_from_letters(raw, grey)
                report.dpi = round(raw.dpi, 1)
            if photo is None and image is not None and (bent := dewarp.straighten(image, dpi=raw.dpi)) is not None:
                grey = _rewrite_page(raw, bent)  # a bound or curled page on the glass: lines straightened
            del image  # the grey (or rectified grey) is all that preflight needs
            result = preflight.preflight(grey, dpi=raw.dpi, dpi_estimated=raw.dpi_estimated and photo is None,
                                         photo_dpi=photo.photo_dpi if photo else None,
                                         **({"thresholds": thresholds} if thresholds else {}))
            if photo is not None:
                result.issues.append(preflight.photo_issue(photo.photo_dpi))
            report.issues = list(result.issues)
            report.blank = result.blank
            if detect_qr and not result.blank:
                finding = qr.detect_case_qr(grey, dpi=raw.dpi)
            if thumbnails is not None:
                thumb = write_thumbnail(grey, thumbnails / f"page-{raw.number:04d}.jpg")
        report.seconds = time.perf_counter() - started
        return PageOutcome(raw=raw, report=report, qr=finding, thumbnail=thumb)

    outcomes: list[PageOutcome] = []

    def emit(future: Future[PageOutcome]) -> None:
        outcome = future.result()
        if on_page:
            on_page(outcome.report)
        if on_outcome:
            on_outcome(outcome)
        outcomes.append(outcome)

    # Preflight a page while the next one is still being read (rasterising a PDF page costs more
    # than checking it) in a thread of its own, and report verdicts here in page order as soon as
    # they are ready: the first page's verdict never waits for the reading of the pages after it.
    ahead: queue.SimpleQueue[Future[PageOutcome] | BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def read_ahead(pool: ThreadPoolExecutor) -> None:
        try:
            pages_read = raws()
            k = 0
            while not stop.is_set():
                k += 1
                with gate(k):
                    raw = next(pages_read, None)
                if raw is None:
                    break
                ahead.put(pool.submit(one, k, raw))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            ahead.put(exc)
        finally:
            ahead.put(None)

    with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:
        reader = threading.Thread(target=read_ahead, args=(pool,), name="sohoa-read-ahead", daemon=True)
        reader.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                emit(item)
        finally:
            stop.set()
            reader.join()
    return outcomes


def process_document(
    sources: Sequence[Path],
    *,
    workdir: Path,
    out_pdf: Path | None = None,
    case_id: str | None = None,
    kind: str | None = None,
    operator: str | None = None,
    jobs: int | None = None,
    strict: bool = False,
    keep_blank: bool = False,
    source_sha256: str | None = None,
    source_name: str | None = None,
    thresholds: preflight.PreflightThresholds | None = None,
    on_page: Callable[[PageReport], None] | None = None,
    pages: Collection[int] | None = None,
    document_id: str | None = None,
    on_ocr_page: Callable[[int], None] | None = None,
    checked: Sequence[PageOutcome] | None = None,
) -> ProcessedDocument:
    """Turn one or more scan files into one searchable PDF/A, with its OCR JSON and report.

    Blank pages (the empty backs of a duplex stack) are dropped from the PDF and reported, unless
    ``keep_blank`` or every page is blank. ``pages`` keeps only those source pages (one dossier of a
    stack split by cover sheets; its ``document_id`` defaults to ``document_id_for(source_sha256, pages)``).
    With ``strict``, a page that must be rescanned stops the
    document before OCR with ``PageNeedsRescan`` (and after OCR, when a page with ink yields no
    readable text). ``on_ocr_page`` is called with each page's number once it is cleaned and read (OCR
    progress). ``checked``: the pages already read and preflighted by the caller (the desk service
    checked them as they arrived), in order; they are not read or checked again and their verdicts
    are the report's.
    """
    started = time.perf_counter()
    sources = [Path(s) for s in sources]
    workdir.mkdir(parents=True, exist_ok=True)
    if source_sha256 is None:
        shas = [sha256_of(s) for s in sources]
        source_sha256 = shas[0] if len(shas) == 1 else hashlib.sha256("".join(shas).encode()).hexdigest()
    document_id = document_id or document_id_for(source_sha256, pages)
    report = DocumentReport(
        source_name=source_name or ", ".join(s.name for s in sources),
        source_sha256=source_sha256, document_id=document_id, case_id=case_id, kind=kind, operator=operator,
    )
    jobs = jobs or default_jobs()

    # Checking pages runs beside cleaning and reading them: at most `jobs` full-page images are
    # worked on at once (a check, a cleaning or a page's compression; Tesseract's reading is not
    # counted), so memory does not grow with the checks that run ahead (peak RSS of 64 pages was
    # 1.2-1.8x that of 8 without this).
    page_images = threading.BoundedSemaphore(jobs)

    def clean_and_ocr(o: PageOutcome, *, ocr_blank: bool) -> None:
        _clean_and_ocr(o, workdir, ocr_blank=ocr_blank, images=page_images)
        if on_ocr_page:
            on_ocr_page(o.raw.number)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        started_ocr: list[Future[None]] = []
        blanks: list[PageOutcome] = []

        def start_ocr(o: PageOutcome) -> None:
            # A page with ink is cleaned and read as soon as its check is done, while the pages
            # after it are still being checked (the check of 8 phone photos is ~2 s of a ~7 s
            # run). A blank page waits: it is read only if every page turns out blank.
            if o.report.blank:
                blanks.append(o)
            else:
                started_ocr.append(pool.submit(clean_and_ocr, o, ocr_blank=False))

        try:
            if checked is not None:
                outcomes = list(checked)
                if on_page:
                    for o in outcomes:
                        on_page(o.report)
            else:
                # strict: every verdict before any OCR (a page to rescan stops the document first)
                outcomes = check_pages(sources, workdir=workdir, jobs=jobs, thresholds=thresholds, on_page=on_page,
                                       pages=pages, on_outcome=None if strict else start_ocr,
                                       gate=lambda _k: page_images)
            if not outcomes:
                raise EmptyFile(report.source_name)
            report.pages = [o.report for o in outcomes]
            if strict:
                refuse_rescans(outcomes)
            all_blank = all(o.report.blank for o in outcomes)
            if checked is not None or strict:
                started_ocr = [pool.submit(clean_and_ocr, o, ocr_blank=all_blank) for o in outcomes]
            else:
                started_ocr += [pool.submit(clean_and_ocr, o, ocr_blank=all_blank) for o in blanks]
            for future in started_ocr:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if strict:
        refuse_rescans(outcomes)  # pages found unreadable by the OCR itself
    _fill_pdf_text(outcomes)

    kept = [o for o in outcomes if keep_blank or all_blank or not o.report.blank]
    dropped = [o.raw.number for o in outcomes if o not in kept]
    out_pdf = out_pdf or workdir / "searchable.pdf"
    metadata = pdf.PdfMetadata(
        title=f"{kind or 'Hồ sơ'} {case_id or ''}".strip(), case_id=case_id, source_sha256=source_sha256,
        software_version=software_version(), operator=operator, kind=kind,
        result_code=_result_code(case_id, document_id),
    )
    pdf.build_searchable_pdf([o.pdf_page for o in kept], out_pdf, metadata=metadata)
    ocr_json = workdir / "ocr.json"
    ocr_json.write_text(json.dumps({
        "document_id": document_id, "case_id": case_id, "source_sha256": source_sha256,
        # "number": the page of the source file (or stack), as the preflight report names it;
        # "pdf_page": the page of the searchable PDF written here (blank pages dropped).
        "pages": [{"number": o.raw.number, "pdf_page": i, "text": o.text,
                   "ocr": o.ocr.to_dict() if o.ocr else None}
                  for i, o in enumerate(kept, start=1)],
        "dropped_blank_pages": dropped,
    }, ensure_ascii=False), encoding="utf-8")
    report.seconds = time.perf_counter() - started
    return ProcessedDocument(report=report, searchable_pdf=out_pdf, ocr_json=ocr_json,
                             page_texts=[o.text for o in kept], dropped_pages=dropped)


def _result_code(case_id: str | None, document_id: str) -> str | None:
    from models import InvalidCaseId
    from models.result_code import result_code_for

    try:
        return result_code_for(case_id, document_id) if case_id else None
    except (InvalidCaseId, ValueError):  # a provisional case or document id: no result code yet
        return None


def _rectify_photo(raw: RawPage, photo: camera.Capture, image: np.ndarray) -> tuple[RawPage, np.ndarray]:
    """Replace a phone photo's page file (``image``, as read) by the rectified sheet; the new RawPage
    and its grey image."""
    page = camera.rectify(image, photo)
    bent = dewarp.straighten(page, dpi=photo.dpi)  # the outline is square now; a curled sheet's lines not yet
    grey = _rewrite_page(raw, page if bent is None else bent)
    return replace(raw, dpi=photo.dpi, dpi_estimated=True, width=photo.width, height=photo.height), grey


def _rewrite_page(raw: RawPage, page: np.ndarray) -> np.ndarray:
    """Write ``page`` over the page's working file (never the user's file); its grey image."""
    if not cv2.imwrite(str(raw.path), page):
        raise OSError(f"cannot write {raw.path}")
    return page if page.ndim == 2 else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)


def _scale_from_letters(raw: RawPage, grey: np.ndarray) -> RawPage:
    """``raw`` with the resolution its letters give when the file had none (see pipeline/scale.py)."""
    dpi = scale.reading_dpi(grey, raw.dpi) if grey is not None else raw.dpi
    return raw if dpi == raw.dpi else replace(raw, dpi=dpi)


THUMBNAIL_WIDTH = 240


def write_thumbnail(grey, out: Path, *, width: int = THUMBNAIL_WIDTH) -> Path:
    """A small JPEG of a page for the desk's screen (area-averaged, so thin strokes stay visible)."""
    h, w = grey.shape[:2]
    scale = min(1.0, width / max(w, 1))
    small = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.jpg")
    cv2.imwrite(str(tmp), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    os.replace(tmp, out)
    return out


def _renumber(raw: RawPage, number: int) -> RawPage:
    return raw if raw.number == number else replace(raw, number=number)


def refuse_rescans(outcomes: list[PageOutcome]) -> None:
    """Raise ``PageNeedsRescan`` naming every page with a RESCAN verdict."""
    bad = [(o.report.number, i) for o in outcomes for i in o.report.issues if i.severity is Severity.RESCAN]
    if bad:
        raise PageNeedsRescan(
            sorted({n for n, _ in bad}),
            [f"page {n}: {i.message_en}" for n, i in bad],
            [f"trang {n}: {i.message_vi}" for n, i in bad],
        )


def _fill_pdf_text(outcomes: list[PageOutcome]) -> None:
    """Pages copied from a PDF with text keep that text for the sidecar and the catalog."""
    by_pdf: dict[Path, list[PageOutcome]] = {}
    for o in outcomes:
        if o.raw.path is None and o.raw.source_pdf is not None:
            by_pdf.setdefault(o.raw.source_pdf, []).append(o)
    for path, pages in by_pdf.items():
        texts = pdf.extract_text(path)
        for o in pages:
            o.text = texts[o.raw.source_index] if o.raw.source_index < len(texts) else ""
            o.report.word_count = len(o.text.split())

