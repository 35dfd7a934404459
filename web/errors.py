"""The plain Vietnamese/English error page every surface of the web app answers with."""
from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from web.templating import templates

MESSAGES = {
    400: ("Yêu cầu không hợp lệ.", "Bad request."),
    403: ("Bạn không có quyền thực hiện thao tác này.", "Forbidden."),
    404: ("Không tìm thấy.", "Not found."),
    429: ("Đăng nhập sai quá nhiều lần. Hãy thử lại sau 15 phút.", "Too many failed sign-ins; try again later."),
    501: ("Chức năng này chưa có.", "Not implemented yet."),
}


def error_page(request: Request, status: int, headers: dict[str, str] | None = None, *,
               message: tuple[str, str] | None = None) -> HTMLResponse:
    """A plain Vietnamese/English error page (nothing about whether a dossier exists).

    Its way back is a page the signed-in role may open: an administrator reads no dossiers, so the
    audit page rather than the search.
    """
    vi, en = message or MESSAGES.get(status, ("Đã có lỗi.", "Error."))
    principal = getattr(request.state, "principal", None)
    roles = {r.value for r in principal.roles} if principal is not None else set()
    back = ("/admin/audit", "Về nhật ký truy cập", "Back to the audit trail") if roles == {"admin"} else \
        ("/search", "Về trang tìm kiếm", "Back to search") if principal is not None else \
        ("/sign-in", "Đăng nhập", "Sign in")
    return templates.TemplateResponse(request, "error.html", {"status": status, "message_vi": vi, "message_en": en,
                                                              "back": back, "principal": principal,
                                                              "csrf": getattr(request.state, "csrf", "")},
                                      status_code=status, headers=headers)
