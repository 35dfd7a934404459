"""The archivists' sub-commands: ``sohoa backfill`` (years of scans → archive) and ``sohoa worker``."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
import time
from pathlib import Path

BACKFILL_EPILOG = """\
exit codes: 0 every file stored or already stored · 3 some files failed or had no case ID (see the report)
· 2 usage. Stop it at any time (Ctrl-C); the same command again finishes the rest without duplicates."""


def _print_summary(summary: dict, *, dry: bool = False) -> None:
    counts = summary["counts"]
    if bf_stop_set():
        print("Đã dừng theo yêu cầu; chạy lại cùng lệnh để hoàn tất phần còn lại. "
              "(Stopped on request; run the same command again to finish the rest.)")
    print(f"Backfill ({summary.get('mode', 'local')}): {summary['files']} tệp, {summary['pages']} trang mới, "
          f"{summary['seconds']:.0f} s")
    labels = {"stored": "đã lưu (stored)", "skipped": "bỏ qua, đã có (skipped, already stored)",
              "failed": "lỗi (failed)", "no-case-id": "không có mã hồ sơ (no case ID)",
              "interrupted": "dừng giữa chừng, chưa lưu (interrupted, not stored)"}
    if counts.get("refused"):
        labels["refused"] = "ngoài thư mục nguồn (refused: outside the tree)"
    for status, label in labels.items():
        if status == "interrupted" and not counts.get(status):
            continue
        print(f"  {label:<45} {counts.get(status, 0)}")
    if summary["seconds"] > 0 and summary["pages"]:
        print(f"  {'tốc độ (rate)':<45} {summary['pages'] / summary['seconds'] * 60:.1f} trang/phút")
    if summary.get("workers"):
        print(f"  {'worker':<45} {', '.join(summary['workers'])}")
    if summary.get("report"):
        print(f"  {'báo cáo (report)':<45} {summary['report']}")
    if counts.get("failed") and "--verbose" not in sys.argv:
        from cli.main import log_file

        print(f"  {'nhật ký chi tiết (log)':<45} {log_file()}")


def cmd_backfill(args: argparse.Namespace) -> int:
    """Ingest a directory tree or CSV of scans; resumable, bounded, with a CSV report."""
    from flows import backfill as bf

    source = Path(args.source).resolve()
    case_from = args.case_from or ("csv" if source.is_file() and source.suffix.lower() == ".csv" else "folder")
    from flows.common import settings

    report = Path(args.report).resolve() if args.report else \
        settings().data_dir / "reports" / f"backfill{'-dry-run' if args.dry_run else ''}-{dt.datetime.now():%Y%m%d-%H%M%S}.csv"
    print(f"Báo cáo (report): {report}", flush=True)
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
    with _StopOnCtrlC() as stopper:
        summary = flow(source=str(source), case_from=case_from, concurrency=args.concurrency, report=str(report),
                       jobs=args.jobs, stop_after=args.max_files, distributed=distributed,
                       chunk_size=args.chunk_size, chunks_in_flight=args.chunks_in_flight,
                       stale_after=args.stale_after, allow_outside=args.allow_outside, echo=True)
        return stopper.finish(summary)


def _exit_code(summary: dict) -> int:
    if summary.get("counts", {}).get("interrupted") or bf_stop_set():
        return 130
    bad = sum(summary["counts"].get(k, 0) for k in ("failed", "no-case-id", "refused"))
    return 3 if bad else 0


def bf_stop_set() -> bool:
    from flows import backfill as bf

    return bf.STOP.is_set()


class _StopOnCtrlC:
    """Ctrl-C during a backfill: stop within seconds with an exact report; a second Ctrl-C stops at once.

    The first Ctrl-C sets ``flows.backfill.STOP``: no file starts, the files under way get a short
    grace, then no document may enter a manifest any more and each unfinished file is reported as
    stored (if it was recorded in time) or interrupted. As soon as the report is final, the summary
    is printed and the process leaves, without waiting for OCR programs still running (they are
    ended). Prefect's own shutdown would wait for every running page first (~80 s measured).
    """

    WAIT_FOR_REPORT = 6.0  # seconds the first Ctrl-C waits for the exact report before leaving anyway

    def __init__(self) -> None:
        self._printed = threading.Lock()
        self._done = False
        self._previous = None

    def __enter__(self) -> _StopOnCtrlC:
        from flows import backfill as bf

        bf.STOP.clear()
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def _on_sigint(self, signum, frame) -> None:  # type: ignore[no-untyped-def]
        from flows import backfill as bf

        if bf.STOP.is_set():
            print("\nDừng ngay; những tệp đang xử lý chưa được ghi vào báo cáo. (Stopped at once; the files under "
                  "way are not in the report: run the same command again.)", file=sys.stderr, flush=True)
            _leave(130)
        bf.STOP.set()
        print("\nĐang dừng: hoàn tất báo cáo trong vài giây; nhấn Ctrl-C lần nữa để dừng ngay. (Stopping: the "
              "report is being completed; press Ctrl-C again to stop at once.)", file=sys.stderr, flush=True)
        threading.Thread(target=self._leave_when_reported, name="backfill-stop", daemon=True).start()

    def _leave_when_reported(self) -> None:
        from flows import backfill as bf

        bf.FINISHED.wait(self.WAIT_FOR_REPORT)
        time.sleep(0.3)  # the flow may return normally by itself
        with self._printed:
            if self._done:
                return
            self._done = True
            if bf.LAST_SUMMARY:
                _print_summary(dict(bf.LAST_SUMMARY))
            sys.stdout.flush()
        _leave(130)

    def finish(self, summary: dict) -> int:
        with self._printed:
            if not self._done:
                self._done = True
                _print_summary(summary)
        return _exit_code(summary)


def _descendants(pid: int) -> list[int]:
    """Every process started (directly or not) by ``pid``, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _leave(code: int) -> None:
    """End the process now: end the programs it started (OCR, a temporary Prefect server), then exit."""
    for child in _descendants(os.getpid()):
        try:
            os.kill(child, signal.SIGTERM)
        except OSError:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
    s.add_argument("--report", help="CSV report path (default: <data dir>/reports/backfill-<time>.csv)")
    s.add_argument("--dry-run", action="store_true",
                   help="list what would be ingested, skipped or is unusable; process nothing")
    s.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="show Prefect's logs and tracebacks on the screen (default: in <data dir>/logs/sohoa.log)")
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
