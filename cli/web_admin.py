"""The administrator's commands for the web app: serve, user, token and audit.

Whoever can run these on the server holds the data (they read the database and the store
directly); the web app and its API are where everyone else goes, through the access policy.
Passwords are read from the terminal (or one line of stdin with --password-stdin), never from
the command line; a token's secret is printed once.
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys

from models import SohoaError


class AdminUsage(SohoaError):
    exit_code = 2


def _open():  # type: ignore[no-untyped-def]
    from storage.accounts import Accounts
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env())
    return Accounts(catalog.engine), AuditTrail(catalog.engine)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Mật khẩu (password): ")
        if getpass.getpass("Nhập lại (again): ") != password:
            raise AdminUsage("The two passwords differ.", "Hai lần nhập mật khẩu khác nhau.")
    if len(password) < 10:
        raise AdminUsage("A password needs at least 10 characters.", "Mật khẩu cần ít nhất 10 ký tự.")
    return password


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web app with uvicorn on the store and catalog of the environment."""
    import uvicorn

    from web.app import create_app

    app = create_app()
    print(f"sohoa web: http://{args.host}:{args.port}/  (Ctrl-C để dừng / to stop)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=False, server_header=False,
                log_level="warning", access_log=args.access_log)
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    accounts, audit = _open()
    password = None if args.no_password else _password(args)
    user = accounts.add_user(args.name, role=args.role, units=args.unit or [], password=password)
    audit.append(actor="cli", action="user_add", outcome="allowed", detail=f"{user.name} {user.role.value} {','.join(user.units)}")
    print(f"Đã tạo người dùng {user.name} ({user.role.value}; {', '.join(user.units) or '–'}).")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    accounts, audit = _open()
    accounts.set_password(args.name, _password(args))
    audit.append(actor="cli", action="user_passwd", outcome="allowed", detail=args.name)
    print(f"Đã đổi mật khẩu của {args.name}; mọi phiên đăng nhập của người này đã kết thúc.")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    accounts, audit = _open()
    accounts.set_disabled(args.name, not args.enable)
    audit.append(actor="cli", action="user_enable" if args.enable else "user_disable", outcome="allowed", detail=args.name)
    print(f"Đã {'mở lại' if args.enable else 'khóa'} tài khoản {args.name}.")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    accounts, _ = _open()
    users = accounts.list_users()
    if args.json:
        from cli.main import print_json

        print_json([u.to_dict() for u in users])
        return 0
    for u in users:
        state = "KHÓA (disabled)" if u.disabled else "hoạt động"
        print(f"{u.name:24} {u.role.value:10} {','.join(u.units) or '–':32} {state}")
    return 0


_DAYS = {"d": 1, "w": 7, "y": 365}


def expiry_arg(text: str) -> dt.timedelta:
    """argparse type: 90d, 12w, 1y."""
    t = text.strip().lower()
    if len(t) >= 2 and t[:-1].isdigit() and t[-1] in _DAYS and int(t[:-1]) > 0:
        return dt.timedelta(days=int(t[:-1]) * _DAYS[t[-1]])
    raise AdminUsage(f"'{text}' is not a duration: write e.g. 90d, 12w or 1y.",
                     f"'{text}' không phải khoảng thời gian: hãy viết ví dụ 90d, 12w hoặc 1y.")


def cmd_token_add(args: argparse.Namespace) -> int:
    accounts, audit = _open()
    token, secret = accounts.add_token(args.name, units=args.unit or [], scopes=args.scope or ["read"],
                                       expires=args.expires)
    audit.append(actor="cli", action="token_add", outcome="allowed",
                 detail=f"{token.name} {','.join(token.scopes)} {','.join(token.units)}")
    print(f"Mã truy cập {token.name} ({', '.join(token.scopes)}; {', '.join(token.units)}; "
          f"hết hạn {token.expires_at.date() if token.expires_at else 'không'}).", file=sys.stderr)
    print("Chỉ hiện một lần, hãy lưu ngay (shown once, store it now):", file=sys.stderr)
    print(secret)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    accounts, audit = _open()
    accounts.revoke_token(args.name)
    audit.append(actor="cli", action="token_revoke", outcome="allowed", detail=args.name)
    print(f"Đã thu hồi mã truy cập {args.name}.")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    accounts, _ = _open()
    tokens = accounts.list_tokens()
    if args.json:
        from cli.main import print_json

        print_json([t.to_dict() for t in tokens])
        return 0
    now = dt.datetime.now(dt.UTC)
    for t in tokens:
        state = "thu hồi (revoked)" if t.revoked_at else ("hết hạn (expired)" if not t.usable(now) else "hoạt động")
        print(f"{t.name:24} {','.join(t.scopes):11} {','.join(t.units):32} {state}"
              f"{'  hết hạn ' + t.expires_at.date().isoformat() if t.expires_at else ''}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    _, audit = _open()
    entries = audit.entries(case_id=args.case, limit=args.limit, newest_first=True)
    if args.json:
        from cli.main import print_json

        print_json([e.to_dict() for e in entries])
        return 0
    for e in reversed(entries):
        print(f"{e.seq:>7} {e.at[:19]} {e.actor:28} {e.action:20} {e.outcome:15} {e.case_id or '':26} "
              f"{(e.document_id or '')[:8]:8} {e.client or ''}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    _, audit = _open()
    problems = audit.verify()
    for p in problems:
        print(p.message())
    if problems:
        print(f"Nhật ký truy cập bị thay đổi: {len(problems)} chỗ hỏng. (The audit trail was tampered with.)",
              file=sys.stderr)
        return 5
    print("Nhật ký truy cập nguyên vẹn. (The audit trail's hash chain is intact.)")
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from storage.config import Settings, open_store

    _, audit = _open()
    for key in audit.export(open_store(Settings.from_env())):
        print(key)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add serve, user, token and audit to the ``sohoa`` command."""
    from cli.main import CASE_HELP, case_arg

    s = subparsers.add_parser("serve", help="run the web app and API (same store and catalog as the CLI)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    s.add_argument("--access-log", action="store_true", help="print one line per HTTP request")
    s.set_defaults(func=cmd_serve)

    user = subparsers.add_parser("user", help="web accounts: add, passwd, disable, list").add_subparsers(
        dest="user_command", required=True)
    s = user.add_parser("add", help="create an account (asks for the password)")
    s.add_argument("name", help="user name, e.g. lan.nguyen")
    s.add_argument("--role", required=True, choices=["handler", "archivist", "operator", "admin"],
                   help="handler reads dossiers, archivist also originals, operator receives scans, admin manages accounts")
    s.add_argument("--unit", action="append", help="unit (agency code of a case ID, e.g. 000.00.14.H56); repeat for several")
    s.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    s.add_argument("--no-password", action="store_true", help="no local password (single sign-on only)")
    s.set_defaults(func=cmd_user_add)
    s = user.add_parser("passwd", help="set a new password (ends the user's sessions)")
    s.add_argument("name", help="user name")
    s.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    s.set_defaults(func=cmd_user_passwd)
    s = user.add_parser("disable", help="disable an account; its sessions stop working at once")
    s.add_argument("name", help="user name")
    s.add_argument("--enable", action="store_true", help="enable the account again instead")
    s.set_defaults(func=cmd_user_disable)
    s = user.add_parser("list", help="list accounts")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_user_list)

    token = subparsers.add_parser("token", help="API tokens for other systems: add, revoke, list").add_subparsers(
        dest="token_command", required=True)
    s = token.add_parser("add", help="create a token (its secret is printed once)")
    s.add_argument("name", help="token name, e.g. egov-tuyenquang")
    s.add_argument("--unit", action="append", help="unit the token may read; repeat for several")
    s.add_argument("--scope", action="append", choices=["read", "write"], help="read (default) and/or write (upload)")
    s.add_argument("--expires", type=expiry_arg, default=None, help="lifetime such as 90d, 12w, 1y (default: none)")
    s.set_defaults(func=cmd_token_add)
    s = token.add_parser("revoke", help="revoke a token at once")
    s.add_argument("name", help="token name")
    s.set_defaults(func=cmd_token_revoke)
    s = token.add_parser("list", help="list tokens (never their secrets)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_token_list)

    audit = subparsers.add_parser("audit", help="who saw what: the audit trail (verify, export)")
    audit.add_argument("--case", type=case_arg, default=None, help=f"only this case: {CASE_HELP}")
    audit.add_argument("--limit", type=int, default=200, help="the newest N entries (default 200)")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(func=cmd_audit)
    sub = audit.add_subparsers(dest="audit_command")
    s = sub.add_parser("verify", help="check the hash chain (exit 5 when an entry was deleted or altered)")
    s.set_defaults(func=cmd_audit_verify)
    s = sub.add_parser("export", help="write the trail to the object store as JSON Lines, one file per day")
    s.set_defaults(func=cmd_audit_export)
