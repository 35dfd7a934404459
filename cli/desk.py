"""The scanning desk's sub-commands: ``sohoa coversheet`` (print sheets) and ``sohoa watch`` (hot folder)."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from cli.options import CASE_HELP, argument, case_arg, option
from models import CaseId

Workers = Annotated[int, option("--workers", min=1, help="số tệp xử lý cùng lúc, mặc định 2 (files processed at once, "
                                                         "default 2)")]


def cmd_coversheet(
    cases: Annotated[list[CaseId], argument(help=f"một hoặc nhiều {CASE_HELP}", metavar="CASE_ID...",
                                            parser=CaseId.parse)],
    output: Annotated[str, option("-o", "--output", help="tệp PDF cần ghi (the PDF to write)")],
    dpi: Annotated[int, option("--dpi", help="độ phân giải của trang bìa, mặc định 200 (resolution of the "
                                                     "sheets, default 200)")] = 200,
) -> int:
    """Write one printable A4 cover sheet per case ID."""
    from pipeline.qr import write_coversheets

    out = write_coversheets(cases, Path(output), dpi=dpi)
    print(f"{out}: {len(cases)} tờ bìa / cover sheet(s)")
    return 0


def console_log(name: str) -> logging.Logger:
    """The logger ``name`` writing one timestamped line per event to stderr (a long-running command's screen)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def cmd_watch(
    inbox: Annotated[str, argument(help="thư mục nhận bản quét (the folder scans land in)", metavar="INBOX")],
    done: Annotated[str | None, option("--done", metavar="DIR", help="nơi chuyển tệp đã lưu, mặc định INBOX/../done "
                                                                     "(where stored files go)")] = None,
    failed: Annotated[str | None, option("--failed", metavar="DIR",
                                         help="nơi chuyển tệp bị từ chối, kèm .reason.txt, mặc định INBOX/../failed "
                                              "(where rejected files go, with a .reason.txt)")] = None,
    needs_case: Annotated[str | None, option("--needs-case", metavar="DIR",
                                             help="nơi chuyển tệp có trang chưa có mã hồ sơ, mặc định "
                                                  "INBOX/../needs-case-id (where files with pages without a case ID "
                                                  "go)")] = None,
    case: Annotated[str | None, option("--case", parser=case_arg, metavar="CASE_ID",
                                       help=f"{CASE_HELP} mặc định cho các trang trước tờ bìa đầu tiên (default case "
                                            "ID for pages before the first cover sheet)")] = None,
    workers: Workers = 2,
    jobs: Annotated[int | None, option("--jobs", help="số trang song song cho mỗi tệp, mặc định số lõi / workers "
                                                      "(pages in parallel per file; default cores / workers)")] = None,
    strict: Annotated[bool, option("--strict", help="từ chối tệp có trang phải quét lại (refuse a file with a page "
                                                   "that must be rescanned)")] = False,
    kind: Annotated[str | None, option("--kind", help='loại giấy tờ ghi cho mọi tệp, ví dụ "Đơn đề nghị" (document '
                                                      'kind recorded for every file)')] = None,
    operator: Annotated[str | None, option("--operator", help="người số hóa ghi cho mọi tệp (operator name recorded "
                                                              "for every file)")] = None,
    settle: Annotated[float, option("--settle", help="số giây tệp phải đứng yên trước khi xử lý, mặc định 2 (seconds "
                                                     "a file must stay unchanged, default 2)")] = 2.0,
    poll: Annotated[float, option("--poll", help="số giây giữa hai lần xem INBOX, mặc định 1 (seconds between looks "
                                                 "at INBOX, default 1)")] = 1.0,
    grace: Annotated[float, option("--grace", help="sau số giây này, tệp không bao giờ trông đầy đủ vẫn được xét, mặc "
                                                   "định 60 (seconds after which a file that never looks complete is "
                                                   "judged anyway, default 60)")] = 60.0,
) -> int:
    """Serve a hot folder until interrupted: every complete file goes through the intake flow."""
    from flows.watch import HotFolder
    from flows.desk import intake
    from pipeline.document import default_jobs

    watch_log = console_log("sohoa.watch")

    inbox = Path(inbox).resolve()
    # Pages of all files in flight share the cores: N files at once get cores/N pages each.
    jobs = jobs or max(1, default_jobs() // workers)

    def ingest(path: Path, case_id: str | None) -> list[dict]:
        return intake(files=[str(path)], case_id=case_id, kind=kind, operator=operator, jobs=jobs,
                      strict=strict, write_check=True)

    folder = HotFolder(
        inbox=inbox, done=Path(done or inbox.parent / "done"), failed=Path(failed or inbox.parent / "failed"),
        needs_case=Path(needs_case or inbox.parent / "needs-case-id"), ingest=ingest,
        default_case=case, workers=workers, settle=settle, poll=poll,
        incomplete_grace=grace,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _warm_prefect(watch_log, stop)
    watch_log.info("watching %s (done: %s, failed: %s, needs-case-id: %s, case: %s, workers: %d%s)",
                   folder.inbox, folder.done, folder.failed, folder.needs_case, folder.default_case or "-",
                   folder.workers, ", strict" if strict else "")
    try:
        folder.run(stop)
    except KeyboardInterrupt:
        stop.set()
    watch_log.info("stopped")
    return 0


def _warm_prefect(log: logging.Logger, stop: threading.Event) -> None:
    """Start Prefect once, before the first file (several workers starting it at once failed a good file)."""
    from flows.service import start_prefect
    from models.jobs import retry_delay

    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            start_prefect()
            return
        except Exception as exc:  # noqa: BLE001 - not ready yet: files wait in INBOX, nothing fails
            log.warning("Prefect chưa sẵn sàng, thử lại (Prefect not ready: %s: %s)", type(exc).__name__, exc)
            stop.wait(retry_delay(attempt))


def cmd_service(
    workers: Annotated[int, option("--workers", min=1, help="số hồ sơ được lưu cùng lúc, mặc định 2 (dossiers stored "
                                                            "at once, default 2)")] = 2,
    check_workers: Annotated[int, option("--check-workers", min=1,
                                         help="số lượt tải lên được kiểm tra trang cùng lúc, mặc định 4 (uploads "
                                              "whose pages are checked at once, default 4)")] = 4,
    jobs: Annotated[int | None, option("--jobs", help="số trang song song cho mỗi hồ sơ, mặc định: mọi lõi (pages in "
                                                      "parallel per dossier; default: all cores)")] = None,
) -> int:
    """Run the desk's intake service until interrupted: page checks at once, storing through Prefect."""
    from flows.service import IntakeService

    service_log = console_log("sohoa.service")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service = IntakeService(workers=workers, check_workers=check_workers, jobs=jobs).start()
    service_log.info("intake service %s started (storing: %d at a time, checks: %d at a time)",
                     service.instance, workers, check_workers)
    from flows.webhook_delivery import DeliveryWorker  # the e-system's webhooks are sent from here too

    hooks = DeliveryWorker(service.store.catalog.engine).start()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    service_log.info("stopping; jobs in progress are finished or taken up again at the next start")
    hooks.stop()
    service.stop(wait=False)
    return 0


def register(app: typer.Typer) -> None:
    """Add ``coversheet``, ``service`` and ``watch`` to the ``sohoa`` command."""
    app.command("coversheet", help="in mỗi mã hồ sơ một tờ bìa A4 có mã QR (print one A4 cover sheet with a QR code "
                                   "per case ID)")(cmd_coversheet)
    app.command("service", help="chạy dịch vụ tiếp nhận của bàn quét: kiểm tra trang ngay, rồi lưu (run the desk's "
                                "intake service: instant page checks, then storing)")(cmd_service)
    app.command("watch", help="thư mục theo dõi: tiếp nhận mọi tệp quét hoàn chỉnh rơi vào INBOX (hot folder: ingest "
                              "every complete scan file that lands in INBOX)")(cmd_watch)
