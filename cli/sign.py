"""Signing commands: ``keys init-test``, ``sign CASE|--all-unsigned``, ``verify --signatures [CASE]``.

Registered into ``sohoa`` by cli/main.py (``register(app)``). ``verify --signatures`` is an
option of the fixity command ``verify`` (cli/storage.py), which hands over to
``cmd_verify_signatures`` here when it is given.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import CASE_HELP, Json, UsageError, argument, case_arg, option
from cli.output import print_json
from models import NotFound

PROBLEM_EXIT_CODE = 5
TEST_NOTICE = ("Chú ý: đang ký bằng KHÓA THỬ NGHIỆM (TEST) do `sohoa keys init-test` tạo, không có giá trị pháp lý. "
               "(Signing with TEST keys made by `sohoa keys init-test`; not legally valid.)")


def _keys_dir() -> Path:
    from flows.common import settings
    from pipeline.keyring import keys_dir_for

    return keys_dir_for(settings().data_dir)


def cmd_keys_init_test(
    operator: Annotated[str, option("--operator", help="tên người số hóa được cấp khóa cá nhân THỬ NGHIỆM, mặc định "
                                                       "demo (the operator given a TEST personal key, default "
                                                       "demo)")] = "demo",
    agency: Annotated[str | None, option("--agency", help="tên cơ quan in trong chữ ký cơ quan (agency name printed in "
                                                          "the agency signature)")] = None,
    force: Annotated[bool, option("--force", help="thay bộ khóa THỬ NGHIỆM đang có (replace existing TEST "
                                                 "keys)")] = False,
) -> int:
    """Make a TEST CA with an agency, an operator and a TSA certificate in the keys folder."""
    from pipeline.keyring import init_test_keys

    keys_dir = _keys_dir()
    config = init_test_keys(keys_dir, operator=operator, agency_name=agency, force=force)
    print(f"Đã tạo bộ khóa THỬ NGHIỆM (TEST) trong {keys_dir}: CA thử nghiệm, chữ ký cơ quan "
          f"“{config.agency_name}”, chữ ký cá nhân của người số hóa “{operator}”, máy chủ dấu thời gian thử nghiệm.")
    print(f"(Made TEST keys in {keys_dir}: a TEST CA, the agency signer, operator {operator!r}'s signer and a "
          "TEST timestamp authority. Every PDF signed with them says so; they have no legal value.)")
    return 0


def cmd_keys_show() -> int:
    """Say which signers are configured (never a secret)."""
    from flows.signing import signing_config

    config = signing_config()
    print(f"Thư mục khóa (keys folder): {config.keys_dir}")
    print(f"Cơ quan (agency): {config.agency_name} — {'có khóa ký' if config.agency else 'CHƯA có khóa ký'}"
          f"{' (TEST)' if config.test else ''}")
    print(f"Dấu thời gian (TSA): {config.tsa_url or ('TEST, trong tiến trình' if config.test_tsa else 'chưa cấu hình')}")
    print(f"Người số hóa có khóa (operators with a key): {', '.join(sorted(config.operators)) or '–'}")
    return 0


def _targets(archive: Any, case: str | None, all_unsigned: bool) -> list[tuple[str, str]]:
    if all_unsigned:
        return archive.catalog.unsigned_documents()
    records = archive.manifest_records(case)
    if not records:
        raise NotFound(f"Case {case} has no documents in the store.", f"Hồ sơ {case} chưa có tài liệu nào trong kho.")
    return [(r.case_id, r.document_id) for r in records if not r.signed]


def cmd_sign(
    case: Annotated[str | None, argument(help=f"{CASE_HELP}; bỏ trống khi dùng --all-unsigned", metavar="[CASE_ID]",
                                         parser=case_arg)] = None,
    all_unsigned: Annotated[bool, option("--all-unsigned", help="mọi tài liệu chưa ký số trong danh mục (every "
                                                               "unsigned document in the catalog)")] = False,
    as_json: Json = False,
) -> int:
    """Sign stored documents that are not signed yet (agency signature; a new version of each PDF)."""
    from flows.common import open_archive
    from cli.progress import Bar
    from flows.signing import sign_stored, signing_config

    if not case and not all_unsigned:
        raise UsageError("Name a case ID or give --all-unsigned.", "Hãy ghi mã hồ sơ hoặc dùng --all-unsigned.")
    config = signing_config()
    archive = open_archive()
    targets = _targets(archive, case, all_unsigned)
    if config.test and targets and not as_json:
        print(TEST_NOTICE, file=sys.stderr)
    results = []
    with Bar(len(targets), "Ký số (signing)") as bar:
        for target_case, doc in targets:
            results.append(sign_stored(target_case, doc, config=config))
            bar.advance()
    failed = [r for r in results if r["signing"]["status"] != "signed"]
    if as_json:
        print_json(results)
    else:
        if not targets:
            print("Không có tài liệu nào chưa ký số. (Nothing unsigned.)")
        for r in results:
            s = r["signing"]
            mark = "✓" if s["status"] == "signed" else "✗"
            print(f"  {mark} {r['case_id']} [{r['document_id']}] {r['result_code'] or ''}: {s['message_vi']} "
                  f"({s['message_en']})")
    return PROBLEM_EXIT_CODE if failed else 0


def signature_problems(case: str | None) -> tuple[int, list[dict[str, Any]]]:
    """(documents checked, problems): every searchable PDF's signatures against the trust roots."""
    from cli.progress import Bar
    from flows.common import open_archive
    from flows.signing import signing_config
    from pipeline.sign import verify_pdf

    config = signing_config()
    archive = open_archive()
    cases = [case] if case else archive.manifest_cases()
    problems: list[dict[str, Any]] = []
    checked = 0
    with tempfile.TemporaryDirectory(prefix="sohoa-verify-sig-") as tmp, \
            Bar(len(cases), "Kiểm tra chữ ký số (signatures)") as bar:
        for c in cases:
            for rec in archive.manifest_records(c):
                key = rec.keys.get("searchable_pdf")
                if not key:
                    continue
                checked += 1
                local = Path(tmp) / f"{rec.document_id}.pdf"
                try:
                    archive.store.get_file(key, local)
                except NotFound:
                    problems.append({"case_id": c, "document_id": rec.document_id, "signature": None,
                                     "problem": f"{key} is missing from the store"})
                    continue
                checks = verify_pdf(local, trust_roots=config.trust_roots)
                if not checks:
                    problems.append({"case_id": c, "document_id": rec.document_id, "signature": None,
                                     "problem": "chưa ký số (not signed)"})
                elif len(checks) < len(rec.signatures):
                    problems.append({"case_id": c, "document_id": rec.document_id, "signature": None,
                                     "problem": f"the manifest lists {len(rec.signatures)} signatures, "
                                                f"the PDF has {len(checks)}"})
                for check in checks:
                    for p in check.problems:
                        problems.append({"case_id": c, "document_id": rec.document_id,
                                         "signature": f"{check.field} ({check.signer})", "problem": p})
            bar.advance()
    return checked, problems


def cmd_verify_signatures(case: str | None, *, as_json: bool) -> int:
    """Check every signature of one case's (or every case's) searchable PDFs; exit 5 on any problem."""
    checked, problems = signature_problems(case)
    if as_json:
        print_json({"documents": checked, "ok": not problems, "problems": problems})
    elif problems:
        print(f"{len(problems)} vấn đề về chữ ký số trong {checked} tài liệu "
              f"({len(problems)} signature problems in {checked} documents):")
        for p in problems:
            where = f" {p['signature']}" if p["signature"] else ""
            print(f"  {p['case_id']} [{p['document_id']}]{where}: {p['problem']}")
    else:
        print(f"Đã kiểm tra chữ ký số của {checked} tài liệu: toàn vẹn, tin cậy, có dấu thời gian, không bị sửa sau khi ký. "
              f"(Checked the signatures of {checked} documents: intact, trusted, timestamped, nothing added after.)")
    return PROBLEM_EXIT_CODE if problems else 0


def register(app: typer.Typer) -> None:
    """Add ``keys`` and ``sign`` (``verify --signatures`` is an option of cli/storage.py's ``verify``)."""
    from cli import operator_keys

    keys = typer.Typer(no_args_is_help=True, help="khóa ký số: init-test (CA và chữ ký THỬ NGHIỆM), show, operator "
                                                  "(signing keys: init-test makes a TEST CA and signers; show; "
                                                  "operators' personal signers)")
    keys.command("init-test", help="tạo CA, chữ ký cơ quan, người số hóa và máy chủ dấu thời gian THỬ NGHIỆM, ghi rõ là "
                                   "thử nghiệm (make a clearly labelled TEST CA, agency, operator and TSA "
                                   "key)")(cmd_keys_init_test)
    keys.command("show", help="cho biết đã cấu hình những chữ ký nào, không in bí mật (which signers are configured; "
                              "never a secret)")(cmd_keys_show)
    operator_keys.register(keys)
    app.add_typer(keys, name="keys")
    app.command("sign", help="ký số các tài liệu đã lưu mà chưa ký, bằng chữ ký cơ quan (sign stored documents that "
                             "are not signed yet: agency signature)")(cmd_sign)
