"""The administrator's commands for the web app: serve, user, token and audit.

Whoever can run these on the server holds the data (they read the database and the store
directly); the web app and its API are where everyone else goes, through the access policy.
Passwords are read from the terminal (or one line of stdin with --password-stdin), never from
the command line; a token's secret is printed once.
"""
from __future__ import annotations

import datetime as dt
import getpass
import sys
from enum import Enum
from typing import Annotated, Literal

import typer

from cli import operator_keys as ok
from cli.options import CASE_HELP, Json, argument, case_arg, option
from cli.output import print_json
from models import SohoaError


class AdminUsage(SohoaError):
    exit_code = 2


def _open():  # type: ignore[no-untyped-def]
    from storage.accounts import Accounts
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env())
    return Accounts(catalog.engine), AuditTrail(catalog.engine)


PasswordStdin = Annotated[bool, option("--password-stdin", help="đọc mật khẩu từ một dòng của stdin thay vì hỏi, "
                                                              "không bao giờ trên dòng lệnh (read the password from "
                                                              "one line of stdin instead of asking; never on the "
                                                              "command line)")]
UserName = Annotated[str, argument(help="tên người dùng, ví dụ lan.nguyen (user name)", metavar="NAME")]
TokenName = Annotated[str, argument(help="tên mã truy cập, ví dụ egov-tuyenquang (token name)", metavar="NAME")]


def _password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Mật khẩu (password): ")
        if getpass.getpass("Nhập lại (again): ") != password:
            raise AdminUsage("The two passwords differ.", "Hai lần nhập mật khẩu khác nhau.")
    if len(password) < 10:
        raise AdminUsage("A password needs at least 10 characters.", "Mật khẩu cần ít nhất 10 ký tự.")
    return password


def cmd_serve(
    host: Annotated[str, option("--host", help="địa chỉ lắng nghe, mặc định 127.0.0.1; 0.0.0.0 để dùng chung trong "
                                               "mạng (address to listen on, default 127.0.0.1)")] = "127.0.0.1",
    port: Annotated[int, option("--port", min=1, max=65535, help="cổng lắng nghe, mặc định 8080 (port to listen on, "
                                                                 "default 8080)")] = 8080,
    access_log: Annotated[bool, option("--access-log", help="in một dòng cho mỗi yêu cầu HTTP (print one line per "
                                                           "HTTP request)")] = False,
) -> int:
    """Run the web app with uvicorn on the store and catalog of the environment."""
    import uvicorn

    from web.app import create_app

    app = create_app()
    print(f"sohoa web: http://{host}:{port}/  (Ctrl-C để dừng / to stop)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, proxy_headers=False, server_header=False,
                log_level="warning", access_log=access_log)
    return 0


def cmd_user_add(
    name: UserName,
    role: Annotated[Literal["handler", "archivist", "approver", "operator", "admin"], option(
        "--role", help="handler đọc hồ sơ; archivist đọc cả bản gốc, quản lý hồ sơ lưu trữ; approver duyệt hủy; "
                       "operator tiếp nhận bản quét; admin quản lý tài khoản (handler reads dossiers, archivist also "
                       "originals and manages records, approver approves disposals, operator receives scans, admin "
                       "manages accounts)")],
    unit: Annotated[list[str] | None, option(
        "--unit", metavar="UNIT", help="đơn vị: mã cơ quan trong mã hồ sơ, ví dụ 000.00.14.H56; lặp lại để thêm đơn vị "
                                       "(unit: the agency code of a case ID; repeat for several)")] = None,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, option("--no-password", help="không có mật khẩu cục bộ, chỉ đăng nhập một lần (no "
                                                             "local password: single sign-on only)")] = False,
    p12: ok.P12 = None, pkcs11_module: ok.Module = None, token_label: ok.TokenLabel = None, slot: ok.Slot = None,
    key_label: ok.KeyLabel = None, cert_label: ok.CertLabel = None, raw_mechanism: ok.RawMechanism = False,
    passphrase_file: ok.SecretFile = None, passphrase_env: ok.SecretEnv = None, display_name: ok.DisplayName = None,
) -> int:
    """Create an account (the password is asked for, or read from stdin); an operator may get a signer at once."""
    signer = ok.SignerOptions(p12, pkcs11_module, token_label, slot, key_label, cert_label, raw_mechanism,
                              passphrase_file, passphrase_env, display_name)
    if signer.given and role != "operator":
        raise AdminUsage("Only an operator account gets a personal signer.",
                         "Chỉ tài khoản người số hóa (operator) mới gắn khóa ký cá nhân.")
    checked = ok.check_signer(signer) if signer.given else None  # a bad key refuses before the account exists
    accounts, audit = _open()
    password = None if no_password else _password(password_stdin)
    user = accounts.add_user(name, role=role, units=unit or [], password=password)
    audit.append(actor="cli", action="user_add", outcome="allowed", detail=f"{user.name} {user.role.value} {','.join(user.units)}")
    print(f"Đã tạo người dùng {user.name} ({user.role.value}; {', '.join(user.units) or '–'}).")
    if checked is not None:
        shown = ok.attach_signer(user.name, signer, checked=checked)
        audit.append(actor="cli", action="operator_signer_add", outcome="allowed", detail=f"{user.name} {shown}")
        print(f"{user.name} ký số bằng khóa của “{shown}”. ({user.name} signs as {shown!r}.)")
    return 0


def cmd_user_passwd(name: UserName, password_stdin: PasswordStdin = False) -> int:
    """Set a new password; the user's sessions end."""
    accounts, audit = _open()
    accounts.set_password(name, _password(password_stdin))
    audit.append(actor="cli", action="user_passwd", outcome="allowed", detail=name)
    print(f"Đã đổi mật khẩu của {name}; mọi phiên đăng nhập của người này đã kết thúc.")
    return 0


def cmd_user_disable(
    name: UserName,
    enable: Annotated[bool, option("--enable", help="mở lại tài khoản thay vì khóa (enable the account again "
                                                   "instead)")] = False,
) -> int:
    """Disable an account (its sessions stop working at once), or enable it again."""
    accounts, audit = _open()
    accounts.set_disabled(name, not enable)
    audit.append(actor="cli", action="user_enable" if enable else "user_disable", outcome="allowed", detail=name)
    print(f"Đã {'mở lại' if enable else 'khóa'} tài khoản {name}.")
    return 0


def cmd_user_list(as_json: Json = False) -> int:
    """List the accounts."""
    accounts, _ = _open()
    users = accounts.list_users()
    if as_json:
        print_json([u.to_dict() for u in users])
        return 0
    for u in users:
        state = "KHÓA (disabled)" if u.disabled else "hoạt động"
        print(f"{u.name:24} {u.role.value:10} {','.join(u.units) or '–':32} {state}")
    return 0


_DAYS = {"d": 1, "w": 7, "y": 365}


def expiry_arg(text: str) -> dt.timedelta:
    """Parser: 90d, 12w, 1y."""
    t = text.strip().lower()
    if len(t) >= 2 and t[:-1].isdigit() and t[-1] in _DAYS and int(t[:-1]) > 0:
        return dt.timedelta(days=int(t[:-1]) * _DAYS[t[-1]])
    raise AdminUsage(f"'{text}' is not a duration: write e.g. 90d, 12w or 1y.",
                     f"'{text}' không phải khoảng thời gian: hãy viết ví dụ 90d, 12w hoặc 1y.")


class Scope(str, Enum):
    """What a token may do."""

    read = "read"
    write = "write"


def cmd_token_add(
    name: TokenName,
    unit: Annotated[list[str] | None, option(
        "--unit", metavar="UNIT", help="đơn vị mà mã truy cập được đọc; lặp lại để thêm đơn vị (unit the token may "
                                       "read; repeat for several)")] = None,
    scope: Annotated[list[Scope] | None, option(
        "--scope", help="read (mặc định, đọc) và/hoặc write (tải bản quét lên); lặp lại cho cả hai (read, the default, "
                        "and/or write: upload scans; repeat for both)")] = None,
    expires: Annotated[dt.timedelta | None, option(
        "--expires", parser=expiry_arg, metavar="90d|12w|1y",
        help="thời hạn, ví dụ 90d, 12w, 1y; mặc định không hết hạn (lifetime; default: none)")] = None,
    operator: Annotated[str | None, option(
        "--operator", metavar="NAME", help="tài khoản người số hóa mà mã này thay mặt: bản quét tải lên được ký bằng "
                                           "khóa của người đó (the operator account the token acts for)")] = None,
) -> int:
    """Create an API token; its secret is printed once, on stdout."""
    accounts, audit = _open()
    token, secret = accounts.add_token(name, units=unit or [], scopes=[s.value for s in scope] if scope else ["read"],
                                       expires=expires, operator=operator)
    audit.append(actor="cli", action="token_add", outcome="allowed",
                 detail=f"{token.name} {','.join(token.scopes)} {','.join(token.units)}"
                        f"{' for ' + token.operator if token.operator else ''}")
    print(f"Mã truy cập {token.name} ({', '.join(token.scopes)}; {', '.join(token.units)}; "
          f"hết hạn {token.expires_at.date() if token.expires_at else 'không'}).", file=sys.stderr)
    print("Chỉ hiện một lần, hãy lưu ngay (shown once, store it now):", file=sys.stderr)
    print(secret)
    return 0


def cmd_token_revoke(name: TokenName) -> int:
    """Revoke a token at once."""
    accounts, audit = _open()
    accounts.revoke_token(name)
    audit.append(actor="cli", action="token_revoke", outcome="allowed", detail=name)
    print(f"Đã thu hồi mã truy cập {name}.")
    return 0


def cmd_token_list(as_json: Json = False) -> int:
    """List the tokens (never their secrets)."""
    accounts, _ = _open()
    tokens = accounts.list_tokens()
    if as_json:
        print_json([t.to_dict() for t in tokens])
        return 0
    now = dt.datetime.now(dt.UTC)
    for t in tokens:
        state = "thu hồi (revoked)" if t.revoked_at else ("hết hạn (expired)" if not t.usable(now) else "hoạt động")
        print(f"{t.name:24} {','.join(t.scopes):11} {','.join(t.units):32} {state}"
              f"{'  hết hạn ' + t.expires_at.date().isoformat() if t.expires_at else ''}")
    return 0


def cmd_audit(
    ctx: typer.Context,
    case: Annotated[str | None, option("--case", parser=case_arg, metavar="CASE_ID",
                                       help=f"chỉ hồ sơ này (only this case): {CASE_HELP}")] = None,
    limit: Annotated[int, option("--limit", min=1, help="N mục mới nhất, mặc định 200 (the newest N entries, default "
                                                        "200)")] = 200,
    as_json: Json = False,
) -> int | None:
    """The newest entries of the audit trail (without a sub-command): who saw or did what."""
    if ctx.invoked_subcommand is not None:
        return None
    _, audit = _open()
    entries = audit.entries(case_id=case, limit=limit, newest_first=True)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return 0
    for e in reversed(entries):
        print(f"{e.seq:>7} {e.at[:19]} {e.actor:28} {e.action:20} {e.outcome:15} {e.case_id or '':26} "
              f"{(e.document_id or '')[:8]:8} {e.client or ''}")
    return 0


def cmd_audit_verify() -> int:
    """Check the hash chain, then the database against the anchors in the store; exit 5 when it was tampered with."""
    from storage import audit_anchor
    from storage.config import Settings, open_store

    _, audit = _open()
    settings = Settings.from_env()
    key = audit_anchor.load_key(settings.data_dir, create=False)
    problems, anchors = audit_anchor.verify(audit, open_store(settings), key)
    for p in problems:
        print(p.message())
    if problems:
        print(f"Nhật ký truy cập bị thay đổi: {len(problems)} chỗ hỏng. (The audit trail was tampered with.)",
              file=sys.stderr)
        return 5
    if key is None:
        print("Nhật ký truy cập nguyên vẹn trong cơ sở dữ liệu; chưa có khóa neo nên chưa so với bản neo ngoài. "
              "(The hash chain is intact; no audit key yet, so nothing was compared with anchors.)")
        return 0
    print(f"Nhật ký truy cập nguyên vẹn, khớp {anchors} bản neo ngoài cơ sở dữ liệu. "
          f"(The audit trail's hash chain is intact and matches {anchors} anchors kept outside the database.)")
    return 0


def cmd_audit_export() -> int:
    """Write the trail to the object store as JSON Lines, one file per day, and anchor each day's head."""
    from storage import audit_anchor
    from storage.config import Settings, open_store

    _, audit = _open()
    settings = Settings.from_env()
    store = open_store(settings)
    for key in audit.export(store):
        print(key)
    for key in audit_anchor.anchor_days(audit.engine, store, audit_anchor.load_key(settings.data_dir, create=True)):
        print(key)
    return 0


def register(app: typer.Typer) -> None:
    """Add serve, user, token and audit to the ``sohoa`` command."""
    app.command("serve", help="chạy ứng dụng web và API, cùng kho và danh mục với CLI (run the web app and API: same "
                              "store and catalog as the CLI)")(cmd_serve)

    user = typer.Typer(no_args_is_help=True, help="tài khoản web: add, passwd, disable, list (web accounts)")
    user.command("add", help="tạo tài khoản, hỏi mật khẩu (create an account; asks for the password)")(cmd_user_add)
    user.command("passwd", help="đặt mật khẩu mới, mọi phiên của người này kết thúc (set a new password; ends the "
                                "user's sessions)")(cmd_user_passwd)
    user.command("disable", help="khóa tài khoản, các phiên dừng ngay (disable an account; its sessions stop working "
                                 "at once)")(cmd_user_disable)
    user.command("list", help="liệt kê tài khoản (list accounts)")(cmd_user_list)
    app.add_typer(user, name="user")

    token = typer.Typer(no_args_is_help=True, help="mã truy cập API cho hệ thống khác: add, revoke, list (API tokens "
                                                   "for other systems)")
    token.command("add", help="tạo mã truy cập, bí mật chỉ in ra một lần (create a token; its secret is printed "
                              "once)")(cmd_token_add)
    token.command("revoke", help="thu hồi mã truy cập ngay (revoke a token at once)")(cmd_token_revoke)
    token.command("list", help="liệt kê mã truy cập, không bao giờ in bí mật (list tokens, never their "
                               "secrets)")(cmd_token_list)
    app.add_typer(token, name="token")

    audit = typer.Typer(invoke_without_command=True)
    audit.callback(help="ai đã xem gì: nhật ký truy cập; verify, export (who saw what: the audit trail)")(cmd_audit)
    audit.command("verify", help="kiểm tra chuỗi băm và so với các bản neo ngoài cơ sở dữ liệu; mã thoát 5 khi có mục "
                                 "bị xóa, bị cắt hoặc bị sửa (check the hash chain and the anchors kept outside the "
                                 "database; exit 5 when an entry was deleted, cut off or altered)")(cmd_audit_verify)
    audit.command("export", help="ghi nhật ký vào kho dạng JSON Lines, mỗi ngày một tệp, và neo đầu chuỗi mỗi ngày "
                                 "(write the trail to the object store as JSON Lines, one file per day, and anchor "
                                 "each day's head)")(cmd_audit_export)
    app.add_typer(audit, name="audit")
