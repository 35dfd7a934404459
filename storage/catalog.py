"""The SQL catalog: cases, documents, pages and full-text search, on SQLite or PostgreSQL.

The catalog is an index, not the record: ``storage.archive.Archive.reindex`` rebuilds it from the
object store at any time. Search folds diacritics and đ→d, so "quyet dinh", "Quyết Định" and
"QUYẾT ĐỊNH" all find "quyết định"; a page that also matches the words exactly as typed ranks higher.

Relevance. A page must hold every word of the query (folded). The matching pages are ranked by
  - PostgreSQL: ``ts_rank_cd`` (cover density: how often and how close together the words occur,
    divided by 1 + log(page length)) on the folded words, plus the same on the words exactly as
    typed, so a page spelled like the query ranks above one that only matches without diacritics;
  - SQLite: Okapi BM25 (k1 1.2, b 0.75, idf ln(1 + (N − n + 0.5)/(n + 0.5)), which stays positive
    for a word found on most pages) on the folded words plus the same on the exact words; the
    document frequencies come from the FTS5 vocabulary.
Both report ``score`` relative to the best page of the query: 1.0 = the best page, 0.5 = half as
relevant by that measure. Scores compare pages of one query, not different queries or databases.
Ranking reads at most ``SEARCH_WINDOW`` matching pages, the newest ones (PostgreSQL: of the latest
received date from the case ID, provisional IDs first, then the latest catalogued; SQLite: the
latest catalogued): a query matching more (a very common word on a large catalog) comes back with
``capped`` set, and the user narrows it (more words, a unit, a date range). That bound keeps
search in tens of milliseconds on a million pages (bench/search_bench.py). The filters (unit,
received date, kind, case ID) are columns of the page row, so walking pages needs no look-up.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

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
    SearchHit,
    SearchResults,
    StorageError,
    StorageUnavailable,
)

MIGRATIONS = Path(__file__).with_name("migrations")
HIGHLIGHT = ("«", "»")
# Tables of migrations 0003 (storage.accounts, storage.audit), 0010 (records, throttle) and 0011 (webhooks),
# dropped with the catalog by drop_all.
ACCOUNT_TABLES = ("web_sessions, api_tokens, users, audit_exports, audit_head, audit_log, throttle_counters, "
                  "case_records, document_records, disposal_proposals, disposal_tombstones, "
                  "webhook_deliveries, outbox_events, webhooks, document_links")
SEARCH_WINDOW = 1000  # matching pages ranked per query at most (the most recent ones)
BM25_K1, BM25_B = 1.2, 0.75
SAMPLE_FACTOR = 2  # PostgreSQL: first walk the newest 2 windows of pages (2 000) to see how common the words are
SCAN_BUDGET = 40_000  # ... and walk on if a window is expected within this many pages, else use GIN
# PostgreSQL: relative costs (bench/search_bench.py at 10^6 pages) of a walked page, of a GIN page
# list entry of the rarest word, and of a page row a GIN lookup reads.
WALK_COST, GIN_ITEM_COST, GIN_ROW_COST = 2.5, 1.0, 5.0
MAX_UNIT_WALKS = 8  # PostgreSQL: a caller with more units walks all pages, testing the unit on each
DF_CACHE_SECONDS = 600.0  # SQLite: how long a word's page count is reused for ranking
PG_RANK_NORMALIZATION = 1  # ts_rank_cd: divide by 1 + log(page length)

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
    sa.Column("stack_sha256", sa.String(64)),
    sa.Column("stack_first_page", sa.Integer()),
    sa.Column("stack_last_page", sa.Integer()),
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
    sa.Column("source_page", sa.Integer()),
    # Copies of the case's and the document's filter values (migration 0006): search tests them on
    # the page row it walks, with no look-up in documents or cases.
    sa.Column("case_id", sa.String(64)),
    sa.Column("agency", sa.String(16)),
    sa.Column("received_on", sa.Date()),
    sa.Column("kind", sa.String(64)),
)

_WORD = re.compile(r"[^\W_]+")
# A case ID is <ddd.dd.dd.Xdd>-<yymmdd>-<nnnn>; a word of the query that fits somewhere in that
# shape (and has a separator, so "2018" stays a word) is taken as (part of) a case ID.
_CASE_ID_SHAPE = "ddd.dd.dd.Xdd-dddddd-dddd"
_CASE_ID_START = re.compile(r"^\d{3}\.")
_AGENCY_START = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[HG]\d{2}")
_UNIT_PARAM = re.compile(r"unit\d+")


# ------------------------------------------------------------------------------------ folding
@functools.lru_cache(maxsize=8192)
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


def _fits_case_id(word: str) -> bool:
    w = word.upper()
    # An agency part (has a dot), a unit letter and number (H56-), or yymmdd-nnnn; so that "2018-10"
    # or a decree number stays text.
    if len(w) < 5 or not ("." in w or re.search(r"[HG]\d\d-", w) or re.fullmatch(r"\d{6}-\d{1,4}", w)):
        return False
    for start in range(len(_CASE_ID_SHAPE) - len(w) + 1):
        if all((s == "d" and c.isdigit()) or (s == "X" and c in "HG") or (s in ".-" and c == s)
               for s, c in zip(_CASE_ID_SHAPE[start:], w)):
            return True
    return False


def split_case_id_words(query: str) -> tuple[str, list[str]]:
    """(the text words, the case-ID words) of a search box: ``"000.00.14.H56 quyết định"`` →
    (``"quyết định"``, [``"000.00.14.H56"``])."""
    text, ids = [], []
    for word in unicodedata.normalize("NFC", query).split():
        bare = word.strip(",;()[]\"'")
        if _fits_case_id(bare):
            ids.append(bare.upper())
        else:
            text.append(word)
    return " ".join(text), ids


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
        self.search_window = SEARCH_WINDOW
        self._df_cache: dict[tuple[str, str], tuple[int, float]] = {}  # SQLite document frequencies
        self._pg_stats: tuple[dict[str, float], float, float] | None = None  # word shares, pages, when
        self.engine = sa.create_engine(url, echo=echo, connect_args=connect_args, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.engine.dialect.name == "postgresql":
            sa.event.listen(self.engine, "connect", _postgres_settings)
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

    # --------------------------------------------------------------------------- search
    def search(self, query: str, *, units: Collection[str] | None = None, case_prefix: str | None = None,
               since: dt.date | None = None, until: dt.date | None = None, kind: str | None = None,
               limit: int = 20, offset: int = 0) -> SearchResults:
        """Pages matching every word of ``query`` (diacritics, đ/d and case ignored), best first.

        ``query`` may also hold a case ID or part of one (``000.00.14.H56``, ``H56-200204``,
        ``200204-0001``): such words filter the cases instead of being searched in the text; a query
        of only such words lists the documents of the matching cases (newest first, score 1.0).
        ``units``: the agency codes the caller may see (None = every case, for administrators; an
        empty list sees nothing). ``since``/``until``: the received date from the case ID,
        inclusive. ``kind``: the document kind exactly. ``limit``/``offset`` page through the
        ranked hits. Scores are relative (0..1, 1.0 = the best page of this query); see the module
        docstring for the measure.
        """
        limit, offset = max(0, int(limit)), max(0, int(offset))
        text, id_parts = split_case_id_words(query)
        folded, exact = query_words(text)
        if (not folded and not id_parts) or limit == 0 or (units is not None and not list(units)):
            return SearchResults(window=self.search_window)
        # Text searches test the filters on the page row (p), case-ID-only queries on cases/documents.
        on = ("p", "p") if folded else ("c", "d")
        where, params = self._filters(units=units, case_prefix=case_prefix, since=since, until=until,
                                      kind=kind, id_parts=id_parts, on=on[0], kind_on=on[1])
        params.update(limit=limit, offset=offset, window=self.search_window)
        with self._tx() as conn:
            if not folded:
                return self._case_documents(conn, where, params)
            if self.is_postgres:
                return self._search_postgres(conn, text, folded, where, params)
            return self._search_sqlite(conn, folded, exact, where, params)

    @staticmethod
    def _filters(*, units: Collection[str] | None, case_prefix: str | None, since: dt.date | None,
                 until: dt.date | None, kind: str | None, id_parts: Sequence[str] = (), on: str = "c",
                 kind_on: str = "d") -> tuple[str, dict[str, Any]]:
        """SQL conditions, each starting with AND, and their values.

        ``on`` is the alias of the table whose ``case_id``, ``agency`` and ``received_on`` are tested
        (``c`` cases, or ``p`` pages, which carry copies); ``kind_on`` the one whose ``kind`` is
        (``d`` documents or ``p``). A case-ID word that starts with a whole agency code also
        yields ``agency = …`` (parameter ``idagency0``…), which the PostgreSQL search walks by.
        """
        filters: list[str] = []
        params: dict[str, Any] = {}
        if units is not None:
            names = []
            for i, unit in enumerate(sorted({str(u).strip() for u in units})):
                params[f"unit{i}"] = unit
                names.append(f":unit{i}")
            filters.append(f"{on}.agency IN ({', '.join(names) or 'NULL'})")
        if case_prefix:
            filters.append(f"{on}.case_id LIKE :prefix ESCAPE '\\'")
            params["prefix"] = _like_escape(case_prefix.strip()) + "%"
        for i, part in enumerate(id_parts):
            agency = _AGENCY_START.match(part)
            if agency:
                filters.append(f"{on}.agency = :idagency{i}")
                params[f"idagency{i}"] = agency.group(0)
            if CaseId.is_valid(part):
                filters.append(f"{on}.case_id = :cid{i}")
                params[f"cid{i}"] = str(CaseId.parse(part))
            elif _CASE_ID_START.match(part):
                filters.append(f"{on}.case_id LIKE :cid{i} ESCAPE '\\'")
                params[f"cid{i}"] = _like_escape(part) + "%"
            else:
                filters.append(f"{on}.case_id LIKE :cid{i} ESCAPE '\\'")
                params[f"cid{i}"] = "%" + _like_escape(part) + "%"
        if since is not None:
            filters.append(f"{on}.received_on >= :since")
            params["since"] = since
        if until is not None:
            filters.append(f"{on}.received_on <= :until")
            params["until"] = until
        if kind:
            filters.append(f"{kind_on}.kind = :kind")
            params["kind"] = kind
        return "".join(f" AND {f}" for f in filters), params

    def _case_documents(self, conn: sa.Connection, where: str, params: dict[str, Any]) -> SearchResults:
        """A query of case-ID words only: every document of the matching cases, first page, newest first."""
        sql = sa.text(f"""
            SELECT d.case_id, d.document_id, d.source_name, d.kind, p.number, p.source_page, p.text
            FROM documents d JOIN cases c ON c.case_id = d.case_id
            LEFT JOIN pages p ON p.doc_pk = d.id AND p.number = 1
            WHERE 1 = 1{where}
            ORDER BY c.received_on DESC, c.case_id DESC, d.created_at, d.document_id
            LIMIT :limit OFFSET :offset""")
        rows = conn.execute(sql, params).all()
        hits = [SearchHit(case_id=r.case_id, document_id=r.document_id, page=r.number or 1,
                          snippet=make_snippet(r.text or "", []), score=1.0, source_name=r.source_name,
                          kind=r.kind, source_page=r.source_page) for r in rows]
        return SearchResults(hits, matched=len(hits) + params["offset"], window=self.search_window)

    def _search_postgres(self, conn: sa.Connection, text: str, folded: list[str], where: str,
                         params: dict[str, Any]) -> SearchResults:
        # The newest ``window`` matching pages (``_pg_candidates``), ranked by cover density on
        # the folded words plus cover density on the words exactly as typed (diacritics),
        # normalised to the best. Snippets are cut in Python (ts_headline re-parses the whole page:
        # ~2 ms a hit). The tsqueries are made once and bound as constants (no row re-parses them).
        # (The same round trip sets up the first walk's plan: see _pg_plan.)
        params["qf"], params["qe"], *_ = conn.execute(
            sa.text("SELECT plainto_tsquery('sohoa_folded', :q)::text, plainto_tsquery('simple', :q)::text, "
                    + _PG_PLAN_SQL), {"q": unicodedata.normalize("NFC", text), **_PG_WALK}).one()
        if not params["qf"]:
            return SearchResults(window=params["window"])
        found = self._pg_candidates(conn, where, params)
        if not found:
            return SearchResults(window=params["window"])
        raw = dict(found)
        missing = [i for i, r in found if r is None]
        if missing:  # pages the walks did not rank on the way (several walks; a walk on)
            raw.update((r.id, r.raw) for r in conn.execute(sa.text(f"""
                SELECT p.id, {_pg_rank("p")} AS raw
                FROM unnest(CAST(:ids AS integer[])) AS c(id) JOIN pages p ON p.id = c.id"""),
                params | {"ids": missing}))
        matched = len(raw)
        top = max(raw.values())
        chosen = sorted(raw, key=lambda i: (-raw[i], -i))[params["offset"]:params["offset"] + params["limit"]]
        if not chosen:
            return SearchResults(window=params["window"])
        detail = {r.id: r for r in conn.execute(sa.text("""
            SELECT p.id, p.number, p.source_page, p.text, d.case_id, d.document_id, d.source_name, d.kind
            FROM pages p JOIN documents d ON d.id = p.doc_pk WHERE p.id = ANY(CAST(:ids AS integer[]))"""),
            {"ids": chosen})}
        hits = [SearchHit(case_id=r.case_id, document_id=r.document_id, page=r.number,
                          snippet=make_snippet(r.text, folded), score=_relative(raw[r.id], top),
                          source_name=r.source_name, kind=r.kind, source_page=r.source_page)
                for r in (detail[i] for i in chosen)]
        return SearchResults(hits, matched=matched, capped=matched >= params["window"], window=params["window"])

    def _pg_candidates(self, conn: sa.Connection, where: str, params: dict[str, Any]) -> list[tuple[int, float | None]]:
        """(id, rank or None) of the newest ``window`` pages matching the folded query and the filters.

        Newest = latest received date (from the case ID; provisional IDs, without one, first),
        then latest catalogued. The pages are walked in that order on a btree index: per unit
        when the caller has a few, (agency, received_on, id); else per kind, (kind, received_on,
        id); else all, (received_on, id). Every filter is a column of the walked row.

        The planner cannot know how many pages hold "giấy chứng nhận quyền sử dụng đất" (seven
        words that go together; it multiplies their frequencies), so the way is chosen from a
        sample: the first ``SAMPLE_FACTOR × window`` pages of each walk. Common words fill the
        window there. Otherwise the walks' match rates (matches a received day) give the received
        date down to which all walks together should hold the window; if that is within
        ``SCAN_BUDGET`` pages the walks go on down to it, else (rarer words) the GIN index is
        asked for the pages from the date where two windows are expected, then eight, then (or
        when all dates are expected to hold less than three windows) for all of them. The result
        is exact either way: the window is taken only among pages newer than every walk's bound.
        A single walk's sample and the GIN lookups rank the pages they return on the way (the row
        is at hand); the others are ranked afterwards (``None``).
        """
        window = params["window"]
        units = [k for k in params if _UNIT_PARAM.fullmatch(k)]
        by_id = [k for k in params if k.startswith("idagency")]
        if units and len(units) <= MAX_UNIT_WALKS:
            walks = [f" AND p.agency = :{k}" for k in units]
        elif by_id:
            walks = [f" AND p.agency = :{by_id[0]}"]
        elif "kind" in params:
            walks = [" AND p.kind = :kind"]
        else:
            walks = [""]
        order = "p.received_on DESC, p.id DESC"
        inline = f"CASE WHEN w.hit THEN {_pg_rank('w')} END" if len(walks) == 1 else "NULL"
        walk_sql = f"""
            SELECT w.id, w.received_on, w.hit, w.rn, {{rank}} AS raw FROM (
                SELECT p.id, p.received_on, p.tsv_folded, p.tsv_exact, p.tsv_folded @@ CAST(:qf AS tsquery) AS hit,
                       row_number() OVER (ORDER BY {order}) AS rn
                FROM pages p WHERE TRUE{{walk}}{where}{{after}} ORDER BY {order} LIMIT :cap) w
            WHERE w.hit OR w.rn = 1 OR w.rn = :cap
            LIMIT :take"""
        plan = {"walk": True}  # set up with the tsqueries (_search_postgres)
        sample = SAMPLE_FACTOR * window
        hits: list[tuple[int, dt.date | None, float | None]] = []
        open_walks: list[_Walk] = []
        bounds: list[tuple] = []  # per walk: every match with a key >= this is in hits
        for walk in walks:
            rows = conn.execute(sa.text(walk_sql.format(walk=walk, after="", rank=inline)),
                                params | {"cap": sample, "take": window + 2}).all()
            got = [(r.id, r.received_on, r.raw) for r in rows if r.hit][:window]
            hits += got
            marker = next((r for r in rows if r.rn == sample), None)
            if len(got) >= window:
                bounds.append(_page_key(got[-1]))  # older pages of this walk cannot make the window
            elif marker is None:
                bounds.append(_LOWEST)  # the walk read every page it has
            else:
                bounds.append(_page_key((marker.id, marker.received_on, None)))
                first = next(r.received_on for r in rows if r.rn == 1)
                open_walks.append(_Walk(walk, len(got), first, marker.received_on, marker.id))
        if not open_walks or _window_is_known(hits, bounds, window):
            return _newest(hits, window)
        # Not enough matches in the samples: where would all walks together reach a window?
        known = len(hits) - sum(w.hits for w in open_walks)
        dated = all(w.first is not None and w.last is not None for w in open_walks)
        rate = sum(w.hits / ((w.first - w.last).days + 1) for w in open_walks) if dated else 0.0
        newest = max(w.first for w in open_walks) if dated else None
        down_to = None
        if rate > 0 and newest is not None:
            days = math.ceil(max(0.3 * window, 1.3 * window - known) / rate)
            if days < (newest - dt.date(1900, 1, 1)).days:
                down_to = newest - dt.timedelta(days=days)
        if down_to is not None:
            pages = sum(sample / ((w.first - w.last).days + 1) * max(0, (w.last - down_to).days + 1)
                        for w in open_walks)
            if pages <= SCAN_BUDGET and pages * WALK_COST <= self._pg_gin_cost(conn, params["qf"], window):
                # common enough: walk on down to that date
                bounds = [b for b, w in zip(bounds, walks) if w not in {o.walk for o in open_walks}]
                after = " AND (p.received_on, p.id) < (:after_on, :after_id) AND p.received_on >= :down_to"
                for w in open_walks:
                    rows = conn.execute(sa.text(walk_sql.format(walk=w.walk, after=after, rank="NULL")),
                                        params | {"cap": SCAN_BUDGET, "take": window + 2, "after_on": w.last,
                                                  "after_id": w.last_id, "down_to": down_to}).all()
                    got = [(r.id, r.received_on, None) for r in rows if r.hit][:window]
                    hits += got
                    marker = next((r for r in rows if r.rn == SCAN_BUDGET), None)
                    if len(got) >= window:
                        bounds.append(_page_key(got[-1]))
                    elif marker is None:
                        bounds.append(_page_key((-1, down_to, None)))  # every page from that date on was read
                    else:
                        bounds.append(_page_key((marker.id, marker.received_on, None)))
                if _window_is_known(hits, bounds, window):
                    return _newest(hits, window)
        # Rarer words: the GIN index, first only from the date where two windows are expected,
        # then eight (unless all dates together are expected to hold less than three: then all).
        gin = (f"SELECT w.id, {_pg_rank('w')} AS raw FROM (SELECT p.id, p.received_on, p.tsv_folded, p.tsv_exact "
               f"FROM pages p WHERE p.tsv_folded @@ CAST(:qf AS tsquery){where}{{cut}} "
               f"ORDER BY {order} LIMIT :window) w ORDER BY w.received_on DESC, w.id DESC")
        if rate > 0 and newest is not None:  # (asked on the btree before the plan turns to GIN)
            oldest = conn.execute(sa.text("SELECT min(received_on) FROM pages")).scalar() or newest
        _pg_plan(conn, plan, walk=False)
        if rate > 0 and newest is not None and rate * ((newest - oldest).days + 1) >= 3 * window:
            for days in (math.ceil(2 * window / rate), math.ceil(8 * window / rate)):  # (the rate is a guess)
                if days >= (newest - oldest).days:
                    break
                out = [(r.id, r.raw) for r in conn.execute(sa.text(gin.format(
                    cut=" AND (p.received_on >= :cut OR p.received_on IS NULL)")),
                    params | {"cut": newest - dt.timedelta(days=days)})]
                if len(out) >= window:
                    return out
        return [(r.id, r.raw) for r in conn.execute(sa.text(gin.format(cut="")), params)]

    def _pg_gin_cost(self, conn: sa.Connection, tsquery: str, window: int) -> float:
        """What a GIN lookup of ``tsquery`` from a received date on costs, in walked pages' worth.

        GIN intersects the words' page lists, skipping ahead on the rarest word's: its cost
        follows that word's page count, which comes from the statistics ANALYZE keeps (the
        most common words and their shares; a word not among them is on fewer pages than the
        least common listed). Without statistics (never analysed): infinite, i.e. walk within the budget.
        """
        now = time.monotonic()
        if self._pg_stats is None or now - self._pg_stats[2] > DF_CACHE_SECONDS:
            row = conn.execute(sa.text("""
                SELECT s.most_common_elems::text::text[] AS words, s.most_common_elem_freqs AS freqs,
                       c.reltuples AS pages
                FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename
                     AND c.relnamespace = to_regnamespace(s.schemaname)
                WHERE s.schemaname = current_schema() AND s.tablename = 'pages' AND s.attname = 'tsv_folded'
                """)).first()
            shares: dict[str, float] = {}
            total = 0.0
            if row is not None and row.words and row.freqs:
                shares = dict(zip(row.words, row.freqs))
                shares[""] = min(row.freqs[:len(row.words)])  # the least common listed
                total = max(0.0, float(row.pages or 0))
            self._pg_stats = (shares, total, now)
        shares, total, _ = self._pg_stats
        if not shares:
            return math.inf
        words = re.findall(r"'((?:[^']|'')*)'", tsquery)
        rarest = min((shares.get(w.replace("''", "'"), shares[""]) for w in words), default=shares[""])
        return rarest * total * GIN_ITEM_COST + 2 * window * GIN_ROW_COST

    def _search_sqlite(self, conn: sa.Connection, folded: list[str], exact: list[str], where: str,
                       params: dict[str, Any]) -> SearchResults:
        # FTS5 finds the most recent ``window`` pages holding every folded word; they are ranked
        # here by Okapi BM25 with a never-negative idf (FTS5's own bm25() gives a word found on
        # more than half the pages an idf of 1e-6, so every common word scored 0.000), over the
        # folded words plus the words exactly as typed, normalised to the best page. The filters
        # are columns of the page row (no look-up in documents or cases per matching page).
        params["match"] = " AND ".join(f'folded:"{w}"' for w in folded)
        sql = sa.text(f"""
            SELECT pages_fts.rowid AS id, pages_fts.folded AS ftext, pages_fts.exact AS etext
            FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid
            WHERE pages_fts MATCH :match{where}
            ORDER BY pages_fts.rowid DESC
            LIMIT :window""")
        rows = conn.execute(sql, params).all()
        if not rows:
            return SearchResults(window=params["window"])
        # N for the idf: the highest page id (O(1); counts deleted pages too, which barely moves a log).
        total = int(conn.execute(sa.text("SELECT max(id) FROM pages")).scalar_one() or 1)
        df = self._sqlite_doc_freq(conn, folded, exact)
        f_scorer = Bm25(folded, {w: df.get(("folded", w), 0) for w in folded}, total)
        e_scorer = Bm25(exact, {w: df.get(("exact", w), 0) for w in exact}, total)
        f_counts = [_fts_counts(r.ftext) for r in rows]
        e_counts = [_fts_counts(r.etext) for r in rows]
        avg_f = sum(n for n, _ in f_counts) / len(rows)
        avg_e = sum(n for n, _ in e_counts) / len(rows)
        raw = [f_scorer.score(fn, fc, avg_f) + e_scorer.score(en, ec, avg_e)
               for (fn, fc), (en, ec) in zip(f_counts, e_counts)]
        top = max(raw)
        order = sorted(range(len(rows)), key=lambda i: (-raw[i], -rows[i].id))
        chosen = order[params["offset"]:params["offset"] + params["limit"]]
        hits: list[SearchHit] = []
        if chosen:
            ids = {rows[i].id: i for i in chosen}
            detail = {r.id: r for r in conn.execute(
                sa.text("""SELECT p.id, p.number, p.source_page, p.text, d.case_id, d.document_id, d.source_name,
                                  d.kind
                           FROM pages p JOIN documents d ON d.id = p.doc_pk WHERE p.id IN ({})""".format(
                    ", ".join(str(int(i)) for i in ids)))).all()}
            for i in chosen:
                r = detail[rows[i].id]
                hits.append(SearchHit(case_id=r.case_id, document_id=r.document_id, page=r.number,
                                      snippet=make_snippet(r.text, folded), score=_relative(raw[i], top),
                                      source_name=r.source_name, kind=r.kind, source_page=r.source_page))
        return SearchResults(hits, matched=len(rows), capped=len(rows) >= params["window"], window=params["window"])

    def _sqlite_doc_freq(self, conn: sa.Connection, folded: list[str], exact: list[str]) -> dict[tuple[str, str], int]:
        """(column, word) -> number of pages whose column holds the word, from the FTS5 vocabulary.

        Counting a common word reads its whole posting list (tens of ms at 10^5 pages), so counts
        are kept for ``DF_CACHE_SECONDS``: a ranking weight that is minutes old is still right.
        """
        out: dict[tuple[str, str], int] = {}
        now = time.monotonic()
        for col, words in (("folded", folded), ("exact", exact)):
            for w in set(words):
                cached = self._df_cache.get((col, w))
                if cached is not None and now - cached[1] < DF_CACHE_SECONDS:
                    out[(col, w)] = cached[0]
                    continue
                n = int(conn.execute(sa.text("SELECT doc FROM pages_fts_vocab WHERE term = :t AND col = :c"),
                                     {"t": w, "c": col}).scalar() or 0)
                if len(self._df_cache) > 10_000:
                    self._df_cache.clear()
                self._df_cache[(col, w)] = (n, now)
                out[(col, w)] = n
        return out

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


# ------------------------------------------------------------------------------------ ranking
class Bm25:
    """Okapi BM25 of a page for the query words, with Lucene's idf ln(1 + (N − n + 0.5)/(n + 0.5)) > 0.

    ``words`` are lower-case (folded or exact) words; ``df`` their page counts; ``total`` the pages.
    A page's length is its number of words; the average is taken over the pages being ranked.
    """

    def __init__(self, words: Sequence[str], df: dict[str, int], total: int, *, k1: float = BM25_K1,
                 b: float = BM25_B) -> None:
        self.k1, self.b = k1, b
        self.idf = {w: math.log(1 + (total - min(df.get(w, 0), total) + 0.5) / (min(df.get(w, 0), total) + 0.5))
                    for w in set(words)}

    def score(self, length: int, counts: Mapping[str, int], avg_length: float) -> float:
        """The page's score from its number of words and how often each word occurs (lower case)."""
        norm = self.k1 * (1 - self.b + self.b * length / (avg_length or 1.0))
        total = 0.0
        for w, idf in self.idf.items():
            tf = counts.get(w, 0)
            if tf:
                total += idf * tf * (self.k1 + 1) / (tf + norm)
        return total


def fts_words(text: str) -> str:
    """What the SQLite FTS table stores: the words, lower case, one space apart (scored by splitting)."""
    return " ".join(_WORD.findall(text.lower()))


def _fts_counts(stored: str | None) -> tuple[int, Counter[str]]:
    """(number of words, occurrences of each word) of a stored FTS column."""
    if not stored:
        return 0, Counter()
    if "  " in stored or not stored.replace(" ", "").isalnum():  # written before fts_words: tokenise here
        tokens = _WORD.findall(stored.lower())
    else:  # (isalnum is what the word pattern takes: letters and digits, no "_")
        tokens = stored.split(" ")
    return len(tokens), Counter(tokens)


def _relative(raw: float, top: float) -> float:
    return round(float(raw) / float(top), 4) if top and top > 0 else 1.0


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _when(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, str):  # SQLite hands back text for computed columns (max())
        return dt.datetime.fromisoformat(value)
    return value


def _date_iso(value: str | dt.date | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


def _postgres_settings(dbapi_conn: Any, _record: Any) -> None:
    # Plan every search with its own values: whether a word is on 1 % or 60 % of the pages decides
    # between the GIN index and a backward primary-key scan (a generic plan cannot know).
    with dbapi_conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_custom_plan")
        # Catalog queries are short; JIT compiling them (triggered by the cost of a forced plan)
        # costs more than it saves.
        cur.execute("SET jit = off")
    dbapi_conn.commit()


class _Walk(NamedTuple):
    """A PostgreSQL search walk whose sample did not fill the window: its condition, matches, dates."""
    walk: str
    hits: int
    first: dt.date | None
    last: dt.date | None
    last_id: int


_LOWEST = (False, dt.date.min, -1)


def _page_key(page: tuple[int, dt.date | None, float | None]) -> tuple[bool, dt.date, int]:
    """The walk order of a page (id, received date, rank) as a sortable key: newest = largest."""
    return (page[1] is None, page[1] or dt.date.min, page[0])


def _newest(pages: list[tuple[int, dt.date | None, float | None]], window: int) -> list[tuple[int, float | None]]:
    return [(i, raw) for i, _, raw in sorted(pages, key=_page_key, reverse=True)[:window]]


def _pg_rank(alias: str) -> str:
    """The PostgreSQL relevance of page row ``alias``: cover density on the folded words plus on the exact words."""
    return (f"ts_rank_cd({alias}.tsv_folded, CAST(:qf AS tsquery), {PG_RANK_NORMALIZATION})"
            f" + ts_rank_cd({alias}.tsv_exact, CAST(:qe AS tsquery), {PG_RANK_NORMALIZATION})")


def _window_is_known(pages: list[tuple[int, dt.date | None, float | None]], bounds: list[tuple], window: int) -> bool:
    """True when the newest ``window`` matches are all among ``pages`` (each walk read every match
    with a key at or above its bound, so every match at or above the highest bound is known)."""
    floor = max(bounds, default=_LOWEST)
    return sum(1 for p in pages if _page_key(p) >= floor) >= window or floor == _LOWEST


_PG_PLAN_SQL = ("set_config('enable_bitmapscan', :plan_b, true), set_config('enable_indexscan', :plan_i, true), "
                "set_config('enable_seqscan', 'off', true)")
_PG_WALK = {"plan_b": "off", "plan_i": "on"}
_PG_GIN = {"plan_b": "on", "plan_i": "off"}


def _pg_plan(conn: sa.Connection, plan: dict[str, bool], *, walk: bool) -> None:
    """Plan the next queries of this transaction as walks on a btree index, or as GIN bitmap scans."""
    if plan.get("walk") != walk:
        conn.execute(sa.text("SELECT " + _PG_PLAN_SQL), _PG_WALK if walk else _PG_GIN)
        plan["walk"] = walk


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA busy_timeout = 10000")
    cur.close()
