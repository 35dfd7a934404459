"""Reading dossiers for the surfaces: which cases and hits a principal may see, and the bytes of their files.

Both surfaces (cli/, web/) call these; the access decision itself is ``models.policy.decide``. The
unit filter is applied *inside* the query (a user never receives another unit's rows to filter
later), and checked again on every row as a second line.
"""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import CaseId, DocumentRecord, InvalidCaseId, NotFound, SearchHit, StoredObject
from models.policy import unit_of
from storage import cache
from storage.catalog import Catalog
from storage.objectstore import CHUNK, ObjectStore

DOCUMENT_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-_")


def parse_case_id(text: str) -> str:
    """A case ID from a URL, validated before it reaches storage (raises InvalidCaseId)."""
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidCaseId(str(text)[:64])
    return str(CaseId.parse(text))


def valid_document_id(text: str) -> bool:
    """True for a document id as the pipeline makes them (lower-case hex/letters, digits, - and _)."""
    return 0 < len(text) <= 128 and set(text) <= DOCUMENT_ID_CHARS and not text.startswith(("-", "_"))


@dataclass
class CaseHits:
    """The hits of one case in a search, best first."""

    case_id: str
    score: float
    hits: list[SearchHit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "score": self.score,
                "hits": [h.to_dict() for h in self.hits]}


class CaseResults(list):  # list[CaseHits]
    """Search results grouped by case; ``capped`` when the catalog ranked only its window of matches."""

    capped: bool = False


def search_cases(catalog: Catalog, query: str, *, units: Collection[str], unit: str | None = None,
                 since: dt.date | None = None, until: dt.date | None = None, kind: str | None = None,
                 limit: int = 50) -> CaseResults:
    """Search the pages of the cases of ``units`` (narrowed to ``unit``), grouped by case, best case first."""
    allowed = sorted(set(units) if unit is None else set(units) & {unit})
    out = CaseResults()
    if not allowed or not query.strip():
        return out
    found = catalog.search(query, units=allowed, since=since, until=until, kind=kind, limit=limit)
    out.capped = bool(getattr(found, "capped", False))
    hits = list(found)
    groups: dict[str, CaseHits] = {}
    for h in hits:
        if unit_of(h.case_id) not in allowed:  # second line of defence: never show another unit's row
            continue
        g = groups.setdefault(h.case_id, CaseHits(case_id=h.case_id, score=h.score))
        g.score = max(g.score, h.score)
        g.hits.append(h)
    out.extend(sorted(groups.values(), key=lambda g: -g.score))
    return out


def list_cases(catalog: Catalog, *, units: Collection[str], unit: str | None = None, since: dt.date | None = None,
               until: dt.date | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Cases of ``units`` (narrowed to ``unit``), newest received first, as plain dicts."""
    allowed = sorted(set(units) if unit is None else set(units) & {unit})
    if not allowed:
        return []
    rows = catalog.list_cases(units=allowed, since=since, until=until, limit=limit, offset=offset)
    return [r.to_dict() for r in rows if unit_of(r.case_id) in allowed]


def case_documents(catalog: Catalog, case_id: str) -> list[DocumentRecord]:
    """The catalogued documents of a case (empty when the case is unknown)."""
    return catalog.documents_for_case(case_id)


def case_document(catalog: Catalog, case_id: str, document_id: str) -> DocumentRecord:
    """One document of one case, with its pages; NotFound when that case has no such document."""
    for rec in catalog.documents_for_case(case_id, with_pages=True):
        if rec.document_id == document_id:
            return rec
    raise NotFound(f"No document {document_id} in case {case_id}.", f"Không có tài liệu {document_id} trong hồ sơ {case_id}.")


def preflight_notes(manifest: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """document_id → the preflight issues recorded in the case manifest (empty for older manifests)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in (manifest or {}).get("documents", []):
        out[entry.get("document_id", "")] = list(entry.get("preflight") or [])
    return out


# ------------------------------------------------------------------------------------- bytes
def local_copy(store: ObjectStore, key: str, cache_dir: Path) -> tuple[Path, StoredObject]:
    """A local file with the object's bytes, cached by SHA-256 (so a changed object is fetched again)."""
    st = store.stat(key)
    if st is None:
        raise NotFound(f"{key} is not in the store.", f"{key} không có trong kho.")
    path = cache_dir / st.sha256[:2] / st.sha256
    if path.exists():
        cache.touch(path)  # least recently used goes first when the cache is pruned
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.fill(path, lambda part: store.get_file(key, part))
    return path, st


def read_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start..end`` (inclusive) of a file in 1 MiB chunks, so memory stays flat however large."""
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


class _Pipe(io.RawIOBase):
    """A write-only, non-seekable sink whose bytes the zip generator hands out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def zip_stream(files: list[tuple[str, Path]]) -> Iterator[bytes]:
    """A ZIP of local files, produced piece by piece (stored, not deflated: PDFs are compressed already)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for arcname, path in files:
            info = zipfile.ZipInfo(arcname, date_time=dt.datetime.now().timetuple()[:6])
            with zf.open(info, "w", force_zip64=path.stat().st_size > 2**31) as out, open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()
