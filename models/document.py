"""Pages, OCR words and reports: plain data that every layer passes around and serialises to JSON."""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class BoundingBox:
    """A box in image pixels, origin top-left."""

    left: int
    top: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.left < 0 or self.top < 0 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"impossible box {self}")


@dataclass(frozen=True)
class OcrWord:
    """One recognised word with its box on the page image and Tesseract's confidence (0–100)."""

    text: str
    box: BoundingBox
    confidence: float
    block: int = 0
    paragraph: int = 0
    line: int = 0

    def __post_init__(self) -> None:
        if not self.text or self.text != self.text.strip():
            raise ValueError(f"word text must be non-empty and stripped: {self.text!r}")
        object.__setattr__(self, "text", unicodedata.normalize("NFC", self.text))

    @property
    def line_key(self) -> tuple[int, int, int]:
        return (self.block, self.paragraph, self.line)


@dataclass
class OcrPage:
    """The OCR result of one page: words in reading order and the image size they refer to."""

    width: int
    height: int
    dpi: float
    words: list[OcrWord] = field(default_factory=list)
    rotation: int = 0  # degrees clockwise the cleaner turned the page to make it upright
    # syllables fixed from Tesseract's alternatives (pipeline/syllables.py): [as read, as written]
    corrections: list[list[str]] = field(default_factory=list)

    @property
    def lines(self) -> list[list[OcrWord]]:
        """Consecutive words that share an OCR line, in reading order."""
        lines: list[list[OcrWord]] = []
        for w in self.words:
            if lines and lines[-1][-1].line_key == w.line_key:
                lines[-1].append(w)
            else:
                lines.append([w])
        return lines

    @property
    def text(self) -> str:
        """Plain text, one line per OCR line, NFC."""
        return unicodedata.normalize("NFC", "\n".join(" ".join(w.text for w in line) for line in self.lines))

    @property
    def mean_confidence(self) -> float | None:
        if not self.words:
            return None
        return sum(w.confidence for w in self.words) / len(self.words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "rotation": self.rotation,
            "words": [
                [w.text, w.box.left, w.box.top, w.box.width, w.box.height, round(w.confidence, 1),
                 w.block, w.paragraph, w.line]
                for w in self.words
            ],
            **({"corrections": self.corrections} if self.corrections else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OcrPage:
        words = [
            OcrWord(text=t, box=BoundingBox(x, y, w, h), confidence=c, block=b, paragraph=p, line=ln)
            for t, x, y, w, h, c, b, p, ln in data["words"]
        ]
        return cls(width=data["width"], height=data["height"], dpi=data["dpi"], words=words,
                   rotation=data.get("rotation", 0), corrections=[list(c) for c in data.get("corrections", [])])


class Severity(str, Enum):
    INFO = "info"          # worth knowing (blank back page dropped, DPI estimated)
    WARNING = "warning"    # usable but below the digitisation rules (under 200 dpi)
    RESCAN = "rescan"      # the operator should scan this page again


@dataclass(frozen=True)
class PreflightIssue:
    """One verdict on one page: a code for machines, a sentence for the operator and for logs."""

    code: str  # low_resolution, blurred, too_dark, too_light, blank, cut_off, dpi_estimated
    severity: Severity
    message_vi: str
    message_en: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreflightIssue:
        return cls(code=d["code"], severity=Severity(d["severity"]), message_vi=d["message_vi"],
                   message_en=d["message_en"], value=d.get("value"))


@dataclass
class PageReport:
    """What happened to one page of a document."""

    number: int  # 1-based, in the source file
    width: int
    height: int
    dpi: float
    dpi_estimated: bool = False
    issues: list[PreflightIssue] = field(default_factory=list)
    rotation: int = 0
    skew_degrees: float = 0.0
    has_colour: bool = False
    blank: bool = False
    text_source: str = "ocr"  # "ocr", "pdf-text" (already searchable) or "none" (blank)
    mean_confidence: float | None = None
    word_count: int = 0
    seconds: float = 0.0

    @property
    def needs_rescan(self) -> bool:
        return any(i.severity is Severity.RESCAN for i in self.issues)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["issues"] = [i.to_dict() for i in self.issues]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PageReport:
        d = dict(d)
        d["issues"] = [PreflightIssue.from_dict(i) for i in d.get("issues", [])]
        return cls(**d)


@dataclass
class DocumentReport:
    """What happened to one source file: its pages, where it is stored, how well it read."""

    source_name: str
    source_sha256: str
    document_id: str
    case_id: str | None = None
    kind: str | None = None
    operator: str | None = None
    pages: list[PageReport] = field(default_factory=list)
    stored_keys: dict[str, str] = field(default_factory=dict)  # role -> object key
    status: str = "processed"  # processed, stored, already-stored, failed
    error: str | None = None
    seconds: float = 0.0

    @property
    def mean_confidence(self) -> float | None:
        confs = [(p.mean_confidence, p.word_count) for p in self.pages if p.mean_confidence is not None]
        total = sum(n for _, n in confs)
        if not total:
            return None
        return sum(c * n for c, n in confs) / total

    @property
    def warnings(self) -> list[tuple[int, PreflightIssue]]:
        return [(p.number, i) for p in self.pages for i in p.issues]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pages"] = [p.to_dict() for p in self.pages]
        d["mean_confidence"] = self.mean_confidence
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocumentReport:
        d = {k: v for k, v in d.items() if k != "mean_confidence"}
        d["pages"] = [PageReport.from_dict(p) for p in d.get("pages", [])]
        return cls(**d)
