"""A desk job's pages checked and kept, the job split at its cover sheets and planned as intake requests."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from models import CaseId
from models.jobs import JobDocument, JobPage, ScanJob
from flows.check_lane import Gate
from storage.jobs import JobStore


def check_job(store: JobStore, job: ScanJob, *, gate: Gate | None = None) -> None:
    """Preflight and QR-read the job's unchecked pages, writing each page's verdict as soon as it is ready.

    ``gate``: the service's check lane (``CheckLane.job()``), shared by all jobs being checked.
    """
    from pipeline.document import check_pages

    base = store.job_dir(job.id)
    work = base / "work"
    if not job.pages:
        offset = 0
        for index, f in enumerate(job.files):
            if not f.path.startswith("files/"):
                continue
            thumbs = Path("thumbs") / f"f{index + 1:02d}"
            first = offset

            def save(outcome, f=f, first=first, thumbs=thumbs) -> None:
                _save_page(store, job.id, outcome, number=first + outcome.raw.number, file=f.path,
                           file_page=outcome.raw.number, version=1,
                           thumbnail=str(thumbs / outcome.thumbnail.name) if outcome.thumbnail else None)

            try:
                outcomes = check_pages([base / f.path], workdir=work / f"check-{index + 1:02d}", jobs=None,
                                       detect_qr=True, thumbnails=base / thumbs, on_outcome=save,
                                       gate=shifted(gate, offset))
            finally:
                shutil.rmtree(work / f"check-{index + 1:02d}", ignore_errors=True)
            offset += len(outcomes)
        return
    checked = 0
    for page in job.pages:
        if page.status == "checked":
            continue
        thumbs = Path("thumbs") / f"p{page.number:04d}-v{page.version}"

        def save(outcome, page=page, thumbs=thumbs) -> None:
            _save_page(store, job.id, outcome, number=page.number, file=page.file, file_page=page.file_page,
                       version=page.version,
                       thumbnail=str(thumbs / outcome.thumbnail.name) if outcome.thumbnail else None)

        workdir = work / f"check-p{page.number:04d}"
        try:
            check_pages([base / page.file], workdir=workdir, pages={page.file_page}, detect_qr=True,
                        thumbnails=base / thumbs, on_outcome=save, gate=shifted(gate, checked))
            checked += 1
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def shifted(gate: Gate | None, offset: int) -> Gate | None:
    """The gate of a job's check for a part of it: its k-th page is the job's (offset + k)-th."""
    return None if gate is None else (lambda k: gate(offset + k))


def _kept_page(base: Path, number: int, version: int) -> tuple[Path, Path]:
    """Where the service keeps a checked page's image (as read) and its reading, for storing it later."""
    stem = base / "work" / "pages" / f"p{number:04d}-v{version}"
    return stem.with_suffix(".img"), stem.with_suffix(".json")


def _keep_page(base: Path, outcome, *, number: int, version: int) -> None:
    """Keep the page image check_pages read, so storing the job does not read and check it again."""
    raw = outcome.raw
    if raw.path is None or not raw.path.is_file():
        return  # a PDF page with its own text: the intake flow reads it (cheaply) again
    image, meta = _kept_page(base, number, version)
    image.parent.mkdir(parents=True, exist_ok=True)
    suffix = raw.path.suffix  # OpenCV needs the image's own extension to read it back
    os.replace(raw.path, image.with_suffix(suffix))
    meta.write_text(json.dumps({"path": str(image.with_suffix(suffix)), "dpi": raw.dpi,
                                "dpi_estimated": raw.dpi_estimated, "width": raw.width, "height": raw.height}),
                    encoding="utf-8")


def _checked_pages(base: Path, pages: list[JobPage]) -> list[dict[str, Any]] | None:
    """The kept readings of these pages with the verdicts the operator saw; None unless every page has one."""
    out = []
    for p in pages:
        _, meta = _kept_page(base, p.number, p.version)
        try:
            reading = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if p.verdict is None or not Path(reading["path"]).is_file():
            return None
        out.append(reading | {"verdict": p.verdict})
    return out


def _save_page(store: JobStore, job_id: str, outcome, *, number: int, file: str, file_page: int, version: int,
               thumbnail: str | None) -> None:
    _keep_page(store.job_dir(job_id), outcome, number=number, version=version)
    verdict = outcome.report.to_dict() | {"number": number}
    page = JobPage(number=number, file=file, file_page=file_page, version=version, status="checked",
                   verdict=verdict, qr=outcome.qr.text if outcome.qr else None, thumbnail=thumbnail)
    store.set_page(job_id, page, expect_version=version)


def split_job(job: ScanJob, *, units: list[str] | None = None) -> tuple[dict[str, Any], list[JobDocument]]:
    """Cut the job's pages at its cover sheets: the stack summary and one planned document per case.

    With ``units`` (the uploader's), a cover sheet of a case of another unit is refused: its pages
    are not stored, and the operator is told (an operator receives scans for their own units only).
    """
    from pipeline.qr import QrFinding, split_stack

    findings = [None if p.qr is None else QrFinding.from_text(p.qr) for p in job.pages]
    default = CaseId.parse(job.case_id) if job.case_id else None
    split = split_stack(findings, default_case=default)
    number = [p.number for p in job.pages]
    segments = [{"case_id": str(s.case_id) if s.case_id else None, "pages": [number[i] for i in s.pages],
                 "sheet_page": None if s.sheet_page is None else number[s.sheet_page]} for s in split.segments]
    stack = {"page_count": len(job.pages), "segments": segments,
             "issues": [{"page": number[i.page], "kind": i.kind, "text": i.text, "message_vi": i.message_vi,
                         "message_en": i.message_en} for i in split.issues]}
    documents = [JobDocument(case_id=s["case_id"], pages=s["pages"],
                             status="planned" if s["case_id"] else "needs-case-id")
                 for s in segments if s["pages"]]
    if units is not None:
        for doc in documents:
            if doc.case_id and CaseId.parse(doc.case_id).agency not in units:
                doc.status = "refused"
                vi = (f"Hồ sơ {doc.case_id} không thuộc đơn vị của bạn; các trang {doc.pages[0]}–{doc.pages[-1]} "
                      "không được lưu. Kiểm tra tờ bìa.")
                en = (f"Case {doc.case_id} is not of your units; pages {doc.pages[0]}–{doc.pages[-1]} are not "
                      "stored. Check the cover sheet.")
                doc.report = {"status": "failed", "case_id": doc.case_id, "message_vi": vi, "message_en": en,
                              "error_type": "ForeignCase", "exit_code": 2}
                stack["issues"].append({"page": doc.pages[0], "kind": "foreign_case", "text": doc.case_id,
                                        "message_vi": vi, "message_en": en})
    return stack, documents


def plan_requests(store: JobStore, job: ScanJob) -> list[tuple[int, dict[str, Any]]]:
    """(document index, intake request) for every document still to store.

    One whole uploaded file (or its pages of a stack) is stored as it is, so its document ID is the
    one ``sohoa scan`` would give it; pages from several files, or with a replaced page, are first
    assembled into one lossless TIFF in the job folder (made once, then reused on every retry).
    """
    from pipeline.reader import assemble_pages, sniff_format

    base = store.job_dir(job.id)
    by_number = {p.number: p for p in job.pages}
    uploads = [f for f in job.files if f.path.startswith("files/")]
    out: list[tuple[int, dict[str, Any]]] = []
    for index, doc in enumerate(job.documents):
        if doc.case_id is None or doc.status not in ("planned", "processing", "failed", "spooled"):
            continue
        pages = [by_number[n] for n in doc.pages]
        files = {p.file for p in pages}
        request: dict[str, Any] = {"case_id": doc.case_id, "kind": job.kind, "operator": job.operator,
                                   "progress": f"{job.id}:{index}"}
        if len(files) == 1 and pages[0].file.startswith("files/") and all(p.version == 1 for p in pages):
            f = next(f for f in uploads if f.path == pages[0].file)
            sniff_format(base / f.path)
            total = sum(1 for p in job.pages if p.file == f.path)
            if len(pages) == total and [p.file_page for p in pages] == list(range(1, total + 1)):
                request |= {"path": str(base / f.path), "source_sha256": f.sha256}
            else:  # one dossier of a stack: it gets its own pages only (flows/intake.py intake_job)
                request |= {"stack": {"path": str(base / f.path), "sha256": f.sha256, "page_count": total,
                                      "pages": [p.file_page for p in pages]}}
        else:
            parts = [(base / p.file, p.file_page) for p in pages]
            tag = hashlib.sha256(repr([(p.file, p.file_page) for p in pages]).encode()).hexdigest()[:12]
            # Named after the operator's first file, so the record still says where the pages came from.
            first = next((f.name for f in job.files if f.path == pages[0].file), "scan")
            target = base / "assembled" / tag / f"{Path(first).stem}-{len(pages)}-trang.tif"
            if not target.is_file():
                workdir = base / "work" / f"assemble-{tag}"
                try:
                    assemble_pages(parts, target, workdir)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            request |= {"path": str(target)}
        checked = _checked_pages(base, pages)
        if checked:
            request["checked"] = checked
        out.append((index, request))
    return out
