"""The case ID (mã hồ sơ) is validated exactly as DOMAIN.md describes."""
from __future__ import annotations

import datetime as dt
import pickle

import pytest

from models import CaseId, InvalidCaseId


@pytest.mark.parametrize("text", ["000.00.01.H56-181010-0001", "000.00.14.H56-200203-0118",
                                  "000.17.22.H56-240229-9999", "000.00.00.G01-010101-0001"])
def test_valid_ids_round_trip(text):
    assert str(CaseId.parse(text)) == text


def test_white_space_and_letter_case_are_normalised():
    case = CaseId.parse("  000.00.01.h56-181010-0001\n")
    assert str(case) == "000.00.01.H56-181010-0001"
    assert case.received == dt.date(2018, 10, 10)
    assert case.sequence == 1


@pytest.mark.parametrize("text", [
    "", "000.00.01.H56", "000.00.01.H56-181010", "00.00.01.H56-181010-0001", "000.00.01.X56-181010-0001",
    "000.00.01.H56-181310-0001",  # month 13
    "000.00.01.H56-230229-0001",  # 29 Feb in a non-leap year
    "000.00.01.H56-181010-0000",  # sequence 0
    "000.00.01.H56-181010-00001", "000.00.01.H56 181010 0001", "000.00.01.H56-181010-0001; rm -rf /",
    "../000.00.01.H56-181010-0001",
])
def test_malformed_ids_are_refused_with_the_expected_shape(text):
    with pytest.raises(InvalidCaseId) as err:
        CaseId.parse(text)
    assert "000.00.01.H56-181010-0001" in err.value.message_en
    assert "mã hồ sơ" in err.value.message_vi
    assert err.value.exit_code == 2


def test_error_survives_pickling_with_both_messages():
    # Prefect and process pools pickle exceptions; the operator's sentence must survive.
    with pytest.raises(InvalidCaseId) as err:
        CaseId.parse("abc")
    copy = pickle.loads(pickle.dumps(err.value))
    assert copy.message_vi == err.value.message_vi and copy.exit_code == 2


def _digits(text: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


@pytest.mark.parametrize("zero", [0xFF10, 0x1D7CE, 0x0660, 0x06F0, 0x0966], ids=[
    "full-width", "mathematical-bold", "arabic-indic", "extended-arabic-indic", "devanagari"])
def test_only_ascii_digits_are_accepted(zero):
    # \d matched these; they then crashed later (full-width, mathematical) or silently became ASCII.
    text = _digits("000.00.01.H56-181010-0001", zero)
    with pytest.raises(InvalidCaseId) as err:
        CaseId.parse(text)
    assert err.value.exit_code == 2
    assert not CaseId.is_valid(_digits("000.00.01.H56-181010-0001", 0x30)[:-1] + text[-1])
