"""Case-ID QR codes: print cover sheets, find the case ID on scanned pages, split a stack by it.

The scanning-desk operator must never retype a case ID. The counter prints a cover sheet per
dossier (``write_coversheets``), puts it on top of the paper and scans the whole pile; every page
goes through ``detect_case_qr`` and ``split_stack`` turns the per-page findings into one segment
per dossier. Detection and splitting are separate so that the flow decides what to do with the
result (ask the operator, store, report) and so that splitting is tested without images.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models import CaseId, InvalidCaseId

A4_MM = (210.0, 297.0)
# ~5 cm: large enough to survive a 100-dpi working copy, a photocopy and a skewed feed.
QR_SYMBOL_MM = 50.0
# White space kept free around the symbol; the standard asks for 4 modules, we keep ~4x that
# because staples, punched holes and the scanner's dark border land near a sheet's edges.
QR_QUIET_MM = 12.0
_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation2"),
    Path("/usr/share/fonts/truetype/liberation"),
)

INSTRUCTION_VI = (
    "Tờ bìa hồ sơ — đặt ở đầu mỗi bộ hồ sơ khi quét.",
    "Các trang quét sau tờ này thuộc hồ sơ trên, cho đến tờ bìa tiếp theo.",
    "Tờ bìa không được lưu vào hồ sơ điện tử. Không gấp, không ghim đè lên mã QR.",
)
INSTRUCTION_EN = (
    "Cover sheet: put it on top of each dossier when scanning. It is not stored in the e-file."
)


# ---------------------------------------------------------------------------------------------
# Cover sheets
# ---------------------------------------------------------------------------------------------


def _font(names: Sequence[str], size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The first installed font of ``names``; Pillow's own font if none is (it has no diacritics)."""
    for name in names:
        for folder in _FONT_DIRS:
            if (folder / name).exists():
                return ImageFont.truetype(str(folder / name), size_px)
    return ImageFont.load_default(size=size_px)


def _mm(mm: float, dpi: int) -> int:
    return int(round(mm / 25.4 * dpi))


def _pt(pt: float, dpi: int) -> int:
    return int(round(pt / 72.0 * dpi))


def encode_qr(text: str, *, module_px: int) -> np.ndarray:
    """The QR symbol of ``text`` (error correction H), ``module_px`` pixels a module, no border.

    A case ID is upper case letters, digits, dots and dashes, so alphanumeric mode fits it in a
    version-3 symbol (29 modules) even at level H: few, large modules read best on poor scans.
    Other text (tests, foreign codes) falls back to byte mode.
    """
    params = cv2.QRCodeEncoder.Params()
    params.correction_level = cv2.QRCODE_ENCODER_CORRECT_LEVEL_H
    alnum = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    params.mode = cv2.QRCODE_ENCODER_MODE_ALPHANUMERIC if set(text) <= alnum else cv2.QRCODE_ENCODER_MODE_AUTO
    symbol = cv2.QRCodeEncoder.create(params).encode(text)
    # The encoder adds its own thin white border; crop to the dark modules so sizes are exact.
    dark = np.argwhere(symbol == 0)
    (top, left), (bottom, right) = dark.min(axis=0), dark.max(axis=0)
    symbol = symbol[top:bottom + 1, left:right + 1]
    return cv2.resize(symbol, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)


def _centred(draw: ImageDraw.ImageDraw, text: str, *, y: int, width: int, font) -> int:
    """Draw ``text`` centred on the page at ``y``; return the y just below it."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (right - left)) // 2 - left, y - top), text, font=font, fill=0)
    return y + (bottom - top)


def render_coversheet(case_id: CaseId, *, dpi: int = 200, qr_text: str | None = None) -> Image.Image:
    """One A4 cover sheet (greyscale) for ``case_id``: a large QR code, the ID in print, instructions.

    ``qr_text`` replaces the QR's content; only tests use it, to print a sheet whose QR is wrong.
    """
    if dpi < 100:
        raise ValueError(f"a cover sheet needs at least 100 dpi to print a readable QR code, not {dpi}")
    width, height = _mm(A4_MM[0], dpi), _mm(A4_MM[1], dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    text = str(case_id) if qr_text is None else qr_text

    y = _centred(draw, "TỜ BÌA HỒ SƠ", y=_mm(22, dpi), width=width,
                 font=_font(["DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf"], _pt(26, dpi)))
    _centred(draw, "(dùng khi quét, không lưu vào hồ sơ điện tử)", y=y + _mm(5, dpi), width=width,
             font=_font(["DejaVuSans.ttf", "LiberationSans-Regular.ttf"], _pt(12, dpi)))

    # Whole pixels per module: a fractional scale would make modules of uneven width.
    probe = encode_qr(text, module_px=1)
    module_px = max(2, _mm(QR_SYMBOL_MM, dpi) // probe.shape[0])
    symbol = encode_qr(text, module_px=module_px)
    qr_top = _mm(48, dpi) + _mm(QR_QUIET_MM, dpi)
    page.paste(Image.fromarray(symbol), ((width - symbol.shape[1]) // 2, qr_top))

    y = qr_top + symbol.shape[0] + _mm(QR_QUIET_MM, dpi)
    y = _centred(draw, "Mã hồ sơ", y=y, width=width,
                 font=_font(["DejaVuSans.ttf", "LiberationSans-Regular.ttf"], _pt(14, dpi)))
    # The printed ID is the fallback when the QR cannot be read: as large as fits the margins.
    id_font_px = _pt(40, dpi)
    id_font = _font(["DejaVuSansMono-Bold.ttf", "LiberationMono-Bold.ttf"], id_font_px)
    while draw.textlength(str(case_id), font=id_font) > width - 2 * _mm(20, dpi) and id_font_px > 8:
        id_font_px -= 2
        id_font = _font(["DejaVuSansMono-Bold.ttf", "LiberationMono-Bold.ttf"], id_font_px)
    y = _centred(draw, str(case_id), y=y + _mm(4, dpi), width=width, font=id_font)
    detail = (f"Cơ quan tiếp nhận: {case_id.agency}   ·   Ngày tiếp nhận: {case_id.received:%d/%m/%Y}"
              f"   ·   Số thứ tự: {case_id.sequence:04d}")
    y = _centred(draw, detail, y=y + _mm(6, dpi), width=width,
                 font=_font(["DejaVuSans.ttf", "LiberationSans-Regular.ttf"], _pt(11, dpi)))

    body = _font(["DejaVuSans.ttf", "LiberationSans-Regular.ttf"], _pt(13, dpi))
    y += _mm(14, dpi)
    for sentence in INSTRUCTION_VI:
        for line in textwrap.wrap(sentence, width=80):
            y = _centred(draw, line, y=y, width=width, font=body) + _mm(3, dpi)
    _centred(draw, INSTRUCTION_EN, y=y + _mm(6, dpi), width=width,
             font=_font(["DejaVuSans-Oblique.ttf", "LiberationSans-Italic.ttf"], _pt(10, dpi)))
    return page


def write_coversheets(case_ids: Sequence[CaseId], out_pdf: Path, *, dpi: int = 200) -> Path:
    """Write one A4 cover-sheet page per case ID into ``out_pdf``, ready to print; return its path."""
    if not case_ids:
        raise ValueError("no case IDs given: a cover-sheet PDF needs at least one page")
    # 1-bit pages: Pillow stores them CCITT G4, so a page is a few kB and its QR edges stay sharp
    # (its JPEG path would blur the modules before the printer even sees them).
    pages = [render_coversheet(case_id, dpi=dpi).point(lambda v: 255 if v >= 128 else 0).convert("1")
             for case_id in case_ids]
    out_pdf = Path(out_pdf)
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    # ``resolution`` is what turns pixels into the page size: width_px / dpi * 72 pt = 595 pt (A4).
    pages[0].save(out_pdf, format="PDF", save_all=True, append_images=pages[1:], resolution=float(dpi),
                  title="Tờ bìa hồ sơ", creator="sohoa")
    return out_pdf


# ---------------------------------------------------------------------------------------------
# Finding the QR code on a scanned page
# ---------------------------------------------------------------------------------------------

# The first look happens at ~100 dpi: a 5-cm cover-sheet symbol still has ~6 px modules there and a
# 2-cm receipt symbol ~3 px, and a text page costs ~30 ms instead of ~200–450 ms at 200–300 dpi
# (measured with bench/desk/qr_eval.py). Full resolution is only paid for when a candidate was seen.
_FAST_DPI = 100.0
_A4_LONG_SIDE_IN = 11.69
# A located symbol smaller than this (in mm, side of the quadrilateral) is taken as noise: the
# smallest QR seen on Vietnamese receipts is ~15 mm.
_MIN_SYMBOL_MM = 8.0


@dataclass(frozen=True)
class QrFinding:
    """What a page's QR code says: its text, and the case ID when the text is a valid one.

    ``text`` is empty when a QR symbol was located but could not be decoded at any resolution:
    the page probably is a cover sheet or receipt, and the operator must be told, not ignored.
    """

    text: str
    case_id: CaseId | None
    valid: bool

    def __post_init__(self) -> None:
        if self.valid != (self.case_id is not None):
            raise ValueError("a QR finding is valid exactly when it carries a case ID")

    @classmethod
    def from_text(cls, text: str) -> QrFinding:
        """Validate decoded text strictly as a case ID (no guessing from URLs or partial codes)."""
        try:
            case_id = CaseId.parse(text)
        except InvalidCaseId:
            return cls(text=text, case_id=None, valid=False)
        return cls(text=text, case_id=case_id, valid=True)

    @property
    def unreadable(self) -> bool:
        """A symbol was located but no text could be decoded from it."""
        return not self.text


def _to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    raise ValueError(f"expected a grey or BGR page image, got an array of shape {image.shape}")


def _as_uint8(grey: np.ndarray) -> np.ndarray:
    if grey.dtype == np.uint8:
        return grey
    if grey.dtype == np.uint16:  # 16-bit TIFF scans
        return (grey >> 8).astype(np.uint8)
    return np.clip(grey, 0, 255).astype(np.uint8)


def _scaled(grey: np.ndarray, *, page_dpi: float, target_dpi: float) -> tuple[np.ndarray, float]:
    """``grey`` resampled to ``target_dpi`` (never enlarged), with the dpi it now has."""
    scale = target_dpi / page_dpi
    if scale >= 0.95:
        return grey, page_dpi
    return cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), target_dpi


def _detectors() -> list[cv2.QRCodeDetector]:
    """Aruco-based detector first (faster on text pages, never fired on one in our measurements),
    then the classic one, which decodes some blurred symbols the other does not."""
    # New instances per call: detectors keep state between calls and pages run in a thread pool.
    found = []
    if hasattr(cv2, "QRCodeDetectorAruco"):
        found.append(cv2.QRCodeDetectorAruco())
    found.append(cv2.QRCodeDetector())
    return found


def _symbol_side_mm(points: np.ndarray | None, dpi: float) -> float:
    if points is None or len(points) == 0:
        return 0.0
    quad = np.asarray(points, dtype=np.float32).reshape(-1, 4, 2)[0]
    sides = np.linalg.norm(quad - np.roll(quad, 1, axis=0), axis=1)
    return float(sides.min()) / dpi * 25.4


def _decode(detector, grey: np.ndarray, *, dpi: float) -> tuple[list[str], bool]:
    """Decoded texts on ``grey`` and whether a plausible symbol was located at all."""
    ok, texts, points, _ = detector.detectAndDecodeMulti(grey)
    if not ok or points is None:
        return [], False
    quads = np.asarray(points, dtype=np.float32).reshape(-1, 4, 2)
    located = False
    decoded = []
    for text, quad in zip(texts, quads):
        if _symbol_side_mm(quad, dpi) < _MIN_SYMBOL_MM:
            continue
        located = True
        if text:
            decoded.append(text)
    return decoded, located


def _binarised(grey: np.ndarray) -> np.ndarray:
    # Otsu after a light blur: grey photocopy paper and JPEG ringing push modules across a fixed
    # threshold, and the detectors' own binarisation is tuned for photos, not flat scans.
    _, bw = cv2.threshold(cv2.GaussianBlur(grey, (3, 3), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return bw


def _pick(texts: list[str]) -> QrFinding:
    """Prefer a QR that is a valid case ID (a receipt may also carry a lookup-URL QR)."""
    findings = [QrFinding.from_text(t) for t in texts]
    return next((f for f in findings if f.valid), findings[0])


def detect_case_qr(image: np.ndarray, *, dpi: float | None = None) -> QrFinding | None:
    """Find and read a QR code on one scanned page (grey or BGR array).

    Returns None when the page has no QR symbol; a finding with ``valid`` set when the symbol is
    a case ID; a finding with other text, or with empty text when a symbol was located but
    could not be read, so that the operator hears about it. ``dpi`` is the scan resolution; when
    unknown it is estimated from the page size assuming A4.
    """
    grey = _as_uint8(_to_grey(np.asarray(image)))
    if grey.size == 0:
        raise ValueError("empty page image")
    page_dpi = float(dpi) if dpi else max(grey.shape) / _A4_LONG_SIDE_IN
    detectors = _detectors()

    fast, fast_dpi = _scaled(grey, page_dpi=page_dpi, target_dpi=_FAST_DPI)
    texts, located = _decode(detectors[0], fast, dpi=fast_dpi)
    if texts:
        return _pick(texts)
    if not located:
        # The common case (every text page of every stack) ends here.
        return None

    # A symbol is there but did not decode at 100 dpi: try harder, cheapest variants first.
    mid, mid_dpi = _scaled(grey, page_dpi=page_dpi, target_dpi=150.0)
    variants = [(mid, mid_dpi), (grey, page_dpi), (_binarised(mid), mid_dpi), (_binarised(grey), page_dpi)]
    for detector in detectors:
        for variant, variant_dpi in variants:
            texts, _ = _decode(detector, variant, dpi=variant_dpi)
            if texts:
                return _pick(texts)
    return QrFinding(text="", case_id=None, valid=False)


# ---------------------------------------------------------------------------------------------
# Splitting a scanned stack into dossiers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Consecutive pages of a stack that belong to one case (``case_id`` None: still to be given).

    ``pages`` are 0-based indexes into the stack and exclude separator pages; ``sheet_page`` is the
    page whose QR opened the segment (None for pages before the first sheet).
    """

    case_id: CaseId | None
    pages: list[int] = field(default_factory=list)
    sheet_page: int | None = None

    @property
    def needs_case_id(self) -> bool:
        return self.case_id is None


@dataclass(frozen=True)
class StackIssue:
    """Something in a stack the operator must look at, tied to one page (0-based)."""

    page: int
    kind: str  # "invalid_qr", "unreadable_qr", "empty_segment", "repeated_case", "unassigned_pages"
    text: str
    message_vi: str
    message_en: str

    def user_message(self) -> str:
        """Vietnamese first, English after, as every operator-facing message in sohoa."""
        return f"{self.message_vi} ({self.message_en})"


@dataclass(frozen=True)
class StackSplit:
    """A stack cut into segments, one per case, plus what the operator must check."""

    segments: list[Segment]
    invalid_qr: list[StackIssue]  # QR codes that are not a case ID, or could not be read
    warnings: list[StackIssue]  # empty segments, a case's QR seen twice, pages without a case

    @property
    def empty_segments(self) -> list[Segment]:
        return [s for s in self.segments if not s.pages]

    @property
    def issues(self) -> list[StackIssue]:
        """Every issue in page order."""
        return sorted(self.invalid_qr + self.warnings, key=lambda i: (i.page, i.kind))


def _page_no(index: int) -> int:
    return index + 1  # operators count pages from 1


def split_stack(findings: Sequence[QrFinding | None], *, default_case: CaseId | None) -> StackSplit:
    """Cut a stack at every page whose QR is a valid case ID, given one finding per page.

    Separator pages (cover sheets, receipts) open a segment and are not part of any e-file.
    Pages before the first separator go to ``default_case``, or to a segment without a case ID
    that the operator must name. A QR that is not a case ID is reported and its page kept as an
    ordinary page: guessing would file a citizen's papers under someone else's case.
    """
    segments: list[Segment] = []
    invalid: list[StackIssue] = []
    warnings: list[StackIssue] = []
    current: Segment | None = None

    for index, finding in enumerate(findings):
        if finding is not None and finding.valid:
            assert finding.case_id is not None
            if current is not None and current.case_id == finding.case_id and current.sheet_page is not None:
                # The same case's sheet and receipt, one after the other: one dossier, not two.
                warnings.append(StackIssue(
                    page=index, kind="repeated_case", text=finding.text,
                    message_vi=f"Trang {_page_no(index)}: mã QR {finding.case_id} lặp lại hồ sơ đang quét; "
                               "trang này được coi là tờ bìa và không lưu vào hồ sơ điện tử.",
                    message_en=f"Page {_page_no(index)}: QR {finding.case_id} repeats the current case; "
                               "the page is treated as a separator and not stored in the e-file.",
                ))
                continue
            current = Segment(case_id=finding.case_id, sheet_page=index)
            segments.append(current)
            continue
        if finding is not None:
            invalid.append(_invalid_issue(index, finding))
        if current is None:
            current = Segment(case_id=default_case, sheet_page=None)
            segments.append(current)
        current.pages.append(index)

    for segment in segments:
        if segment.sheet_page is not None and not segment.pages:
            page = segment.sheet_page
            warnings.append(StackIssue(
                page=page, kind="empty_segment", text=str(segment.case_id),
                message_vi=f"Trang {_page_no(page)}: sau tờ bìa hồ sơ {segment.case_id} không có trang nào "
                           "(hai tờ bìa liền nhau hoặc tờ bìa ở cuối xấp); kiểm tra lại thứ tự giấy tờ.",
                message_en=f"Page {_page_no(page)}: the cover sheet for {segment.case_id} is followed by no "
                           "pages (two sheets in a row, or a sheet at the end); check the order of the papers.",
            ))
        if segment.case_id is None and segment.pages:
            first = segment.pages[0]
            warnings.append(StackIssue(
                page=first, kind="unassigned_pages", text="",
                message_vi=f"Trang {_page_no(first)}–{_page_no(segment.pages[-1])} đứng trước tờ bìa đầu tiên "
                           "và chưa có mã hồ sơ; hãy nhập mã hồ sơ cho các trang này.",
                message_en=f"Pages {_page_no(first)}–{_page_no(segment.pages[-1])} come before the first cover "
                           "sheet and have no case ID; enter the case ID for them.",
            ))
    return StackSplit(segments=segments, invalid_qr=invalid, warnings=warnings)


def _invalid_issue(index: int, finding: QrFinding) -> StackIssue:
    page = _page_no(index)
    if finding.unreadable:
        return StackIssue(
            page=index, kind="unreadable_qr", text="",
            message_vi=f"Trang {page}: có mã QR nhưng không đọc được; trang được giữ như trang thường. "
                       "Nếu đó là tờ bìa, hãy quét lại hoặc nhập mã hồ sơ.",
            message_en=f"Page {page}: a QR code is there but cannot be read; the page is kept as an ordinary "
                       "page. If it is a cover sheet, rescan it or enter the case ID.",
        )
    try:
        CaseId.parse(finding.text)
        reason_vi = reason_en = ""
    except InvalidCaseId as exc:
        reason_vi, reason_en = exc.message_vi, exc.message_en
    shown = finding.text if len(finding.text) <= 80 else finding.text[:77] + "..."
    return StackIssue(
        page=index, kind="invalid_qr", text=finding.text,
        message_vi=f"Trang {page}: mã QR '{shown}' không phải mã hồ sơ; trang được giữ như trang thường, "
                   f"không tách hồ sơ. {reason_vi}",
        message_en=f"Page {page}: QR '{shown}' is not a case ID; the page is kept as an ordinary page and "
                   f"does not start a dossier. {reason_en}",
    )
