"""Vietnamese names for the audit trail's codes (actions, outcomes, refusal reasons), for the audit page.

The trail itself keeps the stable English codes (they are what ``sohoa audit`` and exports carry);
only the page shows them in Vietnamese, the code beside it for whoever searches the trail.
"""
from __future__ import annotations

import re

ACTIONS = {
    "list_cases": "Xem danh sách hồ sơ", "search": "Tìm kiếm", "view_case": "Xem hồ sơ",
    "view_document": "Xem tài liệu", "download_searchable": "Tải PDF tìm kiếm được",
    "download_original": "Tải bản quét gốc", "download_case": "Tải cả hồ sơ", "link": "Tạo đường dẫn tải",
    "read_stack": "Xem xấp bản quét", "upload": "Gửi bản quét", "manage_accounts": "Quản lý tài khoản",
    "read_audit": "Xem nhật ký truy cập", "sign_in": "Đăng nhập", "sign_out": "Đăng xuất",
    "token_add": "Tạo mã truy cập API", "token_revoke": "Thu hồi mã truy cập API", "token_use": "Dùng mã truy cập API",
    "user_add": "Thêm người dùng", "user_enable": "Mở khóa người dùng", "user_disable": "Khóa người dùng",
    "user_passwd": "Đổi mật khẩu",
}
OUTCOMES = {
    "allowed": "Được phép", "forbidden": "Bị từ chối", "not_found": "Bị từ chối (báo không có)",
    "unauthenticated": "Chưa đăng nhập", "refused": "Không nhận", "failed": "Thất bại", "throttled": "Bị chặn tạm thời",
}
REASONS = {
    "case of another unit": "hồ sơ của đơn vị khác",
    "no role that reads dossiers": "vai trò không được đọc hồ sơ",
    "no valid case": "không có mã hồ sơ hợp lệ",
    "not a stack object": "không phải một xấp bản quét",
    "not a unit of this operator": "không phải đơn vị của cán bộ này",
    "not signed in": "chưa đăng nhập",
    "only operators receive scans": "chỉ cán bộ tiếp nhận mới gửi bản quét",
    "originals only for archivists and operators": "bản gốc chỉ dành cho lưu trữ viên và cán bộ tiếp nhận",
    "stacks only for the unit's operators and archivists": "xấp bản quét chỉ dành cho cán bộ của đơn vị",
    "token without the read scope": "mã API không có quyền đọc",
    "token without the write scope": "mã API không có quyền ghi",
    "unit not held": "đơn vị không được giao",
    "API tokens cannot administer": "mã API không được quản trị",
    "administrators only": "chỉ quản trị viên",
    "missing or wrong CSRF token": "thiếu hoặc sai mã chống giả mạo (CSRF)",
    "wrong CSRF token": "sai mã chống giả mạo (CSRF)",
    "malformed id in URL": "mã trong địa chỉ không hợp lệ",
    "malformed unit": "mã đơn vị không hợp lệ",
    "unknown, revoked or expired token": "mã API không tồn tại, đã thu hồi hoặc hết hạn",
}
_REFUSAL = re.compile(r"^(?P<reason>[^:]+): (?P<request>(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) .*)$", re.S)


def action_vi(code: str | None) -> str:
    return ACTIONS.get(code or "", code or "")


def outcome_vi(code: str | None) -> str:
    return OUTCOMES.get(code or "", code or "")


def detail_vi(detail: str | None) -> str:
    """A refusal's reason in Vietnamese (the request it refused kept as it is); other details unchanged."""
    if not detail:
        return ""
    if detail in REASONS:
        return REASONS[detail]
    m = _REFUSAL.match(detail)
    if m and m.group("reason") in REASONS:
        return f"{REASONS[m.group('reason')]} — {m.group('request')}"
    return detail


def install(env) -> None:  # type: ignore[no-untyped-def]
    """Add the filters to the app's Jinja environment."""
    env.filters.update(action_vi=action_vi, outcome_vi=outcome_vi, detail_vi=detail_vi)
