"""The scanning desk's sub-commands: ``sohoa coversheet`` (print sheets) and ``sohoa watch`` (hot folder)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from models import CaseId

CASE_HELP = "case ID (mã hồ sơ), e.g. 000.00.01.H56-181010-0001"


def cmd_coversheet(args: argparse.Namespace) -> int:
    """Write one printable A4 cover sheet per case ID."""
    from pipeline.qr import write_coversheets

    out = write_coversheets(args.cases, Path(args.output), dpi=args.dpi)
    print(f"{out}: {len(args.cases)} tờ bìa / cover sheet(s)")
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


def cmd_watch(args: argparse.Namespace) -> int:
    """Serve a hot folder until interrupted: every complete file goes through the intake flow."""
    from flows.watch import HotFolder
    from flows.intake import intake
    from pipeline.document import default_jobs

    watch_log = console_log("sohoa.watch")

    inbox = Path(args.inbox).resolve()
    # Pages of all files in flight share the cores: N files at once get cores/N pages each.
    jobs = args.jobs or max(1, default_jobs() // args.workers)

    def ingest(path: Path, case_id: str | None) -> list[dict]:
        return intake(files=[str(path)], case_id=case_id, kind=args.kind, operator=args.operator, jobs=jobs,
                      strict=args.strict, write_check=True)

    folder = HotFolder(
        inbox=inbox, done=Path(args.done or inbox.parent / "done"), failed=Path(args.failed or inbox.parent / "failed"),
        needs_case=Path(args.needs_case or inbox.parent / "needs-case-id"), ingest=ingest,
        default_case=args.case, workers=args.workers, settle=args.settle, poll=args.poll,
        incomplete_grace=args.grace,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _warm_prefect(watch_log, stop)
    watch_log.info("watching %s (done: %s, failed: %s, needs-case-id: %s, case: %s, workers: %d%s)",
                   folder.inbox, folder.done, folder.failed, folder.needs_case, folder.default_case or "-",
                   folder.workers, ", strict" if args.strict else "")
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


def cmd_service(args: argparse.Namespace) -> int:
    """Run the desk's intake service until interrupted: page checks at once, storing through Prefect."""
    from flows.service import IntakeService

    service_log = console_log("sohoa.service")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service = IntakeService(workers=args.workers, check_workers=args.check_workers, jobs=args.jobs).start()
    service_log.info("intake service %s started (storing: %d at a time, checks: %d at a time)",
                     service.instance, args.workers, args.check_workers)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    service_log.info("stopping; jobs in progress are finished or taken up again at the next start")
    service.stop(wait=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``coversheet`` and ``watch`` to the ``sohoa`` command."""
    s = sub.add_parser("coversheet", help="print one A4 cover sheet with a QR code per case ID")
    s.add_argument("cases", nargs="+", type=CaseId.parse, metavar="CASE_ID", help=CASE_HELP)
    s.add_argument("-o", "--output", required=True, help="the PDF to write")
    s.add_argument("--dpi", type=int, default=200)
    s.set_defaults(func=cmd_coversheet)

    s = sub.add_parser("service", help="run the desk's intake service (scan jobs: instant page checks, then storing)")
    s.add_argument("--workers", type=int, default=2, help="dossiers stored at once (default 2)")
    s.add_argument("--check-workers", type=int, default=4, help="uploads whose pages are checked at once (default 4)")
    s.add_argument("--jobs", type=int, default=None, help="pages in parallel per dossier (default: all cores)")
    s.set_defaults(func=cmd_service)

    s = sub.add_parser("watch", help="hot folder: ingest every complete scan file that lands in INBOX")
    s.add_argument("inbox", metavar="INBOX")
    s.add_argument("--done", help="where stored files go (default: INBOX/../done)")
    s.add_argument("--failed", help="where rejected files go, with a .reason.txt (default: INBOX/../failed)")
    s.add_argument("--needs-case", help="where files with pages without a case ID go (default: INBOX/../needs-case-id)")
    s.add_argument("--case", type=lambda t: str(CaseId.parse(t)), help=f"default {CASE_HELP}")
    s.add_argument("--workers", type=int, default=2, help="files processed at once (default 2)")
    s.add_argument("--jobs", type=int, default=None, help="pages in parallel per file (default: cores / workers)")
    s.add_argument("--strict", action="store_true", help="refuse a file with a page that must be rescanned")
    s.add_argument("--kind")
    s.add_argument("--operator")
    s.add_argument("--settle", type=float, default=2.0, help="seconds a file must stay unchanged (default 2)")
    s.add_argument("--poll", type=float, default=1.0, help="seconds between looks at INBOX (default 1)")
    s.add_argument("--grace", type=float, default=60.0,
                   help="seconds after which a file that never looks complete is judged anyway (default 60)")
    s.set_defaults(func=cmd_watch)
