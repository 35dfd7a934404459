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

    number: int  # 1-based page of the stored searchable PDF (what a reader opens)
    text: str
    confidence: float | None = None
    source_page: int | None = None  # 1-based page of the scanned file (or stack) it came from


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
    # A dossier cut from a stack split by cover sheets: the whole stack's SHA-256 and the first and
    # last page (1-based, in the stack) of this dossier. None for a file ingested whole.
    stack_sha256: str | None = None
    stack_pages: list[int] | None = None
    pages: list[PageText] = field(default_factory=list)  # not written into the manifest
    preflight: list[dict[str, Any]] = field(default_factory=list)  # page warnings: {page, code, severity, message_vi, message_en}

    @property
    def signed(self) -> bool:
        """True when the agency has signed the searchable PDF."""
        return any(s.get("role") == "agency" for s in self.signatures)

    def to_manifest(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("pages")
        for name in ("stack_sha256", "stack_pages", "preflight"):  # manifests stay as they were without them
            if not d[name]:
                d.pop(name)
        return d

    @classmethod
    def from_manifest(cls, d: dict[str, Any], pages: list[PageText] | None = None) -> DocumentRecord:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "pages"}
        return cls(**d, pages=list(pages or []))


@dataclass(frozen=True)
class SearchHit:
    """A page that matches a search, best first.

    ``page`` is the page of the stored searchable PDF (open it there); ``source_page`` the page of
    the scanned file or stack it came from. ``score`` is relative relevance within the query, 0..1:
    1.0 is the best page of this query, 0.5 a page half as relevant (see ``storage.catalog_search``).
    ``snippet`` holds the matched words between « and ».
    """

    case_id: str
    document_id: str
    page: int
    snippet: str
    score: float
    source_name: str = ""
    kind: str | None = None
    source_page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (CLI --json, the web API)."""
        return asdict(self)


class SearchResults(list):  # list[SearchHit]
    """The hits of one search page, best first, and what the ranking could see.

    ``capped`` is True when more pages matched than the ranking window holds: the hits are then
    the best of the ``window`` most recently catalogued matching pages, and the user should narrow
    the search (more words, a unit, a date range).
    """

    def __init__(self, hits: list[SearchHit] | None = None, *, matched: int = 0, capped: bool = False,
                 window: int = 0) -> None:
        super().__init__(hits or [])
        self.matched = matched  # pages ranked (all matches when not capped)
        self.capped = capped
        self.window = window


@dataclass(frozen=True)
class CaseSummary:
    """One case in a list of cases: what it holds and when it was received (from its case ID)."""

    case_id: str
    agency: str | None
    received_on: str | None  # ISO date from the case ID's yymmdd; None for a provisional ID
    document_count: int
    page_count: int
    first_seen_at: str  # ISO 8601, UTC: when the catalog first saw the case
    last_stored_at: str | None  # ISO 8601, UTC: the newest document's time

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (CLI --json, the web API)."""
        return asdict(self)
