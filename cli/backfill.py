"""The archivists' sub-commands: ``sohoa backfill`` (years of scans → archive) and ``sohoa worker``."""
from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.options import argument, option

BACKFILL_EPILOG = """\
Mã thoát (exit codes): 0 mọi tệp đã lưu hoặc đã có (every file stored or already stored) · 3 có tệp lỗi hoặc \
không có mã hồ sơ, xem báo cáo (some files failed or had no case ID: see the report) · 2 lệnh sai cách dùng (usage).

Dừng lúc nào cũng được (Ctrl-C); chạy lại cùng lệnh sẽ làm nốt phần còn lại, không trùng lặp. (Stop it at any \
time; the same command again finishes the rest without duplicates.)"""


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
        from cli.output import log_file

        print(f"  {'nhật ký chi tiết (log)':<45} {log_file()}")


def cmd_backfill(
    source: Annotated[str, argument(
        help="cây thư mục (mã hồ sơ lấy từ thư mục gần nhất mang tên mã hồ sơ) hoặc tệp CSV path,case_id[,kind] "
             "(a folder tree: case ID from the nearest case-named folder; or a CSV of path,case_id[,kind])",
        metavar="SOURCE")],
    case_from: Annotated[Literal["folder", "csv", "qr"] | None, option(
        "--case-from", help="lấy mã hồ sơ từ đâu: mặc định csv cho nguồn .csv, ngoài ra folder; qr: mã QR ở trang đầu "
                            "mỗi tệp (where the case ID comes from: default csv for a .csv source, else folder; qr: the "
                            "QR code on each file's first page)")] = None,
    concurrency: Annotated[int, option("--concurrency", min=1,
                                       help="số tệp xử lý cùng lúc (mỗi worker khi chạy phân tán), mặc định 2 (files "
                                            "in flight, per worker when distributed; default 2)")] = 2,
    jobs: Annotated[int, option("--jobs", min=1, help="số trang song song trong một tệp, mặc định 1 (pages in "
                                                      "parallel within one file, default 1)")] = 1,
    report: Annotated[str | None, option("--report", metavar="FILE.csv",
                                         help="đường dẫn báo cáo CSV, mặc định <thư mục dữ liệu>/reports/backfill-"
                                              "<thời gian>.csv (CSV report path; default <data dir>/reports/"
                                              "backfill-<time>.csv)")] = None,
    dry_run: Annotated[bool, option("--dry-run", help="chỉ liệt kê tệp sẽ xử lý, bỏ qua hoặc không dùng được; không xử "
                                                     "lý gì (list what would be ingested, skipped or is unusable; "
                                                     "process nothing)")] = False,
    verbose: Annotated[bool, option("--verbose", help="hiện nhật ký Prefect và lỗi chi tiết trên màn hình, mặc định ghi "
                                                     "vào <thư mục dữ liệu>/logs/sohoa.log (show Prefect's logs and "
                                                     "tracebacks on the screen; default: in the log file)")] = False,
    allow_outside: Annotated[bool, option("--allow-outside",
                                          help="nhận cả tệp nằm ngoài cây nguồn: liên kết ra ngoài, đường dẫn CSV tuyệt "
                                               "đối hoặc có '..' (also take files outside the source tree: symlinks "
                                               "out of it, absolute or '..' CSV paths)")] = False,
    local: Annotated[bool, option("--local", help="chạy trên máy này kể cả khi đã có worker đăng ký (run on this "
                                                 "machine even when workers are registered)")] = False,
    max_files: Annotated[int | None, option("--max-files", min=1,
                                            help="dừng sau chừng này tệp, chạy tiếp sau (stop after this many files; "
                                                 "resume later)")] = None,
    chunk_size: Annotated[int, option("--chunk-size", min=1, help="số tệp mỗi lượt worker khi chạy phân tán, mặc định "
                                                                  "10 (files per worker run when distributed)")] = 10,
    chunks_in_flight: Annotated[int, option("--chunks-in-flight", min=1,
                                            help="số lượt worker xếp hàng cùng lúc, mặc định 4 (worker runs queued at "
                                                 "once, default 4)")] = 4,
    stale_after: Annotated[float, option("--stale-after",
                                         help="sau số giây không có tín hiệu sống, lượt của worker bị coi là chết và "
                                              "chạy lại, mặc định 120 (seconds without a heartbeat before a worker's "
                                              "run is taken as dead and re-run)")] = 120.0,
) -> int:
    """Ingest a directory tree or CSV of scans; resumable, bounded, with a CSV report."""
    from flows import backfill as bf

    # --verbose is read from the command line by cli.main before Prefect starts (as ``sohoa --verbose``).
    source = Path(source).resolve()
    case_from = case_from or ("csv" if source.is_file() and source.suffix.lower() == ".csv" else "folder")
    from flows.common import settings

    report = Path(report).resolve() if report else \
        settings().data_dir / "reports" / f"backfill{'-dry-run' if dry_run else ''}-{dt.datetime.now():%Y%m%d-%H%M%S}.csv"
    print(f"Báo cáo (report): {report}", flush=True)
    if dry_run:
        result = bf.dry_run(source, case_from=case_from, report=report, allow_outside=allow_outside)
        print(f"Chạy thử (dry run) {source}: {result.rows} tệp")
        print(f"  {'sẽ xử lý (would ingest)':<45} {result.would_ingest}")
        print(f"  {'bỏ qua, đã có (skipped, already stored)':<45} {result.skipped}")
        print(f"  {'không có mã hồ sơ (no case ID)':<45} {result.no_case_id}")
        print(f"  {'không dùng được (unusable)':<45} {result.unusable}")
        print(f"  {'danh sách (list)':<45} {report}")
        return 0
    distributed = False
    if os.environ.get("PREFECT_API_URL") and not local:
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

        flow = flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=concurrency))
    with _StopOnCtrlC() as stopper:
        summary = flow(source=str(source), case_from=case_from, concurrency=concurrency, report=str(report),
                       jobs=jobs, stop_after=max_files, distributed=distributed,
                       chunk_size=chunk_size, chunks_in_flight=chunks_in_flight,
                       stale_after=stale_after, allow_outside=allow_outside, echo=True)
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
    if sys.stderr.isatty():
        sys.stderr.write("\x1b[?25h")  # the progress bar hid the cursor and has no chance to show it again
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_worker(
    name: Annotated[str | None, option("--name", help="tên worker hiện trong Prefect và trong báo cáo, mặc định "
                                                      "sohoa-<máy>-<pid> (worker name shown in Prefect and in the "
                                                      "report; default sohoa-<host>-<pid>)")] = None,
    pool: Annotated[str, option("--pool", help="work pool, mặc định sohoa (default: sohoa)")] = "sohoa",
    limit: Annotated[int, option("--limit", min=1, help="số lượt chạy cùng lúc trên máy này, mặc định 1 (chunk runs "
                                                        "at once on this machine, default 1)")] = 1,
) -> int:
    """Become a Prefect process worker on the sohoa pool (never returns on success)."""
    from flows.worker import run_worker

    run_worker(name=name, pool=pool, limit=limit)
    return 0


def register(app: typer.Typer) -> None:
    """Add ``backfill`` and ``worker`` to the ``sohoa`` command."""
    app.command("backfill", epilog=BACKFILL_EPILOG,
                help="tiếp nhận một cây thư mục hoặc CSV bản quét cũ; chạy tiếp được, có báo cáo (ingest a folder tree "
                     "or CSV of old scans; resumable, with a report)")(cmd_backfill)
    app.command("worker", help="nhận một phần việc của các lượt backfill phân tán, cần PREFECT_API_URL (take a share "
                               "of distributed backfills; needs PREFECT_API_URL)")(cmd_worker)
