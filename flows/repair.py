"""Repair of stores written before stacks were cut per case: ``sohoa repair-stacks``.

Until this fix a stack split by cover sheets was stored whole as the original of *each* of its
cases, so every case's original held the other cases' pages. This finds every such document (its
document ID derives from the stack's SHA-256 and its pages, not from the file alone; no stack
recorded) and rewrites only its original: the pages of its own dossier, cut losslessly. The old
bytes stay as an older object version (S3 versioning; ``.versions/`` in the folder store), the
whole stack is kept once under ``stacks/<sha256>/``, and the manifest and catalog record the
stack's SHA-256 and the pages. The searchable PDF and OCR text already held only the case's pages.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from models import DocumentRecord, NotFound, SohoaError
from pipeline.document import document_id_for
from pipeline.extract import extract_pages, page_count
from storage.archive import Archive
from flows.common import open_archive


@dataclass
class StackRepair:
    """One document whose original is a whole stack, and what it becomes."""

    case_id: str
    document_id: str
    source_name: str
    key: str
    stack_sha256: str
    pages: list[int] | None  # the dossier's pages in the stack; None when they cannot be told
    stack_pages: int | None = None
    new_sha256: str | None = None
    status: str = "pending"  # pending, repaired, would-repair, undetermined, failed
    reason: str = ""
    old_versions: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the administrator, Vietnamese then English."""
        span = _span(self.pages) if self.pages else "?"
        whole = f"{self.stack_pages} trang/pages" if self.stack_pages else "?"
        head = f"{self.case_id} · {self.document_id} · {self.source_name}"
        if self.status == "repaired":
            return (f"  ✓ {head}: bản gốc là cả xấp ({whole}, sha256 {self.stack_sha256[:12]}…) → chỉ còn trang {span} "
                    f"(sha256 {self.new_sha256[:12] if self.new_sha256 else '?'}…) "
                    f"[original was the whole stack; now pages {span} only]")
        if self.status == "would-repair":
            return (f"  … {head}: bản gốc là cả xấp ({whole}) → sẽ chỉ giữ trang {span} "
                    f"[would keep pages {span} only]")
        return f"  ✗ {head}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "document_id": self.document_id, "source_name": self.source_name,
                "key": self.key, "stack_sha256": self.stack_sha256, "pages": self.pages,
                "stack_page_count": self.stack_pages, "new_sha256": self.new_sha256, "status": self.status,
                "reason": self.reason, "old_versions": self.old_versions}


def _span(pages: list[int]) -> str:
    return f"{pages[0]}–{pages[-1]}" if len(pages) > 1 else str(pages[0])


def _pages_from_ocr(archive: Archive, rec: DocumentRecord) -> list[int] | None:
    """The dossier's stack pages as the old ingest recorded them in ocr.json (kept + dropped blank pages)."""
    key = rec.keys.get("ocr_json")
    if not key:
        return None
    try:
        data = json.loads(archive.store.get_bytes(key))
    except (NotFound, ValueError):
        return None
    numbers = {int(p["number"]) for p in data.get("pages", []) if "number" in p}
    numbers |= {int(n) for n in data.get("dropped_blank_pages", [])}
    pages = sorted(numbers)
    # Only trust them when they give back the document's own ID (derived from stack hash and pages).
    return pages if pages and document_id_for(rec.source_sha256, pages) == rec.document_id else None


def _pages_from_split(stack: Path, rec: DocumentRecord, work: Path) -> list[int] | None:
    """Fallback: split the stack by its cover sheets again and find the segment with this document's ID."""
    from flows.desk import check_stack

    _outcomes, split = check_stack(stack, workdir=work / "split", default_case=None)
    for segment in split.segments:
        pages = [i + 1 for i in segment.pages]
        if pages and document_id_for(rec.source_sha256, pages) == rec.document_id:
            return pages
    return None


def find_stack_originals(archive: Archive) -> list[tuple[DocumentRecord, StackRepair]]:
    """Documents whose original is a whole stack: cut from a stack (ID from hash and pages), no stack recorded."""
    found = []
    for case in archive.manifest_cases():
        try:
            records = archive.manifest_records(case)
        except (ValueError, TypeError, KeyError):
            continue
        for rec in records:
            if rec.stack_sha256 or "source" not in rec.keys:
                continue
            if rec.document_id == document_id_for(rec.source_sha256):
                continue  # a file ingested whole: its original is its own
            found.append((rec, StackRepair(case_id=rec.case_id, document_id=rec.document_id,
                                           source_name=rec.source_name, key=rec.keys["source"],
                                           stack_sha256=rec.source_sha256, pages=_pages_from_ocr(archive, rec))))
    return found


def repair_stacks(archive: Archive, *, dry_run: bool = False, work_root: Path | None = None) -> list[StackRepair]:
    """Rewrite every affected case's original to its own pages (see the module docstring)."""
    candidates = find_stack_originals(archive)
    by_stack: dict[str, list[tuple[DocumentRecord, StackRepair]]] = {}
    for rec, rep in candidates:
        by_stack.setdefault(rep.stack_sha256, []).append((rec, rep))
    if work_root is not None:
        work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sohoa-repair-", dir=work_root) as tmp:
        for sha, items in by_stack.items():
            work = Path(tmp) / sha[:20]
            work.mkdir()
            ext = Path(items[0][1].key).suffix.lstrip(".")
            stack = work / f"stack.{ext}"
            try:
                archive.store.get_file(items[0][1].key, stack)
                from pipeline.reader import sha256_of

                if sha256_of(stack) != sha:
                    raise SohoaError(f"{items[0][1].key} no longer has the SHA-256 the manifest recorded; "
                                     "run 'sohoa verify' first.",
                                     f"{items[0][1].key} không còn khớp mã SHA-256 trong bản kê; hãy chạy "
                                     "'sohoa verify' trước.")
                count = page_count(stack)
                for _rec, rep in items:
                    rep.stack_pages = count
                    if rep.pages is None:
                        rep.pages = _pages_from_split(stack, _rec, work)
                if dry_run:
                    for _rec, rep in items:
                        rep.status = "would-repair" if rep.pages else "undetermined"
                        if not rep.pages:
                            rep.reason = ("không xác định được các trang của hồ sơ trong xấp "
                                          "(cannot tell which pages of the stack are this case's)")
                    continue
                stored = archive.store_stack(stack_sha256=sha, source_path=stack, source_name=items[0][1].source_name,
                                             ext=ext)
                segments = []
                for rec, rep in items:
                    if not rep.pages:
                        rep.status = "undetermined"
                        rep.reason = ("không xác định được các trang của hồ sơ trong xấp; bản gốc giữ nguyên "
                                      "(cannot tell which pages of the stack are this case's; original left as is)")
                        continue
                    if ext not in ("pdf", "tif", "tiff"):
                        rep.status, rep.reason = "undetermined", "không phải xấp PDF/TIFF (not a PDF or TIFF stack)"
                        continue
                    part = extract_pages(stack, rep.pages, work / f"{rec.document_id}.{ext}")
                    fixed = archive.replace_original(rec, source_path=part, stack_sha256=sha, stack_pages=rep.pages)
                    rep.new_sha256 = fixed.source_sha256
                    rep.status = "repaired"
                    versions = getattr(archive.store, "versions", None)
                    if versions is not None:
                        rep.old_versions = [str(v) for v in versions(rep.key)]
                    segments.append({"case_id": rec.case_id, "document_id": rec.document_id, "pages": rep.pages,
                                     "source_sha256": fixed.source_sha256})
                if segments:
                    archive.record_stack(stack_sha256=sha, key=stored.key, source_name=items[0][1].source_name,
                                         page_count=count, segments=segments)
            except SohoaError as exc:
                for _rec, rep in items:
                    if rep.status in ("pending", "would-repair"):
                        rep.status, rep.reason = "failed", exc.user_message()
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return [rep for _rec, rep in candidates]


@flow(name="repair-stacks", log_prints=False)
def repair_stacks_flow(dry_run: bool = False) -> list[dict[str, Any]]:
    """Prefect flow around ``repair_stacks`` on the configured store and catalog."""
    from flows.common import settings

    archive = open_archive()
    repairs = repair_stacks(archive, dry_run=dry_run, work_root=settings().data_dir / "work")
    logger = get_run_logger()
    for rep in repairs:
        logger.info("%s %s/%s", rep.status, rep.case_id, rep.document_id)
    return [rep.to_json() for rep in repairs]
