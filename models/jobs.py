"""A scan job at the desk: one upload of one or more files, its pages' verdicts and its documents.

The job is the operator's view of a scan from "upload complete" to "stored": what each page looks
like, which pages go to which case, how far OCR is, and where the searchable PDF is. Everything
here is plain data and pure rules; ``storage.jobs`` keeps it, ``flows.service`` moves it on.

Statuses, in order: received (files complete, nothing checked yet) → checking → checked (every
page has its verdict; a job held for the operator stays here) → processing (OCR and storing) →
stored. Off the straight line: waiting (a failure of our own — worker crash, Prefect not ready —
the job is retried by itself), spooled (the store is down; the scan is safe in the job folder and
is sent when the store is back), failed (the scan itself cannot be used; the reason says why).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RECEIVED = "received"
CHECKING = "checking"
CHECKED = "checked"
WAITING = "waiting"
PROCESSING = "processing"
STORED = "stored"
SPOOLED = "spooled"
FAILED = "failed"
STATUSES = (RECEIVED, CHECKING, CHECKED, WAITING, PROCESSING, STORED, SPOOLED, FAILED)
FINAL = (STORED, FAILED)
# What the service may pick up (given the lease is free and the next attempt is due).
RUNNABLE = (RECEIVED, CHECKING, CHECKED, WAITING, PROCESSING, SPOOLED)

STATUS_VI = {
    RECEIVED: "đã nhận", CHECKING: "đang kiểm tra", CHECKED: "đã kiểm tra", WAITING: "đang chờ",
    PROCESSING: "đang nhận dạng chữ", STORED: "đã lưu", SPOOLED: "chờ kho lưu trữ", FAILED: "lỗi",
}

# What a job does when a page must be rescanned: wait for the operator (the desk), store it with
# the warning (``sohoa scan``), or refuse the whole file (``sohoa scan --strict``).
ON_RESCAN = ("hold", "store", "refuse")

# Retry delays of a failure of our own, in seconds; the last one repeats for ever (a good scan is
# never given up on because our side is broken).
RETRY_DELAYS = (2.0, 5.0, 15.0, 30.0, 60.0, 120.0)


def retry_delay(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1`` after a failure of our own."""
    return RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]


@dataclass
class JobFile:
    """One uploaded file, complete and hashed, kept under the job's folder."""

    name: str  # the name the operator's file had
    path: str  # relative to the job folder
    sha256: str
    size: int


@dataclass
class JobPage:
    """One page of the job (1-based across its files) and its preflight verdict."""

    number: int
    file: str  # relative path of the file the page comes from (a replacement has its own file)
    file_page: int  # 1-based page within that file
    version: int = 1  # +1 each time the operator replaces the page
    status: str = "pending"  # pending | checked
    verdict: dict[str, Any] | None = None  # PageReport.to_dict()
    qr: str | None = None  # text of a QR code on the page ("" = a symbol that could not be read)
    thumbnail: str | None = None  # relative path of a small JPEG

    @property
    def needs_rescan(self) -> bool:
        return bool(self.verdict) and any(i.get("severity") == "rescan" for i in self.verdict.get("issues", []))

    @property
    def blank(self) -> bool:
        return bool(self.verdict and self.verdict.get("blank"))

    def sentence_vi(self) -> str:
        """The operator's verdict on this page in one Vietnamese sentence ("trang 3 bị mờ, hãy quét lại")."""
        if self.status != "checked" or not self.verdict:
            return f"trang {self.number}: đang kiểm tra…"
        issues = self.verdict.get("issues", [])
        rescan = [i["message_vi"] for i in issues if i.get("severity") == "rescan"]
        warnings = [i["message_vi"] for i in issues if i.get("severity") == "warning"]
        if rescan:
            said = "; ".join(m[:1].lower() + m[1:] for m in rescan)
            return f"trang {self.number}: {said}" + ("" if "quét lại" in said else " — hãy quét lại trang này")
        if self.blank:
            return f"trang {self.number}: trang trắng, sẽ bỏ khỏi PDF"
        if warnings:
            return f"trang {self.number}: đạt, lưu ý: {'; '.join(warnings)}"
        return f"trang {self.number}: đạt"


@dataclass
class JobDocument:
    """One document the job stores (one per case segment), and how far it is."""

    case_id: str | None
    pages: list[int]  # the job's page numbers in it (cover sheets excluded)
    status: str = "planned"  # planned | processing | stored | already-stored | failed | needs-case-id | spooled
    document_id: str | None = None
    pages_done: int = 0  # OCR progress
    report: dict[str, Any] | None = None


@dataclass
class ScanJob:
    """Everything the desk knows about one upload."""

    id: str
    status: str
    case_id: str | None  # the case typed at the desk (pages before any cover sheet go to it)
    operator: str | None
    kind: str | None = None
    origin: str = "desk"  # desk | api | cli
    on_rescan: str = "hold"
    review_split: bool = False  # a stack with cover sheets waits for the operator's "store" click
    files: list[JobFile] = field(default_factory=list)
    pages: list[JobPage] = field(default_factory=list)
    documents: list[JobDocument] = field(default_factory=list)
    stack: dict[str, Any] | None = None  # segments and QR issues, as flows.desk.stack_summary
    hold: dict[str, Any] | None = None  # why the job waits for the operator: {code, message_vi, message_en}
    error: dict[str, Any] | None = None  # failed: the scan's problem; waiting/spooled: why it waits
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    next_attempt_at: float | None = None
    agency: str | None = None  # the case's unit, or the unit a stack without a typed case ID was uploaded to

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def status_vi(self) -> str:
        return STATUS_VI.get(self.status, self.status)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status_vi"] = self.status_vi
        for page, out in zip(self.pages, d["pages"], strict=True):
            out["sentence_vi"] = page.sentence_vi()
            out["needs_rescan"] = page.needs_rescan
        return d


def hold_reason(job: ScanJob) -> dict[str, Any] | None:
    """Why a checked job must wait for the operator before anything is stored, or None to go on.

    Only a desk job (``on_rescan == "hold"``) waits: for a page to rescan, for pages without a case
    ID, for a QR code that is not a case ID, or (``review_split``) to confirm a stack's split.
    """
    if job.on_rescan != "hold":
        return None
    rescan = [p.number for p in job.pages if p.needs_rescan]
    if rescan:
        listed = ", ".join(map(str, rescan))
        return {"code": "rescan", "pages": rescan,
                "message_vi": f"Trang {listed} cần quét lại: hãy quét lại và thay trang, hoặc bấm \"Lưu\" để lưu như vậy.",
                "message_en": f"Page(s) {listed} should be rescanned: replace them, or press \"Store\" to store as is."}
    stack = job.stack or {}
    if any(s.get("case_id") is None and s.get("pages") for s in stack.get("segments", [])):
        return {"code": "needs-case-id",
                "message_vi": "Có trang chưa có mã hồ sơ: hãy nhập mã hồ sơ.",
                "message_en": "Some pages have no case ID: enter the case ID."}
    if stack.get("issues"):
        return {"code": "stack-issues",
                "message_vi": "Xấp giấy có điều cần xem lại (xem danh sách); bấm \"Lưu\" khi đã kiểm tra.",
                "message_en": "The stack has issues to look at (see the list); press \"Store\" once checked."}
    if job.review_split and any(s.get("sheet_page") is not None for s in stack.get("segments", [])):
        return {"code": "review-split",
                "message_vi": "Xem cách chia xấp theo tờ bìa rồi bấm \"Lưu\".",
                "message_en": "Check how the stack is split by its cover sheets, then press \"Store\"."}
    return None
