"""What the one-stop e-system reads over the API: the document JSON (result code, signatures, extracted
fields, preflight verdicts) as response models, and the signature verdicts cached per stored PDF.

Verifying a PAdES signature downloads the PDF and checks chains, timestamps and revocation data: a
second or more a document. The verdicts are kept per SHA-256 of the stored PDF (a re-signed PDF is a
new object, so a new entry) for at most ``SIGNATURE_TTL`` seconds, the same bound the signing side
keeps OCSP answers, so a revoked certificate shows within minutes.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import BaseModel, Field

from models import DocumentRecord
from models.clock import local_iso

SIGNATURE_TTL = 300.0
SIGNATURE_CACHE_MAX = 2048


class Signature(BaseModel):
    """One signature on the searchable PDF, as verified against the trust roots."""

    role: str = Field(description="operator (người số hóa) or agency (cơ quan)")
    signer: str
    signed_at: str | None = Field(None, description="the time the signer's device claims")
    timestamp: str | None = Field(None, description="the RFC 3161 timestamp, ISO 8601")
    level: str = Field(description="PAdES level: PAdES-B-B, PAdES-B-T, PAdES-B-LT, PAdES-B-LTA")
    valid: bool
    problems: list[str] = Field(default_factory=list, description="why not valid (empty when valid)")


class ExtractedValue(BaseModel):
    """A field read from the OCR words (Circular 01/2023 Art. 9), where and how sure."""

    name: str = Field(description="citizen_id, document_number, document_date, document_kind, issuing_body")
    value: str
    page: int = Field(description="page of the searchable PDF it was read on")
    box: list[int] | None = Field(None, description="left, top, width, height in page-image pixels")
    confidence: float = Field(ge=0.0, le=1.0)


class PreflightVerdict(BaseModel):
    """A page's preflight warning (blur, dark, low resolution, cut off …)."""

    page: int
    code: str
    severity: str = Field(description="info, warn or rescan")
    message_vi: str
    message_en: str
    value: float | None = None


class DocumentLinks(BaseModel):
    self: str
    searchable_pdf: str
    original: str


class DocumentOut(BaseModel):
    """One stored document of a case."""

    document_id: str
    case_id: str
    source_name: str
    kind: str | None = None
    operator: str | None = None
    created_at: str
    page_count: int
    mean_confidence: float | None = None
    source_sha256: str
    result_code: str | None = Field(None, description="mã kết quả số hóa, e.g. 000.00.01.H56-181010-0001-KQ36F688361B")
    signed: bool = Field(description="true when the agency's signature is on the PDF (valid or not: see signatures)")
    signatures: list[Signature]
    extracted: list[ExtractedValue]
    preflight: list[PreflightVerdict]
    reused_from: str | None = Field(None, description="the case this e-copy was first digitized for, when reused")
    links: DocumentLinks


class PageOut(BaseModel):
    number: int
    confidence: float | None = None
    text: str


class DocumentWithPages(DocumentOut):
    pages: list[PageOut]


class CaseLinks(BaseModel):
    zip: str
    merged_pdf: str


class CaseOut(BaseModel):
    """One case and its documents."""

    case_id: str
    documents: list[DocumentOut]
    links: CaseLinks


class IdentifierHit(BaseModel):
    """A document found by its result code, a citizen ID or its number and symbol."""

    case_id: str
    document_id: str
    result_code: str | None = None
    matched: str = Field(description="result_code, citizen_id, document_number …")
    value: str
    page: int | None = Field(None, description="the page the value was read on (none for a result code)")
    kind: str | None = None
    links: DocumentLinks


class SearchOut(BaseModel):
    """Full-text hits grouped by case, and documents whose identifier equals the query."""

    query: str
    capped: bool
    identifiers: list[IdentifierHit]
    cases: list[dict[str, Any]]


def links_of(case_id: str, document_id: str) -> DocumentLinks:
    base = f"/api/v1/cases/{case_id}/documents/{document_id}"
    return DocumentLinks(self=base, searchable_pdf=f"{base}/searchable.pdf", original=f"{base}/original")


def document_out(rec: DocumentRecord, case_id: str, *, signatures: list[dict[str, Any]],
                 preflight: list[dict[str, Any]], reused_from: str | None = None) -> DocumentOut:
    """The document JSON under ``case_id`` (the case of the URL; a reused e-copy keeps its own ID)."""
    return DocumentOut(
        document_id=rec.document_id, case_id=case_id, source_name=rec.source_name, kind=rec.kind,
        operator=rec.operator, created_at=local_iso(rec.created_at) or "", page_count=rec.page_count,
        mean_confidence=rec.mean_confidence, source_sha256=rec.source_sha256, result_code=rec.result_code,
        signed=rec.signed, signatures=[Signature(**_signature_fields(s)) for s in signatures],
        extracted=[ExtractedValue(**{k: f.get(k) for k in ExtractedValue.model_fields}) for f in rec.extracted],
        preflight=[PreflightVerdict(**{k: p.get(k) for k in PreflightVerdict.model_fields}) for p in preflight],
        reused_from=reused_from, links=links_of(case_id, rec.document_id))


def _signature_fields(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s.get(k) for k in Signature.model_fields} | {"problems": list(s.get("problems") or [])}


class SignatureCache:
    """Signature verdicts by the stored PDF's SHA-256, each kept ``ttl`` seconds."""

    def __init__(self, ttl: float = SIGNATURE_TTL, max_entries: int = SIGNATURE_CACHE_MAX) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self.verifications = 0  # how many times the PDFs were really verified (tests, metrics)

    def signatures(self, store: Any, key: str, *, data_dir: Any, fresh: bool = False) -> list[dict[str, Any]]:
        """The verdicts of the PDF at ``key`` (verified again when unknown, older than the TTL or ``fresh``)."""
        from flows.signing import stored_pdf_signatures

        st = store.stat(key)
        if st is None:
            return []
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(st.sha256)
            if hit is not None and now - hit[0] < self.ttl and not fresh:
                return hit[1]
        verdicts = stored_pdf_signatures(store, key, data_dir=data_dir)
        with self._lock:
            self.verifications += 1
            if len(self._entries) >= self.max_entries:
                for old in sorted(self._entries, key=lambda k: self._entries[k][0])[: self.max_entries // 4]:
                    del self._entries[old]
            self._entries[st.sha256] = (now, verdicts)
        return verdicts


SIGNATURES = SignatureCache()


def document_signatures(services: Any, rec: DocumentRecord, *, fresh: bool = False) -> list[dict[str, Any]]:
    """The verified signatures of a document's searchable PDF (empty when it has none or is unsigned)."""
    key = rec.keys.get("searchable_pdf")
    if not key:
        return []
    return SIGNATURES.signatures(services.store, key, data_dir=services.settings.data_dir, fresh=fresh)
