"""PAdES signatures on searchable PDFs (the only module that imports pyHanko), and their verification.

``sign_pdf`` adds the operator's signature (visible, top left of page 1: name and time of copying),
then the agency's (visible, top right, text only: kind of copy, agency name, ISO 8601 time with
+07:00, result code), each as an incremental update: the bytes already there, PDF/A XMP included,
are never rewritten. Each signature gets an RFC 3161 timestamp (PAdES B-T) from the configured TSA
and, when the CA's OCSP responder or CRL can be reached, its revocation data in the DSS (B-LT).

``verify_pdf`` checks every signature: integrity, chain to the trust roots, timestamp, and whether
anything other than later signatures and validation data was added after it.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
import math
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from models.clock import VIETNAM
from pipeline import stamp_place
from pipeline.signatures import SignatureCheck, SignatureInfo, SigningFailed, revinfo_expiry as _revinfo_expiry
from pipeline.keyring import KeyConfigError, SignerSpec, SigningConfig, operator_slug
from pipeline.stamp_place import agency_text, operator_text, stamp_font
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"pyhanko\.")  # pyHanko's import; no DSA here

log = logging.getLogger(__name__)

OPERATOR_FIELD, AGENCY_FIELD = "SohoaOperator", "SohoaAgency"
FETCH_TIMEOUT = 5
RESERVED_CMS_BYTES = 16384


# --------------------------------------------------------------------------------------- signers
# Opening a PKCS#12 file costs ~70 ms of key derivation: keep each one open for the process's life
# (keyed by path and modification time, so a replaced key file is read again).
_P12_CACHE: dict[tuple[str, int, str], object] = {}
_P12_LOCK = threading.Lock()


def _load_p12(spec: SignerSpec, role: str):
    import hashlib

    secret = spec.secret() or ""
    # The passphrase is part of the key (as a digest): a wrong one is never let through by the cache.
    key = (str(spec.file), spec.file.stat().st_mtime_ns if spec.file and spec.file.exists() else 0,
           hashlib.sha256(secret.encode()).hexdigest())
    with _P12_LOCK:
        if key not in _P12_CACHE:
            _P12_CACHE[key] = _open_p12(spec, role, secret)
        return _P12_CACHE[key]


def _kept_key_signer_class():
    """A SimpleSigner that parses its private key once, not on every signature (RSA: ~70 ms each)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from pyhanko.sign import signers
    from pyhanko.sign.general import get_pyca_cryptography_hash

    class KeptKeySigner(signers.SimpleSigner):
        _pyca_key = None

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            if self._pyca_key is None:
                self._pyca_key = serialization.load_der_private_key(self.signing_key.dump(), password=None)
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
            hash_algo = get_pyca_cryptography_hash(digest_algorithm)
            if mechanism == "rsassa_pkcs1v15" and isinstance(self._pyca_key, RSAPrivateKey):
                return self._pyca_key.sign(data, PKCS1v15(), hash_algo)
            if mechanism == "ecdsa" and isinstance(self._pyca_key, EllipticCurvePrivateKey):
                return self._pyca_key.sign(data, ECDSA(hash_algo))
            return super().sign_raw(data, digest_algorithm)

    return KeptKeySigner


def _open_p12(spec: SignerSpec, role: str, secret: str):
    """A PKCS#12 signer; a missing file or wrong passphrase is one sentence, not a traceback."""
    try:
        signer = _kept_key_signer_class().load_pkcs12(str(spec.file), passphrase=secret.encode() if secret else None)
        detail = "wrong passphrase or not a PKCS#12 file"  # pyHanko logs and returns None for these
    except (OSError, ValueError) as exc:
        signer, detail = None, str(exc)
    if signer is None:
        raise KeyConfigError(f"The {role} key {spec.file} cannot be opened ({detail}).",
                             f"Không mở được khóa {role} {spec.file} ({detail}).")
    return signer


def _signer(spec: SignerSpec, role: str):  # -> (pyhanko Signer, PKCS#11 session to close or None)
    if spec.type == "pkcs12":
        return _load_p12(spec, role), None
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign import pkcs11

    pin = spec.secret()  # a PIN variable that is not set is said as such, not as an unusable token
    try:
        session = pkcs11.open_pkcs11_session(
            spec.module, slot_no=spec.slot, user_pin=pin,
            token_criteria=TokenCriteria(label=spec.token_label) if spec.token_label else None)
    except Exception as exc:  # noqa: BLE001 - python-pkcs11 raises many types; all mean "token unusable"
        raise KeyConfigError(f"The {role} token {spec.token_label!r} ({spec.module}) cannot be opened: "
                             f"{type(exc).__name__}.",
                             f"Không mở được thẻ khóa {role} {spec.token_label!r}: {type(exc).__name__}.") from None
    return pkcs11.PKCS11Signer(session, key_label=spec.key_label, cert_label=spec.cert_label or spec.key_label,
                               use_raw_mechanism=spec.raw_mechanism), session


def _common_name(cert) -> str:  # asn1crypto x509.Certificate
    return cert.subject.native.get("common_name") or cert.subject.human_friendly


def signer_name(spec: SignerSpec, role: str = "operator") -> str:
    """Open a signer as signing would (file, passphrase, token, PIN) and name its certificate's holder."""
    signer, session = _signer(spec, role)
    try:
        return _common_name(signer.signing_cert)
    finally:
        if session is not None:
            session.close()


def _timestamper(config: SigningConfig):
    if config.tsa_url:
        # The requests client, not aiohttp's: no new TLS context (~70 ms) per request. One per TSA URL
        # is kept for REVOCATION_REUSE_S: pyHanko asks a new timestamper for a dummy timestamp (to learn
        # the TSA's certificates and the token size) before its first real one, a round trip per signature.
        import time

        from pyhanko.sign.timestamps.requests_client import HTTPTimeStamper

        with _VC_LOCK:
            entry = _TSA_CACHE.get(config.tsa_url)
            if entry is None or time.monotonic() - entry[0] >= REVOCATION_REUSE_S:
                entry = _TSA_CACHE[config.tsa_url] = (time.monotonic(),
                                                      HTTPTimeStamper(config.tsa_url, timeout=FETCH_TIMEOUT))
            return entry[1]
    if config.test_tsa is not None:
        # The embedded default: a TEST TSA key answering in-process, so the demo reaches B-T offline.
        tsa = _load_p12(config.test_tsa, "TSA")
        return _test_timestamper_class()(tsa_cert=tsa.signing_cert, tsa_key=tsa.signing_key,
                                certs_to_embed=list(tsa.cert_registry))
    return None


def _test_timestamper_class():
    """pyHanko's in-process (test) TSA, parsing its RSA key once instead of for every timestamp."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from asn1crypto import cms, core
    from pyhanko.sign import general
    from pyhanko.sign.general import get_pyca_cryptography_hash, simple_cms_attribute
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    class TestTimeStamper(DummyTimeStamper):
        _pyca_key = None

        def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: dt.datetime):
            md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
            md.update(tst_info_data)
            signed_attrs = cms.CMSAttributes([
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                simple_cms_attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
                simple_cms_attribute("message_digest", md.finalize()),
            ])
            if self._pyca_key is None:
                type(self)._pyca_key = serialization.load_der_private_key(self.tsa_key.dump(), password=None)
            signature = self._pyca_key.sign(signed_attrs.dump(), PKCS1v15(),
                                            get_pyca_cryptography_hash(md_algorithm.upper()))
            return signature, signed_attrs

    return TestTimeStamper


def _trust_roots(config: SigningConfig) -> list:
    from pyhanko.keys import load_certs_from_pemder

    return list(load_certs_from_pemder([str(p) for p in config.trust_roots])) if config.trust_roots else []


def _validation_context(config: SigningConfig, *, fetch: bool):
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    return ValidationContext(trust_roots=_trust_roots(config), allow_fetching=fetch,
                             revocation_mode="hard-fail" if fetch else "soft-fail",
                             fetcher_backend=RequestsFetcherBackend(per_request_timeout=FETCH_TIMEOUT))


# Revocation data (OCSP responses, CRLs) fetched for a signer is reused across documents, for at most
# REVOCATION_REUSE_S seconds and never past the earliest nextUpdate of what was fetched: each signer
# keeps one fetching ValidationContext (with its fetch caches) per process. Once the bound passes, the
# next signature builds a new context and asks the OCSP responder / CRL again, so a revoked or changed
# status is picked up at most REVOCATION_REUSE_S later. A context is taken out of the cache while it is
# in use (two threads never share one) and is put back only after a B-LT signature succeeded with it.
REVOCATION_REUSE_S = 300.0
_VC_CACHE: dict[tuple, tuple[float, object]] = {}  # key -> (monotonic creation time, ValidationContext)
_VC_LOCK = threading.Lock()
_TSA_CACHE: dict[str, tuple[float, object]] = {}  # TSA URL -> (monotonic creation time, HTTPTimeStamper)


def _context_key(config: SigningConfig, cert) -> tuple:
    return (tuple(str(p) for p in config.trust_roots), cert.sha256)


def _take_context(config: SigningConfig, cert):
    """A fetching ValidationContext for this signer: the cached one while fresh, else a new one.

    Returns (context, created_at, reused).
    """
    import time

    key = _context_key(config, cert)
    with _VC_LOCK:
        entry = _VC_CACHE.pop(key, None)
    if entry is not None:
        created, vc = entry
        expiry = _revinfo_expiry(vc)
        if (time.monotonic() - created < REVOCATION_REUSE_S
                and (expiry is None or dt.datetime.now(dt.timezone.utc) < expiry)):
            return vc, created, True
    return _validation_context(config, fetch=True), time.monotonic(), False


def _keep_context(config: SigningConfig, cert, vc, created: float) -> None:
    with _VC_LOCK:
        _VC_CACHE[_context_key(config, cert)] = (created, vc)


def clear_revocation_cache() -> None:
    """Forget every cached revocation context (the next B-LT signature fetches OCSP/CRL again)."""
    with _VC_LOCK:
        _VC_CACHE.clear()
        _TSA_CACHE.clear()


# ----------------------------------------------------------------------------------------- sign
def _stamp_style(text: str, font_size: int):
    from pyhanko import stamp
    from pyhanko.pdf_utils import layout, text as pdftext
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

    box = pdftext.TextBoxStyle(font=GlyphAccumulatorFactory(str(stamp_font()), font_size=font_size),
                               font_size=font_size, leading=font_size + 1)
    pad = stamp_place.PAD
    return stamp.TextStampStyle(stamp_text=text, text_box_style=box, border_width=0, background=None,
                                inner_content_layout=layout.SimpleBoxLayoutRule(
                                    x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MAX,
                                    margins=layout.Margins(left=pad, right=pad, top=pad, bottom=pad)))


def _page_one(reader):
    page = reader.root["/Pages"]
    while "/Kids" in page:
        page = page["/Kids"][0]
    return page


def _media_box(data: bytes) -> tuple[float, float, float, float]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    box = [float(v) for v in _page_one(PdfFileReader(io.BytesIO(data), strict=False))["/MediaBox"]]
    return box[0], box[1], box[2], box[3]


def _pdfa_writer(data: bytes, media_box: tuple[float, float, float, float] | None = None):
    """An incremental writer that keeps the file PDF 1.7 (PDF/A-2 is built on ISO 32000-1).

    pyHanko raises the catalog's /Version to 2.0 and registers ISO 32002 for ECDSA on NIST curves; a
    PDF 1.7 reader verifies those signatures all the same (PAdES with ESIC). A file raised by an older
    sohoa is set back to 1.7, and ``media_box`` grows page 1 (the band above the scan), in this update.
    """
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    class PdfA2Writer(IncrementalPdfFileWriter):
        def ensure_output_version(self, version):
            super().ensure_output_version(min(tuple(version), (1, 7)))

        def register_extension(self, ext):
            if str(ext.prefix_name) == "/ISO_":  # ISO 32001/32002 extend PDF 2.0 only
                return
            super().register_extension(ext)

        def _update_meta(self):
            # pyHanko appends itself to DocInfo's /Producer but writes only its own name into the XMP
            # pdf:Producer; PDF/A (ISO 19005-2, 6.6.3) wants the two equal, so DocInfo follows the XMP.
            super()._update_meta()
            info = self._info.get_object() if self._info is not None else None
            if info is not None and "/Metadata" in self.root and "/Producer" in info:
                from pyhanko.pdf_utils.metadata.model import VENDOR

                info["/Producer"] = generic.TextStringObject(VENDOR)
                self.mark_update(self._info)

    writer = PdfA2Writer(io.BytesIO(data), strict=False)
    root = writer.root
    version = root.get("/Version")
    if version is not None and str(version).lstrip("/") > "1.7":
        root["/Version"] = generic.pdf_name("/1.7")
        extensions = root.get("/Extensions")
        if extensions is not None and "/ISO_" in extensions:
            del extensions["/ISO_"]
        writer.update_root()
    if media_box is not None:
        page = _page_one(writer.prev)
        page_ref = page.container_ref
        page = page_ref.get_object() if page_ref is not None else page
        for key in ("/MediaBox", "/CropBox"):  # only the top edge moves: the scan keeps its place and scale
            if key in page:
                page[key] = generic.ArrayObject([*list(page[key])[:3], generic.FloatObject(str(media_box[3]))])
        writer.update_container(page)
    return writer


def _sign_once(data: bytes, *, config: SigningConfig, spec: SignerSpec, role: str, field_name: str,
               text: str, place: stamp_place.Placement, revocation: bool,
               media_box: tuple[float, float, float, float] | None = None) -> tuple[bytes, SignatureInfo]:
    from pyhanko.sign import fields, signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.general import SigningError

    signer, session = _signer(spec, role)
    try:
        box = (math.floor(place.box[0]), math.floor(place.box[1]), math.ceil(place.box[2]), math.ceil(place.box[3]))
        timestamper = _timestamper(config)
        cert = signer.signing_cert
        has_revocation = bool(cert.ocsp_urls or cert.crl_distribution_points)
        attempts = [True, False] if (revocation and has_revocation and timestamper is not None
                                     and config.trust_roots) else [False]
        last_exc: Exception | None = None
        vc = created = None
        while attempts:
            embed = attempts.pop(0)
            reused = False
            if embed:
                vc, created, reused = _take_context(config, cert)
                if reused:
                    # A reused context validates as of its creation; should it fail for any reason
                    # (e.g. data it must fetch now is newer than that), try once with a fresh one.
                    attempts.insert(0, True)
            meta = signers.PdfSignatureMetadata(
                field_name=field_name, md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES,
                embed_validation_info=embed, validation_context=vc if embed
                else None, reason="Số hóa hồ sơ" if role == "operator" else "Chứng thực bản sao điện tử",
                location=config.agency_name)
            pdf_signer = signers.PdfSigner(
                meta, signer=signer, timestamper=timestamper, stamp_style=_stamp_style(text, int(place.font_size)),
                new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=0, box=box))
            out = io.BytesIO()
            try:
                try:
                    # Reserving room for the CMS skips pyHanko's dry-run signature (a third of the time);
                    # revocation data goes into the DSS, not the CMS, so the size hardly varies.
                    pdf_signer.sign_pdf(_pdfa_writer(data, media_box), output=out, bytes_reserved=RESERVED_CMS_BYTES)
                except SigningError as exc:
                    if "reserved" not in str(exc).lower() and "too small" not in str(exc).lower():
                        raise
                    out = io.BytesIO()
                    pdf_signer.sign_pdf(_pdfa_writer(data, media_box), output=out)
            except Exception as exc:  # noqa: BLE001 - pyHanko wraps network, token and validation errors
                last_exc = exc
                if embed and reused:
                    log.info("cached revocation data unusable for %s (%s); fetching it again", role, exc)
                    continue
                if embed:
                    log.info("revocation data unreachable for %s (%s); signing without it (B-T)", role, exc)
                    continue
                raise SigningFailed(f"The {role} signature could not be made: {type(exc).__name__}: {exc}",
                                    f"Không ký số được chữ ký {role}: {type(exc).__name__}.") from None
            if embed:
                _keep_context(config, cert, vc, created)
            level = "PAdES-B-LT" if embed else ("PAdES-B-T" if timestamper is not None else "PAdES-B-B")
            info = SignatureInfo(role=role, signer=_common_name(signer.signing_cert),
                                 signed_at=dt.datetime.now(VIETNAM).isoformat(timespec="seconds"), level=level,
                                 test=config.test)
            return out.getvalue(), info
        raise SigningFailed(f"The {role} signature could not be made: {last_exc}")
    finally:
        if session is not None:
            session.close()


def sign_pdf(path: Path, *, config: SigningConfig, operator: str | None, result_code: str | None,
             copied_at: dt.datetime | None = None, with_operator: bool = True, with_agency: bool = True,
             revocation: bool = True) -> list[SignatureInfo]:
    """Sign ``path`` in place: the operator (when one with a key is given), then the agency.

    The first signing places both stamps on free paper of page 1 (pipeline/stamp_place.py), the
    operator's even when it has no key yet, so that an operator signing later finds its room.
    Returns what was signed ([] without an agency key); the file is replaced only once all succeeded.
    """
    if not config.can_sign and with_agency:
        return []
    data = Path(path).read_bytes()
    infos: list[SignatureInfo] = []
    existing = existing_signature_fields(data)
    op_spec = config.operator_signer(operator) if with_operator else None
    now = dt.datetime.now(VIETNAM)
    texts = {"operator": operator_text(config.operator_display(operator) or "", copied_at or now, test=config.test)}
    if with_agency and AGENCY_FIELD not in existing:
        texts["agency"] = agency_text(config.agency_name, now, result_code, test=config.test)
    if OPERATOR_FIELD in existing or not operator or operator_slug(operator) == "backfill":
        texts.pop("operator")
    if not texts or (op_spec is None and "agency" not in texts):
        return []
    box = _media_box(data)
    plan = stamp_place.plan_stamps(data, texts, media_box=box, may_extend=not existing)
    grow = plan.media_box if plan.band else None
    if op_spec is not None and "operator" in texts:
        data, info = _sign_once(data, config=config, spec=op_spec, role="operator", field_name=OPERATOR_FIELD,
                                text=texts["operator"], place=plan.stamps["operator"], revocation=revocation,
                                media_box=grow)
        grow = None
        infos.append(info)
    if "agency" in texts:
        data, info = _sign_once(data, config=config, spec=config.agency, role="agency", field_name=AGENCY_FIELD,
                                text=texts["agency"], place=plan.stamps["agency"], revocation=revocation,
                                media_box=grow)
        infos.append(info)
    if infos:
        tmp = Path(path).with_name(Path(path).name + ".signing")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return infos


def existing_signature_fields(data: bytes) -> set[str]:
    """Names of the signature fields that already carry a signature."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    return {s.field_name for s in PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures}


# --------------------------------------------------------------------------------------- verify
def _pades_level(has_ts: bool, reader) -> str:
    dss = reader.root.get("/DSS")
    dss = dss.get_object() if dss is not None else None
    has_revinfo = dss is not None and ("/OCSPs" in dss or "/CRLs" in dss)
    if has_ts and has_revinfo:
        return "PAdES-B-LT"
    return "PAdES-B-T" if has_ts else "PAdES-B-B"


def verify_pdf(path: Path, *, trust_roots: Sequence[Path]) -> list[SignatureCheck]:
    """Check every signature of a PDF; one ``SignatureCheck`` each (an unsigned PDF gives an empty list)."""
    from pyhanko.keys import load_certs_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    roots = list(load_certs_from_pemder([str(p) for p in trust_roots])) if trust_roots else []
    checks: list[SignatureCheck] = []
    with open(path, "rb") as f:
        reader = PdfFileReader(f, strict=False)
        for sig in reader.embedded_signatures:
            vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
            problems: list[str] = []
            try:
                status = validate_pdf_signature(sig, signer_validation_context=vc, ts_validation_context=vc)
            except Exception as exc:  # noqa: BLE001 - a mangled signature dictionary
                checks.append(SignatureCheck(sig.field_name, "?", None, None, "?", False, False, True,
                                             [f"cannot be validated: {type(exc).__name__}: {exc}"]))
                continue
            signer = _common_name(status.signing_cert) if status.signing_cert is not None else "?"
            if not status.intact or not status.valid:
                problems.append("the signed bytes were changed (integrity check failed)")
            if not status.trusted:
                problems.append("the signer's certificate does not chain to a configured trust root")
            ts = status.timestamp_validity
            if ts is None:
                problems.append("no RFC 3161 timestamp")
            elif not (ts.intact and ts.valid and ts.trusted):
                problems.append("the timestamp is not valid or its TSA is not trusted")
            modified = status.coverage != SignatureCoverageLevel.ENTIRE_FILE
            level = status.modification_level
            if status.coverage not in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION):
                problems.append("the signature does not cover its whole revision")
            if level is not None and level > ModificationLevel.FORM_FILLING or not status.docmdp_ok:
                problems.append("content was added or changed after this signature")
            signed_at = status.signer_reported_dt
            checks.append(SignatureCheck(
                field=sig.field_name, signer=signer,
                signed_at=signed_at.astimezone(VIETNAM).isoformat(timespec="seconds") if signed_at else None,
                timestamp=ts.timestamp.astimezone(VIETNAM).isoformat(timespec="seconds") if ts else None,
                level=_pades_level(ts is not None, reader), intact=bool(status.intact and status.valid),
                trusted=bool(status.trusted), modified_after=modified, problems=problems))
    return checks
