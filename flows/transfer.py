"""Transfer packages (thu nộp): fetch each record's files from the store and pack one bag per record.

One case at a time, one file at a time (downloaded straight into the bag's staging folder), so memory
does not grow with the number of records. Every exported case is one audit entry.
"""
from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models import CaseId, InvalidCaseId, NotFound
from models.record import package_file_name
from pipeline.package import PackageFile, PremisEvent, finish_package, sha256_path, staging_dir
from storage.archive import Archive
from storage.manifest import pages_from_ocr_json
from storage.records import RecordBook

ROLES = (("searchable_pdf", "searchable", "objects"), ("source", "original", "originals"))


def _software() -> str:
    from pipeline.document import software_version

    return f"sohoa {software_version()}"


def package_trust_roots() -> tuple[Path, ...]:
    try:
        from flows.signing import signing_config

        return tuple(p for p in signing_config().trust_roots if p.is_file())
    except Exception:  # noqa: BLE001 - no keys configured: signatures are checked for integrity only
        return ()


def select_cases(archive: Archive, *, unit: str, year: int | None = None, cases: Sequence[str] = ()) -> list[str]:
    """The unit's cases: those named, or those received in ``year`` (from the case ID), or all."""
    if cases:
        wrong = [c for c in cases if not c.startswith(unit + "-")]
        if wrong:
            raise NotFound(f"Case {wrong[0]} is not of unit {unit}.", f"Hồ sơ {wrong[0]} không thuộc đơn vị {unit}.")
        return list(dict.fromkeys(cases))
    out = []
    for case_id in archive.catalog.case_ids():
        if not case_id.startswith(unit + "-"):
            continue
        if year is not None:
            try:
                if CaseId.parse(case_id).received.year != year:
                    continue
            except InvalidCaseId:
                continue
        out.append(case_id)
    return out


def _events(doc: dict[str, Any], doc_id: str, software: str) -> list[PremisEvent]:
    created = doc.get("created_at", "")
    who = doc.get("operator") or "sohoa"
    events = [
        PremisEvent("ingestion", created, who, "person" if doc.get("operator") else "software",
                    f"tiếp nhận bản quét {doc.get('source_name', '')} (received scan)", document_id=doc_id,
                    uses=("original",)),
        PremisEvent("creation", created, software, "software",
                    "OCR Tesseract vie và PDF/A-2b tìm kiếm được (OCR and searchable PDF/A-2b)", document_id=doc_id,
                    uses=("searchable", "ocr")),
    ]
    for sig in doc.get("signatures") or []:
        events.append(PremisEvent("digital signature generation", sig.get("signed_at", created),
                                  sig.get("signer", "?"), "organization" if sig.get("role") == "agency" else "person",
                                  f"{sig.get('role')} {sig.get('level', '')}{' TEST' if sig.get('test') else ''}",
                                  document_id=doc_id))
    return events


def export_case(archive: Archive, book: RecordBook, case_id: str, out_dir: Path, *, actor: str,
                source_org: str = "") -> Path:
    """Write ``<out_dir>/<case-id>/``, a bag of the record; fixity is checked on every file fetched."""
    from pipeline.sign import verify_pdf

    record = book.record(case_id)
    entries = {e["document_id"]: e for e in archive.read_case(case_id).documents}
    software, now = _software(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    stage = staging_dir(out_dir, case_id)
    files: list[PackageFile] = []
    events: list[PremisEvent] = []
    signatures: dict[str, int] = {}
    roots = package_trust_roots()
    for meta in record.documents:
        entry = entries.get(meta.document_id)
        if entry is None:
            continue
        events += _events(entry, meta.document_id, software)
        for role, use, folder in ROLES:
            key = (entry.get("keys") or {}).get(role)
            if not key:
                continue
            ext = "pdf" if role == "searchable_pdf" else key.rsplit(".", 1)[-1]
            rel = f"{folder}/{package_file_name(case_id, meta.order, ext)}"
            archive.store.get_file(key, stage / rel)
            sha = sha256_path(stage / rel)
            expected = (entry.get("checksums") or {}).get(role)
            events.append(PremisEvent("fixity check", now, software, "software",
                                      f"SHA-256 {sha} so với sổ kê (against the manifest) {expected}",
                                      "success" if sha == expected else "failure", meta.document_id, (use,)))
            files.append(PackageFile(rel, use, meta.document_id, meta.order, sha))
            if role == "searchable_pdf" and entry.get("signatures"):
                signatures[meta.document_id] = len(entry["signatures"])
                checks = verify_pdf(stage / rel, trust_roots=list(roots))
                bad = [p for c in checks for p in c.problems if roots or ("trust" not in p and "TSA" not in p)]
                events.append(PremisEvent("digital signature validation", now, software, "software",
                                          "; ".join(bad) or f"{len(checks)} chữ ký hợp lệ (valid signatures)",
                                          "failure" if bad or not checks else "success", meta.document_id))
        ocr = (entry.get("keys") or {}).get("ocr_json")
        if ocr:
            text = "\f".join(unicodedata.normalize("NFC", p.text or "") for p in
                             pages_from_ocr_json(archive.store.get_bytes(ocr)))
            rel = f"ocr/{package_file_name(case_id, meta.order, 'txt')}"
            (stage / rel).write_text(text, encoding="utf-8")
            files.append(PackageFile(rel, "ocr", meta.document_id, meta.order, sha256_path(stage / rel)))
    for e in book.audit.entries(case_id=case_id):
        if e.action in ("record_edit", "legal_hold", "legal_hold_lift"):
            detail = json.loads(e.detail or "{}")
            events.append(PremisEvent("metadata modification", e.at, e.actor, "person",
                                      json.dumps(detail, ensure_ascii=False),
                                      document_id=e.document_id))
    path = finish_package(stage, out_dir, record, files, events, software=software, signatures=signatures,
                          bag_info={"Source-Organization": source_org or case_id.split("-", 1)[0]})
    book.audit.append(actor=actor, action="export", outcome="allowed", case_id=case_id,
                      detail=json.dumps({"package": path.name, "files": len(files)}))
    return path


def export_records(archive: Archive, book: RecordBook, case_ids: Sequence[str], out_dir: Path, *, actor: str,
                   progress: Callable[[int, int, str], None] | None = None) -> list[Path]:
    """One package per case, in order; ``progress(done, total, case_id)`` after each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, case_id in enumerate(case_ids, 1):
        paths.append(export_case(archive, book, case_id, out_dir, actor=actor))
        if progress:
            progress(n, len(case_ids), case_id)
    return paths


def rules_path(data_dir: Path | None = None) -> Path:
    """The agency's retention schedule: ``SOHOA_RETENTION_RULES`` or ``<data dir>/retention.json``."""
    import os

    from flows.common import settings

    return Path(os.environ.get("SOHOA_RETENTION_RULES") or (data_dir or settings().data_dir) / "retention.json")


def open_book(archive: Archive, data_dir: Path | None = None) -> RecordBook:
    """The record book on the archive's catalog, with the agency's retention schedule."""
    from models.retention import RetentionRules
    from storage.audit import AuditTrail

    return RecordBook(archive.catalog, AuditTrail(archive.catalog.engine), RetentionRules.load(rules_path(data_dir)),
                      archive.store)
