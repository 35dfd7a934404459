"""What storage keeps and returns: stored objects, catalogued documents and search hits."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StoredObject:
    """An object in the store, as verified after upload or read by ``stat``."""

    key: str
    size: int
    sha256: str
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"


@dataclass
class PageText:
    """The searchable text of one page of a stored document."""

    number: int
    text: str
    confidence: float | None = None


@dataclass
class DocumentRecord:
    """One document of a case as the per-case manifest and the catalog know it."""

    case_id: str
    document_id: str
    source_sha256: str
    source_name: str
    created_at: str  # ISO 8601, UTC
    page_count: int
    keys: dict[str, str] = field(default_factory=dict)  # role (source, searchable_pdf, ocr_json) -> key
    kind: str | None = None
    operator: str | None = None
    mean_confidence: float | None = None
    # Digitization result code (models/result_code.py), the signatures on the searchable PDF
    # ([{role, signer, signed_at, level, test}], empty = "chưa ký số") and the extracted fields
    # ([ExtractedField.to_dict()], models/extraction.py).
    result_code: str | None = None
    signatures: list[dict[str, Any]] = field(default_factory=list)
    extracted: list[dict[str, Any]] = field(default_factory=list)
    pages: list[PageText] = field(default_factory=list)  # not written into the manifest

    @property
    def signed(self) -> bool:
        """True when the agency has signed the searchable PDF."""
        return any(s.get("role") == "agency" for s in self.signatures)

    def to_manifest(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("pages")
        return d

    @classmethod
    def from_manifest(cls, d: dict[str, Any], pages: list[PageText] | None = None) -> DocumentRecord:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "pages"}
        return cls(**d, pages=list(pages or []))


@dataclass(frozen=True)
class SearchHit:
    """A page that matches a search, best first."""

    case_id: str
    document_id: str
    page: int
    snippet: str
    score: float
    source_name: str = ""
    kind: str | None = None
