"""Archivists' record commands: ``record show|set|hold|release`` and ``retention rules|due|propose|approve|…``.

The CLI is the administrator's tool (it reads the catalog directly), but a record edit, a disposal
proposal or an approval names the person who does it with ``--as NAME``: that account's role and
units go through the one access policy, and the audit trail records them. A disposal needs two
different people: an archivist proposes, an approver approves.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from typing import Annotated

import typer

from cli.options import CASE_HELP, CaseArg, Json, argument, case_arg, option
from models.record import CASE_FIELDS, DOCUMENT_FIELDS, EXTRA_CASE_FIELDS, MetadataError

PROBLEM_EXIT_CODE = 5
As = Annotated[str, option("--as", help="tên tài khoản của người làm việc này (the account doing this)",
                           metavar="NAME")]


def _open():  # type: ignore[no-untyped-def]
    from flows.common import open_archive
    from flows.transfer import open_book

    archive = open_archive()
    return archive, open_book(archive)


def principal_of(book, name: str):  # type: ignore[no-untyped-def]
    """The account ``name`` as a policy principal; an unknown or disabled account is refused."""
    from storage.accounts import Accounts

    user = Accounts(book.engine).get_user(name)
    if user is None or user.disabled:
        raise MetadataError(f"Không có tài khoản đang hoạt động tên “{name}”.", f"no active account named {name!r}")
    return user.principal()


def _date(text: str | None, what: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise MetadataError(f"{what} “{text}” không phải ngày dạng NNNN-TT-NN.", f"{what} {text!r} is not YYYY-MM-DD") from None


def _allowed(book, who, action, case_id: str) -> None:  # type: ignore[no-untyped-def]
    from models import NotFound
    from models.policy import decide

    verdict = decide(who, action, case_id=case_id)
    if not verdict.allowed:
        book.audit.append(actor=who.actor, action=action.value, outcome=verdict.outcome.value, case_id=case_id,
                          detail=verdict.reason)
        if verdict.status_code == 404:
            raise NotFound(f"Case {case_id} not found.", f"Không tìm thấy hồ sơ {case_id}.")
        raise MetadataError(f"{who.name} không được làm việc này ({verdict.reason}).",
                            f"{who.name} may not do this: {verdict.reason}")


def cmd_record_show(case_id: CaseArg, json_out: Json = False) -> int:
    """Print a case's record in the circular's field names, and who set each value."""
    _, book = _open()
    rec = book.record(case_id)
    if json_out:
        print(json.dumps(rec.to_dict(), ensure_ascii=False, indent=1))
        return 0
    for name, label, value in rec.circular_fields():
        print(f"{label:40} {'' if value is None else value}  [{rec.set_by.get(name, 'trống (empty)')}]")
    print(f"{'Tạm giữ (legal hold)':40} {rec.legal_hold or 'không'}")
    print(f"{'Hết hạn lưu trữ (retention ends)':40} {rec.due_on or '—'}")
    for d in rec.documents:
        print(f"\nTài liệu {d.order:03d} ({d.document_id})")
        for name, label in DOCUMENT_FIELDS.items():
            value = getattr(d, name)
            print(f"  {label:38} {'' if value is None else value}  [{d.set_by.get(name, 'trống (empty)')}]")
    return 0


def cmd_record_set(
    case_id: CaseArg,
    values: Annotated[list[str], argument(help="TRƯỜNG=GIÁ_TRỊ, ví dụ title=\"Hồ sơ …\" retention=10 closed_on=2024-12-31; "
                                                "GIÁ_TRỊ trống: trả về mặc định (FIELD=VALUE; empty resets)",
                                           metavar="FIELD=VALUE")],
    who_name: As,
    document: Annotated[str | None, option("--document", help="sửa trường của một tài liệu (edit a document's "
                                                              "fields)", metavar="DOC_ID")] = None,
) -> int:
    """Edit record fields of a case (or of one document); each change is audited with the old value."""
    from models.policy import Action

    _, book = _open()
    changes = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise MetadataError(f"“{item}” phải có dạng TRƯỜNG=GIÁ_TRỊ.", f"{item!r} is not FIELD=VALUE")
        changes[name.strip()] = value
    who = principal_of(book, who_name)
    _allowed(book, who, Action.MANAGE_RECORDS, case_id)
    if document:
        book.edit_document(case_id, document, changes, actor=who.actor)
    else:
        book.edit(case_id, changes, actor=who.actor)
    print(f"Đã sửa {len(changes)} trường của hồ sơ {case_id} (updated {len(changes)} field(s)).")
    return 0


def cmd_record_hold(case_id: CaseArg, who_name: As, reason: Annotated[str, option(
        "--reason", help="lý do tạm giữ, ví dụ số quyết định thanh tra (why it is held)")]) -> int:
    """Put a legal hold on a case: it cannot be disposed of until the hold is lifted."""
    from models.policy import Action

    _, book = _open()
    who = principal_of(book, who_name)
    _allowed(book, who, Action.MANAGE_RECORDS, case_id)
    book.set_hold(case_id, reason, actor=who.actor)
    print(f"Hồ sơ {case_id} đang bị tạm giữ: không được hủy (legal hold set).")
    return 0


def cmd_record_release(case_id: CaseArg, who_name: As) -> int:
    """Lift a case's legal hold."""
    from models.policy import Action

    _, book = _open()
    who = principal_of(book, who_name)
    _allowed(book, who, Action.MANAGE_RECORDS, case_id)
    book.set_hold(case_id, None, actor=who.actor)
    print(f"Đã bỏ tạm giữ hồ sơ {case_id} (legal hold lifted).")
    return 0


def cmd_rules(init: Annotated[bool, option("--init", help="chép bảng mặc định vào thư mục dữ liệu để cơ quan sửa "
                                                          "(copy the shipped schedule to the data folder to edit)")] = False,
              ) -> int:
    """Show the retention schedule in use (document kind or procedure → period) and its file."""
    from flows.transfer import rules_path
    from models.record import retention_label
    from models.retention import DEFAULT_RULES, RetentionRules

    path = rules_path()
    if init and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEFAULT_RULES, path)
        print(f"Đã chép bảng mặc định vào {path}: sửa tệp này (copied the default schedule; edit it).")
    rules = RetentionRules.load(path)
    print(f"Bảng thời hạn lưu trữ (retention schedule): {rules.source}")
    for what, name, period in rules.rows():
        print(f"{what:24} {name:44} {retention_label(period)}")
    return 0


def cmd_due(
    unit: Annotated[str | None, option("--unit", help="mã đơn vị, ví dụ 000.00.14.H56 (unit)")] = None,
    before: Annotated[str | None, option("--before", help="hết hạn trước ngày này, mặc định hôm nay (due before; "
                                                          "default today)", metavar="YYYY-MM-DD")] = None,
    json_out: Json = False,
) -> int:
    """List records past their retention (closing date + period), held ones marked."""
    _, book = _open()
    due = book.due(before=_date(before, "--before") or dt.date.today(), units=[unit] if unit else None)
    if json_out:
        print(json.dumps([{"case_id": r.case_id, "title": r.title, "retention": r.retention, "closed_on": r.closed_on,
                           "due_on": r.due_on.isoformat() if r.due_on else None, "legal_hold": r.legal_hold}
                          for r in due], ensure_ascii=False, indent=1))
        return 0
    for r in due:
        held = f"  TẠM GIỮ (held): {r.legal_hold}" if r.legal_hold else ""
        print(f"{r.case_id}  hết hạn {r.due_on}  ({r.retention} năm từ {r.closed_on})  {r.title}{held}")
    print(f"{len(due)} hồ sơ hết thời hạn lưu trữ (records past their retention).")
    return 0


def _disposals(archive, book):  # type: ignore[no-untyped-def]
    from storage.disposal import Disposals

    return Disposals(book, archive.store, book.audit)


def cmd_propose(
    case_ids: Annotated[list[str], argument(help=CASE_HELP, metavar="CASE_ID...", parser=case_arg)],
    who_name: As,
    reason: Annotated[str, option("--reason", help="thuyết minh tài liệu hết giá trị (why they can go)")],
) -> int:
    """An archivist proposes a disposal list of records past their retention."""
    archive, book = _open()
    p = _disposals(archive, book).propose(principal_of(book, who_name), case_ids, reason=reason)
    print(f"Đã lập danh sách hủy số {p.id} gồm {len(p.case_ids)} hồ sơ; chờ người có thẩm quyền duyệt "
          f"(disposal list {p.id} proposed; waiting for approval by another person).")
    return 0


def cmd_approve(
    proposal: Annotated[int, argument(help="số danh sách hủy (disposal list number)", metavar="ID")],
    who_name: As,
    decision_number: Annotated[str, option("--decision-number", help="số quyết định hủy, ví dụ 12/QĐ-UBND")],
    decision_date: Annotated[str, option("--decision-date", help="ngày quyết định (decision date)",
                                         metavar="YYYY-MM-DD")],
) -> int:
    """A second person with the approving role approves a list; its records are then destroyed."""
    archive, book = _open()
    stones = _disposals(archive, book).approve(principal_of(book, who_name), proposal, decision_number=decision_number,
                                               decision_date=_date(decision_date, "--decision-date"))
    for s in stones:
        print(f"Đã hủy hồ sơ {s['case_id']}: {len(s['destroyed'])} đối tượng/phiên bản; giữ dấu vết hủy "
              f"(destroyed, tombstone kept).")
    return 0


def cmd_finish(proposal: Annotated[int, argument(help="số danh sách hủy", metavar="ID")]) -> int:
    """Finish an approved list whose destruction stopped half-way (the store was down): safe to repeat."""
    archive, book = _open()
    stones = _disposals(archive, book).carry_out(proposal)
    print(f"Đã hủy xong {len(stones)} hồ sơ của danh sách số {proposal} (disposal finished).")
    return 0


def cmd_reject(proposal: Annotated[int, argument(help="số danh sách hủy", metavar="ID")], who_name: As,
               reason: Annotated[str, option("--reason", help="lý do không duyệt (why not)")]) -> int:
    """The approver turns a disposal list down; nothing is destroyed."""
    archive, book = _open()
    _disposals(archive, book).reject(principal_of(book, who_name), proposal, reason=reason)
    print(f"Đã không duyệt danh sách hủy số {proposal} (rejected).")
    return 0


def cmd_proposals(json_out: Json = False) -> int:
    """The disposal lists, newest first, and where each stands."""
    archive, book = _open()
    items = _disposals(archive, book).list()
    if json_out:
        print(json.dumps([p.to_dict() for p in items], ensure_ascii=False, indent=1))
        return 0
    for p in items:
        print(f"{p.id:5}  {p.status:9} {p.proposer:20} {p.approver or '':20} {p.decision_number or '':16} "
              f"{', '.join(p.case_ids)}")
    return 0


def cmd_tombstone(case_id: CaseArg) -> int:
    """What the disposal of a case kept: what was destroyed, hashes, decision, who proposed and approved."""
    from models import NotFound

    archive, book = _open()
    stone = _disposals(archive, book).tombstone(case_id)
    if stone is None:
        raise NotFound(f"Case {case_id} was not disposed of.", f"Hồ sơ {case_id} chưa bị hủy.")
    print(json.dumps(stone, ensure_ascii=False, indent=1, default=str))
    return 0


def cmd_lock(case_ids: Annotated[list[str] | None, argument(help=CASE_HELP, metavar="[CASE_ID...]",
                                                            parser=case_arg)] = None) -> int:
    """Make S3 object-lock retention agree with each record's period (where the store supports it)."""
    from storage.objectstore import case_prefix

    archive, book = _open()
    store = archive.store
    if not hasattr(store, "object_lock_supported") or not store.object_lock_supported():
        print("Kho này không hỗ trợ khóa lưu giữ (object lock) — ví dụ thư mục cục bộ, SeaweedFS, hay bucket tạo không "
              "có khóa: thời hạn chỉ được giữ bằng danh mục và quy trình hủy hai người. (This store has no S3 object "
              "lock; retention is enforced by the catalog and the two-person disposal only.)")
        return PROBLEM_EXIT_CODE
    ids = case_ids or archive.catalog.case_ids()
    for case_id in ids:
        rec = book.record(case_id)
        if rec.due_on is None:
            print(f"{case_id}: {'vĩnh viễn' if rec.retention == 'permanent' else 'chưa kết thúc'} — giữ khóa mặc định "
                  "của bucket (bucket default lock kept)")
            continue
        keys = list(store.list(case_prefix(case_id)))
        for key in keys:
            store.lock_until(key, rec.due_on)
        print(f"{case_id}: {len(keys)} đối tượng khóa đến {rec.due_on} (locked until)")
    return 0


def register(app: typer.Typer) -> None:
    """Add ``record`` and ``retention``."""
    record = typer.Typer(no_args_is_help=True, help="dữ liệu hồ sơ lưu trữ theo Thông tư 05/2025/TT-BNV (archival "
                                                    "record metadata)")
    record.command("show", help="các trường của hồ sơ và tài liệu, ai đặt (record fields and who set them)")(cmd_record_show)
    record.command("set", help="sửa trường, có ghi nhật ký giá trị cũ (edit fields; audited with the old "
                               "value)")(cmd_record_set)
    record.command("hold", help="tạm giữ hồ sơ: không được hủy (legal hold)")(cmd_record_hold)
    record.command("release", help="bỏ tạm giữ (lift a legal hold)")(cmd_record_release)
    app.add_typer(record, name="record")
    ret = typer.Typer(no_args_is_help=True, help="thời hạn lưu trữ và hủy hồ sơ hết hạn, cần hai người (retention and "
                                                 "two-person disposal)")
    ret.command("rules", help="bảng thời hạn lưu trữ đang dùng (the retention schedule)")(cmd_rules)
    ret.command("due", help="hồ sơ hết thời hạn lưu trữ (records past their retention)")(cmd_due)
    ret.command("propose", help="lập danh sách hủy (propose a disposal list)")(cmd_propose)
    ret.command("approve", help="duyệt danh sách hủy, rồi hủy (approve, then destroy)")(cmd_approve)
    ret.command("finish", help="hủy tiếp danh sách đã duyệt bị dừng giữa chừng (finish an approved list that "
                               "stopped half-way)")(cmd_finish)
    ret.command("reject", help="không duyệt danh sách hủy (reject a list)")(cmd_reject)
    ret.command("proposals", help="các danh sách hủy (disposal lists)")(cmd_proposals)
    ret.command("tombstone", help="dấu vết hủy của một hồ sơ (a disposed case's tombstone)")(cmd_tombstone)
    ret.command("lock", help="khóa lưu giữ S3 theo thời hạn của hồ sơ (S3 object lock to the record's "
                             "period)")(cmd_lock)
    app.add_typer(ret, name="retention")


__all__ = ["CASE_FIELDS", "EXTRA_CASE_FIELDS", "register"]
