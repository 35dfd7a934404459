"""Where the signing keys are: the agency's signer, each operator's personal signer, the TSA, trust roots.

Everything lives in one folder (``<SOHOA_DATA_DIR>/keys`` unless ``SOHOA_KEYS_DIR``):

    signing.json               agency name, agency signer, TSA, trust roots, ``"test": true`` for test keys
    operators/<slug>.json      one operator's signer, keyed by the operator's name (see ``operator_slug``)
    *.p12, *.pass, *.pem       PKCS#12 files, their passphrase files (mode 0600), CA certificates

A signer is a PKCS#12 file (``{"type": "pkcs12", "file": …, "passphrase_file"|"passphrase_env": …}``)
or a PKCS#11 token (``{"type": "pkcs11", "module": …, "token_label": …, "key_label": …,
"pin_file"|"pin_env": …}``). Secrets are only ever read from a file or an environment variable,
never taken on the command line and never written into a report.

``init_test_keys`` makes a clearly labelled TEST CA with an agency, an operator and a TSA
certificate, so that the embedded default signs; nothing it makes is trusted outside this install.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import SohoaError

TEST_LABEL = "KHÓA THỬ NGHIỆM (TEST) – KHÔNG CÓ GIÁ TRỊ PHÁP LÝ"
DEFAULT_AGENCY_NAME = "Bộ phận Một cửa (chưa cấu hình tên cơ quan)"


class KeyConfigError(SohoaError):
    """The key configuration cannot be used (exit 2: fix the configuration)."""

    exit_code = 2


@dataclass(frozen=True)
class SignerSpec:
    """How to reach one signing key; never holds the secret itself, only where to read it."""

    type: str  # "pkcs12" | "pkcs11"
    file: Path | None = None
    passphrase_file: Path | None = None
    passphrase_env: str | None = None
    module: str | None = None
    token_label: str | None = None
    slot: int | None = None  # index in the PKCS#11 module's slot list, when the token has no usable label
    key_label: str | None = None
    cert_label: str | None = None
    pin_file: Path | None = None
    pin_env: str | None = None
    # Hash in software and let the token sign the digest only (CKM_ECDSA): for tokens, like SoftHSM2,
    # that lack the combined hash-and-sign mechanisms for EC keys.
    raw_mechanism: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path) -> SignerSpec:
        kind = d.get("type")
        if kind not in ("pkcs12", "pkcs11"):
            raise KeyConfigError(f"Signer type {kind!r} is not pkcs12 or pkcs11.",
                                 f"Loại khóa ký {kind!r} không phải pkcs12 hoặc pkcs11.")

        def path(name: str) -> Path | None:
            v = d.get(name)
            return None if v is None else (base / v if not Path(v).is_absolute() else Path(v))

        spec = cls(type=kind, file=path("file"), passphrase_file=path("passphrase_file"),
                   passphrase_env=d.get("passphrase_env"), module=d.get("module"), token_label=d.get("token_label"),
                   slot=int(d["slot"]) if d.get("slot") is not None else None,
                   key_label=d.get("key_label"), cert_label=d.get("cert_label"), pin_file=path("pin_file"),
                   pin_env=d.get("pin_env"), raw_mechanism=bool(d.get("raw_mechanism", False)))
        if kind == "pkcs12" and spec.file is None:
            raise KeyConfigError("A pkcs12 signer needs \"file\".", "Khóa pkcs12 cần khai báo \"file\".")
        if kind == "pkcs11" and not (spec.module and spec.key_label):
            raise KeyConfigError("A pkcs11 signer needs \"module\" and \"key_label\".",
                                 "Khóa pkcs11 cần khai báo \"module\" và \"key_label\".")
        return spec

    def to_dict(self, base: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if v is None or v is False:
                continue
            if isinstance(v, Path):
                v = str(v.relative_to(base)) if v.is_relative_to(base) else str(v)
            out[k] = v
        return out

    def secret(self) -> str | None:
        """The passphrase or PIN, from its file or environment variable (None when neither is set)."""
        file = self.passphrase_file or self.pin_file
        env = self.passphrase_env or self.pin_env
        if file is not None:
            try:
                return file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise KeyConfigError(f"Cannot read the secret file {file} ({exc.strerror}).",
                                     f"Không đọc được tệp bí mật {file} ({exc.strerror}).") from None
        if env is not None:
            value = os.environ.get(env)
            if value is None:
                raise KeyConfigError(f"The environment variable {env} (the key's PIN or passphrase) is not set.",
                                     f"Chưa đặt biến môi trường {env} (mã PIN hoặc mật khẩu của khóa).")
            return value
        return None


@dataclass(frozen=True)
class SigningConfig:
    """What signing needs: the agency's name and signer, the TSA, trust roots, operators' signers."""

    keys_dir: Path
    agency_name: str = DEFAULT_AGENCY_NAME
    agency: SignerSpec | None = None
    tsa_url: str | None = None
    test_tsa: SignerSpec | None = None  # a TEST TSA key used in-process (embedded default only)
    trust_roots: tuple[Path, ...] = ()
    test: bool = False
    operators: dict[str, SignerSpec] = field(default_factory=dict)
    operator_names: dict[str, str] = field(default_factory=dict)  # slug -> name printed in the stamp

    @property
    def can_sign(self) -> bool:
        """True when at least the agency can sign."""
        return self.agency is not None

    def operator_signer(self, operator: str | None) -> SignerSpec | None:
        """The personal signer of an operator, by name (None when that operator has none)."""
        return self.operators.get(operator_slug(operator)) if operator else None

    def operator_display(self, operator: str | None) -> str | None:
        """The name the operator's stamp prints: the one registered with the signer, else ``operator``."""
        return self.operator_names.get(operator_slug(operator), operator) if operator else None


def operator_slug(name: str) -> str:
    """File-safe key of an operator's name: diacritics folded, đ→d, lower case, runs of other characters → '-'."""
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "operator"


def keys_dir_for(data_dir: Path, env: dict[str, str] | None = None) -> Path:
    """``SOHOA_KEYS_DIR``, else ``<data dir>/keys``."""
    env = dict(os.environ) if env is None else env
    return Path(env["SOHOA_KEYS_DIR"]).expanduser().resolve() if env.get("SOHOA_KEYS_DIR") else data_dir / "keys"


def load_signing_config(keys_dir: Path, env: dict[str, str] | None = None) -> SigningConfig:
    """Read ``signing.json`` and ``operators/*.json`` (a missing folder means: nobody can sign).

    ``SOHOA_TSA_URL`` overrides the configured TSA; ``SOHOA_AGENCY_NAME`` the agency's name.
    """
    env = dict(os.environ) if env is None else env
    main = keys_dir / "signing.json"
    data: dict[str, Any] = {}
    if main.exists():
        try:
            data = json.loads(main.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise KeyConfigError(f"{main} is not valid JSON ({exc}).", f"{main} không phải JSON hợp lệ ({exc}).") \
                from None
    operators: dict[str, SignerSpec] = {}
    names: dict[str, str] = {}
    op_dir = keys_dir / "operators"
    if op_dir.is_dir():
        for f in sorted(op_dir.glob("*.json")):
            entry = json.loads(f.read_text(encoding="utf-8"))
            operators[f.stem] = SignerSpec.from_dict(entry["signer"], keys_dir)
            if entry.get("display_name"):
                names[f.stem] = entry["display_name"]
    tsa = data.get("tsa") or {}
    return SigningConfig(
        keys_dir=keys_dir,
        agency_name=env.get("SOHOA_AGENCY_NAME") or data.get("agency_name") or DEFAULT_AGENCY_NAME,
        agency=SignerSpec.from_dict(data["agency"], keys_dir) if data.get("agency") else None,
        tsa_url=env.get("SOHOA_TSA_URL") or tsa.get("url"),
        test_tsa=SignerSpec.from_dict(tsa["test_signer"], keys_dir) if tsa.get("test_signer") else None,
        trust_roots=tuple(keys_dir / p for p in data.get("trust_roots", [])),
        test=bool(data.get("test")),
        operators=operators,
        operator_names=names,
    )


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def save_signing_config(keys_dir: Path, *, agency_name: str, agency: SignerSpec | None, tsa_url: str | None = None,
                        test_tsa: SignerSpec | None = None, trust_roots: list[str] | None = None,
                        test: bool = False) -> Path:
    """Write ``signing.json`` (paths relative to the keys folder)."""
    tsa: dict[str, Any] = {}
    if tsa_url:
        tsa["url"] = tsa_url
    if test_tsa:
        tsa["test_signer"] = test_tsa.to_dict(keys_dir)
    body = {"agency_name": agency_name, "agency": agency.to_dict(keys_dir) if agency else None, "tsa": tsa,
            "trust_roots": trust_roots or [], "test": test}
    target = keys_dir / "signing.json"
    _write_private(target, json.dumps(body, ensure_ascii=False, indent=1).encode())
    return target


def register_operator_signer(keys_dir: Path, operator: str, spec: SignerSpec, *,
                             display_name: str | None = None) -> Path:
    """Give an operator (by account name) a personal signer; ``display_name`` is what the stamp prints."""
    target = keys_dir / "operators" / f"{operator_slug(operator)}.json"
    body: dict[str, Any] = {"operator": operator, "signer": spec.to_dict(keys_dir)}
    if display_name:
        body["display_name"] = display_name
    _write_private(target, json.dumps(body, ensure_ascii=False, indent=1).encode())
    return target


def operator_entries(keys_dir: Path) -> list[dict[str, Any]]:
    """Every registered operator signer as written (operator, display name, signer; never a secret)."""
    op_dir = keys_dir / "operators"
    return [json.loads(f.read_text(encoding="utf-8")) for f in sorted(op_dir.glob("*.json"))] \
        if op_dir.is_dir() else []


def remove_operator_signer(keys_dir: Path, operator: str) -> bool:
    """Forget an operator's signer, and the key files that were copied for it; False when there was none."""
    slug = operator_slug(operator)
    target = keys_dir / "operators" / f"{slug}.json"
    if not target.exists():
        return False
    target.unlink()
    for copied in (keys_dir / "operators").glob(f"{slug}.*"):
        copied.unlink()
    return True


# ------------------------------------------------------------------------------------ TEST PKI
def init_test_keys(keys_dir: Path, *, operator: str = "demo", agency_name: str | None = None,
                   force: bool = False) -> SigningConfig:
    """A TEST CA, agency, operator and TSA certificate (PKCS#12, passphrases in 0600 files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    current: SigningConfig | None = None
    if (keys_dir / "signing.json").exists() and not force:
        current = load_signing_config(keys_dir)
        if not current.test:
            raise KeyConfigError(f"{keys_dir} already holds real (non-test) keys; not overwriting them.",
                                 f"{keys_dir} đã có khóa thật (không phải khóa thử nghiệm); không ghi đè.")
        if operator_slug(operator) in current.operators:
            return current
        if not (keys_dir / "test-ca.p12").exists():
            current = None  # an older TEST set without its CA key: make a new set
    keys_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    agency_name = (current.agency_name if current else None) or agency_name or "UBND TỈNH THỬ NGHIỆM (TEST)"

    def name(cn: str, org: str = "sohoa TEST PKI") -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key() -> ec.EllipticCurvePrivateKey:
        # P-256: what tokens issued today carry, and ~100× faster to load than RSA for every signature.
        return ec.generate_private_key(ec.SECP256R1())

    ca_name = name("sohoa TEST CA – KHÔNG DÙNG THẬT")
    if current is not None:
        # Keep the TEST CA (PDFs already signed must still verify against its root): add the operator only.
        ca_key, ca, _ = pkcs12.load_key_and_certificates(
            (keys_dir / "test-ca.p12").read_bytes(), (keys_dir / "test-ca.pass").read_bytes().strip())
        ca_name = ca.subject
    else:
        ca_key = key()
        ca = None
    ca = ca or (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, org: str, *, tsa: bool = False) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        # pyHanko's in-process test TSA signs with RSA only.
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048) if tsa else key()
        b = (x509.CertificateBuilder().subject_name(name(cn, org)).issuer_name(ca_name).public_key(k.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now)
             .not_valid_after(now + dt.timedelta(days=1825))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=not tsa, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False))
        if tsa:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        return k, b.sign(ca_key, hashes.SHA256())

    def p12(stem: str, k: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> SignerSpec:
        password = secrets.token_urlsafe(24)
        blob = pkcs12.serialize_key_and_certificates(
            stem.encode(), k, cert, [ca], serialization.BestAvailableEncryption(password.encode()))
        _write_private(keys_dir / f"{stem}.p12", blob)
        _write_private(keys_dir / f"{stem}.pass", password.encode())
        return SignerSpec(type="pkcs12", file=keys_dir / f"{stem}.p12", passphrase_file=keys_dir / f"{stem}.pass")

    op = p12(f"test-operator-{operator_slug(operator)}", *leaf(f"{operator} [TEST]", agency_name))
    if current is not None:
        register_operator_signer(keys_dir, operator, op)
        return load_signing_config(keys_dir)
    p12("test-ca", ca_key, ca)  # kept so that more TEST operators can be added later
    (keys_dir / "test-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    agency = p12("test-agency", *leaf(f"{agency_name} [TEST]", agency_name))
    tsa = p12("test-tsa", *leaf("sohoa TEST TSA", "sohoa TEST PKI", tsa=True))
    save_signing_config(keys_dir, agency_name=agency_name, agency=agency, test_tsa=tsa, trust_roots=["test-ca.pem"],
                        test=True)
    register_operator_signer(keys_dir, operator, op)
    return load_signing_config(keys_dir)
