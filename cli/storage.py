"""The case handlers' and archivists' commands: search, cases, link, verify, reindex and retry (the spool).

Registered into ``sohoa`` by cli/main.py (``register(subparsers)``). Every command opens the store
and catalog from the environment (SOHOA_S3_*, SOHOA_DATABASE_URL, SOHOA_DATA_DIR) and turns what it
finds into plain sentences; errors are models.errors types and end in their exit code.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any

from models import NotFound, SohoaError

PROBLEM_EXIT_CODE = 5  # verify found missing or altered objects; the spool still holds scans
MAX_EXPIRY = dt.timedelta(days=7)  # the S3 limit for presigned URLs

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class UsageError(SohoaError):
    """A command-line value that cannot be used (exit code 2, like a malformed case ID)."""

    exit_code = 2


def expires_arg(text: str) -> dt.timedelta:
    """argparse type: ``30m``, ``1h``, ``7d`` (at most 7 days, the S3 limit)."""
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
    """argparse type: a calendar date YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"'{text}' is not a date: write it as YYYY-MM-DD, e.g. 2018-10-10.",
                         f"'{text}' không phải ngày: hãy viết dạng YYYY-MM-DD, ví dụ 2018-10-10.") from None


def limit_arg(text: str) -> int:
    """argparse type: a positive number of results."""
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


# ---------------------------------------------------------------------------------------- commands
def cmd_search(args: argparse.Namespace) -> int:
    """Full-text search over the OCR text of every catalogued page, best first."""
    from cli.main import print_json
    from flows.common import open_archive

    if args.id:
        return _search_identifier(args)
    if not args.text:
        raise UsageError("Give words to search for, or --id VALUE.", "Hãy ghi từ cần tìm, hoặc --id GIÁ_TRỊ.")
    hits = open_archive().catalog.search(args.text, case_prefix=args.case_prefix,
                                         since=args.since, until=args.until, kind=args.kind,
                                         limit=args.limit, offset=args.offset)
    if args.json:
        print_json([{"case_id": h.case_id, "document_id": h.document_id, "source_name": h.source_name,
                     "kind": h.kind, "page": h.page, "source_page": h.source_page, "score": h.score,
                     "snippet": h.snippet} for h in hits])
        return 0
    if not hits:
        print(f"Không tìm thấy trang nào có “{args.text}”. (No page matches “{args.text}”.)")
        return 0
    print(f"{len(hits)} kết quả cho “{args.text}” (results, best first; score 1.00 = best match):")
    for n, h in enumerate(hits, args.offset + 1):
        doc = f"{h.source_name} [{h.document_id}]" if h.source_name else h.document_id
        kind = f" · {h.kind}" if h.kind else ""
        print(f"{n:3d}. {h.case_id} · {doc}{kind} · trang/page {h.page} · điểm/score {h.score:.2f}")
        print(f"     {h.snippet}")
    if hits.capped:
        print(f"(Có hơn {hits.window} trang khớp; kết quả là những trang tốt nhất trong {hits.window} trang mới nhất — "
              f"hãy thêm từ, đơn vị hoặc khoảng ngày. More than {hits.window} pages match: these are the best of "
              f"the {hits.window} most recent; narrow the search.)")
    return 0


def _search_identifier(args: argparse.Namespace) -> int:
    """Documents whose result code or an extracted value (citizen ID, document number …) is exactly ``--id``."""
    from cli.main import print_json
    from flows.common import open_archive

    found = open_archive().catalog.find_by_identifier(args.id, case_prefix=args.case_prefix, limit=args.limit)
    if args.json:
        print_json([{"case_id": r.case_id, "document_id": r.document_id, "source_name": r.source_name,
                     "kind": r.kind, "result_code": r.result_code, "matched": matched,
                     "fields": r.extracted} for r, matched in found])
        return 0
    if not found:
        print(f"Không có tài liệu nào mang “{args.id}”. (No document carries “{args.id}”.)")
        return 0
    print(f"{len(found)} tài liệu mang “{args.id}” (documents):")
    for n, (r, matched) in enumerate(found, 1):
        where = next((f"trang/page {f['page']}" for f in r.extracted if f["value"] == args.id.strip()), "")
        print(f"{n:3d}. {r.case_id} · {r.source_name} [{r.document_id}] · {matched} {where} · {r.result_code or ''}")
    return 0


def cmd_cases(args: argparse.Namespace) -> int:
    """The catalogued cases, newest first (received date from the case ID), with document and page counts."""
    from cli.main import print_json
    from flows.common import open_archive

    catalog = open_archive().catalog
    filters = {"case_prefix": args.case_prefix, "since": args.since, "until": args.until}
    cases = catalog.list_cases(**filters, limit=args.limit, offset=args.offset)
    if args.json:
        print_json([c.to_dict() for c in cases])
        return 0
    total = catalog.count_cases(**filters)
    if not cases:
        print(f"Không có hồ sơ nào (no cases){' khớp bộ lọc (match the filters)' if total else ''}.")
        return 0
    print(f"{total} hồ sơ (cases), mới nhất trước (newest first); "
          f"hiển thị/showing {args.offset + 1}–{args.offset + len(cases)}:")
    for c in cases:
        received = c.received_on or "–"
        print(f"  {c.case_id}  tiếp nhận/received {received}  {c.document_count} tài liệu/documents  "
              f"{c.page_count} trang/pages")
    return 0


def offset_arg(text: str) -> int:
    """argparse type: how many results to skip (0 or more)."""
    if not text.strip().isdigit():
        raise UsageError(f"'{text}' is not a number of results to skip: write 0 or more.",
                         f"'{text}' không phải số kết quả cần bỏ qua: hãy ghi từ 0 trở lên.")
    return int(text)


def cmd_link(args: argparse.Namespace) -> int:
    """Time-limited URLs for each searchable PDF of a case."""
    from cli.main import print_json
    from flows.common import open_archive

    archive = open_archive()
    names = {r.document_id: r.source_name for r in archive.manifest_records(args.case)}
    links = archive.link(args.case, expires=args.expires)
    if not links:
        raise NotFound(f"Case {args.case} has no searchable PDF in the store.",
                       f"Hồ sơ {args.case} chưa có PDF tìm kiếm được nào trong kho.")
    until = dt.datetime.now(dt.UTC) + args.expires
    expire = archive.links_expire
    if args.json:
        print_json([{"case_id": args.case, "document_id": doc, "source_name": names.get(doc), "url": url,
                     "expires_at": until.isoformat(timespec="seconds") if expire else None} for doc, url in links])
        return 0
    if expire:
        print(f"Hồ sơ {args.case}: {len(links)} PDF, đường dẫn có hiệu lực {_format_expiry(args.expires)} "
              f"(links valid until {until:%Y-%m-%d %H:%M} UTC)")
    else:
        print(f"Hồ sơ {args.case}: {len(links)} PDF trong kho thư mục cục bộ: đây là đường dẫn tệp trên máy này, "
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


def cmd_verify(args: argparse.Namespace) -> int:
    """Fixity: re-read every stored object of one case (or all) and compare its SHA-256; --repair heals."""
    from cli.main import print_json
    from flows.common import open_archive

    archive = open_archive()
    if args.case is not None and archive.read_manifest(args.case) is None:
        raise NotFound(f"Case {args.case} has no manifest in the store.",
                       f"Hồ sơ {args.case} không có bản kê trong kho.")
    cases = [args.case] if args.case is not None else archive.manifest_cases()
    objects = sum(len(r.keys) for c in cases for r in archive.manifest_records(c))
    problems = archive.verify(args.case)
    uncatalogued = archive.uncatalogued(args.case)
    repaired: list[dict[str, Any]] = []
    if args.repair and (problems or uncatalogued):
        from flows.intake import heal_documents

        repaired = heal_documents(problems=[{"case_id": p.case_id, "document_id": p.document_id, "key": p.key,
                                             "problem": p.problem} for p in problems],
                                  uncatalogued=[list(u) for u in uncatalogued])
        problems = archive.verify(args.case)
        uncatalogued = archive.uncatalogued(args.case)
    if args.json:
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


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild the whole catalog from the manifests in the object store."""
    from cli.main import print_json
    from flows.common import open_archive

    archive = open_archive()
    documents = archive.reindex()
    cases = len(archive.catalog.case_ids())
    pages = archive.catalog.page_count_total()
    if args.json:
        print_json({"cases": cases, "documents": documents, "pages": pages})
    else:
        print(f"Đã dựng lại danh mục từ kho: {cases} hồ sơ, {documents} tài liệu, {pages} trang. "
              f"(Catalog rebuilt from the store: {cases} cases, {documents} documents, {pages} pages.)")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Send the scans waiting in the local spool (exit 5 while the store is still unreachable)."""
    from cli.main import document_mark, print_json
    from flows.spool import drain_spool, pending_jobs, spool_root

    pending = pending_jobs()
    if not pending:
        if args.json:
            print_json({"stored": [], "waiting": [], "failed": [], "busy": [], "reason": None, "exit_code": 0})
        else:
            print(f"Hàng đợi trống: không có bản quét nào chờ gửi. (The spool {spool_root()} is empty.)")
        return 0
    if not args.json:
        print(f"{len(pending)} bản quét đang chờ gửi ({len(pending)} scans waiting in the spool)…", file=sys.stderr)
    report = drain_spool(jobs=args.jobs)
    if args.json:
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


def cmd_repair_stacks(args: argparse.Namespace) -> int:
    """Rewrite the originals that hold a whole stack (written before stacks were cut per case)."""
    from cli.main import print_json
    from flows.repair import repair_stacks_flow

    repairs = repair_stacks_flow(dry_run=args.dry_run)
    if args.json:
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
        if reps and args.dry_run:
            print(f"Chạy thử: {sum(r.status == 'would-repair' for r in reps)} tài liệu sẽ được sửa. "
                  f"(Dry run: {sum(r.status == 'would-repair' for r in reps)} documents would be repaired.)")
        elif reps:
            print(f"Đã sửa {done} tài liệu; bản cũ vẫn được giữ làm phiên bản trước. "
                  f"(Repaired {done} documents; the old bytes are kept as an older version.)")
    bad = [r for r in repairs if r["status"] in ("failed", "undetermined")]
    return PROBLEM_EXIT_CODE if bad else 0


# ---------------------------------------------------------------------------------------- parser
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add search, cases, link, verify, reindex and retry to the ``sohoa`` command."""
    from cli.main import CASE_HELP, case_arg

    s = subparsers.add_parser("search", help="full-text search over the OCR text (with or without diacritics)")
    s.add_argument("text", nargs="?", help='words to find, e.g. "quyet dinh"; a case ID or part of one '
                                           '(000.00.14.H56, H56-200204) narrows to those cases')
    s.add_argument("--id", help="an exact identifier instead of words: citizen ID (12 digits), document number "
                                "and symbol, or result code")
    s.add_argument("--unit", "--case-prefix", dest="case_prefix", metavar="PREFIX",
                   help="only cases whose ID starts with this: a unit (agency code) such as 000.00.14.H56, "
                        "part of one (000.00.14) or more (000.00.14.H56-2002)")
    s.add_argument("--since", type=date_arg, help="only cases received on or after YYYY-MM-DD (date in the case ID)")
    s.add_argument("--until", type=date_arg, help="only cases received on or before YYYY-MM-DD (date in the case ID)")
    s.add_argument("--kind", help='only documents of this kind, exactly as recorded, e.g. "Đơn đề nghị"')
    s.add_argument("--limit", type=limit_arg, default=20, help="at most this many pages (default 20)")
    s.add_argument("--offset", type=offset_arg, default=0, help="skip this many results (next page of results)")
    s.add_argument("--json", action="store_true", help="print the hits as JSON")
    s.set_defaults(func=cmd_search)

    s = subparsers.add_parser("cases", help="list cases, newest first, with document and page counts")
    s.add_argument("--unit", "--case-prefix", dest="case_prefix", metavar="PREFIX",
                   help="only cases whose ID starts with this: a unit (agency code) such as 000.00.14.H56, "
                        "part of one (000.00.14) or more (000.00.14.H56-2002)")
    s.add_argument("--since", type=date_arg, help="only cases received on or after YYYY-MM-DD (date in the case ID)")
    s.add_argument("--until", type=date_arg, help="only cases received on or before YYYY-MM-DD (date in the case ID)")
    s.add_argument("--limit", type=limit_arg, default=50, help="at most this many cases (default 50)")
    s.add_argument("--offset", type=offset_arg, default=0, help="skip this many cases (next page)")
    s.add_argument("--json", action="store_true", help="print the cases as JSON")
    s.set_defaults(func=cmd_cases)

    s = subparsers.add_parser("link", help="time-limited download links for the searchable PDFs of a case")
    s.add_argument("case", type=case_arg, help=CASE_HELP)
    s.add_argument("--expires", type=expires_arg, default=dt.timedelta(hours=1),
                   help="how long the links work: 30m, 1h (default), 7d at most")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_link)

    s = subparsers.add_parser("verify", help="re-read stored objects and check every SHA-256 (exit 5: problems)")
    s.add_argument("case", nargs="?", type=case_arg, default=None, help=f"{CASE_HELP}; every case when left out")
    s.add_argument("--repair", action="store_true",
                   help="rebuild missing or altered searchable PDFs / OCR text from the original and put lost "
                        "documents back into the catalog (an altered original cannot be repaired: it is reported)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)

    s = subparsers.add_parser("reindex", help="rebuild the catalog from the manifests in the object store")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_reindex)

    s = subparsers.add_parser("repair-stacks",
                              help="rewrite originals that hold a whole cover-sheet stack so each case keeps "
                                   "only its own pages (old bytes kept as an older version)")
    s.add_argument("--dry-run", action="store_true", help="list what would be rewritten; change nothing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_repair_stacks)

    s = subparsers.add_parser("retry", help="send the scans waiting in the local spool (store was down)")
    s.add_argument("--jobs", type=int, default=None, help="pages in parallel (default: all cores)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_retry)
