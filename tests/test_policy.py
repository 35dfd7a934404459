"""The access policy, the whole matrix: every role × action × own/other unit, tokens and scopes."""
from __future__ import annotations

import pytest

from models.policy import Action, Outcome, Principal, Role, decide, readable_units, stack_unit, unit_of

OWN, OTHER = "000.00.14.H56", "000.00.22.H56"
OWN_CASE, OTHER_CASE = f"{OWN}-200203-0118", f"{OTHER}-200203-0118"
A, N, F = Outcome.ALLOWED, Outcome.NOT_FOUND, Outcome.FORBIDDEN


def user(role: Role) -> Principal:
    return Principal(name="x", roles=frozenset({role}), units=frozenset({OWN}) if role is not Role.ADMIN else frozenset())


# (action, own-unit case, other-unit case) per role
MATRIX = {
    Role.HANDLER: {
        Action.VIEW_CASE: (A, N), Action.VIEW_DOCUMENT: (A, N), Action.DOWNLOAD_SEARCHABLE: (A, N),
        Action.DOWNLOAD_CASE: (A, N), Action.LINK: (A, N), Action.DOWNLOAD_ORIGINAL: (F, N),
        Action.SIGN_AS_OPERATOR: (F, N),
        Action.UPLOAD: (F, F), Action.MANAGE_ACCOUNTS: (F, F), Action.READ_AUDIT: (F, F),
        Action.MANAGE_RECORDS: (F, N), Action.APPROVE_DISPOSAL: (F, N),
    },
    Role.ARCHIVIST: {
        Action.VIEW_CASE: (A, N), Action.VIEW_DOCUMENT: (A, N), Action.DOWNLOAD_SEARCHABLE: (A, N),
        Action.DOWNLOAD_CASE: (A, N), Action.LINK: (A, N), Action.DOWNLOAD_ORIGINAL: (A, N),
        Action.SIGN_AS_OPERATOR: (F, N),
        Action.UPLOAD: (F, F), Action.MANAGE_ACCOUNTS: (F, F), Action.READ_AUDIT: (F, F),
        Action.MANAGE_RECORDS: (A, N), Action.APPROVE_DISPOSAL: (F, N),
    },
    Role.OPERATOR: {
        Action.VIEW_CASE: (A, N), Action.VIEW_DOCUMENT: (A, N), Action.DOWNLOAD_SEARCHABLE: (A, N),
        Action.DOWNLOAD_CASE: (A, N), Action.LINK: (A, N), Action.DOWNLOAD_ORIGINAL: (A, N),
        Action.SIGN_AS_OPERATOR: (A, N),
        Action.UPLOAD: (A, F), Action.MANAGE_ACCOUNTS: (F, F), Action.READ_AUDIT: (F, F),
        Action.MANAGE_RECORDS: (F, N), Action.APPROVE_DISPOSAL: (F, N),
    },
    Role.ADMIN: {  # administers accounts and the trail; reads no dossier
        Action.VIEW_CASE: (N, N), Action.VIEW_DOCUMENT: (N, N), Action.DOWNLOAD_SEARCHABLE: (N, N),
        Action.DOWNLOAD_CASE: (N, N), Action.LINK: (N, N), Action.DOWNLOAD_ORIGINAL: (N, N),
        Action.SIGN_AS_OPERATOR: (N, N),
        Action.UPLOAD: (F, F), Action.MANAGE_ACCOUNTS: (A, A), Action.READ_AUDIT: (A, A),
        Action.MANAGE_RECORDS: (N, N), Action.APPROVE_DISPOSAL: (N, N),
    },
    Role.APPROVER: {  # the agency's head: reads the unit's dossiers, approves disposal lists
        Action.VIEW_CASE: (A, N), Action.VIEW_DOCUMENT: (A, N), Action.DOWNLOAD_SEARCHABLE: (A, N),
        Action.DOWNLOAD_CASE: (A, N), Action.LINK: (A, N), Action.DOWNLOAD_ORIGINAL: (F, N),
        Action.UPLOAD: (F, F), Action.MANAGE_ACCOUNTS: (F, F), Action.READ_AUDIT: (F, F),
        Action.MANAGE_RECORDS: (F, N), Action.APPROVE_DISPOSAL: (A, N),
    },
}


@pytest.mark.parametrize(("role", "action", "own", "other"),
                         [(r, a, o, t) for r, row in MATRIX.items() for a, (o, t) in row.items()])
def test_matrix(role, action, own, other):
    p = user(role)
    assert decide(p, action, case_id=OWN_CASE).outcome is own
    assert decide(p, action, case_id=OTHER_CASE).outcome is other


def test_every_action_is_in_the_matrix_or_tested_separately():
    covered = set(MATRIX[Role.HANDLER]) | {Action.LIST_CASES, Action.SEARCH, Action.READ_STACK}
    assert covered == set(Action)


@pytest.mark.parametrize("action", list(Action))
def test_nobody_signed_in_is_sent_to_sign_in(action):
    assert decide(None, action, case_id=OWN_CASE).outcome is Outcome.UNAUTHENTICATED


@pytest.mark.parametrize("role", [Role.HANDLER, Role.ARCHIVIST, Role.OPERATOR])
def test_search_and_lists_only_own_units(role):
    p = user(role)
    assert decide(p, Action.SEARCH).allowed and decide(p, Action.LIST_CASES).allowed
    assert decide(p, Action.SEARCH, unit=OWN).allowed
    assert decide(p, Action.SEARCH, unit=OTHER).outcome is N
    assert readable_units(p) == {OWN}


def test_admin_cannot_search_dossiers():
    assert decide(user(Role.ADMIN), Action.SEARCH).outcome is F
    assert readable_units(user(Role.ADMIN)) == frozenset()


@pytest.mark.parametrize(("role", "own"), [(Role.OPERATOR, A), (Role.ARCHIVIST, A), (Role.HANDLER, N), (Role.ADMIN, N)])
def test_stack_objects_only_for_operators_and_archivists_of_the_unit(role, own):
    p = user(role)
    assert decide(p, Action.READ_STACK, object_key=f"stacks/{OWN}/2026-11-29/scan.pdf").outcome is own
    assert decide(p, Action.READ_STACK, object_key=f"stacks/{OTHER}/2026-11-29/scan.pdf").outcome is N
    assert decide(p, Action.READ_STACK, object_key=f"cases/{OWN_CASE}/manifest.json").outcome is N


def token(*scopes: str) -> Principal:
    from storage.accounts import ApiToken

    t = ApiToken(id="0" * 16, name="egov", units=(OWN,), scopes=scopes, created_at=None, expires_at=None,  # type: ignore[arg-type]
                 revoked_at=None, last_used_at=None)
    return t.principal()


def test_read_token_reads_but_cannot_upload_or_administer():
    p = token("read")
    assert decide(p, Action.VIEW_CASE, case_id=OWN_CASE).allowed
    assert decide(p, Action.VIEW_CASE, case_id=OTHER_CASE).outcome is N
    assert decide(p, Action.UPLOAD, case_id=OWN_CASE).outcome is F
    assert decide(p, Action.DOWNLOAD_ORIGINAL, case_id=OWN_CASE).outcome is F
    assert decide(p, Action.READ_AUDIT).outcome is F


def test_write_token_uploads_to_its_units_only():
    p = token("read", "write")
    assert decide(p, Action.UPLOAD, case_id=OWN_CASE).allowed
    assert decide(p, Action.UPLOAD, case_id=OTHER_CASE).outcome is F


def test_admin_token_is_not_possible():
    p = Principal(name="t", roles=frozenset({Role.ADMIN}), units=frozenset(), kind="token")
    assert decide(p, Action.MANAGE_ACCOUNTS).outcome is F


def test_malformed_or_provisional_case_is_not_found():
    p = user(Role.HANDLER)
    assert decide(p, Action.VIEW_CASE, case_id="../../etc/passwd").outcome is N
    assert decide(p, Action.VIEW_CASE, case_id="TAM-20261129-abc").outcome is N


def test_units_and_keys_are_parsed_strictly():
    assert unit_of(OWN_CASE) == OWN and unit_of("x-y") is None and unit_of(None) is None
    assert stack_unit(f"stacks/{OWN}/a.pdf") == OWN and stack_unit("stacks/../a") is None
    with pytest.raises(ValueError):
        Principal(name="x", roles=frozenset({Role.HANDLER}), units=frozenset({"H56"}))
