"""Transfer packages: ``archive export`` (one BagIt bag per record) and ``archive verify PKG``."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.options import CASE_HELP, Json, argument, case_arg, option
from models.record import MetadataError

PROBLEM_EXIT_CODE = 5


def cmd_export(
    unit: Annotated[str, option("--unit", help="mã đơn vị, ví dụ 000.00.14.H56 (unit)")],
    out: Annotated[Path, option("-o", "--out", help="thư mục ghi các gói (folder for the packages)", metavar="DIR")],
    year: Annotated[int | None, option("--year", help="năm tiếp nhận trong mã hồ sơ (year received)")] = None,
    case: Annotated[list[str] | None, option("--case", help=f"{CASE_HELP}; lặp lại được (repeatable)",
                                             parser=case_arg)] = None,
    who_name: Annotated[str | None, option("--as", help="tài khoản lưu trữ viên xuất gói (the archivist "
                                                        "exporting)", metavar="NAME")] = None,
) -> int:
    """Write one transfer package per record of a unit: BagIt, SHA-256, METS, PREMIS, the circular's fields."""
    from cli.progress import Bar
    from cli.retention import _allowed, _open, principal_of
    from flows.transfer import export_records, select_cases
    from models.policy import UNIT_PATTERN, Action

    if not UNIT_PATTERN.fullmatch(unit):
        raise MetadataError(f"“{unit}” không phải mã đơn vị (ví dụ 000.00.14.H56).", f"{unit!r} is not a unit")
    if year is not None and case:
        raise MetadataError("Chọn --year hoặc --case, không cả hai.", "give --year or --case, not both")
    archive, book = _open()
    actor = "cli"
    ids = select_cases(archive, unit=unit, year=year, cases=case or [])
    if who_name:
        who = principal_of(book, who_name)
        for case_id in ids:
            _allowed(book, who, Action.MANAGE_RECORDS, case_id)
        actor = who.actor
    with Bar(len(ids), "Xuất gói (export)") as bar:
        def step(n: int, total: int, case_id: str) -> None:
            bar.note(f"{n}/{total} {case_id}")
            bar.advance()

        paths = export_records(archive, book, ids, out, actor=actor, progress=step)
    for p in paths:
        print(p)
    print(f"Đã xuất {len(paths)} gói hồ sơ vào {out} (exported {len(paths)} package(s)).")
    return 0


def cmd_verify(package: Annotated[Path, argument(help="thư mục gói (package folder)", metavar="PKG")],
               json_out: Json = False) -> int:
    """Check a package on its own: bag valid, every hash, METS consistent, signatures still valid."""
    from flows.transfer import package_trust_roots
    from pipeline.package import verify_package

    if not (package / "bagit.txt").is_file():
        raise MetadataError(f"{package} không phải gói BagIt (thiếu bagit.txt).", f"{package} is not a BagIt bag")
    problems = verify_package(package, trust_roots=package_trust_roots())
    if json_out:
        print(json.dumps([p.message() for p in problems], ensure_ascii=False, indent=1))
    else:
        for p in problems:
            print(p.message(), file=sys.stderr)
        if not problems:
            print(f"Gói {package.name} hợp lệ (package is valid).")
    return PROBLEM_EXIT_CODE if problems else 0


def register(app: typer.Typer) -> None:
    """Add ``archive export`` and ``archive verify``."""
    arch = typer.Typer(no_args_is_help=True, help="gói hồ sơ nộp lưu trữ: BagIt + METS + PREMIS (transfer packages)")
    arch.command("export", help="mỗi hồ sơ một gói (one package per record)")(cmd_export)
    arch.command("verify", help="kiểm tra một gói (check a package on its own)")(cmd_verify)
    app.add_typer(arch, name="archive")
