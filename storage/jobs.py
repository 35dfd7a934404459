"""Durable scan jobs: rows in the catalog database, files under ``$SOHOA_DATA_DIR/jobs/<id>/``.

Several service replicas share one database and one data folder, so nothing about a job lives only
in a process's memory. An upload is written under ``jobs/.incoming/`` while it streams (hashed as
it goes), moved into place with one rename, and only then is the job's row inserted: a job row
always points at complete files, and a half-finished upload is a stray ``.incoming`` folder that
``discard_stale_uploads`` removes. A service works on a job only while it holds the job's lease
(owner + expiry in the row, renewed by a heartbeat); a crashed owner's lease runs out, or is taken
at once by a service on the same host that sees the owner's process is gone.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from models import CaseId, InvalidCaseId, JobConflict, NotFound
from models.clock import day_start
from models.jobs import (
    CHECKED,
    RECEIVED,
    RUNNABLE,
    JobDocument,
    JobFile,
    JobPage,
    ScanJob,
)
from storage import job_events
from storage.catalog import Catalog
from storage.uploads import INCOMING, Upload

DEFAULT_UPLOAD_LIMIT = 500 * 1024 * 1024
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")

metadata = sa.MetaData()
scan_jobs = sa.Table(
    "scan_jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("case_id", sa.String(64)),
    sa.Column("agency", sa.String(16)),
    sa.Column("operator", sa.String(128)),
    sa.Column("kind", sa.String(64)),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("options", sa.JSON(), nullable=False),
    sa.Column("files", sa.JSON(), nullable=False),
    sa.Column("documents", sa.JSON(), nullable=False),
    sa.Column("stack", sa.JSON(none_as_null=True)),
    sa.Column("hold", sa.JSON(none_as_null=True)),
    sa.Column("error", sa.JSON(none_as_null=True)),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.Column("next_attempt_at", sa.Float()),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", sa.Float()),
)
scan_job_pages = sa.Table(
    "scan_job_pages", metadata,
    sa.Column("job_id", sa.String(32), sa.ForeignKey("scan_jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer(), primary_key=True),
    sa.Column("file", sa.Text(), nullable=False),
    sa.Column("file_page", sa.Integer(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("verdict", sa.JSON(none_as_null=True)),
    sa.Column("qr", sa.Text()),
    sa.Column("thumbnail", sa.Text()),
)
scan_services = sa.Table(
    "scan_services", metadata,
    sa.Column("instance", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("started_at", sa.Float(), nullable=False),
    sa.Column("heartbeat_at", sa.Float(), nullable=False),
    sa.Column("ready", sa.Boolean(), nullable=False),
)


def valid_job_id(job_id: str) -> str:
    """A job id from a URL or a command line, checked before it reaches a path or a query."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise NotFound(f"No scan job {job_id!r}.", f"Không có lượt quét {job_id!r}.")
    return job_id


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore:
    """Scan jobs in the catalog database and their files under ``root`` (``$SOHOA_DATA_DIR/jobs``)."""

    def __init__(self, catalog: Catalog, root: Path, *, upload_limit: int = DEFAULT_UPLOAD_LIMIT) -> None:
        self.catalog = catalog
        self.root = Path(root)
        self.upload_limit = upload_limit
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------- plumbing
    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.catalog._tx() as conn:  # noqa: SLF001 - one place maps database errors to ours
            yield conn

    def job_dir(self, job_id: str) -> Path:
        return self.root / valid_job_id(job_id)

    def path_of(self, job_id: str, rel: str) -> Path:
        """A file of a job by its recorded relative path, refusing anything outside the job folder."""
        base = self.job_dir(job_id).resolve()
        target = (base / rel).resolve()
        if base not in target.parents:
            raise NotFound(f"No such file in job {job_id}.", f"Không có tệp này trong lượt quét {job_id}.")
        return target

    # ------------------------------------------------------------------------- creating
    @contextmanager
    def upload(self, *, limit: int | None = None) -> Iterator[Upload]:
        """An upload in progress; whatever is not committed when the block ends is removed."""
        up = Upload(self, limit or self.upload_limit)
        try:
            yield up
        finally:
            if up.dir.exists():
                up.discard()

    def commit(self, up: Upload, *, case_id: str | None, operator: str | None, kind: str | None = None,
               origin: str = "desk", on_rescan: str = "hold", review_split: bool = False,
               jobs: int | None = None, units: Iterable[str] | None = None, unit: str | None = None) -> ScanJob:
        """Make the complete upload a job: one rename of its folder, then the row (the commit point).

        ``unit``: the unit of a stack uploaded without a case ID (its cover sheets name the cases).
        """
        case = str(CaseId.parse(case_id)) if case_id else None
        agency = _agency(case) or unit
        if not up.files:
            raise JobConflict("The upload holds no file.", "Chưa có tệp nào được tải lên.")
        job_id = uuid.uuid4().hex
        os.replace(up.dir, self.root / job_id)
        now = time.time()
        job = ScanJob(id=job_id, status=RECEIVED, case_id=case, operator=operator, kind=kind, origin=origin,
                      on_rescan=on_rescan, review_split=review_split, files=list(up.files), created_at=now,
                      updated_at=now, agency=agency)
        try:
            with self._tx() as conn:
                conn.execute(scan_jobs.insert().values(
                    id=job.id, status=job.status, case_id=case, agency=agency, operator=operator, kind=kind,
                    origin=origin, options={"on_rescan": on_rescan, "review_split": review_split, "jobs": jobs,
                                            # the uploader's units: a cover sheet of another unit's case is refused
                                            "units": sorted(units) if units is not None else None},
                    files=[vars(f) for f in job.files], documents=[], attempts=0, created_at=now,
                    updated_at=now))
        except BaseException:
            shutil.rmtree(self.root / job_id, ignore_errors=True)
            raise
        return job

    def create(self, paths: list[Path], **kwargs: Any) -> ScanJob:
        """Copy local files into a new job (``sohoa scan``)."""
        with self.upload() as up:
            for path in paths:
                up.add_path(Path(path))
            return self.commit(up, **kwargs)

    # ------------------------------------------------------------------------- reading
    def get(self, job_id: str) -> ScanJob | None:
        job_id = valid_job_id(job_id)
        with self._tx() as conn:
            row = conn.execute(sa.select(scan_jobs).where(scan_jobs.c.id == job_id)).first()
            if row is None:
                return None
            page_rows = conn.execute(sa.select(scan_job_pages).where(scan_job_pages.c.job_id == job_id)
                                     .order_by(scan_job_pages.c.number)).all()
        return _job(row, page_rows)

    def require(self, job_id: str) -> ScanJob:
        job = self.get(job_id)
        if job is None:
            raise NotFound(f"No scan job {job_id}.", f"Không có lượt quét {job_id}.")
        return job

    def list_jobs(self, *, operator: str | None = None, since: float | None = None,
                  agencies: Iterable[str] | None = None, limit: int = 200) -> list[ScanJob]:
        """Jobs newest first, optionally one operator's, since a time, of some agencies (without pages)."""
        q = sa.select(scan_jobs).order_by(scan_jobs.c.created_at.desc()).limit(limit)
        if operator is not None:
            q = q.where(scan_jobs.c.operator == operator)
        if since is not None:
            q = q.where(scan_jobs.c.created_at >= since)
        if agencies is not None:
            q = q.where(scan_jobs.c.agency.in_(list(agencies)))
        with self._tx() as conn:
            return [_job(r, ()) for r in conn.execute(q).all()]

    def todays_cases(self, *, units: Iterable[str], day: dt.date, limit: int = 200) -> list[str]:
        """Case IDs received on ``day`` (the date inside the case ID) in these units: scan jobs and the catalog."""
        from storage.catalog_schema import cases

        units = sorted(units)
        if not units:
            return []
        start = day_start(day)
        with self._tx() as conn:
            from_jobs = conn.execute(sa.select(scan_jobs.c.case_id).where(
                scan_jobs.c.agency.in_(units), scan_jobs.c.created_at >= start,
                scan_jobs.c.case_id.is_not(None)).distinct()).scalars().all()
            from_catalog = conn.execute(sa.select(cases.c.case_id).where(
                cases.c.agency.in_(units), cases.c.received_on == day).limit(limit)).scalars().all()
        stamp = day.strftime("%y%m%d")
        return sorted({c for c in [*from_jobs, *from_catalog] if c and f"-{stamp}-" in c} | set(from_catalog))[:limit]

    # ------------------------------------------------------------------------- operator actions
    def confirm(self, job_id: str, *, case_id: str | None = None) -> ScanJob:
        """The operator says "store": a held job goes on (with the case ID for pages that had none)."""
        job = self.require(job_id)
        if job.status != CHECKED:
            raise JobConflict(f"Job {job_id} is {job.status}, not waiting for the operator.",
                              f"Lượt quét đang ở trạng thái '{job.status_vi}', không chờ xác nhận.")
        values: dict[str, Any] = {"hold": None, "updated_at": time.time()}
        options = dict(_options(self, job_id))
        options["confirmed"] = True
        values["options"] = options
        if case_id:
            case = str(CaseId.parse(case_id))
            values.update(case_id=case, agency=_agency(case), stack=None, status=RECEIVED)
        with self._tx() as conn:
            conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id, scan_jobs.c.status == CHECKED)
                         .values(**values))
        return self.require(job_id)

    # ------------------------------------------------------------------------- the service's side
    def due_jobs(self, *, limit: int = 10, now: float | None = None) -> list[str]:
        """Ids of jobs a service may take now: runnable, lease free, next attempt due, not held."""
        now = time.time() if now is None else now
        q = (sa.select(scan_jobs.c.id).where(
            scan_jobs.c.status.in_(RUNNABLE),
            sa.or_(scan_jobs.c.lease_until.is_(None), scan_jobs.c.lease_until < now),
            sa.or_(scan_jobs.c.next_attempt_at.is_(None), scan_jobs.c.next_attempt_at <= now),
            sa.or_(scan_jobs.c.status != CHECKED, scan_jobs.c.hold.is_(None)),
        ).order_by(scan_jobs.c.created_at).limit(limit))
        with self._tx() as conn:
            return list(conn.execute(q).scalars())

    def claim(self, job_id: str, owner: str, *, lease: float, now: float | None = None) -> bool:
        """Take the job's lease if it is free; True when this owner now holds it."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            result = conn.execute(scan_jobs.update().where(
                scan_jobs.c.id == job_id, scan_jobs.c.status.in_(RUNNABLE),
                sa.or_(scan_jobs.c.lease_until.is_(None), scan_jobs.c.lease_until < now,
                       scan_jobs.c.lease_owner == owner),
            ).values(lease_owner=owner, lease_until=now + lease))
            return result.rowcount == 1

    def renew(self, owner: str, *, lease: float) -> int:
        """Extend every lease ``owner`` holds (the heartbeat)."""
        with self._tx() as conn:
            return conn.execute(scan_jobs.update().where(scan_jobs.c.lease_owner == owner)
                                .values(lease_until=time.time() + lease)).rowcount

    def release(self, job_id: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id, scan_jobs.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))

    def update(self, job_id: str, **values: Any) -> None:
        """Set job fields (status, documents, stack, hold, error, attempts, next_attempt_at…)."""
        if "documents" in values:
            values["documents"] = [vars(d) if isinstance(d, JobDocument) else d for d in values["documents"]]
        values["updated_at"] = time.time()
        with self._tx() as conn:
            conn.execute(scan_jobs.update().where(scan_jobs.c.id == job_id).values(**values))
        if "status" in values:  # the e-system's webhooks hear of it (never blocks: see storage/job_events.py)
            job_events.job_changed(self, job_id, values["status"])

    def set_page(self, job_id: str, page: JobPage, *, expect_version: int | None = None) -> bool:
        """Insert or update one page; with ``expect_version`` only if it was not replaced meanwhile."""
        values = {"file": page.file, "file_page": page.file_page, "version": page.version, "status": page.status,
                  "verdict": page.verdict, "qr": page.qr, "thumbnail": page.thumbnail}
        with self._tx() as conn:
            q = scan_job_pages.update().where(scan_job_pages.c.job_id == job_id,
                                              scan_job_pages.c.number == page.number)
            if expect_version is not None:
                q = q.where(scan_job_pages.c.version == expect_version)
            if conn.execute(q.values(**values)).rowcount:
                return True
            if expect_version is not None and expect_version != 1:
                return False
            exists = conn.execute(sa.select(scan_job_pages.c.number).where(
                scan_job_pages.c.job_id == job_id, scan_job_pages.c.number == page.number)).first()
            if exists:
                return False
            conn.execute(scan_job_pages.insert().values(job_id=job_id, number=page.number, **values))
            return True

    def release_dead_owners(self, *, host: str | None = None, alive: Callable[[int], bool] = pid_alive) -> int:
        """Free the leases held by services of this host whose process is gone (restart after a crash)."""
        host = host or this_host()
        freed = 0
        with self._tx() as conn:
            owners = conn.execute(sa.select(scan_jobs.c.lease_owner).where(
                scan_jobs.c.lease_owner.is_not(None)).distinct()).scalars().all()
            for owner in owners:
                parts = owner.rsplit(":", 2)
                if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                    continue
                if not alive(int(parts[1])):
                    freed += conn.execute(scan_jobs.update().where(scan_jobs.c.lease_owner == owner)
                                          .values(lease_owner=None, lease_until=None)).rowcount
        return freed

    def discard_stale_uploads(self, *, older_than: float = 600.0) -> int:
        """Remove unfinished uploads nobody has written to for ``older_than`` seconds, and job folders without a row."""
        removed = 0
        now = time.time()
        incoming = self.root / INCOMING
        if incoming.is_dir():
            for d in incoming.iterdir():
                if now - _newest_mtime(d) > older_than:
                    shutil.rmtree(d, ignore_errors=True)
                    removed += 1
        with self._tx() as conn:
            known = set(conn.execute(sa.select(scan_jobs.c.id)).scalars())
        for d in self.root.iterdir():
            if _JOB_ID.match(d.name) and d.name not in known and now - _newest_mtime(d) > older_than:
                shutil.rmtree(d, ignore_errors=True)  # renamed into place, then the row insert failed
                removed += 1
        return removed

    # ------------------------------------------------------------------------- service registry
    def heartbeat(self, instance: str, *, ready: bool, started_at: float) -> None:
        """Say this service instance is alive (and whether Prefect is ready) — ``sohoa scan`` looks here."""
        host, pid = this_host(), os.getpid()
        now = time.time()
        with self._tx() as conn:
            done = conn.execute(scan_services.update().where(scan_services.c.instance == instance)
                                .values(heartbeat_at=now, ready=ready)).rowcount
            if not done:
                conn.execute(scan_services.insert().values(instance=instance, host=host, pid=pid,
                                                           started_at=started_at, heartbeat_at=now, ready=ready))

    def stop_service(self, instance: str) -> None:
        with self._tx() as conn:
            conn.execute(scan_services.delete().where(scan_services.c.instance == instance))

    def live_services(self, *, within: float = 15.0, ready_only: bool = False) -> list[dict[str, Any]]:
        """Service instances that sent a heartbeat in the last ``within`` seconds (and are ready, if asked)."""
        q = sa.select(scan_services).where(scan_services.c.heartbeat_at >= time.time() - within)
        if ready_only:
            q = q.where(scan_services.c.ready.is_(True))
        with self._tx() as conn:
            rows = conn.execute(q).all()
        return [dict(r._mapping) for r in rows]


def _options(store: JobStore, job_id: str) -> dict[str, Any]:
    with store._tx() as conn:  # noqa: SLF001
        return dict(conn.execute(sa.select(scan_jobs.c.options).where(scan_jobs.c.id == job_id)).scalar_one() or {})


def _agency(case: str | None) -> str | None:
    if not case:
        return None
    try:
        return CaseId.parse(case).agency
    except InvalidCaseId:
        return None


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for p in path.rglob("*"):
        try:
            newest = max(newest, p.stat().st_mtime)
        except FileNotFoundError:
            continue
    return newest


def _job(row: sa.Row, page_rows: Iterable[sa.Row]) -> ScanJob:
    options = row.options or {}
    return ScanJob(
        id=row.id, status=row.status, case_id=row.case_id, operator=row.operator, kind=row.kind, origin=row.origin,
        on_rescan=options.get("on_rescan", "hold"), review_split=bool(options.get("review_split")),
        files=[JobFile(**f) for f in row.files or []],
        pages=[JobPage(number=p.number, file=p.file, file_page=p.file_page, version=p.version, status=p.status,
                       verdict=p.verdict, qr=p.qr, thumbnail=p.thumbnail) for p in page_rows],
        documents=[JobDocument(**d) for d in row.documents or []], stack=row.stack, hold=row.hold, error=row.error,
        attempts=row.attempts, created_at=row.created_at, updated_at=row.updated_at,
        next_attempt_at=row.next_attempt_at, agency=row.agency,
    )


def job_options(store: JobStore, job_id: str) -> dict[str, Any]:
    """The options a job was created with (on_rescan, review_split, jobs, confirmed)."""
    return _options(store, job_id)
