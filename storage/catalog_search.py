"""Catalog search: ranked full-text search of pages (PostgreSQL or SQLite) and its filters."""
from __future__ import annotations

import datetime as dt
import math
import re
import time
import unicodedata
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from models import CaseId, SearchHit, SearchResults
from storage.textsearch import (
    Bm25,
    fts_counts,
    make_snippet,
    query_words,
    relative_score,
    split_case_id_words,
)

# Search folds diacritics and đ→d, so "quyet dinh", "Quyết Định" and "QUYẾT ĐỊNH" all find
# "quyết định"; a page that also matches the words exactly as typed ranks higher.
#
# Relevance. A page must hold every word of the query (folded). The matching pages are ranked by
# - PostgreSQL: ``ts_rank_cd`` (cover density: how often and how close together the words occur,
#   divided by 1 + log(page length)) on the folded words, plus the same on the words exactly as
#   typed, so a page spelled like the query ranks above one that only matches without diacritics;
# - SQLite: Okapi BM25 (k1 1.2, b 0.75, idf ln(1 + (N − n + 0.5)/(n + 0.5)), which stays positive
#   for a word found on most pages) on the folded words plus the same on the exact words; the
#   document frequencies come from the FTS5 vocabulary.
# Both report ``score`` relative to the best page of the query: 1.0 = the best page, 0.5 = half as
# relevant by that measure. Scores compare pages of one query, not different queries or databases.
# Ranking reads at most ``SEARCH_WINDOW`` matching pages, the newest ones (PostgreSQL: of the latest
# received date from the case ID, provisional IDs first, then the latest catalogued; SQLite: the
# latest catalogued): a query matching more (a very common word on a large catalog) comes back with
# ``capped`` set, and the user narrows it (more words, a unit, a date range). That bound keeps
# search in tens of milliseconds on a million pages (bench/storage/search_bench.py). The filters (unit,
# received date, kind, case ID) are columns of the page row, so walking pages needs no look-up.
SEARCH_WINDOW = 1000  # matching pages ranked per query at most (the most recent ones)
SAMPLE_FACTOR = 2  # PostgreSQL: first walk the newest 2 windows of pages (2 000) to see how common the words are
SCAN_BUDGET = 40_000  # ... and walk on if a window is expected within this many pages, else use GIN
# PostgreSQL: relative costs (bench/storage/search_bench.py at 10^6 pages) of a walked page, of a GIN page
# list entry of the rarest word, and of a page row a GIN lookup reads.
WALK_COST, GIN_ITEM_COST, GIN_ROW_COST = 2.5, 1.0, 5.0
MAX_UNIT_WALKS = 8  # PostgreSQL: a caller with more units walks all pages, testing the unit on each
DF_CACHE_SECONDS = 600.0  # SQLite: how long a word's page count is reused for ranking
PG_RANK_NORMALIZATION = 1  # ts_rank_cd: divide by 1 + log(page length)

_CASE_ID_START = re.compile(r"^\d{3}\.")
_AGENCY_START = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[HG]\d{2}")
_UNIT_PARAM = re.compile(r"unit\d+")


class CatalogSearch:
    """The search methods of ``storage.catalog.Catalog`` (which gives the engine and transactions)."""

    search_window: int
    _df_cache: dict[tuple[str, str], tuple[int, float]]
    _pg_stats: tuple[dict[str, float], float, float] | None

    if TYPE_CHECKING:
        @property
        def is_postgres(self) -> bool: ...

        def _tx(self) -> AbstractContextManager[sa.Connection]: ...

    def __init__(self) -> None:
        self.search_window = SEARCH_WINDOW
        self._df_cache = {}  # SQLite document frequencies
        self._pg_stats = None  # word shares, pages, when

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
        ranked hits. Scores are relative (0..1, 1.0 = the best page of this query); see the
        comment at the top of ``storage.catalog_search`` for the measure.
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
                          snippet=make_snippet(r.text, folded), score=relative_score(raw[r.id], top),
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
        f_counts = [fts_counts(r.ftext) for r in rows]
        e_counts = [fts_counts(r.etext) for r in rows]
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
                                      snippet=make_snippet(r.text, folded), score=relative_score(raw[i], top),
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


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
