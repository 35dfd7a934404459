"""The scanning desk: one scanned stack → page verdicts at once, then one document per case it holds.

A stack may carry cover sheets (or receipts) whose QR code is a case ID. ``ingest_stack`` reads
and preflights every page first (no OCR, a second or two a page), tells the operator what it saw
(``<name>.check.txt`` next to the file), cuts the stack at every valid case-ID QR and ingests each
segment as one document of its case through ``ingest_one``. A stack without sheets is exactly one
``ingest_one`` of the whole file. Pages with no case ID are reported as ``needs-case-id``, never
guessed; a QR that is not a case ID is reported and its page kept as an ordinary page. The
``intake`` flow (``sohoa scan``, the hot folder) runs ``ingest_stack`` over each file it is given.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from models import CaseId, OcrFailed, PageReport, SohoaError
from models.errors import InputFileError, as_disk_full
from pipeline import reader
from pipeline.document import PageOutcome, check_pages, refuse_rescans
from pipeline.qr import StackSplit, split_stack
from flows.common import failure_report, settings
from flows.intake import IntakeRequest, _claim_workdir, ingest_one, record_stack, store_stack
from models import StorageUnavailable
from pipeline.document import document_id_for
from pipeline.extract import extension_of_extract, extract_pages

CHECK_SUFFIX = ".check.txt"
CHECK_DONE = "Kiểm tra xong. (Check complete.)"


def check_stack(path: Path, *, workdir: Path, default_case: CaseId | None, jobs: int | None = None,
                on_page: Callable[[PageReport], None] | None = None) -> tuple[list[PageOutcome], StackSplit]:
    """Preflight and QR-read every page of ``path`` (no OCR) and split the stack by its case-ID QR codes."""
    try:
        outcomes = check_pages([path], workdir=workdir, jobs=jobs, detect_qr=True, on_page=on_page)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return outcomes, split_stack([o.qr for o in outcomes], default_case=default_case)


def stack_summary(outcomes: list[PageOutcome], split: StackSplit) -> dict[str, Any]:
    """What the desk saw in a stack, as plain data for reports: verdicts, QR codes, segments, issues."""
    return {
        "page_count": len(outcomes),
        "preflight": [o.report.to_dict() | {"qr": o.qr.text if o.qr else None} for o in outcomes],
        "segments": [{"case_id": str(s.case_id) if s.case_id else None, "pages": [i + 1 for i in s.pages],
                      "sheet_page": None if s.sheet_page is None else s.sheet_page + 1} for s in split.segments],
        "issues": [{"page": i.page + 1, "kind": i.kind, "text": i.text, "message_vi": i.message_vi,
                    "message_en": i.message_en} for i in split.issues],
    }


def check_text(name: str, outcomes: list[PageOutcome], split: StackSplit) -> str:
    """The operator's page-by-page verdict, Vietnamese with English after, one line a page."""
    separators = {s.sheet_page for s in split.segments if s.sheet_page is not None}
    separators |= {i.page for i in split.warnings if i.kind == "repeated_case"}
    lines = [f"{name}: {len(outcomes)} trang / pages"]
    for index, o in enumerate(outcomes):
        sheet = f"tờ bìa hồ sơ {o.qr.text if o.qr else ''} (cover sheet, not stored)" if index in separators else None
        lines += page_lines(o.report, verdict=sheet)
    for issue in split.issues:
        lines.append(f"! {issue.message_vi}  [{issue.message_en}]")
    for s in split.segments:
        if s.pages:
            who = str(s.case_id) if s.case_id else "CHƯA CÓ MÃ HỒ SƠ (no case ID)"
            lines.append(f"→ {who}: trang {s.pages[0] + 1}–{s.pages[-1] + 1} ({len(s.pages)} trang / pages)")
    lines.append(CHECK_DONE)
    return "\n".join(lines) + "\n"


def page_lines(page: PageReport, *, verdict: str | None = None) -> list[str]:
    """One page's verdict line and its issues, as the operator reads them."""
    if verdict is None:
        verdict = ("QUÉT LẠI (rescan)" if page.needs_rescan else
                   "trống, bỏ khỏi PDF (blank, dropped)" if page.blank else "đạt (ok)")
    lines = [f"trang {page.number}: {verdict}, {page.dpi:.0f} dpi, {page.seconds * 1000:.0f} ms"]
    return lines + [f"    {i.message_vi}  [{i.severity.value}: {i.message_en}]" for i in page.issues]


class _CheckFile:
    """``<name>.check.txt`` next to the scan: each page's verdict appended as it is ready, then the summary."""

    def __init__(self, scan: Path) -> None:
        self.path = scan.with_name(scan.name + CHECK_SUFFIX)
        self.path.write_text(f"{scan.name}: đang kiểm tra từng trang… (checking page by page…)\n", encoding="utf-8")

    def page(self, page: PageReport) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("\n".join(page_lines(page)) + "\n")

    def final(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)  # a reader never sees half a summary


def ingest_stack(path: Path, *, default_case: str | None, work_root: Path, kind: str | None = None,
                 operator: str | None = None, jobs: int | None = None, strict: bool = False,
                 write_check: bool = False) -> list[dict[str, Any]]:
    """Ingest one scanned stack: one report per dossier in it (stored, already-stored, failed, needs-case-id).

    Raises a ``SohoaError`` for what concerns the whole file: unreadable, or (``strict``) a page
    that must be rescanned, or nothing but cover sheets.
    """
    path = Path(path)
    reader.sniff_format(path)  # an empty or unknown file is refused before anything else
    sha = reader.sha256_of(path)
    default = CaseId.parse(default_case) if default_case else None
    check_file = _CheckFile(path) if write_check else None
    outcomes, split = check_stack(path, workdir=_claim_workdir(work_root, f"stack-{sha[:20]}"), default_case=default, jobs=jobs,
                                  on_page=check_file.page if check_file else None)
    summary = stack_summary(outcomes, split)
    if check_file:
        check_file.final(check_text(path.name, outcomes, split))
    kept = {i + 1 for s in split.segments for i in s.pages}
    if strict:
        # A cover sheet is never stored, so only the dossier pages can make the operator rescan.
        refuse_rescans([o for o in outcomes if o.report.number in kept])
    if not kept:
        raise InputFileError(
            f"{path.name} holds only cover sheets ({len(outcomes)} pages), no dossier pages; scan the papers "
            "after their cover sheet.",
            f"Tệp {path.name} chỉ có tờ bìa ({len(outcomes)} trang), không có trang hồ sơ nào; hãy quét giấy tờ "
            "ngay sau tờ bìa của nó.")
    whole = len(split.segments) == 1 and split.segments[0].sheet_page is None
    if whole:
        request = IntakeRequest(path=str(path), case_id=str(split.segments[0].case_id), kind=kind,
                                operator=operator, source_sha256=sha) if split.segments[0].case_id else None
        numbers = tuple(i + 1 for i in split.segments[0].pages)
        if request is None:
            return [_needs_case_id(path.name, numbers) | {"stack": summary}]
        try:
            # Preflight's verdicts were checked on the whole stack above; strict still refuses a
            # page the OCR finds unreadable.
            report = ingest_one(request, work_root=work_root, jobs=jobs, strict=strict, prechecked=True)
        except SohoaError as exc:
            report = failure_report(path.name, request.case_id, exc)
        return [report | {"stack_pages": list(numbers), "stack": summary}]
    return _ingest_segments(path, sha, split, summary, len(outcomes), work_root=work_root, kind=kind,
                            operator=operator, jobs=jobs)


def _ingest_segments(path: Path, sha: str, split: StackSplit, summary: dict[str, Any], page_count: int, *,
                     work_root: Path, kind: str | None, operator: str | None,
                     jobs: int | None) -> list[dict[str, Any]]:
    """Each dossier of a split stack gets an original of its own pages only, cut losslessly.

    The whole stack (every case's pages) is kept once under ``stacks/<sha256>/``, apart from the
    cases, with a record of which pages went to which case; each document records the stack's
    SHA-256 and its pages. One case never receives another case's pages.
    """
    stack: dict[str, Any] | None = None
    try:
        stack = store_stack(str(path), sha, operator)
    except StorageUnavailable:
        stack = None  # each dossier below spools itself; the stack is kept when it is ingested again
    parts = work_root / f"stack-{sha[:20]}-parts"
    ext = extension_of_extract(path)
    results: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    try:
        for segment in split.segments:
            if not segment.pages:
                continue  # a sheet with nothing after it: in the summary's issues
            numbers = tuple(i + 1 for i in segment.pages)
            if segment.case_id is None:
                results.append(_needs_case_id(path.name, numbers) | {"stack": summary})
                continue
            span = f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
            try:
                part = extract_pages(path, numbers, parts / f"{path.stem}.p{span}.{ext}")
                request = IntakeRequest(path=str(part), case_id=str(segment.case_id), kind=kind, operator=operator,
                                        document_id=document_id_for(sha, numbers), stack_sha256=sha,
                                        stack_pages=numbers)
                report = ingest_one(request, work_root=work_root, jobs=jobs)
            except SohoaError as exc:
                # One dossier's failure must not lose the others of the same stack.
                report = failure_report(path.name, str(segment.case_id), exc)
            if report.get("status") in ("stored", "already-stored"):
                segments.append({"case_id": str(segment.case_id), "document_id": report.get("document_id"),
                                 "pages": list(numbers), "source_sha256": report.get("source_sha256")})
            results.append(report | {"stack_pages": list(numbers), "stack": summary})
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    if stack is not None and segments:
        try:
            record_stack(sha, stack["key"], path.name, page_count, segments)
        except StorageUnavailable:
            pass  # the stack itself is stored; its record is written again on the next ingest
    return results


def _needs_case_id(name: str, pages: tuple[int, ...]) -> dict[str, Any]:
    span = f"{pages[0]}–{pages[-1]}" if len(pages) > 1 else str(pages[0])
    return {
        "source_name": name, "case_id": None, "status": "needs-case-id", "stack_pages": list(pages),
        "exit_code": 2,
        "message_vi": f"Trang {span} của {name} chưa có mã hồ sơ (không có tờ bìa, mã QR hay thư mục mã hồ sơ). "
                      "Hãy chuyển tệp vào thư mục con mang mã hồ sơ trong thư mục nhận, hoặc chạy "
                      "'sohoa scan TỆP --case MÃ-HỒ-SƠ'.",
        "message_en": f"Pages {span} of {name} have no case ID (no cover sheet, QR code or case-ID folder). "
                      "Move the file into an INBOX sub-folder named by the case ID, or run "
                      "'sohoa scan FILE --case CASE-ID'.",
    }


@flow(name="intake", log_prints=False)
def intake(files: list[str], case_id: str | None = None, kind: str | None = None, operator: str | None = None,
           jobs: int | None = None, strict: bool = False, write_check: bool = False) -> list[dict[str, Any]]:
    """Ingest scan files as documents of their cases; a bad file is reported and the others go on.

    Each file is a stack (``ingest_stack``): one with cover sheets is split, one document per case,
    and its pages before the first sheet go to ``case_id``; without it they come back as
    ``needs-case-id``. ``write_check`` writes the page verdicts next to each file before OCR.
    """
    case = str(CaseId.parse(case_id)) if case_id else None  # a malformed case ID stops everything first
    logger = get_run_logger()
    work_root = settings().data_dir / "work"
    results: list[dict[str, Any]] = []
    for f in files:
        try:
            reports = ingest_stack(Path(f), default_case=case, work_root=work_root, kind=kind, operator=operator,
                                   jobs=jobs, strict=strict, write_check=write_check)
        except SohoaError as exc:
            logger.warning("%s: %s", Path(f).name, exc.message_en)
            results.append(failure_report(Path(f).name, case, exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others: its own verdict
            full = as_disk_full(exc)
            if full is not None:
                logger.warning("%s: %s", Path(f).name, full.message_en)
                results.append(failure_report(Path(f).name, case, full))
                continue
            logger.exception("internal error on %s", Path(f).name)
            results.append(failure_report(Path(f).name, case, OcrFailed(
                f"{Path(f).name} could not be processed (internal error {type(exc).__name__}); "
                "the original is kept if it was stored; report it and scan the file again.",
                f"Không xử lý được tệp {Path(f).name} (lỗi nội bộ {type(exc).__name__}); bản gốc được giữ "
                "nếu đã lưu; hãy báo cho bộ phận kỹ thuật rồi quét lại.")))
            continue
        for r in reports:
            logger.info("%s %s as %s/%s", r["status"], Path(f).name, r.get("case_id"), r.get("document_id"))
        results.extend(reports)
    return results
