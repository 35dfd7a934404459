"""The commands on documents: demo, scan, pdf, check, show and get, and how their reports are printed."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.labels import FIELDS, SIGNERS, STATUS, STORED_KEYS, label
from cli.options import CASE_HELP, CaseArg, Jobs, Json, argument, case_arg, option
from cli.output import document_mark, print_json
from models import SohoaError
from models.clock import local_iso
from pipeline.limits import printable


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


def register(app: typer.Typer) -> None:
    """Add demo, scan, pdf, check, show and get (after ``info``: the order of ``sohoa --help``)."""
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

