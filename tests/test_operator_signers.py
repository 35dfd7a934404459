"""Operators' personal signers for real accounts: ``sohoa user add … --role operator`` with a signer,
``sohoa keys operator add|list|remove``, a PKCS#12 file and a SoftHSM2 PKCS#11 token, and signing
as the account's operator (pipeline/keyring.py, cli/operator_keys.py)."""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from pipeline import keyring, sign
from tests.pdfa_rules import pdfa2b_problems
from tests.pki import AGENCY, OPERATOR, test_pki  # noqa: F401 - the session fixture

UNIT = "000.00.14.H56"
CODE = "000.00.14.H56-261129-0007-KQ36F688361B"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(scope="module")
def unsigned_pdf(tmp_path_factory, sample_dossier) -> Path:
    from pipeline.document import process_document

    work = tmp_path_factory.mktemp("op-unsigned")
    out = work / "searchable.pdf"
    process_document([sample_dossier[1]], workdir=work / "w", out_pdf=out, case_id=CODE[:25], jobs=1)
    return out


def _user_add(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO("mat-khau-dai-du-10\n"))
    return main(["user", "add", *args, "--password-stdin"])


def _audit_actions() -> list[str]:
    from storage.audit import AuditTrail
    from storage.config import Settings, open_catalog

    return [e.action for e in AuditTrail(open_catalog(Settings.from_env()).engine).entries(limit=50)]


def test_an_operator_account_gets_a_pkcs12_signer_and_signs_as_itself(data_dir, monkeypatch, unsigned_pdf, tmp_path,
                                                                      capsys):
    # A personal key handed to the administrator: a PKCS#12 file and its passphrase in a file.
    issued = keyring.init_test_keys(tmp_path / "issued", operator="Lê Văn Lan")
    p12 = next((tmp_path / "issued").glob("test-operator-*.p12"))
    secret = p12.with_suffix(".pass")
    config_dir = keyring.keys_dir_for(data_dir)
    shutil.copytree(tmp_path / "issued", config_dir)
    shutil.rmtree(config_dir / "operators")

    assert _user_add(monkeypatch, "lan.le", "--role", "operator", "--unit", UNIT, "--p12", str(p12),
                     "--passphrase-file", str(secret)) == 0
    assert "Lê Văn Lan [TEST]" in capsys.readouterr().out
    copied = config_dir / "operators" / "lan-le.p12"
    assert copied.exists() and stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert stat.S_IMODE((config_dir / "operators" / "lan-le.pass").stat().st_mode) == 0o600
    assert main(["keys", "operator", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["operator"] == "lan.le" and row["type"] == "pkcs12" and row["display_name"] == "Lê Văn Lan [TEST]"
    assert secret.read_text() not in json.dumps(row)

    # The intake signs as the account's operator: its own key, the certificate holder's name in the stamp.
    from flows.signing import sign_file

    pdf = tmp_path / "doc.pdf"
    shutil.copy(unsigned_pdf, pdf)
    report = sign_file(pdf, operator="lan.le", result_code=CODE, config=keyring.load_signing_config(config_dir))
    assert [(s["role"], s["signer"]) for s in report["signatures"]] == [
        ("operator", "Lê Văn Lan [TEST]"), ("agency", f"{issued.agency_name} [TEST]")]
    checks = sign.verify_pdf(pdf, trust_roots=issued.trust_roots)
    assert [c.problems for c in checks] == [[], []]
    assert pdfa2b_problems(pdf) == []
    out = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Người số hóa: Lê Văn Lan [TEST]" in out

    assert main(["keys", "operator", "remove", "lan.le"]) == 0
    capsys.readouterr()
    assert not copied.exists() and main(["keys", "operator", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert {"user_add", "operator_signer_add", "operator_signer_remove"} <= set(_audit_actions())


def test_a_bad_signer_refuses_before_the_account_exists(data_dir, monkeypatch, tmp_path, capsys):
    keyring.init_test_keys(tmp_path / "issued", operator="x")
    p12 = next((tmp_path / "issued").glob("test-operator-*.p12"))
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("khong-dung")
    assert _user_add(monkeypatch, "an.vo", "--role", "operator", "--unit", UNIT, "--p12", str(p12),
                     "--passphrase-file", str(wrong)) == 2
    err = capsys.readouterr().err
    assert "Không mở được khóa" in err and "khong-dung" not in err and "Traceback" not in err
    assert main(["user", "list", "--json"]) == 0
    assert "an.vo" not in capsys.readouterr().out
    # Only operators get a personal signer, and a passphrase is never an option of the command line.
    assert _user_add(monkeypatch, "vy.ho", "--role", "handler", "--unit", UNIT, "--p12", str(p12),
                     "--passphrase-file", str(p12.with_suffix(".pass"))) == 2
    assert main(["keys", "operator", "add", "an.vo", "--p12", str(p12), "--passphrase", "x"]) == 2
    # keys operator add names an existing operator account.
    assert main(["keys", "operator", "add", "nobody", "--p12", str(p12), "--passphrase-file",
                 str(p12.with_suffix(".pass"))]) == 2


@pytest.mark.skipif(not Path(SOFTHSM).exists() or not shutil.which("softhsm2-util"),
                    reason="softhsm2 is not installed (apt-get install softhsm2)")
def test_an_operator_signs_with_a_softhsm_token(data_dir, monkeypatch, unsigned_pdf, test_pki, tmp_path,  # noqa: F811
                                                capsys):
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    pin = "975310"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "the-binh", "--so-pin", "864200",
                    "--pin", pin], check=True, capture_output=True)
    subprocess.run(["softhsm2-util", "--import", str(test_pki.key_files["operator"]), "--token", "the-binh",
                    "--label", "binh", "--id", "02", "--pin", pin], check=True, capture_output=True)
    cert = test_pki.arch.get_cert("operator")
    # python-pkcs11 loads the module once per process and SoftHSM reads SOFTHSM2_CONF when it starts:
    # start it again, or an earlier test's token folder (tests/test_sign.py) is the one seen.
    pkcs11.lib(SOFTHSM).reinitialize()
    with pkcs11.lib(SOFTHSM).get_token(token_label="the-binh").open(rw=True, user_pin=pin) as session:
        session.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE,
                               Attribute.CERTIFICATE_TYPE: CertificateType.X_509, Attribute.TOKEN: True,
                               Attribute.LABEL: "binh", Attribute.ID: b"\x02", Attribute.VALUE: cert.dump(),
                               Attribute.SUBJECT: cert.subject.dump(), Attribute.ISSUER: cert.issuer.dump(),
                               Attribute.SERIAL_NUMBER: cert["tbs_certificate"]["serial_number"].dump()})
    keys_dir = tmp_path / "keys"
    shutil.copytree(test_pki.keys_dir, keys_dir)
    shutil.rmtree(keys_dir / "operators")
    monkeypatch.setenv("SOHOA_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SOHOA_OPERATOR_PIN", pin)  # the PIN is read from the environment, never an argument
    assert _user_add(monkeypatch, "binh.tran", "--role", "operator", "--unit", UNIT) == 0
    monkeypatch.delenv("SOHOA_OPERATOR_PIN")
    assert main(["keys", "operator", "add", "binh.tran", "--pkcs11-module", SOFTHSM, "--token-label", "the-binh",
                 "--key-label", "binh", "--raw-mechanism", "--passphrase-env", "SOHOA_OPERATOR_PIN"]) == 2
    assert "SOHOA_OPERATOR_PIN" in capsys.readouterr().err  # the variable is named, so the admin can set it
    monkeypatch.setenv("SOHOA_OPERATOR_PIN", pin)
    assert main(["keys", "operator", "add", "binh.tran", "--pkcs11-module", SOFTHSM, "--token-label", "the-binh",
                 "--key-label", "binh", "--raw-mechanism", "--passphrase-env", "SOHOA_OPERATOR_PIN"]) == 0
    entry = json.loads((keys_dir / "operators" / "binh-tran.json").read_text())
    assert entry["signer"]["pin_env"] == "SOHOA_OPERATOR_PIN" and pin not in json.dumps(entry)
    assert entry["display_name"] == OPERATOR

    from flows.signing import sign_file

    pdf = tmp_path / "doc.pdf"
    shutil.copy(unsigned_pdf, pdf)
    report = sign_file(pdf, operator="binh.tran", result_code=CODE, config=keyring.load_signing_config(keys_dir))
    assert [(s["role"], s["signer"], s["level"]) for s in report["signatures"]] == [
        ("operator", OPERATOR, "PAdES-B-LT"), ("agency", AGENCY, "PAdES-B-LT")]
    checks = sign.verify_pdf(pdf, trust_roots=keyring.load_signing_config(keys_dir).trust_roots)
    assert [c.problems for c in checks] == [[], []]
    pdfsig = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    assert pdfsig.count("Signature Validation: Signature is Valid.") == 2, pdfsig
    assert pdfa2b_problems(pdf) == []
    assert pin.encode() not in pdf.read_bytes()
    # The same token found by its slot (its index in the module's slot list) instead of its label.
    labels = [s.get_token().label if s.flags & pkcs11.SlotFlag.TOKEN_PRESENT else None
              for s in pkcs11.lib(SOFTHSM).get_slots()]
    slot = labels.index("the-binh")
    assert main(["keys", "operator", "add", "binh.tran", "--pkcs11-module", SOFTHSM, "--slot", str(slot),
                 "--key-label", "binh", "--raw-mechanism", "--passphrase-env", "SOHOA_OPERATOR_PIN"]) == 0
    entry = json.loads((keys_dir / "operators" / "binh-tran.json").read_text())
    assert entry["signer"]["slot"] == slot and "token_label" not in entry["signer"]
    shutil.copy(unsigned_pdf, pdf)
    report = sign_file(pdf, operator="binh.tran", result_code=CODE, config=keyring.load_signing_config(keys_dir))
    assert [s["role"] for s in report["signatures"]] == ["operator", "agency"]
    os.environ.pop("SOHOA_OPERATOR_PIN", None)
