"""The access policy: one pure function decides whether a principal may do an action to a case.

Every web route and every API download asks ``decide`` (through one FastAPI dependency), so the rule
is written once. A refused *read* of a dossier answers "not found" (nothing about its existence leaks);
a refused *action* on something the principal may see answers "forbidden".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum


class Role(str, Enum):
    OPERATOR = "operator"    # receives scans for their units; sees what their units received
    HANDLER = "handler"      # reads their units' dossiers
    ARCHIVIST = "archivist"  # reads their units' dossiers and originals, runs backfills
    ADMIN = "admin"          # accounts, tokens, audit
    APPROVER = "approver"    # reads their units' dossiers, approves disposal lists (the agency's head)


class Action(str, Enum):
    LIST_CASES = "list_cases"
    SEARCH = "search"
    VIEW_CASE = "view_case"
    VIEW_DOCUMENT = "view_document"
    DOWNLOAD_SEARCHABLE = "download_searchable"
    DOWNLOAD_ORIGINAL = "download_original"
    DOWNLOAD_CASE = "download_case"      # the case as a ZIP or one merged PDF
    LINK = "link"                        # a presigned store link (≤ 15 min)
    READ_STACK = "read_stack"            # a scanned stack under stacks/<unit>/... (before it was split)
    UPLOAD = "upload"                    # add scans to a case
    SIGN_AS_OPERATOR = "sign_as_operator"  # an operator adds their own signature to what they digitized
    MANAGE_ACCOUNTS = "manage_accounts"
    READ_AUDIT = "read_audit"
    MANAGE_RECORDS = "manage_records"    # record metadata, legal holds, disposal proposals, transfer packages
    APPROVE_DISPOSAL = "approve_disposal"  # the second person of a disposal


class Outcome(str, Enum):
    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"  # 401 / the sign-in page
    NOT_FOUND = "not_found"              # 404: a refused read, as if the dossier did not exist
    FORBIDDEN = "forbidden"              # 403: a refused action on something the principal may see


READ_ROLES = frozenset({Role.OPERATOR, Role.HANDLER, Role.ARCHIVIST, Role.APPROVER})
ORIGINAL_ROLES = frozenset({Role.OPERATOR, Role.ARCHIVIST})  # the archivist and the intake role
STACK_ROLES = frozenset({Role.OPERATOR, Role.ARCHIVIST})
UPLOAD_ROLES = frozenset({Role.OPERATOR})
RECORD_ROLES = {Action.MANAGE_RECORDS: frozenset({Role.ARCHIVIST}), Action.APPROVE_DISPOSAL: frozenset({Role.APPROVER})}
ADMIN_ACTIONS = frozenset({Action.MANAGE_ACCOUNTS, Action.READ_AUDIT})
CASE_READS = frozenset({Action.VIEW_CASE, Action.VIEW_DOCUMENT, Action.DOWNLOAD_SEARCHABLE,
                        Action.DOWNLOAD_CASE, Action.LINK})
WRITE_ACTIONS = frozenset({Action.UPLOAD, Action.MANAGE_ACCOUNTS})

UNIT_PATTERN = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[HG]\d{2}$")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user (``kind='user'``) or an API token (``kind='token'``)."""

    name: str
    roles: frozenset[Role]
    units: frozenset[str]
    kind: str = "user"
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"read", "write"}))

    def __post_init__(self) -> None:
        for unit in self.units:
            if not UNIT_PATTERN.fullmatch(unit):
                raise ValueError(f"{unit!r} is not a unit (agency code such as 000.00.14.H56)")
        if self.kind not in ("user", "token"):
            raise ValueError(f"unknown principal kind {self.kind!r}")
        if not self.scopes <= {"read", "write"}:
            raise ValueError(f"unknown scopes {sorted(self.scopes - {'read', 'write'})}")

    @property
    def actor(self) -> str:
        """How the audit trail names this principal: ``user:NAME`` or ``token:NAME``."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Decision:
    """The policy's answer: an outcome and the reason recorded in the audit trail."""

    outcome: Outcome
    reason: str

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    @property
    def status_code(self) -> int:
        return {Outcome.ALLOWED: 200, Outcome.UNAUTHENTICATED: 401, Outcome.NOT_FOUND: 404,
                Outcome.FORBIDDEN: 403}[self.outcome]


def unit_of(case_id: str | None) -> str | None:
    """The receiving unit of a case ID (its first part), or None when it has none."""
    if not case_id:
        return None
    unit = str(case_id).split("-", 1)[0]
    return unit if UNIT_PATTERN.fullmatch(unit) else None


def stack_unit(object_key: str) -> str | None:
    """The unit of a stack object ``stacks/<unit>/...``, or None when the key is not one."""
    parts = object_key.split("/")
    if len(parts) >= 3 and parts[0] == "stacks" and UNIT_PATTERN.fullmatch(parts[1]):
        return parts[1]
    return None


def readable_units(principal: Principal | None) -> frozenset[str]:
    """The units whose dossiers this principal may read (empty for an admin-only account)."""
    if principal is None or not (principal.roles & READ_ROLES) or "read" not in principal.scopes:
        return frozenset()
    return principal.units


def decide(principal: Principal | None, action: Action, *, case_id: str | None = None,
           unit: str | None = None, object_key: str | None = None) -> Decision:
    """May ``principal`` do ``action`` to the case (or unit, or stack object) named?

    Pure: no I/O, no clock. The caller has already validated the IDs it passes.
    """
    def no(outcome: Outcome, reason: str) -> Decision:
        return Decision(outcome, reason)

    if principal is None:
        return no(Outcome.UNAUTHENTICATED, "not signed in")
    roles = principal.roles
    if action in ADMIN_ACTIONS:
        if principal.kind == "token":
            return no(Outcome.FORBIDDEN, "API tokens cannot administer")
        if Role.ADMIN not in roles:
            return no(Outcome.FORBIDDEN, "administrators only")
        return Decision(Outcome.ALLOWED, "administrator")

    if action is Action.READ_STACK:
        target = stack_unit(object_key or "")
        if target is None:
            return no(Outcome.NOT_FOUND, "not a stack object")
        if not (roles & STACK_ROLES) or target not in principal.units or "read" not in principal.scopes:
            return no(Outcome.NOT_FOUND, "stacks only for the unit's operators and archivists")
        return Decision(Outcome.ALLOWED, "operator/archivist of the unit")

    units = readable_units(principal)
    if action in (Action.LIST_CASES, Action.SEARCH):
        if not (roles & READ_ROLES):
            return no(Outcome.FORBIDDEN, "no role that reads dossiers")
        if "read" not in principal.scopes:
            return no(Outcome.FORBIDDEN, "token without the read scope")
        if unit is not None and unit not in units:
            # Filtering by a unit one may not see reveals nothing: answer with an empty result set.
            return no(Outcome.NOT_FOUND, "unit not held")
        return Decision(Outcome.ALLOWED, "reads own units")

    target = unit_of(case_id) if case_id is not None else unit
    if target is None:
        return no(Outcome.NOT_FOUND, "no valid case")

    if action is Action.UPLOAD:
        if "write" not in principal.scopes:
            return no(Outcome.FORBIDDEN, "token without the write scope")
        if not (roles & UPLOAD_ROLES):
            return no(Outcome.FORBIDDEN, "only operators receive scans")
        if target not in principal.units:
            return no(Outcome.FORBIDDEN, "not a unit of this operator")
        return Decision(Outcome.ALLOWED, "operator of the unit")

    # Reads of a dossier: outside one's units the dossier "does not exist".
    if target not in units:
        return no(Outcome.NOT_FOUND, "case of another unit" if roles & READ_ROLES else "no role that reads dossiers")
    if action in RECORD_ROLES:
        if principal.kind == "token" or "write" not in principal.scopes:
            return no(Outcome.FORBIDDEN, "records are managed by signed-in people")
        if not (roles & RECORD_ROLES[action]):
            return no(Outcome.FORBIDDEN, "archivists manage records; approvers approve disposals")
        return Decision(Outcome.ALLOWED, f"{action.value} in own unit")
    if action is Action.DOWNLOAD_ORIGINAL:
        if not (roles & ORIGINAL_ROLES):
            return no(Outcome.FORBIDDEN, "originals only for archivists and operators")
        return Decision(Outcome.ALLOWED, "original for archivist/operator of the unit")
    if action in CASE_READS:
        return Decision(Outcome.ALLOWED, "reads own unit")
    if action is Action.SIGN_AS_OPERATOR:
        if Role.OPERATOR not in roles or "write" not in principal.scopes or target not in principal.units:
            return no(Outcome.FORBIDDEN, "only the unit's operators sign")
        return Decision(Outcome.ALLOWED, "operator of the unit")
    return no(Outcome.FORBIDDEN, f"unknown action {action.value}")
