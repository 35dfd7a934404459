"""PAdES signing and verification (pipeline/sign.py) against a local test PKI with a real TSA and OCSP
responder on loopback, a SoftHSM2 PKCS#11 token, and poppler's pdfsig as an independent validator."""
from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from pipeline import keyring, sign, stamp_place
from tests.pki import AGENCY, OPERATOR, test_pki  # noqa: F401 - the session fixture

CASE = "000.00.01.H56-181010-0001"
RESULT_CODE = "000.00.01.H56-181010-0001-KQ36F688361B"


@pytest.fixture(scope="module")
def unsigned_pdf(tmp_path_factory, sample_dossier) -> Path:
    """One searchable PDF/A-2b page made by the pipeline (one Tesseract call)."""
    from pipeline.document import process_document

    work = tmp_path_factory.mktemp("unsigned")
    out = work / "searchable.pdf"
    process_document([sample_dossier[1]], workdir=work / "w", out_pdf=out, case_id=CASE, jobs=1)
    return out


@pytest.fixture
def pdf(unsigned_pdf, tmp_path) -> Path:
    target = tmp_path / "doc.pdf"
    shutil.copy(unsigned_pdf, target)
    return target


@pytest.fixture(scope="module")
def pki_config(test_pki) -> keyring.SigningConfig:  # noqa: F811
    return keyring.load_signing_config(test_pki.keys_dir, env={})


@pytest.fixture(scope="module")
def signed_pdf(unsigned_pdf, pki_config, tmp_path_factory) -> tuple[Path, list[sign.SignatureInfo]]:
    target = tmp_path_factory.mktemp("signed") / "signed.pdf"
    shutil.copy(unsigned_pdf, target)
    infos = sign.sign_pdf(target, config=pki_config, operator=OPERATOR, result_code=RESULT_CODE)
    return target, infos


def _pdfsig(path: Path) -> str:
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout


def test_operator_then_agency_reach_pades_b_lt(signed_pdf, unsigned_pdf, pki_config):
    path, infos = signed_pdf
    assert [(i.role, i.signer, i.level) for i in infos] == [
        ("operator", OPERATOR, "PAdES-B-LT"), ("agency", AGENCY, "PAdES-B-LT")]
    assert all(i.signed_at.endswith("+07:00") for i in infos)
    # Incremental updates only: the unsigned file's bytes are untouched at the start of the signed one.
    assert path.read_bytes().startswith(unsigned_pdf.read_bytes())
    with pikepdf.open(path) as doc:
        dss = doc.Root.DSS
        assert len(dss.OCSPs) >= 1 and len(dss.Certs) >= 1  # revocation data from the loopback OCSP responder
    checks = sign.verify_pdf(path, trust_roots=pki_config.trust_roots)
    assert [(c.field, c.signer, c.level, c.problems) for c in checks] == [
        (sign.OPERATOR_FIELD, OPERATOR, "PAdES-B-LT", []), (sign.AGENCY_FIELD, AGENCY, "PAdES-B-LT", [])]
    assert all(c.timestamp and c.timestamp.endswith("+07:00") for c in checks)


def test_pdfsig_reports_both_signatures_valid(signed_pdf):
    out = _pdfsig(signed_pdf[0])
    assert out.count("Signature Validation: Signature is Valid.") == 2, out
    assert f"Signer Certificate Common Name: {OPERATOR}" in out and sign.AGENCY_FIELD in out
    assert "ETSI.CAdES.detached" in out


def test_pdfa_markers_and_result_code_survive_signing(signed_pdf, sample_dossier):
    from models.result_code import result_code_for
    from pipeline.document import document_id_for
    from pipeline.reader import sha256_of

    with pikepdf.open(signed_pdf[0]) as doc:
        meta = doc.open_metadata()
        assert meta["pdfaid:part"] == "2" and meta["pdfaid:conformance"] == "B"
        assert meta["sohoa:resultCode"] == result_code_for(CASE, document_id_for(sha256_of(sample_dossier[1])))
        assert str(doc.docinfo["/SohoaResultCode"]) == meta["sohoa:resultCode"]
        assert str(doc.docinfo["/SohoaCaseId"]) == CASE


def test_signature_text_is_visible_top_left_and_top_right(signed_pdf, unsigned_pdf, tmp_path):
    def render(p: Path) -> np.ndarray:
        png = subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-gray", "-png", str(p)],
                             capture_output=True, check=True).stdout
        return np.asarray(Image.open(io.BytesIO(png)).convert("L"))

    before, after = render(unsigned_pdf), render(signed_pdf[0])
    height, width = after.shape
    band = slice(0, int(height * 0.07))
    changed = (before[band] != after[band])
    left, right = changed[:, : width // 3], changed[:, 2 * width // 3:]
    assert left.sum() > 30 and right.sum() > 30  # ink in both corners of the top band
    assert (before[int(height * 0.1):] == after[int(height * 0.1):]).all()  # nothing drawn over the page body
    stamp = stamp_place.agency_text(AGENCY, __import__("datetime").datetime(2026, 11, 29, 21, 0, tzinfo=sign.VIETNAM),
                             RESULT_CODE, test=False)
    assert stamp.splitlines() == [stamp_place.COPY_KIND, f"Cơ quan: {AGENCY}", "Thời gian ký: 2026-11-29T21:00:00+07:00",
                                  f"Mã kết quả số hóa: {RESULT_CODE}"]


def test_content_added_after_signing_is_detected(signed_pdf, pki_config, tmp_path):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    tampered = tmp_path / "tampered.pdf"
    with open(signed_pdf[0], "rb") as f:
        writer = IncrementalPdfFileWriter(f, strict=False)
        # Draw a white box over the page: an incremental update, as a forger would append.
        box = writer.add_object(generic.StreamObject(stream_data=b"1 1 1 rg 0 0 300 300 re f"))
        writer.add_stream_to_page(0, box, prepend=False)
        with open(tampered, "wb") as out:
            writer.write(out)
    checks = sign.verify_pdf(tampered, trust_roots=pki_config.trust_roots)
    assert len(checks) == 2
    assert all("content was added or changed after this signature" in c.problems for c in checks)
    assert all(c.intact for c in checks)  # the signed bytes themselves are intact: the addition is what is caught


def test_changed_signed_bytes_fail_integrity(signed_pdf, pki_config, tmp_path):
    data = bytearray(signed_pdf[0].read_bytes())
    at = data.index(b"/SohoaResultCode")
    data[at + 30] = ord("X") if data[at + 30] != ord("X") else ord("Y")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(bytes(data))
    checks = sign.verify_pdf(broken, trust_roots=pki_config.trust_roots)
    assert checks and all("the signed bytes were changed (integrity check failed)" in c.problems for c in checks)
    assert "Signature is Valid." not in _pdfsig(broken)


def test_unknown_trust_root_is_a_problem(signed_pdf, tmp_path):
    other = keyring.init_test_keys(tmp_path / "other-keys")
    checks = sign.verify_pdf(signed_pdf[0], trust_roots=other.trust_roots)
    assert all("the signer's certificate does not chain to a configured trust root" in c.problems for c in checks)


def test_unreachable_tsa_fails_without_touching_the_file(pdf, pki_config):
    from tests.servers import free_port

    before = pdf.read_bytes()
    dead = dataclasses.replace(pki_config, tsa_url=f"http://127.0.0.1:{free_port()}/tsa")
    with pytest.raises(sign.SigningFailed):
        sign.sign_pdf(pdf, config=dead, operator=OPERATOR, result_code=RESULT_CODE)
    assert pdf.read_bytes() == before


def test_signing_without_revocation_data_is_b_t(pdf, pki_config, tmp_path):
    # What a signature gets when the OCSP responder and CRL cannot be used: timestamped, no DSS (B-T).
    infos = sign.sign_pdf(pdf, config=pki_config, operator=None, result_code=RESULT_CODE, revocation=False)
    assert [(i.role, i.level) for i in infos] == [("agency", "PAdES-B-T")]
    [check] = sign.verify_pdf(pdf, trust_roots=pki_config.trust_roots)
    assert check.level == "PAdES-B-T" and check.problems == []


def test_no_agency_key_leaves_the_pdf_unsigned(pdf, tmp_path):
    from flows.signing import sign_file

    before = pdf.read_bytes()
    empty = keyring.load_signing_config(tmp_path / "no-keys", env={})
    assert sign.sign_pdf(pdf, config=empty, operator=OPERATOR, result_code=RESULT_CODE) == []
    report = sign_file(pdf, operator=OPERATOR, result_code=RESULT_CODE, config=empty)
    assert report["status"] == "unsigned" and report["message_vi"].startswith("chưa ký số")
    assert pdf.read_bytes() == before
    assert sign.verify_pdf(pdf, trust_roots=()) == []


@pytest.mark.skipif(not Path("/usr/lib/softhsm/libsofthsm2.so").exists() or not shutil.which("softhsm2-util"),
                    reason="softhsm2 is not installed (apt-get install softhsm2)")
def test_agency_key_on_a_pkcs11_token(pdf, test_pki, tmp_path, monkeypatch):  # noqa: F811
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    module = "/usr/lib/softhsm/libsofthsm2.so"
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    pin = "246813"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "sohoa-agency", "--so-pin", "135792",
                    "--pin", pin], check=True, capture_output=True)
    subprocess.run(["softhsm2-util", "--import", str(test_pki.key_files["token-agency"]), "--token", "sohoa-agency",
                    "--label", "agency", "--id", "01", "--pin", pin], check=True, capture_output=True)
    cert = test_pki.arch.get_cert("token-agency")
    cert_der = cert.dump()
    # python-pkcs11 loads the module once per process and SoftHSM reads SOFTHSM2_CONF when it starts:
    # start it again, or an earlier test's token folder (tests/test_operator_signers.py) is the one seen.
    pkcs11.lib(module).reinitialize()
    token = pkcs11.lib(module).get_token(token_label="sohoa-agency")
    with token.open(rw=True, user_pin=pin) as session:
        session.create_object({Attribute.CLASS: ObjectClass.CERTIFICATE,
                               Attribute.CERTIFICATE_TYPE: CertificateType.X_509, Attribute.TOKEN: True,
                               Attribute.LABEL: "agency", Attribute.ID: b"\x01", Attribute.VALUE: cert_der,
                               Attribute.SUBJECT: cert.subject.dump(), Attribute.ISSUER: cert.issuer.dump(),
                               Attribute.SERIAL_NUMBER: cert["tbs_certificate"]["serial_number"].dump()})
    # The PIN comes from the environment, never from the command line or the config file.
    monkeypatch.setenv("SOHOA_TEST_TOKEN_PIN", pin)
    base = keyring.load_signing_config(test_pki.keys_dir, env={})
    spec = keyring.SignerSpec(type="pkcs11", module=module, token_label="sohoa-agency", key_label="agency",
                              pin_env="SOHOA_TEST_TOKEN_PIN", raw_mechanism=True)
    config = dataclasses.replace(base, agency=spec)
    infos = sign.sign_pdf(pdf, config=config, operator=None, result_code=RESULT_CODE)
    assert [(i.role, i.signer, i.level) for i in infos] == [("agency", f"{AGENCY} (token)", "PAdES-B-LT")]
    assert [c.problems for c in sign.verify_pdf(pdf, trust_roots=config.trust_roots)] == [[]]
    assert "Signature is Valid." in _pdfsig(pdf)
    assert pin not in pdf.read_bytes().decode("latin-1")
    os.environ.pop("SOHOA_TEST_TOKEN_PIN", None)


def test_wrong_passphrase_is_one_sentence_and_the_file_is_kept(pdf, pki_config, tmp_path):
    from flows.signing import sign_file

    bad_pass = tmp_path / "wrong.pass"
    bad_pass.write_text("not-the-passphrase")
    bad = dataclasses.replace(pki_config, agency=dataclasses.replace(pki_config.agency, passphrase_file=bad_pass,
                                                                     file=pki_config.agency.file))
    before = pdf.read_bytes()
    with pytest.raises(keyring.KeyConfigError) as err:
        sign.sign_pdf(pdf, config=bad, operator=None, result_code=RESULT_CODE)
    assert "cannot be opened" in err.value.message_en and "not-the-passphrase" not in err.value.user_message()
    report = sign_file(pdf, operator=None, result_code=RESULT_CODE, config=bad)
    assert report["status"] == "unsigned" and "chưa ký số" in report["message_vi"]
    assert pdf.read_bytes() == before


def test_stamp_font_widths_are_in_thousandths_of_an_em(signed_pdf):
    # pyHanko writes a TrueType font's advances in its own units into /W, which PDF reads as 1/1000 em:
    # Liberation Serif (2048 units) came out about twice too wide (digits 1024) until rescaled to 1000.
    widths = []
    with pikepdf.open(signed_pdf[0]) as doc:
        for obj in doc.objects:
            if isinstance(obj, pikepdf.Dictionary) and str(obj.get("/BaseFont", "")).endswith("LiberationSerif"):
                for item in obj.W:
                    if isinstance(item, pikepdf.Array):
                        widths += [float(w) for w in item]
    assert widths and max(widths) <= 1000
    assert 500 in widths  # Times-metric digits are half an em


def test_unreachable_ocsp_and_crl_fall_back_to_b_t(pdf, test_pki, tmp_path):  # noqa: F811
    from tests.pki import start_test_pki

    (tmp_path / "gone").mkdir()
    gone, stop = start_test_pki(tmp_path / "gone")
    stop()  # this CA's OCSP responder and CRLs no longer answer; the session PKI's TSA still does
    base = keyring.load_signing_config(gone.keys_dir, env={})
    config = dataclasses.replace(base, tsa_url=test_pki.tsa_url,
                                 trust_roots=(gone.root_pem, test_pki.root_pem))
    infos = sign.sign_pdf(pdf, config=config, operator=None, result_code=RESULT_CODE)
    assert [(i.role, i.level) for i in infos] == [("agency", "PAdES-B-T")]
    [check] = sign.verify_pdf(pdf, trust_roots=config.trust_roots)
    assert check.level == "PAdES-B-T" and check.problems == []
    assert "Signature is Valid." in _pdfsig(pdf)


def test_revocation_data_is_reused_across_documents_within_its_bound(unsigned_pdf, test_pki, pki_config,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    # B-LT signing used to ask the OCSP responder (and fetch the CRL) again for every document; within
    # REVOCATION_REUSE_S (and the responses' nextUpdate) a process now reuses what it fetched, per signer.
    sign.clear_revocation_cache()
    docs = []
    for name in ("a", "b", "c"):
        docs.append(tmp_path / f"{name}.pdf")
        shutil.copy(unsigned_pdf, docs[-1])

    def signed(path: Path) -> tuple[int, int]:
        before, tsa_before = test_pki.hits["ocsp"], test_pki.hits["tsa"]
        infos = sign.sign_pdf(path, config=pki_config, operator=OPERATOR, result_code=RESULT_CODE)
        assert [i.level for i in infos] == ["PAdES-B-LT", "PAdES-B-LT"]
        with pikepdf.open(path) as doc:
            assert len(doc.Root.DSS.OCSPs) >= 2  # each document still carries its own revocation data
        assert [c.problems for c in sign.verify_pdf(path, trust_roots=pki_config.trust_roots)] == [[], []]
        return test_pki.hits["ocsp"] - before, test_pki.hits["tsa"] - tsa_before

    assert signed(docs[0])[0] >= 2  # operator's and agency's certificates: asked once each
    # The second document reuses them, and the TSA is asked once per signature (no dummy timestamp).
    assert signed(docs[1]) == (0, 2)
    # Past the bound the responder is asked again, so a revoked or changed status is seen.
    monkeypatch.setattr(sign, "REVOCATION_REUSE_S", 0.0)
    ocsp_asked, tsa_asked = signed(docs[2])
    assert ocsp_asked >= 2 and tsa_asked > 2
    sign.clear_revocation_cache()


def test_an_unusable_cached_context_is_replaced_not_downgraded_to_b_t(pdf, unsigned_pdf, test_pki,  # noqa: F811
                                                                       pki_config, tmp_path):
    # If a reused context fails for any reason (here: one that trusts no root, so no path can be built),
    # signing retries once with a freshly fetched one instead of quietly dropping to B-T.
    from pyhanko_certvalidator import ValidationContext

    sign.clear_revocation_cache()
    sign.sign_pdf(pdf, config=pki_config, operator=None, result_code=RESULT_CODE)
    [key] = list(sign._VC_CACHE)
    stale = ValidationContext(trust_roots=[], allow_fetching=True, revocation_mode="hard-fail")
    sign._VC_CACHE[key] = (sign._VC_CACHE[key][0], stale)
    second = tmp_path / "second.pdf"
    shutil.copy(unsigned_pdf, second)
    before = test_pki.hits["ocsp"]
    infos = sign.sign_pdf(second, config=pki_config, operator=None, result_code=RESULT_CODE)
    assert [i.level for i in infos] == ["PAdES-B-LT"]
    assert test_pki.hits["ocsp"] > before
    assert sign._VC_CACHE[key][1] is not stale
    assert [c.problems for c in sign.verify_pdf(second, trust_roots=pki_config.trust_roots)] == [[]]
    sign.clear_revocation_cache()


@pytest.mark.skipif(not shutil.which("certutil"), reason="certutil is not installed (apt-get install libnss3-tools)")
def test_pdfsig_trusts_a_demo_pdf_once_the_test_ca_is_in_its_nss_db(pdf, tmp_path):
    # The embedded default (sohoa keys init-test): pdfsig checks the chain against an NSS database.
    # (With the certomancer loopback PKI, NSS answers "Unknown issue with Certificate" even with its
    # root trusted, although `certutil -V -u S` accepts the leaf; not chased further.)
    config = keyring.init_test_keys(tmp_path / "keys", operator="demo")
    assert [i.level for i in sign.sign_pdf(pdf, config=config, operator="demo", result_code=RESULT_CODE)] == [
        "PAdES-B-T", "PAdES-B-T"]

    def nss_db(name: str, *roots: Path) -> str:
        folder = tmp_path / name
        folder.mkdir()
        subprocess.run(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], check=True, capture_output=True)
        for root in roots:
            subprocess.run(["certutil", "-A", "-d", f"sql:{folder}", "-n", "sohoa TEST CA", "-t", "CT,C,C",
                            "-a", "-i", str(root)], check=True, capture_output=True)
        return f"sql:{folder}"

    def pdfsig(db: str) -> str:
        return subprocess.run(["pdfsig", "-nssdir", db, str(pdf)], capture_output=True, text=True, timeout=60).stdout

    trusted, untrusted = pdfsig(nss_db("with-ca", *config.trust_roots)), pdfsig(nss_db("empty"))
    assert trusted.count("Signature Validation: Signature is Valid.") == 2, trusted
    assert trusted.count("Certificate Validation: Certificate is Trusted.") == 2, trusted
    assert "Certificate is Trusted." not in untrusted, untrusted  # the trust comes from the CA we added
