"""Validated data shared by every layer: case IDs, pages, OCR words, reports and errors."""
from __future__ import annotations

from models.case_id import CaseId
from models.errors import (
    CorruptFile,
    EmptyFile,
    EncryptedPdf,
    ImageTooLarge,
    InvalidCaseId,
    JobConflict,
    NotFound,
    OcrFailed,
    PageNeedsRescan,
    SohoaError,
    StorageError,
    StorageUnavailable,
    MissingFile,
    UnsupportedFormat,
    UploadTooLarge,
)
from models.records import CaseSummary, DocumentRecord, PageText, SearchHit, SearchResults, StoredObject
from models.document import (
    BoundingBox,
    DocumentReport,
    OcrPage,
    OcrWord,
    PageReport,
    PreflightIssue,
    Severity,
)

__all__ = [
    "BoundingBox",
    "CaseId",
    "CaseSummary",
    "CorruptFile",
    "DocumentRecord",
    "DocumentReport",
    "EmptyFile",
    "EncryptedPdf",
    "ImageTooLarge",
    "InvalidCaseId",
    "JobConflict",
    "NotFound",
    "OcrFailed",
    "OcrPage",
    "OcrWord",
    "PageNeedsRescan",
    "PageReport",
    "PageText",
    "SearchHit",
    "SearchResults",
    "PreflightIssue",
    "Severity",
    "SohoaError",
    "StorageError",
    "StorageUnavailable",
    "StoredObject",
    "MissingFile",
    "UnsupportedFormat",
    "UploadTooLarge",
]
