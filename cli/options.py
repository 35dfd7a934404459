"""What several ``sohoa`` commands share on their command line: the case ID, --json, --jobs.

Each option is a typed ``Annotated`` alias with its help text beside it (Typer reads the signature
of the command function); values that can be wrong are checked by a parser that raises our own
typed error (one sentence in both languages, exit code 2), before any work is done.
"""
from __future__ import annotations

from typing import Annotated, Any

import typer

from models import CaseId, SohoaError


class UsageError(SohoaError):
    """A command-line value that cannot be used (exit code 2, like a malformed case ID)."""

    exit_code = 2


CASE_HELP = "mã hồ sơ (case ID), ví dụ/e.g. 000.00.01.H56-181010-0001"


def case_arg(text: str) -> str:
    """Parser: validate a case ID before anything else happens."""
    return str(CaseId.parse(text))


def option(*names: str, help: str, **kw: Any) -> Any:  # noqa: A002 - Typer's own keyword
    """A Typer option whose default is said in its help text (in both languages), not repeated by Typer."""
    return typer.Option(*names, help=help, show_default=False, **kw)


def argument(*, help: str, **kw: Any) -> Any:  # noqa: A002
    return typer.Argument(help=help, show_default=False, **kw)


Json = Annotated[bool, option("--json", help="in kết quả dạng JSON (machine-readable JSON output)")]
Jobs = Annotated[int | None, option(
    "--jobs", help="số trang xử lý song song, mặc định: mọi lõi (pages in parallel; default: all cores)")]
CaseArg = Annotated[str, argument(help=CASE_HELP, metavar="CASE_ID", parser=case_arg)]
OptionalCaseArg = Annotated[str | None, argument(
    help=f"{CASE_HELP}; bỏ trống: mọi hồ sơ (every case when left out)", metavar="[CASE_ID]",
    parser=case_arg)]
