"""The archivists' sub-commands: ``sohoa backfill`` (years of scans → archive) and ``sohoa worker``."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

BACKFILL_EPILOG = """\
exit codes: 0 every file stored or already stored · 3 some files failed or had no case ID (see the report)
· 2 usage. Stop it at any time (Ctrl-C); the same command again finishes the rest without duplicates."""


def _print_summary(summary: dict, *, dry: bool = False) -> None:
    counts = summary["counts"]
    print(f"Backfill ({summary.get('mode', 'local')}): {summary['files']} tệp, {summary['pages']} trang mới, "
          f"{summary['seconds']:.0f} s")
    labels = {"stored": "đã lưu (stored)", "skipped": "bỏ qua, đã có (skipped, already stored)",
              "failed": "lỗi (failed)", "no-case-id": "không có mã hồ sơ (no case ID)"}
    if counts.get("refused"):
        labels["refused"] = "ngoài thư mục nguồn (refused: outside the tree)"
    for status, label in labels.items():
        print(f"  {label:<45} {counts.get(status, 0)}")
    if summary["seconds"] > 0 and summary["pages"]:
        print(f"  {'tốc độ (rate)':<45} {summary['pages'] / summary['seconds'] * 60:.1f} trang/phút")
    if summary.get("workers"):
        print(f"  {'worker':<45} {', '.join(summary['workers'])}")
    if summary.get("report"):
        print(f"  {'báo cáo (report)':<45} {summary['report']}")


def cmd_backfill(args: argparse.Namespace) -> int:
    """Ingest a directory tree or CSV of scans; resumable, bounded, with a CSV report."""
    from flows import backfill as bf

    source = Path(args.source).resolve()
    case_from = args.case_from or ("csv" if source.is_file() and source.suffix.lower() == ".csv" else "folder")
    report = Path(args.report).resolve() if args.report else \
        Path.cwd() / f"backfill-{dt.datetime.now():%Y%m%d-%H%M%S}.csv"
    if args.dry_run:
        result = bf.dry_run(source, case_from=case_from, report=report, allow_outside=args.allow_outside)
        print(f"Chạy thử (dry run) {source}: {result.rows} tệp")
        print(f"  {'sẽ xử lý (would ingest)':<45} {result.would_ingest}")
        print(f"  {'bỏ qua, đã có (skipped, already stored)':<45} {result.skipped}")
        print(f"  {'không có mã hồ sơ (no case ID)':<45} {result.no_case_id}")
        print(f"  {'không dùng được (unusable)':<45} {result.unusable}")
        print(f"  {'danh sách (list)':<45} {report}")
        return 0
    distributed = False
    if os.environ.get("PREFECT_API_URL") and not args.local:
        distributed = bf.chunk_deployment_exists()
        if not distributed:
            print("(Chưa có worker nào đăng ký; chạy trên máy này. Chạy `sohoa worker` trên các máy để chia việc.)",
                  file=sys.stderr)
    elif not os.environ.get("PREFECT_API_URL"):
        print("(Prefect: khởi động máy chủ tạm thời, ~20 giây; đặt PREFECT_API_URL để xem trong giao diện Prefect)",
              file=sys.stderr)
    flow = bf.backfill
    if not distributed:
        from prefect.task_runners import ThreadPoolTaskRunner

        flow = flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=args.concurrency))
    summary = flow(source=str(source), case_from=case_from, concurrency=args.concurrency, report=str(report),
                   jobs=args.jobs, stop_after=args.max_files, distributed=distributed, chunk_size=args.chunk_size,
                   chunks_in_flight=args.chunks_in_flight, stale_after=args.stale_after,
                   allow_outside=args.allow_outside)
    _print_summary(summary)
    bad = sum(summary["counts"].get(k, 0) for k in ("failed", "no-case-id", "refused"))
    return 3 if bad else 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Become a Prefect process worker on the sohoa pool (never returns on success)."""
    from flows.worker import run_worker

    run_worker(name=args.name, pool=args.pool, limit=args.limit)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``backfill`` and ``worker`` to the ``sohoa`` command."""
    s = sub.add_parser("backfill", help="ingest a folder tree or CSV of old scans (resumable, with a report)",
                       epilog=BACKFILL_EPILOG)
    s.add_argument("source", help="a folder tree (case ID from the nearest case-named folder) or a CSV "
                                  "of path,case_id[,kind]")
    s.add_argument("--case-from", choices=["folder", "csv", "qr"], default=None,
                   help="where the case ID comes from (default: csv for a .csv source, else folder); "
                        "qr: the QR code on each file's first page")
    s.add_argument("--concurrency", type=int, default=2, help="files in flight (per worker when distributed)")
    s.add_argument("--jobs", type=int, default=1, help="pages in parallel within one file (default 1)")
    s.add_argument("--report", help="CSV report path (default: ./backfill-<time>.csv)")
    s.add_argument("--dry-run", action="store_true",
                   help="list what would be ingested, skipped or is unusable; process nothing")
    s.add_argument("--allow-outside", action="store_true",
                   help="also take files outside the source tree (symlinks out of it, absolute or '..' CSV paths)")
    s.add_argument("--local", action="store_true", help="run on this machine even when workers are registered")
    s.add_argument("--max-files", type=int, default=None, help="stop after this many files (resume later)")
    s.add_argument("--chunk-size", type=int, default=10, help="files per worker run when distributed")
    s.add_argument("--chunks-in-flight", type=int, default=4, help="worker runs queued at once")
    s.add_argument("--stale-after", type=float, default=120.0,
                   help="seconds without a heartbeat before a worker's run is taken as dead and re-run")
    s.set_defaults(func=cmd_backfill)

    s = sub.add_parser("worker", help="take a share of distributed backfills (needs PREFECT_API_URL)")
    s.add_argument("--name", help="worker name shown in Prefect and in the report (default: sohoa-<host>-<pid>)")
    s.add_argument("--pool", default="sohoa", help="work pool (default: sohoa)")
    s.add_argument("--limit", type=int, default=1, help="chunk runs at once on this machine (default 1)")
    s.set_defaults(func=cmd_worker)
