"""What a case keeps in the object store: document entries, manifest, pending entries, ocr.json texts."""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from models import CaseId, DocumentRecord, NotFound, PageText
from storage.objectstore import ObjectStore, entries_prefix, entry_key, manifest_key

MANIFEST_FORMAT = "sohoa-manifest/1"
PENDING_SUFFIX = ".pending.json"


def pending_key(case_id: str, document_id: str) -> str:
    """``cases/<case>/entries/<doc>.pending.json``: an original stored, its processing not finished."""
    return entry_key(case_id, document_id).removesuffix(".json") + PENDING_SUFFIX


@dataclass(frozen=True)
class VerifyProblem:
    """One object of a manifest that is missing or whose bytes no longer match their checksum."""

    case_id: str
    document_id: str | None
    key: str
    problem: str  # "missing", "checksum_mismatch", "unreadable_manifest", "unreadable_entry", "incomplete"
    expected: str | None = None
    actual: str | None = None

    def message(self) -> str:
        """One sentence for the archivist's report."""
        if self.problem == "missing":
            return f"{self.key} is listed in the manifest of {self.case_id} but is not in the store"
        if self.problem == "checksum_mismatch":
            return f"{self.key} has sha256 {self.actual}, the manifest recorded {self.expected}"
        if self.problem == "incomplete":
            return (f"{self.key}: the original of {self.document_id} is stored but its processing did not "
                    "finish; scan the file again to finish it")
        return f"{self.key}: {self.problem}"


@dataclass
class CaseListing:
    """What the store lists for one case: its document entries and what could not be read."""

    case_id: str
    documents: list[dict[str, Any]]
    problems: list[VerifyProblem]
    entry_keys: list[str]
    manifest_docs: list[dict[str, Any]] | None  # manifest.json's documents; None when absent/unreadable
    manifest_bad: bool = False
    # Originals stored whose processing has not finished (no full entry yet): document_id -> entry.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)


def checked_entry(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("document_id"), str):
        raise ValueError("not a document entry (no document_id)")
    DocumentRecord.from_manifest(entry)  # every field a record needs is there
    return entry


def pages_from_ocr_json(data: bytes) -> list[PageText]:
    """Page texts of an ocr.json, numbered as pages of the searchable PDF.

    ``pages`` lists the pages of the searchable PDF in order: ``pdf_page`` (written since the
    catalog reports PDF pages; otherwise the position in the list, which is the same thing),
    ``number`` = the page of the source file or stack, ``text``; confidence = mean of ``ocr.words[*][5]``.
    """
    doc = json.loads(data)
    out: list[PageText] = []
    for position, page in enumerate(doc.get("pages", []), start=1):
        words = ((page.get("ocr") or {}).get("words") or [])
        confs = [float(w[5]) for w in words if len(w) > 5 and w[5] is not None]
        source = page.get("number")
        out.append(PageText(number=int(page.get("pdf_page") or position),
                            text=unicodedata.normalize("NFC", page.get("text") or ""),
                            confidence=sum(confs) / len(confs) if confs else None,
                            source_page=int(source) if source is not None else None))
    return out


def mean_confidence(pages: list[PageText]) -> float | None:
    """The mean OCR confidence of the pages that have one, or None."""
    confs = [p.confidence for p in pages if p.confidence is not None]
    return sum(confs) / len(confs) if confs else None


def read_case_listing(store: ObjectStore, case_id: str | CaseId) -> CaseListing:
    """Every document entry of a case, and the entries or manifest that could not be read."""
    case = str(case_id)
    docs: dict[str, dict[str, Any]] = {}
    problems: list[VerifyProblem] = []
    manifest_docs: list[dict[str, Any]] | None = None
    manifest_bad = False
    try:
        raw = store.get_bytes(manifest_key(case))
    except NotFound:
        raw = None
    if raw is not None:
        try:
            manifest = json.loads(raw)
            manifest_docs = [checked_entry(d) for d in manifest.get("documents", [])]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            manifest_bad = True
            problems.append(VerifyProblem(case, None, manifest_key(case), f"unreadable_manifest: {exc}"))
        else:
            docs.update((d["document_id"], d) for d in manifest_docs)
    listed = [k for k in store.list(entries_prefix(case)) if k.endswith(".json")]
    keys = [k for k in listed if not k.endswith(PENDING_SUFFIX)]
    pending: dict[str, dict[str, Any]] = {}
    for key in listed:
        if key.endswith(PENDING_SUFFIX):
            try:
                entry = json.loads(store.get_bytes(key))
                pending[entry["document_id"]] = entry
            except (NotFound, ValueError, TypeError, KeyError):
                continue
    for key in keys:
        try:
            entry = checked_entry(json.loads(store.get_bytes(key)))
        except NotFound:
            continue
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(VerifyProblem(case, key.rsplit("/", 1)[-1].removesuffix(".json"), key,
                                          f"unreadable_entry: {exc}"))
            continue
        docs[entry["document_id"]] = entry
    ordered = sorted(docs.values(), key=lambda d: (d.get("created_at") or "", d.get("document_id") or ""))
    pending = {d: e for d, e in pending.items() if d not in docs}
    return CaseListing(case, ordered, problems, keys, manifest_docs, manifest_bad, pending)
