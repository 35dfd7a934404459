"""The case handlers' and archivists' commands: search, cases, link, verify, reindex and retry (the spool).

Registered into ``sohoa`` by cli/main.py (``register(app)``). Every command opens the store
and catalog from the environment (SOHOA_S3_*, SOHOA_DATABASE_URL, SOHOA_DATA_DIR) and turns what it
finds into plain sentences; errors are models.errors types and end in their exit code.
"""
from __future__ import annotations

import datetime as dt
import re
import sys
from typing import Annotated, Any

import typer

from cli.options import CaseArg, Jobs, Json, OptionalCaseArg, UsageError, argument, option
from cli.output import document_mark, print_json
from models import NotFound

PROBLEM_EXIT_CODE = 5  # verify found missing or altered objects; the spool still holds scans
MAX_EXPIRY = dt.timedelta(days=7)  # the S3 limit for presigned URLs

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def expires_arg(text: str) -> dt.timedelta:
    """Parser: ``30m``, ``1h``, ``7d`` (at most 7 days, the S3 limit)."""
    m = _DURATION.fullmatch(text)
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"'{text}' is not a duration: write a number and a unit, e.g. 30m, 1h or 7d.",
                         f"'{text}' không phải khoảng thời gian: hãy viết số và đơn vị, ví dụ 30m, 1h hoặc 7d.")
    try:
        delta = dt.timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
    except OverflowError:  # e.g. 999999999999d: beyond what a date can hold, so beyond 7 days too
        delta = dt.timedelta.max
    if delta > MAX_EXPIRY:
        raise UsageError(f"A link can be valid for at most 7 days, not {text}.",
                         f"Đường dẫn chỉ có hiệu lực tối đa 7 ngày, không thể là {text}.")
    return delta


def date_arg(text: str) -> dt.date:
    """Parser: a calendar date YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"'{text}' is not a date: write it as YYYY-MM-DD, e.g. 2018-10-10.",
                         f"'{text}' không phải ngày: hãy viết dạng YYYY-MM-DD, ví dụ 2018-10-10.") from None


def limit_arg(text: str | int) -> int:
    """Parser: a positive number of results (the default arrives as a number)."""
    text = str(text)
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"'{text}' is not a number of results: write 1 or more.",
                         f"'{text}' không phải số kết quả hợp lệ: hãy ghi từ 1 trở lên.")
    return int(text)


def _format_expiry(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("ngày/days", 86400), ("giờ/hours", 3600), ("phút/minutes", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} giây/seconds"


def offset_arg(text: str | int) -> int:
    """Parser: how many results to skip (0 or more; the default arrives as a number)."""
    text = str(text)
    if not text.strip().isdigit():
        raise UsageError(f"'{text}' is not a number of results to skip: write 0 or more.",
                         f"'{text}' không phải số kết quả cần bỏ qua: hãy ghi từ 0 trở lên.")
    return int(text)


UNIT_HELP = ("chỉ những hồ sơ có mã bắt đầu bằng chuỗi này: một đơn vị (mã cơ quan) như 000.00.14.H56, một phần "
             "(000.00.14) hoặc dài hơn (000.00.14.H56-2002) (only cases whose ID starts with this: a unit, part of "
             "one or more)")
Unit = Annotated[str | None, option("--unit", "--case-prefix", metavar="PREFIX", help=UNIT_HELP)]
Since = Annotated[dt.date | None, option("--since", parser=date_arg, metavar="YYYY-MM-DD",
                                         help="chỉ hồ sơ tiếp nhận từ ngày này, theo ngày trong mã hồ sơ (only cases "
                                              "received on or after this date, the date in the case ID)")]
Until = Annotated[dt.date | None, option("--until", parser=date_arg, metavar="YYYY-MM-DD",
                                         help="chỉ hồ sơ tiếp nhận đến hết ngày này, theo ngày trong mã hồ sơ (only "
                                              "cases received on or before this date, the date in the case ID)")]
Offset = Annotated[int, option("--offset", parser=offset_arg, metavar="N",
                               help="bỏ qua N kết quả đầu, để xem trang kết quả tiếp theo (skip this many results: "
                                    "the next page of results)")]


# ---------------------------------------------------------------------------------------- commands
def cmd_search(
    text: Annotated[str | None, argument(
        help='từ cần tìm, có dấu hoặc không, ví dụ "quyet dinh"; mã hồ sơ hoặc một phần (000.00.14.H56, H56-200204) '
             'thu hẹp về các hồ sơ đó (words to find, with or without diacritics; a case ID or part of one narrows '
             'to those cases)')] = None,
    identifier: Annotated[str | None, option(
        "--id", metavar="VALUE",
        help="tìm đúng một mã thay vì từ: số CCCD (12 chữ số), số và ký hiệu văn bản, hoặc mã kết quả số hóa (an "
             "exact identifier instead of words: citizen ID, document number and symbol, or result code)")] = None,
    case_prefix: Unit = None,
    since: Since = None,
    until: Until = None,
    kind: Annotated[str | None, option("--kind", help='chỉ tài liệu thuộc loại này, đúng như đã ghi, ví dụ "Đơn đề '
                                                      'nghị" (only documents of this kind, exactly as recorded)')] = None,
    limit: Annotated[int, option("--limit", parser=limit_arg, metavar="N",
                                 help="tối đa N trang, mặc định 20 (at most this many pages, default 20)")] = 20,
    offset: Offset = 0,
    as_json: Json = False,
) -> int:
    """Full-text search over the OCR text of every catalogued page, best first."""
    from flows.common import open_archive

    if identifier:
        return _search_identifier(identifier, case_prefix=case_prefix, limit=limit, as_json=as_json)
    if not text:
        raise UsageError("Give words to search for, or --id VALUE.", "Hãy ghi từ cần tìm, hoặc --id GIÁ_TRỊ.")
    hits = open_archive().catalog.search(text, case_prefix=case_prefix,
                                         since=since, until=until, kind=kind,
                                         limit=limit, offset=offset)
    if as_json:
        print_json([{"case_id": h.case_id, "document_id": h.document_id, "source_name": h.source_name,
                     "kind": h.kind, "page": h.page, "source_page": h.source_page, "score": h.score,
                     "snippet": h.snippet} for h in hits])
        return 0
    if not hits:
        print(f"Không tìm thấy trang nào có “{text}”. (No page matches “{text}”.)")
        return 0
    print(f"{len(hits)} kết quả cho “{text}” (results, best first; score 1.00 = best match):")
    for n, h in enumerate(hits, offset + 1):
        doc = f"{h.source_name} [{h.document_id}]" if h.source_name else h.document_id
        kind = f" · {h.kind}" if h.kind else ""
        print(f"{n:3d}. {h.case_id} · {doc}{kind} · trang/page {h.page} · điểm/score {h.score:.2f}")
        print(f"     {h.snippet}")
    if hits.capped:
        print(f"(Có hơn {hits.window} trang khớp; kết quả là những trang tốt nhất trong {hits.window} trang mới nhất — "
              f"hãy thêm từ, đơn vị hoặc khoảng ngày. More than {hits.window} pages match: these are the best of "
              f"the {hits.window} most recent; narrow the search.)")
    return 0


def _search_identifier(identifier: str, *, case_prefix: str | None, limit: int, as_json: bool) -> int:
    """Documents whose result code or an extracted value (citizen ID, document number …) is exactly ``--id``."""
    from flows.common import open_archive

    found = open_archive().catalog.find_by_identifier(identifier, case_prefix=case_prefix, limit=limit)
    if as_json:
        print_json([{"case_id": r.case_id, "document_id": r.document_id, "source_name": r.source_name,
                     "kind": r.kind, "result_code": r.result_code, "matched": matched,
                     "fields": r.extracted} for r, matched in found])
        return 0
    if not found:
        print(f"Không có tài liệu nào mang “{identifier}”. (No document carries “{identifier}”.)")
        return 0
    print(f"{len(found)} tài liệu mang “{identifier}” (documents):")
    for n, (r, matched) in enumerate(found, 1):
        where = next((f"trang/page {f['page']}" for f in r.extracted if f["value"] == identifier.strip()), "")
        print(f"{n:3d}. {r.case_id} · {r.source_name} [{r.document_id}] · {matched} {where} · {r.result_code or ''}")
    return 0


def cmd_cases(
    case_prefix: Unit = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, option("--limit", parser=limit_arg, metavar="N",
                                 help="tối đa N hồ sơ, mặc định 50 (at most this many cases, default 50)")] = 50,
    offset: Offset = 0,
    as_json: Json = False,
) -> int:
    """The catalogued cases, newest first (received date from the case ID), with document and page counts."""
    from flows.common import open_archive

    catalog = open_archive().catalog
    filters = {"case_prefix": case_prefix, "since": since, "until": until}
    cases = catalog.list_cases(**filters, limit=limit, offset=offset)
    if as_json:
        print_json([c.to_dict() for c in cases])
        return 0
    total = catalog.count_cases(**filters)
    if not cases:
        print(f"Không có hồ sơ nào (no cases){' khớp bộ lọc (match the filters)' if total else ''}.")
        return 0
    print(f"{total} hồ sơ (cases), mới nhất trước (newest first); "
          f"hiển thị/showing {offset + 1}–{offset + len(cases)}:")
    for c in cases:
        received = c.received_on or "–"
        print(f"  {c.case_id}  tiếp nhận/received {received}  {c.document_count} tài liệu/documents  "
              f"{c.page_count} trang/pages")
    return 0


def cmd_link(
    case: CaseArg,
    expires: Annotated[dt.timedelta | None, option(
        "--expires", parser=expires_arg, metavar="30m|1h|7d",
        help="đường dẫn có hiệu lực bao lâu: 30m, 1h (mặc định), tối đa 7d (how long the links work: 30m, 1h "
             "(default), 7d at most)")] = None,
    as_json: Json = False,
) -> int:
    """Time-limited URLs for each searchable PDF of a case."""
    from flows.common import open_archive

    expires = expires or dt.timedelta(hours=1)
    archive = open_archive()
    names = {r.document_id: r.source_name for r in archive.manifest_records(case)}
    links = archive.link(case, expires=expires)
    if not links:
        raise NotFound(f"Case {case} has no searchable PDF in the store.",
                       f"Hồ sơ {case} chưa có PDF tìm kiếm được nào trong kho.")
    until = dt.datetime.now(dt.UTC) + expires
    expire = archive.links_expire
    if as_json:
        print_json([{"case_id": case, "document_id": doc, "source_name": names.get(doc), "url": url,
                     "expires_at": until.isoformat(timespec="seconds") if expire else None} for doc, url in links])
        return 0
    if expire:
        print(f"Hồ sơ {case}: {len(links)} PDF, đường dẫn có hiệu lực {_format_expiry(expires)} "
              f"(links valid until {until:%Y-%m-%d %H:%M} UTC)")
    else:
        print(f"Hồ sơ {case}: {len(links)} PDF trong kho thư mục cục bộ: đây là đường dẫn tệp trên máy này, "
              "không hết hạn, ai mở được thư mục này đều đọc được; --expires không áp dụng. "
              "(Local folder store: these are plain file paths on this machine; they do not expire and anyone "
              "who can open the folder can read them; --expires does not apply.)")
    for doc, url in links:
        print(f"  {names.get(doc) or ''} [{doc}]")
        print(f"    {url}")
    return 0


def _problem_line(p: Any) -> str:
    """One line per problem, Vietnamese then English."""
    if p.problem == "missing":
        vi = f"THIẾU {p.key}: có trong bản kê của hồ sơ {p.case_id} nhưng không có trong kho"
    elif p.problem == "checksum_mismatch":
        vi = f"SAI MÃ SHA-256 {p.key}: kho trả về {p.actual}, bản kê ghi {p.expected} (dữ liệu đã bị thay đổi)"
    elif p.problem == "incomplete":
        vi = f"CHƯA XONG {p.key}: bản gốc đã lưu nhưng chưa xử lý xong; hãy quét lại tệp"
    else:
        vi = f"LỖI {p.key}: bản kê không đọc được"
    return f"{vi} ({p.message()})"


def cmd_verify(
    case: OptionalCaseArg = None,
    repair: Annotated[bool, option(
        "--repair", help="dựng lại PDF tìm kiếm được / văn bản OCR bị thiếu hoặc bị sửa từ bản gốc và đưa tài liệu bị "
                         "mất về danh mục; bản gốc bị sửa thì không sửa được, chỉ báo (rebuild missing or altered "
                         "searchable PDFs / OCR text from the original and put lost documents back into the catalog; "
                         "an altered original cannot be repaired: it is reported)")] = False,
    signatures: Annotated[bool, option(
        "--signatures", help="kiểm tra chữ ký số: toàn vẹn, tin cậy, dấu thời gian, thay đổi sau khi ký (check the "
                             "digital signatures: integrity, trust, timestamp, changes after)")] = False,
    as_json: Json = False,
) -> int:
    """Fixity: re-read every stored object of one case (or all) and compare its SHA-256; --repair heals."""
    from cli.progress import Bar
    from flows.common import open_archive

    if signatures:
        from cli.sign import cmd_verify_signatures

        return cmd_verify_signatures(case, as_json=as_json)

    archive = open_archive()
    if case is not None and archive.read_manifest(case) is None:
        raise NotFound(f"Case {case} has no manifest in the store.",
                       f"Hồ sơ {case} không có bản kê trong kho.")
    cases = [case] if case is not None else archive.manifest_cases()
    objects = sum(len(r.keys) for c in cases for r in archive.manifest_records(c))
    problems = []
    with Bar(len(cases), "Kiểm tra SHA-256 (fixity)") as bar:
        for c in cases:  # one case at a time: the checks of archive.verify(None), with a progress bar
            problems += archive.verify(c)
            bar.advance()
    uncatalogued = archive.uncatalogued(case)
    repaired: list[dict[str, Any]] = []
    if repair and (problems or uncatalogued):
        from flows.intake import heal_documents

        repaired = heal_documents(problems=[{"case_id": p.case_id, "document_id": p.document_id, "key": p.key,
                                             "problem": p.problem} for p in problems],
                                  uncatalogued=[list(u) for u in uncatalogued])
        problems = archive.verify(case)
        uncatalogued = archive.uncatalogued(case)
    if as_json:
        print_json({"cases": len(cases), "objects": objects, "ok": not problems and not uncatalogued,
                    "problems": [{"case_id": p.case_id, "document_id": p.document_id, "key": p.key,
                                  "problem": p.problem, "expected": p.expected, "actual": p.actual,
                                  "message": _problem_line(p)} for p in problems],
                    "uncatalogued": [{"case_id": c, "document_id": d} for c, d in uncatalogued],
                    "repaired": repaired})
        return PROBLEM_EXIT_CODE if problems or uncatalogued else 0
    for r in repaired:
        mark = "✓" if r["ok"] else "✗"
        print(f"  {mark} {r['case_id']} [{r['document_id']}]: {r['message']}")
    if problems or uncatalogued:
        total = len(problems) + len(uncatalogued)
        print(f"{total} vấn đề trong {objects} đối tượng của {len(cases)} hồ sơ "
              f"({total} problems in {objects} objects of {len(cases)} cases):")
        for p in problems:
            print(f"  {_problem_line(p)}")
        for case, doc in uncatalogued:
            print(f"  THIẾU TRONG DANH MỤC {case} [{doc}]: có trong bản kê nhưng tìm kiếm không thấy; chạy "
                  f"'sohoa verify --repair' (in the manifest but not in the catalog: search cannot find it)")
    else:
        print(f"Đã kiểm tra {objects} đối tượng của {len(cases)} hồ sơ: mọi mã SHA-256 đều khớp. "
              f"(Checked {objects} objects of {len(cases)} cases: every SHA-256 matches.)")
    return PROBLEM_EXIT_CODE if problems or uncatalogued else 0


def cmd_reindex(as_json: Json = False) -> int:
    """Rebuild the whole catalog from the manifests in the object store."""
    from flows.common import open_archive

    archive = open_archive()
    documents = archive.reindex()
    from flows.transfer import open_book
    from storage.disposal import restore_tombstones

    open_book(archive).restore()  # the archivists' record values, from cases/<case>/record.json
    restore_tombstones(archive.catalog.engine, archive.store)
    cases = len(archive.catalog.case_ids())
    pages = archive.catalog.page_count_total()
    if as_json:
        print_json({"cases": cases, "documents": documents, "pages": pages})
    else:
        print(f"Đã dựng lại danh mục từ kho: {cases} hồ sơ, {documents} tài liệu, {pages} trang. "
              f"(Catalog rebuilt from the store: {cases} cases, {documents} documents, {pages} pages.)")
    return 0


def cmd_retry(jobs: Jobs = None, as_json: Json = False) -> int:
    """Send the scans waiting in the local spool (exit 5 while the store is still unreachable)."""
    from cli.progress import Bar
    from flows.drain import drain_spool
    from flows.spool import pending_jobs, spool_root

    pending = pending_jobs()
    if not pending:
        if as_json:
            print_json({"stored": [], "waiting": [], "failed": [], "busy": [], "reason": None, "exit_code": 0})
        else:
            print(f"Hàng đợi trống: không có bản quét nào chờ gửi. (The spool {spool_root()} is empty.)")
        return 0
    if not as_json:
        print(f"{len(pending)} bản quét đang chờ gửi ({len(pending)} scans waiting in the spool)…", file=sys.stderr)
    with Bar(len(pending), "Gửi hàng đợi (spool)") as bar:
        report = drain_spool(jobs=jobs, on_job=bar.advance)
    if as_json:
        print_json(report.to_json())
        return report.exit_code
    for r in report.stored:
        print(f"  {document_mark(r)} {r.get('source_name')} → {r.get('case_id')} [{r.get('document_id')}]: "
              f"{r.get('status')}")
    for r in report.failed:
        print(f"  ✗ {r.get('source_name')} → {r.get('case_id')}: {r.get('error')} "
              f"(chuyển vào/moved to {r.get('failed_job')})")
    for job in report.busy:
        print(f"  … {job.source_name} → {job.case_id}: đang được gửi bởi tiến trình khác (being sent elsewhere)")
    if report.waiting:
        print(f"{len(report.waiting)} bản quét vẫn chờ trong hàng đợi (still waiting): {report.reason}")
    else:
        print(f"Đã gửi {len(report.stored)} bản quét. (Sent {len(report.stored)} scans.)")
    return report.exit_code


def cmd_repair_stacks(
    dry_run: Annotated[bool, option("--dry-run", help="chỉ liệt kê những gì sẽ được ghi lại, không thay đổi gì (list "
                                                     "what would be rewritten; change nothing)")] = False,
    as_json: Json = False,
) -> int:
    """Rewrite the originals that hold a whole stack (written before stacks were cut per case)."""
    from flows.repair import repair_stacks_flow

    repairs = repair_stacks_flow(dry_run=dry_run)
    if as_json:
        print_json(repairs)
    else:
        from flows.repair import StackRepair

        reps = [StackRepair(**{k: v for k, v in r.items() if k in StackRepair.__dataclass_fields__}
                            | {"stack_pages": r.get("stack_page_count")}) for r in repairs]
        if not reps:
            print("Không có bản gốc nào chứa cả xấp: không cần sửa. (No original holds a whole stack: nothing to "
                  "repair.)")
        for rep in reps:
            print(rep.line())
        done = sum(r.status == "repaired" for r in reps)
        if reps and dry_run:
            print(f"Chạy thử: {sum(r.status == 'would-repair' for r in reps)} tài liệu sẽ được sửa. "
                  f"(Dry run: {sum(r.status == 'would-repair' for r in reps)} documents would be repaired.)")
        elif reps:
            print(f"Đã sửa {done} tài liệu; bản cũ vẫn được giữ làm phiên bản trước. "
                  f"(Repaired {done} documents; the old bytes are kept as an older version.)")
    bad = [r for r in repairs if r["status"] in ("failed", "undetermined")]
    return PROBLEM_EXIT_CODE if bad else 0


# ---------------------------------------------------------------------------------------- registration
def register(app: typer.Typer) -> None:
    """Add search, cases, link, verify, reindex, repair-stacks and retry to the ``sohoa`` command."""
    app.command("search", help="tìm toàn văn trong chữ OCR, có dấu hoặc không dấu (full-text search over the OCR "
                               "text, with or without diacritics)")(cmd_search)
    app.command("cases", help="danh sách hồ sơ, mới nhất trước, kèm số tài liệu và số trang (list cases, newest "
                              "first, with document and page counts)")(cmd_cases)
    app.command("link", help="đường dẫn tải có thời hạn đến các PDF tìm kiếm được của hồ sơ (time-limited download "
                             "links for the searchable PDFs of a case)")(cmd_link)
    app.command("verify", help="đọc lại các đối tượng đã lưu và kiểm tra mọi mã SHA-256; mã thoát 5: có vấn đề "
                               "(re-read stored objects and check every SHA-256; exit 5: problems)")(cmd_verify)
    app.command("reindex", help="dựng lại danh mục từ các bản kê trong kho (rebuild the catalog from the manifests "
                                "in the object store)")(cmd_reindex)
    app.command("repair-stacks", help="ghi lại các bản gốc chứa cả xấp có tờ bìa để mỗi hồ sơ chỉ giữ trang của mình, "
                                      "bản cũ được giữ làm phiên bản trước (rewrite originals that hold a whole "
                                      "cover-sheet stack so each case keeps only its own pages; old bytes kept as an "
                                      "older version)")(cmd_repair_stacks)
    app.command("retry", help="gửi các bản quét đang chờ trong hàng đợi cục bộ khi kho đã hoạt động lại (send the "
                              "scans waiting in the local spool: the store was down)")(cmd_retry)
