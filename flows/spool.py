"""The local spool: scans that could not be sent while the store was down wait here until it is back.

Layout, one folder per scan, named after its SHA-256 (so spooling the same scan twice is one job)::

    <SOHOA_DATA_DIR>/spool/<sha256>/job.json            case, kind, operator, why it waits
    <SOHOA_DATA_DIR>/spool/<sha256>/source/<file name>  the scan, byte for byte
    <SOHOA_DATA_DIR>/spool/failed/<sha256>/…            jobs the store refused for good, with reason.txt

The intake flow writes here (``spool_scan``); ``drain_spool()`` in flows/drain.py sends the jobs
through the intake flow again and removes a job only once the flow reports it stored.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import DocumentReport, SohoaError, StorageError
from pipeline.document import document_id_for
from storage.objectstore import write_atomic

log = logging.getLogger("sohoa.spool")

JOB_FILE = "job.json"
JOB_FORMAT = "sohoa-spool/1"
SPOOL_EXIT_CODE = 5
STORED = ("stored", "already-stored")


@dataclass(frozen=True)
class SpoolJob:
    """One scan waiting in the spool, and what the counter said about it."""

    directory: Path
    sha256: str
    source_name: str
    case_id: str
    kind: str | None = None
    operator: str | None = None
    spooled_at: str = ""
    reason: str = ""
    attempts: int = 1
    # One dossier of a stack split by cover sheets: its pages and document id, replayed exactly.
    pages: tuple[int, ...] | None = None
    document_id: str | None = None
    # A dossier cut from a stack: the spooled file holds its pages only; the stack it came from.
    stack_sha256: str | None = None
    stack_pages: tuple[int, ...] | None = None

    @property
    def path(self) -> Path:
        """The spooled copy of the scan (it keeps the original file name, which is recorded)."""
        return self.directory / "source" / self.source_name

    def to_json(self) -> dict[str, Any]:
        return {"format": JOB_FORMAT, "sha256": self.sha256, "source_name": self.source_name,
                "case_id": self.case_id, "kind": self.kind, "operator": self.operator,
                "spooled_at": self.spooled_at, "reason": self.reason, "attempts": self.attempts,
                "pages": list(self.pages) if self.pages is not None else None, "document_id": self.document_id,
                "stack_sha256": self.stack_sha256,
                "stack_pages": list(self.stack_pages) if self.stack_pages else None}

    @classmethod
    def load(cls, directory: Path) -> SpoolJob:
        d = json.loads((directory / JOB_FILE).read_text("utf-8"))
        return cls(directory=directory, sha256=d["sha256"], source_name=d["source_name"], case_id=d["case_id"],
                   kind=d.get("kind"), operator=d.get("operator"), spooled_at=d.get("spooled_at", ""),
                   reason=d.get("reason", ""), attempts=int(d.get("attempts", 1)),
                   pages=tuple(d["pages"]) if d.get("pages") is not None else None,
                   document_id=d.get("document_id"), stack_sha256=d.get("stack_sha256"),
                   stack_pages=tuple(d["stack_pages"]) if d.get("stack_pages") else None)


def spool_root() -> Path:
    """``<SOHOA_DATA_DIR>/spool``."""
    from flows.common import settings

    return settings().data_dir / "spool"


def _job_dir(root: Path, sha256: str, case_id: str, document_id: str | None = None) -> Path:
    # The same scan for two different cases (or two dossiers of one stack) is two jobs; else one.
    directory = root / sha256
    job = directory / JOB_FILE
    if job.is_file():
        try:
            d = json.loads(job.read_text("utf-8"))
            if (d.get("case_id"), d.get("document_id")) != (case_id, document_id):
                directory = root / f"{sha256}-{document_id_for(sha256 + case_id + (document_id or ''))[:12]}"
        except ValueError:
            pass  # an unreadable job.json is rewritten below
    return directory


def spool_scan(path: Path, *, sha256: str, case_id: str, kind: str | None, operator: str | None,
               reason: SohoaError, root: Path | None = None, pages: tuple[int, ...] | None = None,
               document_id: str | None = None, stack_sha256: str | None = None,
               stack_pages: tuple[int, ...] | None = None) -> SpoolJob:
    """Keep a copy of the scan and its job in the spool (idempotent: spooling it again updates the job)."""
    root = root or spool_root()
    path = Path(path)
    try:
        return _spool_scan(path, root, sha256=sha256, case_id=case_id, kind=kind, operator=operator,
                           reason=reason, pages=pages, document_id=document_id, stack_sha256=stack_sha256,
                           stack_pages=stack_pages)
    except OSError as exc:
        raise StorageError(
            f"The document store cannot be reached ({reason.message_en}) and the scan {path.name} could not be "
            f"kept in the local spool {root} ({exc.strerror or exc}); keep the file or the paper and scan again "
            "later.",
            f"Không kết nối được kho lưu trữ và không thể giữ bản quét {path.name} trong hàng đợi {root} "
            f"({exc.strerror or exc}); hãy giữ lại tệp hoặc bản giấy và quét lại sau.") from exc


def _spool_scan(path: Path, root: Path, *, sha256: str, case_id: str, kind: str | None, operator: str | None,
                reason: SohoaError, pages: tuple[int, ...] | None, document_id: str | None,
                stack_sha256: str | None = None, stack_pages: tuple[int, ...] | None = None) -> SpoolJob:
    from pipeline.reader import sha256_of

    directory = _job_dir(root, sha256, case_id, document_id)
    source_dir = directory / "source"
    source_dir.mkdir(parents=True, exist_ok=True)
    copy = source_dir / path.name
    previous = None
    if (directory / JOB_FILE).is_file():
        try:
            previous = SpoolJob.load(directory)
        except (ValueError, KeyError):
            previous = None
    if copy.resolve() != path.resolve() and not (copy.is_file() and sha256_of(copy) == sha256):
        with open(path, "rb") as src:
            write_atomic(copy, lambda out: shutil.copyfileobj(src, out, 1024 * 1024))
        if sha256_of(copy) != sha256:
            copy.unlink(missing_ok=True)
            raise OSError(f"the copy does not match the SHA-256 {sha256} (the file changed while it was copied)")
    job = SpoolJob(directory=directory, sha256=sha256, source_name=path.name, case_id=case_id, kind=kind,
                   operator=operator, spooled_at=previous.spooled_at if previous else _now(),
                   reason=reason.message_en, attempts=(previous.attempts + 1) if previous else 1,
                   pages=pages, document_id=document_id, stack_sha256=stack_sha256, stack_pages=stack_pages)
    body = json.dumps(job.to_json(), ensure_ascii=False, indent=1).encode()
    write_atomic(directory / JOB_FILE, lambda out: out.write(body))
    log.warning("spooled %s for case %s in %s: %s", path.name, case_id, directory, reason.message_en)
    return job


def spooled_report(job: SpoolJob, reason: SohoaError, *, original_stored: bool = False) -> dict[str, Any]:
    """The intake report of a spooled scan: status "spooled", exit code 5, one sentence in two languages."""
    vi = ("Kho lưu trữ không truy cập được; bản quét được giữ trong hàng đợi và sẽ gửi lại khi kho hoạt động "
          "(hoặc chạy `sohoa retry`)")
    en = ("The document store cannot be reached; the scan is kept in the local spool and will be sent when the "
          "store is back (or run `sohoa retry`)")
    if original_stored:
        vi += "; bản gốc đã được lưu"
        en += "; the original is already stored"
    detail = reason.message_en
    report = DocumentReport(source_name=job.source_name, source_sha256=job.sha256,
                            document_id=job.document_id or document_id_for(job.sha256), case_id=job.case_id,
                            kind=job.kind,
                            operator=job.operator, status="spooled")
    report.error = f"{vi}. ({en}.) [{detail}]"
    return report.to_dict() | {"message_vi": vi + ".", "message_en": f"{en}. Detail: {detail}",
                               "error_type": type(reason).__name__, "exit_code": SPOOL_EXIT_CODE,
                               "spool": str(job.directory), "page_count": 0}


def pending_jobs(root: Path | None = None) -> list[SpoolJob]:
    """Jobs waiting in the spool, oldest first (unreadable job folders are logged and left alone)."""
    root = root or spool_root()
    if not root.is_dir():
        return []
    jobs = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "failed"
                            and not p.name.startswith(".")):
        if not (directory / JOB_FILE).is_file():
            continue  # being written, or an empty leftover
        try:
            jobs.append(SpoolJob.load(directory))
        except (ValueError, KeyError) as exc:
            log.error("spool job %s is unreadable (%s); it is left in place for a person to look at",
                      directory, exc)
    return sorted(jobs, key=lambda j: (j.spooled_at, j.directory.name))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
