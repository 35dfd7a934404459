"""A local test PKI for the signing tests: a CA whose OCSP responder, CRLs and RFC 3161 TSA answer as
real HTTP services on a free loopback port (certomancer's Animator served by werkzeug in a thread).

``TestPki.keys_dir`` is a ready keys folder (pipeline/keyring.py layout): the agency and operator
"Trần Thị Bình" as PKCS#12 files, the TSA URL and the CA as trust root.
"""
from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port

ARCH = "sohoa-test"
OPERATOR = "Trần Thị Bình"
AGENCY = "UBND TỈNH TUYÊN QUANG (PKI kiểm thử)"
KEY_LABELS = ("root", "ocsp", "tsa", "agency", "operator", "token-agency")


@dataclass
class TestPki:
    url: str
    keys_dir: Path
    root_pem: Path
    tsa_url: str
    arch: object  # certomancer PKIArchitecture
    key_files: dict[str, Path]
    hits: Counter  # requests served, by kind: "ocsp", "crl", "tsa", "other"

    __test__ = False  # not a test class


def _write_keys(folder: Path) -> dict[str, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    out = {}
    for label in KEY_LABELS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if label == "tsa" \
            else ec.generate_private_key(ec.SECP256R1())
        path = folder / f"{label}.key.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        out[label] = path
    return out


def _leaf(issuer: str = "root", *, usage=("digital_signature", "non_repudiation"), ocsp: bool = True) -> dict:
    extensions = [
        {"id": "key_usage", "critical": True, "smart-value": {"schema": "key-usage", "params": list(usage)}},
        {"id": "crl_distribution_points", "smart-value": {"schema": "crl-dist-url",
                                                           "params": {"crl-repo-names": [issuer]}}},
    ]
    if ocsp:
        extensions.append({"id": "authority_information_access", "smart-value": {
            "schema": "aia-urls", "params": {"ocsp-responder-names": [issuer]}}})
    return {"issuer": issuer, "validity": {"valid-from": "2020-01-01T00:00:00+0000",
                                           "valid-to": "2045-01-01T00:00:00+0000"}, "extensions": extensions}


def _config(key_dir: Path) -> dict:
    certs = {
        "root": {"subject": "root", "issuer": "root",
                 "validity": {"valid-from": "2020-01-01T00:00:00+0000", "valid-to": "2050-01-01T00:00:00+0000"},
                 "extensions": [
                     {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
                     {"id": "key_usage", "critical": True, "smart-value": {
                         "schema": "key-usage", "params": ["digital_signature", "key_cert_sign", "crl_sign"]}}]},
        "ocsp": {"issuer": "root",
                 "validity": {"valid-from": "2020-01-01T00:00:00+0000", "valid-to": "2045-01-01T00:00:00+0000"},
                 "extensions": [
                     {"id": "key_usage", "critical": True,
                      "smart-value": {"schema": "key-usage", "params": ["digital_signature"]}},
                     {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                     {"id": "ocsp_no_check"}]},
        "tsa": {**_leaf(usage=("digital_signature",), ocsp=False)},
        "agency": _leaf(),
        "operator": _leaf(),
        "token-agency": _leaf(),
    }
    certs["tsa"]["extensions"] = [*certs["tsa"]["extensions"],
                                  {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]}]
    entities = {
        "root": {"common-name": "sohoa Test Root CA"},
        "ocsp": {"common-name": "sohoa Test OCSP"},
        "tsa": {"common-name": "sohoa Test TSA"},
        "agency": {"common-name": AGENCY},
        "operator": {"common-name": OPERATOR},
        "token-agency": {"common-name": f"{AGENCY} (token)"},
    }
    return {
        "keysets": {ARCH: {"path-prefix": str(key_dir),
                           "keys": {label: {"path": f"{label}.key.pem"} for label in KEY_LABELS}}},
        "pki-architectures": {ARCH: {
            "keyset": ARCH,
            "entity-defaults": {"country-name": "VN", "organization-name": "sohoa test PKI"},
            "entities": entities,
            "certs": certs,
            "services": {
                "ocsp": {"root": {"for-issuer": "root", "responder-cert": "ocsp", "signing-key": "ocsp"}},
                "crl-repo": {"root": {"for-issuer": "root", "signing-key": "root",
                                      "simulated-update-schedule": "P30D"}},
                "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
            },
        }},
    }


def start_test_pki(folder: Path) -> tuple[TestPki, Callable[[], None]]:
    """Start the PKI's HTTP services on a free loopback port; returns it and a function that stops it."""
    from certomancer.integrations.animator import Animator, AnimatorArchStore
    from certomancer.registry import CertomancerConfig
    from werkzeug.serving import make_server

    from pipeline.keyring import SignerSpec, register_operator_signer, save_signing_config

    key_files = _write_keys(folder)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = CertomancerConfig(_config(folder), key_search_dir=str(folder), external_url_prefix=url)
    arch = config.get_pki_arch(ARCH)
    animator = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False)
    hits: Counter = Counter()
    lock = threading.Lock()

    def counted(environ, start_response):  # counts what the PKI is asked, so tests can see cache reuse
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        kind = parts[1] if len(parts) > 1 and parts[1] in ("ocsp", "crls", "tsa") else "other"
        with lock:
            hits[kind.rstrip("s") if kind == "crls" else kind] += 1
        return animator(environ, start_response)

    server = make_server("127.0.0.1", port, counted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-pki", daemon=True)
    thread.start()

    keys_dir = folder / "keys"
    keys_dir.mkdir()
    root_pem = keys_dir / "root.pem"
    root_pem.write_bytes(_pem(arch.get_cert("root").dump()))
    specs = {}
    for label in ("agency", "operator"):
        password = secrets.token_urlsafe(16)
        (keys_dir / f"{label}.p12").write_bytes(arch.package_pkcs12(label, password=password.encode()))
        (keys_dir / f"{label}.pass").write_text(password)
        specs[label] = SignerSpec(type="pkcs12", file=keys_dir / f"{label}.p12",
                                  passphrase_file=keys_dir / f"{label}.pass")
    tsa_url = f"{url}/{ARCH}/tsa/tsa"
    save_signing_config(keys_dir, agency_name=AGENCY, agency=specs["agency"], tsa_url=tsa_url,
                        trust_roots=["root.pem"])
    register_operator_signer(keys_dir, OPERATOR, specs["operator"])

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=10)

    return TestPki(url=url, keys_dir=keys_dir, root_pem=root_pem, tsa_url=tsa_url, arch=arch,
                   key_files=key_files, hits=hits), stop


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPki]:
    """The test CA with OCSP, CRL and TSA served on loopback for the whole session."""
    pytest.importorskip("certomancer", reason="certomancer (test extra) is not installed")
    pki, stop = start_test_pki(tmp_path_factory.mktemp("pki"))
    try:
        yield pki
    finally:
        stop()


def _pem(der: bytes) -> bytes:
    import base64

    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n".encode()
