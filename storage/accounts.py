"""Local accounts (argon2id), API tokens (stored hashed) and server-side web sessions, in the catalog database.

Sessions live in the database, never in one process's memory, so any number of web replicas behind
a proxy see the same sign-ins. A session id and a token secret are shown once and only their
SHA-256 is stored (they are 256-bit random values, so a fast hash is enough); passwords are hashed
with argon2id. A disabled user's sessions stop working at once because every request re-reads the user.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from models import SohoaError
from models.policy import UNIT_PATTERN, Principal, Role

metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text()),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("units", sa.JSON(), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False, default=False),
    sa.Column("oidc_subject", sa.String(255), unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("units", sa.JSON(), nullable=False),
    sa.Column("scopes", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("operator", sa.String(128)),  # migration 0012: the operator account the token acts for
)
web_sessions = sa.Table(
    "web_sessions", metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("client", sa.String(64)),
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
TOKEN_PATTERN = re.compile(r"^sohoa_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
DEFAULT_IDLE = dt.timedelta(minutes=30)
ABSOLUTE_LIFETIME = dt.timedelta(hours=12)
TOUCH_EVERY = dt.timedelta(seconds=30)  # write last_seen_at at most this often per session

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults
_DUMMY_HASH = _hasher.hash("sohoa: compare against something when the user does not exist")


class AccountError(SohoaError):
    """An account or token command that cannot be done (exit code 2, a usage error)."""

    exit_code = 2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def check_name(name: str) -> str:
    """A user or token name: letters, digits and . _ @ -, up to 128 characters."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise AccountError(f"'{name}' cannot be a name: use letters, digits and . _ @ - (up to 128).",
                           f"'{name}' không dùng được làm tên: chỉ dùng chữ, số và . _ @ - (tối đa 128).")
    return name


def check_units(units: list[str] | tuple[str, ...]) -> list[str]:
    """Unit codes (the agency part of a case ID), validated and de-duplicated in order."""
    out: list[str] = []
    for u in units:
        u = u.strip()
        m = re.fullmatch(r"(\d{3}\.\d{2}\.\d{2}\.)([hgHG])(\d{2})", u)
        u = f"{m.group(1)}{m.group(2).upper()}{m.group(3)}" if m else u
        if not UNIT_PATTERN.fullmatch(u):
            raise AccountError(f"'{u}' is not a unit: write the agency code of a case ID, e.g. 000.00.14.H56.",
                               f"'{u}' không phải mã đơn vị: hãy viết mã cơ quan trong mã hồ sơ, ví dụ 000.00.14.H56.")
        if u not in out:
            out.append(u)
    return out


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(f"'{role}' is not a role: operator, handler, archivist, approver or admin.",
                           f"'{role}' không phải vai trò: operator, handler, archivist, approver hoặc admin.") from None


@dataclass(frozen=True)
class User:
    """An account as stored (never with its password hash)."""

    id: int
    name: str
    role: Role
    units: tuple[str, ...]
    disabled: bool
    created_at: dt.datetime
    oidc_subject: str | None = None

    def principal(self) -> Principal:
        return Principal(name=self.name, roles=frozenset({self.role}), units=frozenset(self.units))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role.value, "units": list(self.units), "disabled": self.disabled,
                "created_at": self.created_at.isoformat(), "oidc": self.oidc_subject is not None}


@dataclass(frozen=True)
class ApiToken:
    """An API token as stored (the secret is never stored, only its SHA-256)."""

    id: str
    name: str
    units: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    operator: str | None = None  # the operator account whose uploads these are (signed with their key)

    def usable(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def principal(self) -> Principal:
        # A token reads its units' dossiers like a handler; the write scope adds receiving scans.
        roles = {Role.HANDLER} | ({Role.OPERATOR} if "write" in self.scopes else set())
        return Principal(name=self.name, roles=frozenset(roles), units=frozenset(self.units), kind="token",
                         scopes=frozenset(self.scopes))

    def to_dict(self) -> dict[str, Any]:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {"name": self.name, "id": self.id, "units": list(self.units), "scopes": list(self.scopes),
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "revoked_at": iso(self.revoked_at), "last_used_at": iso(self.last_used_at),
                "operator": self.operator}


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: its user (re-read on every request) and its CSRF token."""

    user: User
    csrf: str
    id_sha256: str


def _user(row: sa.Row) -> User:
    return User(id=row.id, name=row.name, role=Role(row.role), units=tuple(row.units or ()),
                disabled=bool(row.disabled), created_at=_utc(row.created_at), oidc_subject=row.oidc_subject)


def _token(row: sa.Row) -> ApiToken:
    return ApiToken(id=row.id, name=row.name, units=tuple(row.units or ()), scopes=tuple(row.scopes or ()),
                    created_at=_utc(row.created_at), expires_at=_utc(row.expires_at),
                    revoked_at=_utc(row.revoked_at), last_used_at=_utc(row.last_used_at),
                    operator=row.operator)


class Accounts:
    """Users, tokens and sessions on the catalog's engine (the tables come from migration 0003)."""

    def __init__(self, engine: sa.Engine, *, idle: dt.timedelta = DEFAULT_IDLE) -> None:
        self.engine = engine
        self.idle = idle
        self.touch_every = min(TOUCH_EVERY, idle / 4)

    # ------------------------------------------------------------------------------- users
    def add_user(self, name: str, *, role: str, units: list[str], password: str | None = None,
                 oidc_subject: str | None = None) -> User:
        """Create an account; refused when the name is taken."""
        check_name(name)
        r = check_role(role)
        unit_list = check_units(units)
        if r is not Role.ADMIN and not unit_list:
            raise AccountError("A handler, archivist or operator needs at least one --unit.",
                               "Người dùng cần ít nhất một --unit (mã đơn vị).")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
                raise AccountError(f"A user named {name} already exists.", f"Đã có người dùng tên {name}.")
            conn.execute(users.insert().values(
                name=name, role=r.value, units=unit_list, disabled=False, oidc_subject=oidc_subject,
                password_hash=hash_password(password) if password else None, created_at=_now()))
        return self.get_user(name)  # type: ignore[return-value]

    def get_user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.name))]

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password and sign them out everywhere."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
            if row is None:
                raise AccountError(f"No user named {name}.", f"Không có người dùng tên {name}.")
            conn.execute(users.update().where(users.c.id == row.id).values(password_hash=hash_password(password)))
            conn.execute(web_sessions.delete().where(web_sessions.c.user_id == row.id))

    def set_disabled(self, name: str, disabled: bool = True) -> None:
        """Disable (or enable) an account; a disabled user's sessions end at once."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users.c.id).where(users.c.name == name)).first()
            if row is None:
                raise AccountError(f"No user named {name}.", f"Không có người dùng tên {name}.")
            conn.execute(users.update().where(users.c.id == row.id).values(disabled=disabled))
            if disabled:
                conn.execute(web_sessions.delete().where(web_sessions.c.user_id == row.id))

    def authenticate(self, name: str, password: str) -> User | None:
        """The enabled user with this password, or None (same work whether or not the name exists)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or not row.password_hash or row.disabled:
            return None
        if _hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(users.update().where(users.c.id == row.id).values(password_hash=hash_password(password)))
        return _user(row)

    def upsert_oidc_user(self, *, subject: str, name: str, role: Role, units: list[str]) -> User:
        """The account of a single-sign-on identity, created or updated from its claims (no password)."""
        unit_list = check_units(units)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users).where(users.c.oidc_subject == subject)).first()
            if row is None:
                check_name(name)
                if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
                    raise AccountError(f"A local user named {name} already exists.",
                                       f"Đã có người dùng nội bộ tên {name}.")
                conn.execute(users.insert().values(name=name, role=role.value, units=unit_list, disabled=False,
                                                   oidc_subject=subject, created_at=_now()))
            else:
                conn.execute(users.update().where(users.c.id == row.id).values(role=role.value, units=unit_list))
            row = conn.execute(sa.select(users).where(users.c.oidc_subject == subject)).one()
        return _user(row)

    # ------------------------------------------------------------------------------ tokens
    def add_token(self, name: str, *, units: list[str], scopes: list[str],
                  expires: dt.timedelta | None = None, operator: str | None = None) -> tuple[ApiToken, str]:
        """Create a token; returns it and its secret (shown once, never stored).

        ``operator``: an operator account the token acts for (its uploads are that operator's); the
        token's units must be among the operator's.
        """
        check_name(name)
        unit_list = check_units(units)
        if not unit_list:
            raise AccountError("A token needs at least one --unit.", "Mã truy cập cần ít nhất một --unit.")
        bad = sorted(set(scopes) - {"read", "write"})
        if bad or not scopes:
            raise AccountError("Scopes are read and/or write.", "Phạm vi chỉ gồm read và/hoặc write.")
        scope_list = sorted(set(scopes) | {"read"})  # writing without reading makes no sense
        if operator is not None:
            user = self.get_user(operator)
            if user is None or user.role is not Role.OPERATOR or user.disabled:
                raise AccountError(f"{operator} is not an active operator account.",
                                   f"{operator} không phải tài khoản người số hóa (operator) đang hoạt động.")
            if not set(unit_list) <= set(user.units):
                raise AccountError(f"The token's units must be among {operator}'s ({', '.join(user.units)}).",
                                   f"Đơn vị của mã truy cập phải thuộc đơn vị của {operator} "
                                   f"({', '.join(user.units)}).")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = _now()
        with self.engine.begin() as conn:
            if conn.execute(sa.select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
                raise AccountError(f"A token named {name} already exists.", f"Đã có mã truy cập tên {name}.")
            conn.execute(api_tokens.insert().values(
                id=token_id, name=name, secret_sha256=_sha(secret), units=unit_list, scopes=scope_list,
                created_at=now, expires_at=now + expires if expires else None, operator=operator))
        return self.get_token(name), f"sohoa_{token_id}_{secret}"  # type: ignore[return-value]

    def get_token(self, name: str) -> ApiToken | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).first()
        return _token(row) if row else None

    def list_tokens(self) -> list[ApiToken]:
        with self.engine.connect() as conn:
            return [_token(r) for r in conn.execute(sa.select(api_tokens).order_by(api_tokens.c.name))]

    def revoke_token(self, name: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(api_tokens.update().where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                                .values(revoked_at=_now())).rowcount
        if not done and self.get_token(name) is None:
            raise AccountError(f"No token named {name}.", f"Không có mã truy cập tên {name}.")

    def token_for(self, presented: str) -> ApiToken | None:
        """The usable token whose secret this is, or None (unknown, wrong, expired or revoked)."""
        m = TOKEN_PATTERN.fullmatch(presented or "")
        if not m:
            return None
        now = _now()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == m.group(1))).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, _sha(m.group(2))):
            return None
        token = _token(row)
        if not token.usable(now):
            return None
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(api_tokens.update().where(api_tokens.c.id == token.id).values(last_used_at=now))
        return token

    # ---------------------------------------------------------------------------- sessions
    def start_session(self, user: User, *, client: str | None = None) -> tuple[str, WebSession]:
        """A new session for a signed-in user: (cookie value, session)."""
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(web_sessions.insert().values(id_sha256=_sha(cookie), user_id=user.id, csrf=csrf,
                                                      created_at=now, last_seen_at=now, client=client))
        return cookie, WebSession(user=user, csrf=csrf, id_sha256=_sha(cookie))

    def session_for(self, cookie: str | None, *, touch: bool = True) -> WebSession | None:
        """The live session of this cookie, touched; None when unknown, idle too long, or the user is disabled.

        ``touch=False`` for a page's background requests (polling, event streams): they are not the
        user's activity, so an open tab left alone still times out.
        """
        if not cookie or len(cookie) > 100:
            return None
        now = _now()
        key = _sha(cookie)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(web_sessions.c.user_id, web_sessions.c.csrf, web_sessions.c.last_seen_at,
                                         web_sessions.c.created_at.label("session_created_at"), users.c.name,
                                         users.c.role, users.c.units, users.c.disabled, users.c.oidc_subject,
                                         users.c.created_at)
                               .join(users, users.c.id == web_sessions.c.user_id)
                               .where(web_sessions.c.id_sha256 == key)).first()
        if row is None:
            return None
        last = _utc(row.last_seen_at)
        if row.disabled or now - last > self.idle or now - _utc(row.session_created_at) > ABSOLUTE_LIFETIME:
            self.end_session(cookie)
            return None
        if touch and now - last > self.touch_every:
            with self.engine.begin() as conn:
                conn.execute(web_sessions.update().where(web_sessions.c.id_sha256 == key).values(last_seen_at=now))
        user = User(id=row.user_id, name=row.name, role=Role(row.role), units=tuple(row.units or ()),
                    disabled=False, created_at=_utc(row.created_at), oidc_subject=row.oidc_subject)
        return WebSession(user=user, csrf=row.csrf, id_sha256=key)

    def end_session(self, cookie: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.id_sha256 == _sha(cookie)))

    def purge_sessions(self) -> int:
        """Delete sessions idle past the limit; returns how many."""
        cutoff = _now() - self.idle
        with self.engine.begin() as conn:
            return conn.execute(web_sessions.delete().where(web_sessions.c.last_seen_at < cutoff)).rowcount
