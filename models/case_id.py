"""The dossier code (mã hồ sơ) that links every e-file to its case, validated strictly."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from models.errors import InvalidCaseId

# <agency ddd.dd.dd.Xdd>-<yymmdd>-<nnnn>; X is H (province) or G (central body). Digits are ASCII
# 0-9 only ([0-9], not \d, which also matches full-width, mathematical and Arabic-Indic digits).
_PATTERN = re.compile(r"^([0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2})-([0-9]{6})-([0-9]{4})$")


@dataclass(frozen=True, order=True)
class CaseId:
    """A validated case ID such as ``000.00.14.H56-200203-0118``."""

    agency: str
    received: dt.date
    sequence: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2}", self.agency):
            raise InvalidCaseId(f"{self.agency}-?")
        if not 1 <= self.sequence <= 9999:
            raise InvalidCaseId(f"{self.agency}-{self.received:%y%m%d}-{self.sequence}")

    @classmethod
    def parse(cls, text: str) -> CaseId:
        """Parse and validate; surrounding white space and the letter's case are normalised."""
        if not isinstance(text, str):
            raise InvalidCaseId(repr(text))
        candidate = text.strip()
        candidate = re.sub(r"\.([hg])([0-9]{2})-", lambda m: f".{m.group(1).upper()}{m.group(2)}-", candidate)
        match = _PATTERN.fullmatch(candidate)
        if not match:
            raise InvalidCaseId(text)
        agency, yymmdd, seq = match.groups()
        try:
            received = dt.datetime.strptime(yymmdd, "%y%m%d").date()
        except ValueError:
            raise InvalidCaseId(text, reason_en="the date part is not a real calendar date",
                                reason_vi="phần ngày tiếp nhận không phải ngày có thật") from None
        if int(seq) == 0:
            raise InvalidCaseId(text, reason_en="the sequence number must be 0001 or more",
                                reason_vi="số thứ tự phải từ 0001 trở lên")
        return cls(agency=agency, received=received, sequence=int(seq))

    @classmethod
    def is_valid(cls, text: str) -> bool:
        """True when ``text`` parses as a case ID."""
        try:
            cls.parse(text)
        except InvalidCaseId:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.agency}-{self.received:%y%m%d}-{self.sequence:04d}"
