"""Operators' personal signers: ``sohoa keys operator add|list|remove`` and the signer options of ``user add``.

An operator account (``sohoa user add NAME --role operator``) signs what it digitizes with its own
key: a PKCS#12 file or a PKCS#11 token (slot or label). The file and the passphrase/PIN file are
copied into the keys folder (``operators/<name>.*``, mode 0600); a passphrase or PIN may instead
stay in an environment variable of the service. Neither is ever taken on the command line. The
signer is opened once when it is added (a wrong passphrase or PIN, a missing token, is said at once)
and its certificate's holder is the name printed in the stamp, unless ``--display-name`` says otherwise.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.options import Json, argument, option
from models import SohoaError


class SignerUsage(SohoaError):
    """Signer options that cannot be used together (exit 2)."""

    exit_code = 2


P12 = Annotated[Path | None, option("--p12", metavar="FILE", help="tệp PKCS#12 (.p12/.pfx) chứa khóa và chứng thư "
                                                                    "của người số hóa (the operator's PKCS#12 file)")]
Module = Annotated[str | None, option("--pkcs11-module", metavar="LIB.so", help="thư viện PKCS#11 của thẻ ký số / "
                                                                                  "USB token (the token's PKCS#11 module)")]
TokenLabel = Annotated[str | None, option("--token-label", help="nhãn của thẻ (token label)")]
Slot = Annotated[int | None, option("--slot", min=0, help="thứ tự khe của thẻ trong danh sách của thư viện, từ 0, "
                                                        "khi không dùng nhãn (the slot's index in the module's "
                                                        "slot list, from 0)")]
KeyLabel = Annotated[str | None, option("--key-label", help="nhãn khóa trên thẻ (key label on the token)")]
CertLabel = Annotated[str | None, option("--cert-label", help="nhãn chứng thư, mặc định như nhãn khóa (certificate "
                                                              "label; default: the key label)")]
RawMechanism = Annotated[bool, option("--raw-mechanism", help="thẻ chỉ ký bản tóm lược (ECDSA thô, ví dụ SoftHSM2) "
                                                              "(the token signs digests only)")]
SecretFile = Annotated[Path | None, option("--passphrase-file", metavar="FILE", help="tệp chứa mật khẩu PKCS#12 hoặc "
                                                                                       "mã PIN của thẻ; được sao vào "
                                                                                       "thư mục khóa (file holding the "
                                                                                       "passphrase or PIN; copied)")]
SecretEnv = Annotated[str | None, option("--passphrase-env", metavar="VAR", help="biến môi trường chứa mật khẩu / PIN "
                                                                                   "khi dịch vụ chạy (environment "
                                                                                   "variable holding it)")]
DisplayName = Annotated[str | None, option("--display-name", help="tên in trên chữ ký, mặc định tên trong chứng thư "
                                                                  "(name printed in the stamp; default: the "
                                                                  "certificate's)")]


@dataclass(frozen=True)
class SignerOptions:
    """The signer options as typed (paths and names only; never a secret)."""

    p12: Path | None = None
    module: str | None = None
    token_label: str | None = None
    slot: int | None = None
    key_label: str | None = None
    cert_label: str | None = None
    raw_mechanism: bool = False
    secret_file: Path | None = None
    secret_env: str | None = None
    display_name: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.p12 or self.module)


def _keys_dir() -> Path:
    from flows.common import settings
    from pipeline.keyring import keys_dir_for

    return keys_dir_for(settings().data_dir)


def _open():  # type: ignore[no-untyped-def]
    from storage.accounts import Accounts
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env())
    return Accounts(catalog.engine), AuditTrail(catalog.engine)


def _spec(o: SignerOptions):
    from pipeline.keyring import SignerSpec

    if bool(o.p12) == bool(o.module):
        raise SignerUsage("Give either --p12 FILE or --pkcs11-module LIB (with --token-label or --slot and "
                          "--key-label).",
                          "Hãy ghi --p12 TỆP hoặc --pkcs11-module THƯ_VIỆN (kèm --token-label hoặc --slot và "
                          "--key-label), không cả hai.")
    if o.secret_file and o.secret_env:
        raise SignerUsage("Give the passphrase in a file or an environment variable, not both.",
                          "Mật khẩu/PIN lấy từ tệp hoặc biến môi trường, không cả hai.")
    for path in (o.p12, o.secret_file):
        if path is not None and not path.is_file():
            raise SignerUsage(f"{path} is not a file.", f"{path} không phải là tệp.")
    if o.p12:
        return SignerSpec(type="pkcs12", file=o.p12.resolve(), passphrase_file=o.secret_file,
                          passphrase_env=o.secret_env)
    if not o.key_label or (o.token_label is None and o.slot is None):
        raise SignerUsage("A token needs --key-label and --token-label or --slot.",
                          "Thẻ ký số cần --key-label và --token-label hoặc --slot.")
    return SignerSpec(type="pkcs11", module=o.module, token_label=o.token_label, slot=o.slot, key_label=o.key_label,
                      cert_label=o.cert_label, pin_file=o.secret_file, pin_env=o.secret_env,
                      raw_mechanism=o.raw_mechanism)


def check_signer(o: SignerOptions) -> tuple[Any, str]:
    """The signer spec and its certificate holder's name, after opening it as signing will."""
    from pipeline.sign import signer_name

    spec = _spec(o)
    return spec, signer_name(spec, "operator")


def attach_signer(account: str, o: SignerOptions, *, checked: tuple[Any, str] | None = None) -> str:
    """Copy the key files into the keys folder and register them for ``account``; returns the stamp's name."""
    import dataclasses

    from pipeline.keyring import _write_private, operator_slug, register_operator_signer, remove_operator_signer

    spec, holder = checked or check_signer(o)
    keys_dir = _keys_dir()
    base = keys_dir / "operators" / operator_slug(account)
    # Read before the old signer's copies go (the new files may be those very copies).
    blob = Path(spec.file).read_bytes() if spec.type == "pkcs12" else None
    secret = o.secret_file.read_bytes() if o.secret_file is not None else None
    remove_operator_signer(keys_dir, account)
    if blob is not None:
        _write_private(base.with_suffix(".p12"), blob)
        spec = dataclasses.replace(spec, file=base.with_suffix(".p12"))
    if secret is not None:
        target = base.with_suffix(".pass" if spec.type == "pkcs12" else ".pin")
        _write_private(target, secret)
        field = "passphrase_file" if spec.type == "pkcs12" else "pin_file"
        spec = dataclasses.replace(spec, **{field: target})
    name = o.display_name or holder
    register_operator_signer(keys_dir, account, spec, display_name=name)
    return name


def _operator_account(name: str):
    from models.policy import Role

    accounts, audit = _open()
    user = accounts.get_user(name)
    if user is None or user.role is not Role.OPERATOR:
        raise SignerUsage(f"{name} is not an operator account (sohoa user add {name} --role operator …).",
                          f"{name} không phải tài khoản người số hóa (sohoa user add {name} --role operator …).")
    return audit


def cmd_operator_add(account: Annotated[str, argument(help="tài khoản người số hóa (operator account)",
                                                      metavar="NAME")],
                     p12: P12 = None, pkcs11_module: Module = None, token_label: TokenLabel = None, slot: Slot = None,
                     key_label: KeyLabel = None, cert_label: CertLabel = None, raw_mechanism: RawMechanism = False,
                     passphrase_file: SecretFile = None, passphrase_env: SecretEnv = None,
                     display_name: DisplayName = None) -> int:
    """Give an operator account its personal signer (replacing the one it had)."""
    audit = _operator_account(account)
    o = SignerOptions(p12, pkcs11_module, token_label, slot, key_label, cert_label, raw_mechanism, passphrase_file,
                      passphrase_env, display_name)
    name = attach_signer(account, o)
    audit.append(actor="cli", action="operator_signer_add", outcome="allowed",
                 detail=f"{account} {'pkcs12' if p12 else 'pkcs11'} {name}")
    print(f"Người số hóa {account} ký bằng khóa của “{name}” ({'tệp PKCS#12' if p12 else 'thẻ PKCS#11'}). "
          f"({account} now signs as {name!r}.)")
    return 0


def cmd_operator_list(as_json: Json = False) -> int:
    """The operators that have a personal signer (never a secret)."""
    from pipeline.keyring import operator_entries

    def where(s: dict[str, Any]) -> str:
        return s.get("file") or f"{s.get('token_label') or 'slot ' + str(s.get('slot'))}/{s.get('key_label')}"

    rows = [{"operator": e["operator"], "display_name": e.get("display_name") or e["operator"],
             "type": e["signer"]["type"], "where": where(e["signer"])} for e in operator_entries(_keys_dir())]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("Chưa người số hóa nào có khóa ký cá nhân. (No operator has a personal signer.)")
    for r in [] if as_json else rows:
        print(f"{r['operator']:24} {r['display_name']:32} {r['type']:7} {r['where']}")
    return 0


def cmd_operator_remove(account: Annotated[str, argument(help="tài khoản người số hóa (operator account)",
                                                         metavar="NAME")]) -> int:
    """Forget an operator's signer; what they digitize from now on carries the agency signature only."""
    from pipeline.keyring import remove_operator_signer

    if not remove_operator_signer(_keys_dir(), account):
        raise SignerUsage(f"{account} has no personal signer.", f"{account} chưa có khóa ký cá nhân.")
    _open()[1].append(actor="cli", action="operator_signer_remove", outcome="allowed", detail=account)
    print(f"Đã gỡ khóa ký của {account}. (Removed {account}'s signer.)")
    return 0


def register(keys: typer.Typer) -> None:
    """Add ``keys operator add|list|remove``."""
    op = typer.Typer(no_args_is_help=True, help="khóa ký cá nhân của người số hóa: add, list, remove (operators' "
                                                "personal signers)")
    op.command("add", help="gắn tệp PKCS#12 hoặc thẻ PKCS#11 cho tài khoản người số hóa; mật khẩu/PIN chỉ từ tệp "
                           "hoặc biến môi trường (attach a PKCS#12 file or PKCS#11 token)")(cmd_operator_add)
    op.command("list", help="liệt kê người số hóa có khóa ký, không in bí mật (list; never a "
                            "secret)")(cmd_operator_list)
    op.command("remove", help="gỡ khóa ký của một người số hóa (remove an operator's signer)")(cmd_operator_remove)
    keys.add_typer(op, name="operator")
