"""``sohoa webhook``: the administrator's commands for the e-system's webhooks (add, list, remove, log, deliver).

A subscription's secret is printed once, on stdout, when it is made; it is never printed again nor
written to the audit trail (storage/webhooks.py).
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated

import typer

from cli.options import Json, argument, option
from models import SohoaError


class WebhookUsage(SohoaError):
    exit_code = 2


def _open():  # type: ignore[no-untyped-def]
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog
    from storage.webhooks import Webhooks

    catalog = open_catalog(Settings.from_env())
    return catalog, Webhooks(catalog.engine), AuditTrail(catalog.engine)


HookId = Annotated[str, argument(help="mã webhook, ví dụ wh_3f2a9c1b7d0e4a51 (webhook id)", metavar="ID")]


def cmd_add(
    url: Annotated[str, argument(help="địa chỉ nhận sự kiện, http(s) (receiver URL)", metavar="URL")],
    unit: Annotated[str, option("--unit", metavar="UNIT", help="đơn vị có hồ sơ được báo, ví dụ 000.00.14.H56; "
                                                             "webhook chỉ nhận hồ sơ của đơn vị này (the unit whose "
                                                             "dossiers it hears about, and only those)")],
    events: Annotated[str, option("--events", metavar="E1,E2|all", help="sự kiện, cách nhau bởi dấu phẩy: job.checked, "
                                                                       "job.waiting, document.stored, document.signed, "
                                                                       "job.failed; mặc định all (events; default all)")]
    = "all",
) -> int:
    """Subscribe a URL to a unit's events; the signing secret is printed once, on stdout."""
    from storage.webhooks import parse_events

    _catalog, hooks, audit = _open()
    hook, secret = hooks.add(url, unit=unit, events=parse_events(events), created_by="cli")
    audit.append(actor="cli", action="webhook_add", outcome="allowed",
                 detail=f"{hook.id} {hook.unit} {','.join(hook.events)} {hook.url}"[:500])
    print(f"Webhook {hook.id}: {hook.url} ({hook.unit}; {', '.join(hook.events)}).", file=sys.stderr)
    print("Khóa ký chỉ hiện một lần, hãy lưu ngay (signing secret, shown once, store it now):", file=sys.stderr)
    print(secret)
    return 0


def cmd_list(as_json: Json = False) -> int:
    """List the active subscriptions (never their secrets)."""
    _catalog, hooks, _audit = _open()
    rows = [h.to_dict() for h in hooks.list()]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print("Chưa có webhook nào (no webhooks).")
    for h in rows:
        print(f"{h['id']}  {h['unit']}  {h['url']}  {','.join(h['events'])}")
    return 0


def cmd_remove(hook_id: HookId) -> int:
    """Stop a subscription at once (its delivery log is kept)."""
    _catalog, hooks, audit = _open()
    if not hooks.remove(hook_id):
        raise WebhookUsage(f"No active webhook {hook_id}.", f"Không có webhook {hook_id} đang hoạt động.")
    audit.append(actor="cli", action="webhook_remove", outcome="allowed", detail=hook_id)
    print(f"Đã gỡ webhook {hook_id} (removed).")
    return 0


def _when(ts: float | None) -> str:
    return "–" if not ts else dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def cmd_log(hook_id: Annotated[str | None, argument(help="chỉ webhook này (only this webhook)", metavar="[ID]")] = None,
            limit: Annotated[int, option("--limit", min=1, max=10000, help="số dòng, mặc định 50 (rows; default 50)")]
            = 50, as_json: Json = False) -> int:
    """The newest deliveries: event, case, status, attempts and the receiver's answer."""
    from storage.outbox import counts, delivery_log

    catalog, _hooks, _audit = _open()
    rows = delivery_log(catalog.engine, webhook_id=hook_id, limit=limit)
    if as_json:
        print(json.dumps({"counts": counts(catalog.engine), "deliveries": rows}, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        answer = r["last_status"] or r["last_error"] or "–"
        print(f"{_when(r['created_at'])}  {r['webhook_id']}  {r['type']:<16} {r['case_id'] or '–'}  {r['status']:<9} "
              f"lần thử {r['attempts']}  {answer}  {r['event_id']}")
    print("; ".join(f"{k}: {v}" for k, v in sorted(counts(catalog.engine).items())) or "Chưa có sự kiện (no events).",
          file=sys.stderr)
    return 0


def cmd_deliver(
    watch: Annotated[bool, option("--watch", help="chạy mãi, mỗi giây một lượt, đến khi Ctrl-C (keep delivering every "
                                                  "second until Ctrl-C)")] = False,
) -> int:
    """Send every due event once (the web app and ``sohoa service`` do this by themselves)."""
    import time

    from flows.webhook_delivery import deliver_once

    catalog, _hooks, _audit = _open()
    total = [0, 0]
    while True:
        result = deliver_once(catalog.engine)
        total[0] += result.sent
        total[1] += result.failed
        if not watch:
            break
        time.sleep(1.0)
    print(f"Đã gửi {total[0]}, chưa gửi được {total[1]} (sent, failed; retried later).")
    return 0


def register(app: typer.Typer) -> None:
    """Add ``webhook`` to the ``sohoa`` command."""
    hook = typer.Typer(no_args_is_help=True, help="báo cho hệ thống một cửa điện tử qua webhook: add, list, remove, log, "
                                                  "deliver (tell the one-stop e-system by webhooks)")
    hook.command("add", help="đăng ký URL nhận sự kiện của một đơn vị; khóa ký in ra một lần (subscribe a URL to a "
                             "unit's events; the secret is printed once)")(cmd_add)
    hook.command("list", help="liệt kê webhook, không in khóa (list webhooks, never their secrets)")(cmd_list)
    hook.command("remove", help="gỡ webhook ngay (remove a webhook at once)")(cmd_remove)
    hook.command("log", help="nhật ký gửi sự kiện (the delivery log)")(cmd_log)
    hook.command("deliver", help="gửi các sự kiện đến hạn một lượt (one delivery pass)")(cmd_deliver)
    app.add_typer(hook, name="webhook")
