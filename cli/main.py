"""The ``sohoa`` command: one sub-command per thing a counter operator, case handler or archivist does.

Every error a user can cause ends in one plain sentence and a documented exit code (see
models/errors.py and README.md), never a traceback.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.labels import FIELDS, SIGNERS, STATUS, STORED_KEYS, label, local_iso
from cli.options import CASE_HELP, CaseArg, Jobs, Json, argument, case_arg, option
from cli.output import document_mark, log_file, print_json
from models import SohoaError
from pipeline.limits import printable

__all__ = ["CASE_HELP", "case_arg", "main", "build_app"]

# Modules that add their own sub-commands with ``register(app)``: the case handlers'
# (search, link, verify, reindex), the scanning desk (watch, coversheet), the archivists (backfill, worker),
# the web administrator (serve, user, token, audit) and signing (keys, sign).
EXTENSIONS = ("cli.storage", "cli.desk", "cli.backfill", "cli.web_admin", "cli.sign", "cli.retention",
              "cli.archive", "cli.webhook")


# Commands that run Prefect flows: their Prefect log lines go to the log file unless --verbose.
PREFECT_COMMANDS = {"demo", "scan", "backfill", "watch", "worker", "retry", "repair-stacks", "verify"}


def _quiet_prefect(verbose: bool, command: str | None = None) -> None:
    """Keep Prefect's log lines (and its first-run usage-data notice) off the operator's screen.

    Without --verbose, Prefect logs to ``<data dir>/logs/sohoa.log`` (tracebacks included) instead of
    the terminal. Usage data is not sent (server analytics off, DO_NOT_TRACK=1 unless set), so its
    notice never shows: dossiers of public administration stay on machines the agency chose.
    """
    # A fresh PREFECT_HOME migrates its database on the first start: give the temporary server
    # time for that instead of failing the first scan (Prefect's default is 20 s).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if verbose:
        return
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    ours = os.environ.get("PREFECT_LOGGING_SETTINGS_PATH", "").endswith("/logs/prefect-logging.yml")
    if command in PREFECT_COMMANDS and ("PREFECT_LOGGING_SETTINGS_PATH" not in os.environ or ours):
        try:
            os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(_prefect_logging_to_file())
        except (OSError, ImportError, ValueError):
            pass  # no writable data dir yet: Prefect logs to the screen as usual


def _prefect_logging_to_file() -> Path:
    """Prefect's own logging.yml with its console handlers replaced by a file under the data dir."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("prefect")
    default = Path(list(spec.submodule_search_locations)[0]) / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text(encoding="utf-8"))
    target = log_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    for name, formatter in (("console", "standard"), ("debug", "debug")):
        config["handlers"][name] = {"level": 0, "class": "logging.FileHandler", "formatter": formatter,
                                    "filename": str(target), "encoding": "utf-8"}
    path = target.with_name("prefect-logging.yml")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _page_lines(report: dict[str, Any]) -> list[str]:
    out = []
    for page in report.get("pages", []):
        for issue in page.get("issues", []):
            out.append(f"    trang {page['number']}: {issue['message_vi']}  [{issue['severity']}: {issue['message_en']}]")
    return out


def _print_document(report: dict[str, Any]) -> None:
    name = printable(str(report.get("source_name", "?")))
    if report.get("status") == "failed":
        print(f"  ✗ {name}: {printable(str(report.get('error')))}")
        return
    if report.get("status") == "spooled":
        print(f"  … {name}: {report.get('error')}")
        return
    if report.get("status") == "needs-case-id":
        print(f"  ? {name}: {report.get('message_vi')} ({report.get('message_en')})")
        return
    conf = report.get("mean_confidence")
    conf_s = f"{conf:.1f}%" if conf is not None else "–"
    print(f"  {document_mark(report)} {name}: {report.get('page_count', len(report.get('pages', [])))} trang, "
          f"độ tin cậy OCR {conf_s}, {label(STATUS, report.get('status'))}, mã tài liệu {report.get('document_id')}")
    for line in _page_lines(report):
        print(line)
    if report.get("result_code"):
        print(f"    mã kết quả số hóa: {report['result_code']}")
    signing = report.get("signing")
    if signing:
        print(f"    chữ ký số: {signing['message_vi']} ({signing['message_en']})")
    for role, key in (report.get("stored_keys") or {}).items():
        print(f"    {label(STORED_KEYS, role)}: {key}")


def cmd_scan(
    files: Annotated[list[str], argument(help="tệp bản quét: TIFF, PDF, JPEG, PNG (scan files)", metavar="FILE...")],
    case: Annotated[str | None, option(
        "--case", parser=case_arg, metavar="CASE_ID",
        help=f"{CASE_HELP}; các trang trước tờ bìa đầu tiên thuộc hồ sơ này, bắt buộc khi không có tờ bìa "
             "(pages before the first cover sheet go to it; required without cover sheets)")] = None,
    kind: Annotated[str | None, option("--kind", help='loại giấy tờ (document kind), ví dụ/e.g. "Đơn đề nghị"')] = None,
    operator: Annotated[str | None, option("--operator", help="người số hóa, ghi vào bản kê (operator name, "
                                                              "recorded in the manifest)")] = None,
    jobs: Jobs = None,
    strict: Annotated[bool, option("--strict", help="từ chối tệp có trang phải quét lại (refuse a file with a page "
                                                   "that must be rescanned)")] = False,
    as_json: Json = False,
    in_process: Annotated[bool, option("--in-process", help="chạy luồng tiếp nhận ngay trong tiến trình này kể cả khi "
                                                           "dịch vụ tiếp nhận đang chạy (run the intake flow in this "
                                                           "process even when an intake service is running)")] = False,
) -> int:
    """Ingest files as documents of one case through the intake flow."""
    from cli.guards import refuse_unsendable

    files, refused = refuse_unsendable([str(Path(f).resolve()) for f in files], case)
    results = None if files else []
    if files and not in_process:
        from cli.handoff import open_service_store, page_line, scan_via_http, scan_via_service, service_url
        from cli.progress import Bar

        remote = service_url() if case else None
        store = None if remote else open_service_store()
        with Bar(len(files) if remote or store is not None else 0, "Tiếp nhận (intake)") as bar:
            if remote:  # the web app's API (SOHOA_URL, token from SOHOA_TOKEN or SOHOA_TOKEN_FILE)
                results = scan_via_http(*remote, files, case_id=case, kind=kind, strict=strict, on_file=bar.advance,
                                        on_page=None if as_json else (lambda p: bar.note(f"  {p['sentence_vi']}")))
            elif store is not None:  # a running intake service does the work: no Prefect start-up here
                def waiting(job) -> None:
                    bar.note(f"  … {(job.error or {}).get('message_vi', 'đang chờ')} (job {job.id})")

                results = scan_via_service(store, files, case_id=case, kind=kind, operator=operator,
                                           strict=strict, jobs=jobs, on_file=bar.advance, on_wait=waiting,
                                           on_page=None if as_json else (lambda p: bar.note(page_line(p))))
    if results is None:
        if not os.environ.get("PREFECT_API_URL") and not as_json:
            print("(Prefect: khởi động máy chủ tạm thời, ~20 giây; chạy 'sohoa service' hoặc đặt PREFECT_API_URL "
                  "để bỏ bước này)", file=sys.stderr)
        from flows.desk import intake

        results = intake(files=files, case_id=case, kind=kind, operator=operator, jobs=jobs,
                         strict=strict)
    results = refused + results
    if as_json:
        print_json(results)
    else:
        # A stack with cover sheets can hold several dossiers: group the reports by case.
        by_case: dict[str, list[dict[str, Any]]] = {}
        for r in results:
            by_case.setdefault(r.get("case_id") or "(chưa có mã hồ sơ / needs case ID)", []).append(r)
        for case, reports in by_case.items():
            print(f"Hồ sơ {case}:")
            for r in reports:
                _print_document(r)
        issues = {i.get("message_vi", ""): i for r in results for i in (r.get("stack") or {}).get("issues", [])}
        for issue in issues.values():
            print(f"  ! {issue.get('message_vi')} ({issue.get('message_en')})")
    codes = [r.get("exit_code", 1) for r in results if r.get("status") in ("failed", "spooled", "needs-case-id")]
    return max(codes) if codes else 0


def _check_output(path: str, what: str) -> None:
    """Refuse an output path whose folder is missing or not writable, before any OCR is done."""
    from cli.guards import refuse_special_output
    from cli.options import UsageError as OutputError

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name.",
                          f"{path} là một thư mục; hãy ghi tên tệp.")
    if not folder.is_dir():
        raise OutputError(f"The folder of {what} {path} does not exist; create it first.",
                          f"Thư mục của tệp {path} không tồn tại; hãy tạo thư mục trước.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"The folder of {what} {path} is not writable.",
                          f"Không có quyền ghi vào thư mục của tệp {path}.")
    refuse_special_output(path, what)


def cmd_pdf(
    inputs: Annotated[list[str], argument(help="các tệp bản quét, theo thứ tự trang (scan files, in page order)",
                                          metavar="INPUT...")],
    output: Annotated[str, option("-o", "--output", help="tệp PDF/A cần ghi (the PDF/A file to write)")],
    sidecar: Annotated[str | None, option("--sidecar", help="ghi văn bản vào tệp này, các trang cách nhau bằng ký tự "
                                                            "sang trang (write the text here, pages separated by "
                                                            "form feeds)")] = None,
    jobs: Jobs = None,
    case: Annotated[str | None, option("--case", metavar="CASE_ID",
                                       help="mã hồ sơ ghi vào siêu dữ liệu PDF (case ID to record in the PDF "
                                            "metadata)")] = None,
    keep_blank: Annotated[bool, option("--keep-blank", help="giữ trang trắng trong PDF (keep blank pages in the "
                                                           "PDF)")] = False,
    as_json: Json = False,
) -> int:
    """Scans → one searchable PDF/A, nothing stored."""
    from pipeline.document import process_document
    from pipeline.reader import sniff_format

    case = case_arg(case) if case else None
    # Everything that can be checked is checked before the OCR, not found after minutes of it.
    _check_output(output, "the output")
    if sidecar:
        _check_output(sidecar, "the sidecar")
    for f in inputs:
        sniff_format(Path(f))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sohoa-pdf-") as tmp:
        result = process_document([Path(f) for f in inputs], workdir=Path(tmp), out_pdf=Path(output),
                                  jobs=jobs, case_id=case, keep_blank=keep_blank)
    if sidecar:
        from cli.guards import write_text_atomic

        write_text_atomic(Path(sidecar), result.sidecar_text)
    report = result.report.to_dict()
    if as_json:
        print_json(report | {"output": output, "dropped_blank_pages": result.dropped_pages})
    else:
        conf = result.report.mean_confidence
        print(f"{printable(output)}: {len(result.page_texts)} trang, độ tin cậy OCR "
              f"{f'{conf:.1f}%' if conf is not None else '–'}, {time.perf_counter() - started:.1f} s")
        for line in _page_lines(report):
            print(line)
    return 0


# How bad a file's outcome is for ``sohoa check``: a file that cannot be read at all outranks a
# page to rescan, which outranks a good file.
_CHECK_SEVERITY = {0: 0, 4: 1, 3: 2, 2: 2, 7: 2, 1: 3}


def cmd_check(
    files: Annotated[list[str], argument(help="tệp bản quét cần kiểm tra (scan files to check)", metavar="FILE...")],
    jobs: Jobs = None,
    as_json: Json = False,
) -> int:
    """Preflight only: the verdict of every page of every file; exit 4 when a page must be rescanned, 3 for a bad file."""
    from pipeline.document import check_pages

    worst = 0
    results: list[dict[str, Any]] = []
    for f in files:
        name = printable(Path(f).name)  # a name with an escape sequence or a newline is shown escaped
        code = 0
        with tempfile.TemporaryDirectory(prefix="sohoa-check-") as tmp:
            def show(page, name=name):  # type: ignore[no-untyped-def]
                if not as_json:
                    verdict = "QUÉT LẠI" if page.needs_rescan else ("trống" if page.blank else "đạt")
                    print(f"{name} trang {page.number}: {verdict} ({page.dpi:.0f} dpi"
                          f"{', ước tính' if page.dpi_estimated else ''}, {page.seconds * 1000:.0f} ms)")
                    for issue in page.issues:
                        print(f"    {issue.message_vi}  [{issue.severity.value}: {issue.message_en}]")
            try:
                outcomes = check_pages([Path(f)], workdir=Path(tmp), jobs=jobs, on_page=show)
            except SohoaError as exc:
                code = exc.exit_code
                results.append({"file": printable(f), "error": exc.user_message(), "message_vi": exc.message_vi,
                                "message_en": exc.message_en, "exit_code": exc.exit_code})
                if not as_json:
                    print(f"{name}: {printable(exc.user_message())}")
            else:
                for o in outcomes:
                    results.append(o.report.to_dict() | {"file": printable(f)})
                    if o.report.needs_rescan:
                        code = 4
        if _CHECK_SEVERITY.get(code, 3) > _CHECK_SEVERITY.get(worst, 3):
            worst = code
    if as_json:
        print_json(results)
    return worst


def _no_documents(case: str) -> SohoaError:
    from models import NotFound
    from storage.config import Settings

    return NotFound(f"Case {case} has no documents in the store ({Settings.from_env().describe()['store']}); "
                    "check the case ID, or 'sohoa info' for the store in use.",
                    f"Hồ sơ {case} chưa có tài liệu nào trong kho ({Settings.from_env().describe()['store']}); "
                    "hãy kiểm tra mã hồ sơ, hoặc chạy 'sohoa info' để xem kho đang dùng.")


def cmd_show(case: CaseArg, as_json: Json = False) -> int:
    """List the documents of a case."""
    from flows.common import open_archive

    from models import DocumentRecord

    listing = open_archive().read_case(case)
    docs = [DocumentRecord.from_manifest(e) for e in listing.documents]
    for problem in listing.problems:  # an unreadable entry is reported; the readable ones are listed
        print(f"  ! {problem.key}: không đọc được (unreadable: {problem.problem})", file=sys.stderr)
    if as_json:
        print_json([d.to_manifest() for d in docs])
        return 0 if docs else 7
    if not docs:
        raise _no_documents(case)
    print(f"Hồ sơ {case}: {len(docs)} tài liệu")
    for d in docs:
        conf = f"{d.mean_confidence:.1f}%" if d.mean_confidence is not None else "–"
        print(f"  {d.document_id}  {d.page_count} trang  OCR {conf}  {d.kind or ''}  {d.source_name}  "
              f"{local_iso(d.created_at)}  {d.operator or ''}")
        if d.result_code:
            print(f"      mã kết quả số hóa: {d.result_code}")
        if d.signatures:
            for sig in d.signatures:
                test = " [KHÓA THỬ NGHIỆM/TEST]" if sig.get("test") else ""
                print(f"      ký số {label(SIGNERS, sig.get('role'))}: {sig.get('signer')}, {local_iso(sig.get('signed_at'))}, "
                      f"{sig.get('level')}{test}")
        else:
            print("      chữ ký số: chưa ký số (not signed)")
        for f in d.extracted:
            print(f"      {label(FIELDS, f['name'])}: {f['value']}  (trang {f['page']}, độ tin cậy {float(f['confidence']):.2f})")
    return 0


def cmd_get(
    case: CaseArg,
    output: Annotated[str, option("-o", "--output", help="thư mục để ghi vào; với --merged: tệp PDF cần ghi (the "
                                                         "folder to write into; with --merged, the PDF file to write)")],
    merged: Annotated[bool, option("--merged", help="ghi cả hồ sơ thành một PDF, mỗi tài liệu một dấu trang; PDF/A-2b "
                                                   "khi mọi phần đều là PDF/A (the whole case as one PDF, one bookmark "
                                                   "per document; PDF/A-2b when every part is)")] = False,
) -> int:
    """Write every document of a case (searchable PDF and original) into a folder, or one merged PDF."""
    from flows.common import open_archive

    archive = open_archive()
    if merged:
        from flows.common import write_case_pdf

        print(write_case_pdf(case, Path(output), archive=archive))
        return 0
    docs = archive.manifest_records(case)
    if not docs:
        raise _no_documents(case)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for d in docs:
        stem = Path(d.source_name).stem or d.document_id
        tag = d.document_id[:8]
        for role, key in d.keys.items():
            suffix = {"searchable_pdf": ".pdf", "ocr_json": ".ocr.json"}.get(role, f".original{Path(key).suffix}")
            target = out / f"{stem}-{tag}{suffix}"
            archive.store.get_file(key, target)
            print(target)
    return 0


def cmd_demo(jobs: Jobs = None) -> int:
    """Make a small sample dossier, ingest it through the intake flow and show the result."""
    from flows.common import open_archive, settings
    from flows.desk import intake
    from pipeline.sample import make_sample_dossier

    config = settings()
    from flows.signing import signing_config
    from pipeline.keyring import init_test_keys, keys_dir_for

    if not signing_config().can_sign:
        # The embedded default signs: make TEST keys once, and say so.
        init_test_keys(keys_dir_for(config.data_dir), operator="demo")
        print(f"Đã tạo khóa THỬ NGHIỆM (TEST) trong {keys_dir_for(config.data_dir)} (sohoa keys init-test).")
    if signing_config().test:
        from cli.sign import TEST_NOTICE

        print(TEST_NOTICE)
    sample_dir = config.data_dir / "demo-input"
    tiff = make_sample_dossier(sample_dir)[0]
    case = "000.00.01.H56-181010-0001"
    print(f"Hồ sơ mẫu: {tiff} (3 trang; trang 2 nghiêng 2,5°, trang 3 bị lật ngược)")
    print("(Prefect: khởi động máy chủ tạm thời, ~20 giây)", file=sys.stderr)
    started = time.perf_counter()
    [result] = intake(files=[str(tiff)], case_id=case, kind="Đơn đề nghị", operator="demo", jobs=jobs)
    if result.get("status") == "already-stored":
        print(f"Hồ sơ mẫu đã được lưu từ trước ({result.get('created_at') or '?'}); không xử lý lại. "
              "(The sample dossier was already stored; it was not processed again.)")
    if result.get("status") == "failed":
        print(result["error"], file=sys.stderr)
        return result.get("exit_code", 1)
    archive = open_archive(config)
    pdf_key = result["stored_keys"]["searchable_pdf"]
    export = config.data_dir / "demo-output" / "ho-so-mau.pdf"
    archive.store.get_file(pdf_key, export)
    print(f"Mã hồ sơ:            {case}")
    print(f"PDF/A tìm kiếm được: {export}")
    print(f"  (lưu trong kho:    {pdf_key})")
    print(f"Số trang:            {result['page_count']}")
    print(f"Mã kết quả số hóa:   {result.get('result_code')}")
    signing = result.get("signing") or {}
    print(f"Chữ ký số:           {signing.get('message_vi')} ({signing.get('message_en')})")
    for sig in signing.get("signatures", []):
        print(f"  {sig['role']}: {sig['signer']}, {sig['signed_at']}, {sig['level']}")
    for f in result.get("extracted", []):
        print(f"  {f['name']}: {f['value']} (trang {f['page']}, {float(f['confidence']):.2f})")
    conf = result.get("mean_confidence")
    print(f"Độ tin cậy OCR:      {conf:.1f}%" if conf is not None else "Độ tin cậy OCR: –")
    for page in result["pages"]:
        print(f"  trang {page['number']}: xoay {page['rotation']}°, nghiêng {page['skew_degrees']:+.2f}°, "
              f"{page['word_count']} từ, {page['mean_confidence'] or 0:.1f}%")
    print(f"Thời gian:           {time.perf_counter() - started:.1f} s (kể cả khởi động Prefect)")
    print("Những dòng đầu:")
    for line in result.get("first_lines", []):
        print(f"  {line}")
    return 0


def cmd_info(as_json: Json = False) -> int:
    """Where the data, store, catalog and Prefect API are, and the versions in use (no secrets)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from pipeline.document import software_version
    from pipeline.ocr import engine_version
    from storage.config import Settings, data_dir_source, prefect_api

    config = Settings.from_env()
    info: dict[str, Any] = config.describe() | {
        "data_dir_from": data_dir_source(), "data_dir_exists": config.data_dir.is_dir(),
        "prefect_api": prefect_api(),
    }
    versions = {"sohoa": software_version(), "python": platform.python_version(), "tesseract": engine_version()}
    for package in ("prefect", "pikepdf", "opencv-python-headless", "sqlalchemy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    info["versions"] = versions
    if as_json:
        print_json(info)
        return 0
    where = "SOHOA_DATA_DIR" if info["data_dir_from"] == "SOHOA_DATA_DIR" else "mặc định/default"
    print(f"Thư mục dữ liệu (data dir): {info['data_dir']} ({where}"
          f"{'' if info['data_dir_exists'] else ', chưa tạo/not created yet'})")
    print(f"Kho lưu trữ (store):        {info['store']}")
    print(f"Danh mục (catalog):         {info['catalog']}")
    print(f"Prefect API:                {info['prefect_api']}")
    print("Phiên bản (versions):       " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return 0


def _data_dir_epilog() -> str:
    from rich.markup import escape

    from storage.config import Settings, data_dir_source

    where = "từ/from SOHOA_DATA_DIR" if data_dir_source() == "SOHOA_DATA_DIR" else \
        "mặc định cho mỗi người dùng; đặt SOHOA_DATA_DIR để dùng thư mục khác (the per-user default; set " \
        "SOHOA_DATA_DIR to use another folder)"
    # The path on a line of its own: a long one is never cut by the help's line wrapping.
    return (f"Thư mục dữ liệu (data directory):\n\n{escape(str(Settings.from_env().data_dir))}\n\n({where}). "
            "'sohoa info' cho biết kho, danh mục và Prefect API đang dùng (shows the store, catalog and Prefect API "
            "in use). 'sohoa LỆNH --help': cách dùng từng lệnh (each command's options).")


def warn_legacy_data_dir() -> None:
    """Say once (per command) that an old ./sohoa-data in this folder is no longer used."""
    from storage.config import Settings, legacy_data_dir

    old = legacy_data_dir()
    if old is None:
        return
    now = Settings.from_env().data_dir
    print(f"Chú ý: thư mục cũ {old} không còn được dùng; dữ liệu nằm ở {now}. Để dùng thư mục cũ, đặt "
          f"SOHOA_DATA_DIR={old}, hoặc chuyển nó thành {now}. (Note: the old {old} is no longer used; the data "
          f"directory is {now}. Set SOHOA_DATA_DIR={old} to keep using it, or move it to {now}.)", file=sys.stderr)


def build_app() -> typer.Typer:
    """The ``sohoa`` command: every sub-command, each option with its help text."""
    app = typer.Typer(name="sohoa", help="Số hóa hồ sơ một cửa: bản quét → PDF/A tìm kiếm được "
                                         "(one-stop-shop scans → searchable PDF/A)",
                      epilog=_data_dir_epilog(), add_completion=False, rich_markup_mode="rich",
                      no_args_is_help=True, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": ["-h", "--help"]})

    @app.callback()
    def root(verbose: Annotated[bool, option("--verbose", help="hiện nhật ký của Prefect trên màn hình (show "
                                                               "Prefect's logs on the screen)")] = False) -> None:
        """Số hóa hồ sơ một cửa."""  # --verbose is read from argv in main(), before Prefect is imported

    register(app)
    for module in EXTENSIONS:
        import importlib

        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)
    return app


def register(app: typer.Typer) -> None:
    """Add info, demo, scan, pdf, check, show and get."""
    app.command("info", help="nơi lưu dữ liệu, kho, danh mục, Prefect API; phiên bản, không có bí mật (where the "
                             "data, store, catalog and Prefect API are; versions; no secrets)")(cmd_info)
    app.command("demo", help="tạo một hồ sơ mẫu và tiếp nhận nó (make a sample dossier and ingest it)")(cmd_demo)
    app.command("scan", help="tiếp nhận các tệp bản quét thành tài liệu của hồ sơ (ingest scan files as documents "
                             "of a case)")(cmd_scan)
    app.command("pdf", help="bản quét → một PDF/A tìm kiếm được, không lưu vào kho (scans → one searchable PDF/A, "
                            "nothing stored)")(cmd_pdf)
    app.command("check", help="kiểm tra chất lượng từng trang, không OCR; mã thoát 4: cần quét lại (preflight "
                              "verdicts per page, no OCR; exit 4: rescan needed)")(cmd_check)
    app.command("show", help="liệt kê tài liệu của một hồ sơ (list the documents of a case)")(cmd_show)
    app.command("get", help="ghi mọi tài liệu của hồ sơ vào một thư mục, hoặc cả hồ sơ thành một PDF (write every "
                            "document of a case to a folder, or the whole case as one PDF)")(cmd_get)


REAPED = {"scan", "demo", "watch", "backfill", "retry", "worker", "pdf"}
_REAPER: list[Any] = []  # keeps the watchdog's pipe open for this process's whole life


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so ``finally`` blocks remove temporary files on the way out."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a sub-command and turn every known error into a sentence and an exit code."""
    import signal
    import threading

    from typer.exceptions import Exit, TyperException  # TyperException: every usage error (missing, unknown …)

    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    if from_command_line and set(argv) & REAPED:
        # Commands that start Prefect's temporary server or Tesseract: a watchdog ends those
        # children if this process is killed (kill -9 included); see cli/reaper.py.
        from cli import reaper

        _REAPER.append(reaper.start())
    command = next((a for a in argv if not a.startswith("-")), None)
    _quiet_prefect("--verbose" in argv, command)
    sohoa = _vietnamese_help(typer.main.get_command(build_app()))
    try:
        # Parsing and the command run here rather than in Typer's standalone main(), which would turn
        # Ctrl-C and SIGTERM into a bare exit code: every way out below is ours.
        with sohoa.make_context("sohoa", argv) as ctx:  # a malformed value raises our error, exit 2
            warn_legacy_data_dir()
            code = sohoa.invoke(ctx)
        return code if isinstance(code, int) else 0
    except SohoaError as exc:
        from cli.guards import sentence_for

        exc = sentence_for(command, exc)
        print(printable(exc.user_message()), file=sys.stderr)  # a file name in it is shown escaped
        return exc.exit_code
    except Exit as exc:  # --help
        return exc.exit_code
    except TyperException as exc:  # a missing argument, an unknown option, a value of the wrong type
        _usage_error(exc)
        return exc.exit_code
    except Exception as exc:
        from models.errors import as_disk_full

        from cli.guards import sentence_for

        full = as_disk_full(exc)
        if full is None:
            raise
        full = sentence_for(command, full)
        print(full.user_message(), file=sys.stderr)
        return full.exit_code
    except Terminated:
        print("Đã dừng theo tín hiệu SIGTERM (terminated).", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("Đã dừng theo yêu cầu (interrupted).", file=sys.stderr)
        return 130


def _usage_error(exc: Any) -> None:
    """One sentence for a command line that cannot be used, and where its help is."""
    ctx = getattr(exc, "ctx", None)
    where = f" — xem/see '{ctx.command_path} --help'" if ctx is not None else ""
    message = exc.format_message().strip()
    if exc.__class__.__name__ == "NoArgsIsHelpError":  # a group without its sub-command: its help was shown
        if message:
            print(message, file=sys.stderr)
        return
    said = _usage_in_vietnamese(exc)
    print(f"Lệnh chưa đúng cách dùng: {said} (usage error: {message.removesuffix('.')}){where}.", file=sys.stderr)


def _usage_in_vietnamese(exc: Any) -> str:
    """What is wrong with the command line, in Vietnamese, from the kind of Typer/Click error.

    Told by class name (as NoArgsIsHelpError above): Typer keeps these classes in a private module,
    and an unknown kind gets the generic sentence rather than a failing import."""
    kinds = {c.__name__ for c in type(exc).__mro__}

    def hint() -> str:
        names = getattr(exc, "param_hint", None)
        param = getattr(exc, "param", None)
        if not names and param is not None:
            names = param.get_error_hint()
        return " / ".join(names) if isinstance(names, list | tuple) else str(names or "")

    if "MissingParameter" in kinds:
        param_type = getattr(exc, "param_type", None) or getattr(getattr(exc, "param", None), "param_type_name", "")
        return f"thiếu {'tham số' if param_type == 'argument' else 'tùy chọn'} {hint()}".rstrip()
    if "BadParameter" in kinds:
        return f"giá trị của {hint()} không hợp lệ"
    if "NoSuchOption" in kinds:
        possible = getattr(exc, "possibilities", None)
        maybe = f"; có phải là {', '.join(sorted(possible))}?" if possible else ""
        return f"không có tùy chọn {getattr(exc, 'option_name', '')}{maybe}"
    text = exc.format_message()
    if text.startswith("No such command"):
        return "không có lệnh " + text.removeprefix("No such command").strip().rstrip(".")
    if text.startswith("Got unexpected extra argument"):
        return "thừa tham số " + text.rpartition("(")[2].rstrip(").")
    return "xem giải thích tiếng Anh"


HELP_OPTION_TEXT = "hiện trợ giúp này rồi thoát (show this message and exit)"


def _vietnamese_help(command: Any) -> Any:
    """Vietnamese first in every help screen: panel titles and the -h/--help line of each command."""
    from typer import rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = "Tham số (Arguments)"
    rich_utils.OPTIONS_PANEL_TITLE = "Tùy chọn (Options)"
    rich_utils.COMMANDS_PANEL_TITLE = "Lệnh (Commands)"
    rich_utils.REQUIRED_LONG_STRING = "[bắt buộc / required]"
    rich_utils.DEFAULT_STRING = "[mặc định / default: {}]"
    rich_utils.ENVVAR_STRING = "[biến môi trường / env var: {}]"

    def walk(cmd: Any) -> None:
        make = cmd.get_help_option  # Typer builds the help option on first use, with an English text

        def get_help_option(ctx: Any, _make: Any = make) -> Any:
            found = _make(ctx)
            if found is not None:
                found.help = HELP_OPTION_TEXT
            return found

        cmd.get_help_option = get_help_option
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command)
    return command


if __name__ == "__main__":  # python -m cli.main
    sys.exit(main())
