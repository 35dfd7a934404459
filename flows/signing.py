"""Turning a searchable PDF into a usable e-copy: extract its data, give it a result code, sign it.

Used by the intake flow after OCR and before storing (``finish_document``), and by ``sohoa sign``
for documents stored unsigned (``sign_stored``: a new version of the searchable PDF, manifest and
catalog updated). When no agency key is configured, or signing fails (token absent, TSA down), the
PDF is stored unsigned and the report says "chưa ký số"; nothing is lost and ``sohoa sign`` finishes it.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from models import DocumentRecord, InvalidCaseId, NotFound, OcrPage, SohoaError
from models.extraction import extract_fields
from models.result_code import result_code_for
from pipeline import keyring
from storage import job_events
from flows.common import open_archive, settings
from storage.config import Settings

log = logging.getLogger(__name__)

# Backfills run with this operator name (flows/backfill.py): no operator was at the desk, so the
# agency signs alone.
BACKFILL_OPERATOR = "backfill"
UNSIGNED_VI = "chưa ký số"
UNSIGNED_EN = "not signed"
OPERATOR_UNSIGNED_VI = "chưa có chữ ký số của người số hóa"


def signing_config() -> keyring.SigningConfig:
    """The key configuration under the data directory (or SOHOA_KEYS_DIR)."""
    return keyring.load_signing_config(keyring.keys_dir_for(settings().data_dir))


def extract_from_ocr_json(ocr_json: Path) -> list[dict[str, Any]]:
    """The extracted fields of a document, from its ocr.json (words with boxes)."""
    data = json.loads(Path(ocr_json).read_text(encoding="utf-8"))
    pages = [(int(p["number"]), OcrPage.from_dict(p["ocr"])) for p in data.get("pages", []) if p.get("ocr")]
    return [f.to_dict() for f in extract_fields(pages)]


def result_code_of(case_id: str, document_id: str) -> str | None:
    """The result code, or None for a case ID that is not a real one (provisional)."""
    try:
        return result_code_for(case_id, document_id)
    except (InvalidCaseId, ValueError):
        return None


def sign_file(pdf_path: Path, *, operator: str | None, result_code: str | None,
              config: keyring.SigningConfig | None = None, with_operator: bool = True,
              with_agency: bool = True) -> dict[str, Any]:
    """Sign one PDF in place; returns the signing part of a report (status, signatures, message)."""
    from pipeline import sign

    config = config or signing_config()
    if not config.can_sign and with_agency:
        return {"status": "unsigned", "signatures": [], "test_keys": False,
                "message_vi": f"{UNSIGNED_VI}: chưa cấu hình khóa ký của cơ quan",
                "message_en": f"{UNSIGNED_EN}: no agency signing key is configured (sohoa keys init-test for test keys)"}
    with_operator = with_operator and operator not in (None, BACKFILL_OPERATOR)
    try:
        infos = sign.sign_pdf(pdf_path, config=config, operator=operator, result_code=result_code,
                              with_operator=with_operator, with_agency=with_agency)
    except SohoaError as exc:
        log.warning("signing %s failed: %s", pdf_path.name, exc.message_en)
        return {"status": "unsigned", "signatures": [], "test_keys": config.test,
                "message_vi": f"{UNSIGNED_VI}: {exc.message_vi}", "message_en": f"{UNSIGNED_EN}: {exc.message_en}"}
    signatures = [{"role": i.role, "signer": i.signer, "signed_at": i.signed_at, "level": i.level, "test": i.test}
                  for i in infos]
    note_en = note_vi = ""
    if with_operator and not any(i.role == "operator" for i in infos):
        note_vi = f"; {OPERATOR_UNSIGNED_VI} ({operator} chưa có khóa ký cá nhân)"
        note_en = f"; operator {operator} has no personal signing key"
    return {"status": "signed", "signatures": signatures, "test_keys": config.test,
            "message_vi": "đã ký số" + (" bằng KHÓA THỬ NGHIỆM (TEST)" if config.test else "") + note_vi,
            "message_en": "signed" + (" with TEST keys" if config.test else "") + note_en}


def finish_document(*, case_id: str, document_id: str, operator: str | None, searchable_pdf: Path,
                    ocr_json: Path) -> dict[str, Any]:
    """Extract, code and sign a freshly built searchable PDF (in place), before it is stored."""
    extracted = extract_from_ocr_json(ocr_json)
    code = result_code_of(case_id, document_id)
    signing = sign_file(searchable_pdf, operator=operator, result_code=code)
    return {"result_code": code, "extracted": extracted, "signing": signing}


def sign_stored(case_id: str, document_id: str, *, config: keyring.SigningConfig | None = None,
                as_operator: str | None = None, where: Settings | None = None) -> dict[str, Any]:
    """Sign a stored document: a new version of its searchable PDF; manifest and catalog updated.

    By the agency (``sohoa sign``), or, with ``as_operator``, by the operator who digitized it and had
    no key then (the document page's button): the operator's signature is added after the agency's.
    ``where``: the store and catalog (the web app's own settings; default the environment's).
    """
    where = where or settings()
    archive = open_archive(where)
    rec = next((r for r in archive.manifest_records(case_id) if r.document_id == document_id), None)
    if rec is None or not rec.keys.get("searchable_pdf"):
        raise NotFound(f"Document {document_id} of case {case_id} has no searchable PDF in the store.",
                       f"Tài liệu {document_id} của hồ sơ {case_id} không có PDF trong kho.")
    config = config or keyring.load_signing_config(keyring.keys_dir_for(where.data_dir))
    work = Path(tempfile.mkdtemp(prefix="sohoa-sign-", dir=_work_root(where)))
    try:
        local = work / "searchable.pdf"
        archive.store.get_file(rec.keys["searchable_pdf"], local)
        code = rec.result_code or result_code_of(case_id, document_id)
        if as_operator is not None:
            if as_operator != rec.operator:
                raise NotFound(f"Document {document_id} was not digitized by {as_operator}.",
                               f"Tài liệu {document_id} không do {as_operator} số hóa.")
            signing = sign_file(local, operator=as_operator, result_code=code, config=config, with_agency=False)
        else:
            # The agency's act: the operator's own signature is theirs to add (as_operator).
            signing = sign_file(local, operator=rec.operator, result_code=code, config=config, with_operator=False)
        if signing["status"] != "signed" or not signing["signatures"]:
            return {"case_id": case_id, "document_id": document_id, "result_code": code, "signing": signing}
        archive.store_derived(case_id=case_id, document_id=document_id, role="searchable_pdf", path=local,
                              content_type="application/pdf", source_sha256=rec.source_sha256)
        extracted = rec.extracted
        if not extracted and rec.keys.get("ocr_json"):
            ocr_local = work / "ocr.json"
            archive.store.get_file(rec.keys["ocr_json"], ocr_local)
            extracted = extract_from_ocr_json(ocr_local)
        updated = DocumentRecord(**{**rec.to_manifest(), "result_code": code,
                                    "signatures": [*rec.signatures, *signing["signatures"]],
                                    "extracted": extracted})
        archive.record(updated)
        job_events.document_changed(archive.catalog.engine, "document.signed", updated)
        return {"case_id": case_id, "document_id": document_id, "result_code": code, "signing": signing}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _work_root(where: Settings | None = None) -> Path:
    root = (where or settings()).data_dir / "work"
    root.mkdir(parents=True, exist_ok=True)
    return root


def document_signatures(case_id: str, document_id: str) -> list[dict[str, Any]]:
    """Signer, time, PAdES level and validity of each signature on a stored document's searchable PDF.

    An empty list means "chưa ký số". The web's document page calls ``stored_pdf_signatures`` with
    its own store.
    """
    archive = open_archive()
    rec = next((r for r in archive.manifest_records(case_id) if r.document_id == document_id), None)
    if rec is None or not rec.keys.get("searchable_pdf"):
        raise NotFound(f"Document {document_id} of case {case_id} has no searchable PDF in the store.",
                       f"Tài liệu {document_id} của hồ sơ {case_id} không có PDF trong kho.")
    return stored_pdf_signatures(archive.store, rec.keys["searchable_pdf"], data_dir=settings().data_dir)


def stored_pdf_signatures(store: Any, key: str, *, data_dir: Path) -> list[dict[str, Any]]:
    """Verify the signatures of the PDF at ``key`` in ``store`` against the configured trust roots."""
    from pipeline.sign import verify_pdf

    config = keyring.load_signing_config(keyring.keys_dir_for(data_dir))
    work_root = data_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sohoa-sigs-", dir=work_root))
    try:
        local = work / "searchable.pdf"
        store.get_file(key, local)
        return [{"field": c.field, "role": "operator" if c.field.endswith("Operator") else "agency",
                 "signer": c.signer, "signed_at": c.signed_at, "timestamp": c.timestamp, "level": c.level,
                 "valid": c.ok, "problems": c.problems}
                for c in verify_pdf(local, trust_roots=config.trust_roots)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
