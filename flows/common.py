"""What every flow and command shares: settings from the environment and the archive they open."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from models import NotFound, SohoaError
from storage.archive import Archive
from storage.config import Settings, open_catalog, open_store


def settings() -> Settings:
    """Settings from the environment (SOHOA_DATA_DIR, SOHOA_S3_*, SOHOA_DATABASE_URL)."""
    return Settings.from_env()


def open_archive(config: Settings | None = None) -> Archive:
    """The object store and catalog the settings point at, opened fresh (never passed into tasks)."""
    config = config or settings()
    return Archive(open_store(config), open_catalog(config))


def failure_report(name: str, case_id: str | None, exc: SohoaError) -> dict[str, Any]:
    """A failed file or segment as a report: the typed error's sentence in both languages and its exit code."""
    return {"source_name": name, "case_id": case_id, "status": "failed", "error": exc.user_message(),
            "error_type": type(exc).__name__, "message_vi": exc.message_vi, "message_en": exc.message_en,
            "exit_code": exc.exit_code}


def write_case_pdf(case_id: str, out_path: Path, *, archive: Archive | None = None) -> Path:
    """The whole case as one PDF at ``out_path``: every document's searchable PDF in manifest order
    (oldest first), one bookmark per document titled with its kind and file name.

    Raises NotFound when the case has no searchable PDF. The CLI (``sohoa get --merged``) and the web
    download both call this.
    """
    import tempfile

    from pipeline.document import software_version
    from pipeline.pdf import merge_pdfs

    archive = archive or open_archive()
    docs = [d for d in archive.manifest_records(case_id) if d.keys.get("searchable_pdf")]
    if not docs:
        raise NotFound(f"Case {case_id} has no searchable PDF in the store.",
                       f"Hồ sơ {case_id} chưa có PDF tìm kiếm được nào trong kho.")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sohoa-merge-", dir=out_path.parent) as tmp:
        parts = []
        for n, d in enumerate(docs, 1):
            local = Path(tmp) / f"{n:04d}.pdf"
            archive.store.get_file(d.keys["searchable_pdf"], local)
            pages = f"{d.page_count} trang"
            parts.append((local, f"{n}. {d.kind or 'Tài liệu'} — {d.source_name} ({pages})"))
        return merge_pdfs(parts, out_path, title=f"Hồ sơ {case_id}", case_id=str(case_id),
                          software_version=software_version())
