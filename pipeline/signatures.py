"""What signing and verifying report (pipeline/sign.py): the records, and the error when a signature cannot be made."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from models import SohoaError


class SigningFailed(SohoaError):
    """A signature could not be made (key, token, TSA); the unsigned PDF is kept (exit 6)."""

    exit_code = 6
    retryable = True


@dataclass(frozen=True)
class SignatureInfo:
    """What one signing step did."""

    role: str  # "operator" | "agency"
    signer: str  # the certificate's common name
    signed_at: str  # ISO 8601, +07:00
    level: str  # "PAdES-B-B" | "PAdES-B-T" | "PAdES-B-LT"
    test: bool = False


@dataclass
class SignatureCheck:
    """The verdict on one signature of a PDF; ``problems`` is empty when it is sound."""

    field: str
    signer: str
    signed_at: str | None
    timestamp: str | None
    level: str
    intact: bool
    trusted: bool
    modified_after: bool
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def revinfo_expiry(vc) -> dt.datetime | None:
    """The earliest nextUpdate of the OCSP responses and CRLs a context holds (None: none says)."""
    times = []
    for resp in vc.ocsps:
        try:
            for single in resp["response_bytes"]["response"].parsed["tbs_response_data"]["responses"]:
                if single["next_update"].native is not None:
                    times.append(single["next_update"].native)
        except (KeyError, TypeError, ValueError):
            continue
    times += [c["tbs_cert_list"]["next_update"].native for c in vc.crls
              if c["tbs_cert_list"]["next_update"].native is not None]
    return min(times) if times else None
