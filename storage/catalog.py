"""The SQL catalog: cases, documents, pages and full-text search, on SQLite or PostgreSQL.

The catalog is an index, not the record: ``storage.archive.Archive.reindex`` rebuilds it from the
object store at any time. Search folds diacritics and đ→d, so "quyet dinh", "Quyết Định" and
"QUYẾT ĐỊNH" all find "quyết định"; a page that also matches the words exactly as typed ranks higher.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite

from models import CaseId, DocumentRecord, InvalidCaseId, PageText, SearchHit, StorageError, StorageUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")
HIGHLIGHT = ("«", "»")

metadata = sa.MetaData()
cases = sa.Table(
    "cases", metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("agency", sa.String(16)),
    sa.Column("received_on", sa.Date()),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
)
documents = sa.Table(
    "documents", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id", ondelete="CASCADE"), nullable=False),
    sa.Column("document_id", sa.String(128), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("source_name", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(64)),
    sa.Column("operator", sa.String(128)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("page_count", sa.Integer(), nullable=False),
    sa.Column("keys", sa.JSON(), nullable=False),
    sa.Column("mean_confidence", sa.Float()),
    sa.Column("result_code", sa.String(96)),
    sa.Column("signatures", sa.JSON()),
    sa.UniqueConstraint("case_id", "document_id", name="uq_documents_case_document"),
)
document_fields = sa.Table(
    "document_fields", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("doc_pk", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("page", sa.Integer(), nullable=False),
    sa.Column("box", sa.JSON()),
    sa.Column("confidence", sa.Float(), nullable=False),
)
pages = sa.Table(
    "pages", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("doc_pk", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("confidence", sa.Float()),
)

_WORD = re.compile(r"[^\W_]+")


# ------------------------------------------------------------------------------------ folding
def _fold_char(ch: str) -> str:
    if ch in "đĐ":
        return "d"
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)).lower()
    return base[:1] if base else " "


def fold(text: str) -> str:
    """Search form of a text: NFC, diacritics removed, đ→d, lower case; one character per character."""
    return "".join(_fold_char(c) for c in unicodedata.normalize("NFC", text))


def query_words(query: str) -> tuple[list[str], list[str]]:
    """(folded words, exact lower-case NFC words) of what the user typed."""
    nfc = unicodedata.normalize("NFC", query)
    return _WORD.findall(fold(nfc)), _WORD.findall(nfc.lower())


def make_snippet(text: str, words: Sequence[str], *, width: int = 160) -> str:
    """A window of the original text around the first match, matched words marked «like this»."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)  # same length as text, so positions carry over
    spans: list[tuple[int, int]] = []
    for w in set(words):
        spans += [(m.start(), m.end()) for m in re.finditer(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", folded)]
    spans.sort()
    first = spans[0][0] if spans else 0
    start = max(0, first - width // 3)
    if start:
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and start - space < 20 else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.find(" ", end)
        end = space if 0 <= space < end + 20 else end
    out, pos = [], start
    for a, b in spans:
        if a < pos or b > end:
            continue
        out += [text[pos:a], HIGHLIGHT[0], text[a:b], HIGHLIGHT[1]]
        pos = b
    out.append(text[pos:end])
    snippet = " ".join("".join(out).split())
    return ("… " if start else "") + snippet + (" …" if end < len(text) else "")


def _utc(value: str | dt.datetime) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _iso(value: dt.datetime) -> str:
    return _utc(value).isoformat()


# ------------------------------------------------------------------------------------ catalog
class Catalog:
    """Cases, documents and page texts in SQL, with ranked full-text search."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        connect_args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            connect_args = {"connect_timeout": 5}
        self.url = url
        self.engine = sa.create_engine(url, echo=echo, connect_args=connect_args, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.engine.dialect.name != "postgresql":
            raise StorageError(f"Unsupported catalog database {self.engine.dialect.name}: use SQLite or PostgreSQL.")

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

    # --------------------------------------------------------------------------- schema
    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (creates it on an empty database)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._tx() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def drop_all(self) -> None:
        """Drop every catalog table and the migration record (tests of reindex; never in production)."""
        with self._tx() as conn:
            if self.is_postgres:
                conn.execute(sa.text("DROP TABLE IF EXISTS document_fields, pages, documents, cases, alembic_version "
                                     "CASCADE"))
                conn.execute(sa.text("DROP TEXT SEARCH CONFIGURATION IF EXISTS sohoa_folded"))
            else:
                for table in ("pages_fts", "document_fields", "pages", "documents", "cases", "alembic_version"):
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
            "mean_confidence": rec.mean_confidence, "result_code": rec.result_code,
            "signatures": list(rec.signatures),
        }
        with self._tx() as conn:
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
                     "confidence": p.confidence} for p in rec.pages]
            ids = conn.execute(pages.insert().returning(pages.c.id, sort_by_parameter_order=True),
                               rows).scalars().all()
            if not self.is_postgres:
                conn.execute(sa.text("INSERT INTO pages_fts (rowid, folded, exact) VALUES (:id, :folded, :exact)"),
                             [{"id": i, "folded": fold(r["text"]), "exact": r["text"]} for i, r in zip(ids, rows)])

    # ---------------------------------------------------------------------------- reads
    @staticmethod
    def _record(row: sa.Row, page_rows: Sequence[sa.Row] = (), field_rows: Sequence[sa.Row] = ()) -> DocumentRecord:
        return DocumentRecord(
            case_id=row.case_id, document_id=row.document_id, source_sha256=row.source_sha256,
            source_name=row.source_name, created_at=_iso(row.created_at), page_count=row.page_count,
            keys=dict(row.keys or {}), kind=row.kind, operator=row.operator, mean_confidence=row.mean_confidence,
            result_code=row.result_code, signatures=list(row.signatures or []),
            extracted=[{"name": f.name, "value": f.value, "page": f.page, "box": f.box, "confidence": f.confidence}
                       for f in field_rows],
            pages=[PageText(number=p.number, text=p.text, confidence=p.confidence) for p in page_rows])

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

    # --------------------------------------------------------------------------- search
    def search(self, query: str, *, case_prefix: str | None = None, since: dt.date | None = None,
               limit: int = 20) -> list[SearchHit]:
        """Pages matching every word of ``query`` (diacritics and case ignored), best first."""
        folded, exact = query_words(query)
        if not folded or limit <= 0:
            return []
        filters: list[str] = []
        params: dict[str, Any] = {"limit": int(limit)}
        if case_prefix:
            escaped = case_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            filters.append("d.case_id LIKE :prefix ESCAPE '\\'")
            params["prefix"] = escaped + "%"
        if since is not None:
            filters.append("d.created_at >= :since")
            start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
            # SQLite keeps naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff"): compare like with like.
            params["since"] = start if self.is_postgres else start.strftime("%Y-%m-%d %H:%M:%S.%f")
        where = "".join(f" AND {f}" for f in filters)
        with self._tx() as conn:
            if self.is_postgres:
                return self._search_postgres(conn, query, where, params)
            return self._search_sqlite(conn, folded, exact, where, params)

    @staticmethod
    def _search_postgres(conn: sa.Connection, query: str, where: str, params: dict[str, Any]) -> list[SearchHit]:
        params["q"] = unicodedata.normalize("NFC", query)
        opts = f"StartSel={HIGHLIGHT[0]}, StopSel={HIGHLIGHT[1]}, MaxWords=30, MinWords=12, MaxFragments=2, " \
               "FragmentDelimiter=\" … \""
        sql = sa.text(f"""
            WITH q AS (SELECT plainto_tsquery('sohoa_folded', :q) AS qf, plainto_tsquery('simple', :q) AS qe),
            best AS (
                SELECT p.id, p.number, p.text, d.case_id, d.document_id, d.source_name, d.kind, d.created_at,
                       ts_rank(p.tsv_folded, q.qf) + ts_rank(p.tsv_exact, q.qe) AS score, q.qf
                FROM pages p JOIN documents d ON d.id = p.doc_pk CROSS JOIN q
                WHERE p.tsv_folded @@ q.qf{where}
                ORDER BY score DESC, d.created_at DESC, p.id
                LIMIT :limit)
            SELECT case_id, document_id, number, source_name, kind, score,
                   ts_headline('sohoa_folded', text, qf, :opts) AS snippet
            FROM best ORDER BY score DESC, created_at DESC, id""")
        params["opts"] = opts
        rows = conn.execute(sql, params).all()
        return [SearchHit(case_id=r.case_id, document_id=r.document_id, page=r.number,
                          snippet=" ".join(r.snippet.split()), score=float(r.score), source_name=r.source_name,
                          kind=r.kind) for r in rows]

    @staticmethod
    def _search_sqlite(conn: sa.Connection, folded: list[str], exact: list[str], where: str,
                       params: dict[str, Any]) -> list[SearchHit]:
        # Every folded word must match; the OR'd exact phrase set adds to bm25 when the words were
        # typed with their diacritics as they appear on the page.
        must = " AND ".join(f'folded:"{w}"' for w in folded)
        bonus = " AND ".join(f'exact:"{w}"' for w in exact)
        params["match"] = f"({must}) OR ({bonus})" if bonus else must
        sql = sa.text(f"""
            SELECT p.id, p.number, p.text, d.case_id, d.document_id, d.source_name, d.kind,
                   -bm25(pages_fts) AS score
            FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid JOIN documents d ON d.id = p.doc_pk
            WHERE pages_fts MATCH :match{where}
            ORDER BY score DESC, d.created_at DESC, p.id
            LIMIT :limit""")
        rows = conn.execute(sql, params).all()
        return [SearchHit(case_id=r.case_id, document_id=r.document_id, page=r.number,
                          snippet=make_snippet(r.text, folded), score=float(r.score), source_name=r.source_name,
                          kind=r.kind) for r in rows]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA busy_timeout = 10000")
    cur.close()
