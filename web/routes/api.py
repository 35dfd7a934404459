"""The JSON API under /api/v1 and the stable file URLs, for browsers (session) and e-systems (bearer token)."""
from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse

from models import DocumentRecord, NotFound
from models.clock import local_iso
from models.policy import Action, readable_units
from storage import cache, dossiers
from storage.objectstore import sha256_file
from web.deps import Ctx, guard
from web.files import disposition, file_response

router = APIRouter(prefix="/api/v1", tags=["sohoa"])

CaseRead = Annotated[Ctx, guard(Action.VIEW_CASE)]
DocRead = Annotated[Ctx, guard(Action.VIEW_DOCUMENT)]


def document_json(rec: DocumentRecord, case_id: str, preflight: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    base = f"/api/v1/cases/{case_id}/documents/{rec.document_id}"
    return {"document_id": rec.document_id, "case_id": case_id, "source_name": rec.source_name, "kind": rec.kind,
            "operator": rec.operator, "created_at": local_iso(rec.created_at), "page_count": rec.page_count,
            "mean_confidence": rec.mean_confidence, "source_sha256": rec.source_sha256,
            "preflight": preflight or [],
            "links": {"self": base, "searchable_pdf": f"{base}/searchable.pdf", "original": f"{base}/original"}}


def load_case(ctx: Ctx) -> tuple[list[DocumentRecord], dict[str, list[dict[str, Any]]]]:
    """The documents of the guarded case and their preflight notes; 404 when it has none."""
    docs = dossiers.case_documents(ctx.services.catalog, ctx.case_id)  # type: ignore[arg-type]
    if not docs:
        raise HTTPException(404, "not found")
    try:
        manifest = ctx.services.store.get_bytes(f"cases/{ctx.case_id}/manifest.json")
        import json

        notes = dossiers.preflight_notes(json.loads(manifest))
    except (NotFound, ValueError):
        notes = {}
    return docs, notes


def load_document(ctx: Ctx) -> DocumentRecord:
    try:
        return dossiers.case_document(ctx.services.catalog, ctx.case_id, ctx.document_id)  # type: ignore[arg-type]
    except NotFound:
        raise HTTPException(404, "not found") from None


def parse_day(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, "dates are YYYY-MM-DD") from None


@router.get("/cases", summary="Cases of your units, newest first (paged)")
def list_cases(ctx: Annotated[Ctx, guard(Action.LIST_CASES)], unit: str | None = None,
               since: str | None = None, until: str | None = None,
               page: Annotated[int, Query(ge=1, le=100000)] = 1,
               per_page: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    rows = dossiers.list_cases(ctx.services.catalog, units=readable_units(ctx.principal), unit=ctx.unit,
                               since=parse_day(since), until=parse_day(until), limit=per_page,
                               offset=(page - 1) * per_page)
    return {"page": page, "per_page": per_page, "cases": rows}


@router.get("/search", summary="Full-text search (with or without diacritics), grouped by case")
def search(ctx: Annotated[Ctx, guard(Action.SEARCH)], q: Annotated[str, Query(min_length=1, max_length=200)],
           unit: str | None = None, since: str | None = None, until: str | None = None,
           kind: Annotated[str | None, Query(max_length=64)] = None,
           limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    groups = dossiers.search_cases(ctx.services.catalog, q, units=readable_units(ctx.principal), unit=ctx.unit,
                                   since=parse_day(since), until=parse_day(until), kind=kind or None, limit=limit)
    return {"query": q, "capped": groups.capped, "cases": [g.to_dict() for g in groups]}


@router.get("/cases/{case}", summary="One case and its documents")
def get_case(ctx: CaseRead) -> dict[str, Any]:
    docs, notes = load_case(ctx)
    return {"case_id": ctx.case_id, "documents": [document_json(d, ctx.case_id, notes.get(d.document_id))  # type: ignore[arg-type]
                                                  for d in docs],
            "links": {"zip": f"/api/v1/cases/{ctx.case_id}/files.zip",
                      "merged_pdf": f"/api/v1/cases/{ctx.case_id}/merged.pdf"}}


@router.get("/cases/{case}/documents/{doc}", summary="One document with its page texts")
def get_document(ctx: DocRead) -> dict[str, Any]:
    rec = load_document(ctx)
    return document_json(rec, ctx.case_id) | {  # type: ignore[arg-type]
        "pages": [{"number": p.number, "confidence": p.confidence, "text": p.text} for p in rec.pages]}


def _serve_key(ctx: Ctx, key: str, *, filename: str, content_type: str, inline: bool) -> Response:
    try:
        path, st = dossiers.local_copy(ctx.services.store, key, ctx.services.cache_dir / "objects")
    except NotFound:
        raise HTTPException(404, "not found") from None
    return file_response(ctx.request, path, sha256=st.sha256, filename=filename, content_type=content_type,
                         inline=inline)


def _pdf_name(rec: DocumentRecord) -> str:
    return f"{Path(rec.source_name).stem or rec.document_id}-{rec.document_id[:8]}.pdf"


@router.head("/cases/{case}/documents/{doc}/searchable.pdf", include_in_schema=False)
@router.get("/cases/{case}/documents/{doc}/searchable.pdf",
                  summary="The searchable PDF/A (Range and ETag supported); ?download=1 for an attachment")
def searchable_pdf(ctx: Annotated[Ctx, guard(Action.DOWNLOAD_SEARCHABLE)], download: bool = False) -> Response:
    rec = load_document(ctx)
    key = rec.keys.get("searchable_pdf")
    if not key:
        raise HTTPException(404, "not found")
    return _serve_key(ctx, key, filename=_pdf_name(rec), content_type="application/pdf", inline=not download)


@router.head("/cases/{case}/documents/{doc}/original", include_in_schema=False)
@router.get("/cases/{case}/documents/{doc}/original",
                  summary="The original scan, unchanged (archivists and operators only)")
def original(ctx: Annotated[Ctx, guard(Action.DOWNLOAD_ORIGINAL)]) -> Response:
    rec = load_document(ctx)
    key = rec.keys.get("source")
    if not key:
        raise HTTPException(404, "not found")
    import mimetypes

    ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return _serve_key(ctx, key, filename=rec.source_name, content_type=ctype, inline=False)


@router.get("/cases/{case}/documents/{doc}/link",
            summary="A presigned link to the searchable PDF in the store, valid at most 15 minutes")
def link(ctx: Annotated[Ctx, guard(Action.LINK)],
         minutes: Annotated[int, Query(ge=1, le=15)] = 15) -> dict[str, Any]:
    rec = load_document(ctx)
    key = rec.keys.get("searchable_pdf")
    if not key:
        raise HTTPException(404, "not found")
    expires = dt.timedelta(minutes=minutes)
    url = ctx.services.store.presign(key, expires=min(expires, ctx.services.web.link_max))
    return {"url": url, "expires_at": (dt.datetime.now(dt.UTC) + expires).isoformat(timespec="seconds")}


@router.get("/cases/{case}/files.zip",
            summary="Every searchable PDF of the case as one ZIP (streamed); ?originals=1 adds the original "
                    "scans under originals/ (archivists and operators only)")
def case_zip(ctx: Annotated[Ctx, guard(Action.DOWNLOAD_CASE)], originals: bool = False) -> Response:
    if originals:
        ctx.require(Action.DOWNLOAD_ORIGINAL)
    docs, _ = load_case(ctx)
    objects = ctx.services.cache_dir / "objects"
    files = []
    for rec in docs:
        if rec.keys.get("searchable_pdf"):
            path, _st = dossiers.local_copy(ctx.services.store, rec.keys["searchable_pdf"], objects)
            files.append((_pdf_name(rec), path))
    if originals:
        ctx.audit(Action.DOWNLOAD_ORIGINAL, detail=f"{ctx.request.url.path}?originals=1")
        for rec in docs:
            if rec.keys.get("source"):
                path, _st = dossiers.local_copy(ctx.services.store, rec.keys["source"], objects)
                files.append((f"originals/{rec.document_id[:8]}-{Path(rec.source_name).name}", path))
    return StreamingResponse(dossiers.zip_stream(files), media_type="application/zip",
                             headers={"Content-Disposition": disposition(f"{ctx.case_id}.zip", inline=False)})


def _merged(ctx: Ctx, docs: list[DocumentRecord]) -> tuple[Path, str]:
    """The case's merged PDF (flows.common.write_case_pdf, as ``sohoa get --merged``), cached by its parts' hashes."""
    from flows.common import write_case_pdf
    from storage.archive import Archive

    hashes = []
    for rec in docs:
        if rec.keys.get("searchable_pdf"):
            st = ctx.services.store.stat(rec.keys["searchable_pdf"])
            if st is not None:
                hashes.append(f"{rec.document_id}:{st.sha256}:{rec.kind}:{rec.source_name}")
    if not hashes:
        raise HTTPException(404, "not found")
    digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()
    out = ctx.services.cache_dir / "merged" / f"{digest}.pdf"
    if out.exists():
        cache.touch(out)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
            built = write_case_pdf(ctx.case_id, Path(tmp) / "case.pdf",  # type: ignore[arg-type]
                                   archive=Archive(ctx.services.store, ctx.services.catalog))
            built.replace(out)
    return out, sha256_file(out)


@router.head("/cases/{case}/merged.pdf", include_in_schema=False)
@router.get("/cases/{case}/merged.pdf",
                  summary="The whole case as one PDF with a bookmark per document")
def merged_pdf(ctx: Annotated[Ctx, guard(Action.DOWNLOAD_CASE)], download: bool = True) -> Response:
    docs, _ = load_case(ctx)
    path, sha = _merged(ctx, docs)
    return file_response(ctx.request, path, sha256=sha, filename=f"{ctx.case_id}.pdf",
                         content_type="application/pdf", inline=not download)
