"""The SQL catalog of cases, documents and page texts (SQLite or PostgreSQL), with its search mixed in."""
from __future__ import annotations

# The catalog is an index, not the record: ``storage.archive.Archive.reindex`` rebuilds it from the
# object store at any time. Search is in ``storage.catalog_search``, the tables in
# ``storage.catalog_schema``.

import datetime as dt
import fcntl
import time
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite

from models import (
    CaseId,
    CaseSummary,
    DocumentRecord,
    InvalidCaseId,
    PageText,
    StorageError,
    StorageUnavailable,
)
from storage.catalog_schema import (
    ACCOUNT_TABLES,
    MIGRATIONS,
    cases,
    catalog_engine,
    catalog_url,
    document_fields,
    documents,
    pages,
)
from storage.catalog_search import CatalogSearch
from storage.textsearch import fold, fts_words


def _utc(value: str | dt.datetime) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _iso(value: dt.datetime) -> str:
    return _utc(value).isoformat()


SQLITE_WRITE_ATTEMPTS = 5  # a document's catalog write is tried this often while SQLite says it is locked


# ------------------------------------------------------------------------------------ catalog
class Catalog(CatalogSearch):
    """Cases, documents and page texts in SQL, with ranked full-text search."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        super().__init__()
        self.url = catalog_url(url)
        self.engine = catalog_engine(self.url, echo=echo)

    def __repr__(self) -> str:
        return f"Catalog({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            if "no such table" in detail or "does not exist" in detail:
                raise StorageError(f"The catalog has no schema ({detail}); run the migration first.",
                                   "Cơ sở dữ liệu danh mục chưa được khởi tạo.") from exc
            raise StorageUnavailable(f"catalog database: {detail}") from exc
        except sa.exc.IntegrityError as exc:  # e.g. a result code that another document already has
            raise StorageError(f"The catalog refused a duplicate: {str(exc.orig).splitlines()[0]}.",
                               "Danh mục từ chối một bản ghi trùng lặp.") from exc
        except sa.exc.ProgrammingError as exc:
            raise StorageError(f"The catalog database refused a query: {str(exc.orig).splitlines()[0]}.",
                               "Cơ sở dữ liệu danh mục từ chối truy vấn.") from exc

    def _write(self, work) -> None:  # type: ignore[no-untyped-def]
        """Run ``work(conn)`` in one transaction; on SQLite, run it again when the database stayed locked.

        SQLite has one writer at a time; a writer waits ``busy_timeout`` for the lock, but a busy
        checkpoint or WAL recovery can still answer "database is locked" at once. The whole
        transaction is repeated (it was rolled back), never a part of it.
        """
        for attempt in range(SQLITE_WRITE_ATTEMPTS):
            try:
                with self._tx() as conn:
                    work(conn)
                return
            except StorageUnavailable as exc:
                locked = "locked" in str(exc) or "busy" in str(exc)
                if self.is_postgres or not locked or attempt == SQLITE_WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2 ** attempt)

    # --------------------------------------------------------------------------- schema
    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (creates it on an empty database)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._sqlite_migration_lock(), self._tx() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _sqlite_migration_lock(self) -> Iterator[None]:
        """One migration at a time per SQLite file, across processes (PostgreSQL: an advisory lock in env.py).

        A service and a command opening a fresh catalog together both ran Alembic: one failed with
        "table cases already exists". The lock is an flock on a file of its own beside the database,
        never on the database file (closing another descriptor of that file would drop SQLite's locks).
        """
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def drop_all(self) -> None:
        """Drop every catalog table and the migration record (tests of reindex; never in production)."""
        with self._tx() as conn:
            if self.is_postgres:
                conn.execute(sa.text("DROP TABLE IF EXISTS document_fields, pages, documents, cases, scan_job_pages, "
                                     "scan_jobs, scan_services, alembic_version, " + ACCOUNT_TABLES + " CASCADE"))
                conn.execute(sa.text("DROP TEXT SEARCH CONFIGURATION IF EXISTS sohoa_folded"))
            else:
                for table in ("pages_fts_vocab", "pages_fts", "document_fields", "pages", "documents", "cases",
                              "scan_job_pages", "scan_jobs", "scan_services", "alembic_version",
                              *ACCOUNT_TABLES.split(", ")):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))

    def clear(self) -> None:
        """Delete every row, keeping the schema (the first step of a reindex)."""
        with self._tx() as conn:
            if not self.is_postgres:
                conn.execute(sa.text("DELETE FROM pages_fts"))
            for table in (document_fields, pages, documents, cases):
                conn.execute(table.delete())

    # --------------------------------------------------------------------------- writes
    def _insert(self, table: sa.Table):  # type: ignore[no-untyped-def]
        return (postgresql.insert if self.is_postgres else sqlite.insert)(table)

    def record_document(self, rec: DocumentRecord) -> None:
        """Insert or replace one document and its pages (recording it twice leaves one row)."""
        now = dt.datetime.now(dt.UTC)
        try:
            parsed = CaseId.parse(rec.case_id)
            agency, received = parsed.agency, parsed.received
        except InvalidCaseId:  # the catalog also takes provisional ids (no agency/date to record)
            agency, received = None, None
        values = {
            "case_id": rec.case_id, "document_id": rec.document_id, "source_sha256": rec.source_sha256,
            "source_name": rec.source_name, "kind": rec.kind, "operator": rec.operator,
            "created_at": _utc(rec.created_at), "page_count": rec.page_count, "keys": dict(rec.keys),
            "mean_confidence": rec.mean_confidence, "stack_sha256": rec.stack_sha256,
            "stack_first_page": rec.stack_pages[0] if rec.stack_pages else None,
            "stack_last_page": rec.stack_pages[-1] if rec.stack_pages else None,
            "result_code": rec.result_code, "signatures": list(rec.signatures),
        }
        self._write(lambda conn: self._record_document(conn, rec, values, agency, received, now))

    def _record_document(self, conn: sa.Connection, rec: DocumentRecord, values: dict, agency: str | None,
                         received: dt.date | None, now: dt.datetime) -> None:
        conn.execute(self._insert(cases).values(case_id=rec.case_id, agency=agency, received_on=received,
                                                first_seen_at=now).on_conflict_do_nothing())
        stmt = self._insert(documents).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["case_id", "document_id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("case_id", "document_id")})
        conn.execute(stmt)
        doc_pk = conn.execute(sa.select(documents.c.id).where(
            documents.c.case_id == rec.case_id, documents.c.document_id == rec.document_id)).scalar_one()
        if not self.is_postgres:
            conn.execute(sa.text("DELETE FROM pages_fts WHERE rowid IN (SELECT id FROM pages WHERE doc_pk = :d)"),
                         {"d": doc_pk})
        conn.execute(pages.delete().where(pages.c.doc_pk == doc_pk))
        conn.execute(document_fields.delete().where(document_fields.c.doc_pk == doc_pk))
        if rec.extracted:
            conn.execute(document_fields.insert(), [
                {"doc_pk": doc_pk, "name": f["name"], "value": str(f["value"])[:256], "page": int(f["page"]),
                 "box": f.get("box"), "confidence": float(f["confidence"])} for f in rec.extracted])
        if not rec.pages:
            return
        rows = [{"doc_pk": doc_pk, "number": p.number, "text": unicodedata.normalize("NFC", p.text or ""),
                 "confidence": p.confidence, "source_page": p.source_page, "case_id": rec.case_id,
                 "agency": agency, "received_on": received, "kind": rec.kind} for p in rec.pages]
        ids = conn.execute(pages.insert().returning(pages.c.id, sort_by_parameter_order=True),
                           rows).scalars().all()
        if not self.is_postgres:
            conn.execute(sa.text("INSERT INTO pages_fts (rowid, folded, exact) VALUES (:id, :folded, :exact)"),
                         [{"id": i, "folded": fts_words(fold(r["text"])), "exact": fts_words(r["text"])}
                          for i, r in zip(ids, rows)])

    # ---------------------------------------------------------------------------- reads
    @staticmethod
    def _record(row: sa.Row, page_rows: Sequence[sa.Row] = (), field_rows: Sequence[sa.Row] = ()) -> DocumentRecord:
        return DocumentRecord(
            case_id=row.case_id, document_id=row.document_id, source_sha256=row.source_sha256,
            source_name=row.source_name, created_at=_iso(row.created_at), page_count=row.page_count,
            keys=dict(row.keys or {}), kind=row.kind, operator=row.operator, mean_confidence=row.mean_confidence,
            stack_sha256=row.stack_sha256,
            stack_pages=[row.stack_first_page, row.stack_last_page] if row.stack_sha256 else None,
            result_code=row.result_code, signatures=list(row.signatures or []),
            extracted=[{"name": f.name, "value": f.value, "page": f.page, "box": f.box, "confidence": f.confidence}
                       for f in field_rows],
            pages=[PageText(number=p.number, text=p.text, confidence=p.confidence, source_page=p.source_page)
                   for p in page_rows])

    @staticmethod
    def _fields_of(conn: sa.Connection, doc_pk: int) -> Sequence[sa.Row]:
        return conn.execute(sa.select(document_fields).where(document_fields.c.doc_pk == doc_pk)
                            .order_by(document_fields.c.id)).all()

    def find_by_identifier(self, value: str, *, case_prefix: str | None = None,
                           limit: int = 50) -> list[tuple[DocumentRecord, str]]:
        """Documents whose result code or an extracted value (citizen ID, document number …) equals ``value``.

        Returns (document with its extracted fields, what matched: ``result_code`` or the field name).
        """
        value = unicodedata.normalize("NFC", value.strip())
        out: list[tuple[DocumentRecord, str]] = []
        with self._tx() as conn:
            by_code = sa.select(documents.c.id, sa.literal("result_code").label("matched")).where(
                sa.func.upper(documents.c.result_code) == value.upper())
            by_field = sa.select(document_fields.c.doc_pk.label("id"), document_fields.c.name.label("matched")).where(
                document_fields.c.value == value)
            hits = conn.execute(sa.union(by_code, by_field)).all()
            seen: set[int] = set()
            for pk, matched in hits:
                if pk in seen:
                    continue
                seen.add(pk)
                row = conn.execute(sa.select(documents).where(documents.c.id == pk)).first()
                if row is None or (case_prefix and not row.case_id.startswith(case_prefix)):
                    continue
                out.append((self._record(row, (), self._fields_of(conn, pk)), matched))
        out.sort(key=lambda t: (t[0].created_at, t[0].document_id), reverse=True)
        return out[:limit]

    def unsigned_documents(self) -> list[tuple[str, str]]:
        """(case ID, document ID) of every document whose searchable PDF the agency has not signed."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(documents.c.case_id, documents.c.document_id, documents.c.signatures,
                                          documents.c["keys"]).order_by(documents.c.created_at)).all()
        return [(r.case_id, r.document_id) for r in rows if (r.keys or {}).get("searchable_pdf")
                and not any(s.get("role") == "agency" for s in (r.signatures or []))]

    def _pages_of(self, conn: sa.Connection, doc_pk: int) -> Sequence[sa.Row]:
        return conn.execute(sa.select(pages).where(pages.c.doc_pk == doc_pk).order_by(pages.c.number)).all()

    def documents_for_case(self, case_id: str, *, with_pages: bool = False) -> list[DocumentRecord]:
        """The documents of one case, oldest first (page texts only when asked)."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(documents).where(documents.c.case_id == str(case_id))
                                .order_by(documents.c.created_at, documents.c.document_id)).all()
            return [self._record(r, self._pages_of(conn, r.id) if with_pages else (), self._fields_of(conn, r.id))
                    for r in rows]

    def get_document(self, document_id: str) -> DocumentRecord | None:
        """One document with its page texts, or None (the most recent if several cases hold the same file)."""
        with self._tx() as conn:
            row = conn.execute(sa.select(documents).where(documents.c.document_id == document_id)
                               .order_by(documents.c.created_at.desc()).limit(1)).first()
            return None if row is None else self._record(row, self._pages_of(conn, row.id),
                                                         self._fields_of(conn, row.id))

    def find_by_sha256(self, case_id: str, sha256: str) -> DocumentRecord | None:
        """The document of a case whose original has this SHA-256, or None."""
        with self._tx() as conn:
            row = conn.execute(sa.select(documents).where(documents.c.case_id == str(case_id),
                                                          documents.c.source_sha256 == sha256).limit(1)).first()
            return None if row is None else self._record(row)

    def page_count_total(self) -> int:
        """Number of pages of every catalogued document."""
        with self._tx() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(documents.c.page_count), 0))).scalar_one())

    def case_ids(self) -> list[str]:
        """Every catalogued case ID, sorted."""
        with self._tx() as conn:
            return list(conn.execute(sa.select(cases.c.case_id).order_by(cases.c.case_id)).scalars())

    # ------------------------------------------------------------------------------ cases
    def list_cases(self, *, units: Collection[str] | None = None, case_prefix: str | None = None,
                   since: dt.date | None = None, until: dt.date | None = None, limit: int = 50,
                   offset: int = 0) -> list[CaseSummary]:
        """Cases newest first (received date from the case ID, then case ID), with document and page counts.

        The filters mean what they mean in ``search``; a provisional case ID (no date) sorts last.
        """
        if units is not None and not list(units):
            return []
        where, params = self._filters(units=units, case_prefix=case_prefix, since=since, until=until, kind=None)
        params.update(limit=max(0, int(limit)), offset=max(0, int(offset)))
        sql = sa.text(f"""
            WITH page AS (
                SELECT c.case_id, c.agency, c.received_on, c.first_seen_at FROM cases c
                WHERE 1 = 1{where}
                ORDER BY c.received_on IS NULL, c.received_on DESC, c.case_id DESC
                LIMIT :limit OFFSET :offset)
            SELECT page.case_id, page.agency, page.received_on, page.first_seen_at,
                   count(d.id) AS documents, coalesce(sum(d.page_count), 0) AS pages,
                   max(d.created_at) AS last_stored_at
            FROM page LEFT JOIN documents d ON d.case_id = page.case_id
            GROUP BY page.case_id, page.agency, page.received_on, page.first_seen_at
            ORDER BY page.received_on IS NULL, page.received_on DESC, page.case_id DESC""")
        with self._tx() as conn:
            rows = conn.execute(sql, params).all()
        return [CaseSummary(case_id=r.case_id, agency=r.agency, received_on=_date_iso(r.received_on),
                            document_count=int(r.documents), page_count=int(r.pages),
                            first_seen_at=_iso(_when(r.first_seen_at)),
                            last_stored_at=_iso(_when(r.last_stored_at)) if r.last_stored_at else None)
                for r in rows]

    def count_cases(self, *, units: Collection[str] | None = None, case_prefix: str | None = None,
                    since: dt.date | None = None, until: dt.date | None = None) -> int:
        """How many cases ``list_cases`` would page through with these filters."""
        if units is not None and not list(units):
            return 0
        where, params = self._filters(units=units, case_prefix=case_prefix, since=since, until=until, kind=None)
        with self._tx() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM cases c WHERE 1 = 1{where}"), params).scalar_one())

    def kinds(self, *, units: Collection[str] | None = None) -> list[str]:
        """The document kinds catalogued (for a search filter), sorted."""
        if units is not None and not list(units):
            return []
        where, params = self._filters(units=units, case_prefix=None, since=None, until=None, kind=None)
        sql = sa.text(f"""SELECT DISTINCT d.kind FROM documents d JOIN cases c ON c.case_id = d.case_id
                          WHERE d.kind IS NOT NULL{where} ORDER BY d.kind""")
        with self._tx() as conn:
            return list(conn.execute(sql, params).scalars())


def _when(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, str):  # SQLite hands back text for computed columns (max())
        return dt.datetime.fromisoformat(value)
    return value


def _date_iso(value: str | dt.date | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()
