"""The dossier code (mã hồ sơ) that links every e-file to its case, validated strictly."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from models.errors import InvalidCaseId

# <agency ddd.dd.dd.Xdd>-<yymmdd>-<nnnn>; X is H (province) or G (central body). Digits are ASCII
# 0-9 only ([0-9], not \d, which also matches full-width, mathematical and Arabic-Indic digits).
_PATTERN = re.compile(r"^([0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2})-([0-9]{6})-([0-9]{4})$")


_AGENCY = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[HG][0-9]{2}")


def wrong_part(candidate: str) -> tuple[str, str]:
    """Which part of a malformed case ID is wrong, as (English, Vietnamese); ("", "") when none can be named.

    web/static/case_id.js says the same in the desk before anything is uploaded.
    """
    parts = candidate.split("-")
    if len(parts) != 3:
        return (f"it has {len(parts)} part(s) separated by '-' instead of 3",
                f"mã có {len(parts)} phần ngăn bởi dấu '-' thay vì 3 phần")
    agency, day, seq = parts
    if not _AGENCY.fullmatch(agency):
        return (f"the agency code '{agency}' should look like 000.00.01.H56",
                f"phần mã cơ quan '{agency}' phải có dạng 000.00.01.H56")
    if not re.fullmatch(r"[0-9]{6}", day):
        return (f"the date part '{day}' should be 6 digits yymmdd",
                f"phần ngày tiếp nhận '{day}' phải là 6 chữ số yymmdd")
    if not re.fullmatch(r"[0-9]{4}", seq):
        return (f"the sequence number '{seq}' should be 4 digits",
                f"phần số thứ tự '{seq}' phải là 4 chữ số")
    return "", ""


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
            reason_en, reason_vi = wrong_part(candidate)
            raise InvalidCaseId(text, reason_en=reason_en, reason_vi=reason_vi)
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
