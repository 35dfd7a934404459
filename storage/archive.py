"""Record keeping for the flows: originals first, derived files, per-case manifests, catalog, fixity."""
from __future__ import annotations

# The object store is the record of truth: each case has ``cases/<case>/manifest.json`` listing every
# document with its object keys and SHA-256 checksums (formats in ``storage.manifest``). The catalog
# is rebuilt from the manifests and each document's ``ocr.json`` by ``Archive.reindex``;
# ``Archive.verify`` re-reads every object.

import datetime as dt
import json
import threading
import logging
import mimetypes
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from models import CaseId, DocumentRecord, NotFound, StorageError, StoredObject
from storage.catalog import Catalog
from storage.manifest import (
    MANIFEST_FORMAT,
    PENDING_SUFFIX,
    CaseListing,
    VerifyProblem,
    mean_confidence,
    pages_from_ocr_json,
    pending_key,
    read_case_listing,
)
from storage.objectstore import (
    ObjectStore,
    entries_prefix,
    entry_key,
    manifest_key,
    ocr_key,
    searchable_key,
    sha256_file,
    sha256_of_object,
    source_key,
    stack_key,
    stack_manifest_key,
)

log = logging.getLogger(__name__)

DERIVED_ROLES = {"searchable_pdf": "application/pdf", "ocr_json": "application/json"}

_STACK_LOCKS: dict[str, threading.Lock] = {}
_STACK_LOCKS_GUARD = threading.Lock()


def _stack_lock(stack_sha256: str) -> threading.Lock:
    # stack.json is read-modify-write: serialise its writers within this process.
    with _STACK_LOCKS_GUARD:
        return _STACK_LOCKS.setdefault(stack_sha256, threading.Lock())


class Archive:
    """What the flows call to keep documents: the store holds the record, the catalog indexes it."""

    def __init__(self, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    # ------------------------------------------------------------------------------ objects
    def store_original(self, *, case_id: str | CaseId, document_id: str, source_path: Path, source_name: str,
                       ext: str, operator: str | None = None, stack_sha256: str | None = None,
                       stack_pages: list[int] | None = None) -> StoredObject:
        """Store the scan unchanged; skipped when already there, refused if a different file is."""
        case = str(case_id)
        key = source_key(case, document_id, ext)
        sha = sha256_file(Path(source_path))
        existing = self.store.stat(key)
        if existing is not None:
            if existing.sha256 == sha:
                return existing
            raise StorageError(
                f"{key} already holds a different original (sha256 {existing.sha256}, this file {sha}); "
                "originals are never overwritten.",
                f"{key} đã lưu một bản gốc khác; bản gốc không bao giờ bị ghi đè.")
        metadata = {"case-id": case, "document-id": document_id, "role": "source",
                    "source-name": unicodedata.normalize("NFC", source_name), "sha256": sha}
        if operator:
            metadata["operator"] = operator
        if stack_sha256:
            metadata["stack-sha256"] = stack_sha256
            metadata["stack-pages"] = "-".join(str(n) for n in (stack_pages or []))
        content_type = mimetypes.guess_type(f"x.{ext.lstrip('.')}")[0] or "application/octet-stream"
        stored = self.store.put_file(key, Path(source_path), metadata=metadata, content_type=content_type)
        self._write_pending(case, document_id, stored, source_name=metadata["source-name"], operator=operator)
        return stored

    def _write_pending(self, case: str, document_id: str, original: StoredObject, *, source_name: str,
                       operator: str | None) -> None:
        """List a stored original whose processing is not finished yet: no original is ever in the
        store without an entry (a disk full or an OCR failure later leaves it listed as incomplete)."""
        if self.store.exists(entry_key(case, document_id)):
            return
        pending = {"case_id": case, "document_id": document_id, "source_sha256": original.sha256,
                   "source_name": source_name, "operator": operator, "keys": {"source": original.key},
                   "checksums": {"source": original.sha256}, "state": "original-only",
                   "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        self.store.put_bytes(pending_key(case, document_id),
                             json.dumps(pending, ensure_ascii=False, indent=1, sort_keys=True).encode(),
                             content_type="application/json",
                             metadata={"case-id": case, "document-id": document_id, "role": "pending-entry"})

    # ---------------------------------------------------------------------------- stacks
    def store_stack(self, *, stack_sha256: str, source_path: Path, source_name: str, ext: str,
                    operator: str | None = None) -> StoredObject:
        """Keep a whole stack split by cover sheets once, under ``stacks/``, apart from every case.

        Each case receives only its own pages (cut losslessly); the stack itself, which holds all
        the cases' pages, is for the roles that manage intake only and is never listed with a case.
        """
        key = stack_key(stack_sha256, ext)
        existing = self.store.stat(key)
        if existing is not None and existing.sha256 == stack_sha256:
            return existing
        metadata = {"role": "stack", "sha256": stack_sha256,
                    "source-name": unicodedata.normalize("NFC", source_name)}
        if operator:
            metadata["operator"] = operator
        content_type = mimetypes.guess_type(f"x.{ext.lstrip('.')}")[0] or "application/octet-stream"
        return self.store.put_file(key, Path(source_path), metadata=metadata, content_type=content_type)

    def read_stack(self, stack_sha256: str) -> dict[str, Any] | None:
        """The record of a stack (its key, name, and which pages went to which case), or None."""
        try:
            return json.loads(self.store.get_bytes(stack_manifest_key(stack_sha256)))
        except NotFound:
            return None

    def record_stack(self, *, stack_sha256: str, key: str, source_name: str, page_count: int,
                     segments: list[dict[str, Any]]) -> None:
        """Write ``stacks/<sha>/stack.json``: the stack's key and each dossier cut from it (merged by document)."""
        with _stack_lock(stack_sha256):
            record = self.read_stack(stack_sha256) or {"format": "sohoa-stack/1", "sha256": stack_sha256,
                                                      "segments": []}
            old = json.dumps(record, sort_keys=True)
            by_doc = {(s.get("case_id"), s.get("document_id")): s for s in record.get("segments", [])}
            for seg in segments:
                by_doc[(seg.get("case_id"), seg.get("document_id"))] = dict(seg)
            record.update(key=key, source_name=unicodedata.normalize("NFC", source_name), page_count=page_count,
                          segments=sorted(by_doc.values(), key=lambda s: (s.get("pages") or [0])[0]))
            if json.dumps(record, sort_keys=True) == old:
                return
            body = json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True).encode()
            self.store.put_bytes(stack_manifest_key(stack_sha256), body, content_type="application/json",
                                 metadata={"role": "stack-record"})

    def replace_original(self, rec: DocumentRecord, *, source_path: Path, stack_sha256: str,
                         stack_pages: list[int]) -> DocumentRecord:
        """Repair: make a case's original hold only its own pages (the stack's bytes stay as an old version).

        The object store keeps the previous bytes (S3 versioning; the local folder store copies
        them under ``.versions/``). The manifest entry and the catalog row get the new checksum and
        the stack's SHA-256 and page range; derived objects are unchanged (they already held only
        the case's pages).
        """
        key = rec.keys["source"]
        keep = getattr(self.store, "keep_version", None)
        if keep is not None:
            keep(key)
        current = self.store.stat(key)
        metadata = dict(current.metadata if current else {})
        metadata.pop("sha256", None)
        metadata.update({"case-id": rec.case_id, "document-id": rec.document_id, "role": "source",
                         "stack-sha256": stack_sha256, "stack-pages": "-".join(str(n) for n in stack_pages)})
        stored = self.store.put_file(key, Path(source_path), metadata=metadata,
                                     content_type=current.content_type if current else "application/octet-stream")
        fixed = DocumentRecord(**{**rec.to_manifest(), "source_sha256": stored.sha256,
                                  "stack_sha256": stack_sha256, "stack_pages": list(stack_pages)})
        return self.record(fixed)

    def store_derived(self, *, case_id: str | CaseId, document_id: str, role: str, path: Path,
                      content_type: str, source_sha256: str) -> StoredObject:
        """Store the searchable PDF (role ``searchable_pdf``) or OCR words (``ocr_json``) of a document."""
        key = self._derived_key(str(case_id), document_id, role)
        return self.store.put_file(key, Path(path), content_type=content_type, metadata={
            "case-id": str(case_id), "document-id": document_id, "role": role, "source-sha256": source_sha256})

    @staticmethod
    def _derived_key(case_id: str, document_id: str, role: str) -> str:
        if role == "searchable_pdf":
            return searchable_key(case_id, document_id)
        if role == "ocr_json":
            return ocr_key(case_id, document_id)
        raise ValueError(f"unknown derived role {role!r}: expected one of {sorted(DERIVED_ROLES)}")

    # ----------------------------------------------------------------------------- manifest
    # Each document has its own entry object, cases/<case>/entries/<doc>.json, written only by
    # the run that stores that document: concurrent writers of one case (processes or machines)
    # never read-modify-write a shared object, so none can drop another's entry. manifest.json
    # is a derived copy of the entries for people and older tools (see _refresh_manifest); the
    # entries are what sohoa reads. A manifest.json without entries (written before entries
    # existed) is still read, and its documents are carried over.
    def read_case(self, case_id: str | CaseId) -> CaseListing:
        """Every document entry of a case, and the entries or manifest that could not be read."""
        return read_case_listing(self.store, case_id)

    def read_manifest(self, case_id: str | CaseId) -> dict[str, Any] | None:
        """The case's documents as one manifest dict (from the entries), or None when the case has none."""
        listing = self.read_case(case_id)
        if not listing.documents and listing.manifest_docs is None and not listing.problems:
            return None
        return {"format": MANIFEST_FORMAT, "case_id": str(case_id), "documents": listing.documents}

    def manifest_records(self, case_id: str | CaseId) -> list[DocumentRecord]:
        """The documents a case lists (without page texts); unreadable entries are logged and left out."""
        listing = self.read_case(case_id)
        for problem in listing.problems:
            log.warning("%s", problem.message())
        return [DocumentRecord.from_manifest(e) for e in listing.documents]

    def _write_manifest_entry(self, rec: DocumentRecord, checksums: dict[str, str]) -> None:
        case = rec.case_id
        entry = rec.to_manifest() | {"checksums": checksums}
        key = entry_key(case, rec.document_id)
        try:
            old = json.loads(self.store.get_bytes(key))
        except NotFound:
            old = None
        except ValueError:
            old = None  # an unreadable entry is replaced by the good one
        if old != entry:
            body = json.dumps(entry, ensure_ascii=False, indent=1, sort_keys=True).encode()
            self.store.put_bytes(key, body, content_type="application/json",
                                 metadata={"case-id": case, "document-id": rec.document_id, "role": "manifest-entry"})
        self._refresh_manifest(case)

    def _refresh_manifest(self, case: str, *, rounds: int = 5) -> None:
        """Rewrite manifest.json from the entries until a fresh listing shows no entry it missed.

        Every writer writes its entry first and refreshes after, so the last manifest.json written
        was built from a listing taken after every entry then present: it converges to all of them.
        A manifest.json that cannot be read is left alone for ``verify`` to report.
        """
        for _ in range(rounds):
            listing = self.read_case(case)
            if listing.manifest_bad:
                log.warning("manifest.json of %s is unreadable; it is not rewritten (the entries are kept)", case)
                return
            if listing.manifest_docs != listing.documents:
                manifest = {"format": MANIFEST_FORMAT, "case_id": case, "documents": listing.documents,
                            "derived_from": "entries", "updated_at": dt.datetime.now(dt.UTC).isoformat()}
                body = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
                self.store.put_bytes(manifest_key(case), body, content_type="application/json",
                                     metadata={"case-id": case, "role": "manifest"})
            if [k for k in self.store.list(entries_prefix(case))
                    if k.endswith(".json") and not k.endswith(PENDING_SUFFIX)] == listing.entry_keys:
                return

    def record(self, rec: DocumentRecord, *, ocr_json: bytes | None = None) -> DocumentRecord:
        """Add a document to its case's manifest, then to the catalog; returns what was catalogued.

        ``ocr_json`` (the lead's format) is stored at ``ocr.json`` when given; the page texts come from
        ``rec.pages`` or, when empty, from that ocr.json. Every key in ``rec.keys`` must exist.
        """
        keys = dict(rec.keys)
        if ocr_json is not None:
            stored = self.store.put_bytes(ocr_key(rec.case_id, rec.document_id), ocr_json,
                                          content_type="application/json",
                                          metadata={"case-id": rec.case_id, "document-id": rec.document_id,
                                                    "role": "ocr_json", "source-sha256": rec.source_sha256})
            keys["ocr_json"] = stored.key
        pages = list(rec.pages)
        if not pages and "ocr_json" in keys:
            pages = pages_from_ocr_json(ocr_json if ocr_json is not None else self.store.get_bytes(keys["ocr_json"]))
        checksums: dict[str, str] = {}
        for role, key in sorted(keys.items()):
            st = self.store.stat(key)
            if st is None:
                raise StorageError(f"Cannot record {rec.document_id}: its {role} object {key} is not in the store.",
                                   f"Không thể ghi nhận {rec.document_id}: thiếu {key} trong kho.")
            checksums[role] = st.sha256
        if "source" in checksums and checksums["source"] != rec.source_sha256:
            raise StorageError(f"The stored original {keys['source']} has sha256 {checksums['source']}, "
                               f"not {rec.source_sha256} as recorded.")
        full = DocumentRecord(**{**rec.to_manifest(), "keys": keys}, pages=pages)
        if full.mean_confidence is None:
            full.mean_confidence = mean_confidence(pages)
        self._write_manifest_entry(full, checksums)
        self.store.delete(pending_key(full.case_id, full.document_id))
        self.catalog.record_document(full)
        return full

    def is_stored(self, case_id: str | CaseId, sha256: str) -> DocumentRecord | None:
        """The manifest entry for this original when it and every object it lists are in the store."""
        for rec in self.manifest_records(case_id):
            if rec.source_sha256 == sha256 and rec.keys and all(self.store.exists(k) for k in rec.keys.values()):
                return rec
        return None

    # ------------------------------------------------------------------------ whole-store
    def manifest_cases(self) -> list[str]:
        """Case IDs that have document entries or a manifest in the store."""
        out: dict[str, None] = {}
        for key in self.store.list("cases/"):
            parts = key.split("/")
            if (len(parts) == 3 and parts[2] == "manifest.json") or (len(parts) == 4 and parts[2] == "entries"):
                out.setdefault(parts[1])
        return list(out)

    def reindex(self) -> int:
        """Rebuild the catalog from the manifests and ocr.json files; returns the number of documents."""
        self.catalog.migrate()
        self.catalog.clear()
        count = 0
        for case in self.manifest_cases():
            listing = self.read_case(case)
            for problem in listing.problems:
                log.warning("reindex: %s; that document is not catalogued", problem.message())
            records = [DocumentRecord.from_manifest(e) for e in listing.documents]
            for rec in records:
                key = rec.keys.get("ocr_json")
                if key:
                    try:
                        rec.pages = pages_from_ocr_json(self.store.get_bytes(key))
                    except NotFound:
                        log.warning("reindex: %s is missing; %s is catalogued without text", key, rec.document_id)
                self.catalog.record_document(rec)
                count += 1
        return count

    def verify(self, case_id: str | CaseId | None = None) -> list[VerifyProblem]:
        """Re-read every object listed in the manifest(s) and compare its SHA-256 (fixity check)."""
        cases = [str(case_id)] if case_id is not None else self.manifest_cases()
        problems: list[VerifyProblem] = []
        with tempfile.TemporaryDirectory(prefix="sohoa-verify-") as scratch:
            for case in cases:
                listing = self.read_case(case)
                problems.extend(listing.problems)
                problems.extend(VerifyProblem(case, doc, entry.get("keys", {}).get("source", pending_key(case, doc)),
                                              "incomplete") for doc, entry in sorted(listing.pending.items()))
                for entry in listing.documents:
                    problems += self._entry_problems(case, entry, Path(scratch))
        return problems

    def _entry_problems(self, case: str, entry: dict[str, Any], scratch: Path,
                        roles: set[str] | None = None) -> list[VerifyProblem]:
        problems = []
        checksums = dict(entry.get("checksums") or {})
        checksums.setdefault("source", entry.get("source_sha256"))
        for role, key in sorted((entry.get("keys") or {}).items()):
            if roles is not None and role not in roles:
                continue
            expected = checksums.get(role)
            try:
                actual = sha256_of_object(self.store, key, scratch)
            except NotFound:
                problems.append(VerifyProblem(case, entry.get("document_id"), key, "missing", expected))
                continue
            if expected and actual != expected:
                problems.append(VerifyProblem(case, entry.get("document_id"), key,
                                              "checksum_mismatch", expected, actual))
        return problems

    def document_problems(self, case_id: str | CaseId, document_id: str,
                          roles: set[str] | None = None) -> list[VerifyProblem]:
        """The fixity problems of one document (its objects, or those of ``roles``, re-read and hashed)."""
        entry = next((e for e in self.read_case(case_id).documents if e.get("document_id") == document_id), None)
        if entry is None:
            return []
        with tempfile.TemporaryDirectory(prefix="sohoa-verify-") as scratch:
            return self._entry_problems(str(case_id), entry, Path(scratch), roles)

    def is_catalogued(self, case_id: str | CaseId, document_id: str) -> bool:
        """True when the catalog has a row for this document of this case."""
        return any(d.document_id == document_id for d in self.catalog.documents_for_case(str(case_id)))

    def recatalog(self, case_id: str | CaseId, document_id: str) -> DocumentRecord | None:
        """Put one document back into the catalog from its manifest entry and ocr.json (heals a lost row)."""
        rec = next((r for r in self.manifest_records(case_id) if r.document_id == document_id), None)
        if rec is None:
            return None
        key = rec.keys.get("ocr_json")
        if key:
            try:
                rec.pages = pages_from_ocr_json(self.store.get_bytes(key))
            except (NotFound, ValueError, KeyError, TypeError):
                log.warning("recatalog: %s is missing or unreadable; %s is catalogued without text", key, document_id)
        self.catalog.record_document(rec)
        return rec

    def uncatalogued(self, case_id: str | CaseId | None = None) -> list[tuple[str, str]]:
        """(case, document) pairs a manifest lists but the catalog lacks (a crash between the two)."""
        out = []
        for case in [str(case_id)] if case_id is not None else self.manifest_cases():
            have = {d.document_id for d in self.catalog.documents_for_case(case)}
            try:
                out += [(case, r.document_id) for r in self.manifest_records(case) if r.document_id not in have]
            except (ValueError, TypeError, KeyError):
                continue
        return out

    @property
    def links_expire(self) -> bool:
        """False when the store's links are plain file paths (the local folder store): they never expire."""
        return bool(getattr(self.store, "presign_expires", True))

    def link(self, case_id: str | CaseId, *, expires: dt.timedelta) -> list[tuple[str, str]]:
        """(document_id, presigned URL of its searchable PDF) for every document of a case that has one."""
        return [(rec.document_id, self.store.presign(rec.keys["searchable_pdf"], expires=expires))
                for rec in self.manifest_records(case_id) if rec.keys.get("searchable_pdf")]
